"""SO(3) / SE(3) helpers that work on numpy arrays and torch tensors alike.

Every function accepts a single element or a batch (leading axes) and returns the same backend
and dtype it was given (float64 stays float64). Conventions:

- rotation matrices act on column vectors, ``v' = R v``;
- quaternions at the PyBullet boundary are ``(x, y, z, w)`` (scalar last);
- a pose ``(R, t)`` maps ``p -> R p + t``.

Numpy inputs go through ``scipy.spatial.transform.Rotation``; the torch versions are kept because
the dynamics models differentiate through them (scipy has no autograd). Two numpy functions keep
their own formula, because the envs call them and their bits fix every trajectory: :func:`rot_z`
and :func:`random_rotation` (scipy's ``Rotation.random`` draws the same rotations from the same
Generator but differs in the last bit for 93% of seeds, and takes 14 us against 5 us).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation


class _LazyTorch:
    """Imports torch on first use: the envs use the numpy path, and loading torch (about a second)
    in every env and every SubprocVecEnv worker is waste. A value can only be a torch tensor if
    torch was already imported, so the type checks below look in ``sys.modules`` instead."""

    def __getattr__(self, name):
        import torch as _torch

        return getattr(_torch, name)


torch = _LazyTorch()


def _torch_isinstance(x, type_name: str) -> bool:
    loaded = sys.modules.get("torch")
    return loaded is not None and isinstance(x, getattr(loaded, type_name))


def _is_torch(x) -> bool:
    return _torch_isinstance(x, "Tensor")


def _T(m):
    """Swap the last two axes."""
    return m.transpose(-1, -2) if _is_torch(m) else np.swapaxes(m, -1, -2)


def _stack(items, axis):
    return torch.stack(items, dim=axis) if _is_torch(items[0]) else np.stack(items, axis=axis)


def _as_array(x, like=None):
    if like is not None and _is_torch(like):
        return torch.as_tensor(x, dtype=like.dtype, device=like.device)
    if _is_torch(x):
        return x
    x = np.asarray(x)
    return x.astype(np.float64) if not np.issubdtype(x.dtype, np.floating) else x


def _numpy_out(values, like) -> np.ndarray:
    """scipy computes in float64: give the caller back its own float dtype."""
    dtype = like.dtype if np.issubdtype(like.dtype, np.floating) else np.float64
    return np.asarray(values, dtype=dtype)


# --------------------------------------------------------------------------------------------
# rotations about one axis, random rotations
# --------------------------------------------------------------------------------------------
def rot_z(angle: float) -> np.ndarray:
    """Rotation by ``angle`` (radians) about the z axis, ``(3, 3)`` float64.

    The formula the envs lay their task frame out with (task rotations, Rotate's yaw goals); kept
    as written so those bits never move.
    """
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_x(angle: float) -> np.ndarray:
    """Rotation by ``angle`` (radians) about the x axis, ``(3, 3)`` float64."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _gaussian_quat_to_matrix(q):
    """Rotation matrices of ``(x, y, z, w)`` quaternions, with ``s = 2 / |q|^2`` (any norm).

    The env's random world rotation has always been this exact formula (after normalising ``q``):
    changing it would change every such trajectory.
    """
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    s = 2.0 / (x * x + y * y + z * z + w * w)
    rows = [
        _stack([1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)], -1),
        _stack([s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)], -1),
        _stack([s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)], -1),
    ]
    return _stack(rows, -2)


def random_rotation(rng=None, n: int | None = None, dtype=None):
    """Rotations drawn uniformly (Haar measure) on SO(3).

    ``rng``: a ``numpy.random.Generator`` (or int seed / None) gives numpy arrays (float64 by
    default); a ``torch.Generator`` gives torch tensors (``torch.get_default_dtype()`` unless
    ``dtype``). ``n=None`` returns one ``(3, 3)`` matrix, else ``(n, 3, 3)``. Draws 4 normals per
    rotation (a normalised 4-D Gaussian is uniform on S^3).
    """
    shape = (1 if n is None else n, 4)
    if _torch_isinstance(rng, "Generator"):
        q = torch.randn(shape, generator=rng, dtype=dtype or torch.get_default_dtype(), device=rng.device)
        R = _gaussian_quat_to_matrix(q)
    else:
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        q = rng.normal(size=shape)
        # normalised by a per-row dot product (BLAS, like np.linalg.norm of one vector): the bits
        # the env's world rotations were drawn with; a pairwise row sum differs in 12% of draws
        q = q / np.sqrt(q[:, None, :] @ q[:, :, None])[:, 0]
        R = _gaussian_quat_to_matrix(q).astype(dtype or np.float64, copy=False)
    return R[0] if n is None else R


def rotation_about_axis(axis, angle):
    """Rotation by ``angle`` (radians, right-handed) about ``axis`` (need not be unit).

    ``angle`` may be a batch ``(...,)``; ``axis`` ``(3,)`` or ``(..., 3)``. Numpy unless either
    argument is a torch tensor.
    """
    if _is_torch(angle) or _is_torch(axis):
        ref = angle if _is_torch(angle) else axis
        dtype = ref.dtype if ref.is_floating_point() else torch.get_default_dtype()
        axis = torch.as_tensor(axis, dtype=dtype, device=ref.device)
        angle = torch.as_tensor(angle, dtype=dtype, device=ref.device)
        unit = axis / torch.linalg.norm(axis, dim=-1, keepdim=True)
        return exp_so3(unit * angle[..., None])
    axis = np.asarray(axis, dtype=np.float64)
    angle = np.asarray(angle, dtype=np.float64)
    unit = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    return exp_so3(unit * angle[..., None])


# --------------------------------------------------------------------------------------------
# quaternions (PyBullet order x, y, z, w)
# --------------------------------------------------------------------------------------------
def quat_xyzw_to_matrix(q):
    """Quaternion(s) ``(..., 4)`` in PyBullet's ``(x, y, z, w)`` order -> rotation matrices ``(..., 3, 3)``.

    The quaternion is normalised first (so non-unit input is accepted).
    """
    q = _as_array(q)
    if not _is_torch(q):
        flat = Rotation.from_quat(q.reshape(-1, 4)).as_matrix()
        return _numpy_out(flat.reshape(*q.shape[:-1], 3, 3), q)
    q = q / torch.linalg.norm(q, dim=-1, keepdim=True)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    rows = [
        _stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        _stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        _stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ]
    return _stack(rows, -2)


def matrix_to_quat_xyzw(R):
    """Rotation matrices ``(..., 3, 3)`` -> unit quaternions ``(..., 4)`` ``(x, y, z, w)`` with ``w >= 0``.

    Torch: Shepperd's method (branch on the largest of ``w, x, y, z``), accurate for every rotation.
    """
    R = _as_array(R)
    if not _is_torch(R):
        flat = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_quat(canonical=True)
        return _numpy_out(flat.reshape(*R.shape[:-2], 4), R)
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    tr = m00 + m11 + m22
    # four candidate (unnormalised) quaternions, each accurate when its pivot is largest
    cands = [
        _stack(
            [R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1], 1 + tr],
            -1,
        ),
        _stack(
            [
                1 + m00 - m11 - m22,
                R[..., 0, 1] + R[..., 1, 0],
                R[..., 0, 2] + R[..., 2, 0],
                R[..., 2, 1] - R[..., 1, 2],
            ],
            -1,
        ),
        _stack(
            [
                R[..., 0, 1] + R[..., 1, 0],
                1 - m00 + m11 - m22,
                R[..., 1, 2] + R[..., 2, 1],
                R[..., 0, 2] - R[..., 2, 0],
            ],
            -1,
        ),
        _stack(
            [
                R[..., 0, 2] + R[..., 2, 0],
                R[..., 1, 2] + R[..., 2, 1],
                1 - m00 - m11 + m22,
                R[..., 1, 0] - R[..., 0, 1],
            ],
            -1,
        ),
    ]
    pivots = _stack([1 + tr, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    C = _stack(cands, -2)  # (..., 4, 4)
    idx = pivots.argmax(dim=-1)
    q = torch.gather(C, -2, idx[..., None, None].expand(*idx.shape, 1, 4)).squeeze(-2)
    q = q / torch.linalg.norm(q, dim=-1, keepdim=True)
    return torch.where(q[..., 3:4] < 0, -q, q)


# --------------------------------------------------------------------------------------------
# Lie algebra
# --------------------------------------------------------------------------------------------
def skew(v):
    """``(..., 3)`` -> ``(..., 3, 3)`` with ``skew(a) @ b == cross(a, b)``."""
    v = _as_array(v)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = x * 0
    return _stack([_stack([zero, -z, y], -1), _stack([z, zero, -x], -1), _stack([-y, x, zero], -1)], -2)


def vee(S):
    """Inverse of :func:`skew` (antisymmetric part): ``(..., 3, 3)`` -> ``(..., 3)``."""
    return _stack(
        [
            (S[..., 2, 1] - S[..., 1, 2]) / 2,
            (S[..., 0, 2] - S[..., 2, 0]) / 2,
            (S[..., 1, 0] - S[..., 0, 1]) / 2,
        ],
        -1,
    )


def exp_so3(omega):
    """Rodrigues' formula: rotation vector(s) ``(..., 3)`` -> rotation matrices ``(..., 3, 3)``.

    Uses Taylor series below ``|omega| < 1e-4`` so values *and* torch gradients are finite and
    accurate at and near zero.
    """
    omega = _as_array(omega)
    if _is_torch(omega):
        K = skew(omega)
        th2 = (omega * omega).sum(-1)
        small = th2 < 1e-8
        th2_safe = torch.where(small, torch.ones_like(th2), th2)
        th = torch.sqrt(th2_safe)
        a = torch.where(small, 1 - th2 / 6 + th2 * th2 / 120, torch.sin(th) / th)
        b = torch.where(small, 0.5 - th2 / 24 + th2 * th2 / 720, (1 - torch.cos(th)) / th2_safe)
        eye = torch.eye(3, dtype=omega.dtype, device=omega.device)
        return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)
    flat = Rotation.from_rotvec(omega.reshape(-1, 3)).as_matrix()
    return _numpy_out(flat.reshape(*omega.shape[:-1], 3, 3), omega)


def log_so3(R):
    """Rotation matrices ``(..., 3, 3)`` -> rotation vectors ``(..., 3)`` with angle in ``[0, pi]``.

    Torch: accurate near 0 (Taylor) and near ``pi`` (axis from the symmetric part).
    """
    R = _as_array(R)
    if not _is_torch(R):
        flat = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_rotvec()
        return _numpy_out(flat.reshape(*R.shape[:-2], 3), R)
    tr = R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2]
    cos = torch.clip((tr - 1) / 2, -1.0, 1.0)
    w = vee(R)  # = sin(theta) * axis
    sin = torch.sqrt((w * w).sum(-1))
    theta = torch.atan2(sin, cos)
    small = theta < 1e-4
    sin_safe = torch.where(small, torch.ones_like(sin), sin)
    factor = torch.where(small, 1 + theta * theta / 6, theta / sin_safe)
    out = factor[..., None] * w
    # near pi, sin -> 0 and w loses the axis: take it from B = (R + R^T)/2 - cos I = (1 - cos) a a^T
    near_pi = cos < -0.99
    if near_pi.any().item():
        B = (R + _T(R)) / 2
        diag = _stack([B[..., 0, 0], B[..., 1, 1], B[..., 2, 2]], -1) - cos[..., None]
        i = diag.argmax(-1)
        col = torch.gather(B, -1, i[..., None, None].expand(*i.shape, 3, 1))[..., 0]
        col = col - cos[..., None] * torch.nn.functional.one_hot(i, 3).to(B.dtype)
        axis = col / torch.linalg.norm(col, dim=-1, keepdim=True).clamp_min(1e-300)
        sign = torch.where((axis * w).sum(-1) < 0, -1.0, 1.0).to(B.dtype)
        out = torch.where(near_pi[..., None], (sign * theta)[..., None] * axis, out)
    return out


def rotation_angle(R):
    """Geodesic angle(s) of rotation(s), in ``[0, pi]``."""
    R = _as_array(R)
    if not _is_torch(R):
        flat = Rotation.from_matrix(R.reshape(-1, 3, 3)).magnitude()
        return _numpy_out(flat.reshape(R.shape[:-2]), R)
    return torch.linalg.norm(log_so3(R), dim=-1)


def project_to_so3(M):
    """Nearest rotation (Frobenius) to ``M`` ``(..., 3, 3)``: orthonormalises, keeps det = +1."""
    if _is_torch(M):
        U, _, Vh = torch.linalg.svd(M)
        d = torch.sign(torch.linalg.det(U @ Vh))
        D = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
        return U @ D @ Vh
    U, _, Vh = np.linalg.svd(M)
    d = np.sign(np.linalg.det(U @ Vh))
    D = np.zeros(M.shape[:-2] + (3, 3))
    D[..., 0, 0] = 1
    D[..., 1, 1] = 1
    D[..., 2, 2] = d
    return U @ D @ Vh


# --------------------------------------------------------------------------------------------
# SE(3)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pose:
    """A rigid motion ``p -> R p + t`` (batched if ``R`` is ``(..., 3, 3)`` and ``t`` ``(..., 3)``).

    ``a @ b`` composes (apply ``b`` first), ``~a`` / ``a.inverse()`` inverts, ``a(p)`` transforms
    points, ``a.rotate(v)`` vectors. numpy or torch.
    """

    R: object
    t: object

    @classmethod
    def identity(cls, like=None) -> Pose:
        if like is not None and _is_torch(like):
            return cls(
                torch.eye(3, dtype=like.dtype, device=like.device),
                torch.zeros(3, dtype=like.dtype, device=like.device),
            )
        return cls(np.eye(3), np.zeros(3))

    @classmethod
    def from_matrix(cls, T) -> Pose:
        return cls(T[..., :3, :3], T[..., :3, 3])

    @classmethod
    def from_pybullet(cls, position, quat_xyzw) -> Pose:
        return cls(quat_xyzw_to_matrix(quat_xyzw), _as_array(position))

    def as_matrix(self):
        R, t = self.R, self.t
        if _is_torch(R):
            T = torch.zeros(*R.shape[:-2], 4, 4, dtype=R.dtype, device=R.device)
        else:
            T = np.zeros(R.shape[:-2] + (4, 4), dtype=np.result_type(R, t))
        T[..., :3, :3] = R
        T[..., :3, 3] = t
        T[..., 3, 3] = 1
        return T

    def to_pybullet(self):
        """``(position, quaternion xyzw)``."""
        return self.t, matrix_to_quat_xyzw(self.R)

    def compose(self, other: Pose) -> Pose:
        """``self ∘ other``: apply ``other`` first."""
        return Pose(self.R @ other.R, (self.R @ other.t[..., None])[..., 0] + self.t)

    __matmul__ = compose

    def inverse(self) -> Pose:
        Rt = _T(self.R)
        return Pose(Rt, -(Rt @ self.t[..., None])[..., 0])

    __invert__ = inverse

    def apply(self, points):
        """Transform points ``(..., 3)`` (broadcast against the pose's batch)."""
        return (self.R @ points[..., None])[..., 0] + self.t

    __call__ = apply

    def rotate(self, vectors):
        """Rotate (free) vectors ``(..., 3)``."""
        return (self.R @ vectors[..., None])[..., 0]


def compose_poses(a: Pose, b: Pose) -> Pose:
    """``a ∘ b`` (apply ``b`` first)."""
    return a.compose(b)


def invert_pose(a: Pose) -> Pose:
    return a.inverse()


def random_pose(rng=None, n: int | None = None, translation_scale: float = 1.0) -> Pose:
    """Uniform rotation and Gaussian translation (std ``translation_scale``); numpy or torch like ``rng``."""
    R = random_rotation(rng, n)
    shape = (3,) if n is None else (n, 3)
    if _torch_isinstance(rng, "Generator"):
        t = torch.randn(shape, generator=rng, dtype=R.dtype) * translation_scale
    else:
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        t = rng.standard_normal(shape) * translation_scale
    return Pose(R, t)


__all__ = [
    "Pose",
    "compose_poses",
    "exp_so3",
    "invert_pose",
    "log_so3",
    "matrix_to_quat_xyzw",
    "project_to_so3",
    "quat_xyzw_to_matrix",
    "random_pose",
    "random_rotation",
    "rot_x",
    "rot_z",
    "rotation_about_axis",
    "rotation_angle",
    "skew",
    "vee",
]
