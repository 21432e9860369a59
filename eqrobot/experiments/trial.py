"""One sweep trial inside a Ray Tune worker: ``eqrobot.rl.train`` reporting every evaluation.

The run folder is ``<sweep>/runs/<trial name>`` (config.json, state.json, checkpoints/, eval.csv,
tb/: exactly what ``eqrobot train`` writes), written straight into the sweep folder, so it is the
same whether Tune restarts the trial or not. It is also the ledger: a trial whose run folder says
``finished`` with its full budget is not trained again (its rows are re-reported), and one with a
checkpoint resumes from it. So a killed sweep loses no finished trial and at most one evaluation
interval of an unfinished one. ``<sweep>/trials/<trial name>.json`` records where the trial ran
(node, host) and the time spent inside ``train``.

Every evaluation row reaches ``tune.report`` through ``train``'s ``on_eval`` hook as ``env_steps``,
``success_rate``, ``mean_return`` and ``wall_time_s`` (training wall time, evaluations excluded).
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path
from typing import Any

RUNS_DIR = "runs"
TRIALS_DIR = "trials"


def run_status(run_dir: Path) -> dict[str, Any]:
    """The run folder's state.json (``{}`` when there is none or it is unreadable)."""
    try:
        return json.loads((Path(run_dir) / "state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def is_finished(run_dir: Path, steps: int) -> bool:
    state = run_status(run_dir)
    return state.get("status") == "finished" and int(state.get("num_timesteps", -1)) >= int(steps)


def trial_info_path(runs_dir: Path, name: str) -> Path:
    return Path(runs_dir).parent / TRIALS_DIR / f"{name}.json"


def _metrics(row: dict[str, Any], trial_name: str) -> dict[str, Any]:
    return {
        "trial": trial_name,
        "env_steps": int(row["step"]),
        "success_rate": float(row["success_rate"]),
        "mean_return": float(row["mean_return"]),
        "wall_time_s": float(row["wall_time_s"]),
    }


def run_trial(params: dict[str, Any]) -> None:
    """The Tune function trainable. ``params``: ``trial`` (a Trial as dict), ``runs_dir``,
    ``save_replay_buffer``."""
    import ray
    from ray import tune

    from eqrobot.experiments.config import AgentSpec, Trial
    from eqrobot.rl.config import TrainConfig
    from eqrobot.rl.train import read_eval_csv, train
    from eqrobot.rollout.checkpoints import checkpoint_folder

    t = {k: v for k, v in params["trial"].items() if k not in ("name", "group")}
    trial = Trial(**{**t, "agent": AgentSpec(**t["agent"])})
    runs_dir = Path(params["runs_dir"])
    run_dir = runs_dir / trial.name
    info_path = trial_info_path(runs_dir, trial.name)
    info = {
        "trial": trial.name,
        "node_id": ray.get_runtime_context().get_node_id(),
        "hostname": socket.gethostname(),
        "tune_trial_id": tune.get_context().get_trial_id(),
    }
    info_path.parent.mkdir(parents=True, exist_ok=True)
    info_path.write_text(json.dumps(info, indent=2) + "\n")

    def report(row: dict[str, Any]) -> None:
        tune.report({**_metrics(row, trial.name), "node_id": info["node_id"]})

    if is_finished(run_dir, trial.steps):
        rows = read_eval_csv(run_dir / "eval.csv") if (run_dir / "eval.csv").exists() else []
        for row in rows:
            report(row)
        if not rows:
            tune.report({"trial": trial.name, "env_steps": trial.steps, "node_id": info["node_id"]})
        return
    if run_dir.exists() and checkpoint_folder(run_dir) is not None:
        config = TrainConfig(resume=str(run_dir), steps=trial.steps, progress_bar=False)
    else:
        # a start killed before its first checkpoint left nothing to resume
        shutil.rmtree(run_dir, ignore_errors=True)
        config = trial.train_config(runs_dir, save_replay_buffer=params["save_replay_buffer"])
    t0 = time.perf_counter()
    train(config, on_eval=report)
    # time inside train() (setup, training, evaluations): the sweep's overhead is the rest
    info["train_s"] = round(time.perf_counter() - t0, 3)
    info_path.write_text(json.dumps(info, indent=2) + "\n")
