"""One-tensor entry points that e3nn's own ``e3nn.util.test.assert_equivariant`` accepts.

eqrobot's blocks take ``(V (B, C, 3), S (B, N))`` pairs and its nets flat spec'd arrays with vectors
stored xyz; e3nn's checker calls ``func(*tensors)`` with each tensor laid out by one entry of
``irreps_in`` (l=1 in e3nn's basis) or, for ``"cartesian_points"``, an xyz point that it
also translates. :func:`as_e3nn_module` wraps a module accordingly, reusing the module's *declared*
``irreps_in``/``irreps_out`` (so the checker tests the declarations)::

    from e3nn.util.test import assert_equivariant
    assert_equivariant(as_e3nn_module(block))            # (V, S) blocks: rotations and inversion
    view = as_e3nn_module(net)                           # EquivariantNet: one argument per field,
    assert_equivariant(view, do_parity=view.parity_equivariant)  # points translated too

Pair blocks only see irreps, so e3nn's basis needs no conversion there (any fixed proper change of
axes is itself a rotation). Spec views mix e3nn's translated ``cartesian_points`` (xyz) with irreps
(e3nn basis), so they convert. e3nn has no even point: under its parity test ``cartesian_points``
always reflect, so a spec view is checked with ``do_parity`` only when the module declares the
spec's own parities (``view.parity_equivariant``); SO(3)-only nets are checked for inversion on their
raw flat ``forward``, whose declared labels are all even.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from eqrobot.geometry.spec import ArraySpec
from eqrobot.nn.blocks import (
    GatedVectorLayer,
    InvariantFeatures,
    InvariantHead,
    InvariantMLP,
    SpecEncoder,
    VectorScalarHead,
    pack,
    unpack,
)
from eqrobot.nn.nets import EquivariantNet, MLPNet

__all__ = ["PairView", "SpecView", "as_e3nn_module"]


def xyz_to_e3nn_matrix(irreps) -> torch.Tensor:
    """``M`` with ``x_e3nn = x_xyz @ M.T`` for data laid out by ``irreps`` (l <= 1), block diagonal.

    The l=1 block is read off e3nn's own spherical harmonics of the unit axes, so it is right for any
    e3nn version ((y, z, x) up to e3nn 0.5, xyz in 0.6). Orthogonal: ``x_xyz = x_e3nn @ M``.
    """
    eye = torch.eye(3, dtype=torch.float64)
    axes = o3.spherical_harmonics(1, eye, normalize=True, normalization="norm")  # row i: axis i in e3nn
    blocks = []
    for mul, ir in o3.Irreps(irreps):
        if ir.l > 1:
            raise ValueError(f"irreps {irreps}: only l <= 1 is supported, got {ir}")
        blocks += [axes.T if ir.l == 1 else torch.ones(1, 1, dtype=torch.float64)] * mul
    return torch.block_diag(*blocks)


class PairView(nn.Module):
    """``x = [S, V.flatten()]`` (or ``V.flatten()`` for :class:`InvariantFeatures`) -> the block's
    outputs packed the same way, with the block's ``irreps_in``/``irreps_out``."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block
        self.irreps_in = block.irreps_in
        self.irreps_out = block.irreps_out
        self.n_scalars = sum(mul for mul, ir in self.irreps_in if ir.l == 0)
        self.n_vectors = sum(mul for mul, ir in self.irreps_in if ir.l == 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        V, S = unpack(x, self.n_scalars, self.n_vectors)
        if isinstance(self.block, InvariantFeatures):
            invariants, A = self.block(V)
            return pack(A, invariants)
        out = self.block(V, S)
        if isinstance(self.block, InvariantHead):
            return out
        first, second = out
        # GatedVectorLayer -> (V', h), InvariantMLP -> (A, h), VectorScalarHead -> (vectors, scalars)
        return pack(first, second)


class SpecView(nn.Module):
    """A module on a flat spec'd array (:class:`SpecEncoder`, :class:`EquivariantNet`, :class:`MLPNet`)
    as a function of one tensor per input field: points as e3nn ``"cartesian_points"`` (xyz), every
    other field in e3nn's basis with the irreps the module declares for it. Outputs: one tensor per
    output field alike (nets), or the encoder's ``[S, V.flatten()]`` pair in e3nn's basis."""

    def __init__(self, module: nn.Module, in_spec: ArraySpec, out_spec: ArraySpec | None):
        super().__init__()
        self.module = module
        declared_in = list(module.irreps_in)  # one entry per field: ArraySpec.irreps is not simplified
        if len(declared_in) != len(in_spec.fields):
            raise ValueError(f"{type(module).__name__}.irreps_in has no entry per input field")
        self.parity_equivariant = module.irreps_in == in_spec.irreps
        self.in_fields = in_spec.fields
        self.irreps_in = [
            "cartesian_points" if f.kind == "point" else o3.Irreps([mul_ir])
            for f, mul_ir in zip(in_spec.fields, declared_in, strict=True)
        ]
        # per field: x_xyz = x_e3nn @ M, x_e3nn = x_xyz @ M.T (points need none: e3nn moves them as xyz)
        self._basis_in = [
            None if ir == "cartesian_points" else xyz_to_e3nn_matrix(ir) for ir in self.irreps_in
        ]
        self.out_fields = None if out_spec is None else out_spec.fields
        if out_spec is None:
            self.irreps_out = module.irreps_out
            self._basis_out = [xyz_to_e3nn_matrix(module.irreps_out)]
        else:
            declared_out = list(module.irreps_out)
            self.irreps_out = [
                "cartesian_points" if f.kind == "point" else o3.Irreps([mul_ir])
                for f, mul_ir in zip(out_spec.fields, declared_out, strict=True)
            ]
            self._basis_out = [
                None if ir == "cartesian_points" else xyz_to_e3nn_matrix(ir) for ir in self.irreps_out
            ]

    def forward(self, *fields: torch.Tensor):
        if len(fields) != len(self.in_fields):
            raise ValueError(
                f"expected {len(self.in_fields)} tensors (one per input field), got {len(fields)}"
            )
        xyz = [x if M is None else x @ M.to(x.dtype) for x, M in zip(fields, self._basis_in, strict=True)]
        out = self.module(torch.cat(xyz, dim=-1))
        if self.out_fields is None:  # SpecEncoder: (V, S)
            V, S = out
            parts = [pack(V, S)]
        else:
            parts = [out[..., f.slice] for f in self.out_fields]
        return [p if M is None else p @ M.T.to(p.dtype) for p, M in zip(parts, self._basis_out, strict=True)]


def as_e3nn_module(module: nn.Module) -> nn.Module:
    """The entry point e3nn's ``assert_equivariant`` takes for any eqrobot module declaring irreps."""
    if isinstance(
        module, (GatedVectorLayer, InvariantFeatures, InvariantHead, InvariantMLP, VectorScalarHead)
    ):
        return PairView(module)
    if isinstance(module, SpecEncoder):
        return SpecView(module, module.spec, None)
    if isinstance(module, EquivariantNet):
        return SpecView(module, module.in_spec, module.out_spec)
    if isinstance(module, MLPNet):
        return module  # flat already, and declared as plain scalars (no points to translate)
    raise TypeError(f"no e3nn entry point for {type(module).__name__}")
