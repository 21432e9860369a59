"""Franka Panda (pybullet_data ``franka_panda/panda.urdf``) with Cartesian end-effector control.

Control: a world-frame end-effector displacement limited by its *norm* (``d -> d / max(1, |d|)``,
times ``max_step`` metres), a gripper scalar, and optionally a yaw rate about the up axis. The
grasp orientation is "pointing along gravity" with a yaw held by the controller (it starts at the
task rotation, so it follows both symmetry groups); IK is one damped-least-squares step per
control step (resolved rate) with a null-space pull to the initial configuration.
"""

from __future__ import annotations

import math
import operator

import numpy as np
import pybullet as p

try:  # LAPACK's Cholesky solve: ~2 us for 6x6, where np.linalg.solve costs ~9 us of Python overhead
    from scipy.linalg.lapack import dposv as _dposv

    def _spd_solve(A, b):
        return _dposv(A, b)[1]

except ImportError:  # pragma: no cover
    _spd_solve = np.linalg.solve

from eqrobot.geometry.so3 import rot_x, rot_z
from eqrobot.sim.simulator import Simulator
from eqrobot.sim.transforms import FRAME_FROM_ROW_MAJOR, matrix_to_quat

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
_ZERO3 = (0.0, 0.0, 0.0)
_ROT_X_PI = rot_x(math.pi)
_frame_columns = operator.itemgetter(*FRAME_FROM_ROW_MAJOR)  # row-major 3x3 -> the 9 stacked columns
_ZEROS9 = (0.0,) * len(CONTROLLED_JOINTS)


class Panda:
    """A Panda on ``sim`` with end-effector displacement control.

    Args:
        sim: the owning :class:`Simulator`.
        max_step: end-effector displacement in metres for an action of norm 1.
        max_gripper_step: change of the finger-width target per unit gripper action (panda-gym: 0.2).
        control_yaw: add a yaw-rate action (rotate the grasp about the up axis).
        max_yaw_step: yaw change in radians per control step at yaw action 1.
        min_height: lowest end-effector height above the table top the controller will target.
    """

    def __init__(
        self,
        sim: Simulator,
        max_step: float = 0.05,
        max_gripper_step: float = 0.2,
        control_yaw: bool = False,
        max_yaw_step: float = 0.25,
        min_height: float = 0.015,
    ) -> None:
        self.sim = sim
        self.max_step = float(max_step)
        self.max_gripper_step = float(max_gripper_step)
        self.control_yaw = bool(control_yaw)
        self.max_yaw_step = float(max_yaw_step)
        self.min_height = float(min_height)
        self.body = sim.load_urdf("panda", "franka_panda/panda.urdf", useFixedBase=True)
        bc = sim.client
        for j in FINGER_JOINTS:
            bc.changeDynamics(self.body, j, lateralFriction=1.0, spinningFriction=0.001)
        # couple the fingers (as the real gripper's mimic joint): a held object stays centred
        c = bc.createConstraint(
            self.body,
            FINGER_JOINTS[0],
            self.body,
            FINGER_JOINTS[1],
            bc.JOINT_GEAR,
            (1, 0, 0),
            (0, 0, 0),
            (0, 0, 0),
        )
        bc.changeConstraint(c, gearRatio=-1, erp=0.1, maxForce=50)
        self._bc = bc
        self._ranges = [u - lo for lo, u in zip(LOWER, UPPER, strict=True)]
        self._forces = list(JOINT_FORCES)
        # PyBullet's position motor removes a fraction kp of the error per physics step; choose kp so
        # that one control period tracks like panda-gym's (kp 0.1 over 20 substeps): 88% of the error.
        kp = 1.0 - 0.9 ** (20.0 / sim.n_substeps)
        self._gains = [kp] * len(CONTROLLED_JOINTS)
        self._pos_control = bc.POSITION_CONTROL
        self.yaw = 0.0
        # bound client calls (BulletClient builds a partial on every attribute access)
        self._jacobian = bc.calculateJacobian
        self._motors = bc.setJointMotorControlArray
        self._link_state = bc.getLinkState
        self._joint_states = bc.getJointStates
        self._damping_eye = 1e-3 * np.eye(6)  # about (3 cm)^2 damping of the least-squares step
        self._null_gain = 0.1
        self._lower, self._upper = np.array(LOWER), np.array(UPPER)
        self._stale = True
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
        self._base_is_identity = bool(np.array_equal(base_rotation, np.eye(3)))
        self._base = tuple(self.base_position.tolist())
        arm = list(NEUTRAL_ARM)
        arm[0] += float(joint1_offset)
        self.rest_poses = arm + [0.0, 0.0]
        self._rest7 = np.array(arm)
        half = min(max(float(finger_width), 0.0), 2 * MAX_FINGER) / 2
        q = arm + [half, half]
        for j, v in zip(CONTROLLED_JOINTS, q, strict=True):
            bc.resetJointState(self.body, j, v, 0.0)
        bc.setJointMotorControlArray(
            self.body,
            CONTROLLED_JOINTS,
            self._pos_control,
            targetPositions=q,
            forces=self._forces,
            positionGains=self._gains,
        )
        # grasp: pointing down (along gravity), yaw = task rotation (the arm's own yaw at rest)
        self.yaw = float(joint1_offset)
        self.up = base_rotation[:, 2].copy()
        self._up = tuple(self.up.tolist())
        self._base_grasp = base_rotation @ rot_x(math.pi)  # z axis along gravity
        self._update_grasp_rotation()
        self._stale = True

    def _update_grasp_rotation(self) -> None:
        # yaw about the up axis: R_base Rz(yaw) Rx(pi)
        self._grasp_rotation = self.base_rotation @ rot_z(self.yaw) @ _ROT_X_PI

    # --- control ------------------------------------------------------------------------
    def apply_action(self, displacement, gripper: float, yaw_rate: float = 0.0) -> None:
        """Set joint targets for one control step. ``displacement`` is a world-frame 3-vector.

        Resolved-rate IK: one damped-least-squares step on the 6-D pose error (position + grasp
        orientation) from PyBullet's Jacobian, with a null-space pull to the rest pose. Exact to first
        order for the <= 5 cm steps used here; the next step re-linearises from the measured state.
        """
        if self._stale:
            self.read()
        ex, ey, ez = self._ee_pos
        dx, dy, dz = map(float, displacement)
        n2 = dx * dx + dy * dy + dz * dz
        if n2 == math.inf:  # a huge finite action (1e200): shrink it first, so it acts as its direction
            m = max(abs(dx), abs(dy), abs(dz))
            dx, dy, dz = dx / m, dy / m, dz / m
            n2 = dx * dx + dy * dy + dz * dz
        scale = self.max_step / math.sqrt(n2) if n2 > 1.0 else self.max_step  # radial limit, never per axis
        dx, dy, dz = dx * scale, dy * scale, dz * scale
        # keep the target above the table top, along the up axis (equivariant: up is part of the state)
        ux, uy, uz = self._up
        bx, by, bz = self._base
        h = (ex + dx - bx) * ux + (ey + dy - by) * uy + (ez + dz - bz) * uz
        if h < self.min_height:
            k = self.min_height - h
            dx, dy, dz = dx + k * ux, dy + k * uy, dz + k * uz
        if self.control_yaw:
            yaw_rate = min(max(float(yaw_rate), -1.0), 1.0)  # a scalar: clipping it is harmless
            if yaw_rate != 0.0:
                self.yaw += yaw_rate * self.max_yaw_step
                self._update_grasp_rotation()
        # 6-D error: position, and the rotation vector (small-angle) taking the hand to the grasp pose
        M = (self._grasp_rotation @ self._ee_rot.T).ravel().tolist()
        err = np.array((dx, dy, dz, 0.5 * (M[7] - M[5]), 0.5 * (M[2] - M[6]), 0.5 * (M[3] - M[1])))
        # PyBullet returns the Jacobian of a fixed-base body in its BASE frame: rotate it to the world
        # frame, or IK steps are wrong (and not equivariant) whenever the base is rotated.
        J = np.array(self._jacobian(self.body, EE_LINK, _ZERO3, self._q, _ZEROS9, _ZEROS9))
        if not self._base_is_identity:
            J = self.base_rotation @ J
        J = J.reshape(6, 9)[:, :7]
        q7 = self._q7
        pull = self._null_gain * (self._rest7 - q7)
        # dq = J+ err + (I - J+ J) pull  with  J+ = J^T (J J^T + damping)^-1
        q_new = q7 + (pull + J.T @ _spd_solve(J @ J.T + self._damping_eye, err - J @ pull))
        clipped = np.minimum(np.maximum(q_new, self._lower), self._upper)
        if (clipped != q_new).any():
            # a joint hits its limit: freeze it and let the others do its share (once)
            free = clipped == q_new
            J = J * free
            pull = pull * free
            q_new = q7 + pull + J.T @ _spd_solve(J @ J.T + self._damping_eye, err - J @ pull)
            clipped = np.minimum(np.maximum(q_new, self._lower), self._upper)
        g = min(max(float(gripper), -1.0), 1.0)
        w = min(max(self._width + g * self.max_gripper_step, 0.0), 2 * MAX_FINGER) / 2
        self._motors(
            self.body,
            CONTROLLED_JOINTS,
            self._pos_control,
            targetPositions=(*clipped.tolist(), w, w),
            forces=self._forces,
            positionGains=self._gains,
        )
        self._stale = True

    # --- readings -----------------------------------------------------------------------
    def read(self) -> None:
        """Refresh the state cached as attributes (world frame): ``ee_position`` (3-tuple),
        ``ee_velocity`` (3-tuple), ``gripper_width`` (float), ``ee_frame`` (the 3 columns of the
        end-effector rotation, stacked: 9-tuple), and the pose and joint positions the next
        :meth:`apply_action` linearises at. Plain attributes: the observation reads them every step."""
        ls = self._link_state(self.body, EE_LINK, 1, 1)  # computeLinkVelocity, computeForwardKinematics
        q = [s[0] for s in self._joint_states(self.body, CONTROLLED_JOINTS)]
        m = p.getMatrixFromQuaternion(ls[5])
        self._q = q
        self._q7 = np.array(q[:7])
        self.gripper_width = self._width = q[7] + q[8]
        self.ee_position = self._ee_pos = ls[4]
        self.ee_velocity = ls[6]
        self.ee_frame = _frame_columns(m)
        self._ee_rot = np.array(m).reshape(3, 3)
        self._stale = False

    @property
    def joint_positions(self) -> np.ndarray:
        return np.array([s[0] for s in self._bc.getJointStates(self.body, CONTROLLED_JOINTS)])
