"""eqrobot.testing must pass equivariant functions and catch non-equivariant ones."""

import numpy as np
import pytest
import torch

from eqrobot.geometry import ArraySpec
from eqrobot.testing import assert_equivariant, equivariance_error, random_group_element

IN = ArraySpec([("base", "point"), ("p", "point"), ("v", "vector"), ("w", "pseudovector"), ("F", "frame"),
                ("s", "scalar", 2)])
OUT = ArraySpec([("d", "vector"), ("q", "point"), ("c", "scalar")])


def equivariant_numpy(x):
    p, base, v, w, s = x[..., 3:6], x[..., 0:3], x[..., 6:9], x[..., 9:12], x[..., 21:23]
    d = np.cross(v, w) * np.linalg.norm(p - base, axis=-1, keepdims=True) + x[..., 12:15]  # + a frame column
    c = (v * (p - base)).sum(-1, keepdims=True) + s[..., :1]
    return np.concatenate([d, p + v, c], axis=-1)


def equivariant_torch(x):
    return torch.cat(
        [torch.linalg.cross(x[..., 6:9], x[..., 9:12], dim=-1), x[..., 3:6] + x[..., 6:9],
         (x[..., 6:9] * (x[..., 3:6] - x[..., 0:3])).sum(-1, keepdim=True)], dim=-1)


@pytest.mark.parametrize("group", ["se3", "so3", "so2", "se2"])
def test_passes_equivariant_functions(group):
    err = assert_equivariant(equivariant_numpy, IN, OUT, group=group)
    assert err < 1e-9
    assert assert_equivariant(equivariant_torch, IN, OUT, group=group, dtype=torch.float32) < 1e-3


def test_fails_per_component_clip_and_names_field():
    def clipped(x):
        y = equivariant_numpy(x)
        y[..., :3] = np.clip(y[..., :3], -0.5, 0.5)  # per-component clip of a vector: not equivariant
        return y

    with pytest.raises(AssertionError, match=r"error .* > tolerance .* in field 'd'"):
        assert_equivariant(clipped, IN, OUT)


def test_fails_translation_but_not_rotation():
    def absolute(x):  # uses an absolute position as a vector: rotation-equivariant, not translation
        y = equivariant_numpy(x)
        y[..., :3] = x[..., 3:6]
        return y

    assert assert_equivariant(absolute, IN, OUT, group="so3") < 1e-9
    with pytest.raises(AssertionError, match="not se3-equivariant"):
        assert_equivariant(absolute, IN, OUT, group="se3")


def test_so2_only_function():
    # uses the z component as an invariant: equivariant about z, not under SO(3)
    spec = ArraySpec([("v", "vector")])

    def f(x):
        return x * x[..., 2:3]

    assert assert_equivariant(f, spec, spec, group="so2") < 1e-12
    assert assert_equivariant(f, spec, spec, group="so2", axis=(0, 0, -1)) < 1e-12
    with pytest.raises(AssertionError):
        assert_equivariant(f, spec, spec, group="so2", axis=(1, 0, 0))
    with pytest.raises(AssertionError):
        assert_equivariant(f, spec, spec, group="so3")


def test_random_module_fails():
    torch.manual_seed(0)
    lin = torch.nn.Linear(IN.dim, OUT.dim)
    with pytest.raises(AssertionError, match="not se3-equivariant"):
        assert_equivariant(lin, IN, OUT, dtype=torch.float32)
    assert lin.weight.dtype == torch.float32  # the module was copied, not cast in place
    assert_equivariant(lin, IN, OUT, dtype=torch.float64, rtol=1e9)  # passes with a silly tolerance


def test_multi_input_output():
    a = ArraySpec([("p", "point"), ("v", "vector")])
    b = ArraySpec([("q", "point")])

    def f(x, y):
        return y[..., :3] - x[..., :3], (x[..., 3:6] * (y - x[..., :3])).sum(-1, keepdims=True)

    out = (ArraySpec([("d", "vector")]), ArraySpec([("s", "scalar")]))
    assert assert_equivariant(f, (a, b), out) < 1e-9
    errs = equivariance_error(f, (a, b), out, *random_group_element("se3", 1))
    assert set(errs) == {"0:d", "1:s"}


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown group"):
        assert_equivariant(equivariant_numpy, IN, OUT, group="o3")
    with pytest.raises(ValueError, match="features"):
        assert_equivariant(lambda x: x[..., :2], IN, OUT)
    with pytest.raises(TypeError):
        assert_equivariant(equivariant_numpy, "IN", OUT)


def test_random_group_element():
    R, t = random_group_element("so2", 0, axis=(0, 0, 1))
    assert np.allclose(R[:, 2], [0, 0, 1]) and np.allclose(t, 0)
    R, t = random_group_element("se3", 0, translation_scale=10)
    assert np.allclose(R @ R.T, np.eye(3)) and np.linalg.norm(t) > 1


def test_tolerance_and_message_follow_the_dtype_actually_computed():
    def in_float32(x):  # a float32 model behind a function: its outputs say what it computed in
        return equivariant_torch(x.float())

    assert assert_equivariant(in_float32, IN, OUT) < 1e-3  # float32 tolerances, not float64's

    def noisy32(x):
        return in_float32(x) + 1e-3 * torch.randn(x.shape[0], OUT.dim)

    with pytest.raises(AssertionError, match=r"computed in torch.float32 from torch.float64 inputs"):
        assert_equivariant(noisy32, IN, OUT)
    with pytest.raises(AssertionError, match=r"computed in torch.float64;"):
        assert_equivariant(lambda x: equivariant_torch(x) + 1e-6 * torch.randn(x.shape[0], OUT.dim), IN, OUT)


@pytest.mark.parametrize("policy", ["EquivariantPolicy", "MultiInputPolicy"])
def test_sb3_models_policies_and_actors_directly(policy):
    import gymnasium as gym
    from stable_baselines3 import SAC

    import eqrobot  # noqa: F401

    env = gym.make("eqrobot/Reach-v0")
    model = SAC(policy, env, seed=0, policy_kwargs={"net_arch": [16, 16]})
    for target in (model, model.policy, model.policy.actor):
        if policy == "EquivariantPolicy":
            assert assert_equivariant(target, n_samples=2) < 1e-4  # float32, as trained
        else:  # SB3's MLP with per-component tanh: not equivariant, and the message says float32
            with pytest.raises(AssertionError, match=r"in field .*computed in torch.float32"):
                assert_equivariant(target, n_samples=2)
    assert next(model.policy.parameters()).dtype == torch.float32  # tested on copies
    if policy == "EquivariantPolicy":
        assert assert_equivariant(model.policy.actor, dtype=torch.float64, n_samples=2) < 1e-9
    with pytest.raises(TypeError, match="spec_in and spec_out"):
        assert_equivariant(equivariant_torch)
