"""Scripted oracles: solve each task from the observation alone (no simulator access).

An oracle is stateless: every action is a function of the current observation, read through the
env's geometry spec. "Up" is minus the observed gravity direction and heights are measured from
the observed base position, so the same oracle works under task rotations and any world SE(3)
transform. ``OraclePolicy.predict`` mirrors SB3 (``(action, None)``; single or batched dict obs),
so it can collect demonstrations or be evaluated like a trained policy.
"""

from __future__ import annotations

import math

import numpy as np

from eqrobot.envs.core import make_geometry_spec
from eqrobot.envs.tasks import PUCK_HEIGHT, PUCK_RADIUS, TASKS
from eqrobot.geometry.spec import GeometrySpec

CUBE = 0.04
PUCK = 2 * PUCK_RADIUS  # the puck's diameter: its grasp width
# Slide (measured in eqrobot's scene, strikes from the launch point): a sliding puck decelerates at
# about friction 0.02 times g; a strike by the closed hand leaves the puck at SLIDE_STRIKE_GAIN times
# the hand's commanded travel past contact less SLIDE_STRIKE_SLACK (fit over 16 strikes of 0.24-0.41
# m/s: 1.7% rms), where contact is the hand at SLIDE_CONTACT from the puck's centre
SLIDE_DECELERATION = 0.205  # m/s^2
SLIDE_STRIKE_GAIN = 38.4  # 1/s
SLIDE_STRIKE_SLACK = 0.0013  # m
SLIDE_CONTACT = 0.0405  # m
SLIDE_GAP = 0.01  # m: where the hand waits behind the puck before striking
SLIDE_LAUNCH_RADIUS = 0.72  # m from the base: where the puck is struck from
SLIDE_LAUNCH_TOL = 0.015  # m: a puck this close to the launch point is struck where it lies
SLIDE_TOL, SLIDE_YAW_TOL, SLIDE_STILL = 0.002, 0.015, 0.01  # m, rad, m/s: ready to strike


class _Scene:
    """One observation, split into named fields (float64)."""

    def __init__(self, spec: GeometrySpec, obs: dict, i: int | None):
        def row(key):
            x = np.asarray(obs[key], dtype=np.float64)
            return x if i is None else x[i]

        o = row("observation")
        self.f = {f.name: o[f.slice] for f in spec.observation.fields}
        dg = row("desired_goal")
        self.goal = {f.name: dg[f.slice] for f in spec.desired_goal.fields}
        self.up = -self.f["gravity_direction"]
        self.base = self.f["base_position"]
        self.ee = self.f["ee_position"]
        self.width = float(self.f["gripper_width"][0])
        self.exact = False  # set by a behaviour whose displacement must not be shortened

    def height(self, x) -> float:
        return float((x - self.base) @ self.up)

    def horiz(self, v) -> np.ndarray:
        return v - (v @ self.up) * self.up

    def signed_angle(self, a, b) -> float:
        """Angle about up from horizontal direction a to b."""
        a, b = self.horiz(a), self.horiz(b)
        return math.atan2(float(np.cross(a, b) @ self.up), float(a @ b))


def _wrap_half(angle: float) -> float:
    """Wrap to [-pi/2, pi/2): a two-finger grasp is symmetric under a half turn."""
    return (angle + math.pi / 2) % math.pi - math.pi / 2


class OraclePolicy:
    """Scripted expert for one task; uses only observations.

    Args:
        env_or_spec: an env (wrapped or not) or its :class:`GeometrySpec`.
        task: task name; inferred from the env, or from the spec's goal fields (an ``object_position``
            goal without orientation gets the pick-and-place oracle, which also solves Push).
        max_step, max_yaw_step: the robot's action scales (read from the env when given one).
        control_dt: the control period in seconds (read from the env when given one); Slide times
            the release of the puck with it.
        push_strategy: for Push, ``"grasp"`` (default: grasp the cube and slide/carry it to the goal;
            eqrobot's Push does not block the gripper; >= 95% success) or ``"push"`` (closed-hand
            pushing only; about 80% success in 50 steps).
    """

    def __init__(
        self,
        env_or_spec,
        task: str | None = None,
        max_step: float = 0.05,
        max_yaw_step: float = 0.25,
        push_strategy: str = "grasp",
        control_dt: float = 0.04,
    ):
        if isinstance(env_or_spec, GeometrySpec):
            spec = env_or_spec
        elif hasattr(env_or_spec, "unwrapped") and hasattr(env_or_spec.unwrapped, "geometry_spec"):
            env = env_or_spec.unwrapped
            spec = env.geometry_spec
            task = task or env.task.name
            max_step, max_yaw_step = env.robot.max_step, env.robot.max_yaw_step
            control_dt = env.sim.dt
        elif hasattr(getattr(env_or_spec, "observation_space", None), "geometry_spec"):
            spec = env_or_spec.observation_space.geometry_spec
        else:
            raise ValueError("OraclePolicy needs an eqrobot env or its GeometrySpec")
        if task is None:
            names = tuple(f.name for f in spec.desired_goal.fields)
            if names == ("ee_position",):
                task = "Reach"
            elif "object_orientation" in names:
                task = "Rotate"
            elif "object2_position" in names:
                task = "Stack"
            else:
                task = "PickAndPlace"
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {list(TASKS)}")
        if push_strategy not in ("grasp", "push"):
            raise ValueError(f"push_strategy must be 'grasp' or 'push', got {push_strategy!r}")
        if task == "Slide" and "ee_orientation" not in spec.observation:
            raise ValueError(
                "the Slide oracle aims by turning the hand: it needs the yaw-rate action and "
                "ee_orientation (Slide's default, control_yaw=True)"
            )
        self.spec = spec
        self.task = task
        self.max_step = float(max_step)
        self.max_yaw_step = float(max_yaw_step)
        self.control_dt = float(control_dt)
        self.control_yaw = "yaw_rate" in spec.action
        self._act = {
            "Reach": self._reach,
            "Push": self._push if push_strategy == "push" else self._pick_and_place,
            "PickAndPlace": self._pick_and_place,
            "Stack": self._stack,
            "Rotate": self._rotate,
            "Slide": self._slide,
        }[task]

    # --- SB3-like interface -------------------------------------------------------------
    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True):
        obs = observation
        batched = np.asarray(obs["observation"]).ndim == 2
        if not batched:
            return self._one(_Scene(self.spec, obs, None)), None
        n = np.asarray(obs["observation"]).shape[0]
        return np.stack([self._one(_Scene(self.spec, obs, i)) for i in range(n)]), None

    __call__ = predict

    def _one(self, s: _Scene) -> np.ndarray:
        target, grip, yaw = self._act(s)
        d = (target - s.ee) / self.max_step
        n = float(np.linalg.norm(d))
        # slow down near the table (no overshoot into it), unless the step's length is the point
        cap = 0.5 if s.height(target) < 0.05 and not s.exact else 1.0
        if n > cap:
            d = d * (cap / n)
        a = [*d, grip]
        if self.control_yaw:
            a.append(float(np.clip(yaw / self.max_yaw_step, -1.0, 1.0)))
        return np.asarray(a, dtype=np.float32)

    # --- behaviours: each returns (ee target, gripper command, yaw change) ----------------
    def _reach(self, s):
        return s.goal["ee_position"], 1.0, 0.0

    def _pick(self, s, obj, goal, hold=CUBE, release=False, carry=0.1, yaw_err=0.0, yaw_held=0.0):
        """Grasp ``obj`` (top-down) and bring it to ``goal``; ``release`` opens the hand there."""
        to_obj = obj - s.ee
        held = hold - 0.012 < s.width < hold + 0.006 and np.linalg.norm(to_obj) < 0.025
        if held:
            d_goal = goal - obj
            if np.linalg.norm(s.horiz(d_goal)) > 0.02 or abs(yaw_held) > 0.1:
                h = max(carry, s.height(goal))
                if s.height(obj) < h - 0.03:
                    tgt_obj = obj + (h - s.height(obj)) * s.up  # lift first
                else:
                    tgt_obj = s.horiz(goal - s.base) + s.base + h * s.up
            else:
                tgt_obj = goal
            grip = 1.0 if (release and np.linalg.norm(d_goal) < 0.01) else -1.0
            return s.ee + (tgt_obj - obj), grip, yaw_held
        hd = float(np.linalg.norm(s.horiz(to_obj)))
        above = s.height(s.ee) - s.height(obj)
        if hd > 0.012 or abs(yaw_err) > 0.1:
            if above < 0.04 and hd > 0.03:
                return s.ee + (0.06 - above) * s.up, 1.0, yaw_err  # clear the table and objects first
            return obj + 0.05 * s.up, 1.0, yaw_err
        if np.linalg.norm(to_obj) < 0.012 and s.width > hold - 0.012:
            return obj, -1.0, yaw_err  # close on it
        return obj, 1.0, yaw_err

    def _pick_and_place(self, s):
        return self._pick(s, s.f["object_position"], s.goal["object_position"])

    def _push(self, s):
        obj, goal = s.f["object_position"], s.goal["object_position"]
        d = s.horiz(goal - obj)
        dist = float(np.linalg.norm(d))
        if dist < 0.01:
            return s.ee, -1.0, 0.0
        u = d / dist
        rel = s.horiz(s.ee - obj)
        along = -float(rel @ u)  # > 0 when the hand is behind the cube
        lateral = float(np.linalg.norm(rel + along * u))
        vert = s.height(s.ee) - s.height(obj)
        if CUBE / 2 - 0.005 < along < CUBE / 2 + 0.06 and lateral < 0.02 and abs(vert) < 0.02:
            return obj - u * (CUBE / 2 + 0.01) + u * min(dist, 0.015), -1.0, 0.0
        behind = obj - u * (CUBE / 2 + 0.035)
        if np.linalg.norm(s.horiz(s.ee - behind)) > 0.012:
            if vert < 0.05 and float(np.linalg.norm(rel)) < CUBE / 2 + 0.07:
                return s.ee + (0.07 - vert) * s.up, -1.0, 0.0
            return behind + 0.07 * s.up, -1.0, 0.0
        return behind, -1.0, 0.0

    def _stack(self, s):
        o1, o2 = s.f["object1_position"], s.f["object2_position"]
        g1 = s.goal["object1_position"]
        held1 = CUBE - 0.012 < s.width < CUBE + 0.006 and np.linalg.norm(o1 - s.ee) < 0.025
        if held1 or np.linalg.norm(o1 - g1) > 0.02:
            return self._pick(s, o1, g1, release=True)
        return self._pick(s, o2, o1 + CUBE * s.up, carry=0.12)

    def _rotate(self, s):
        obj = s.f["object_position"]
        goal = s.goal["object_position"]
        ex = s.f["ee_orientation"][0:3]
        ox = s.f["object_orientation"][0:3]
        gx = s.goal["object_orientation"][0:3]
        yaw_err = _wrap_half(s.signed_angle(ex, ox))  # align the hand's x with the block's long axis
        yaw_held = s.signed_angle(ox, gx)  # turn the held block onto the goal orientation
        return self._pick(s, obj, goal, hold=CUBE, yaw_err=yaw_err, yaw_held=yaw_held)


    def _slide(self, s):
        """Carry the puck to a launch point, then strike it with the closed hand to slide onto the goal.

        The launch point lies on the line from the base to the goal, ``SLIDE_LAUNCH_RADIUS`` from the
        base: every strike starts from about the same arm configuration, so one measured gain maps the
        strike's length to the puck's speed (``SLIDE_STRIKE_GAIN`` times the hand's travel past
        contact), and the puck stops after v^2 / (2 * SLIDE_DECELERATION). The hand turns (yaw) until
        a flat face of its closed fingers faces the shot line: a face sends the puck along its normal.
        While the puck slides the hand keeps clear; a puck left short within reach is carried back.
        """
        obj, goal = s.f["object_position"], s.goal["object_position"]
        vel = s.horiz(s.f["object_linear_velocity"])
        to_goal = s.horiz(goal - obj)
        dist = float(np.linalg.norm(to_goal))
        held = PUCK - 0.012 < s.width < PUCK + 0.006 and np.linalg.norm(obj - s.ee) < 0.025
        near = float(np.linalg.norm(obj - s.ee)) < 0.06
        if not held and (float(np.linalg.norm(vel)) > 0.02 or dist < 0.01):
            # sliding (or arrived): keep clear, without closing the hand on a puck it just let go
            return s.ee + max(0.0, 0.1 - s.height(s.ee)) * s.up, 1.0 if near else -1.0, 0.0
        radial = s.horiz(goal - s.base)
        launch = s.base + radial * (SLIDE_LAUNCH_RADIUS / float(np.linalg.norm(radial)))
        launch = launch + (s.height(obj) - s.height(launch)) * s.up  # at the puck's height
        off = s.horiz(launch - obj)
        if held:  # drag it along the table to the launch point; let go once it is there and still
            if float(np.linalg.norm(off)) < SLIDE_LAUNCH_TOL / 2 and float(np.linalg.norm(vel)) < 0.01:
                return s.ee, 1.0, 0.0
            step = off * min(1.0, 0.015 / max(float(np.linalg.norm(off)), 1e-9))  # 1.5 cm per step at most
            return s.ee + step + (PUCK_HEIGHT / 2 - s.height(obj)) * s.up, -1.0, 0.0
        if float(np.linalg.norm(off)) > SLIDE_LAUNCH_TOL:
            return self._pick(s, obj, obj, hold=PUCK)  # grasp it (the held branch above carries it)
        return self._strike(s, obj, to_goal / dist, dist)

    def _strike(self, s, obj, u, dist):
        ex = s.f["ee_orientation"][0:3]
        yaw_err = _wrap_half(s.signed_angle(ex, u))
        rel = s.horiz(s.ee - obj)
        along = -float(rel @ u)  # how far behind the puck the hand is, along the shot line
        lateral = float(np.linalg.norm(rel + along * u))
        vert = s.height(s.ee) - s.height(obj)
        behind = obj - u * (SLIDE_CONTACT + SLIDE_GAP)
        in_place = (
            abs(along - SLIDE_CONTACT - SLIDE_GAP) < SLIDE_TOL
            and lateral < SLIDE_TOL
            and abs(vert) < SLIDE_TOL
            and float(np.linalg.norm(s.f["ee_velocity"])) < SLIDE_STILL
        )
        if in_place and abs(yaw_err) < SLIDE_YAW_TOL:
            speed = math.sqrt(2 * SLIDE_DECELERATION * dist)
            travel = (along - SLIDE_CONTACT) + SLIDE_STRIKE_SLACK + speed / SLIDE_STRIKE_GAIN
            s.exact = True  # the strike's length matters: no slow-down near the table
            return s.ee + travel * u, -1.0, 0.0
        if float(np.linalg.norm(s.horiz(s.ee - behind))) > 0.02:  # far from the waiting point
            if vert < 0.04 and float(np.linalg.norm(rel)) < SLIDE_CONTACT + 0.03:
                return s.ee + (0.06 - vert) * s.up, 1.0, yaw_err  # clear the puck first (hand open)
            return behind + 0.05 * s.up, -1.0, yaw_err
        return behind, -1.0, yaw_err  # settle there (the hand must be still before it strikes)


def make_oracle(task: str, env=None, **kwargs) -> OraclePolicy:
    """Oracle for a task name (``"Push"`` or an id like ``"eqrobot/PushDense-v0"``)."""
    name = task.split("/")[-1].split("-")[0].removesuffix("Dense")
    if name not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {list(TASKS)}")
    return OraclePolicy(env if env is not None else make_geometry_spec(name), task=name, **kwargs)
