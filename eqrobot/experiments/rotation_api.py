"""The rotation-evaluation pieces the sweep uses, from wherever they live.

The rotation code is moving from ``eqrobot.rl.rotation`` (+ ``rotation_splits``) to
``eqrobot.rotation`` with its episode loop in ``eqrobot.rollout.episodes``; this module gives the
sweep one set of names for either layout, so the Ray evaluation plays each episode with the very
loop ``eqrobot rotation`` uses. Once the move has landed everywhere, the fallback branch goes.
"""

from __future__ import annotations

try:  # the new layout
    from eqrobot.rollout.agents import resolve_agent as load_policy
    from eqrobot.rollout.episodes import Reset, make_episode_env, run_episodes
    from eqrobot.rotation.results import BinResult, RotationResult, jsonable, summarize_bins, wilson_interval
    from eqrobot.rotation.sim_gap import format_gap, simulator_equivariance_gap
    from eqrobot.rotation.splits import JOINT1_LIMIT_DEG, SPLITS, resolve_splits
    from eqrobot.rotation.sweep import _refused_bins as refused_bins
    from eqrobot.rotation.sweep import evaluate_rotation

    def play(env_id: str, env_kwargs: dict | None, policy, episodes: list) -> list[dict]:
        """One record (split, bin, episode, seed, success, return, length) per SplitEpisode."""
        vec = make_episode_env(env_id, env_kwargs, 1)
        try:
            done = run_episodes(vec, policy, [Reset(e.seed, e.options) for e in episodes])
        finally:
            vec.close()
        return [
            {
                "split": e.split,
                "bin": e.bin_index,
                "episode": e.episode,
                "seed": e.seed,
                "success": bool(ep.success),
                "return": ep.episode_return,
                "length": ep.length,
            }
            for ep, e in zip(done, episodes, strict=True)
        ]

except ImportError:  # eqrobot.rl.rotation (before the move)
    from eqrobot.rl.rotation import (
        JOINT1_LIMIT_DEG,
        SPLITS,
        BinResult,
        RotationResult,
        evaluate_rotation,
        format_gap,
        load_policy,
        simulator_equivariance_gap,
        wilson_interval,
    )
    from eqrobot.rl.rotation import _check_options as refused_bins
    from eqrobot.rl.rotation import _jsonable as jsonable
    from eqrobot.rl.rotation import _summarize as summarize_bins
    from eqrobot.rl.rotation_splits import resolve_splits

    def play(env_id: str, env_kwargs: dict | None, policy, episodes: list) -> list[dict]:
        """One record (split, bin, episode, seed, success, return, length) per SplitEpisode."""
        from eqrobot.rl import rotation

        vec = rotation._make_vec_env(env_id, env_kwargs, 1)
        try:
            return rotation._rollout_episodes(vec, policy, episodes, 1)
        finally:
            vec.close()


__all__ = [
    "JOINT1_LIMIT_DEG",
    "SPLITS",
    "BinResult",
    "RotationResult",
    "evaluate_rotation",
    "format_gap",
    "jsonable",
    "load_policy",
    "play",
    "refused_bins",
    "resolve_splits",
    "simulator_equivariance_gap",
    "summarize_bins",
    "wilson_interval",
]
