"""A PyBullet world owned by one object: client, scene building, stepping, rendering.

Each :class:`Simulator` owns its own ``BulletClient``, so many envs can live in one process.
Scene-building methods take poses in the *task frame* (canonical: z up, robot base at the
origin, table top at z = 0); :meth:`Simulator.set_frame` maps that frame into the world with a
rigid motion, which is how both symmetry groups are realised (see ``eqrobot.envs``). Readings
(positions, velocities) are always returned in the world frame.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pybullet as p
import pybullet_data
from pybullet_utils import bullet_client

from eqrobot.sim.display import check_display
from eqrobot.sim.quiet import c_stdout_silenced
from eqrobot.sim.transforms import matrix_to_quat

GRAVITY = 9.81

_LIGHT = np.array([0.4, 0.3, 1.0])  # light direction in the task frame (towards the light)
_SHAPES = {"box": p.GEOM_BOX, "cylinder": p.GEOM_CYLINDER, "sphere": p.GEOM_SPHERE}


class Simulator:
    """One PyBullet physics client.

    Args:
        render_mode: None / "rgb_array" (DIRECT, TinyRenderer images) or "human" (GUI window).
        timestep: physics timestep in seconds.
        n_substeps: physics steps per control step (control period = timestep * n_substeps).
        solver_iterations: constraint solver iterations per physics step (PyBullet default 50).
    """

    def __init__(
        self,
        render_mode: str | None = None,
        timestep: float = 0.004,
        n_substeps: int = 10,
        solver_iterations: int = 50,
    ) -> None:
        if render_mode not in (None, "rgb_array", "human"):
            raise ValueError(f"render_mode must be None, 'rgb_array' or 'human', got {render_mode!r}")
        if not (timestep > 0 and int(n_substeps) >= 1):
            raise ValueError(f"need timestep > 0 and n_substeps >= 1, got {timestep}, {n_substeps}")
        self.render_mode = render_mode
        self.timestep = float(timestep)
        self.n_substeps = int(n_substeps)
        mode = p.GUI if render_mode == "human" else p.DIRECT
        if mode == p.GUI:
            check_display()  # PyBullet's GUI calls exit() when it cannot reach an X server
        # PyBullet prints "argv[0]=" on every connect; a GUI connect stays audible, since PyBullet
        # exits the process from C when its window fails and its message is then all a user gets
        with c_stdout_silenced() if mode != p.GUI else contextlib.nullcontext():
            self.client = bullet_client.BulletClient(connection_mode=mode)
        self._closed = False
        bc = self.client
        if mode == p.GUI:
            bc.configureDebugVisualizer(p.COV_ENABLE_GUI, 0)
            bc.configureDebugVisualizer(p.COV_ENABLE_MOUSE_PICKING, 0)
        bc.setAdditionalSearchPath(pybullet_data.getDataPath())
        bc.setTimeStep(self.timestep)
        bc.setPhysicsEngineParameter(
            numSolverIterations=int(solver_iterations), deterministicOverlappingPairs=1
        )
        # bound client calls for hot paths (BulletClient builds a partial on every attribute access)
        self._step = bc.stepSimulation
        self._get_pose = bc.getBasePositionAndOrientation
        self._get_vel = bc.getBaseVelocity
        self.bodies: dict[str, int] = {}
        self.set_frame(np.eye(3), np.zeros(3), np.eye(3))

    # --- lifetime -----------------------------------------------------------------------
    @property
    def dt(self) -> float:
        """Control period in seconds (timestep * n_substeps)."""
        return self.timestep * self.n_substeps

    @property
    def is_connected(self) -> bool:
        return not self._closed and self.client.isConnected()

    def close(self) -> None:
        """Disconnect the client; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.client.isConnected():
                self.client.disconnect()
        except p.error:  # already gone (e.g. GUI window closed by the user)
            pass

    def __del__(self):  # best effort: never leak a physics server
        try:
            self.close()
        except Exception:
            pass

    # --- frames -------------------------------------------------------------------------
    def set_frame(self, frame_rotation, frame_translation, world_rotation=None) -> None:
        """Map the task frame into the world: ``x_world = frame_rotation @ x_task + frame_translation``.

        ``world_rotation`` (default ``frame_rotation``) sets gravity, ``world_rotation @ (0, 0, -g)``:
        a task rotation about gravity changes the frame but not gravity.
        """
        self.frame_R = np.asarray(frame_rotation, dtype=np.float64)
        self.frame_t = np.asarray(frame_translation, dtype=np.float64)
        world_R = self.frame_R if world_rotation is None else np.asarray(world_rotation, dtype=np.float64)
        self.world_R = world_R  # the camera follows world transforms, not task rotations
        self.gravity_direction = world_R @ np.array([0.0, 0.0, -1.0])
        self.up = -self.gravity_direction
        g = self.gravity_direction * GRAVITY
        self.client.setGravity(float(g[0]), float(g[1]), float(g[2]))

    def to_world(self, position) -> np.ndarray:
        return self.frame_R @ np.asarray(position, dtype=np.float64) + self.frame_t

    def rotation_to_world(self, rotation) -> np.ndarray:
        return self.frame_R @ np.asarray(rotation, dtype=np.float64)

    # --- scene building -----------------------------------------------------------------
    def create_primitive(
        self,
        name: str,
        shape: str,
        size,
        mass: float,
        position=(0.0, 0.0, 0.0),
        rgba=(0.8, 0.8, 0.8, 1.0),
        lateral_friction: float = 1.0,
        spinning_friction: float = 0.001,
        ghost: bool = False,
    ) -> int:
        """Add a box / cylinder / sphere at a task-frame position.

        ``size``: box full extents (3,), cylinder (radius, height), sphere (radius,). A ``ghost`` body
        has no collision shape (goal markers). ``mass`` 0 makes it static.
        """
        if shape not in _SHAPES:
            raise ValueError(f"shape must be one of {list(_SHAPES)}, got {shape!r}")
        if name in self.bodies:
            raise ValueError(f"a body named {name!r} already exists")
        size = np.atleast_1d(np.asarray(size, dtype=np.float64))
        bc = self.client
        if shape == "box":
            kw_v = {"halfExtents": (size / 2).tolist()}
            kw_c = kw_v
        elif shape == "cylinder":
            kw_v = {"radius": float(size[0]), "length": float(size[1])}
            kw_c = {"radius": float(size[0]), "height": float(size[1])}
        else:
            kw_v = kw_c = {"radius": float(size[0])}
        visual = bc.createVisualShape(_SHAPES[shape], rgbaColor=list(rgba), specularColor=[0, 0, 0], **kw_v)
        collision = -1 if ghost else bc.createCollisionShape(_SHAPES[shape], **kw_c)
        body = bc.createMultiBody(
            baseMass=float(mass),
            baseCollisionShapeIndex=collision,
            baseVisualShapeIndex=visual,
            basePosition=self.to_world(position).tolist(),
            baseOrientation=matrix_to_quat(self.frame_R),
        )
        if not ghost:
            bc.changeDynamics(body, -1, lateralFriction=lateral_friction, spinningFriction=spinning_friction)
        self.bodies[name] = body
        return body

    def create_table(
        self, radius: float = 1.0, height: float = 0.4, name: str = "table", lateral_friction: float = 1.0
    ) -> int:
        """A round static table centred on the robot base, its top at task-frame z = 0."""
        return self.create_primitive(
            name,
            "cylinder",
            (radius, height),
            0.0,
            (0.0, 0.0, -height / 2),
            rgba=(0.85, 0.85, 0.82, 1.0),
            lateral_friction=lateral_friction,
        )

    def load_urdf(self, name: str, file_name: str, **kwargs) -> int:
        if name in self.bodies:
            raise ValueError(f"a body named {name!r} already exists")
        body = self.client.loadURDF(file_name, **kwargs)
        self.bodies[name] = body
        return body

    # --- state --------------------------------------------------------------------------
    def set_pose(self, body: int, position, rotation=None) -> None:
        """Place a body at a task-frame pose (rotation matrix in the task frame, default identity)."""
        R = self.frame_R if rotation is None else self.frame_R @ np.asarray(rotation, dtype=np.float64)
        self.client.resetBasePositionAndOrientation(body, self.to_world(position).tolist(), matrix_to_quat(R))
        self.client.resetBaseVelocity(body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])

    def body_states(self, bodies) -> list[tuple]:
        """Per body, in the world frame: ``(position, quaternion xyzw, linear, angular velocity)``."""
        get_pose, get_vel = self._get_pose, self._get_vel
        return [(*get_pose(body), *get_vel(body)) for body in bodies]

    def step(self) -> None:
        """Advance one control period (``n_substeps`` physics steps)."""
        step = self._step
        for _ in range(self.n_substeps):
            step()

    def save_state(self) -> int:
        return self.client.saveState()

    def restore_state(self, state_id: int) -> None:
        self.client.restoreState(stateId=state_id)

    # --- rendering ----------------------------------------------------------------------
    def render(
        self,
        width: int = 480,
        height: int = 360,
        target=(0.4, 0.0, 0.12),
        distance: float = 1.5,
        yaw_deg: float = 215.0,
        pitch_deg: float = -28.0,
        fov_deg: float = 45.0,
    ) -> np.ndarray:
        """RGB image (height, width, 3) uint8 from a camera given in the canonical frame (TinyRenderer).

        The camera moves with world transforms (``world_rotation`` and the translation), so a
        transformed world renders the same picture, but not with a task rotation about gravity: the
        camera stays put and the viewer sees the scene turn.
        """
        yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
        offset = distance * np.array(
            [-np.cos(pitch) * np.cos(yaw), -np.cos(pitch) * np.sin(yaw), -np.sin(pitch)]
        )
        target_c = np.asarray(target, dtype=np.float64)
        eye = self.world_R @ (target_c + offset) + self.frame_t
        tgt = self.world_R @ target_c + self.frame_t
        view = self.client.computeViewMatrix(eye.tolist(), tgt.tolist(), self.up.tolist())
        proj = self.client.computeProjectionMatrixFOV(fov_deg, width / height, 0.05, 10.0)
        _, _, rgba, _, _ = self.client.getCameraImage(
            width,
            height,
            viewMatrix=view,
            projectionMatrix=proj,
            renderer=p.ER_TINY_RENDERER,
            flags=p.ER_NO_SEGMENTATION_MASK,
            lightDirection=self.world_R @ np.asarray(_LIGHT),  # the light moves with the world too
            shadow=0,
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3].copy()
