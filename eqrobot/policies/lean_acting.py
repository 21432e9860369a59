"""Acting at batch 1 without SB3's per-call overhead, the same actions bit for bit.

SB3 acts once per env step through ``policy.predict``: ``obs_to_tensor`` deep-copies the observation
dict and checks each key, the net runs under ``no_grad``, and ``policy.device`` walks every
parameter to find the first one. At batch 1 that bookkeeping is a third of the call.

* :func:`first_parameter` / :func:`parameter_device`: the first parameter found once, read back
  from its module each time (SB3's ``device``; eqrobot's dtype look-ups).
* :func:`lean_predict`: ``BasePolicy.predict`` for Dict observations of numpy arrays, with the
  arrays copied straight into tensors and the net under ``torch.inference_mode``.
* :class:`LeanPredict`: :func:`lean_predict` as a stock SB3 policy's ``predict`` (the MLP baseline;
  set by :class:`~eqrobot.policies.offpolicy.IsotropicExplorationMixin`), so throughput ratios
  between the policies compare networks, not bookkeeping. eqrobot's own policies call it from
  ``SpecPolicyMixin.predict``.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.utils import get_device
from torch import nn


def first_parameter(module: nn.Module) -> nn.Parameter | None:
    """``next(module.parameters(), None)`` without walking the module tree on every call.

    SB3's ``device`` and our dtype look-ups call it several times per env step, and the walk visits
    every submodule (~40 us for an actor). Where the parameter lives (its module and name) is found
    once and kept in ``module.__dict__`` (not a registered attribute: no state-dict change); reading
    it from that module's ``_parameters`` each time returns the current tensor, also after
    ``.to()``/``.double()`` replaced it."""
    where = module.__dict__.get("_first_parameter_at")
    if where is not None:
        param = where[0]._parameters.get(where[1])
        if param is not None:
            return param
    for owner in module.modules():
        for name, param in owner._parameters.items():
            if param is not None:
                module.__dict__["_first_parameter_at"] = (owner, name)
                return param
    return None


def parameter_device(module: nn.Module) -> torch.device:
    """SB3's ``BaseModel.device``: the first parameter's device, else ``cpu``."""
    param = first_parameter(module)
    return get_device("cpu") if param is None else param.device


def dict_obs_to_tensor(policy, observation) -> tuple[dict[str, torch.Tensor], bool] | None:
    """SB3's ``policy.obs_to_tensor`` for a dict of numpy arrays whose keys are the policy's Dict
    observation space's (flat Box entries only) and whose shapes are each key's shape (one
    observation) or a batch of them: ``(tensors, vectorized)``; None for anything else. Like SB3 it
    copies the arrays (``torch.tensor``), keeps their dtype and adds the batch axis."""
    if not isinstance(observation, dict):
        return None
    shapes = policy.__dict__.get("_obs_shapes")
    if shapes is None:
        space = policy.observation_space
        ok = isinstance(space, spaces.Dict) and all(
            isinstance(s, spaces.Box) and len(s.shape) == 1 for s in space.spaces.values()
        )  # flat boxes only: no image transposes
        shapes = policy.__dict__["_obs_shapes"] = {k: s.shape for k, s in space.spaces.items()} if ok else {}
    if not shapes or len(observation) != len(shapes):
        return None
    device, out, vectorized_env = parameter_device(policy), {}, False
    for key, obs in observation.items():
        shape = shapes.get(key)
        if shape is None or not isinstance(obs, np.ndarray):
            return None
        if obs.shape != shape:
            if obs.shape[1:] != shape:
                return None  # SB3 raises its own error for this
            vectorized_env = True
        out[key] = torch.tensor(obs.reshape((-1, *shape)), device=device)
    return out, vectorized_env


def lean_predict(policy, observation, state=None, deterministic: bool = False):
    """``BasePolicy.predict(observation, state, deterministic=...)`` for what
    :func:`dict_obs_to_tensor` converts (None otherwise: call SB3's then). The rest is SB3's:
    eval mode, ``_predict``, actions unscaled (squashing policies) or clipped to the Box, the batch
    axis dropped for one observation."""
    converted = dict_obs_to_tensor(policy, observation)
    if converted is None:
        return None
    obs_tensor, vectorized_env = converted
    policy.set_training_mode(False)
    with torch.inference_mode():
        actions = policy._predict(obs_tensor, deterministic=deterministic)
    actions = actions.cpu().numpy().reshape((-1, *policy.action_space.shape))
    if isinstance(policy.action_space, spaces.Box):
        if policy.squash_output:
            actions = policy.unscale_action(actions)
        else:
            actions = np.clip(actions, policy.action_space.low, policy.action_space.high)
    if not vectorized_env:
        actions = actions.squeeze(axis=0)
    return actions, state


class LeanPredict:
    """A stock SB3 policy's ``predict`` through :func:`lean_predict` (falling back to the class's own
    ``predict``); a plain object, not a bound method, so the policy still pickles and deep-copies.
    ``policy.fast_predict = False`` turns it off."""

    def __init__(self, policy):
        self.policy = policy

    def __call__(self, observation, state=None, episode_start=None, deterministic: bool = False):
        policy = self.policy
        out = (
            lean_predict(policy, observation, state, deterministic)
            if getattr(policy, "fast_predict", True)
            else None
        )
        if out is None:
            return type(policy).predict(policy, observation, state, episode_start, deterministic)
        return out
