"""Learned rigid-body dynamics that respect SE(3), and model-predictive control on top of them.

- :mod:`eqrobot.dynamics.data`: :class:`Transitions` (versioned ``.npz`` with the geometry spec);
- :mod:`eqrobot.dynamics.models`: the object-centric equivariant :class:`DynamicsModel`
  (``kind="equivariant"``) and its matched MLP baseline (``kind="mlp"``);
- :mod:`eqrobot.dynamics.checkpoint`: :func:`save_dynamics_model` / :func:`load_dynamics_model`;
- :mod:`eqrobot.dynamics.training`: :func:`fit` (multi-step rollout loss), :func:`rollout_errors`,
  :func:`fit_to_checkpoint` (what ``eqrobot dynamics fit`` runs);
- :mod:`eqrobot.dynamics.mpc`: :class:`MPPIPlanner` (an SB3-like policy) with an invariant cost.

Nothing here makes envs: collecting transitions and running the planner in an env live in
:mod:`eqrobot.rollout` (``collect_transitions``, ``evaluate_dynamics``, ``resolve_agent("model.pt")``).
"""

from eqrobot.dynamics.checkpoint import (
    DynamicsCheckpointError,
    is_dynamics_checkpoint,
    load_dynamics_model,
    save_dynamics_model,
)
from eqrobot.dynamics.data import FORMAT_VERSION, DatasetFormatError, Transitions, load_transitions
from eqrobot.dynamics.models import DynamicsConfig, DynamicsModel, make_model, matched_mlp
from eqrobot.dynamics.mpc import GoalCost, MPPIPlanner
from eqrobot.dynamics.training import FitConfig, FitResult, fit, fit_to_checkpoint, rollout_errors

__all__ = [
    "FORMAT_VERSION",
    "DatasetFormatError",
    "DynamicsCheckpointError",
    "DynamicsConfig",
    "DynamicsModel",
    "FitConfig",
    "FitResult",
    "GoalCost",
    "MPPIPlanner",
    "Transitions",
    "fit",
    "fit_to_checkpoint",
    "is_dynamics_checkpoint",
    "load_dynamics_model",
    "load_transitions",
    "make_model",
    "matched_mlp",
    "rollout_errors",
    "save_dynamics_model",
]
