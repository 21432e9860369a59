"""A drop-in ``HerReplayBuffer`` whose ``sample`` returns SB3's batch, bit for bit, for less.

SB3's ``HerReplayBuffer.sample`` scans ``ep_length`` (``buffer_size x n_envs`` entries: 200k in the
presets) for valid transitions on every call, gathers each observation key four times (real and
virtual rows, observation and next observation), copies every array into a new tensor and
concatenates the real and virtual halves. :class:`FastHerReplayBuffer` keeps the valid indices
until ``ep_length`` changes (only when an episode ends or an old one is overwritten), gathers each
key once in the output order (real rows, then virtual ones), relabels the virtual rows in place
and hands the fresh arrays to torch without another copy.

The random draws are SB3's, in SB3's order (``np.random.choice`` over the valid indices is
``valid[np.random.randint(0, len(valid), size)]``, then the goal draws of ``_sample_goals``), so
under the same NumPy seed the batch is identical (tests/rl/test_her.py). With a ``VecNormalize``
env it defers to SB3's ``sample``. Pass it as ``replay_buffer_class`` to any SB3 off-policy
algorithm, exactly like ``HerReplayBuffer``.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples

__all__ = ["FastHerReplayBuffer"]


class FastHerReplayBuffer(HerReplayBuffer):
    """``HerReplayBuffer`` with a cheaper, identical ``sample`` (see the module docstring)."""

    _valid_indices: np.ndarray | None = None

    def add(
        self,
        obs: dict[str, np.ndarray],
        next_obs: dict[str, np.ndarray],
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        if np.any(self.ep_length[self.pos] > 0):  # SB3 is about to invalidate an overwritten episode
            self._valid_indices = None
        super().add(obs, next_obs, action, reward, done, infos)

    def _compute_episode_length(self, env_idx: int) -> None:  # an episode ended (or was truncated)
        self._valid_indices = None
        super()._compute_episode_length(env_idx)

    def _valid(self) -> np.ndarray:
        if self._valid_indices is None:
            self._valid_indices = np.flatnonzero(self.ep_length > 0)
        return self._valid_indices

    def sample(self, batch_size: int, env=None) -> DictReplayBufferSamples:  # type: ignore[override]
        if env is not None:  # VecNormalize: SB3 normalises the real and virtual halves itself
            return super().sample(batch_size, env)
        valid = self._valid()
        if not len(valid):
            return super().sample(batch_size, env)  # raises SB3's "before the end of the first episode"
        sampled = valid[np.random.randint(0, len(valid), size=batch_size)]  # np.random.choice's draw
        batch_indices, env_indices = np.unravel_index(sampled, self.ep_length.shape)
        n_virtual = int(self.her_ratio * batch_size)
        n_real = batch_size - n_virtual
        # SB3 takes the first n_virtual draws as virtual and returns the real rows first
        b = np.concatenate((batch_indices[n_virtual:], batch_indices[:n_virtual]))
        e = np.concatenate((env_indices[n_virtual:], env_indices[:n_virtual]))
        obs = {key: values[b, e] for key, values in self.observations.items()}
        next_obs = {key: values[b, e] for key, values in self.next_observations.items()}
        bv, ev = batch_indices[:n_virtual], env_indices[:n_virtual]
        infos = copy.deepcopy(self.infos[bv, ev]) if self.copy_info_dict else [{} for _ in range(n_virtual)]
        new_goals = self._sample_goals(bv, ev)
        obs["desired_goal"][n_real:] = new_goals
        next_obs["desired_goal"][n_real:] = new_goals
        if self.env is None:
            raise ValueError(
                "FastHerReplayBuffer needs its VecEnv (env=...) to compute the relabelled rewards"
            )
        virtual_rewards = self.env.env_method(
            "compute_reward", next_obs["achieved_goal"][n_real:], new_goals, infos, indices=[0]
        )[0].astype(np.float32)
        rewards = np.concatenate((self.rewards[b[:n_real], e[:n_real]], virtual_rewards)).reshape(-1, 1)
        dones = (self.dones[b, e] * (1 - self.timeouts[b, e])).reshape(-1, 1)
        return DictReplayBufferSamples(
            observations={key: self._tensor(v) for key, v in obs.items()},
            actions=self._tensor(self.actions[b, e]),
            next_observations={key: self._tensor(v) for key, v in next_obs.items()},
            dones=self._tensor(dones),
            rewards=self._tensor(rewards),
        )

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        """``to_torch`` without its copy: every array here is freshly gathered."""
        return torch.as_tensor(array, device=self.device)
