"""Franka Panda (pybullet_data ``franka_panda/panda.urdf``) with Cartesian end-effector control.

Control: a world-frame end-effector displacement limited by its *norm* (``d -> d / max(1, |d|)``,
times ``max_step`` metres), a gripper scalar, and optionally a yaw rate about the up axis. The
grasp orientation is "pointing along gravity" with a yaw held by the controller (it starts at the
task rotation, so it follows both symmetry groups); IK is bounded (few iterations) and uses the
arm's joint limits with rest poses taken from the initial configuration.
"""

from __future__ import annotations

import math

import numpy as np

from eqrobot.sim.simulator import Simulator
from eqrobot.sim.transforms import FRAME_FROM_ROW_MAJOR, matrix_to_quat, rot_x, rot_z

ARM_JOINTS = (0, 1, 2, 3, 4, 5, 6)
FINGER_JOINTS = (9, 10)
CONTROLLED_JOINTS = ARM_JOINTS + FINGER_JOINTS
EE_LINK = 11  # panda_grasptarget: between the finger tips
JOINT_FORCES = (87.0, 87.0, 87.0, 87.0, 12.0, 120.0, 120.0, 170.0, 170.0)
NEUTRAL_ARM = (0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79)
LOWER = (-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973)
UPPER = (2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973)
JOINT1_LIMIT = 2.8973
MAX_FINGER = 0.04


class Panda:
    """A Panda on ``sim`` with end-effector displacement control.

    Args:
        sim: the owning :class:`Simulator`.
        max_step: end-effector displacement in metres for an action of norm 1.
        max_gripper_step: change of the finger-width target per unit gripper action (panda-gym: 0.2).
        control_yaw: add a yaw-rate action (rotate the grasp about the up axis).
        max_yaw_step: yaw change in radians per control step at yaw action 1.
        ik_iterations: IK iterations per control step (bounded for speed).
        min_height: lowest end-effector height above the table top the controller will target.
    """

    def __init__(
        self,
        sim: Simulator,
        max_step: float = 0.05,
        max_gripper_step: float = 0.2,
        control_yaw: bool = False,
        max_yaw_step: float = 0.25,
        ik_iterations: int = 5,
        min_height: float = 0.0,
    ) -> None:
        self.sim = sim
        self.max_step = float(max_step)
        self.max_gripper_step = float(max_gripper_step)
        self.control_yaw = bool(control_yaw)
        self.max_yaw_step = float(max_yaw_step)
        self.ik_iterations = int(ik_iterations)
        self.min_height = float(min_height)
        self.body = sim.load_urdf("panda", "franka_panda/panda.urdf", useFixedBase=True)
        bc = sim.client
        for j in FINGER_JOINTS:
            bc.changeDynamics(self.body, j, lateralFriction=1.0, spinningFriction=0.001)
        self._bc = bc
        self._ranges = [u - lo for lo, u in zip(LOWER, UPPER, strict=True)]
        self._forces = list(JOINT_FORCES)
        self._pos_control = bc.POSITION_CONTROL
        self.yaw = 0.0
        self.reset(np.eye(3), np.zeros(3), 0.0)

    # --- reset --------------------------------------------------------------------------
    def reset(
        self, base_rotation, base_translation, joint1_offset: float = 0.0, finger_width: float = 0.08
    ) -> None:
        """Base at a world pose; arm at the neutral pose with joint 1 turned by ``joint1_offset``."""
        bc = self._bc
        base_rotation = np.asarray(base_rotation, dtype=np.float64)
        bc.resetBasePositionAndOrientation(
            self.body, np.asarray(base_translation, dtype=np.float64).tolist(), matrix_to_quat(base_rotation)
        )
        self.base_rotation = base_rotation
        self.base_position = np.asarray(base_translation, dtype=np.float64)
        arm = list(NEUTRAL_ARM)
        arm[0] += float(joint1_offset)
        self.rest_poses = arm + [0.0, 0.0]
        half = min(max(float(finger_width), 0.0), 2 * MAX_FINGER) / 2
        q = arm + [half, half]
        for j, v in zip(CONTROLLED_JOINTS, q, strict=True):
            bc.resetJointState(self.body, j, v, 0.0)
        bc.setJointMotorControlArray(
            self.body, CONTROLLED_JOINTS, self._pos_control, targetPositions=q, forces=self._forces
        )
        # grasp: pointing down (along gravity), yaw = task rotation (the arm's own yaw at rest)
        self.yaw = float(joint1_offset)
        self.up = base_rotation[:, 2].copy()
        self._base_grasp = base_rotation @ rot_x(math.pi)  # z axis along gravity
        self._update_grasp_quat()

    def _update_grasp_quat(self) -> None:
        # yaw about the up axis: R_base Rz(yaw) Rx(pi)
        self._grasp_rotation = self.base_rotation @ rot_z(self.yaw) @ rot_x(math.pi)
        self._grasp_quat = matrix_to_quat(self._grasp_rotation)

    # --- control ------------------------------------------------------------------------
    def apply_action(self, displacement, gripper: float, yaw_rate: float = 0.0) -> None:
        """Set joint targets for one control step. ``displacement`` is a world-frame 3-vector."""
        bc = self._bc
        ee_pos, width = self.read_ee_position_and_width()
        d = np.asarray(displacement, dtype=np.float64)
        n = math.sqrt(float(d @ d))
        scale = self.max_step / n if n > 1.0 else self.max_step
        target = ee_pos + d * scale
        # keep the target above the table top, along the up axis (equivariant: up is part of the state)
        h = float((target - self.base_position) @ self.up)
        if h < self.min_height:
            target = target + (self.min_height - h) * self.up
        if self.control_yaw:
            yaw_rate = min(max(float(yaw_rate), -1.0), 1.0)  # a scalar: clipping it is harmless
            if yaw_rate != 0.0:
                self.yaw += yaw_rate * self.max_yaw_step
                self._update_grasp_quat()
        joints = bc.calculateInverseKinematics(
            self.body,
            EE_LINK,
            target.tolist(),
            self._grasp_quat,
            lowerLimits=LOWER,
            upperLimits=UPPER,
            jointRanges=self._ranges,
            restPoses=self.rest_poses,
            maxNumIterations=self.ik_iterations,
            residualThreshold=1e-4,
        )
        g = min(max(float(gripper), -1.0), 1.0)
        w = min(max(width + g * self.max_gripper_step, 0.0), 2 * MAX_FINGER) / 2
        bc.setJointMotorControlArray(
            self.body,
            CONTROLLED_JOINTS,
            self._pos_control,
            targetPositions=(*joints[:7], w, w),
            forces=self._forces,
        )

    # --- readings -----------------------------------------------------------------------
    def read_ee_position_and_width(self) -> tuple[np.ndarray, float]:
        bc = self._bc
        pos = bc.getLinkState(self.body, EE_LINK, computeForwardKinematics=1)[4]
        s = bc.getJointStates(self.body, FINGER_JOINTS)
        return np.array(pos), s[0][0] + s[1][0]

    def read(self) -> tuple:
        """Flat tuple: ee position (3), ee velocity (3), finger width (1) [, ee frame columns (9)]."""
        bc = self._bc
        ls = bc.getLinkState(self.body, EE_LINK, computeLinkVelocity=1, computeForwardKinematics=1)
        s = bc.getJointStates(self.body, FINGER_JOINTS)
        out = (*ls[4], *ls[6], s[0][0] + s[1][0])
        if self.control_yaw:
            m = bc.getMatrixFromQuaternion(ls[5])
            out = out + tuple(m[i] for i in FRAME_FROM_ROW_MAJOR)
        return out

    @property
    def joint_positions(self) -> np.ndarray:
        return np.array([s[0] for s in self._bc.getJointStates(self.body, CONTROLLED_JOINTS)])
