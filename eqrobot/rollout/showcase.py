"""Oracle showcase for ``make demo``: every task solved by its scripted oracle, one GIF per task."""

from __future__ import annotations

import os

from eqrobot.envs.tasks import TASKS
from eqrobot.rollout.agents import resolve_agent
from eqrobot.rollout.episodes import Reset, make_episode_env, run_episodes
from eqrobot.rollout.evaluation import evaluate
from eqrobot.rollout.recording import save_gif


def _record_gif(env_id: str, path: str, seed: int, size=(320, 240), **env_kwargs) -> None:
    env_kwargs = {**env_kwargs, "render_width": size[0], "render_height": size[1]}
    vec = make_episode_env(env_id, env_kwargs, render_mode="rgb_array")
    try:
        # a frame every 2nd step of the 25 Hz control loop, 80 ms each: real time
        (episode,) = run_episodes(vec, resolve_agent("oracle", env_id), [Reset(seed)], frame_every=2)
    finally:
        vec.close()
    save_gif(episode.frames, path, fps=12.5)


def run_oracle_showcase(
    out_dir: str = "runs/showcase",
    episodes: int = 20,
    tasks=None,
    gif: bool = True,
    seed: int = 0,
    verbose: bool = True,
    **env_kwargs,
) -> list[dict]:
    """Run each task's oracle for ``episodes`` episodes and save one rollout GIF per task.

    Returns one row per task: ``task``, ``env_id``, ``success_rate``, ``mean_return``, ``steps_per_s``
    (env + oracle, no rendering), ``episodes``, ``gif`` (path or None). ``env_kwargs`` go to
    ``gymnasium.make`` (e.g. ``task_rotation_range=2.8973``). ``verbose`` prints the table.
    """
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for task in tasks or list(TASKS):
        env_id = f"eqrobot/{task}-v0"
        result = evaluate("oracle", env_id, episodes, seed, env_kwargs=env_kwargs)
        path = os.path.join(out_dir, f"oracle_{task}.gif") if gif else None
        if path:
            _record_gif(env_id, path, seed, **env_kwargs)
        rows.append(
            {
                "task": task,
                "env_id": env_id,
                "episodes": episodes,
                "success_rate": result["success_rate"],
                "mean_return": result["mean_return"],
                "steps_per_s": result["steps_per_second"],
                "gif": path,
            }
        )
    if verbose:
        print(format_rows(rows))
    return rows


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of :func:`run_oracle_showcase` rows."""
    lines = [f"{'task':<14}{'success':>9}{'mean return':>13}{'steps/s':>9}  gif", "-" * 60]
    for r in rows:
        lines.append(
            f"{r['task']:<14}{r['success_rate']:>9.2f}{r['mean_return']:>13.1f}"
            f"{r['steps_per_s']:>9.0f}  {r['gif'] or '-'}"
        )
    return "\n".join(lines)
