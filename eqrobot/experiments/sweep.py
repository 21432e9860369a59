"""``run_sweep``: every trial of an experiment as a Ray Tune trial, then the rotation evaluations.

A sweep folder (the Tune experiment folder) holds::

    experiment.json          the checked experiment config (a resumed sweep must match it)
    sweep.json               the ledger: every trial's status (finished / error / pending), its error,
                             the node it ran on, and each rotation evaluation written
    runs/<trial>/            the run folder of each trial, as `eqrobot train` writes it (config.json,
                             state.json, checkpoints/, eval.csv, tb/) and, once evaluated,
                             rotation.json (every episode) and rotation.md
    trials/<trial>.json      where the trial ran (node, host) and its time inside `train`
    references/<env>/        rotation.json of reference policies (e.g. the oracle), if configured
    tuner.pkl, experiment_state-*.json, <tune trial dirs>/   Tune's own state (for ``resume``)

A crashing trial is recorded with its error and the others go on (Tune's default); Ctrl-C stops
the sweep after saving Tune's state. ``resume=True`` restores it with ``Tuner.restore``: finished
trials are not run again, unfinished ones continue from their last checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from eqrobot.experiments.config import ConfigError, ExperimentConfig, Trial
from eqrobot.experiments.trial import RUNS_DIR, is_finished, run_status, trial_info_path

EXPERIMENT_FILE = "experiment.json"
LEDGER_FILE = "sweep.json"
ROTATION_FILE = "rotation.json"


def _write_json(path: Path, data: Any) -> None:
    from eqrobot.rl.checkpoint import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def _check_folder(config: ExperimentConfig, out: Path, resume: bool) -> None:
    saved = out / EXPERIMENT_FILE
    if saved.exists() and not resume:
        raise FileExistsError(f"{out} already holds a sweep; pass --resume to continue it, or another --out")
    if resume and not saved.exists():
        raise FileNotFoundError(f"cannot resume {out}: no {EXPERIMENT_FILE} there (not a sweep folder?)")
    if resume:
        before = json.loads(saved.read_text())
        if before != json.loads(json.dumps(config.to_dict())):
            raise ConfigError(
                f"{out} was started with another experiment config ({saved}); resume it with the same "
                "config, or start a new sweep with another --out"
            )


def _tune_trainable(num_cpus: int):
    from ray import tune

    from eqrobot.experiments.trial import run_trial

    return tune.with_resources(run_trial, {"cpu": num_cpus})


def run_trials(
    config: ExperimentConfig,
    out: Path,
    resume: bool = False,
    max_concurrent: int | None = None,
    callbacks: list | None = None,
) -> dict[str, dict]:
    """Train every trial as a Tune trial (Ray must be running); returns the ledger's trial entries."""
    from ray import tune

    trials = config.trials()
    runs_dir = out / RUNS_DIR
    trainable = _tune_trainable(1)
    if resume and tune.Tuner.can_restore(str(out)):
        tuner = tune.Tuner.restore(
            str(out), trainable, resume_unfinished=True, resume_errored=False, restart_errored=False
        )
        # the saved Tuner holds the callbacks and concurrency of the interrupted call: use this
        # call's (Tuner.restore takes neither; a resumed sweep may have more CPUs, or fewer)
        tuner._local_tuner._run_config.callbacks = list(callbacks or [])
        if max_concurrent is not None:
            tuner._local_tuner._tune_config.max_concurrent_trials = max_concurrent
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={
                "trial": tune.grid_search([t.to_dict() for t in trials]),
                "runs_dir": str(runs_dir),
                "save_replay_buffer": config.save_replay_buffer,
            },
            tune_config=tune.TuneConfig(
                max_concurrent_trials=max_concurrent,
                trial_name_creator=lambda tr: tr.config["trial"]["name"],
                trial_dirname_creator=lambda tr: "tune-" + tr.config["trial"]["name"],
            ),
            run_config=tune.RunConfig(
                storage_path=str(out.parent),
                name=out.name,
                callbacks=callbacks,
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
    grid = _fit_keeping_signal_handlers(tuner)
    errors = {}
    for result in grid:
        name = (result.config or {}).get("trial", {}).get("name")
        if name is not None and result.error is not None:
            errors[name] = f"{type(result.error).__name__}: {result.error}"
    return ledger_entries(trials, runs_dir, errors)


def _fit_keeping_signal_handlers(tuner):
    """``tuner.fit()``, then the SIGINT/SIGUSR1 handlers as they were: Tune installs its own and
    only puts the old one back when a signal arrives, so after a normal fit the next Ctrl-C of the
    calling program would be swallowed by a Tune run that has already ended."""
    names = [s for s in ("SIGINT", "SIGUSR1") if hasattr(signal, s)]
    main_thread = threading.current_thread() is threading.main_thread()
    saved = {s: signal.getsignal(getattr(signal, s)) for s in names} if main_thread else {}
    try:
        return tuner.fit()
    finally:
        for s, handler in saved.items():
            if handler is not None:
                signal.signal(getattr(signal, s), handler)


def ledger_entries(trials: list[Trial], runs_dir: Path, errors: dict[str, str] | None = None) -> dict:
    """Status of every trial from its run folder (the source of truth) plus Tune's errors."""
    out = {}
    for t in trials:
        run_dir = runs_dir / t.name
        state = run_status(run_dir)
        info = {}
        if trial_info_path(runs_dir, t.name).exists():
            info = json.loads(trial_info_path(runs_dir, t.name).read_text())
        if is_finished(run_dir, t.steps):
            status = "finished"
        elif errors and t.name in errors:
            status = "error"
        else:
            status = "pending"  # never started, or interrupted: `--resume` continues it
        out[t.name] = {
            "status": status,
            "num_timesteps": state.get("num_timesteps", 0),
            "steps": t.steps,
            "error": (errors or {}).get(t.name) if status == "error" else None,
            "node_id": info.get("node_id"),
            "hostname": info.get("hostname"),
        }
    return out


def evaluate_finished(config: ExperimentConfig, out: Path, entries: dict[str, dict]) -> list[Path]:
    """Rotation evaluation (Ray tasks) of every finished trial not yet evaluated; the files written."""
    from eqrobot.experiments.evaluation import evaluate_on_splits

    ev = config.evaluation
    if not ev.splits:
        return []
    settings = {"splits": list(ev.splits), "episodes_per_bin": ev.episodes_per_bin, "seed": ev.seed}
    written = []
    # env id -> {policy name: (source: run folder or reference name, where its result goes)}
    todo: dict[str, dict[str, tuple[str, Path]]] = {}
    for t in config.trials():
        run_dir = out / RUNS_DIR / t.name
        if entries.get(t.name, {}).get("status") == "finished" and not _same_settings(
            run_dir / ROTATION_FILE, settings
        ):
            todo.setdefault(t.env_id, {})[t.name] = (str(run_dir), run_dir / ROTATION_FILE)
    for env_id in dict.fromkeys(t.env_id for t in config.trials()):
        for ref in ev.references:
            path = out / "references" / env_id.split("/")[-1] / ref / ROTATION_FILE
            if not _same_settings(path, settings):
                todo.setdefault(env_id, {})[ref] = (ref, path)
    for env_id, targets in todo.items():
        sources = {name: src for name, (src, _) in targets.items()}
        for name, result in evaluate_on_splits(sources, env_id, ev).items():
            path = targets[name][1]
            result.to_json(path)
            path.with_suffix(".md").write_text(result.to_markdown())
            written.append(path)
    return written


def _same_settings(path: Path, settings: dict) -> bool:
    if not path.exists():
        return False
    d = json.loads(path.read_text())
    return {"splits": d["splits"], "episodes_per_bin": d["episodes_per_bin"], "seed": d["seed"]} == settings


def run_sweep(
    config: ExperimentConfig,
    out: str | os.PathLike,
    address: str | None = None,
    max_concurrent: int | None = None,
    resume: bool = False,
    num_cpus: int | None = None,
    callbacks: list | None = None,
) -> dict[str, Any]:
    """Train every trial, evaluate every finished policy, write the ledger; return the ledger.

    :param address: None: a private local Ray on loopback (``num_cpus`` CPUs, default all);
        ``"auto"`` / ``"HOST:PORT"``: join that cluster (``out`` must then be on a filesystem every
        node mounts at the same path).
    :param max_concurrent: trials at once (default: as many as the CPUs allow, 1 CPU each).
    :param resume: continue the sweep in ``out`` (same config): finished trials are not rerun.
    :param callbacks: Ray Tune callbacks (loggers, or anything hooking trial events).
    """
    from eqrobot.experiments.cluster import ray_session

    out = Path(out).resolve()
    config.validate()
    _check_folder(config, out, resume)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / EXPERIMENT_FILE, config.to_dict())
    t0 = time.time()
    with ray_session(address, num_cpus):
        entries = run_trials(config, out, resume, max_concurrent, callbacks)
        _write_json(out / LEDGER_FILE, {"trials": entries, "evaluations": []})
        t_train = time.time() - t0
        written = evaluate_finished(config, out, entries)
    ledger = {
        "experiment": config.name,
        "trials": entries,
        "evaluations": [str(p.relative_to(out)) for p in written],
        "timing_s": {"train": round(t_train, 1), "total": round(time.time() - t0, 1)},
    }
    _write_json(out / LEDGER_FILE, ledger)
    return ledger


def load_sweep_config(out: str | os.PathLike) -> ExperimentConfig:
    """The experiment config a sweep folder was started with."""
    path = Path(out) / EXPERIMENT_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{out}: no {EXPERIMENT_FILE} (not a sweep folder made by `eqrobot sweep run`)"
        )
    return ExperimentConfig.from_dict(json.loads(path.read_text()), source=str(path))
