"""Expressivity: trained on canonical scenes only, the equivariant net fits a known equivariant target
on held-out ROTATED scenes; an MLP of the same size, trained the same way, fails on them."""

import time

import numpy as np
import pytest
import torch

from eqrobot.geometry import ArraySpec, random_rotation, rotation_about_axis
from eqrobot.nn import EquivariantNet, count_parameters, mlp_matching

OBS = ArraySpec([
    ("ee_position", "point"), ("ee_velocity", "vector"), ("gripper_width", "scalar"),
    ("gravity_direction", "vector"), ("base_position", "point"), ("object_position", "point"),
    ("object_orientation", "frame"), ("object_linear_velocity", "vector"),
    ("object_angular_velocity", "pseudovector"),
])
GOAL = ArraySpec([("goal_position", "point")])
IN = ArraySpec.concat({"observation": OBS, "desired_goal": GOAL})
OUT = ArraySpec([("ee_displacement", "vector"), ("gripper", "scalar")])


def push_scenes(n: int, rng: np.random.Generator) -> np.ndarray:
    """Canonical Push-like observations: base at the origin, gravity -z, table workspace around x=0.5."""
    x = np.zeros((n, IN.dim))
    s = IN.split(x)
    center = np.array([0.5, 0.0, 0.0])
    s["observation/ee_position"][:] = center + rng.uniform([-0.2, -0.2, 0.02], [0.2, 0.2, 0.3], (n, 3))
    s["observation/ee_velocity"][:] = rng.normal(scale=0.1, size=(n, 3))
    s["observation/gripper_width"][:] = rng.uniform(0, 0.08, (n, 1))
    s["observation/gravity_direction"][:] = [0, 0, -1]
    s["observation/object_position"][:] = center + np.c_[rng.uniform(-0.15, 0.15, (n, 2)), np.full(n, 0.02)]
    yaw = rotation_about_axis([0, 0, 1], rng.uniform(-np.pi, np.pi, n))
    s["observation/object_orientation"][:] = np.swapaxes(yaw, -1, -2).reshape(n, 9)
    s["observation/object_linear_velocity"][:] = rng.normal(scale=0.05, size=(n, 3)) * [1, 1, 0]
    s["observation/object_angular_velocity"][:] = rng.normal(scale=0.5, size=(n, 3)) * [0, 0, 1]
    s["desired_goal/goal_position"][:] = center + np.c_[rng.uniform(-0.15, 0.15, (n, 2)), np.full(n, 0.02)]
    return x


def push_target(x: np.ndarray) -> np.ndarray:
    """A pushing oracle: move the ee to a point 5 cm behind the object (w.r.t. the goal) and 2 cm above
    the table ("above" = against gravity), gain 10, limited to the unit ball; gripper command
    ``tanh`` of the distance. Exactly SE(3)-equivariant when gravity transforms with the scene."""
    s = IN.split(x)
    obj, goal = s["observation/object_position"], s["desired_goal/goal_position"]
    ee = s["observation/ee_position"]
    g = s["observation/gravity_direction"]
    push = goal - obj
    push = push / np.maximum(np.linalg.norm(push, axis=-1, keepdims=True), 1e-3)
    d = 10 * (obj - 0.05 * push - 0.02 * g - ee)
    d = d / np.maximum(1.0, np.linalg.norm(d, axis=-1, keepdims=True))
    grip = np.tanh(5 * np.linalg.norm(goal - obj, axis=-1, keepdims=True) - 0.5)
    return np.concatenate([d, grip], axis=-1)


def rotate_scenes(x, rng, group):
    n = x.shape[0]
    if group == "so3":
        R = random_rotation(rng, n)
    else:
        R = rotation_about_axis([0, 0, 1], rng.uniform(-np.pi, np.pi, n))
    t = rng.normal(scale=1.0, size=(n, 3))
    return IN.transform(x, R, t), R


def train(net, x, y, steps, lr=1e-2, batch=256, seed=0):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    X, Y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    for _ in range(steps):
        idx = torch.randint(0, X.shape[0], (batch,), generator=gen)
        loss = (net(X[idx]) - Y[idx]).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net


def rmse(net, x, y):
    with torch.no_grad():
        pred = net(torch.as_tensor(x, dtype=torch.float32)).numpy()
    return float(np.sqrt(((pred - y) ** 2).sum(-1).mean()))


def run(steps: int, n_train: int, seed: int = 0, hidden: int = 64):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    x_train = push_scenes(n_train, rng)
    y_train = push_target(x_train)
    x_test = push_scenes(2000, rng)
    y_test = push_target(x_test)
    eq = EquivariantNet(IN, OUT, hidden=hidden, layers=2)
    mlp = mlp_matching(IN, OUT, eq, layers=2)
    results = {"params": (count_parameters(eq), count_parameters(mlp)), "target_rms": float(np.sqrt(
        (y_test ** 2).sum(-1).mean()))}
    for name, net in (("equivariant", eq), ("mlp", mlp)):
        t0 = time.perf_counter()
        train(net, x_train, y_train, steps)
        results[name] = {"train_s": time.perf_counter() - t0, "canonical": rmse(net, x_test, y_test)}
        for group in ("so2", "so3"):
            xr, R = rotate_scenes(x_test, np.random.default_rng(seed + 1), group)
            yr = OUT.transform(y_test, R)
            results[name][group] = rmse(net, xr, yr)
    return results


def test_equivariant_net_generalises_to_rotations_mlp_does_not():
    r = run(steps=1000, n_train=20000)
    eq, mlp = r["equivariant"], r["mlp"]
    print(r)
    # the equivariant net learns the target, and its error on rotated scenes IS its canonical error
    assert eq["canonical"] < 0.1 * r["target_rms"], r
    for group in ("so2", "so3"):
        assert abs(eq[group] - eq["canonical"]) < 1e-3 + 1e-2 * eq["canonical"], r
        # the MLP fits the canonical scenes but not rotated ones it never saw
        assert mlp[group] > 3 * eq[group] and mlp[group] > 0.5 * r["target_rms"], r
    assert mlp["canonical"] < 0.5 * r["target_rms"], r


@pytest.mark.slow
def test_expressivity_long():
    r = run(steps=6000, n_train=100000, hidden=128)
    print(r)
    eq, mlp = r["equivariant"], r["mlp"]
    assert eq["canonical"] < 0.1 * r["target_rms"], r
    for group in ("so2", "so3"):
        assert abs(eq[group] - eq["canonical"]) < 1e-3 + 1e-2 * eq["canonical"], r
        assert mlp[group] > 5 * eq[group], r
