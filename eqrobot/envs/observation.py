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

ROLE_ORDER = ("static", "robot", "object")


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
        table: the rows (default :data:`OBSERVATION_TABLE`): static rows first, then robot rows, then
            object rows (the layout every spec consumer expects, and what keeps :meth:`read` short).
    """

    def __init__(self, sim, robot, bodies: dict[str, int], control_yaw: bool, table=OBSERVATION_TABLE):
        rows = [r for r in table if control_yaw or not r.yaw_control_only]
        order = [ROLE_ORDER.index(r.role) for r in rows]
        if order != sorted(order):
            raise ValueError(
                f"observation table rows must be ordered by role {ROLE_ORDER}, got {[r.role for r in rows]}"
            )
        self.sim, self.robot = sim, robot
        self.spec = observation_spec(tuple(bodies), control_yaw, table)
        self._bodies = tuple(bodies.values())
        self._static_rows = tuple(r for r in rows if r.role == "static")
        self._robot_reads = tuple(r.read for r in rows if r.role == "robot")
        self._object_reads = tuple(r.read for r in rows if r.role == "object")
        self._static_values: tuple = ()
        self._dim = self.spec.dim
        self._checked = False

    def reset(self) -> None:
        """Evaluate the static rows; call after the scene has been laid out for the episode.

        The first call also checks that every reader returns as many numbers as its field holds (the hot
        path fills a fixed-size array and would not notice a reader that returns too many).
        """
        static = [tuple(r.read(self.sim, self.robot)) for r in self._static_rows]
        self._static_values = tuple(v for values in static for v in values)
        if self._checked:
            return
        self._checked = True
        self.robot.read()
        states = self.sim.body_states(self._bodies)
        values = [*static, *(read(self.robot) for read in self._robot_reads)]
        values += [read(state) for state in states for read in self._object_reads]
        for f, v in zip(self.spec.fields, values, strict=True):
            if len(v) != f.size:
                raise ValueError(
                    f"observation field {f.name!r} ({f.kind}) holds {f.size} numbers but its reader "
                    f"returned {len(v)}: fix its row in the observation table"
                )

    def read(self) -> np.ndarray:
        """The observation vector (float32, ``spec.dim`` entries) of the current state."""
        robot = self.robot
        robot.read()
        vals = [*self._static_values]
        for read in self._robot_reads:
            vals += read(robot)
        reads = self._object_reads
        for state in self.sim.body_states(self._bodies):
            for read in reads:
                vals += read(state)
        return np.fromiter(vals, np.float32, self._dim)
