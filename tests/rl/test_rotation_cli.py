import json

from eqrobot.cli import main


def test_rotation_command_writes_its_outputs(tmp_path, capsys):
    rc = main(
        [
            "rotation",
            "--policy", "oracle",
            "--env", "eqrobot/Reach-v0",
            "--split", "canonical",
            "--episodes", "2",
            "--out", str(tmp_path),
        ]
    )  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "oracle" in printed and "canonical" in printed
    data = json.loads((tmp_path / "rotation.json").read_text())
    assert data  # parses
    for name in ("rotation.md", "rotation.csv", "rotation_polar.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_rotation_command_rejects_an_unknown_split(capsys):
    rc = main(["rotation", "--policy", "oracle", "--env", "eqrobot/Reach-v0", "--split", "so5"])
    assert rc == 2
    assert "unknown split 'so5'" in capsys.readouterr().err
