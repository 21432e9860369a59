"""Small numpy rotation helpers used at the PyBullet boundary (no torch here).

PyBullet quaternions are (x, y, z, w). Everything else in eqrobot uses rotation matrices.
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

    PyBullet's own conversion, not scipy's: this runs for every orientation of every observation,
    where it costs 0.2 us against scipy's 11 us per call, and its float64 bits differ from
    ``Rotation.from_quat(q).as_matrix()`` in the last place for most quaternions (which would move
    the IK and with it every trajectory).
    """
    return _frame_columns(_matrix_from_quaternion(quat))


def rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def quat_to_matrix(q) -> np.ndarray:
    """(x, y, z, w) quaternion -> 3x3 rotation matrix."""
    x, y, z, w = (float(v) for v in q)
    n = x * x + y * y + z * z + w * w
    s = 2.0 / n if n > 0 else 0.0
    return np.array(
        [
            [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
            [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
            [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
        ]
    )


def matrix_to_quat(R) -> tuple[float, float, float, float]:
    """3x3 rotation matrix -> (x, y, z, w) quaternion (numerically robust branch choice)."""
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


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniform random rotation (Haar measure) from a numpy Generator."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    return quat_to_matrix(q)
