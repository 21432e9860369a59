"""Evaluate a policy on an eqrobot env: success rate, returns, episode lengths."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np


def evaluate(
    model,
    env_id: str,
    episodes: int = 20,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    deterministic: bool = True,
    env=None,
) -> dict[str, Any]:
    """Run ``episodes`` episodes and report how the policy did.

    :param model: anything with SB3's ``predict(obs, deterministic=...)`` (an SB3 model, an
        ``OraclePolicy``), or a checkpoint zip / run folder path (loaded with
        :func:`eqrobot.rl.checkpoint.load_model`).
    :param seed: episode ``i`` resets with ``seed + i``, so two policies see the same scenes.
    :param env_kwargs: passed to ``gymnasium.make`` (e.g. ``task_rotation_range``).
    :param env: reuse an already built env (then ``env_id``/``env_kwargs`` only label the result).
    :return: ``success_rate`` (``info["is_success"]`` at each episode's last step), ``mean_return``,
        ``std_return``, ``mean_length``, ``episodes``, ``seed``, ``env_id``, ``steps_per_second``.
    """
    import gymnasium as gym

    import eqrobot  # noqa: F401

    if isinstance(model, (str, Path)):
        from eqrobot.rl.checkpoint import load_model

        model = load_model(model, env_id=env_id)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    own_env = env is None
    if own_env:
        if env_id not in gym.registry:
            from eqrobot.envs import ENV_IDS

            raise ValueError(f"unknown env {env_id!r}; eqrobot envs: {', '.join(ENV_IDS)}")
        env = gym.make(env_id, **(env_kwargs or {}))
    successes, returns, lengths = [], [], []
    start = time.perf_counter()
    try:
        for ep in range(episodes):
            obs, info = env.reset(seed=seed + ep)
            done, ret, length = False, 0.0, 0
            while not done:
                action, _ = model.predict(obs, deterministic=deterministic)
                obs, reward, terminated, truncated, info = env.step(action)
                ret += float(reward)
                length += 1
                done = terminated or truncated
            successes.append(bool(info.get("is_success", False)))
            returns.append(ret)
            lengths.append(length)
    finally:
        if own_env:
            env.close()
    elapsed = time.perf_counter() - start
    return {
        "env_id": env_id,
        "episodes": episodes,
        "seed": seed,
        "success_rate": float(np.mean(successes)),
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "mean_length": float(np.mean(lengths)),
        "steps_per_second": float(sum(lengths) / max(elapsed, 1e-9)),
    }


def format_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A small fixed-width text table of result dicts (for the CLI)."""
    if not rows:
        return "(no results)"
    columns = columns or list(rows[0])

    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, sep, *body])
