"""RobotTaskEnv: one goal-conditioned Gymnasium env class; tasks differ only in their Task class.

Observation: a Dict of flat float32 arrays laid out by ``env.geometry_spec`` (reach it through
wrappers with ``env.get_wrapper_attr("geometry_spec")``). ``observation`` holds the fields of the
observation table (:data:`eqrobot.envs.observation.OBSERVATION_TABLE`, which builds both the spec and
the vector); ``achieved_goal`` / ``desired_goal`` the task's goal fields (e.g. ``object_position``).

Everything is in the world frame. Symmetry groups (shared/DESIGN.md section 2):

* task rotation by ``theta`` about gravity through the base: joint 1 starts at ``theta``, objects,
  goal and the grasp yaw are rotated; gravity and the base do not move.
* world transform ``(R, t)``: robot base, table, objects, goal, gravity, camera all move.

Episodes never terminate on success unless ``terminate_on_success=True``; the registered ids
truncate after the task's ``max_episode_steps`` (TimeLimit).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from eqrobot.envs.observation import ObservationReader, observation_spec
from eqrobot.envs.tasks import TASKS, Task
from eqrobot.envs.validation import (
    as_goals,
    check_action,
    check_env_kwargs,
    check_reset_options,
    check_seed,
    goal_difference,
)
from eqrobot.geometry.so3 import random_rotation, rot_z
from eqrobot.geometry.spec import ArraySpec, GeometrySpec
from eqrobot.sim import Panda, Simulator
from eqrobot.sim.display import display_problem


def frame_trace(frame_a, frame_b):
    """trace(R_a^T R_b) of two (batches of) frames stored as 9 stacked columns.

    Summed left to right (not in ``np.sum``'s pairwise order), so that the env's scalar per-step
    path (``RobotTaskEnv._step_reward``) reproduces it bit for bit.
    """
    products = np.asarray(frame_a) * np.asarray(frame_b)
    trace = products[..., 0]
    for k in range(1, 9):
        trace = trace + products[..., k]
    return trace


def _angle_from_trace(trace):
    return np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0))


def geodesic_angle(frame_a, frame_b):
    """Rotation angle between two (batches of) frames stored as 9 stacked columns."""
    return _angle_from_trace(frame_trace(frame_a, frame_b))


def make_geometry_spec(task: str | Task, control_yaw: bool | None = None) -> GeometrySpec:
    """The geometry spec of a task's env without building a simulator."""
    if isinstance(task, str):
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {list(TASKS)}")
        task = TASKS[task]()
    control_yaw = task.control_yaw if control_yaw is None else bool(control_yaw)
    obs_spec = observation_spec([o.name for o in task.objects], control_yaw)
    # the goal fields are observation fields (achieved_goal is read out of the observation)
    for name, kind in task.goal_fields:
        if name not in obs_spec or obs_spec[name].kind != kind:
            raise ValueError(
                f"task {task.name}: goal field ({name!r}, {kind!r}) is not an observation field; "
                f"the observation has {[(f.name, f.kind) for f in obs_spec]}"
            )
    goal_spec = ArraySpec(obs_spec[name] for name, _ in task.goal_fields)
    act_fields = [("ee_displacement", "vector", 3, "robot"), ("gripper", "scalar", 1, "robot")]
    if control_yaw:
        act_fields.append(("yaw_rate", "scalar", 1, "robot"))
    return GeometrySpec(obs_spec, goal_spec, goal_spec, ArraySpec(act_fields))


class RobotTaskEnv(gym.Env):
    """A Panda on a round table doing one :class:`~eqrobot.envs.tasks.Task`.

    Args:
        task: task name (Reach, Push, PickAndPlace, Stack, Rotate) or a Task instance.
        reward_type: ``"sparse"`` (0 on success, else -1) or ``"dense"`` (minus the goal distance).
        render_mode: None, ``"rgb_array"`` (TinyRenderer) or ``"human"`` (PyBullet GUI).
        task_rotation_range: half-width (rad) of the uniform task rotation drawn at each reset;
            at most joint 1's limit (2.8973 rad, about 166 degrees). Default 0.
        world_transform: None, ``"random"`` (uniform rotation, translation uniform in [-1, 1]^3
            metres, at each reset) or a fixed ``(R, t)``.
        terminate_on_success: end the episode (``terminated=True``) on success. Default False.
        control_yaw: add the yaw-rate action (default: what the task needs; True for Rotate).
        timestep, n_substeps, solver_iterations: physics settings
            (control frequency = 1 / (timestep * n_substeps)).
        max_step: end-effector displacement (m) for an action of norm 1.
        distance_threshold, angle_threshold: success thresholds (m, rad); default: the task's.
        render_width, render_height: image size for ``render()``.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 25}

    def __init__(
        self,
        task: str | Task = "Reach",
        reward_type: str = "sparse",
        render_mode: str | None = None,
        task_rotation_range: float = 0.0,
        world_transform=None,
        terminate_on_success: bool = False,
        control_yaw: bool | None = None,
        timestep: float = 0.004,
        n_substeps: int = 10,
        solver_iterations: int = 50,
        max_step: float = 0.05,
        distance_threshold: float | None = None,
        angle_threshold: float | None = None,
        render_width: int = 480,
        render_height: int = 360,
        **unknown,
    ) -> None:
        kw = check_env_kwargs(
            {
                "task": task,
                "reward_type": reward_type,
                "render_mode": render_mode,
                "task_rotation_range": task_rotation_range,
                "world_transform": world_transform,
                "terminate_on_success": terminate_on_success,
                "control_yaw": control_yaw,
                "timestep": timestep,
                "n_substeps": n_substeps,
                "solver_iterations": solver_iterations,
                "max_step": max_step,
                "distance_threshold": distance_threshold,
                "angle_threshold": angle_threshold,
                "render_width": render_width,
                "render_height": render_height,
            },
            unknown,
        )
        task = kw["task"]
        timestep, n_substeps, solver_iterations = kw["timestep"], kw["n_substeps"], kw["solver_iterations"]
        max_step = kw["max_step"]
        self.task = task
        self.reward_type = kw["reward_type"]
        self.render_mode = render_mode
        self.task_rotation_range = kw["task_rotation_range"]
        self.world_transform = kw["world_transform"]
        self.terminate_on_success = kw["terminate_on_success"]
        self.control_yaw = task.control_yaw if kw["control_yaw"] is None else kw["control_yaw"]
        self.distance_threshold = (
            task.distance_threshold if kw["distance_threshold"] is None else kw["distance_threshold"]
        )
        self.angle_threshold = (
            task.angle_threshold if kw["angle_threshold"] is None else kw["angle_threshold"]
        )
        self.render_width, self.render_height = kw["render_width"], kw["render_height"]

        # --- scene ---
        self.sim = Simulator(
            render_mode, timestep=timestep, n_substeps=n_substeps, solver_iterations=solver_iterations
        )
        # The class advertises "human" (gym.make would otherwise swap in its HumanRendering wrapper);
        # an instance advertises only what it can do here, so check_env passes on headless machines.
        modes = [m for m in self.metadata["render_modes"] if m != "human" or display_problem() is None]
        self.metadata = {**self.metadata, "render_modes": modes, "render_fps": int(round(1.0 / self.sim.dt))}
        self.sim.create_table(radius=task.table_radius, lateral_friction=task.table_friction)
        self.robot = Panda(self.sim, max_step=max_step, control_yaw=self.control_yaw)
        self._objects = []  # (name, body id, spec)
        for i, spec in enumerate(task.objects):
            # parked apart in the air: the saved initial state must hold no contacts at all
            body = self.sim.create_primitive(
                spec.name,
                spec.shape,
                spec.size,
                spec.mass,
                (0.6, 0.0, 1.0 + 0.5 * i),
                rgba=spec.rgba,
                lateral_friction=spec.lateral_friction,
                spinning_friction=spec.spinning_friction,
            )
            self._objects.append((spec.name, body, spec))
        self._markers = []  # (goal field, body id)
        for field, shape, size, rgba in task.markers:
            body = self.sim.create_primitive(
                f"marker_{field}", shape, size, 0.0, (0.6, 0.0, -1.0), rgba=rgba, ghost=True
            )
            self._markers.append((field, body))
        self._initial_state = self.sim.save_state()

        # --- observation, spaces and geometry spec ---
        self._observation = ObservationReader(
            self.sim, self.robot, {name: body for name, body, _ in self._objects}, self.control_yaw
        )
        self.geometry_spec = make_geometry_spec(task, self.control_yaw)
        # a marker shows its goal field's object; it turns with that object's goal frame, if any
        goal_fields = self.geometry_spec.desired_goal
        self._marker_frame = {
            field: next(
                (g.name for g in goal_fields if g.kind == "frame" and g.obj == goal_fields[field].obj), None
            )
            if goal_fields[field].obj is not None
            else None
            for field, _ in self._markers
        }
        obs_spec = self.geometry_spec.observation
        goal_spec = self.geometry_spec.desired_goal
        self._ag_index = np.concatenate(
            [np.arange(obs_spec[f.name].start, obs_spec[f.name].start + f.size) for f in goal_spec.fields]
        )
        self._point_slices = [f.slice for f in goal_spec.fields if f.kind == "point"]
        self._frame_slices = [f.slice for f in goal_spec.fields if f.kind == "frame"]
        # step()'s scalar reward path: where each point (3) and frame (9) field starts in the goal
        self._point_offsets = [f.slice.start for f in goal_spec.fields if f.kind == "point"]
        self._frame_offsets = [f.slice.start for f in goal_spec.fields if f.kind == "frame"]
        self.observation_space = spaces.Dict(
            {
                "observation": spaces.Box(-np.inf, np.inf, (obs_spec.dim,), np.float32),
                "achieved_goal": spaces.Box(-np.inf, np.inf, (goal_spec.dim,), np.float32),
                "desired_goal": spaces.Box(-np.inf, np.inf, (goal_spec.dim,), np.float32),
            }
        )
        self.observation_space.geometry_spec = self.geometry_spec
        self.action_space = spaces.Box(-1.0, 1.0, (self.geometry_spec.action.dim,), np.float32)
        self._n_act = self.geometry_spec.action.dim
        self._action_layout = ", ".join(f"{f.name}({f.size})" for f in self.geometry_spec.action.fields)
        self._goal_dim = goal_spec.dim
        self._goal_shape = (goal_spec.dim,)
        self._goal_layout = ", ".join(f"{f.name}({f.size})" for f in goal_spec.fields)

        self._has_reset = False
        self._closed = False
        self._world_R = np.eye(3)
        self._world_t = np.zeros(3)
        self._task_rotation = 0.0
        self._goal = np.zeros(goal_spec.dim, dtype=np.float32)

    # --- gym API ------------------------------------------------------------------------
    def _check_open(self, call: str) -> None:
        if self._closed:
            raise RuntimeError(f"{call} called on a closed env: the env is closed; create a new one")

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._check_open("reset()")
        # everything is checked before anything changes: a refused reset leaves the env as it was
        seed = check_seed(seed)
        theta, world = check_reset_options(options)
        super().reset(seed=seed)
        rng = self.np_random
        # task rotation
        if theta is None and self.task_rotation_range > 0:
            theta = float(rng.uniform(-self.task_rotation_range, self.task_rotation_range))
        elif theta is None:
            theta = 0.0
        # world transform
        if world is not None:
            R, t = world
        elif isinstance(self.world_transform, str):
            R = random_rotation(rng)
            t = rng.uniform(-1.0, 1.0, size=3)
        elif self.world_transform is not None:
            R, t = self.world_transform
        else:
            R, t = np.eye(3), np.zeros(3)
        self._task_rotation, self._world_R, self._world_t = theta, R.copy(), t.copy()

        # restore the full physics state, then lay the scene out in the transformed frame
        sim = self.sim
        sim.restore_state(self._initial_state)
        # The saved state has every object in the air: one collision pass now drops all contact
        # manifolds (and their warm-start impulses) left over from the previous episode, so that a
        # seed fixes the trajectory however many episodes came before (Gymnasium issue 1111).
        sim.client.performCollisionDetection()
        frame_R = R @ rot_z(theta)
        sim.set_frame(frame_R, t, R)
        sim.set_pose(sim.bodies["table"], (0.0, 0.0, -0.2))
        self.robot.reset(R, t, theta)
        poses, goal = self.task.sample(rng)
        for name, body, _ in self._objects:
            pos, rot = poses[name]
            sim.set_pose(body, pos, rot)
        goal_vec = []
        for f in self.geometry_spec.desired_goal.fields:
            if f.kind == "point":
                goal_vec.append(sim.to_world(goal[f.name]))
            else:
                goal_vec.append((frame_R @ goal[f.name]).T.reshape(9))
        self._goal = np.concatenate(goal_vec).astype(np.float32)
        self._goal_list = self._goal.tolist()
        for field, body in self._markers:
            sim.set_pose(body, goal[field], goal.get(self._marker_frame[field]))
        self._observation.reset()
        self._has_reset = True
        self._info_static = {"task_rotation": theta, "world_rotation": R, "world_translation": t}
        obs = self._get_obs()
        return obs, self._info(obs)

    def step(self, action):
        if not self._has_reset:
            self._check_open("step()")
            raise RuntimeError("step() called before reset(): call env.reset() first")
        a = check_action(action, self._n_act, self._action_layout)
        if self.control_yaw:
            self.robot.apply_action(a[:3], a[3], a[4])
        else:
            self.robot.apply_action(a[:3], a[3])
        self.sim.step()
        obs = self._get_obs()
        success, reward = self._step_reward(obs["achieved_goal"].tolist())
        info = self._info(obs, success)
        return obs, reward, self.terminate_on_success and success, False, info

    def _step_reward(self, achieved: list) -> tuple[bool, float]:
        """(success, reward) of one step, in plain floats.

        The same arithmetic as the batched ``compute_reward`` (float32 goals widened to float64,
        sums taken left to right, the same sqrt and arccos), so the two agree bit for bit; the scalar
        path exists because numpy's per-call overhead on 3-vectors was a tenth of the Python time of
        a step.
        """
        desired, sqrt, success = self._goal_list, math.sqrt, True
        dist_sum = 0.0
        for i in self._point_offsets:
            dx, dy, dz = (
                achieved[i] - desired[i],
                achieved[i + 1] - desired[i + 1],
                achieved[i + 2] - desired[i + 2],
            )
            d = sqrt(dx * dx + dy * dy + dz * dz)
            success = success and d < self.distance_threshold
            dist_sum += d
        angle_sum = 0.0
        for i in self._frame_offsets:
            trace = achieved[i] * desired[i]
            for k in range(i + 1, i + 9):
                trace = trace + achieved[k] * desired[k]
            # np.arccos on a float runs the same loop as on the batch (math.acos can differ by an ulp)
            angle = float(np.arccos(min(max((trace - 1.0) / 2.0, -1.0), 1.0)))
            success = success and angle < self.angle_threshold
            angle_sum += angle
        if self.reward_type == "sparse":
            return success, 0.0 if success else -1.0
        total = dist_sum + self.task.angle_weight * angle_sum if self._frame_offsets else dist_sum
        return success, float(np.float32(-total))

    def _get_obs(self) -> dict:
        obs = self._observation.read()
        return {"observation": obs, "achieved_goal": obs[self._ag_index], "desired_goal": self._goal.copy()}

    def _info(self, obs, success=None) -> dict:
        if success is None:
            d, ang = self._errors(obs["achieved_goal"], obs["desired_goal"])
            success = bool(self._success(d, ang))
        s = self._info_static
        return {
            "is_success": success,
            "task_rotation": s["task_rotation"],
            "world_rotation": s["world_rotation"].copy(),
            "world_translation": s["world_translation"].copy(),
        }

    # --- rewards (batched) --------------------------------------------------------------
    def _errors(self, achieved, desired):
        """Per goal field: distances (points) and geodesic angles (frames), batched.

        The checks cost one reduction on the happy path (HER calls this on every batch): a NaN or
        inf anywhere in the goals makes the summed distances (points) or traces (frames, before the
        clip to [-1, 1] hides it) non-finite; only then, or on a bad shape, does
        eqrobot.envs.validation say what is wrong.
        """
        try:
            achieved = np.asarray(achieved, dtype=np.float64)
            desired = np.asarray(desired, dtype=np.float64)
            diff = achieved - desired
            shapes_ok = achieved.shape[-1:] == self._goal_shape == desired.shape[-1:]
        except (TypeError, ValueError):
            shapes_ok = False
        if not shapes_ok:  # raises the precise error
            achieved, desired = as_goals(achieved, desired, self._goal_dim, self._goal_layout)
            diff = goal_difference(achieved, desired)
        sq = diff * diff
        # column sums in the order of step()'s scalar path ((x + y) + z, as numpy's sum(-1) does)
        d = [np.sqrt(sq[..., i] + sq[..., i + 1] + sq[..., i + 2]) for i in self._point_offsets]
        traces = [frame_trace(achieved[..., s], desired[..., s]) for s in self._frame_slices]
        a = [_angle_from_trace(t) for t in traces]
        total = sum(x.sum() for x in d) + sum(t.sum() for t in traces)
        if not math.isfinite(total):
            goal_difference(achieved, desired)  # raises: names the goal holding NaN or inf
            raise ValueError(
                "achieved_goal and desired_goal are so large that their distances overflow float64; "
                "goals must be positions in metres (and frames of unit columns)"
            )
        return d, a

    def _success(self, d, ang):
        ok = True
        for x in d:
            ok = ok & (x < self.distance_threshold)
        for x in ang:
            ok = ok & (x < self.angle_threshold)
        return ok

    def _reward(self, d, ang, success):
        if self.reward_type == "sparse":
            return np.asarray(success, dtype=np.float32) - 1.0
        total = sum(d) + self.task.angle_weight * sum(ang) if ang else sum(d)
        return -np.asarray(total, dtype=np.float32)

    def compute_reward(self, achieved_goal, desired_goal, info=None):
        """Reward for (batches of) goals, as SB3's HerReplayBuffer calls it; ``info`` is unused."""
        d, ang = self._errors(achieved_goal, desired_goal)
        success = self._success(d, ang)
        return np.asarray(self._reward(d, ang, success), dtype=np.float32)

    def is_success(self, achieved_goal, desired_goal):
        d, ang = self._errors(achieved_goal, desired_goal)
        return np.asarray(self._success(d, ang), dtype=bool)

    # --- rendering / lifetime -----------------------------------------------------------
    def render(self):
        self._check_open("render()")
        if self.render_mode == "rgb_array":
            return self.sim.render(self.render_width, self.render_height)
        return None

    def close(self):
        self._closed = True
        self._has_reset = False  # step() then needs no check of its own on the hot path
        self.sim.close()

    @property
    def task_rotation(self) -> float:
        return self._task_rotation
