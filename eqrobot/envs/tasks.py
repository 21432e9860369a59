"""Tasks: what is in the scene, how it is sampled, and what the goal is.

A task is small: its objects, its goal fields, a sampler (in the canonical task frame: z up,
robot base at the origin, table top at z = 0) and the success thresholds. Everything else
(observation layout, symmetry groups, rewards, errors) is shared by :class:`eqrobot.envs.RobotTaskEnv`.

Goal fields name where the achieved goal comes from in the observation (``"ee_position"``,
``"<obj>_position"``, ``"<obj>_orientation"``); the desired goal has the same layout. Success:
every ``point`` goal field within ``distance_threshold`` (m) and every ``frame`` goal field within
``angle_threshold`` (rad, geodesic angle). Dense reward: ``-(sum of distances + angle_weight *
sum of angles)``; sparse reward: ``0`` on success, else ``-1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from eqrobot.geometry.so3 import rot_z


@dataclass(frozen=True)
class ObjectSpec:
    """A primitive object of a task (sizes in metres, mass in kg)."""

    name: str
    shape: str = "box"  # box | cylinder | sphere
    size: tuple = (0.04, 0.04, 0.04)
    mass: float = 1.0
    lateral_friction: float = 1.0
    spinning_friction: float = 0.001
    rgba: tuple = (0.1, 0.8, 0.1, 1.0)


class Task:
    """Base class: subclasses set the class attributes and implement :meth:`sample`."""

    name = "Task"
    objects: tuple[ObjectSpec, ...] = ()
    goal_fields: tuple[tuple[str, str], ...] = ()  # (name, kind) with kind "point" or "frame"
    markers: tuple[
        tuple[str, str, tuple, tuple], ...
    ] = ()  # ghost goal markers (goal field, shape, size, rgba)
    control_yaw = False
    max_episode_steps = 50
    distance_threshold = 0.05
    angle_threshold = 0.2
    angle_weight = 0.1
    center = np.array([0.6, 0.0, 0.0])  # workspace centre in the task frame
    table_radius = 1.0  # m: the round table centred on the robot base
    table_friction = 1.0  # lateral friction of the table top (PyBullet multiplies the two bodies')

    def sample(self, rng: np.random.Generator) -> tuple[dict, dict]:
        """Return ``(object_poses, goal)`` in the task frame.

        ``object_poses``: name -> (position (3,), rotation (3, 3)); ``goal``: goal-field name ->
        position (3,) for points or rotation (3, 3) for frames.
        """
        raise NotImplementedError

    # helpers
    def _xy(self, rng, half_range: float, z: float) -> np.ndarray:
        xy = rng.uniform(-half_range, half_range, size=2)
        return self.center + np.array([xy[0], xy[1], z])


class Reach(Task):
    """Move the end effector (finger tips) to a goal point in a 0.3 m cube in front of the robot."""

    name = "Reach"
    goal_fields = (("ee_position", "point"),)
    markers = (("ee_position", "sphere", (0.02,), (0.9, 0.1, 0.1, 0.35)),)

    def sample(self, rng):
        goal = self.center + np.array([0.0, 0.0, 0.15]) + rng.uniform(-0.15, 0.15, size=3)
        return {}, {"ee_position": goal}


CUBE = 0.04


class Push(Task):
    """Push a 4 cm cube (1 kg) to a goal on the table (both uniform in a 0.3 m square)."""

    name = "Push"
    objects = (ObjectSpec("object"),)
    goal_fields = (("object_position", "point"),)
    markers = (("object_position", "box", (CUBE,) * 3, (0.1, 0.8, 0.1, 0.3)),)

    def sample(self, rng):
        obj = self._xy(rng, 0.15, CUBE / 2)
        goal = self._xy(rng, 0.15, CUBE / 2)
        return {"object": (obj, np.eye(3))}, {"object_position": goal}


class PickAndPlace(Task):
    """Pick up a 4 cm cube and hold it at a goal up to 0.2 m above the table (30% on the table)."""

    name = "PickAndPlace"
    objects = (ObjectSpec("object"),)
    goal_fields = (("object_position", "point"),)
    markers = (("object_position", "box", (CUBE,) * 3, (0.1, 0.8, 0.1, 0.3)),)

    def sample(self, rng):
        obj = self._xy(rng, 0.15, CUBE / 2)
        goal = self._xy(rng, 0.15, CUBE / 2)
        z = rng.uniform(0.0, 0.2)
        if rng.random() >= 0.3:
            goal[2] += z
        return {"object": (obj, np.eye(3))}, {"object_position": goal}


class Stack(Task):
    """Put cube 1 on a goal on the table and cube 2 on top of it (100 steps)."""

    name = "Stack"
    objects = (
        ObjectSpec("object1", rgba=(0.1, 0.1, 0.9, 1.0)),
        ObjectSpec("object2", rgba=(0.1, 0.8, 0.1, 1.0)),
    )
    goal_fields = (("object1_position", "point"), ("object2_position", "point"))
    markers = (
        ("object1_position", "box", (CUBE,) * 3, (0.1, 0.1, 0.9, 0.3)),
        ("object2_position", "box", (CUBE,) * 3, (0.1, 0.8, 0.1, 0.3)),
    )
    max_episode_steps = 100

    def sample(self, rng):
        for _ in range(1000):
            o1 = self._xy(rng, 0.15, CUBE / 2)
            o2 = self._xy(rng, 0.15, CUBE / 2)
            g1 = self._xy(rng, 0.15, CUBE / 2)
            if (
                np.linalg.norm(o1 - o2) > 0.1
                and np.linalg.norm(g1 - o2) > 0.1
                and np.linalg.norm(g1 - o1) > 0.06
            ):
                break
        g2 = g1 + np.array([0.0, 0.0, CUBE])
        return (
            {"object1": (o1, np.eye(3)), "object2": (o2, np.eye(3))},
            {"object1_position": g1, "object2_position": g2},
        )


class Rotate(Task):
    """Pick up an 8 x 4 x 4 cm block and put it down at a goal position AND goal orientation.

    The goal orientation is a yaw about the up axis (the block's long axis points a new way), given
    as a frame; success needs the position within 5 cm and the orientation within 0.2 rad. Uses the
    yaw-rate action (action = ee_displacement, gripper, yaw_rate).
    """

    name = "Rotate"
    objects = (ObjectSpec("object", size=(0.08, 0.04, 0.04), mass=0.5, rgba=(0.9, 0.5, 0.1, 1.0)),)
    goal_fields = (("object_position", "point"), ("object_orientation", "frame"))
    markers = (("object_position", "box", (0.08, 0.04, 0.04), (0.9, 0.5, 0.1, 0.3)),)
    control_yaw = True

    def sample(self, rng):
        obj = self._xy(rng, 0.12, CUBE / 2)
        yaw0 = rng.uniform(-math.pi / 4, math.pi / 4)
        goal = self._xy(rng, 0.12, CUBE / 2)
        # a yaw change of at least 30 degrees, ending within +-90 degrees of the task frame
        while True:
            yaw_g = rng.uniform(-math.pi / 2, math.pi / 2)
            if abs(yaw_g - yaw0) > math.pi / 6:
                break
        return {"object": (obj, rot_z(yaw0))}, {"object_position": goal, "object_orientation": rot_z(yaw_g)}


PUCK_RADIUS, PUCK_HEIGHT = 0.03, 0.03


class Slide(Task):
    """Slide a puck (6 cm across, 3 cm tall, 1 kg) to a goal beyond the arm's reach (panda-gym's Slide).

    The puck starts in the 0.3 m square in front of the robot (as Push); the goal lies 0.4 m further
    out (0.85-1.15 m from the base, beyond the Panda's reach on the table), so the puck must be
    sent sliding. The table top's friction is low: the puck-table friction coefficient is 0.02, as in
    panda-gym (its puck 0.04 times its table's PyBullet default 0.5), so a puck decelerates at
    about 0.2 m/s^2 and needs about 2 s to slide 0.4 m: episodes are 100 steps (4 s at 25 Hz).
    """

    name = "Slide"
    objects = (
        ObjectSpec(
            "object", shape="cylinder", size=(PUCK_RADIUS, PUCK_HEIGHT), mass=1.0, rgba=(0.1, 0.9, 0.1, 1.0)
        ),
    )
    goal_fields = (("object_position", "point"),)
    markers = (("object_position", "cylinder", (PUCK_RADIUS, PUCK_HEIGHT), (0.1, 0.9, 0.1, 0.3)),)
    max_episode_steps = 100
    # A flat face of the hand sends the puck along the face's normal, not where the hand aims (a
    # strike 17 degrees off the hand's axis left 10 degrees off): the yaw-rate action (as Rotate's)
    # turns the hand to face the shot, and puts ee_orientation in the observation.
    control_yaw = True
    table_radius = 1.3  # the farthest goal is 1.16 m from the base
    table_friction = 0.02
    goal_offset = 0.4  # m: how much farther out than the puck's square the goal's square lies

    def sample(self, rng):
        obj = self._xy(rng, 0.15, PUCK_HEIGHT / 2)
        goal = self._xy(rng, 0.15, PUCK_HEIGHT / 2) + np.array([self.goal_offset, 0.0, 0.0])
        return {"object": (obj, np.eye(3))}, {"object_position": goal}


TASKS: dict[str, type[Task]] = {t.name: t for t in (Reach, Push, PickAndPlace, Stack, Rotate, Slide)}
