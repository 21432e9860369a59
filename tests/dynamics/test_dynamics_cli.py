"""The `eqrobot dynamics collect|fit|eval` wiring, end to end on a few real Push transitions."""

import json

import pytest

from eqrobot.cli import main
from eqrobot.dynamics.data import Transitions
from eqrobot.dynamics.models import load_model


def test_collect_fit_eval(tmp_path, capsys):
    data, model = tmp_path / "d.npz", tmp_path / "m.pt"
    assert (
        main(["dynamics", "collect", "--env", "eqrobot/Push-v0", "--out", str(data), "--transitions", "120"])
        == 0
    )
    d = Transitions.load(data)
    assert len(d) == 120 and d.meta["env_id"] == "eqrobot/Push-v0"
    assert main(["dynamics", "fit", str(data), "--out", str(model), "--steps", "4", "--horizon", "2"]) == 0
    assert load_model(model, d.spec).config.kind == "equivariant"
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
