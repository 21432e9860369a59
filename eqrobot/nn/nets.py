"""Spec-to-spec networks: :class:`EquivariantNet` and its plain counterpart :class:`MLPNet`.

Both map a flat array laid out by ``in_spec`` ``(B, in_spec.dim)`` to one laid out by ``out_spec``
``(B, out_spec.dim)`` and expose ``irreps_in``/``irreps_out``, so policies and dynamics models can
swap one for the other.
"""

from __future__ import annotations

import contextlib
import math

import torch
from e3nn import o3
from torch import nn

from eqrobot.geometry.spec import ArraySpec
from eqrobot.nn.blocks import (
    GatedVectorLayer,
    InvariantMLP,
    SpecEncoder,
    VectorScalarHead,
    _check_positive,
    linear_stack,
    so3_irreps,
)

__all__ = ["EquivariantNet", "MLPNet", "count_parameters", "mlp_matching"]

_ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "elu": nn.ELU}


def _activation(name) -> type[nn.Module]:
    if isinstance(name, type) and issubclass(name, nn.Module):
        return name
    try:
        return _ACTIVATIONS[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}") from None


def _check_spec(spec, what: str) -> ArraySpec:
    if not isinstance(spec, ArraySpec):
        raise TypeError(f"{what} must be an ArraySpec, got {type(spec).__name__}")
    if spec.dim == 0:
        raise ValueError(f"empty {what}")
    return spec


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class EquivariantNet(nn.Module):
    """Exactly SE(3)-equivariant map between two spec'd flat arrays.

    ``in_spec`` -> :class:`SpecEncoder` (points relative to ``anchor``; vectors ``v_i``, scalars)
    -> ``vector_layers`` x :class:`GatedVectorLayer` (``vector_channels`` hidden vectors; default
    none) -> :class:`InvariantMLP` (dot products of the vectors — all pairs while ``C + 1 <= 2k``,
    else with ``k`` learned combinations — triple products, and the input scalars, through
    ``layers`` hidden layers of width ``hidden``) -> head: each output vector is ``sum_i c_i(h) a_i``
    over the vectors and cross products ``a_i``, each output scalar linear in ``h``. This
    "invariants + MLP + invariant-weighted sum" form is universal for l <= 1 inputs and costs about
    one MLP (shared/DESIGN.md section 3).

    Output fields: ``vector``/``pseudovector`` (one vector each), ``frame`` (three vectors, the
    stored columns, not orthonormalised), ``point`` (anchor + a predicted vector; needs an anchor),
    ``scalar`` (invariant; a scalar-only ``out_spec`` gives an invariant net, e.g. a critic whose
    ``in_spec`` holds observation + goal + action).

    ``n_cross`` (cross/triple products of learned vector combinations, for chirality): ``"auto"``
    uses none when the input holds a frame (whose columns already fix the handedness) and
    ``min(4, k // 2)`` otherwise. ``point_pairs``: also encode the differences between points
    (see :class:`SpecEncoder`). ``compress_invariants``: ``asinh`` on the invariant features before
    the MLP (see :class:`InvariantMLP`; the SAC/TD3/PPO presets turn it on, default off so older
    checkpoints load unchanged).

    Pseudovectors are treated as vectors: exact for proper rotations (det +1), which is the group we
    promise (shared/DESIGN.md section 2).
    """

    def __init__(
        self,
        in_spec: ArraySpec,
        out_spec: ArraySpec,
        hidden: int = 64,
        layers: int = 2,
        vector_channels: int = 16,
        anchor: str | None = None,
        k: int = 8,
        vector_layers: int = 0,
        n_cross: int | str = "auto",
        point_pairs: bool = True,
        activation="silu",
        compress_invariants: bool = False,
    ):
        super().__init__()
        _check_spec(in_spec, "input spec")
        _check_spec(out_spec, "output spec")
        _check_positive("hidden", hidden)
        _check_positive("layers", layers)
        _check_positive("vector_channels", vector_channels)
        _check_positive("vector_layers", vector_layers, allow_zero=True)
        _check_positive("k", k)
        act = _activation(activation)
        if n_cross == "auto":
            # A frame input (det +1 on data) already fixes the handedness: its columns span space and
            # c3 = c1 x c2, so triple products and cross products are functions of dot products and
            # the frame's columns. Without one, learned cross products supply chirality.
            n_cross = 0 if in_spec.of_kind("frame") else min(4, k // 2)
        elif not isinstance(n_cross, int) or isinstance(n_cross, bool) or n_cross < 0:
            raise ValueError(f"n_cross must be 'auto' or an int >= 0, got {n_cross!r}")
        self.n_cross = n_cross
        self.in_spec, self.out_spec = in_spec, out_spec
        self.encoder = SpecEncoder(in_spec, anchor, point_pairs=point_pairs)
        self.anchor = self.encoder.anchor
        if out_spec.of_kind("point") and self.anchor is None:
            names = [f.name for f in out_spec.of_kind("point")]
            raise ValueError(
                f"output spec has point fields {names} but the input spec has no anchor point"
                ": a point output is anchor + predicted vector"
            )
        c, s = self.encoder.n_vectors, self.encoder.n_scalars
        if c == 0:
            raise ValueError(
                f"input spec has no vectors besides the anchor {self.anchor!r}: nothing to "
                "rotate (use MLPNet for purely invariant inputs)"
            )
        blocks = []
        for _ in range(vector_layers):
            blocks.append(
                GatedVectorLayer(
                    c, s, vector_channels, hidden=hidden, k=k, n_cross=min(4, k // 2), activation=act
                )
            )
            c, s = vector_channels, hidden
        self.vector_layers = nn.ModuleList(blocks)
        self.trunk = InvariantMLP(
            c,
            s,
            hidden=hidden,
            depth=layers,
            k=k,
            n_cross=n_cross,
            activation=act,
            compress_invariants=compress_invariants,
        )
        # output layout: vectors in order of appearance, then scalars
        n_vec = sum(f.multiplicity for f in out_spec.fields if f.kind != "scalar")
        n_sc = sum(f.size for f in out_spec.fields if f.kind == "scalar")
        self.n_out_vectors, self.n_out_scalars = n_vec, n_sc
        if n_vec:
            self.head = VectorScalarHead(self.trunk.n_vectors_out, hidden, n_vec, n_sc)
        else:
            self.head = nn.Linear(hidden, n_sc)
        perm = [0] * out_spec.dim  # out_flat[j] = packed[perm[j]], packed = [vectors.flatten(), scalars]
        vi, si = 0, 3 * n_vec
        point_mask = []
        for f in out_spec.fields:
            if f.kind == "scalar":
                for j in range(f.size):
                    perm[f.start + j] = si
                    si += 1
            else:
                for j in range(3 * f.multiplicity):
                    perm[f.start + j] = vi + j
                vi += 3 * f.multiplicity
                point_mask += [1.0 if f.kind == "point" else 0.0] * f.multiplicity
        self.register_buffer("perm", torch.tensor(perm, dtype=torch.long), persistent=False)
        self.register_buffer("out_point_mask", torch.tensor(point_mask).reshape(-1, 1), persistent=False)
        self._identity_perm = perm == list(range(out_spec.dim))
        self._out_points = bool(sum(point_mask))
        # O(3)-true with the spec's parities only if nothing pseudo (triple products, pseudovectors
        # treated as vectors) reaches the MLP or the output; else SO(3)-only labels (so3_irreps)
        self.parity_equivariant = (
            n_cross == 0
            and all(layer.invariants.n_cross == 0 for layer in self.vector_layers)
            and not in_spec.of_kind("pseudovector")
            and not out_spec.of_kind("pseudovector")
        )
        parity = self.parity_equivariant
        self.irreps_in = in_spec.irreps if parity else so3_irreps(in_spec.irreps)
        self.irreps_out = out_spec.irreps if parity else so3_irreps(out_spec.irreps)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A (B, n, 3), h (B, hidden))``: the vectors the head combines and the invariant features,
        e.g. for custom heads (``VectorScalarHead(n, hidden, ...)``)."""
        At, h = self.features_t(x)
        return At.transpose(1, 2), h

    def features_t(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`features` with coordinate-major vectors ``At (B, 3, n)``."""
        Vt, S = self.encoder.encode_coord_major(x)
        for layer in self.vector_layers:
            Vt, S = layer.forward_coord_major(Vt, S)
        return self.trunk.forward_coord_major(Vt, S)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., in_spec.dim) -> (..., out_spec.dim)`` (any leading batch shape, or none)."""
        lead = x.shape[:-1]
        if x.dim() != 2:
            x = x.reshape(-1, x.shape[-1])
        n = getattr(self, "_grad_rows", None)
        if n is not None and n < x.shape[0] and torch.is_grad_enabled():
            out = self._forward_grad_rows(x, n)
        else:
            out = self._output(x, *self.features_t(x))
        return out if len(lead) == 1 else out.reshape(*lead, out.shape[-1])

    def _output(self, x: torch.Tensor, At: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The head on the features of the rows ``x``: ``(B, out_spec.dim)``."""
        if self.n_out_vectors:
            vecs, scalars = self.head.forward_coord_major(At, h)
            if self._out_points:
                vecs = vecs + self.out_point_mask.to(x.dtype) * self.encoder.anchor_point(x)[:, None, :]
            out = (
                torch.cat([vecs.reshape(x.shape[0], -1), scalars], dim=-1)
                if self.n_out_scalars
                else vecs.reshape(x.shape[0], -1)
            )
        else:
            out = self.head(h)
        return out if self._identity_perm else out[:, self.perm]

    @contextlib.contextmanager
    def rows_needing_grad(self, n: int):
        """Within this context, a forward pass on a batch of more than ``n`` rows differentiates
        the first ``n`` rows only and evaluates the others without autograd.

        For SAC's one actor pass on ``s`` and ``s'`` stacked (eqrobot.policies.sac_update): the
        ``s'`` half is detached, so its backward pass would only multiply zeros through the MLP
        and head. The parameter-free part (encoder, invariants) still runs once on all rows."""
        _check_positive("n", n)
        previous = getattr(self, "_grad_rows", None)
        self._grad_rows = n
        try:
            yield self
        finally:
            self._grad_rows = previous

    def _forward_grad_rows(self, x: torch.Tensor, n: int) -> torch.Tensor:
        if len(self.vector_layers) or self.trunk.invariants.weight is not None:  # parameters early on
            first = self._output(x[:n], *self.features_t(x[:n]))
            with torch.no_grad():
                rest = self._output(x[n:], *self.features_t(x[n:]))
            return torch.cat([first, rest])
        Vt, S = self.encoder.encode_coord_major(x)
        inv, At = self.trunk.mlp_input_t(Vt, S)
        first = self._output(x[:n], At[:n], self.trunk.mlp(inv[:n]))
        with torch.no_grad():
            rest = self._output(x[n:], At[n:], self.trunk.mlp(inv[n:]))
        return torch.cat([first, rest])

    def extra_repr(self) -> str:
        return f"anchor={self.anchor!r}, in={self.in_spec.dim}, out={self.out_spec.dim}"


class MLPNet(nn.Module):
    """Plain MLP with the :class:`EquivariantNet` interface (baselines): ``layers`` hidden layers of
    width ``hidden`` on the raw flat input. Not equivariant.
    """

    def __init__(
        self, in_spec: ArraySpec, out_spec: ArraySpec, hidden: int = 64, layers: int = 2, activation="silu"
    ):
        super().__init__()
        _check_spec(in_spec, "input spec")
        _check_spec(out_spec, "output spec")
        _check_positive("hidden", hidden)
        _check_positive("layers", layers)
        act = _activation(activation)
        self.in_spec, self.out_spec = in_spec, out_spec
        self.hidden, self.n_layers = hidden, layers
        self.net = nn.Sequential(
            *linear_stack(in_spec.dim, hidden, layers, act), nn.Linear(hidden, out_spec.dim)
        )
        # an MLP sees unstructured numbers: true only as scalars (the group acts trivially)
        self.irreps_in = o3.Irreps(f"{in_spec.dim}x0e")
        self.irreps_out = o3.Irreps(f"{out_spec.dim}x0e")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _mlp_params(d_in: int, d_out: int, hidden: int, layers: int) -> int:
    return (d_in + 1) * hidden + (layers - 1) * (hidden + 1) * hidden + (hidden + 1) * d_out


def mlp_matching(
    in_spec: ArraySpec,
    out_spec: ArraySpec,
    n_params,
    layers: int = 2,
    activation="silu",
    tolerance: float = 0.05,
) -> MLPNet:
    """An :class:`MLPNet` with ``layers`` hidden layers whose parameter count is closest to ``n_params``
    (an int, or a module whose trainable parameters are counted); raises if none is within
    ``tolerance`` (relative).
    """
    target = count_parameters(n_params) if isinstance(n_params, nn.Module) else int(n_params)
    _check_positive("layers", layers)
    d_in, d_out = _check_spec(in_spec, "input spec").dim, _check_spec(out_spec, "output spec").dim
    # solve (layers-1) h^2 + (d_in + 1 + layers - 1 + d_out) h + d_out = target for h
    a, b, c = layers - 1, d_in + layers + d_out, d_out - target
    h0 = -c / b if a == 0 else (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    best = min(
        range(max(1, int(h0) - 2), int(h0) + 3),
        key=lambda h: abs(_mlp_params(d_in, d_out, h, layers) - target),
    )
    got = _mlp_params(d_in, d_out, best, layers)
    if abs(got - target) > tolerance * target:
        raise ValueError(
            f"no MLP with {layers} hidden layers has ~{target} parameters "
            f"(closest: hidden={best}, {got} parameters)"
        )
    return MLPNet(in_spec, out_spec, hidden=best, layers=layers, activation=activation)
