"""``train(config) -> run_dir``: SB3 training with presets, run folders, evaluation and safe checkpoints.

A run folder holds::

    config.json          the resolved TrainConfig (presets filled in)
    model.zip            the latest checkpoint (plain SB3 zip + eqrobot.json), written atomically
    replay_buffer.pkl    the replay buffer at that checkpoint (off-policy, for exact resume)
    eval.csv             step, success_rate, mean_return, ... at every evaluation
    state.json           status (running / finished / interrupted), num_timesteps, wall time
    tb/                  TensorBoard logs (SB3's logger; eval/success_rate is logged there too)

Evaluation (and a checkpoint) happen every ``eval_freq`` env steps and at the end; Ctrl-C writes a
checkpoint, marks the run ``interrupted`` and re-raises ``KeyboardInterrupt``. ``resume`` continues a
run folder to its (possibly raised) ``steps`` total.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import functools
import json
import math
import os
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from eqrobot.rl.checkpoint import atomic_write_bytes, save_model, save_replay_buffer
from eqrobot.rl.config import ALGOS, AUGMENTATIONS, OFF_POLICY_ALGOS, POLICIES, TrainConfig
from eqrobot.rl.presets import HER_KWARGS, get_preset, task_of
from eqrobot.rollout.checkpoints import BUFFER_NAME, CONFIG_NAME, MODEL_NAME, algo_classes, load_model

EVAL_CSV = "eval.csv"
STATE_NAME = "state.json"
EVAL_COLUMNS = [
    "step",
    "success_rate",
    "mean_return",
    "mean_length",
    "train_success_rate",
    "wall_time_s",
    "train_steps_per_s",
]


# --- config resolution --------------------------------------------------------------------------
def check_names(env_id: str, algo: str, policy: str) -> None:
    """Raise ValueError naming the valid choices for an unknown env, algo or policy."""
    import gymnasium as gym

    import eqrobot
    from eqrobot.envs import ENV_IDS

    del eqrobot
    if algo not in ALGOS:
        raise ValueError(f"unknown algo {algo!r}; valid: {', '.join(ALGOS)}")
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; valid: {', '.join(POLICIES)}")
    if env_id not in gym.registry or env_id not in ENV_IDS:
        raise ValueError(f"unknown env {env_id!r}; valid: {', '.join(ENV_IDS)}")


def resolve_config(config: TrainConfig) -> TrainConfig:
    """A copy of ``config`` with every ``None`` filled from the preset and overrides merged in."""
    check_names(config.env_id, config.algo, config.policy)
    preset = get_preset(config.env_id, config.algo, config.policy)
    c = copy.deepcopy(config)
    c.steps = int(preset.steps if c.steps is None else c.steps)
    c.eval_freq = int(preset.eval_freq if c.eval_freq is None else c.eval_freq)
    c.her = bool(preset.her if c.her is None else c.her)
    off_policy = ", ".join(OFF_POLICY_ALGOS)
    if c.algo not in OFF_POLICY_ALGOS and c.her:
        raise ValueError(f"HER needs an off-policy algorithm ({off_policy}), not {c.algo}")
    if c.algo not in OFF_POLICY_ALGOS and c.demos:
        raise ValueError(
            f"demos fill a replay buffer: use an off-policy algorithm ({off_policy}), not {c.algo}"
        )
    if c.augment is not None and c.augment not in AUGMENTATIONS:
        raise ValueError(
            f"unknown augment {c.augment!r}; valid: {', '.join(AUGMENTATIONS)} (or None for none)"
        )
    if c.augment is not None and c.algo not in OFF_POLICY_ALGOS:
        raise ValueError(f"replay augmentation needs an off-policy algorithm ({off_policy}), not {c.algo}")
    if c.n_envs < 1 or c.steps < 1 or c.demos < 0:
        raise ValueError(f"need n_envs >= 1, steps >= 1, demos >= 0; got {c.n_envs}, {c.steps}, {c.demos}")
    if c.vec_env not in ("dummy", "subproc"):
        raise ValueError(f"vec_env must be 'dummy' or 'subproc', got {c.vec_env!r}")
    hp = {**preset.hyperparams, **c.hyperparams}
    if c.demos and "learning_starts" not in c.hyperparams and "learning_starts" in hp:
        hp["learning_starts"] = 0  # the demonstrations replace the random warm-up data
    if c.her and not c.demos and hp.get("learning_starts", 0) < _episode_steps(c.env_id):
        # HER samples whole episodes: learning before the first one ends is an SB3 error
        hp["learning_starts"] = _episode_steps(c.env_id)
    if "buffer_size" in hp:  # no bigger than the run needs: checkpoints pickle the whole buffer
        hp["buffer_size"] = int(min(hp["buffer_size"], c.steps + c.demos * _episode_steps(c.env_id) + 1000))
    c.hyperparams = hp
    merged = {**preset.policy_kwargs, **c.policy_kwargs}
    if "net_kwargs" in preset.policy_kwargs and "net_kwargs" in c.policy_kwargs:
        # one level deeper: passing net_kwargs={"vector_channels": 8} keeps the preset's other net options
        merged["net_kwargs"] = {**preset.policy_kwargs["net_kwargs"], **(c.policy_kwargs["net_kwargs"] or {})}
    elif merged.get("net", "equivariant") != "equivariant" and "net_kwargs" not in c.policy_kwargs:
        merged.pop("net_kwargs", None)  # the preset's net options are EquivariantNet's
    c.policy_kwargs = merged
    return c


def _episode_steps(env_id: str) -> int:
    import gymnasium as gym

    return int(gym.spec(env_id).max_episode_steps or 1000)


def default_run_name(c: TrainConfig) -> str:
    task, dense = task_of(c.env_id)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{task}{'Dense' if dense else ''}-{c.algo}-{c.policy}-s{c.seed}-{stamp}"


# --- envs and models ------------------------------------------------------------------------------
def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None):
    """Build one env; module-level (picklable) so SubprocVecEnv workers can call it."""
    import gymnasium as gym

    import eqrobot  # noqa: F401  (registers the ids in worker processes)

    return gym.make(env_id, **(env_kwargs or {}))


def env_kwargs_for(c: TrainConfig, evaluation: bool = False) -> dict[str, Any]:
    deg = (
        c.rotation_range_deg
        if not evaluation or c.eval_rotation_range_deg is None
        else c.eval_rotation_range_deg
    )
    kwargs = dict(c.env_kwargs)
    if deg:
        kwargs.setdefault("task_rotation_range", math.radians(deg))
    return kwargs


def make_vec_env(c: TrainConfig):
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    factory = functools.partial(make_env, c.env_id, env_kwargs_for(c))
    cls = SubprocVecEnv if c.vec_env == "subproc" else DummyVecEnv
    return sb3_make_vec_env(factory, n_envs=c.n_envs, seed=c.seed, vec_env_cls=cls)


def build_model(c: TrainConfig, venv, tb_dir: str | None):
    """A new SB3 model for a resolved config."""
    from stable_baselines3 import HerReplayBuffer
    from stable_baselines3.common.buffers import DictReplayBuffer
    from stable_baselines3.common.noise import NormalActionNoise

    from eqrobot.rl.augmentation import augmented_buffer_class

    cls = algo_classes()[c.algo]
    hp = dict(c.hyperparams)
    sigma = hp.pop("action_noise_sigma", None)
    if sigma:
        dim = venv.action_space.shape[0]
        hp["action_noise"] = NormalActionNoise(np.zeros(dim), np.full(dim, float(sigma)))
    if c.her:
        hp["replay_buffer_class"] = HerReplayBuffer
        hp["replay_buffer_kwargs"] = {**HER_KWARGS, **hp.get("replay_buffer_kwargs", {})}
    if c.augment is not None:  # after HER: the augmented buffer relabels first, then transforms
        base = hp.get("replay_buffer_class") or DictReplayBuffer
        hp["replay_buffer_class"] = augmented_buffer_class(base)
        hp["replay_buffer_kwargs"] = {**hp.get("replay_buffer_kwargs", {}), "augment": c.augment}
    policy = "EquivariantPolicy" if c.policy == "equivariant" else "MultiInputPolicy"
    return cls(
        policy,
        venv,
        seed=c.seed,
        tensorboard_log=tb_dir,
        policy_kwargs=copy.deepcopy(c.policy_kwargs),
        verbose=c.verbose,
        device=c.device,
        **hp,
    )


def fill_with_demos(model, episodes: int, env_id: str) -> dict[str, float]:
    """Put ``episodes`` oracle episodes into ``model.replay_buffer`` (whole episodes, all envs).

    Oracle actions are limited like the policy's (vectors to the unit ball, scalars to [-1, 1]).
    The demo steps do not count in ``model.num_timesteps``; they are reported separately.
    """
    from eqrobot.envs.oracles import OraclePolicy
    from eqrobot.policies.distributions import limit_action

    venv = model.get_env()
    spec = venv.get_attr("geometry_spec", [0])[0]  # from the env: wrappers may rebuild the space
    oracle = OraclePolicy(venv.envs[0] if hasattr(venv, "envs") else spec, task=task_of(env_id)[0])
    n = venv.num_envs
    rounds = math.ceil(episodes / n)
    finished = np.zeros(n, dtype=int)
    successes, steps = [], 0
    model._last_obs = venv.reset()
    while finished.min() < rounds:
        actions, _ = oracle.predict(model._last_obs)
        actions = limit_action(np.asarray(actions, dtype=np.float32), spec.action)
        new_obs, rewards, dones, infos = venv.step(actions)
        model._store_transition(model.replay_buffer, actions, new_obs, rewards, dones, infos)
        steps += n
        for i, done in enumerate(dones):
            if done:
                finished[i] += 1
                successes.append(bool(infos[i].get("is_success", False)))
    if hasattr(model.replay_buffer, "truncate_last_trajectory"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.replay_buffer.truncate_last_trajectory()  # envs that ended early and started another
    model._last_obs = None  # learn() resets the envs
    return {
        "demo_episodes": len(successes),
        "demo_steps": steps,
        "demo_success_rate": float(np.mean(successes)),
    }


# --- callbacks ------------------------------------------------------------------------------------
def _make_callback(model, c: TrainConfig, run_dir: Path, meta: dict[str, Any], start_step: int):
    from stable_baselines3.common.callbacks import BaseCallback

    from eqrobot.rollout.evaluation import evaluate

    class EvalCheckpointCallback(BaseCallback):
        """Periodic evaluation + atomic checkpoint + tqdm bar with the current success rates."""

        def __init__(self):
            super().__init__()
            self.next_eval = (start_step // c.eval_freq + 1) * c.eval_freq if c.eval_freq else None
            self.last_eval: float | None = None
            self.last_eval_step = -1
            self.t0 = time.perf_counter()
            self.eval_time = 0.0
            self.steps0 = start_step
            self.bar = None
            self.eval_env = None

        def _on_training_start(self) -> None:
            if c.progress_bar:
                from tqdm.auto import tqdm

                self.bar = tqdm(
                    total=c.steps,
                    initial=self.model.num_timesteps,
                    unit="step",
                    dynamic_ncols=True,
                    mininterval=0.5 if sys.stderr.isatty() else 30.0,  # quiet in log files
                )
            if c.eval_freq and self.model.num_timesteps == 0 and start_step == 0:
                self.run_eval()

        def train_success(self) -> float | None:
            buf = getattr(self.model, "ep_success_buffer", None)
            return float(np.mean(buf)) if buf else None

        def run_eval(self) -> None:
            if self.eval_env is None:
                self.eval_env = make_env(c.env_id, env_kwargs_for(c, evaluation=True))
            t_eval = time.perf_counter()
            res = evaluate(self.model, c.env_id, c.eval_episodes, seed=c.seed + 10_000, env=self.eval_env)
            step = int(self.model.num_timesteps)
            elapsed = t_eval - self.t0 - self.eval_time  # training wall time, evaluations excluded
            row = {
                "step": step,
                "success_rate": res["success_rate"],
                "mean_return": res["mean_return"],
                "mean_length": res["mean_length"],
                "train_success_rate": self.train_success(),
                "wall_time_s": round(elapsed, 2),
                "train_steps_per_s": round((step - self.steps0) / max(elapsed, 1e-9), 2),
            }
            append_eval_row(run_dir / EVAL_CSV, row)
            self.last_eval, self.last_eval_step = res["success_rate"], step
            self.logger.record("eval/success_rate", res["success_rate"])
            self.logger.record("eval/mean_return", res["mean_return"])
            checkpoint(self.model, run_dir, c, meta, status="running")
            self.eval_time += time.perf_counter() - t_eval

        def _on_step(self) -> bool:
            n = self.model.num_timesteps
            if self.bar is not None:
                self.bar.update(n - self.bar.n)
                post = {}
                ts = self.train_success()
                if ts is not None:
                    post["success"] = f"{ts:.2f}"
                if self.last_eval is not None:
                    post["eval"] = f"{self.last_eval:.2f}"
                if post and n % 10 == 0:
                    self.bar.set_postfix(post, refresh=False)
            if self.next_eval is not None and n >= self.next_eval:
                self.next_eval = (n // c.eval_freq + 1) * c.eval_freq
                self.run_eval()
            return True

        def close(self) -> None:
            if self.bar is not None:
                self.bar.close()
            if self.eval_env is not None:
                self.eval_env.close()

    return EvalCheckpointCallback()


def append_eval_row(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=EVAL_COLUMNS)
        if new:
            w.writeheader()
        w.writerow({k: ("" if row.get(k) is None else row[k]) for k in EVAL_COLUMNS})
        f.flush()
        os.fsync(f.fileno())


def read_eval_csv(path: str | Path) -> list[dict[str, float]]:
    """Rows of a run's ``eval.csv`` as dicts of floats (empty cells -> nan)."""
    with open(path, newline="") as f:
        return [
            {k: float(v) if v != "" else float("nan") for k, v in row.items()} for row in csv.DictReader(f)
        ]


def write_state(run_dir: Path, **state: Any) -> None:
    state["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_bytes(run_dir / STATE_NAME, (json.dumps(state, indent=2) + "\n").encode())


def checkpoint(model, run_dir: Path, c: TrainConfig, meta: dict[str, Any], status: str) -> None:
    """model.zip (+ replay buffer) atomically, then state.json."""
    save_model(model, run_dir / MODEL_NAME, meta)
    if c.save_replay_buffer:
        save_replay_buffer(model, run_dir / BUFFER_NAME)
    extra = {k: v for k, v in meta.items() if k.startswith("demo_")}
    write_state(run_dir, status=status, num_timesteps=int(model.num_timesteps), total_steps=c.steps, **extra)


# --- entry point ----------------------------------------------------------------------------------
def train(config: TrainConfig) -> Path:
    """Train per ``config`` and return the run folder (see the module docstring for its contents)."""
    import torch

    import eqrobot  # noqa: F401

    if config.resume:
        run_dir = Path(config.resume)
        if not (run_dir / CONFIG_NAME).exists():
            raise FileNotFoundError(f"cannot resume {run_dir}: no {CONFIG_NAME} there (not a run folder?)")
        c = TrainConfig.load(run_dir / CONFIG_NAME)
        if config.steps is not None:
            c.steps = int(config.steps)
        c.progress_bar, c.resume = config.progress_bar, str(run_dir)
    else:
        c = resolve_config(config)
        run_dir = Path(c.out) / (c.run_name or default_run_name(c))
        if (run_dir / MODEL_NAME).exists():
            raise FileExistsError(
                f"{run_dir} already holds a run; pass resume={str(run_dir)!r} to continue it"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        c.run_name = run_dir.name
    c.save(run_dir / CONFIG_NAME)
    torch.set_num_threads(max(1, int(c.torch_threads)))
    meta = {"algo": c.algo, "policy": c.policy, "env_id": c.env_id, "config": c.to_dict()}

    venv = make_vec_env(c)
    tb_dir = str(run_dir / "tb") if _has_tensorboard() else None
    if c.resume and (run_dir / MODEL_NAME).exists():
        model = load_model(run_dir, env=venv, device=c.device, tensorboard_log=tb_dir)
        if c.save_replay_buffer and (run_dir / BUFFER_NAME).exists() and hasattr(model, "load_replay_buffer"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.load_replay_buffer(run_dir / BUFFER_NAME)
        reset = False
    else:
        model = build_model(c, venv, tb_dir)
        if c.demos:
            demo_info = fill_with_demos(model, c.demos, c.env_id)
            meta.update(demo_info)
            write_state(run_dir, status="running", num_timesteps=0, total_steps=c.steps, **demo_info)
        reset = True
    start_step = int(model.num_timesteps)
    callback = _make_callback(model, c, run_dir, meta, start_step)
    remaining = c.steps - start_step
    try:
        if remaining > 0:
            model.learn(remaining, callback=callback, reset_num_timesteps=reset, tb_log_name="run")
        if c.eval_freq and callback.last_eval_step != model.num_timesteps:
            if callback.model is None:
                callback.init_callback(model)
            callback.run_eval()
        checkpoint(model, run_dir, c, meta, status="finished")
    except KeyboardInterrupt:
        checkpoint(model, run_dir, c, meta, status="interrupted")
        raise
    finally:
        callback.close()
        venv.close()
    return run_dir


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        warnings.warn(
            "tensorboard is not installed: no TensorBoard logs (pip install tensorboard)", stacklevel=3
        )
        return False
    return True


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    return TrainConfig.from_dict(
        {k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(TrainConfig)}}
    )
