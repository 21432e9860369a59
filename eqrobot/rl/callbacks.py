"""The two SB3 callbacks :func:`eqrobot.rl.train.train` runs.

- :class:`RunEvalCallback`: SB3's ``EvalCallback`` (its evaluation loop, success buffer and logger
  records, dumped at the step they were measured), triggered at every multiple of ``eval_freq`` env
  steps (also across a resume, and with several envs) and at step 0, on the same seeded episodes each
  time; each result becomes an ``eval.csv`` row and goes to the ``on_eval`` hook.
- :class:`RunCallback`: what SB3 lacks: checkpoints written where model, replay buffer and step
  count agree (at the end of a rollout, after SB3 stored the step's transition; SB3's
  ``CheckpointCallback`` saves from ``on_step``, one transition short, in separate non-atomic files),
  the Ctrl-C stop, and a progress bar that shows success rates and stays quiet in log files.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback


class StopTraining(Exception):
    """Raised at a rollout end to leave ``learn()`` with everything stored (off-policy stop)."""


class StopSignal:
    """While active: the first SIGINT asks training to stop at the next consistent point, a second
    one raises KeyboardInterrupt at once. Only in the main thread (where Python delivers signals)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nCtrl-C: stopping at the next consistent step to write a checkpoint "
            "(Ctrl-C again: stop now, keeping the last checkpoint)",
            file=sys.stderr,
        )

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class RunCallback(BaseCallback):
    """Checkpoints at consistent points, the Ctrl-C / hook stop, the progress bar."""

    def __init__(self, config, save: Callable[[str], None], stop, progress: bool = True):
        super().__init__()
        self.config, self.save, self.stop, self.progress = config, save, stop, progress
        self.checkpoint_due = False
        self.stop_reason: str | None = None  # "interrupted" (Ctrl-C) or "stopped" (the on_eval hook)
        self.last_eval: float | None = None
        self.bar = None

    def _on_training_start(self) -> None:
        if self.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.config.steps,
                initial=self.model.num_timesteps,
                unit="step",
                dynamic_ncols=True,
                mininterval=0.5 if sys.stderr.isatty() else 30.0,  # quiet in log files
            )
        if self.checkpoint_due:  # the step-0 evaluation: the buffer holds only the demos, consistent
            self._checkpoint()

    def _stopping(self) -> bool:
        if self.stop.requested and self.stop_reason is None:
            self.stop_reason = "interrupted"
        return self.stop_reason is not None

    def _on_step(self) -> bool:
        if self.bar is not None:
            n = self.model.num_timesteps
            self.bar.update(n - self.bar.n)
            if n % 10 == 0:
                buf = self.model.ep_success_buffer
                post = {"success": f"{np.mean(buf):.2f}"} if buf else {}
                if self.last_eval is not None:
                    post["eval"] = f"{self.last_eval:.2f}"
                self.bar.set_postfix(post, refresh=False)
        # on-policy: the rollout buffer is not saved, so stopping mid-rollout loses nothing
        return not (self._stopping() and not hasattr(self.model, "replay_buffer"))

    def _on_rollout_end(self) -> None:
        if self._stopping():
            raise StopTraining  # train() writes the final checkpoint: all transitions are stored now
        if self.checkpoint_due and self.model.num_timesteps < self.config.steps:
            self._checkpoint()  # (at the total, train() writes the "finished" one next)

    def _checkpoint(self) -> None:
        self.save("running")
        self.checkpoint_due = False

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class RunEvalCallback(EvalCallback):
    """SB3's EvalCallback on fixed seeded episodes, at multiples of ``eval_freq`` env steps."""

    def __init__(
        self,
        config,
        eval_env,
        csv_path: Path,
        start_step: int,
        run: RunCallback,
        on_eval: Callable[[dict[str, Any]], bool | None] | None,
        write_row: Callable[[Path, dict[str, Any]], None],
    ):
        # eval_freq=1: SB3's own trigger counts callback calls; ours (_on_step) counts env steps
        super().__init__(eval_env, n_eval_episodes=config.eval_episodes, eval_freq=1, verbose=0)
        self.freq, self.seed, self.csv_path = config.eval_freq, config.seed + 10_000, csv_path
        self.next_eval = (start_step // self.freq + 1) * self.freq
        self.evaluate_at_start = start_step == 0
        self.run, self.on_eval, self.write_row = run, on_eval, write_row
        self.last_step = -1  # step of the latest evaluation (train() sets it from eval.csv on resume)
        self.t0, self.eval_time, self.steps0 = time.perf_counter(), 0.0, start_step
        self._episodes: list[dict[str, float]] = []

    def _init_callback(self) -> None:
        with warnings.catch_warnings():  # a SubprocVecEnv trains, a DummyVecEnv evaluates: intended
            warnings.filterwarnings("ignore", "Training and eval env are not of the same type")
            super()._init_callback()

    def _on_training_start(self) -> None:
        self.t0 = time.perf_counter()
        if self.evaluate_at_start and self.model.num_timesteps == 0:
            self.evaluate_now()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval and not self.run.stop.requested:
            self.next_eval = (self.num_timesteps // self.freq + 1) * self.freq
            self.evaluate_now()
        return True

    def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        super()._log_success_callback(locals_, globals_)
        if locals_["done"] and "episode" in locals_["info"]:  # Monitor's episode return and length
            self._episodes.append(locals_["info"]["episode"])

    def evaluate_now(self) -> None:
        """Evaluate at the model's current step: TensorBoard, eval.csv, the hook, a checkpoint due."""
        t = time.perf_counter()
        self.num_timesteps = int(self.model.num_timesteps)
        self._episodes = []
        self.eval_env.seed(self.seed)  # the same episodes at every evaluation
        super()._on_step()  # SB3: evaluate_policy, eval/* records, logger.dump(num_timesteps)
        step = self.num_timesteps
        elapsed = t - self.t0 - self.eval_time  # training wall time, evaluations excluded
        train_success = self.model.ep_success_buffer
        row = {
            "step": step,
            "success_rate": float(np.mean(self._is_success_buffer)) if self._is_success_buffer else None,
            "mean_return": float(np.mean([e["r"] for e in self._episodes])),
            "mean_length": float(np.mean([e["l"] for e in self._episodes])),
            "train_success_rate": float(np.mean(train_success)) if train_success else None,
            "wall_time_s": round(elapsed, 2),
            "train_steps_per_s": round((step - self.steps0) / max(elapsed, 1e-9), 2),
        }
        self.write_row(self.csv_path, row)
        self.last_step = step
        self.run.last_eval = row["success_rate"]
        self.run.checkpoint_due = True
        if self.on_eval is not None and self.on_eval(dict(row)) is False:
            self.run.stop_reason = self.run.stop_reason or "stopped"
        self.eval_time += time.perf_counter() - t
