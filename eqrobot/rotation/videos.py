"""GIFs of one episode per task-rotation angle, for seeing what a rotation sweep measured.

The camera stays fixed in the world while the task turns about gravity (it follows world SE(3)
transforms only: :meth:`eqrobot.sim.simulator.Simulator.render`), so frames at +0 and +90 deg show
the scene rotated; every frame is labelled with its angle.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from eqrobot.rollout.agents import check_agent_fits, resolve_agent
from eqrobot.rollout.episodes import Reset, make_episode_env, run_episodes
from eqrobot.rollout.recording import save_gif
from eqrobot.rotation.splits import seed_for


def save_videos(
    policy: Any,
    env_id: str,
    angles_deg: Sequence[float],
    out_dir: str | os.PathLike,
    seed: int = 0,
    episode: int = 0,
    fps: int = 12,
    frame_skip: int = 2,
    env_kwargs: dict | None = None,
) -> list[Path]:
    """One GIF per task-rotation angle (same layout seed as the splits' episode ``episode``), named
    ``<env>_rot<angle>_<ok|fail>.gif``, each frame labelled with the angle."""
    if int(frame_skip) < 1:
        raise ValueError(f"frame_skip must be >= 1, got {frame_skip}")
    agent = resolve_agent(policy, env_id)
    out = Path(out_dir)
    vec = make_episode_env(env_id, env_kwargs, render_mode="rgb_array")
    paths = []
    try:
        env = vec.envs[0]
        check_agent_fits("policy", agent, env.observation_space, env.action_space)
        resets = [Reset(seed_for(seed, episode), {"task_rotation": float(np.radians(a))}) for a in angles_deg]
        for a, ep in zip(angles_deg, run_episodes(vec, agent, resets, frame_every=frame_skip), strict=True):
            tag = "ok" if ep.success else "fail"
            label = f"{env_id}  task rotation {a:+.0f} deg  ({tag})"
            paths.append(
                save_gif(ep.frames, out / f"{env_id.replace('/', '_')}_rot{a:+.0f}_{tag}.gif", fps, label)
            )
    except gym.error.Error as e:
        raise ValueError(f"{env_id}: cannot record videos ({e})") from e
    finally:
        vec.close()
    return paths
