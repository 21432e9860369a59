"""Object-centric dynamics models on flat spec'd observations: SE(3)-equivariant and an MLP baseline.

The observation spec is parsed into a scene (:class:`SceneLayout`):

- **objects**: the spec's objects (``ArraySpec.objects()``: fields with role ``object``, e.g.
  position, orientation frame, linear and angular velocity). Objects must share one field signature
  (Stack's two cubes do); one set of weights serves them all, so the model is ready for any number
  of objects. An object whose points are all static is not modelled as one (its static fields
  are inputs, the others join the robot's);
- **static** fields never change within an episode and are inputs only: the fields with role
  ``static`` (gravity direction, base position) and whatever ``static_fields`` names (or
  :func:`detect_static_fields` finds);
- **robot**: the remaining fields (``ee_position``, ``ee_velocity``, ``gripper_width``, ...).

One step ``s_t, a_t -> s_{t+1}``:

1. (two or more objects) a *pair* net computes a message for each ordered object pair
   (receiver, sender; with robot state, gravity and base), summed per receiver;
2. an *object* net, anchored at the object's own position, reads the object, the robot, the static
   fields, the action and the summed messages and predicts the object's position change (vector),
   velocity changes (vector / pseudovector), a rotation vector ``dtheta`` (``1e``) and scalar
   changes, plus a reaction message to the robot;
3. a *robot* net, anchored at the end effector, reads the robot, the static fields, the action and
   the summed reaction messages and predicts the robot fields' changes.

Orientations update as ``R' = exp([dtheta]x) R`` followed by one Newton step of the polar
decomposition (``R <- 1.5 R - 0.5 R R^T R``), so they stay rotations to rounding error over long
rollouts. Every net is an :class:`eqrobot.nn.EquivariantNet` (positions relative to its anchor,
gravity an input vector), which makes the whole step exactly SE(3)-equivariant; the baseline
(``kind="mlp"``) has the same structure, inputs and outputs with :class:`eqrobot.nn.MLPNet` nets
of matched parameter counts.

Normalisation keeps equivariance: all points share one length scale, each vector field one scalar
scale (RMS norm), scalars are standardised per component.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from eqrobot.geometry.so3 import exp_so3, log_so3
from eqrobot.geometry.spec import ArraySpec, Field, GeometrySpec

_ROBOT_ANCHOR = "ee_position"


# --------------------------------------------------------------------------------------------
# scene layout
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SceneLayout:
    """How an observation spec splits into robot, objects and static fields."""

    objects: tuple[str, ...]
    object_fields: tuple[tuple[Field, ...], ...]  # per object, in one shared suffix order
    suffixes: tuple[str, ...]  # field suffix per object slot ("position", "orientation", ...)
    robot_fields: tuple[Field, ...]
    static_fields: tuple[Field, ...]  # global static fields (not per object)
    object_static: tuple[bool, ...]  # per suffix: static (input only)

    @classmethod
    def from_spec(cls, obs: ArraySpec, static_fields=()) -> SceneLayout:
        unknown = set(static_fields) - {f.name for f in obs.fields}
        if unknown:
            raise ValueError(
                f"static_fields {sorted(unknown)} are not observation fields: {[f.name for f in obs]}"
            )
        static_names = {f.name for f in obs.by_role("static")} | set(static_fields)
        # an object none of whose points moves (all static) is scenery, not an object to predict
        per_obj = {
            name: fields
            for name, fields in obs.objects().items()
            if not all(f.name in static_names for f in fields if f.kind == "point")
        }
        names = list(per_obj)
        owned = {f.name for fields in per_obj.values() for f in fields}
        suffixes: tuple[str, ...] = ()
        sig = None
        for n in names:
            s = tuple((f.attribute, f.kind, f.size) for f in per_obj[n])
            if sig is None:
                sig, suffixes = s, tuple(x[0] for x in s)
            elif s != sig:
                raise NotImplementedError(
                    f"objects {names[0]!r} and {n!r} have different field signatures ({sig} vs {s}); "
                    "the object-centric model shares one net across objects"
                )
        ordered = tuple(per_obj[n] for n in names)
        obj_static = tuple(
            all(fields[k].name in static_names for fields in ordered) for k in range(len(suffixes))
        )
        robot = tuple(f for f in obs.fields if f.name not in owned and f.name not in static_names)
        static = tuple(f for f in obs.fields if f.name not in owned and f.name in static_names)
        if not any(f.kind == "point" for f in robot):
            raise ValueError(f"no robot point field (e.g. {_ROBOT_ANCHOR!r}) in the observation spec {obs}")
        return cls(tuple(names), ordered, suffixes, robot, static, obj_static)

    @property
    def robot_anchor(self) -> str:
        names = [f.name for f in self.robot_fields if f.kind == "point"]
        return _ROBOT_ANCHOR if _ROBOT_ANCHOR in names else names[0]


class _AnchorRelativeMLP(nn.Module):
    """An MLP fed points relative to its anchor (the same inputs as the equivariant net: translation
    invariant, rotations must be learned). The anchor's own coordinates become zeros."""

    def __init__(self, net: nn.Module, in_spec: ArraySpec, anchor: str):
        super().__init__()
        self.net = net
        a0 = in_spec[anchor].start
        src = list(range(in_spec.dim))
        mask = torch.zeros(in_spec.dim)
        for f in in_spec.fields:
            if f.kind == "point":
                for j in range(3):
                    src[f.start + j] = a0 + j
                    mask[f.start + j] = 1.0
        self.register_buffer("anchor_idx", torch.tensor(src, dtype=torch.long), persistent=False)
        self.register_buffer("point_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x - self.point_mask.to(x.dtype) * x[:, self.anchor_idx])


def detect_static_fields(data, atol: float = 1e-7) -> tuple[str, ...]:
    """Observation fields that never change between ``observation`` and ``next_observation``."""
    spec = data.spec.observation
    diff = np.abs(np.asarray(data.next_observation, np.float64) - np.asarray(data.observation, np.float64))
    return tuple(f.name for f in spec.fields if diff[:, f.slice].max(initial=0.0) <= atol)


def _delta_size(f: Field) -> int:
    return 3 if f.kind == "frame" else f.size


def _delta_kind(kind: str) -> str:
    return {
        "point": "vector",
        "vector": "vector",
        "pseudovector": "pseudovector",
        "frame": "pseudovector",
        "scalar": "scalar",
    }[kind]


# --------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------
@dataclass
class DynamicsConfig:
    """Hyper-parameters of :class:`DynamicsModel` (saved in checkpoints)."""

    kind: str = "equivariant"  # or "mlp"
    hidden: int = 64
    layers: int = 2
    vector_channels: int = 16
    message_vectors: int = 4
    message_scalars: int = 8
    length_scale: float = 0.1
    max_delta: float = 10.0  # radial soft limit of each predicted change, in units of its typical size
    static_fields: tuple[str, ...] = ()
    param_targets: dict = field(default_factory=dict)  # mlp only: net name -> parameter count to match

    def __post_init__(self):
        if self.kind not in ("equivariant", "mlp"):
            raise ValueError(f"kind must be 'equivariant' or 'mlp', got {self.kind!r}")
        self.static_fields = tuple(self.static_fields)


class DynamicsModel(nn.Module):
    """``step(obs, action) -> next_obs`` on flat spec'd arrays (batched torch); see the module docstring."""

    def __init__(self, spec: GeometrySpec, config: DynamicsConfig | None = None, **overrides):
        super().__init__()
        config = replace(config or DynamicsConfig(), **overrides)
        self.config = config
        self.geometry_spec = spec
        obs, act = spec.observation, spec.action
        if any(f.kind in ("point", "frame") for f in act.fields):
            raise ValueError("actions with point/frame fields are not supported")
        self.layout = lay = SceneLayout.from_spec(obs, config.static_fields)
        n_obj = len(lay.objects)
        Mv, Ms = config.message_vectors, config.message_scalars
        msg = [(f"m{i}", "vector") for i in range(Mv)] + ([("ms", "scalar", Ms)] if Ms else [])
        robot_in = [(f"robot/{f.name}", f.kind, f.size) for f in lay.robot_fields]
        static_in = [(f"static/{f.name}", f.kind, f.size) for f in lay.static_fields]
        act_in = [(f"action/{f.name}", f.kind, f.size) for f in act.fields]
        self_in = (
            [(f"self/{s}", f.kind, f.size) for s, f in zip(lay.suffixes, lay.object_fields[0], strict=True)]
            if n_obj
            else []
        )
        obj_out = [
            (f"d/{s}", _delta_kind(f.kind), _delta_size(f))
            for s, f, st in zip(
                lay.suffixes, lay.object_fields[0] if n_obj else (), lay.object_static, strict=False
            )
            if not st
        ]
        robot_out = [(f"d/{f.name}", _delta_kind(f.kind), _delta_size(f)) for f in lay.robot_fields]

        self.specs: dict[str, tuple[ArraySpec, ArraySpec, str]] = {}
        if n_obj:
            pair_extra = []
            if n_obj > 1:
                send_in = [
                    (f"send/{s}", f.kind, f.size)
                    for s, f in zip(lay.suffixes, lay.object_fields[0], strict=True)
                ]
                self.specs["pair"] = (
                    ArraySpec(self_in + send_in + robot_in + static_in),
                    ArraySpec([(f"msg/{n}", k, *rest) for n, k, *rest in msg]),
                    "self/position",
                )
                pair_extra = [(f"msg/{n}", k, *rest) for n, k, *rest in msg]
            self.specs["object"] = (
                ArraySpec(self_in + robot_in + static_in + act_in + pair_extra),
                ArraySpec(obj_out + [(f"react/{n}", k, *rest) for n, k, *rest in msg]),
                "self/position",
            )
        react_in = [(f"react/{n}", k, *rest) for n, k, *rest in msg] if n_obj else []
        self.specs["robot"] = (
            ArraySpec(robot_in + static_in + act_in + react_in),
            ArraySpec(robot_out),
            f"robot/{lay.robot_anchor}",
        )
        self.nets = nn.ModuleDict({name: self._make_net(name, *s) for name, s in self.specs.items()})
        self._build_indices()
        # normalisation buffers (identity until set_normalization)
        self.register_buffer("in_scale", torch.ones(obs.dim))
        self.register_buffer("in_shift", torch.zeros(obs.dim))
        self.register_buffer("out_scale", torch.ones(self._y_dim))
        self.register_buffer("out_shift", torch.zeros(self._y_dim))
        self.register_buffer("err_weight", torch.ones(obs.dim))
        self.register_buffer("normalized", torch.zeros((), dtype=torch.bool))
        self._set_default_scales()

    # --- construction helpers ------------------------------------------------------------------
    def _make_net(self, name, in_spec, out_spec, anchor):
        from eqrobot import nn as enn

        c = self.config
        if c.kind == "equivariant":
            return enn.EquivariantNet(
                in_spec,
                out_spec,
                hidden=c.hidden,
                layers=c.layers,
                vector_channels=c.vector_channels,
                anchor=anchor,
            )
        target = c.param_targets.get(name)
        if target is None:
            net = enn.MLPNet(in_spec, out_spec, hidden=c.hidden, layers=c.layers)
        else:
            net = enn.mlp_matching(in_spec, out_spec, int(target), layers=c.layers)
        return _AnchorRelativeMLP(net, in_spec, anchor)

    def _build_indices(self):
        """Index tensors that gather each net's input from [state, action] and scatter outputs back."""
        obs, act, lay = self.geometry_spec.observation, self.geometry_spec.action, self.layout
        D = obs.dim
        n_obj = len(lay.objects)

        def idx(f: Field, offset=0):
            return list(range(offset + f.start, offset + f.start + f.size))

        robot_idx = [i for f in lay.robot_fields for i in idx(f)]
        static_idx = [i for f in lay.static_fields for i in idx(f)]
        act_idx = [i for f in act.fields for i in idx(f, D)]
        obj_self = [[i for f in fields for i in idx(f)] for fields in lay.object_fields]
        self.register_buffer(
            "idx_robot", torch.tensor(robot_idx + static_idx + act_idx, dtype=torch.long), persistent=False
        )
        if n_obj:
            self.register_buffer(
                "idx_object",
                torch.tensor([s + robot_idx + static_idx + act_idx for s in obj_self], dtype=torch.long),
                persistent=False,
            )
        if n_obj > 1:
            pairs = [(i, j) for i in range(n_obj) for j in range(n_obj) if i != j]
            self.register_buffer(
                "idx_pair",
                torch.tensor(
                    [obj_self[i] + obj_self[j] + robot_idx + static_idx for i, j in pairs], dtype=torch.long
                ),
                persistent=False,
            )
            recv = torch.zeros(n_obj, len(pairs))
            for p, (i, _) in enumerate(pairs):
                recv[i, p] = 1.0
            self.register_buffer("pair_sum", recv, persistent=False)
        # outputs: y = [robot_out (r), object_out_0 (o) ... object_out_{n-1}] (deltas only, no messages)
        r_spec = self.specs["robot"][1]
        o_spec = self.specs["object"][1] if n_obj else None
        self._n_delta_obj = sum(f.size for f in o_spec.fields if f.name.startswith("d/")) if n_obj else 0
        add_obs, add_y, frames = [], [], []
        y_fields: list[tuple[Field, int, str]] = []  # (obs field, y start, delta kind)
        off = 0
        for f in lay.robot_fields:
            y_fields.append((f, off, _delta_kind(f.kind)))
            off += _delta_size(f)
        for fields in lay.object_fields:
            for f, st in zip(fields, lay.object_static, strict=True):
                if st:
                    continue
                y_fields.append((f, off, _delta_kind(f.kind)))
                off += 3 if f.kind == "frame" else f.size
        assert off == r_spec.dim + n_obj * self._n_delta_obj
        self._y_dim = off
        for f, y0, _ in y_fields:
            if f.kind == "frame":
                frames.append((f.slice, slice(y0, y0 + 3)))
            else:
                add_obs += idx(f)
                add_y += list(range(y0, y0 + f.size))
        self._y_fields = y_fields
        in_vec = [
            list(range(f.start, f.start + 3)) for f in obs.fields if f.kind in ("vector", "pseudovector")
        ]
        self.register_buffer(
            "in_vec_idx", torch.tensor(in_vec, dtype=torch.long).reshape(-1, 3), persistent=False
        )
        y_vec, y_sc = [], []
        for f, y0, dk in y_fields:
            if dk == "scalar":
                y_sc += list(range(y0, y0 + f.size))
            else:
                y_vec.append([y0, y0 + 1, y0 + 2])
        self.register_buffer(
            "y_vec_idx", torch.tensor(y_vec, dtype=torch.long).reshape(-1, 3), persistent=False
        )
        self.register_buffer("y_sc_idx", torch.tensor(y_sc, dtype=torch.long), persistent=False)
        self.register_buffer("add_obs", torch.tensor(add_obs, dtype=torch.long), persistent=False)
        self.register_buffer("add_y", torch.tensor(add_y, dtype=torch.long), persistent=False)
        self._frames = frames

    def _set_default_scales(self):
        obs = self.geometry_spec.observation
        L = self.config.length_scale
        with torch.no_grad():
            for f in obs.fields:
                if f.kind == "point":
                    self.in_scale[f.slice] = 1.0 / L

    # --- normalisation ---------------------------------------------------------------------
    @torch.no_grad()
    def set_normalization(self, data) -> None:
        """Input/output scales from a :class:`~eqrobot.dynamics.data.Transitions` (equivariance-safe)."""
        if data.spec.observation != self.geometry_spec.observation:
            raise ValueError("data and model observation specs differ")
        x = np.asarray(data.observation, np.float64)
        nx = np.asarray(data.next_observation, np.float64)
        obs, lay = self.geometry_spec.observation, self.layout
        L = self.config.length_scale
        in_scale = np.ones(obs.dim)
        in_shift = np.zeros(obs.dim)
        # pool statistics over objects for shared object slots
        groups: dict[str, list[Field]] = {}
        for f in obs.fields:
            groups.setdefault(f.name, [f])
        for k, suf in enumerate(lay.suffixes):
            fs = [fields[k] for fields in lay.object_fields]
            for f in fs:
                groups.pop(f.name, None)
            groups[f"object/{suf}"] = fs
        for fs in groups.values():
            kind = fs[0].kind
            vals = np.concatenate([x[:, f.slice] for f in fs], axis=0)
            for f in fs:
                if kind == "point":
                    in_scale[f.slice] = 1.0 / L
                elif kind in ("vector", "pseudovector"):
                    rms = np.sqrt(np.mean(np.sum(vals**2, axis=-1)))
                    in_scale[f.slice] = 1.0 / max(rms, 1e-6)
                elif kind == "scalar":
                    in_shift[f.slice] = vals.mean(0)
                    in_scale[f.slice] = 1.0 / np.maximum(vals.std(0), 1e-6)
        # output (delta) statistics, pooled per object slot
        deltas = self.target_deltas(x, nx)  # (N, y_dim)
        out_scale = np.ones(self._y_dim)
        out_shift = np.zeros(self._y_dim)
        err_w = np.zeros(obs.dim)
        slot: dict[str, list[tuple[Field, int]]] = {}
        for f, y0, _ in self._y_fields:
            key = f.name
            for fields in lay.object_fields:
                if f in fields:
                    key = f"object/{f.attribute}"
            slot.setdefault(key, []).append((f, y0))
        for items in slot.values():
            f0 = items[0][0]
            size = 3 if f0.kind == "frame" else f0.size
            vals = np.concatenate([deltas[:, y0 : y0 + size] for _, y0 in items], axis=0)
            if f0.kind == "scalar":
                mean, std = vals.mean(0), np.maximum(vals.std(0), 1e-6)
                scale_err = std
            else:
                mean = 0.0
                std = max(np.sqrt(np.mean(np.sum(vals**2, axis=-1))), 1e-6)
                scale_err = std
            for f, y0 in items:
                out_scale[y0 : y0 + size] = std
                out_shift[y0 : y0 + size] = mean
                n_fields = len(self._y_fields)
                if f.kind == "frame":  # |R - R'|_F^2 ~ 2 theta^2
                    err_w[f.slice] = 1.0 / (2.0 * scale_err**2) / n_fields
                elif f.kind == "scalar":
                    err_w[f.slice] = 1.0 / (np.asarray(scale_err) ** 2 * f.size) / n_fields
                else:
                    err_w[f.slice] = 1.0 / scale_err**2 / n_fields
        dt = self.in_scale.dtype
        self.in_scale.copy_(torch.as_tensor(in_scale, dtype=dt))
        self.in_shift.copy_(torch.as_tensor(in_shift, dtype=dt))
        self.out_scale.copy_(torch.as_tensor(out_scale, dtype=dt))
        self.out_shift.copy_(torch.as_tensor(out_shift, dtype=dt))
        self.err_weight.copy_(torch.as_tensor(err_w, dtype=dt))
        self.normalized.fill_(True)

    def target_deltas(self, x: np.ndarray, nx: np.ndarray) -> np.ndarray:
        """The model's regression targets (``y`` layout) for transitions ``x -> nx`` (numpy)."""
        out = np.zeros((len(x), self._y_dim))
        for f, y0, _ in self._y_fields:
            if f.kind == "frame":
                M = x[:, f.slice].reshape(-1, 3, 3)  # rows = columns of R = R^T
                Mn = nx[:, f.slice].reshape(-1, 3, 3)
                # R' = E R  =>  E = R' R^T = Mn^T M
                E = np.swapaxes(Mn, -1, -2) @ M
                out[:, y0 : y0 + 3] = log_so3(E)
            else:
                out[:, y0 : y0 + f.size] = nx[:, f.slice] - x[:, f.slice]
        return out

    # --- forward -----------------------------------------------------------------------------
    def predict_deltas(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Normalised net outputs ``y`` (B, y_dim) for a batch of states and actions."""
        B = obs.shape[0]
        act = self.geometry_spec.action
        a = action
        # the env's own action limits (radial for vectors), so samples outside the ball are safe
        parts = []
        for f in act.fields:
            v = a[..., f.slice]
            if f.kind in ("vector", "pseudovector"):
                v = v / torch.clamp(v.norm(dim=-1, keepdim=True), min=1.0)
            else:
                v = torch.clamp(v, -1.0, 1.0)
            parts.append(v)
        a = torch.cat(parts, dim=-1)
        xn = (obs - self.in_shift) * self.in_scale
        if self.in_vec_idx.numel() and self.config.max_delta:
            # velocities far outside the training range (runaway rollouts): soft radial limit
            c = 2.0 * self.config.max_delta
            v = xn[:, self.in_vec_idx]
            n = v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            xn = xn.clone()
            xn[:, self.in_vec_idx] = v * (c * torch.tanh(n / c) / n)
        src = torch.cat([xn, a], dim=-1)
        n_obj = len(self.layout.objects)
        outs = []
        if n_obj:
            obj_in = src[:, self.idx_object]  # (B, n, k)
            if n_obj > 1:
                pair_out = self.nets["pair"](src[:, self.idx_pair].reshape(B * self.idx_pair.shape[0], -1))
                pair_out = pair_out.reshape(B, self.idx_pair.shape[0], -1)
                msg = self._squash_msg(
                    torch.einsum("ip,bpk->bik", self.pair_sum.to(pair_out.dtype), pair_out)
                )
                obj_in = torch.cat([obj_in, msg], dim=-1)
            obj_out = self.nets["object"](obj_in.reshape(B * n_obj, -1)).reshape(B, n_obj, -1)
            nd = self._n_delta_obj
            react = self._squash_msg(obj_out[..., nd:].sum(1))
            robot_in = torch.cat([src[:, self.idx_robot], react], dim=-1)
            outs.append(self.nets["robot"](robot_in))
            outs.append(obj_out[..., :nd].reshape(B, n_obj * nd))
        else:
            outs.append(self.nets["robot"](src[:, self.idx_robot]))
        return torch.cat(outs, dim=-1)

    def _squash_msg(self, m: torch.Tensor, c: float = 10.0) -> torch.Tensor:
        """Radial soft limit of messages (vectors first, then scalars) between nets, so chained nets
        cannot compound polynomial growth far out of distribution."""
        k = 3 * self.config.message_vectors
        v = m[..., :k].reshape(*m.shape[:-1], -1, 3)
        n = v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        v = v * (c * torch.tanh(n / c) / n)
        return torch.cat([v.reshape(*m.shape[:-1], k), c * torch.tanh(m[..., k:] / c)], dim=-1)

    def limit(self, y: torch.Tensor) -> torch.Tensor:
        """Soft radial limit ``c tanh(|v| / c) v / |v|`` per predicted vector (scalars: ``c tanh(s / c)``),
        ``c = max_delta``: keeps long open-loop rollouts of an untrained or extrapolating model finite;
        radial, hence equivariant."""
        c = self.config.max_delta
        if not c or c <= 0:
            return y
        # non-finite outputs (only far outside the data) would poison the rollout: cap them first
        y = torch.nan_to_num(y, nan=0.0, posinf=1e30, neginf=-1e30)
        out = y.clone()
        if self.y_vec_idx.numel():
            v = y[:, self.y_vec_idx]  # (B, k, 3)
            n = v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            out[:, self.y_vec_idx] = v * (c * torch.tanh(n / c) / n)
        if self.y_sc_idx.numel():
            out[:, self.y_sc_idx] = c * torch.tanh(y[:, self.y_sc_idx] / c)
        return out

    def apply_deltas(self, obs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``s_{t+1}`` from ``s_t`` and normalised outputs ``y``."""
        d = y * self.out_scale + self.out_shift
        nxt = obs.clone()
        nxt[:, self.add_obs] = obs[:, self.add_obs] + d[:, self.add_y]
        for obs_sl, y_sl in self._frames:
            M = obs[:, obs_sl].reshape(-1, 3, 3)  # rows = columns of R
            E = exp_so3(d[:, y_sl])
            Mn = M @ E.transpose(-1, -2)
            Mn = 1.5 * Mn - 0.5 * Mn @ Mn.transpose(-1, -2) @ Mn  # one Newton step towards SO(3)
            nxt[:, obs_sl] = Mn.reshape(-1, 9)
        return nxt

    def step(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """One predicted step on flat arrays ``(B, obs_dim), (B, act_dim) -> (B, obs_dim)``."""
        squeeze = obs.dim() == 1
        if squeeze:
            obs, action = obs[None], action[None]
        out = self.apply_deltas(obs, self.limit(self.predict_deltas(obs, action)))
        return out[0] if squeeze else out

    forward = step

    def rollout(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``(B, obs_dim), (B, H, act_dim) -> (B, H, obs_dim)`` predicted states ``s_1 .. s_H``."""
        states = []
        x = obs
        for t in range(actions.shape[1]):
            x = self.step(x, actions[:, t])
            states.append(x)
        return torch.stack(states, dim=1)

    def state_error(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        """Normalised squared error per sample (frames compared as matrices)."""
        return ((pred - true) ** 2 * self.err_weight).sum(-1)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def net_params(self) -> dict[str, int]:
        return {k: sum(p.numel() for p in v.parameters()) for k, v in self.nets.items()}

    def extra_repr(self) -> str:
        lay = self.layout
        return (
            f"kind={self.config.kind}, objects={list(lay.objects)}, "
            f"robot={[f.name for f in lay.robot_fields]}, "
            f"static={[f.name for f in lay.static_fields]}, params={self.n_params()}"
        )


def make_model(spec: GeometrySpec, kind: str = "equivariant", data=None, **config) -> DynamicsModel:
    """Build a model; with ``data``, static fields are detected from it and normalisation is set."""
    static = tuple(config.pop("static_fields", ()))
    if data is not None:
        static = tuple(sorted(set(static) | set(detect_static_fields(data))))
    model = DynamicsModel(spec, DynamicsConfig(kind=kind, static_fields=static, **config))
    if data is not None:
        model.set_normalization(data)
    return model


def matched_mlp(model: DynamicsModel, data=None) -> DynamicsModel:
    """The MLP baseline with ``model``'s structure, inputs and outputs and, net by net, its
    parameter counts."""
    cfg = replace(model.config, kind="mlp", param_targets=model.net_params())
    mlp = DynamicsModel(model.geometry_spec, cfg)
    if data is not None:
        mlp.set_normalization(data)
    else:
        for name in ("in_scale", "in_shift", "out_scale", "out_shift", "err_weight", "normalized"):
            getattr(mlp, name).copy_(getattr(model, name))
    return mlp
