"""The observation table: one row per observation field, the single source of its layout and values.

Each row names a field, its kind (:mod:`eqrobot.geometry.spec`), its role and the reader that
produces its numbers. The same rows build the env's :class:`~eqrobot.geometry.spec.GeometrySpec`
(:func:`observation_spec`) and its observation vector (:class:`ObservationReader`), so adding a field
is adding one row here. Readers by role:

* ``static``: ``read(sim, robot) -> numbers``, evaluated once per reset (constant in an episode);
* ``robot``: ``read(robot) -> numbers``, evaluated every step after :meth:`Panda.read` refreshed the
  robot's state;
* ``object``: ``read(body_state) -> numbers`` with ``body_state = (position, quaternion xyzw,
  linear velocity, angular velocity)`` as PyBullet returns them, evaluated for every object of the
  task; an object row's name is the attribute (``"position"``) and the field is ``<obj>_<attribute>``.

The observation is laid out in table order, object rows repeated object by object where they stand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter

import numpy as np

from eqrobot.geometry.spec import ArraySpec, object_field_name
from eqrobot.sim.transforms import quat_to_frame_columns


@dataclass(frozen=True)
class ObservationRow:
    """One field of the observation table (see the module docstring)."""

    name: str
    kind: str
    role: str
    read: Callable
    size: int | None = None  # None: the kind's size (scalars: 1)
    yaw_control_only: bool = False  # present only when the env has the yaw-rate action


def _gripper_width(robot) -> tuple[float]:
    return (robot.gripper_width,)


def _orientation(state) -> tuple:
    return quat_to_frame_columns(state[1])


OBSERVATION_TABLE: tuple[ObservationRow, ...] = (
    ObservationRow("gravity_direction", "vector", "static", lambda sim, robot: sim.gravity_direction),
    ObservationRow("base_position", "point", "static", lambda sim, robot: robot.base_position),
    ObservationRow("ee_position", "point", "robot", attrgetter("ee_position")),
    ObservationRow("ee_velocity", "vector", "robot", attrgetter("ee_velocity")),
    ObservationRow("gripper_width", "scalar", "robot", _gripper_width, size=1),
    ObservationRow("ee_orientation", "frame", "robot", attrgetter("ee_frame"), yaw_control_only=True),
    ObservationRow("position", "point", "object", itemgetter(0)),
    ObservationRow("orientation", "frame", "object", _orientation),
    ObservationRow("linear_velocity", "vector", "object", itemgetter(2)),
    ObservationRow("angular_velocity", "pseudovector", "object", itemgetter(3)),
)
"""Every observation field of every env, in layout order."""


@dataclass(frozen=True)
class _Entry:
    """A row expanded for one env: the field's full name and, for object rows, its object."""

    row: ObservationRow
    name: str
    obj: str | None


def _expand(object_names: Sequence[str], control_yaw: bool, table=OBSERVATION_TABLE) -> list[_Entry]:
    rows = [r for r in table if control_yaw or not r.yaw_control_only]
    out: list[_Entry] = []
    i = 0
    while i < len(rows):
        if rows[i].role != "object":
            out.append(_Entry(rows[i], rows[i].name, None))
            i += 1
            continue
        j = i
        while j < len(rows) and rows[j].role == "object":
            j += 1
        for obj in object_names:  # a block of object rows, object by object
            out += [_Entry(r, object_field_name(obj, r.name), obj) for r in rows[i:j]]
        i = j
    return out


def observation_spec(object_names: Sequence[str], control_yaw: bool, table=OBSERVATION_TABLE) -> ArraySpec:
    """The observation's :class:`ArraySpec` for a scene with these objects."""
    return ArraySpec(
        (e.name, e.row.kind, e.row.size, e.row.role, e.obj) for e in _expand(object_names, control_yaw, table)
    )


class ObservationReader:
    """Produces the flat float32 observation of a scene from the table.

    Args:
        sim: the :class:`~eqrobot.sim.Simulator`.
        robot: the :class:`~eqrobot.sim.Panda`.
        bodies: object name -> PyBullet body id, in the task's object order.
        control_yaw: whether the yaw-only rows are present.
    """

    def __init__(self, sim, robot, bodies: dict[str, int], control_yaw: bool, table=OBSERVATION_TABLE):
        self.sim, self.robot = sim, robot
        entries = _expand(tuple(bodies), control_yaw, table)
        self.spec = observation_spec(tuple(bodies), control_yaw, table)
        self._bodies = tuple(bodies.values())
        self._static_rows = [e.row for e in entries if e.row.role == "static"]
        # sources per step: [robot, static value 0, static value 1, ..., body state 0, body state 1, ...]
        n_static = len(self._static_rows)
        body_index = {obj: k for k, obj in enumerate(bodies)}
        plan, k_static = [], 0
        for e in entries:
            if e.row.role == "static":
                plan.append((_same, 1 + k_static))
                k_static += 1
            elif e.row.role == "robot":
                plan.append((e.row.read, 0))
            else:
                plan.append((e.row.read, 1 + n_static + body_index[e.obj]))
        self._plan = tuple(plan)
        self._static_values: tuple = ()
        self._dim = self.spec.dim

    def reset(self) -> None:
        """Evaluate the static rows; call after the scene has been laid out for the episode."""
        self._static_values = tuple(tuple(r.read(self.sim, self.robot)) for r in self._static_rows)

    def read(self) -> np.ndarray:
        """The observation vector (float32, ``spec.dim`` entries) of the current state."""
        self.robot.read()
        sources = [self.robot, *self._static_values, *self.sim.body_states(self._bodies)]
        vals: list = []
        for read, src in self._plan:
            vals += read(sources[src])
        return np.fromiter(vals, np.float32, self._dim)


def _same(values):
    return values
