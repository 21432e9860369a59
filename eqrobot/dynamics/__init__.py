"""Learned rigid-body dynamics that respect SE(3), and model-predictive control on top of them.

- :mod:`eqrobot.dynamics.data`: :class:`Transitions` (versioned ``.npz`` with the geometry spec),
  :func:`collect_transitions`, :func:`from_replay_buffer`;
- :mod:`eqrobot.dynamics.models`: the object-centric equivariant :class:`DynamicsModel`
  (``kind="equivariant"``) and its matched MLP baseline (``kind="mlp"``), save/load;
- :mod:`eqrobot.dynamics.training`: :func:`fit` (multi-step rollout loss), :func:`rollout_errors`;
- :mod:`eqrobot.dynamics.mpc`: :class:`MPPIPlanner` (an SB3-like policy) with an invariant cost;
- :mod:`eqrobot.dynamics.api`: ``collect``/``fit``/``evaluate`` with plain arguments (the CLI's).
"""

from eqrobot.dynamics.data import (
    FORMAT_VERSION,
    DatasetFormatError,
    Transitions,
    collect_transitions,
    from_replay_buffer,
    load_transitions,
)
from eqrobot.dynamics.models import (
    CheckpointError,
    DynamicsConfig,
    DynamicsModel,
    load_model,
    make_model,
    matched_mlp,
    save_model,
)
from eqrobot.dynamics.mpc import GoalCost, MPPIPlanner
from eqrobot.dynamics.training import FitResult, fit, rollout_errors

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "DatasetFormatError",
    "DynamicsConfig",
    "DynamicsModel",
    "FitResult",
    "GoalCost",
    "MPPIPlanner",
    "Transitions",
    "collect_transitions",
    "fit",
    "from_replay_buffer",
    "load_model",
    "load_transitions",
    "make_model",
    "matched_mlp",
    "rollout_errors",
    "save_model",
]
