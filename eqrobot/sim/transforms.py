"""Rotation conversions at the PyBullet boundary (no torch here), on the env's hot and reset paths.

PyBullet quaternions are (x, y, z, w); everything else in eqrobot uses rotation matrices. General
rotation maths (scipy-backed) lives in :mod:`eqrobot.geometry.so3`; the two conversions here keep
the exact formulas every env trajectory was produced with (see each function for the measurement).
"""

from __future__ import annotations

import operator

import numpy as np
import pybullet as p

# Columns-stacked frame from PyBullet's row-major getMatrixFromQuaternion tuple: frame = R.T.reshape(9).
FRAME_FROM_ROW_MAJOR = (0, 3, 6, 1, 4, 7, 2, 5, 8)
_frame_columns = operator.itemgetter(*FRAME_FROM_ROW_MAJOR)
_matrix_from_quaternion = p.getMatrixFromQuaternion


def quat_to_frame_columns(quat) -> tuple:
    """A PyBullet ``(x, y, z, w)`` quaternion -> its rotation's 3 columns, stacked (9 floats).

    PyBullet's own conversion, not scipy's: this runs for every object orientation of every
    observation, where it costs 0.2 us against 11 us for ``Rotation.from_quat(q).as_matrix()``
    (about 2% of a Push step per object). The float64 results differ from scipy's in the last bit
    for 92% of quaternions (none of 20,000 after the observation's float32 cast); the end-effector
    frame, which the IK uses in float64, comes from the same PyBullet call in :class:`Panda`.
    """
    return _frame_columns(_matrix_from_quaternion(quat))


def matrix_to_quat(R) -> tuple[float, float, float, float]:
    """3x3 rotation matrix -> (x, y, z, w) quaternion, as PyBullet poses are set (reset path).

    Not :func:`eqrobot.geometry.matrix_to_quat_xyzw` (scipy): for 68% of rotations scipy's
    quaternion differs in the last bit, which would move every transformed-world trajectory, and one
    matrix costs 47 us in scipy against 1.8 us here.
    """
    R = np.asarray(R, dtype=np.float64)
    tr = R[0, 0] + R[1, 1] + R[2, 2]
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        w, x, y, z = 0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        w, x, y, z = (R[2, 1] - R[1, 2]) / s, 0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        w, x, y, z = (R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s
    else:
        s = 2.0 * np.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        w, x, y, z = (R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s
    return (float(x), float(y), float(z), float(w))


def check_rotation(R, name: str = "rotation", atol: float = 1e-6) -> np.ndarray:
    """Return ``R`` as a float64 (3, 3) array, or raise ValueError if it is not a proper rotation."""
    try:
        R = np.asarray(R, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 3x3 rotation matrix of numbers, got {R!r}") from exc
    if R.shape != (3, 3):
        raise ValueError(f"{name} must have shape (3, 3), got {R.shape}")
    if not np.all(np.isfinite(R)):
        raise ValueError(f"{name} contains NaN or inf: {R.tolist()}")
    err = np.abs(R @ R.T - np.eye(3)).max()
    if err > atol:
        raise ValueError(f"{name} is not orthonormal (max |R R^T - I| = {err:.2e}); pass a rotation matrix")
    det = np.linalg.det(R)
    if det < 0:
        raise ValueError(f"{name} has determinant {det:.3f}: reflections are not supported, pass det +1")
    return R
