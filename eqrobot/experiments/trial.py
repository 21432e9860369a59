"""One sweep trial inside a Ray Tune worker: ``eqrobot.rl.train`` plus a report per evaluation.

The run folder is ``<sweep>/runs/<trial name>`` (model.zip, config.json, eval.csv, state.json,
tb/), written straight into the sweep folder, so it is the same whether Tune restarts the trial
or not. It is also the ledger: a trial whose run folder says ``finished`` with its full budget is
not trained again (its rows are re-reported), and one with a checkpoint resumes from it. So a
killed sweep loses no finished trial and at most one evaluation interval of an unfinished one.

Every row ``train`` appends to eval.csv is passed to ``tune.report`` as ``env_steps``,
``success_rate``, ``mean_return`` and ``wall_time_s`` (training wall time); a watcher thread
tails the file while ``train`` runs in the trial's own thread.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

RUNS_DIR = "runs"
TRIAL_INFO = "trial.json"
POLL_S = 0.5


def run_status(run_dir: Path) -> dict[str, Any]:
    """The run folder's state.json (``{}`` when there is none or it is unreadable)."""
    try:
        return json.loads((Path(run_dir) / "state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def is_finished(run_dir: Path, steps: int) -> bool:
    state = run_status(run_dir)
    return state.get("status") == "finished" and int(state.get("num_timesteps", -1)) >= int(steps)


def _metrics(row: dict[str, float], trial_name: str) -> dict[str, Any]:
    return {
        "trial": trial_name,
        "env_steps": int(row["step"]),
        "success_rate": float(row["success_rate"]),
        "mean_return": float(row["mean_return"]),
        "wall_time_s": float(row["wall_time_s"]),
    }


class _EvalWatcher(threading.Thread):
    """Reports every new eval.csv row through ``report`` until stopped."""

    def __init__(self, csv_path: Path, trial_name: str, report, already: int = 0):
        super().__init__(daemon=True)
        self.csv_path, self.trial_name, self.report = csv_path, trial_name, report
        self.done = already
        self.stop_event = threading.Event()

    def flush(self) -> None:
        from eqrobot.rl.train import read_eval_csv

        if not self.csv_path.exists():
            return
        try:
            rows = read_eval_csv(self.csv_path)
        except (OSError, ValueError, KeyError):
            return  # a row being written: next time
        for row in rows[self.done :]:
            self.report(_metrics(row, self.trial_name))
            self.done += 1

    def run(self) -> None:
        while not self.stop_event.wait(POLL_S):
            self.flush()


def run_trial(params: dict[str, Any]) -> None:
    """The Tune function trainable. ``params``: ``trial`` (a Trial as dict), ``runs_dir``,
    ``save_replay_buffer``."""
    import ray
    from ray import tune

    from eqrobot.experiments.config import AgentSpec, Trial
    from eqrobot.rl.config import TrainConfig
    from eqrobot.rl.train import read_eval_csv, train

    t = dict(params["trial"])
    t.pop("name", None)
    t.pop("group", None)
    trial = Trial(**{**t, "agent": AgentSpec(**t["agent"])})
    run_dir = Path(params["runs_dir"]) / trial.name
    csv_path = run_dir / "eval.csv"
    info = {
        "trial": trial.name,
        "node_id": ray.get_runtime_context().get_node_id(),
        "hostname": socket.gethostname(),
        "tune_trial_id": tune.get_context().get_trial_id(),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / TRIAL_INFO).write_text(json.dumps(info, indent=2) + "\n")

    def report(metrics):
        tune.report({**metrics, "node_id": info["node_id"]})

    if is_finished(run_dir, trial.steps):
        rows = read_eval_csv(csv_path) if csv_path.exists() else []
        for row in rows:
            report(_metrics(row, trial.name))
        if not rows:
            report({"trial": trial.name, "env_steps": trial.steps})
        return
    resuming = (run_dir / "model.zip").exists() and (run_dir / "config.json").exists()
    if resuming:
        config = TrainConfig(resume=str(run_dir), steps=trial.steps, progress_bar=False)
        already = len(read_eval_csv(csv_path)) if csv_path.exists() else 0
    else:
        for stale in ("eval.csv", "state.json"):  # a start that died before its first checkpoint
            (run_dir / stale).unlink(missing_ok=True)
        config = trial.train_config(params["runs_dir"], save_replay_buffer=params["save_replay_buffer"])
        already = 0
    watcher = _EvalWatcher(csv_path, trial.name, report, already)
    watcher.start()
    t0 = time.perf_counter()
    try:
        train(config)
    finally:
        watcher.stop_event.set()
        watcher.join()
    watcher.flush()  # rows written after the watcher's last look
    # time inside train() (setup, training, evaluations): the sweep's overhead is the rest
    info["train_s"] = round(time.perf_counter() - t0, 3)
    (run_dir / TRIAL_INFO).write_text(json.dumps(info, indent=2) + "\n")
