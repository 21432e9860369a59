import numpy as np
import pytest
import torch

from eqrobot.geometry import (
    Pose,
    exp_so3,
    log_so3,
    matrix_to_quat_xyzw,
    project_to_so3,
    quat_xyzw_to_matrix,
    random_pose,
    random_rotation,
    rot_x,
    rot_z,
    rotation_about_axis,
    rotation_angle,
    skew,
)


def _is_rotation(R, tol=1e-12):
    R = np.asarray(R)
    eye = np.broadcast_to(np.eye(3), R.shape)
    orthonormal = np.allclose(R @ np.swapaxes(R, -1, -2), eye, atol=tol)
    return orthonormal and np.allclose(np.linalg.det(R), 1, atol=tol)


def test_random_rotation_numpy_and_torch():
    R = random_rotation(np.random.default_rng(0), 100)
    assert R.shape == (100, 3, 3) and R.dtype == np.float64 and _is_rotation(R)
    assert random_rotation(0).shape == (3, 3)
    Rt = random_rotation(torch.Generator().manual_seed(0), 5, dtype=torch.float64)
    assert isinstance(Rt, torch.Tensor) and Rt.dtype == torch.float64 and _is_rotation(Rt.numpy())


def test_random_rotation_is_uniform():
    # Haar measure: the rotated x axis is uniform on the sphere, and trace has mean 0
    R = random_rotation(np.random.default_rng(1), 20000)
    assert abs(np.trace(R, axis1=-2, axis2=-1).mean()) < 0.03
    assert np.all(np.abs(R[:, :, 0].mean(0)) < 0.02)
    assert np.allclose((R[:, :, 0] ** 2).mean(0), 1 / 3, atol=0.01)


def test_rotation_about_axis():
    R = rotation_about_axis([0, 0, 2.0], np.pi / 2)
    assert np.allclose(R @ [1, 0, 0], [0, 1, 0])
    Rb = rotation_about_axis(np.array([1.0, 1, 0]), np.linspace(-3, 3, 7))
    assert Rb.shape == (7, 3, 3) and _is_rotation(Rb)
    Rt = rotation_about_axis((0, 0, 1), torch.tensor([0.3, 0.4], dtype=torch.float64))
    assert torch.allclose(Rt[1], torch.as_tensor(rotation_about_axis([0, 0, 1], 0.4)))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_quaternion_roundtrip(backend):
    rng = np.random.default_rng(2)
    R = random_rotation(rng, 200)
    # include the hard cases: identity, 180 degree turns about each axis
    R = np.concatenate(
        [
            R,
            np.eye(3)[None],
            np.diag([1.0, -1, -1])[None],
            np.diag([-1.0, 1, -1])[None],
            np.diag([-1.0, -1, 1])[None],
        ]
    )
    if backend == "torch":
        R = torch.as_tensor(R)
    q = matrix_to_quat_xyzw(R)
    R2 = quat_xyzw_to_matrix(q)
    assert np.allclose(np.asarray(R2), np.asarray(R), atol=1e-12)
    assert np.all(np.asarray(q)[:, 3] >= 0)


def test_quaternion_matches_pybullet():
    import pybullet as p

    rng = np.random.default_rng(3)
    for _ in range(10):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        ours = quat_xyzw_to_matrix(q)
        theirs = np.array(p.getMatrixFromQuaternion(q.tolist())).reshape(3, 3)
        assert np.allclose(ours, theirs, atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_exp_log(backend):
    rng = np.random.default_rng(4)
    axis = rng.normal(size=(50, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    near_pi = np.pi - np.array([0, 1e-9, 1e-6, 1e-3, 0.05, 0.1])
    angles = np.concatenate([[0.0, 1e-9, 1e-5, 1e-3], rng.uniform(0, np.pi, 40), near_pi])
    w = axis * angles[:, None]
    if backend == "torch":
        w = torch.as_tensor(w)
    R = exp_so3(w)
    assert _is_rotation(np.asarray(R))
    # compare with skew-matrix exponential
    K = skew(w)
    ref = torch.linalg.matrix_exp(torch.as_tensor(K)).numpy()
    assert np.allclose(np.asarray(R), ref, atol=1e-12)
    w2 = np.asarray(log_so3(R))
    # at exactly pi the sign of the axis is ambiguous
    assert np.allclose(np.asarray(exp_so3(w2)), np.asarray(R), atol=1e-9)
    ok = angles < np.pi - 1e-3
    assert np.allclose(w2[ok], np.asarray(w)[ok], atol=1e-9)
    assert np.allclose(rotation_angle(np.asarray(R)), angles, atol=1e-7)


def test_exp_so3_gradient_finite_at_zero():
    w = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    R = exp_so3(w)
    (R * torch.arange(9.0, dtype=torch.float64).reshape(3, 3)).sum().backward()
    assert torch.isfinite(w.grad).all()
    # d/dw of R(w) v at 0 is -skew(v): check against finite differences on a small input
    w0 = torch.tensor([[1e-6, -2e-6, 3e-7]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(exp_so3, (w0,))
    w1 = torch.tensor([[0.4, -1.2, 0.3]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(exp_so3, (w1,))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_pose_compose_inverse(backend):
    a = random_pose(np.random.default_rng(5), 4, translation_scale=10)
    b = random_pose(np.random.default_rng(6), 4, translation_scale=10)
    p = np.random.default_rng(7).normal(size=(4, 3))
    if backend == "torch":
        a = Pose(torch.as_tensor(a.R), torch.as_tensor(a.t))
        b = Pose(torch.as_tensor(b.R), torch.as_tensor(b.t))
        p = torch.as_tensor(p)
    assert np.allclose(np.asarray((a @ b)(p)), np.asarray(a(b(p))), atol=1e-12)
    assert np.allclose(np.asarray((~a)(a(p))), np.asarray(p), atol=1e-12)
    T = a.as_matrix()
    assert np.allclose(np.asarray(Pose.from_matrix(T).t), np.asarray(a.t))
    pos, q = a.to_pybullet()
    assert np.allclose(np.asarray(Pose.from_pybullet(pos, q).R), np.asarray(a.R), atol=1e-12)
    assert np.allclose(np.asarray(a.rotate(p)), np.asarray(a(p) - a.t), atol=1e-12)


def test_project_to_so3():
    R = random_rotation(np.random.default_rng(8), 3)
    noisy = R + 1e-3 * np.random.default_rng(9).normal(size=R.shape)
    P = project_to_so3(noisy)
    assert _is_rotation(P) and np.allclose(P, R, atol=1e-2)
    assert _is_rotation(project_to_so3(torch.as_tensor(noisy)).numpy())


def test_numpy_paths_agree_with_the_torch_versions():
    """numpy goes through scipy, torch through the hand-written (differentiable) formulas."""
    rng = np.random.default_rng(10)
    q = rng.normal(size=(64, 4))
    R = quat_xyzw_to_matrix(q)
    Rt = quat_xyzw_to_matrix(torch.as_tensor(q))
    np.testing.assert_allclose(R, Rt.numpy(), atol=1e-13)
    np.testing.assert_allclose(matrix_to_quat_xyzw(R), matrix_to_quat_xyzw(Rt).numpy(), atol=1e-13)
    w = rng.normal(size=(64, 3))
    np.testing.assert_allclose(exp_so3(w), exp_so3(torch.as_tensor(w)).numpy(), atol=1e-13)
    np.testing.assert_allclose(log_so3(R), log_so3(Rt).numpy(), atol=1e-9)
    np.testing.assert_allclose(rotation_angle(R), rotation_angle(Rt).numpy(), atol=1e-9)
    # batch shapes and the caller's float dtype are kept
    assert exp_so3(w.reshape(4, 16, 3)).shape == (4, 16, 3, 3)
    assert log_so3(R.reshape(8, 8, 3, 3).astype(np.float32)).dtype == np.float32
    assert rotation_angle(R[0]).shape == ()


def test_rot_z_and_rot_x():
    a = 0.7
    np.testing.assert_allclose(rot_z(a), rotation_about_axis([0, 0, 1], a), atol=1e-15)
    np.testing.assert_allclose(rot_x(a), rotation_about_axis([1, 0, 0], a), atol=1e-15)


def test_random_rotation_batch_matches_single_draws():
    """One formula: a batch of n draws is n single draws from the same stream, bit for bit."""
    batch = random_rotation(np.random.default_rng(11), 50)
    rng = np.random.default_rng(11)
    singles = np.stack([random_rotation(rng) for _ in range(50)])
    np.testing.assert_array_equal(batch, singles)
