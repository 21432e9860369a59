"""Fuzz every env id with bad inputs (issue 12): 0 crashes and 0 silent nonsense.

The fast subset (in ``make test``) runs the whole case table on two ids that between them cover
point and frame goals, sparse and dense rewards, 4- and 5-entry actions; the slow test runs it on
every id in ENV_IDS. Both print the counts per outcome (cases: ``tests/fuzz_env_table.py``,
classification: ``tests/fuzz_cases.py``).
"""

import gymnasium as gym
import pytest
from fuzz_cases import run_cases, summary
from fuzz_env_table import env_cases

import eqrobot  # noqa: F401
from eqrobot.envs import ENV_IDS

FAST_IDS = ("eqrobot/Push-v0", "eqrobot/RotateDense-v0")


def _fuzz(env_ids):
    total, rows = None, []
    for env_id in env_ids:
        env = gym.make(env_id)
        try:
            counts, id_rows = run_cases(env_cases(env_id, env))
        finally:
            env.close()
        total = counts if total is None else total + counts
        rows += [(f"{env_id}:{g}", n, o, d) for g, n, o, d in id_rows]
    for outcome in ("ok", "clear_error", "crash", "silent_nonsense"):
        total.setdefault(outcome, 0)
    report = summary(total, rows, title=f"env fuzz over {len(env_ids)} ids")
    print("\n" + report)
    return total, report


def test_fuzz_fast_subset():
    counts, report = _fuzz(FAST_IDS)
    assert counts["crash"] == 0 and counts["silent_nonsense"] == 0, report
    assert counts["clear_error"] > 100 and counts["ok"] > 20  # the table really ran


@pytest.mark.slow
def test_fuzz_every_env_id():
    counts, report = _fuzz(ENV_IDS)
    assert counts["crash"] == 0 and counts["silent_nonsense"] == 0, report
