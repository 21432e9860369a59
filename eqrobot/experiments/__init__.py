"""Experiments at scale: grids of training trials on Ray Tune, rotation evaluations as Ray tasks.

    from eqrobot.experiments import load_experiment, run_sweep, build_report
    config = load_experiment("experiments/bench_rl.toml")
    run_sweep(config, "runs/sweeps/bench_rl")          # embedded Ray on 127.0.0.1
    build_report("runs/sweeps/bench_rl")               # report.md, report.json, PNGs

The command line is ``eqrobot sweep run|report``. Ray is the ``ray`` extra
(``pip install -e ".[ray]"``); only running a sweep needs it (configs and reports do not).
Names are imported lazily.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ExperimentConfig": "eqrobot.experiments.config",
    "AgentSpec": "eqrobot.experiments.config",
    "GridSpec": "eqrobot.experiments.config",
    "EvaluationSpec": "eqrobot.experiments.config",
    "Trial": "eqrobot.experiments.config",
    "ConfigError": "eqrobot.experiments.config",
    "load_experiment": "eqrobot.experiments.config",
    "run_sweep": "eqrobot.experiments.sweep",
    "load_sweep_config": "eqrobot.experiments.sweep",
    "evaluate_on_splits": "eqrobot.experiments.evaluation",
    "ray_session": "eqrobot.experiments.cluster",
    "RayMissingError": "eqrobot.experiments.cluster",
    "build_report": "eqrobot.experiments.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'eqrobot.experiments' has no attribute {name!r}")
