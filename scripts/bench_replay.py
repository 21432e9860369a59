"""Replay sampling cost: SB3's HerReplayBuffer vs eqrobot's FastHerReplayBuffer, plain and augmented.

All four buffers get the same random-action transitions of one env (buffer size as the presets,
200k), then ``sample(batch)`` is timed in interleaved rounds (the fastest round per buffer is kept,
thread CPU time). Prints each buffer's time and the fast/SB3 ratio for the plain and the so2-augmented
pair, and writes JSON.

    python scripts/bench_replay.py [--env Push] [--transitions 15000] [--batch 256] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from stable_baselines3 import HerReplayBuffer  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv  # noqa: E402

import eqrobot  # noqa: E402, F401
from eqrobot.rl.augmentation import (  # noqa: E402
    AugmentedFastHerReplayBuffer,
    AugmentedHerReplayBuffer,
    ReplayAugmentationMixin,
)
from eqrobot.rl.her import FastHerReplayBuffer  # noqa: E402
from eqrobot.rl.presets import HER_KWARGS  # noqa: E402

BUFFERS = (HerReplayBuffer, FastHerReplayBuffer, AugmentedHerReplayBuffer, AugmentedFastHerReplayBuffer)
PAIRS = {"plain": ("HerReplayBuffer", "FastHerReplayBuffer"),
         "so2": ("AugmentedHerReplayBuffer", "AugmentedFastHerReplayBuffer")}  # fmt: skip


def fill(env_id: str, transitions: int, buffer_size: int) -> dict:
    venv = DummyVecEnv([lambda: gym.make(env_id)])
    buffers = {}
    for cls in BUFFERS:
        kw = dict(env=venv, **HER_KWARGS)
        if issubclass(cls, ReplayAugmentationMixin):
            kw.update(augment="so2", augment_kwargs={"seed": 0})
        buffers[cls.__name__] = cls(buffer_size, venv.observation_space, venv.action_space, **kw)
    venv.seed(0)
    obs = venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(transitions):
        action = rng.uniform(-1, 1, (1, *venv.action_space.shape)).astype(np.float32)
        next_obs, reward, done, infos = venv.step(action)
        # an episode's last transition stores its terminal observation, not the next reset's
        stored = {k: v[None] for k, v in infos[0]["terminal_observation"].items()} if done[0] else next_obs
        for buffer in buffers.values():
            buffer.add(obs, stored, action, reward, done, infos)
        obs = next_obs
    return buffers


def time_sampling(buffers: dict, batch: int, calls: int, rounds: int) -> dict[str, float]:
    """Milliseconds per ``sample(batch)``: the fastest of ``rounds`` interleaved rounds."""
    best = {name: float("inf") for name in buffers}
    for _ in range(rounds):
        for name, buffer in buffers.items():
            buffer.sample(batch)  # warm
            t0 = time.thread_time()
            for _ in range(calls):
                buffer.sample(batch)
            best[name] = min(best[name], (time.thread_time() - t0) / calls * 1e3)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="Push", help="task name (eqrobot/<env>-v0)")
    p.add_argument("--transitions", type=int, default=15_000, help="transitions added before timing")
    p.add_argument("--buffer-size", type=int, default=200_000, help="buffer capacity (the presets' 200k)")
    p.add_argument("--batch", type=int, default=256, help="sample size")
    p.add_argument("--calls", type=int, default=200, help="timed samples per round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the fastest is kept)")
    p.add_argument("--out", default=None, help="JSON output path")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    buffers = fill(f"eqrobot/{a.env}-v0", a.transitions, a.buffer_size)
    ms = time_sampling(buffers, a.batch, a.calls, a.rounds)
    for name, value in ms.items():
        print(f"{name:30s} {value:.3f} ms per sample({a.batch})")
    ratios = {pair: ms[sb3] / ms[fast] for pair, (sb3, fast) in PAIRS.items()}
    for pair, ratio in ratios.items():
        print(f"{pair}: FastHer-based buffer {ratio:.2f}x faster than SB3's")
    if a.out:
        result = {"config": vars(a), "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                  "load_avg": list(os.getloadavg())}, "ms_per_sample": ms, "speedup": ratios}  # fmt: skip
        with open(a.out, "w") as f:
            json.dump(result, f, indent=2)
        print("wrote", a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
