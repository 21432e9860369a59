"""``train(config) -> run_dir``: SB3 training with presets, run folders, evaluation and safe checkpoints.

A run folder holds::

    config.json          the resolved TrainConfig (presets filled in)
    state.json           status (running / finished / interrupted / stopped), num_timesteps, and
                         which checkpoint is current (replaced atomically: the commit point)
    checkpoints/<step>/  the current checkpoint: model.zip (plain SB3 zip + eqrobot.json),
                         replay_buffer.pkl (off-policy, for exact resume), checkpoint.json
    eval.csv             step, success_rate, mean_return, ... at every evaluation
    tb/                  TensorBoard logs (SB3's logger; eval/* logged at the step they were measured)

Everything is validated, and the env, model and demonstrations built, before the folder is created;
a run that fails before its first checkpoint removes its folder again. Evaluation (and a checkpoint)
happen at step 0, every ``eval_freq`` env steps and at the end. Ctrl-C stops at the next point where
model, replay buffer and step count agree, writes a checkpoint there, marks the run ``interrupted``
and raises :class:`TrainingInterrupted`; a second Ctrl-C stops at once and keeps the last checkpoint.
``resume`` continues a run folder to its (possibly raised) ``steps`` total.

``train(config, on_eval=fn)`` calls ``fn(row)`` after every evaluation with the ``eval.csv`` row (a
dict: ``step``, ``success_rate``, ``mean_return``, ``wall_time_s``, ...); if ``fn`` returns False,
training stops there (checkpoint written, status ``stopped``). A Ray Tune trial reports from it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import math
import shutil
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from eqrobot.rl.checkpoint import (  # the eval.csv helpers are used (and patched in tests) from here
    EVAL_CSV,
    append_eval_row,
    commit_state,
    drop_eval_rows_after,
    load_replay_buffer,
    read_eval_csv,
    write_checkpoint,
)
from eqrobot.rl.config import AUGMENTATIONS, OFF_POLICY_ALGOS, TrainConfig, check_kwargs
from eqrobot.rl.presets import HER_KWARGS, get_preset, task_of
from eqrobot.rollout.checkpoints import CONFIG_NAME, algo_classes, checkpoint_folder, load_model, read_state

RESERVED_HYPERPARAMS = {"policy", "env", "seed", "tensorboard_log", "policy_kwargs", "verbose", "device"}
"""Algorithm arguments eqrobot sets from the config itself (``--hp`` cannot set them)."""
EXTRA_HYPERPARAMS = {"action_noise_sigma": float}
"""eqrobot's own ``hyperparams`` keys: ``action_noise_sigma`` = isotropic Gaussian exploration noise."""
RESUMABLE_FIELDS = {"steps", "resume", "progress_bar", "torch_threads", "device", "verbose"}
"""Fields a resumed run may change; the others come from the run's config.json."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`train`; the message says what was saved. ``run_dir`` / ``step``: the run
    folder (None if it was removed) and the step of its checkpoint (None: none was written)."""

    def __init__(self, message: str, run_dir: Path | None, step: int | None):
        super().__init__(message)
        self.run_dir, self.step = run_dir, step

    def __str__(self) -> str:
        return str(self.args[0])


# --- config resolution --------------------------------------------------------------------------
def check_names(env_id: str, algo: str, policy: str) -> None:
    """Raise ValueError naming the valid choices for an unknown env, algo or policy."""
    import gymnasium as gym

    from eqrobot.envs import ENV_IDS
    from eqrobot.rl.config import ALGOS, POLICIES

    if algo not in ALGOS:
        raise ValueError(f"unknown algo {algo!r}; valid: {', '.join(ALGOS)}")
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; valid: {', '.join(POLICIES)}")
    if env_id not in gym.registry or env_id not in ENV_IDS:
        raise ValueError(f"unknown env {env_id!r}; valid: {', '.join(ENV_IDS)}")


def resolve_config(config: TrainConfig) -> TrainConfig:
    """A copy of ``config`` with every ``None`` filled from the preset and overrides merged in.

    Raises ValueError (naming the field or key and what is expected) for anything that would fail
    later: ranges, unknown names, hyperparameters and policy kwargs checked against the signatures
    of the algorithm and policy classes."""
    config.check()
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
    cls = algo_classes()[c.algo]
    check_kwargs(cls.__init__, c.hyperparams, "--hp", reserved=RESERVED_HYPERPARAMS, extra=EXTRA_HYPERPARAMS)
    hp = {**preset.hyperparams, **c.hyperparams}
    if c.demos and "learning_starts" not in c.hyperparams and "learning_starts" in hp:
        hp["learning_starts"] = 0  # the demonstrations replace the random warm-up data
    first_episode_end = _episode_steps(c.env_id) * c.n_envs  # num_timesteps counts all envs' steps
    if c.her and not c.demos and hp.get("learning_starts", 0) < first_episode_end:
        # HER samples whole episodes: learning before the first one ends is an SB3 error
        hp["learning_starts"] = first_episode_end
    if "buffer_size" in hp:  # no bigger than the run needs: checkpoints pickle the whole buffer
        hp["buffer_size"] = int(min(hp["buffer_size"], c.steps + c.demos * _episode_steps(c.env_id) + 1000))
    c.hyperparams = hp
    merged = {**preset.policy_kwargs, **c.policy_kwargs}
    if "net_kwargs" in preset.policy_kwargs and isinstance(c.policy_kwargs.get("net_kwargs"), dict):
        # one level deeper: passing net_kwargs={"vector_channels": 8} keeps the preset's other net options
        merged["net_kwargs"] = {**preset.policy_kwargs["net_kwargs"], **c.policy_kwargs["net_kwargs"]}
    elif merged.get("net", "equivariant") != "equivariant" and "net_kwargs" not in c.policy_kwargs:
        merged.pop("net_kwargs", None)  # the preset's net options are EquivariantNet's
    c.policy_kwargs = merged
    policy_cls = cls.policy_aliases[_policy_name(c)]
    check_kwargs(policy_cls.__init__, c.policy_kwargs, "--policy-kwarg")
    return c


def _policy_name(c: TrainConfig) -> str:
    return "EquivariantPolicy" if c.policy == "equivariant" else "MultiInputPolicy"


def _episode_steps(env_id: str) -> int:
    import gymnasium as gym

    return int(gym.spec(env_id).max_episode_steps or 1000)


def default_run_name(c: TrainConfig) -> str:
    task, dense = task_of(c.env_id)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{task}{'Dense' if dense else ''}-{c.algo}-{c.policy}-s{c.seed}-{stamp}"


def resume_config(config: TrainConfig) -> TrainConfig:
    """The saved config of ``config.resume`` with the fields a resume may change taken from ``config``."""
    run_dir = Path(config.resume)
    if not (run_dir / CONFIG_NAME).exists():
        raise FileNotFoundError(f"cannot resume {run_dir}: no {CONFIG_NAME} there (not a run folder?)")
    saved = TrainConfig.load(run_dir / CONFIG_NAME)
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        given = getattr(config, f.name)
        if (
            f.name not in RESUMABLE_FIELDS
            and given != getattr(defaults, f.name)
            and given != getattr(saved, f.name)
        ):
            raise ValueError(
                f"resume continues {run_dir} with its saved config; {f.name}={given!r} differs from its "
                f"{getattr(saved, f.name)!r} (a resume may change: {', '.join(sorted(RESUMABLE_FIELDS))})"
            )
    c = dataclasses.replace(saved, resume=str(run_dir), progress_bar=config.progress_bar)
    for name in ("torch_threads", "device", "verbose"):
        setattr(c, name, getattr(config, name))
    if config.steps is not None:
        c.steps = int(config.steps)
    c.check()
    return c


# --- envs and models ------------------------------------------------------------------------------
def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None):
    """Build one env; module-level (picklable) so SubprocVecEnv workers can call it (they import
    this module, hence ``eqrobot``, which registers the ids)."""
    import gymnasium as gym

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


def make_vec_env(c: TrainConfig, evaluation: bool = False):
    """The training VecEnv (``n_envs``, ``vec_env``), or the one-env evaluation VecEnv."""
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    factory = functools.partial(make_env, c.env_id, env_kwargs_for(c, evaluation))
    if evaluation:
        return sb3_make_vec_env(factory, n_envs=1, seed=c.seed + 10_000, vec_env_cls=DummyVecEnv)
    cls = SubprocVecEnv if c.vec_env == "subproc" else DummyVecEnv
    return sb3_make_vec_env(factory, n_envs=c.n_envs, seed=c.seed, vec_env_cls=cls)


def build_model(c: TrainConfig, venv, tb_dir: str | None):
    """A new SB3 model for a resolved config."""
    from stable_baselines3.common.buffers import DictReplayBuffer
    from stable_baselines3.common.noise import NormalActionNoise

    from eqrobot.rl.augmentation import augmented_buffer_class
    from eqrobot.rl.her import FastHerReplayBuffer

    hp = dict(c.hyperparams)
    sigma = hp.pop("action_noise_sigma", None)
    if sigma:
        dim = venv.action_space.shape[0]
        hp["action_noise"] = NormalActionNoise(np.zeros(dim), np.full(dim, float(sigma)))
    if c.her:  # SB3's buffer, sampled for less (eqrobot/rl/her.py)
        hp["replay_buffer_class"] = FastHerReplayBuffer
        hp["replay_buffer_kwargs"] = {**HER_KWARGS, **(hp.get("replay_buffer_kwargs") or {})}
    if c.augment is not None:  # after HER: the augmented buffer relabels first, then transforms
        base = hp.get("replay_buffer_class") or DictReplayBuffer
        hp["replay_buffer_class"] = augmented_buffer_class(base)
        hp["replay_buffer_kwargs"] = {**(hp.get("replay_buffer_kwargs") or {}), "augment": c.augment}
    return algo_classes()[c.algo](
        _policy_name(c),
        venv,
        seed=c.seed,
        tensorboard_log=tb_dir,
        policy_kwargs=copy.deepcopy(c.policy_kwargs),
        verbose=c.verbose,
        device=c.device,
        **hp,
    )


def restart_replay_buffer(model, c: TrainConfig) -> dict[str, Any]:
    """Refill a resumed off-policy model whose checkpoint holds no replay buffer (the run was made
    with ``save_replay_buffer=False``): its buffer starts empty, so the demonstrations go back in
    (the same oracle episodes as at the start), and without demonstrations learning waits until
    the resumed run has collected what a new run would before its first update (HER samples whole
    episodes; SB3 cannot sample from an empty buffer). What the run had collected before is lost;
    ``state.json`` says so (``replay_buffer_restarted_at``)."""
    info: dict[str, Any] = {"replay_buffer_restarted_at": int(model.num_timesteps)}
    if c.demos:
        info.update(fill_with_demos(model, c.demos, c.env_id))
    else:
        first_episode_end = _episode_steps(c.env_id) * c.n_envs
        warmup = max(int(c.hyperparams.get("learning_starts", 0)), first_episode_end if c.her else 1)
        model.learning_starts = int(model.num_timesteps) + warmup
    return info


def fill_with_demos(model, episodes: int, env_id: str) -> dict[str, float]:
    """Put ``episodes`` oracle episodes into ``model.replay_buffer`` (whole episodes, all envs),
    through the buffer's public ``add`` (plain and HER buffers alike).

    Oracle actions are limited like the policy's (vectors to the unit ball, scalars to [-1, 1]).
    The demo steps do not count in ``model.num_timesteps``; they are reported separately.
    """
    from eqrobot.envs.oracles import OraclePolicy
    from eqrobot.policies.distributions import limit_action

    venv = model.get_env()
    spec = venv.get_attr("geometry_spec", [0])[0]  # from the env: wrappers may rebuild the space
    oracle = OraclePolicy(venv.envs[0] if hasattr(venv, "envs") else spec, task=task_of(env_id)[0])
    buffer = model.replay_buffer
    n = venv.num_envs
    rounds = math.ceil(episodes / n)
    finished = np.zeros(n, dtype=int)
    successes, steps = [], 0
    obs = venv.reset()
    while finished.min() < rounds:
        actions, _ = oracle.predict(obs)
        actions = limit_action(np.asarray(actions, dtype=np.float32), spec.action)
        new_obs, rewards, dones, infos = venv.step(actions)
        next_obs = copy.deepcopy(new_obs)  # the VecEnv already reset finished envs: store their last obs
        for i, done in enumerate(dones):
            if done and infos[i].get("terminal_observation") is not None:
                for key in next_obs:
                    next_obs[key][i] = infos[i]["terminal_observation"][key]
        buffer.add(obs, next_obs, model.policy.scale_action(actions), rewards, dones, infos)
        obs = new_obs
        steps += n
        for i, done in enumerate(dones):
            if done:
                finished[i] += 1
                successes.append(bool(infos[i].get("is_success", False)))
    if hasattr(buffer, "truncate_last_trajectory"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            buffer.truncate_last_trajectory()  # envs that ended early and started another
    return {
        "demo_episodes": len(successes),
        "demo_steps": steps,
        "demo_success_rate": float(np.mean(successes)),
    }


# --- entry point ----------------------------------------------------------------------------------
def train(config: TrainConfig, on_eval: Callable[[dict[str, Any]], bool | None] | None = None) -> Path:
    """Train per ``config`` and return the run folder (see the module docstring for its contents
    and for ``on_eval``). Raises ValueError / FileExistsError / FileNotFoundError before anything is
    written, :class:`TrainingInterrupted` on Ctrl-C."""
    import torch

    from eqrobot.rl.callbacks import RunCallback, RunEvalCallback, StopSignal, StopTraining

    if config.resume:
        c = resume_config(config)
        run_dir, created = Path(c.resume), False
        folder = checkpoint_folder(run_dir)
    else:
        c = resolve_config(config)
        run_dir, created, folder = Path(c.out) / (c.run_name or default_run_name(c)), True, None
        if run_dir.exists() and any(run_dir.iterdir()):
            raise FileExistsError(
                f"{run_dir} already holds a run; pass resume={str(run_dir)!r} to continue it"
            )
        c.run_name = run_dir.name
    torch.set_num_threads(max(1, int(c.torch_threads)))
    meta = {"algo": c.algo, "policy": c.policy, "env_id": c.env_id, "config": c.to_dict()}
    state = {"status": "running", "total_steps": c.steps}
    last_saved: int | None = None
    stop = StopSignal()
    venv = eval_env = model = None
    try:
        try:
            venv = make_vec_env(c)
        except (TypeError, ValueError) as e:  # the env refused its kwargs
            raise ValueError(
                f"cannot make {c.env_id} with env_kwargs {env_kwargs_for(c)} (--env-kwarg): {e}"
            ) from e
        tb_dir = str(run_dir / "tb") if _has_tensorboard() else None
        if folder is not None:
            model = load_model(folder, env=venv, device=c.device, tensorboard_log=tb_dir)
            state.update({k: v for k, v in (read_state(run_dir) or {}).items() if k.startswith("demo_")})
            if c.save_replay_buffer:
                load_replay_buffer(model, folder)
            elif c.algo in OFF_POLICY_ALGOS:
                state.update(restart_replay_buffer(model, c))
            last_saved = int(model.num_timesteps)
            drop_eval_rows_after(run_dir / EVAL_CSV, last_saved)
        else:
            model = build_model(c, venv, tb_dir)
            if c.demos:
                state.update(fill_with_demos(model, c.demos, c.env_id))
        meta.update({k: v for k, v in state.items() if k.startswith("demo_")})
        eval_env = make_vec_env(c, evaluation=True) if c.eval_freq else None
        run_dir.mkdir(parents=True, exist_ok=True)  # everything is built: now the folder
        c.save(run_dir / CONFIG_NAME)

        def save(status: str) -> None:
            nonlocal last_saved
            state["status"] = status
            write_checkpoint(run_dir, model, meta, state, save_buffer=c.save_replay_buffer)
            last_saved = int(model.num_timesteps)

        start = int(model.num_timesteps)
        run_cb = RunCallback(c, save, stop, progress=c.progress_bar)
        callbacks = [run_cb]
        eval_cb = None
        if eval_env is not None:
            eval_cb = RunEvalCallback(
                c, eval_env, run_dir / EVAL_CSV, start, run_cb, on_eval, append_eval_row
            )
            if (run_dir / EVAL_CSV).exists() and folder is not None:
                rows = read_eval_csv(run_dir / EVAL_CSV)
                eval_cb.last_step = int(rows[-1]["step"]) if rows else -1
            callbacks.insert(0, eval_cb)
        status = "finished"
        with stop:
            try:
                model.learn(
                    max(c.steps - start, 0),
                    callback=callbacks,
                    reset_num_timesteps=folder is None,
                    tb_log_name="run",
                )
            except StopTraining:
                pass
            if run_cb.stop_reason:
                status = run_cb.stop_reason
            elif eval_cb is not None and eval_cb.last_step != model.num_timesteps:
                eval_cb.evaluate_now()
                status = run_cb.stop_reason or status
            save(status)
    except KeyboardInterrupt as e:  # Ctrl-C outside learn(), or a second one
        raise _interrupted(run_dir, created, last_saved) from e
    except BaseException as e:
        if created and last_saved is None:
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing to resume: leave no half-made folder
        elif last_saved is not None:  # say so in state.json, which would otherwise still say "running"
            failed = {**(read_state(run_dir) or {}), "status": "failed", "error": f"{type(e).__name__}: {e}"}
            commit_state(run_dir, failed)
        raise
    finally:
        for env in (eval_env, venv):
            if env is not None:
                with contextlib.suppress(Exception):
                    env.close()
    if status == "interrupted":
        raise TrainingInterrupted(
            f"checkpoint at step {last_saved} written to {run_dir}; "
            f"continue with: eqrobot train --resume {run_dir}",
            run_dir,
            last_saved,
        )
    return run_dir


def _interrupted(run_dir: Path, created: bool, last_saved: int | None) -> TrainingInterrupted:
    """Ctrl-C where no consistent checkpoint could be written: say what the run folder holds."""
    if last_saved is None:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
            return TrainingInterrupted(
                f"interrupted before the first checkpoint: nothing saved ({run_dir} removed)", None, None
            )
        return TrainingInterrupted(
            f"interrupted before a new checkpoint: {run_dir} is as it was", run_dir, None
        )
    state = read_state(run_dir) or {}
    commit_state(run_dir, {**state, "status": "interrupted"})
    return TrainingInterrupted(
        f"stopped before a new checkpoint was complete: kept the step-{last_saved} checkpoint in "
        f"{run_dir}; continue with: eqrobot train --resume {run_dir}",
        run_dir,
        last_saved,
    )


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        warnings.warn(
            "tensorboard is not installed: no TensorBoard logs (pip install tensorboard)", stacklevel=3
        )
        return False
    return True
