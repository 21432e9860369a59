"""The geometry spec: what each number of a flat observation, goal or action array *is*.

This is the contract between the environments and the networks (shared/DESIGN.md section 2).
Every env exposes a :class:`GeometrySpec`; each of its four parts (observation, achieved_goal,
desired_goal, action) is an :class:`ArraySpec`, a tuple of typed :class:`Field` s laid out
contiguously.

Field kinds and how a proper rigid motion ``x -> R x + t`` acts on them:

============  =====  ==================  ============================================
kind          size   e3nn irreps         action
============  =====  ==================  ============================================
point         3      1o                  ``R p + t``
vector        3      1o                  ``R v``   (velocity, displacement, gravity)
pseudovector  3      1e                  ``R w``   (angular velocity; det R = +1 only)
frame         9      3x1o                ``R c_i`` for each stored column ``c_i``
scalar        n      nx0e                unchanged
============  =====  ==================  ============================================

Vectors are stored in (x, y, z) order. e3nn's l=1 basis depends on its version ((y, z, x) up to
0.5, (x, y, z) in 0.6); the networks in :mod:`eqrobot.nn` only use basis-independent operations
(multiplicity mixing, dot products, cross products) so the order does not matter to them; use
:func:`eqrobot.nn.e3nn_view.xyz_to_e3nn_matrix`, which reads the basis off the installed e3nn, when
feeding a spec'd array to e3nn code that does care (spherical harmonics, Wigner-D matrices).

Every field also has a **role** saying what in the scene it describes:

* ``robot``: the robot's own state or command (end-effector position, velocity, gripper width);
* ``object``: a movable object's state; ``Field.obj`` names the object, and all fields of one
  object share its name (``ArraySpec.objects()`` lists them);
* ``static``: constant within an episode (gravity direction, robot base position).

Consumers ask the spec (``by_role``, ``objects``, ``Field.attribute``) and never parse field names.
A spec saved before roles existed (``from_dict`` of an old checkpoint or dataset, an unpickled old
space) gets its roles from :func:`infer_roles`, the one place that still reads the naming
convention (``<obj>_<attribute>``, ``gravity_direction``/``base_position`` static).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

KINDS = ("point", "vector", "pseudovector", "frame", "scalar")
_FIXED_SIZE = {"point": 3, "vector": 3, "pseudovector": 3, "frame": 9}
_IRREP = {"point": "1o", "vector": "1o", "pseudovector": "1e", "frame": "1o", "scalar": "0e"}
ROLES = ("robot", "object", "static")
LEGACY_STATIC_FIELDS = ("gravity_direction", "base_position")
"""Fields a spec saved without roles treats as static (what every env's table declares static)."""


def object_field_name(obj: str, attribute: str) -> str:
    """The name of an object's field: ``object_field_name("object1", "position") == "object1_position"``."""
    return f"{obj}_{attribute}"


def _local_name(name: str) -> str:
    """A field name without the ``"<part>/"`` prefixes that :meth:`ArraySpec.concat` adds."""
    return name.rpartition("/")[2]


@dataclass(frozen=True)
class Field:
    """One named, typed block of a flat array."""

    name: str
    """Field name, unique within its array (e.g. ``"ee_position"``)."""
    kind: str
    """One of ``point``, ``vector``, ``pseudovector``, ``frame``, ``scalar``."""
    start: int
    """Index of the field's first number in the flat array."""
    size: int
    """Number of entries: 3 for point/vector/pseudovector, 9 for frame, any n >= 1 for scalar."""
    role: str | None = None
    """``robot``, ``object`` or ``static`` (see the module docstring); None only before an
    :class:`ArraySpec` infers it."""
    obj: str | None = None
    """The object a ``role="object"`` field belongs to (e.g. ``"object1"``); None for other roles."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name!r}: unknown kind {self.kind!r}; expected one of {KINDS}")
        if self.role is not None and self.role not in ROLES:
            raise ValueError(f"field {self.name!r}: unknown role {self.role!r}; expected one of {ROLES}")
        if (self.role == "object") != (self.obj is not None):
            raise ValueError(
                f"field {self.name!r}: an object field needs obj=<object name> and only object fields "
                f"have one (role={self.role!r}, obj={self.obj!r})"
            )
        if self.obj is not None and not _local_name(self.name).startswith(object_field_name(self.obj, "")):
            raise ValueError(
                f"field {self.name!r} of object {self.obj!r} must be named "
                f"{object_field_name(self.obj, '<attribute>')!r}"
            )
        expected = _FIXED_SIZE.get(self.kind)
        if expected is not None and self.size != expected:
            raise ValueError(
                f"field {self.name!r} of kind {self.kind!r} must have size {expected}, got {self.size}"
            )
        if self.size < 1:
            raise ValueError(f"field {self.name!r}: size must be >= 1, got {self.size}")

    @property
    def slice(self) -> slice:
        return slice(self.start, self.start + self.size)

    @property
    def multiplicity(self) -> int:
        """How many irreps this field holds (3 for a frame, n for n scalars, else 1)."""
        if self.kind == "frame":
            return 3
        if self.kind == "scalar":
            return self.size
        return 1

    @property
    def irreps(self) -> str:
        return f"{self.multiplicity}x{_IRREP[self.kind]}"

    @property
    def is_geometric(self) -> bool:
        """True for the kinds a rotation acts on (everything but scalars)."""
        return self.kind != "scalar"

    @property
    def attribute(self) -> str:
        """An object field's name within its object (``"position"`` for ``"object1_position"``);
        for other roles the field's own name (without ``"<part>/"`` prefixes)."""
        local = _local_name(self.name)
        return local[len(object_field_name(self.obj, "")) :] if self.obj is not None else local


class ArraySpec:
    """An ordered, contiguous layout of fields for one flat array."""

    def __init__(self, fields: Iterable[tuple | Field]):
        """``fields``: :class:`Field` s (their ``start`` is recomputed) or tuples
        ``(name, kind[, size[, role[, obj]]])`` (size None: the kind's size, 1 for a scalar).

        Fields without a role get one from :func:`infer_roles`.
        """
        items: list[tuple] = []
        for item in fields:
            if isinstance(item, Field):
                items.append((item.name, item.kind, item.size, item.role, item.obj))
                continue
            if not 2 <= len(item) <= 5:
                raise ValueError(f"a field is (name, kind[, size[, role[, obj]]]), got {item!r}")
            name, kind, *rest = item
            size = rest[0] if rest and rest[0] is not None else _FIXED_SIZE.get(kind, 1)
            items.append((name, kind, size, *rest[1:], *(None,) * (3 - len(rest))))
        names = [it[0] for it in items]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"duplicate field names in spec: {sorted(dupes)}")
        if any(it[3] is None for it in items):
            inferred = infer_roles([(it[0], it[1]) for it in items])
            items = [it if it[3] is not None else (*it[:3], *inferred[i]) for i, it in enumerate(items)]
        built: list[Field] = []
        start = 0
        for name, kind, size, role, obj in items:
            built.append(Field(name, kind, start, size, role, obj))
            start += size
        self.fields: tuple[Field, ...] = tuple(built)
        self.dim: int = start
        self._by_name = {f.name: f for f in built}

    def __setstate__(self, state: dict) -> None:
        # a spec pickled before fields had roles (e.g. the observation space of an old SB3 zip):
        # rebuild it so that its fields get roles like a freshly built one
        self.__init__(state["fields"])

    # --- lookup -------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Field:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no field {name!r}; fields are {list(self._by_name)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __iter__(self):
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArraySpec) and self.fields == other.fields

    def __hash__(self) -> int:
        return hash(self.fields)

    def __repr__(self) -> str:
        inner = ", ".join(f"{f.name}:{f.kind}[{f.start}:{f.start + f.size}]" for f in self.fields)
        return f"ArraySpec({inner})"

    @classmethod
    def concat(cls, parts: dict[str, ArraySpec] | Sequence[ArraySpec]) -> ArraySpec:
        """Lay several specs end to end, e.g. observation + desired_goal as one network input.

        With a dict, field names are prefixed ``"<key>/"`` so they stay unique.
        """
        if isinstance(parts, dict):
            items = [
                (f"{key}/{f.name}", f.kind, f.size, f.role, f.obj)
                for key, spec in parts.items()
                for f in spec.fields
            ]
        else:
            items = [(f.name, f.kind, f.size, f.role, f.obj) for spec in parts for f in spec.fields]
        return cls(items)

    def of_kind(self, *kinds: str) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.kind in kinds)

    def by_role(self, *roles: str) -> tuple[Field, ...]:
        """The fields with one of ``roles`` (``"robot"``, ``"object"``, ``"static"``), in order."""
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown role(s) {sorted(unknown)}; roles are {ROLES}")
        return tuple(f for f in self.fields if f.role in roles)

    def objects(self) -> dict[str, tuple[Field, ...]]:
        """Object name -> its fields, objects in order of first appearance (empty without objects)."""
        out: dict[str, list[Field]] = {}
        for f in self.fields:
            if f.obj is not None:
                out.setdefault(f.obj, []).append(f)
        return {name: tuple(fields) for name, fields in out.items()}

    # --- conversions --------------------------------------------------------------------
    @property
    def irreps(self):
        """The layout as ``e3nn.o3.Irreps`` (not simplified: one entry per field, in order)."""
        from e3nn import o3

        return o3.Irreps("+".join(f.irreps for f in self.fields)) if self.fields else o3.Irreps("")

    def to_dict(self) -> list[dict]:
        """JSON-friendly description, e.g. for checkpoints and datasets."""
        return [
            {"name": f.name, "kind": f.kind, "start": f.start, "size": f.size, "role": f.role, "obj": f.obj}
            for f in self.fields
        ]

    @classmethod
    def from_dict(cls, items: Sequence[dict]) -> ArraySpec:
        """Inverse of :meth:`to_dict`; also reads dicts saved before roles existed (roles inferred)."""
        return cls((d["name"], d["kind"], d["size"], d.get("role"), d.get("obj")) for d in items)

    def split(self, x):
        """Dict of field name -> view ``x[..., field.slice]`` (numpy or torch)."""
        return {f.name: x[..., f.slice] for f in self.fields}

    # --- group action -------------------------------------------------------------------
    def transform(self, x, rotation, translation=None):
        """Apply the rigid motion ``p -> R p + t`` to a flat array ``x`` of shape ``(..., dim)``.

        ``rotation`` is a proper rotation matrix ``(3, 3)`` or batch ``(..., 3, 3)`` broadcastable
        against ``x``'s batch shape; ``translation`` ``(3,)``/``(..., 3)`` or None. Works on numpy
        arrays and torch tensors; returns a new array, the input is not modified.
        """
        if x.shape[-1] != self.dim:
            raise ValueError(f"array has {x.shape[-1]} entries in its last axis, spec expects {self.dim}")
        is_torch = not isinstance(x, np.ndarray)
        out = x.clone() if is_torch else np.array(x, copy=True)
        R = rotation
        if is_torch:
            import torch

            R = torch.as_tensor(R, dtype=x.dtype, device=x.device)
            t = None if translation is None else torch.as_tensor(translation, dtype=x.dtype, device=x.device)
        else:
            R = np.asarray(R, dtype=np.result_type(x.dtype, np.float32))
            t = None if translation is None else np.asarray(translation)
        Rt = R.transpose(-1, -2) if is_torch else np.swapaxes(R, -1, -2)
        for f in self.fields:
            if f.kind == "scalar":
                continue
            block = x[..., f.slice]
            vecs = block.reshape(*block.shape[:-1], f.multiplicity, 3)
            # row-vector convention v' = v R^T; a batched R (B, 3, 3) pairs with vecs (B, m, 3)
            rotated = vecs @ Rt
            if f.kind == "point" and t is not None:
                rotated = rotated + (t[..., None, :] if t.ndim > 1 else t)
            out[..., f.slice] = rotated.reshape(block.shape)
        return out


@dataclass(frozen=True)
class GeometrySpec:
    """The typed layout of an env's observation dict and its action."""

    observation: ArraySpec
    achieved_goal: ArraySpec
    desired_goal: ArraySpec
    action: ArraySpec

    def parts(self) -> dict[str, ArraySpec]:
        return {
            "observation": self.observation,
            "achieved_goal": self.achieved_goal,
            "desired_goal": self.desired_goal,
            "action": self.action,
        }

    def transform_obs(self, obs: dict, rotation, translation=None) -> dict:
        """Apply a rigid motion to a goal-conditioned observation dict (numpy or torch values)."""
        return {
            key: self.parts()[key].transform(value, rotation, translation) if key in self.parts() else value
            for key, value in obs.items()
        }

    def transform_action(self, action, rotation):
        """Rotate an action (actions hold vectors and scalars, never points)."""
        return self.action.transform(action, rotation, None)

    def flat_observation(self, keys=None) -> ArraySpec:
        """The layout of the observation dict flattened into one array (fields ``"<key>/<name>"``).

        ``keys``: the dict keys in flattening order, or a ``gymnasium.spaces.Dict`` (its key order);
        default: sorted, the order of the env's Dict space and so of gymnasium's
        ``FlattenObservation``.
        """
        if keys is None:
            keys = sorted(("observation", "achieved_goal", "desired_goal"))
        elif hasattr(keys, "spaces"):
            keys = list(keys.spaces)
        parts = self.parts()
        unknown = [k for k in keys if k not in parts]
        if unknown:
            raise ValueError(f"no spec part(s) {unknown}; parts are {list(parts)}")
        return ArraySpec.concat({k: parts[k] for k in keys})

    def to_dict(self) -> dict:
        return {k: v.to_dict() for k, v in self.parts().items()}

    @classmethod
    def from_dict(cls, d: dict) -> GeometrySpec:
        return cls(**{k: ArraySpec.from_dict(v) for k, v in d.items()})


def infer_roles(fields: Sequence[tuple[str, str]]) -> list[tuple[str, str | None]]:
    """``(role, obj)`` for each ``(name, kind)`` of a spec that declares no roles.

    For specs saved before roles existed, and hand-written specs that leave them out. The rule is
    the naming convention the envs always followed: a point ``<obj>_position`` (other than
    ``ee_position`` and the static ``base_position``) names an object, and every field named
    ``<obj>_*`` belongs to it (longest object name wins); ``gravity_direction`` and
    ``base_position`` are static; everything else is robot. ``"<part>/"`` prefixes are ignored.
    """
    locals_ = [(_local_name(name), kind) for name, kind in fields]
    suffix = object_field_name("", "position")
    objects = [
        local[: -len(suffix)]
        for local, kind in locals_
        if kind == "point"
        and local.endswith(suffix)
        and local not in ("ee_position", *LEGACY_STATIC_FIELDS)
        and len(local) > len(suffix)
    ]
    out: list[tuple[str, str | None]] = []
    for local, _ in locals_:
        if local in LEGACY_STATIC_FIELDS:
            out.append(("static", None))
            continue
        owner = max((o for o in objects if local.startswith(object_field_name(o, ""))), key=len, default=None)
        out.append(("object", owner) if owner is not None else ("robot", None))
    return out


def spec_differences(
    a: GeometrySpec, b: GeometrySpec, a_name: str = "first", b_name: str = "second"
) -> list[str]:
    """Human-readable differences between two geometry specs, one line per part (empty when equal).

    ``a_name``/``b_name`` label the two sides in the message (e.g. ``"checkpoint"`` and ``"env"``).
    """
    diffs = []
    pa, pb = a.parts(), b.parts()
    for part, sa in pa.items():
        sb = pb[part]
        if sa == sb:
            continue
        fa = {f.name: f for f in sa.fields}
        fb = {f.name: f for f in sb.fields}
        bits = []
        if only_a := sorted(set(fa) - set(fb)):
            bits.append(f"only in {a_name}: {only_a}")
        if only_b := sorted(set(fb) - set(fa)):
            bits.append(f"only in {b_name}: {only_b}")
        if changed := sorted(n for n in set(fa) & set(fb) if fa[n] != fb[n]):
            bits.append(f"different kind/layout: {changed}")
        diffs.append(f"{part}: " + ("; ".join(bits) or "same fields in another order"))
    return diffs
