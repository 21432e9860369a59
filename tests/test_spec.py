import numpy as np
import pytest
import torch

from eqrobot.geometry.so3 import random_rotation
from eqrobot.geometry.spec import ArraySpec, GeometrySpec

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
    R, t = random_rotation(rng), rng.normal(size=3) * 10
    x = rng.normal(size=(4, SPEC.dim))
    frames = np.stack([random_rotation(rng) for _ in range(4)])
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
    Rs = np.stack([random_rotation(rng) for _ in range(5)])
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


# --- roles and objects ----------------------------------------------------------------------------
def test_roles_objects_and_attributes():
    spec = ArraySpec(
        [
            ("gravity_direction", "vector", 3, "static"),
            ("ee_position", "point", 3, "robot"),
            ("cube_position", "point", 3, "object", "cube"),
            ("cube_orientation", "frame", 9, "object", "cube"),
            ("lid_position", "point", 3, "object", "lid"),
        ]
    )
    assert [f.name for f in spec.by_role("static")] == ["gravity_direction"]
    assert [f.name for f in spec.by_role("robot", "static")] == ["gravity_direction", "ee_position"]
    objects = spec.objects()
    assert list(objects) == ["cube", "lid"]
    assert [f.attribute for f in objects["cube"]] == ["position", "orientation"]
    # concat keeps roles and objects under the "<part>/" prefix
    both = ArraySpec.concat({"observation": spec, "desired_goal": ArraySpec([spec["lid_position"]])})
    assert both["desired_goal/lid_position"].obj == "lid"
    assert both["desired_goal/lid_position"].attribute == "position"
    assert list(both.objects()) == ["cube", "lid"]
    with pytest.raises(ValueError, match="unknown role"):
        spec.by_role("goal")


def test_bad_roles_fail_early():
    with pytest.raises(ValueError, match="unknown role"):
        ArraySpec([("a", "vector", 3, "scenery")])
    with pytest.raises(ValueError, match="needs obj"):
        ArraySpec([("cube_position", "point", 3, "object")])
    with pytest.raises(ValueError, match="needs obj"):
        ArraySpec([("ee_position", "point", 3, "robot", "cube")])
    with pytest.raises(ValueError, match="must be named 'cube_<attribute>'"):
        ArraySpec([("lid_position", "point", 3, "object", "cube")])


def _legacy(spec: ArraySpec) -> list[dict]:
    """``to_dict()`` as it was written before fields had roles."""
    return [{k: v for k, v in d.items() if k not in ("role", "obj")} for d in spec.to_dict()]


@pytest.mark.parametrize("task", ["Reach", "Push", "Stack", "Rotate"])
def test_specs_saved_without_roles_read_back_as_the_env_declares_them(task):
    from eqrobot.envs.core import make_geometry_spec

    spec = make_geometry_spec(task)
    legacy = {part: _legacy(s) for part, s in spec.parts().items()}
    assert GeometrySpec.from_dict(legacy) == spec
    assert GeometrySpec.from_dict(spec.to_dict()) == spec


def test_role_inference_reads_the_old_naming_convention():
    spec = ArraySpec(
        [
            ("observation/base_position", "point"),
            ("ee_position", "point"),
            ("object1_position", "point"),
            ("object1_orientation", "frame"),
            ("object12_position", "point"),
            ("object12_orientation", "frame"),
            ("gripper_width", "scalar"),
        ]
    )
    assert [(f.role, f.obj) for f in spec] == [
        ("static", None),
        ("robot", None),
        ("object", "object1"),
        ("object", "object1"),
        ("object", "object12"),  # the longest object name owns the field
        ("object", "object12"),
        ("robot", None),
    ]


def test_old_pickled_spec_gets_roles():
    """A spec pickled before fields had roles (as in the observation space of a shipped SB3 zip)."""
    import pickle

    from eqrobot.geometry.spec import Field

    spec = ArraySpec([("base_position", "point"), ("object_position", "point")])
    old = object.__new__(ArraySpec)
    old_fields = []
    for f in spec.fields:  # Field instances without the role/obj entries in their __dict__
        g = object.__new__(Field)
        g.__dict__.update(name=f.name, kind=f.kind, start=f.start, size=f.size)
        old_fields.append(g)
    old.__dict__.update(fields=tuple(old_fields), dim=spec.dim, _by_name={f.name: f for f in old_fields})
    back = pickle.loads(pickle.dumps(old))
    assert back == spec
    assert back.objects() == {"object": (spec["object_position"],)}


def test_shipped_checkpoint_observation_space_spec_has_roles():
    import base64
    import json
    import pickle
    import zipfile
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "checkpoints" / "rotation_headline" / "Push_equivariant.zip"
    with zipfile.ZipFile(path) as zf:
        data = json.loads(zf.read("data"))
    space = pickle.loads(base64.b64decode(data["observation_space"][":serialized:"]))
    from eqrobot.envs.core import make_geometry_spec

    assert space.geometry_spec == make_geometry_spec("Push")
    assert list(space.geometry_spec.observation.objects()) == ["object"]
