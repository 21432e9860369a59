import numpy as np
import pytest
import torch

from eqrobot.geometry.spec import ArraySpec, GeometrySpec


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


SPEC = ArraySpec([("p", "point"), ("v", "vector"), ("w", "pseudovector"), ("F", "frame"), ("s", "scalar", 2)])


def test_layout_and_irreps():
    assert SPEC.dim == 3 + 3 + 3 + 9 + 2
    assert SPEC["F"].slice == slice(9, 18)
    assert str(SPEC.irreps) == "1x1o+1x1o+1x1e+3x1o+2x0e"
    assert SPEC.irreps.dim == SPEC.dim


def test_bad_fields_fail_early():
    with pytest.raises(ValueError, match="unknown kind"):
        ArraySpec([("a", "quaternion", 4)])
    with pytest.raises(ValueError, match="size 3"):
        ArraySpec([("a", "vector", 4)])
    with pytest.raises(ValueError, match="duplicate"):
        ArraySpec([("a", "vector"), ("a", "point")])


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_transform_acts_per_kind(backend):
    rng = np.random.default_rng(0)
    R, t = _random_rotation(rng), rng.normal(size=3) * 10
    x = rng.normal(size=(4, SPEC.dim))
    frames = np.stack([_random_rotation(rng) for _ in range(4)])
    x[:, SPEC["F"].slice] = frames.transpose(0, 2, 1).reshape(4, 9)  # columns stored one after another
    xin = torch.as_tensor(x) if backend == "torch" else x
    y = np.asarray(SPEC.transform(xin, R, t))
    np.testing.assert_allclose(y[:, 0:3], x[:, 0:3] @ R.T + t, atol=1e-12)
    np.testing.assert_allclose(y[:, 3:6], x[:, 3:6] @ R.T, atol=1e-12)
    np.testing.assert_allclose(y[:, 6:9], x[:, 6:9] @ R.T, atol=1e-12)
    new_frames = y[:, 9:18].reshape(4, 3, 3).transpose(0, 2, 1)
    np.testing.assert_allclose(new_frames, R @ frames, atol=1e-12)
    np.testing.assert_allclose(y[:, 18:], x[:, 18:])


def test_batched_rotation_and_roundtrip_dict():
    rng = np.random.default_rng(1)
    Rs = np.stack([_random_rotation(rng) for _ in range(5)])
    x = rng.normal(size=(5, SPEC.dim))
    y = SPEC.transform(x, Rs)
    for i in range(5):
        np.testing.assert_allclose(y[i], SPEC.transform(x[i], Rs[i]), atol=1e-12)
    g = GeometrySpec(SPEC, SPEC, SPEC, ArraySpec([("d", "vector"), ("grip", "scalar")]))
    assert GeometrySpec.from_dict(g.to_dict()) == g


def test_concat_prefixes_and_offsets():
    a = ArraySpec([("p", "point"), ("s", "scalar")])
    b = ArraySpec([("p", "point")])
    c = ArraySpec.concat({"observation": a, "desired_goal": b})
    assert [f.name for f in c] == ["observation/p", "observation/s", "desired_goal/p"]
    assert c["desired_goal/p"].slice == slice(4, 7)
    with pytest.raises(ValueError, match="duplicate"):
        ArraySpec.concat([a, b])
