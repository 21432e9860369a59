import numpy as np
import pytest
import torch

from eqrobot.dynamics.models import (
    SceneLayout,
    detect_static_fields,
    make_model,
    matched_mlp,
)
from eqrobot.dynamics.toy import toy_spec
from eqrobot.testing import assert_equivariant

SMALL = dict(hidden=32, vector_channels=8)


def _inputs(data, n=16):
    idx = np.linspace(0, len(data) - 1, n).astype(int)
    return data.observation[idx].astype(np.float64), data.action[idx].astype(np.float64)


def test_layout_parses_push_and_stack(push_spec, stack_spec):
    lay = SceneLayout.from_spec(push_spec.observation)
    assert lay.objects == ("object",)
    assert [f.name for f in lay.robot_fields] == ["ee_position", "ee_velocity", "gripper_width"]
    assert [f.name for f in lay.static_fields] == ["gravity_direction", "base_position"]
    lay2 = SceneLayout.from_spec(stack_spec.observation)
    assert lay2.objects == ("object1", "object2")
    assert lay2.suffixes == ("position", "orientation", "linear_velocity", "angular_velocity")


@pytest.mark.parametrize("which", ["push", "stack"])
def test_model_is_se3_equivariant(which, push_data, stack_data):
    data = push_data if which == "push" else stack_data
    spec = data.spec
    model = make_model(spec, data=data, **SMALL).double()
    with torch.no_grad():  # non-trivial weights everywhere (the output heads start small)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    err = assert_equivariant(
        model.step,
        (spec.observation, spec.action),
        spec.observation,
        group="se3",
        inputs=_inputs(data),
        n_samples=4,
    )
    assert err < 1e-9
    # the matched MLP is not (sanity check of the test itself)
    mlp = matched_mlp(model).double()
    with pytest.raises(AssertionError, match="not so3-equivariant"):
        assert_equivariant(
            mlp.step,
            (spec.observation, spec.action),
            spec.observation,
            group="so3",
            inputs=_inputs(data),
            n_samples=2,
        )


def test_mlp_matches_parameter_count(stack_data):
    model = make_model(stack_data.spec, data=stack_data, **SMALL)
    mlp = matched_mlp(model)
    assert abs(mlp.n_params() - model.n_params()) <= 0.05 * model.n_params()
    assert mlp.config.kind == "mlp"
    x, a = (torch.as_tensor(v, dtype=torch.float32) for v in _inputs(stack_data))
    assert mlp.step(x, a).shape == x.shape


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_orientations_stay_rotations_over_long_rollouts(stack_data, dtype):
    spec = stack_data.spec
    torch.manual_seed(0)
    model = make_model(spec, data=stack_data, **SMALL).to(dtype)
    x0, _ = _inputs(stack_data, 32)
    x0 = torch.as_tensor(x0, dtype=dtype)
    gen = torch.Generator().manual_seed(0)
    eye = torch.eye(3, dtype=torch.float64)

    def check(states):
        assert torch.isfinite(states).all()
        moved = 0.0
        for f in spec.observation.of_kind("frame"):
            M = states[..., f.slice].reshape(*states.shape[:2], 3, 3).double()
            assert (M @ M.transpose(-1, -2) - eye).abs().max() < 1e-6
            assert (torch.linalg.det(M) - 1).abs().max() < 1e-6
            moved = max(moved, (M[:, -1] - x0[:, f.slice].double().reshape(-1, 3, 3)).abs().max().item())
        return moved

    # the learned model's own 50-step rollouts (random actions)
    acts = torch.rand(32, 50, 4, generator=gen, dtype=dtype) * 2 - 1
    with torch.no_grad():
        check(model.rollout(x0, acts))
    # the update itself under large random rotation increments (up to ~1 rad per step)
    states, x = [], x0
    for _ in range(50):
        y = torch.randn(32, model._y_dim, generator=gen, dtype=dtype)
        y = y / model.out_scale * 0.6  # deltas of order 0.6 in every field, rotation vectors included
        x = model.apply_deltas(x, y)
        states.append(x)
    assert check(torch.stack(states, 1)) > 0.5


def test_static_fields_are_copied_and_detected(push_data):
    assert set(detect_static_fields(push_data)) >= {"gravity_direction", "base_position"}
    model = make_model(push_data.spec, data=push_data, **SMALL)
    x, a = (torch.as_tensor(v, dtype=torch.float32) for v in _inputs(push_data))
    y = model.step(x, a)
    for name in ("gravity_direction", "base_position"):
        sl = push_data.spec.observation[name].slice
        assert torch.equal(y[:, sl], x[:, sl])


def test_bad_config_fails_early(push_spec):
    with pytest.raises(ValueError, match="kind must be"):
        make_model(push_spec, kind="transformer")
    with pytest.raises(ValueError, match="static_fields"):
        make_model(push_spec, static_fields=("nope",))
    assert toy_spec(1) == push_spec
