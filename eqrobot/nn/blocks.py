"""Equivariant building blocks: invariant features + MLP + gated multiplicity mixing.

Every block works on a pair ``(V, S)``: ``V`` a batch of 3D vectors ``(B, C, 3)`` (l=1 features,
one per channel, stored xyz) and ``S`` invariant scalars ``(B, N)``. For a proper rotation ``R``
(``V -> V R^T``) every block maps ``(V R^T, S) -> (V' R^T, S')``: vectors rotate, scalars stay.

Design (shared/DESIGN.md section 3; figures in docs/bench_nets.json): no tensor products. A block
forms rotation invariants of its vectors — all dot products ``<v_i, v_j>`` (the Gram matrix; with
many vectors, dot products with ``k`` learned combinations instead: ``O(C k)``, not ``O(C^2)``) and
triple products of learned combinations (pseudo-scalars: SO(3)-complete, not just O(3)) — runs an
MLP on them and the input scalars, and outputs vectors as invariant-weighted sums of its vectors
(and cross products). Any SO(3)-equivariant vector function of vectors has the form
``sum_i f_i(invariants) v_i`` (Villar et al., NeurIPS 2021), so this is universal for l <= 1 inputs
and runs near MLP speed. :class:`GatedVectorLayer` adds hidden vector channels: an ``o3.Linear``-
style multiplicity mixing (for ``Cx1o`` exactly a ``C_in x C_out`` matrix on the channel axis)
gated by invariants.

Internally blocks compute on coordinate-major vectors ``Vt (B, 3, C)`` (``forward_coord_major``), where
channel mixing is one ``(3B, C) x (C, C')`` product; ``forward`` takes the documented layout.

Everything is plain torch: ``irreps_in``/``irreps_out`` (e3nn ``Irreps``) describe the pair as
``"{N}x0e + {C}x1o"`` (scalars first), which is also the layout of :func:`pack`. The labels are true
under e3nn's O(3) action: a block whose triple products (pseudo-scalars, ``0o``) reach an MLP is
SO(3)-only, and declares so with even labels (``"{N}x0e + {C}x1e"``, see :func:`so3_irreps`);
:func:`eqrobot.nn.e3nn_view.as_e3nn_module` gives each block the one-tensor entry e3nn's
``assert_equivariant`` takes.
"""

from __future__ import annotations

import math

import torch
from e3nn import o3
from torch import nn

from eqrobot.geometry.spec import ArraySpec
from eqrobot.nn.fast_ops import fast_asinh, scalars_and_gram, triu_gram

__all__ = [
    "GatedVectorLayer",
    "InvariantFeatures",
    "InvariantHead",
    "InvariantMLP",
    "SpecEncoder",
    "VectorScalarHead",
    "pack",
    "pair_irreps",
    "pair_spec",
    "resolve_anchor",
    "so3_irreps",
    "unpack",
]


def pair_irreps(n_scalars: int, n_vectors: int, parity: bool = True) -> o3.Irreps:
    """Irreps of a ``(V, S)`` pair laid out flat as ``[S, V.flatten()]``; ``parity=False``: the
    SO(3)-only labels (vectors ``1e``, see :func:`so3_irreps`)."""
    parts = []
    if n_scalars:
        parts.append(f"{n_scalars}x0e")
    if n_vectors:
        parts.append(f"{n_vectors}x1{'o' if parity else 'e'}")
    return o3.Irreps("+".join(parts)) if parts else o3.Irreps("")


def so3_irreps(irreps) -> o3.Irreps:
    """The same irreps with every parity even: how a module that is equivariant under rotations only
    labels itself. e3nn's irreps are O(3)'s; an SO(3)-equivariant map is O(3)-equivariant exactly when
    the inversion acts trivially on both sides, and makes no promise under reflections otherwise."""
    return o3.Irreps([(mul, (ir.l, 1)) for mul, ir in o3.Irreps(irreps)])


def pair_spec(n_scalars: int, n_vectors: int, prefix: str = "") -> ArraySpec:
    """ArraySpec of a flat ``[S, V.flatten()]`` array (for testing blocks with ``assert_equivariant``)."""
    items: list = []
    if n_scalars:
        items.append((f"{prefix}scalars", "scalar", n_scalars))
    items += [(f"{prefix}v{i}", "vector") for i in range(n_vectors)]
    return ArraySpec(items)


def pack(V: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """``(V (B, C, 3), S (B, N)) -> (B, N + 3C)``."""
    return torch.cat([S, V.reshape(V.shape[0], -1)], dim=-1)


def unpack(x: torch.Tensor, n_scalars: int, n_vectors: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack`: returns ``(V, S)``."""
    S = x[..., :n_scalars]
    V = x[..., n_scalars : n_scalars + 3 * n_vectors].reshape(*x.shape[:-1], n_vectors, 3)
    return V, S


def linear_stack(n_in: int, hidden: int, depth: int, activation: type[nn.Module]) -> list[nn.Module]:
    """``depth`` Linear+activation layers, ``n_in -> hidden -> ... -> hidden``."""
    dims = [n_in] + [hidden] * depth
    mods: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        mods += [nn.Linear(a, b), activation()]
    return mods


def _check_positive(name: str, value: int, allow_zero: bool = False) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if allow_zero else 1):
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"{name} must be an int {bound}, got {value!r}")
    return value


# ------------------------------------------------------------------------------------------------
# encoder
# ------------------------------------------------------------------------------------------------
def resolve_anchor(spec: ArraySpec, anchor: str | None) -> str | None:
    """The name of the anchor point field of ``spec``.

    ``anchor=None``: the first static point field (the robot base) if any, else the first point
    field, else None (a spec without points needs no anchor). ``anchor="none"``:
    explicitly no anchor (then point inputs are refused: they would break translation invariance).
    A given name must be a point field; a unique suffix match is accepted (``"base_position"``
    finds ``"observation/base_position"``).
    """
    points = [f.name for f in spec.of_kind("point")]
    if anchor is None:
        static = [f.name for f in spec.by_role("static") if f.kind == "point"]
        return static[0] if static else points[0] if points else None
    if anchor == "none":
        return None
    if anchor in spec:
        if spec[anchor].kind != "point":
            raise ValueError(
                f"anchor field {anchor!r} has kind {spec[anchor].kind!r}; the anchor must be a "
                f"point field, one of {points}"
            )
        return anchor
    matches = [n for n in points if n.endswith(anchor)]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(f"unknown anchor field {anchor!r}; point fields of the spec are {points}")


class SpecEncoder(nn.Module):
    """Flat array laid out by an :class:`ArraySpec` -> ``(V (B, C, 3), S (B, N))``.

    Points become vectors relative to the anchor point (translation invariance; the anchor itself
    is dropped), vectors/pseudovectors are vectors (SO(3) does not see parity), a frame gives its
    three stored columns, scalars are gathered in order. The whole encoder is one matrix of 0 and
    +-1 entries, so ``p - anchor`` is computed exactly as a float subtraction in the input dtype
    (float32 rounding of large translations stays at input precision).

    ``point_pairs=True`` also adds the difference ``p_i - p_j`` of every pair of (non-anchor) points
    (up to ``max_pair_points`` points): the same span, but the distances a task depends on (ee to
    object, object to goal) become direct features instead of cancellations between large
    anchor-relative numbers, which makes them much easier to learn.

    ``channel_names`` lists what each of the ``C`` vector channels is.
    """

    def __init__(
        self, spec: ArraySpec, anchor: str | None = None, point_pairs: bool = False, max_pair_points: int = 6
    ):
        super().__init__()
        if not isinstance(spec, ArraySpec):
            raise TypeError(f"spec must be an ArraySpec, got {type(spec).__name__}")
        if spec.dim == 0:
            raise ValueError("empty input spec: nothing to encode")
        self.spec = spec
        self.anchor = resolve_anchor(spec, anchor)
        if self.anchor is None and spec.of_kind("point"):
            raise ValueError(
                "input spec has point fields but anchor='none': points need an anchor to become "
                "translation invariant"
            )
        a0 = spec[self.anchor].start if self.anchor is not None else None
        channels, names, sc_idx = [], [], []  # channels: (start of the +1 triple, start of the -1 one)
        channel_irreps = []  # linear, so parity-true: pseudovectors stay 1e
        for f in spec.fields:
            if f.kind == "scalar":
                sc_idx += list(range(f.start, f.start + f.size))
            elif f.name != self.anchor:
                for c in range(f.multiplicity):
                    channels.append((f.start + 3 * c, a0 if f.kind == "point" else None))
                    names.append(f.name if f.multiplicity == 1 else f"{f.name}[{c}]")
                    channel_irreps.append("1x1e" if f.kind == "pseudovector" else "1x1o")
        points = [f for f in spec.of_kind("point") if f.name != self.anchor]
        if point_pairs and 2 <= len(points) <= max_pair_points:
            for i, p in enumerate(points):
                for q in points[i + 1 :]:
                    channels.append((p.start, q.start))
                    names.append(f"{p.name}-{q.name}")
                    channel_irreps.append("1x1o")
        self.channel_names = tuple(names)
        C, N = len(channels), len(sc_idx)
        self.n_vectors, self.n_scalars = C, N
        # x @ E = [V^T flattened (3, C) coordinate-major, S]
        E = torch.zeros(spec.dim, 3 * C + N)
        for c, (plus, minus) in enumerate(channels):
            for d in range(3):
                E[plus + d, d * C + c] = 1.0
                if minus is not None:
                    E[minus + d, d * C + c] = -1.0
        for j, i in enumerate(sc_idx):
            E[i, 3 * C + j] = 1.0
        self.register_buffer("matrix", E, persistent=False)
        self.register_buffer("scalar_index", torch.tensor(sc_idx, dtype=torch.long), persistent=False)
        self.anchor_slice = spec[self.anchor].slice if self.anchor is not None else None
        self.irreps_in = spec.irreps
        self.irreps_out = o3.Irreps("+".join(([f"{N}x0e"] if N else []) + channel_irreps))

    def anchor_point(self, x: torch.Tensor) -> torch.Tensor | None:
        return None if self.anchor_slice is None else x[..., self.anchor_slice]

    def encode_coord_major(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`forward` but vectors coordinate-major: ``Vt (B, 3, C)`` (the blocks' layout)."""
        if x.shape[-1] != self.spec.dim:
            raise ValueError(f"input has {x.shape[-1]} features, the spec expects {self.spec.dim}")
        E = self.matrix if self.matrix.dtype == x.dtype else self.matrix.to(x.dtype)
        C3 = 3 * self.n_vectors
        Vt = (x @ E[:, :C3]).view(x.shape[0], 3, self.n_vectors)  # contiguous
        return Vt, x.index_select(1, self.scalar_index)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        Vt, S = self.encode_coord_major(x)
        return Vt.transpose(1, 2), S


# ------------------------------------------------------------------------------------------------
# invariants and layers
# ------------------------------------------------------------------------------------------------
# Blocks compute on coordinate-major vectors Vt (B, 3, C): channel mixing is then one matrix
# product (B*3, C) @ (C, C'), far cheaper on CPU than a batch of tiny products. ``forward`` takes
# and returns the documented (B, C, 3) layout; ``forward_coord_major`` is the fast path EquivariantNet uses.


class InvariantFeatures(nn.Module):
    """Rotation invariants of ``V (B, C, 3)`` and the vectors a head may combine.

    Invariants, concatenated:

    - dot products. ``mode="gram"``: all ``<v_i, v_j>``, ``i <= j`` (``C (C + 1) / 2``; no
      parameters, so no backward pass when the input needs no gradient). ``mode="projected"``:
      ``<v_i, u_j>`` with ``k`` learned combinations ``u = W^T V`` (``C k``: ``O(C k)``, not
      ``O(C^2)``). ``mode="auto"`` (default) takes the Gram matrix while ``C + 1 <= 2 k`` (never more
      products than ``C k``), else the projection.
    - ``n_cross`` triple products ``det(a_j, b_j, c_j)`` of learned combinations (pseudo-scalars:
      invariant under rotations, odd under reflections), so the features are SO(3)-complete, not
      just O(3).

    Also returns ``A (B, C + n_cross, 3)``: the input vectors followed by the cross products
    ``a_j x b_j`` (vectors under rotations).
    """

    def __init__(self, n_vectors: int, k: int = 8, n_cross: int | None = None, mode: str = "auto"):
        super().__init__()
        _check_positive("n_vectors", n_vectors)
        _check_positive("k", k)
        n_cross = min(4, k // 2) if n_cross is None else n_cross
        _check_positive("n_cross", n_cross, allow_zero=True)
        if mode not in ("auto", "gram", "projected"):
            raise ValueError(f"unknown invariant mode {mode!r}; expected 'auto', 'gram' or 'projected'")
        if mode == "auto":
            mode = "gram" if n_vectors + 1 <= 2 * k else "projected"
        self.mode = mode
        C = n_vectors
        self.n_vectors, self.k, self.n_cross = C, k, n_cross
        n_proj = k if mode == "projected" else 0
        self.n_proj = n_proj
        self.weight = (
            nn.Parameter(torch.randn(C, n_proj + 3 * n_cross) / math.sqrt(C)) if n_proj + n_cross else None
        )
        if mode == "gram":
            iu = torch.triu_indices(C, C)
            # indices into the flat coordinate-major (B, 3C) layout: pair p, coordinate d
            pair_i = torch.cat([iu[0] + d * C for d in range(3)])
            pair_j = torch.cat([iu[1] + d * C for d in range(3)])
            self.register_buffer("pairs", torch.cat([pair_i, pair_j]), persistent=False)
            # backward of the Gram features: pair index of (i, j) for the symmetric C x C matrix
            sym = torch.empty(C, C, dtype=torch.long)
            sym[iu[0], iu[1]] = torch.arange(iu.shape[1])
            sym[iu[1], iu[0]] = torch.arange(iu.shape[1])
            self.register_buffer("sym_index", sym.reshape(-1), persistent=False)
            self.register_buffer("sym_weight", (1.0 + torch.eye(C)).reshape(-1), persistent=False)
            n_dot = C * (C + 1) // 2
        else:
            n_dot = C * k
        self.n_aug = C + n_cross
        self.n_out = n_dot + n_cross
        # parity-true: triple products are pseudo-scalars (0o), cross products of vectors axial (1e)
        self.irreps_in = pair_irreps(0, n_vectors)
        irreps_out = o3.Irreps(f"{n_dot}x0e+{n_cross}x0o+{C}x1o+{n_cross}x1e")
        self.irreps_out = irreps_out.remove_zero_multiplicities()

    def forward_coord_major(
        self, Vt: torch.Tensor, scalars: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``Vt (B, 3, C)`` -> ``(invariants, At (B, 3, C + n_cross))``; ``scalars`` (B, N), if given,
        are prepended to the invariants (one concatenation instead of two)."""
        B, C = Vt.shape[0], self.n_vectors
        Vt = Vt.contiguous()
        U = None
        if self.weight is not None:  # one (3B, C) x (C, n) product, not B tiny ones
            U = (Vt.view(B * 3, C) @ self.weight).view(B, 3, -1)  # (B, 3, n_proj + 3 n_cross)
        pre = [scalars] if scalars is not None and scalars.shape[-1] else []
        if self.mode == "gram":
            S = pre[0] if pre else None
            if not self.n_cross:  # scalars and dots in one buffer
                return scalars_and_gram(Vt, S, self.pairs, self.sym_index, self.sym_weight), Vt
            dots = triu_gram(Vt, self.pairs, self.sym_index, self.sym_weight)
        else:
            dots = (Vt[:, :, :, None] * U[:, :, None, : self.n_proj]).sum(1).reshape(B, C * self.n_proj)
        if not self.n_cross:
            return (torch.cat(pre + [dots], dim=1) if pre else dots), Vt
        m, p = self.n_cross, self.n_proj
        # one unbind (a single backward node) instead of three slices (three zero-filled grads)
        a, b, c = (U[..., p:] if p else U).view(B, 3, 3, m).unbind(2)
        X = torch.linalg.cross(a, b, dim=1)  # (B, 3, m)
        triple = (X * c).sum(1)  # (B, m)
        return torch.cat(pre + [dots, triple], dim=1), torch.cat([Vt, X], dim=2)

    def forward(self, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inv, A = self.forward_coord_major(V.transpose(1, 2))
        return inv, A.transpose(1, 2)


class GatedVectorLayer(nn.Module):
    """``(V (B, C_in, 3), S (B, N_in)) -> (V' (B, C_out, 3), S' (B, hidden))``.

    ``h = MLP([S, invariants(V)])`` (``depth`` Linear+SiLU layers of width ``hidden``),
    ``S' = h``, ``V'_o = squash(g_o(h) * sum_i W_io a_i)`` with ``a`` the input vectors plus cross
    products (see :class:`InvariantFeatures`) and ``g = Linear(h)`` one gate per output channel.
    ``squash(v) = v / sqrt(1 + |v|^2)`` (smooth, injective, equivariant) keeps hidden vectors in the
    unit ball, so stacking layers of polynomial invariants cannot blow up; ``squash=False`` skips it.
    """

    def __init__(
        self,
        n_vectors_in: int,
        n_scalars_in: int,
        n_vectors_out: int,
        hidden: int = 64,
        depth: int = 1,
        k: int = 8,
        n_cross: int | None = None,
        activation: type[nn.Module] = nn.SiLU,
        squash: bool = True,
    ):
        super().__init__()
        self.squash = squash
        _check_positive("n_scalars_in", n_scalars_in, allow_zero=True)
        _check_positive("n_vectors_out", n_vectors_out)
        _check_positive("hidden", hidden)
        _check_positive("depth", depth)
        self.invariants = InvariantFeatures(n_vectors_in, k=k, n_cross=n_cross)
        self.mlp = nn.Sequential(
            *linear_stack(n_scalars_in + self.invariants.n_out, hidden, depth, activation)
        )
        self.gate = nn.Linear(hidden, n_vectors_out)
        n_aug = self.invariants.n_aug
        self.mix = nn.Parameter(torch.randn(n_aug, n_vectors_out) / math.sqrt(n_aug))
        self.n_vectors_in, self.n_scalars_in = n_vectors_in, n_scalars_in
        self.n_vectors_out, self.n_scalars_out = n_vectors_out, hidden
        parity = self.invariants.n_cross == 0  # else pseudo-scalars reach the MLP: SO(3)-only labels
        self.irreps_in = pair_irreps(n_scalars_in, n_vectors_in, parity)
        self.irreps_out = pair_irreps(hidden, n_vectors_out, parity)

    def forward_coord_major(self, Vt: torch.Tensor, S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inv, A = self.invariants.forward_coord_major(Vt, S)
        h = self.mlp(inv)
        V = (A @ self.mix) * self.gate(h)[:, None, :]
        if self.squash:
            V = V * torch.rsqrt(1 + (V * V).sum(1, keepdim=True))
        return V, h

    def forward(self, V: torch.Tensor, S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        Vt, h = self.forward_coord_major(V.transpose(1, 2), S)
        return Vt.transpose(1, 2), h


class InvariantMLP(nn.Module):
    """``(V (B, C, 3), S (B, N)) -> (A (B, C + n_cross, 3), h (B, hidden))``: the invariants of ``V``
    (see :class:`InvariantFeatures`) and ``S`` through an MLP of ``depth`` Linear+activation layers.

    ``h`` is an arbitrary (learned) invariant function of the input; the augmented vectors ``A``
    (input vectors plus cross products) are what a :class:`VectorScalarHead` combines with
    coefficients from ``h``: ``sum_i c_i(h) a_i`` is the general SO(3)-equivariant vector function
    of vectors, so invariants -> MLP -> head is universal for l <= 1 inputs.

    ``compress_invariants``: pass the invariants (and input scalars) through ``asinh`` before the
    MLP. Dot and triple products grow with the square and cube of the input vectors: on Push, under
    random actions, 1% of steps have the cube spinning faster than 22 rad/s (``|w|^2`` ~ 500 next to
    position invariants of order 1), and critics fed such raw values blew up (docs/results.md
    section 4). ``asinh`` is the identity near 0 and logarithmic beyond 1, and elementwise, so
    invariance is untouched.
    """

    def __init__(
        self,
        n_vectors_in: int,
        n_scalars_in: int,
        hidden: int = 64,
        depth: int = 2,
        k: int = 8,
        n_cross: int | None = None,
        activation: type[nn.Module] = nn.SiLU,
        compress_invariants: bool = False,
    ):
        super().__init__()
        _check_positive("n_scalars_in", n_scalars_in, allow_zero=True)
        _check_positive("hidden", hidden)
        _check_positive("depth", depth)
        self.compress_invariants = bool(compress_invariants)
        self.invariants = InvariantFeatures(n_vectors_in, k=k, n_cross=n_cross)
        self.mlp = nn.Sequential(
            *linear_stack(n_scalars_in + self.invariants.n_out, hidden, depth, activation)
        )
        self.n_vectors_out, self.n_scalars_out = self.invariants.n_aug, hidden
        parity = self.invariants.n_cross == 0  # else pseudo-scalars reach the MLP: SO(3)-only labels
        self.irreps_in = pair_irreps(n_scalars_in, n_vectors_in, parity)
        self.irreps_out = pair_irreps(hidden, self.invariants.n_aug, parity)

    def mlp_input_t(self, Vt: torch.Tensor, S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mlp input (B, N + n_invariants), At (B, 3, C + n_cross))``: everything before the MLP
        (lets several nets on the same input share it, see ``eqrobot.nn.nets.grouped_forward``)."""
        inv, A = self.invariants.forward_coord_major(Vt, S)
        if self.compress_invariants:
            inv = fast_asinh(inv)
        return inv, A

    def forward_coord_major(self, Vt: torch.Tensor, S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inv, A = self.mlp_input_t(Vt, S)
        return A, self.mlp(inv)

    def forward(self, V: torch.Tensor, S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        A, h = self.forward_coord_major(V.transpose(1, 2), S)
        return A.transpose(1, 2), h


class VectorScalarHead(nn.Module):
    """``(V (B, C, 3), S (B, N)) -> (vectors (B, n_vectors, 3), scalars (B, n_scalars))``.

    Each output vector is ``sum_i c_oi(S) v_i`` with coefficients linear in the (already nonlinear,
    invariant) scalars; output scalars are linear in ``S``. For actor means, per-field log-stds
    (invariant scalars), predicted displacements, frames (3 vectors, not orthonormalised).
    """

    def __init__(self, n_vectors_in: int, n_scalars_in: int, n_vectors: int, n_scalars: int = 0):
        super().__init__()
        _check_positive("n_vectors_in", n_vectors_in)
        _check_positive("n_scalars_in", n_scalars_in)
        _check_positive("n_vectors", n_vectors, allow_zero=True)
        _check_positive("n_scalars", n_scalars, allow_zero=True)
        if n_vectors + n_scalars == 0:
            raise ValueError("VectorScalarHead with no outputs")
        self.n_vectors_in, self.n_vectors, self.n_scalars = n_vectors_in, n_vectors, n_scalars
        self.linear = nn.Linear(n_scalars_in, n_vectors * n_vectors_in + n_scalars)
        self.irreps_in = pair_irreps(n_scalars_in, n_vectors_in)
        self.irreps_out = pair_irreps(n_scalars, n_vectors)

    def forward_coord_major(self, Vt: torch.Tensor, S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``Vt (B, 3, C)`` -> ``(vectors (B, n_vectors, 3), scalars)``."""
        out = self.linear(S)
        nv = self.n_vectors * self.n_vectors_in
        coef = out[:, :nv].reshape(-1, self.n_vectors, 1, self.n_vectors_in)
        # (B, n, 1, C) * (B, 1, 3, C) summed over C; elementwise beats bmm for tiny per-sample matrices
        return (coef * Vt[:, None]).sum(-1), out[:, nv:]  # (B, n, 3)

    def forward(self, V: torch.Tensor, S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_coord_major(V.transpose(1, 2), S)


class InvariantHead(nn.Module):
    """``(V (B, C, 3), S (B, N)) -> scalars (B, n_out)``: a linear map of ``[S, invariants(V)]``.

    For critics, values, Q-functions (whose input spec simply holds observation + goal + action).
    """

    def __init__(
        self, n_vectors_in: int, n_scalars_in: int, n_out: int, k: int = 8, n_cross: int | None = None
    ):
        super().__init__()
        _check_positive("n_scalars_in", n_scalars_in, allow_zero=True)
        _check_positive("n_out", n_out)
        self.invariants = InvariantFeatures(n_vectors_in, k=k, n_cross=n_cross) if n_vectors_in else None
        n_inv = self.invariants.n_out if self.invariants is not None else 0
        if n_scalars_in + n_inv == 0:
            raise ValueError("InvariantHead with no inputs")
        self.linear = nn.Linear(n_scalars_in + n_inv, n_out)
        parity = self.invariants is None or self.invariants.n_cross == 0  # else it sums 0e and 0o
        self.irreps_in = pair_irreps(n_scalars_in, n_vectors_in, parity)
        self.irreps_out = pair_irreps(n_out, 0)

    def forward_coord_major(self, Vt: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
        if self.invariants is None:
            return self.linear(S)
        inv, _ = self.invariants.forward_coord_major(Vt, S)
        return self.linear(inv)

    def forward(self, V: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
        return self.forward_coord_major(V.transpose(1, 2), S)
