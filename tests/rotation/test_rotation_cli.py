import json

import pytest

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


@pytest.mark.parametrize(
    "argv, message",
    [
        (["rotation", "--policy", "oracle", "--env", "eqrobot/Bogus-v0"], "--env: unknown env"),
        (["rotation", "--policy", "oracle", "--env", "eqrobot/Reach-v0", "--episodes", "0"], "--episodes"),
        (["rotation", "--policy", "oracle", "--env", "eqrobot/Reach-v0", "--seed", "-2"], "--seed"),
        (["rotation", "--policy", "oracle", "--env", "eqrobot/Reach-v0", "--n-envs", "0"], "--n-envs"),
        (["rotation", "--policy", "oracle", "--env", "eqrobot/Reach-v0", "--video-angles", "400"], "--video"),
        (["evaluate", "oracle", "--env", "eqrobot/Reach-v0", "--seed", "-1"], "--seed must be >= 0"),
        (["evaluate", "oracle", "--env", "eqrobot/Reach-v0", "--episodes", "0"], "--episodes"),
        (["evaluate", "oracle", "--env", "eqrobot/Nope-v0"], "unknown env"),
        (["evaluate", "oracle"], "pass --env"),
        (["demo", "--episodes", "0"], "--episodes"),
    ],
)
def test_bad_flags_exit_2_with_a_clear_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
