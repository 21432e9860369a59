"""Equivariant building blocks (plain torch, described by e3nn Irreps) and spec-to-spec networks.

- :class:`EquivariantNet` / :class:`MLPNet` / :func:`mlp_matching`: flat spec'd array in, flat spec'd
  array out (actors, critics, dynamics models).
- Blocks on ``(V (B, C, 3), S (B, N))`` pairs: :class:`SpecEncoder`, :class:`InvariantFeatures`,
  :class:`InvariantMLP`, :class:`GatedVectorLayer`, :class:`VectorScalarHead`,
  :class:`InvariantHead`.
"""

from eqrobot.nn.blocks import (
    GatedVectorLayer,
    InvariantFeatures,
    InvariantHead,
    InvariantMLP,
    SpecEncoder,
    VectorScalarHead,
    pack,
    pair_irreps,
    pair_spec,
    resolve_anchor,
    unpack,
)
from eqrobot.nn.nets import EquivariantNet, MLPNet, count_parameters, mlp_matching

__all__ = [
    "EquivariantNet",
    "GatedVectorLayer",
    "InvariantFeatures",
    "InvariantHead",
    "InvariantMLP",
    "MLPNet",
    "SpecEncoder",
    "VectorScalarHead",
    "count_parameters",
    "mlp_matching",
    "pack",
    "pair_irreps",
    "pair_spec",
    "resolve_anchor",
    "unpack",
]
