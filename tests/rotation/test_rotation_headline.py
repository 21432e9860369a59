"""scripts/rotation_headline.py (a wrapper over `eqrobot sweep`): its experiment, and the headline
verdicts (eqrobot.experiments.retention) on a synthetic rotation table."""

from pathlib import Path

import pytest

from eqrobot.experiments.config import load_experiment
from eqrobot.experiments.retention import headline_check
from eqrobot.rotation.results import BinResult, RotationResult, wilson_interval

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def headline(load_script):
    return load_script("rotation_headline")


def test_the_shipped_config_is_the_default_experiment(headline):
    mine = headline.experiment(headline.parse_args([]))
    shipped = load_experiment(ROOT / "experiments" / "rotation_headline.toml")
    assert sorted(t.name for t in shipped.trials()) == sorted(t.name for t in mine.trials())
    assert shipped.evaluation == mine.evaluation
    assert {t.rotation_range_deg for t in mine.trials()} == {0.0}  # trained canonical-only
    assert mine.evaluation.splits == ["canonical", "so2-sweep", "so3-world", "so2+shift"]
    assert mine.evaluation.references == ["oracle"]


def test_arguments_resize_the_experiment(headline):
    args = headline.parse_args(["--tasks", "Reach", "--steps-reach", "700", "--episodes", "3", "--no-oracle"])
    config = headline.experiment(args)
    assert {(t.task, t.steps, t.demos) for t in config.trials()} == {("Reach", 700, 100)}
    assert config.evaluation.episodes_per_bin == 3 and config.evaluation.references == []


def _table(cells):
    """cells: (policy, split, label, successes, episodes) -> a RotationResult with matching episodes."""
    rows, episodes = [], []
    for i, (policy, split, label, k, n) in enumerate(cells):
        lo, hi = wilson_interval(k, n)
        angle = float(label) if split == "so2-sweep" else None
        rows.append(BinResult(policy, split, i, label, angle, True, n, k, k / n, lo, hi, -10.0, 1.0))
        episodes += [
            {"policy": policy, "split": split, "bin": i, "reachable": True, "success": j < k, "return": -10.0}
            for j in range(n)
        ]
    splits = list(dict.fromkeys(c[1] for c in cells))
    policies = list(dict.fromkeys(c[0] for c in cells))
    return RotationResult("eqrobot/Push-v0", policies, splits, 40, 0, rows, episodes)


def test_point_and_ci_verdicts():
    # canonical 36/40 = 0.90; goal: 0.95 x 0.90 = 0.855 per bin
    cells = [("eq", "canonical", "canonical", 36, 40)]
    cells += [("eq", "so2-sweep", a, 36, 40) for a in ("-90.0", "0.0", "30.0")]
    cells += [("eq", "so2-sweep", "60.0", 31, 40)]  # 0.775: below by point estimate, not significantly
    cells += [("eq", "so3-world", "all", 37, 40)]
    check = headline_check(_table(cells), "eq", reference=None)
    assert check["verdict"] == "FAIL" and check["so2_sweep_bins_below_goal"] == ["60.0"]
    assert check["so2_sweep_bins_significantly_below_goal"] == []
    assert check["verdict_within_ci"] == "PASS"
    assert check["so2_sweep_pooled_retention"] == pytest.approx((3 * 36 + 31) / 160 / 0.9)

    # a bin at 20/40 = 0.5: its whole 95% interval (up to ~0.65) lies under 0.855
    cells[4] = ("eq", "so2-sweep", "60.0", 20, 40)
    check = headline_check(_table(cells), "eq", reference=None)
    assert check["so2_sweep_bins_significantly_below_goal"] == ["60.0"]
    assert check["verdict_within_ci"] == "FAIL"


def test_bins_where_the_oracle_fails_are_left_out():
    cells = [("eq", "canonical", "canonical", 36, 40), ("eq", "so2-sweep", "150.0", 10, 40)]
    cells += [("eq", "so2-sweep", "0.0", 36, 40), ("oracle", "so2-sweep", "150.0", 20, 40)]
    cells += [("oracle", "so2-sweep", "0.0", 40, 40)]
    check = headline_check(_table(cells), "eq", reference="oracle")
    assert check["physically_limited_bins"] == ["150.0"]
    assert check["so2_sweep_worst_bin"] == "0.0" and check["verdict"] == "PASS"


def test_so3_world_collapse_fails_both_verdicts():
    cells = [("mlp", "canonical", "canonical", 38, 40), ("mlp", "so3-world", "all", 2, 40)]
    check = headline_check(_table(cells), "mlp", reference=None)
    assert check["so3_world_retention"] == pytest.approx(2 / 38)
    assert check["verdict"] == "FAIL" and check["verdict_within_ci"] == "FAIL"


def test_no_verdict_for_a_policy_that_did_not_learn():
    cells = [("mlp", "canonical", "canonical", 3, 40), ("mlp", "so2-sweep", "30.0", 6, 40)]
    cells += [("mlp", "so3-world", "all", 6, 40)]
    check = headline_check(_table(cells), "mlp", reference=None)
    assert check["verdict"].startswith("n/a") and check["verdict_within_ci"].startswith("n/a")
    assert "did not learn" in check["verdict"]
