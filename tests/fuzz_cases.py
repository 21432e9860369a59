"""A table-driven fuzz of bad inputs: the case type and how each case is classified.

Every case is classified as one of :data:`OUTCOMES`:

* ``ok``: a valid (edge) input accepted, and its result passed the case's sanity check;
* ``clear_error``: a bad input refused with an exception of a clear type whose message names the
  input (any of the case's ``names``);
* ``crash``: any other exception (a PyBullet error, an IndexError, a message that does not name the
  input), or a valid input refused;
* ``silent_nonsense``: a bad input accepted, a result that fails its sanity check (NaN in an
  observation, a wrong shape), or an env left unusable by the case.

These helpers are generic: each fuzz table builds :class:`Case` rows (the env's is
``tests/fuzz_env_table.py``; the CLI's is in ``tests/test_fuzz_cli.py``) and runs them with
:func:`run_cases`, printing :func:`summary`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

OUTCOMES = ("ok", "clear_error", "crash", "silent_nonsense")
#: exception types a user can act on; anything else (IndexError, pybullet.error, ...) is a crash
CLEAR_ERROR_TYPES = (ValueError, TypeError, RuntimeError, KeyError, gym.error.Error, SystemExit)


@dataclass
class Case:
    """One fuzz input.

    Args:
        group: what is fuzzed ("kwarg", "reset", "action", "compute_reward", "closed", "render", ...).
        name: a readable id of the input.
        run: performs the input; returns what ``sane`` inspects.
        names: words of which a clear error message must contain at least one (case-insensitive).
        expect_error: True for a bad input, False for a valid edge input that must be accepted.
        sane: for accepted inputs, ``sane(result)`` returns a problem description or None.
        after: run after the case whatever happened; returns a problem (e.g. "env unusable") or None.
    """

    group: str
    name: str
    run: Callable[[], Any]
    names: tuple[str, ...] = ()
    expect_error: bool = True
    sane: Callable[[Any], str | None] | None = None
    after: Callable[[], str | None] | None = None


def classify(case: Case) -> tuple[str, str]:
    """(outcome, detail) of one case."""
    try:
        result = case.run()
    except CLEAR_ERROR_TYPES as exc:
        msg = str(exc)
        problem = case.after() if case.after else None
        if problem:
            return "silent_nonsense", f"refused, but then {problem}"
        if not case.expect_error:
            return "crash", f"valid input refused: {type(exc).__name__}: {msg}"
        if any(n.lower() in msg.lower() for n in case.names):
            return "clear_error", msg
        return "crash", f"{type(exc).__name__} not naming {case.names}: {msg}"
    except Exception as exc:  # noqa: BLE001 - any other type is what the fuzz looks for
        return "crash", f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    problem = case.after() if case.after else None
    if case.expect_error:
        return "silent_nonsense", f"accepted: {problem or 'no error raised'}"
    problem = problem or (case.sane(result) if case.sane else None)
    return ("silent_nonsense", problem) if problem else ("ok", "")


def run_cases(cases) -> tuple[Counter, list[tuple[str, str, str, str]]]:
    """Counts per outcome and the rows (group, name, outcome, detail) of every case."""
    counts: Counter = Counter({k: 0 for k in OUTCOMES})
    rows = []
    for case in cases:
        outcome, detail = classify(case)
        counts[outcome] += 1
        rows.append((case.group, case.name, outcome, detail))
    return counts, rows


def summary(counts: Counter, rows, title: str = "fuzz") -> str:
    """The counts per outcome, then every crash and silent nonsense with its detail."""
    lines = [f"{title}: {sum(counts.values())} cases: " + ", ".join(f"{k} {counts[k]}" for k in OUTCOMES)]
    for group, name, outcome, detail in rows:
        if outcome in ("crash", "silent_nonsense"):
            lines.append(f"  {outcome:16s} {group}/{name}: {detail[:300]}")
    return "\n".join(lines)
