"""Rotation-generalization sweeps: how a policy's success changes when the task or the world turns.

- :mod:`~eqrobot.rotation.splits`: the named splits (``canonical``, ``so2-sweep``, ``so3-world``,
  ``so2+shift``), each a fixed list of seeded resets;
- :mod:`~eqrobot.rotation.sweep`: :func:`evaluate_rotation` (agents side by side on splits) and
  :func:`run_rotation` (that plus its files: what ``eqrobot rotation`` runs);
- :mod:`~eqrobot.rotation.results`: :class:`RotationResult` (tables, JSON, CSV, 95% Wilson CIs);
- :mod:`~eqrobot.rotation.plots`: the polar plot;
- :mod:`~eqrobot.rotation.sim_gap`: :func:`simulator_equivariance_gap`, physics' own share of the gap;
- :mod:`~eqrobot.rotation.videos`: :func:`save_videos`, one GIF per angle.

Names are imported lazily (SB3, torch and matplotlib load on first use).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SPLITS": "eqrobot.rotation.splits",
    "Split": "eqrobot.rotation.splits",
    "get_split": "eqrobot.rotation.splits",
    "resolve_splits": "eqrobot.rotation.splits",
    "seed_for": "eqrobot.rotation.splits",
    "evaluate_rotation": "eqrobot.rotation.sweep",
    "run_rotation": "eqrobot.rotation.sweep",
    "BinResult": "eqrobot.rotation.results",
    "RotationResult": "eqrobot.rotation.results",
    "wilson_interval": "eqrobot.rotation.results",
    "plot_polar": "eqrobot.rotation.plots",
    "simulator_equivariance_gap": "eqrobot.rotation.sim_gap",
    "format_gap": "eqrobot.rotation.sim_gap",
    "save_videos": "eqrobot.rotation.videos",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'eqrobot.rotation' has no attribute {name!r}")
