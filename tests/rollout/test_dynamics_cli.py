"""The `eqrobot dynamics collect|fit|eval` wiring, end to end on a few real Push transitions."""

import json

import pytest

from eqrobot.cli import main
from eqrobot.dynamics.checkpoint import load_dynamics_model
from eqrobot.dynamics.data import Transitions


def test_collect_fit_eval(tmp_path, capsys):
    data, model = tmp_path / "d.npz", tmp_path / "m.pt"
    assert (
        main(["dynamics", "collect", "--env", "eqrobot/Push-v0", "--out", str(data), "--transitions", "120"])
        == 0
    )
    d = Transitions.load(data)
    assert len(d) == 120 and d.meta["env_id"] == "eqrobot/Push-v0"
    assert main(["dynamics", "fit", str(data), "--out", str(model), "--steps", "4", "--horizon", "2"]) == 0
    assert load_dynamics_model(model, d.spec).config.kind == "equivariant"
    capsys.readouterr()
    out = tmp_path / "eval.json"
    argv = [
        "dynamics",
        "eval",
        str(model),
        "--data",
        str(data),
        "--env",
        "eqrobot/Push-v0",
        "--episodes",
        "1",
        "--samples",
        "16",
        "--planner-horizon",
        "2",
        "--hold-gripper",
        "-1",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    res = json.loads(out.read_text())
    assert res["rollout_errors"]["1"]["windows"] > 0
    assert 0.0 <= res["mpc"]["success_rate"] <= 1.0 and res["mpc"]["ms_per_step"] > 0


def test_bad_files_give_clean_errors(tmp_path, capsys):
    assert main(["dynamics", "eval", str(tmp_path / "missing.pt")]) == 2
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert main(["dynamics", "fit", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "m.pt")]) == 2
    assert "not a readable transitions file" in capsys.readouterr().err


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_paired_collection_starts_from_the_same_moved_scene():
    import numpy as np

    from eqrobot.rollout.collect import collect_transitions

    kw = dict(policy="oracle:0.5,random:0.5", seed=3, action_noise=0.3, random_action_prob=0.3)
    a = collect_transitions("eqrobot/Push-v0", 6, **kw)
    b = collect_transitions("eqrobot/Push-v0", 6, moves="world", move_seed=1, **kw)
    s = a.spec.observation

    def dists(d):  # invariants: distances between the points of each row
        p = [d.observation[:, s[n].slice] for n in ("ee_position", "object_position", "base_position")]
        return np.stack([np.linalg.norm(p[i] - p[j], axis=1) for i, j in ((0, 1), (0, 2), (1, 2))], 1)

    np.testing.assert_allclose(dists(a)[0], dists(b)[0], atol=1e-5)  # same task, moved
    assert not np.allclose(a.observation[0], b.observation[0])
    np.testing.assert_allclose(
        np.linalg.norm(a.action[:, :3], axis=1), np.linalg.norm(b.action[:, :3], axis=1), atol=1e-4
    )  # the collector's noise co-rotates (free flight: same actions, moved)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["dynamics", "collect", "--out", "x.npz", "--transitions", "0"], "--transitions must be >= 1"),
        (["dynamics", "collect", "--out", "x.npz", "--env", "eqrobot/Bogus-v0"], "unknown env"),
        (["dynamics", "collect", "--out", "x.npz", "--random-action-prob", "2"], "--random-action-prob"),
        (["dynamics", "collect", "--out", "x.npz", "--policy", "oracle:x"], "NAME:WEIGHT"),
        (["dynamics", "fit", "d.npz", "--out", "m.pt", "--steps", "0"], "--steps must be >= 1"),
        (["dynamics", "fit", "d.npz", "--out", "m.pt", "--lr", "-1"], "--lr must be > 0"),
        (["dynamics", "eval", "m.pt", "--samples", "0"], "--samples must be >= 1"),
        (["dynamics", "eval", "m.pt", "--hold-gripper", "3"], "--hold-gripper must be in"),
    ],
)
def test_bad_flags_exit_2_before_any_work(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)  # nothing may be written: a bad flag stops before the work starts
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
