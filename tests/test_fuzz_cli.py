"""Fuzz `eqrobot train`'s input and eqrobot checkpoints; count outcomes (issue 12).

Outcomes: ``crash`` (an exception or traceback instead of a message), ``silent nonsense`` (bad input
accepted, or a damaged checkpoint that loads and acts differently), ``clear error`` (exit status 2 /
CheckpointError naming the input), ``ok`` (good input accepted; a checkpoint that loads and acts
the same). The fast subset runs in ``make test``; ``-m slow`` runs the full set, plus SIGKILLs of a
real training process. Each test prints its counts and fails on any crash or silent nonsense.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from eqrobot.cli import main
from eqrobot.rl import train as train_mod
from eqrobot.rl.checkpoint import save_model
from eqrobot.rl.config import TrainConfig
from eqrobot.rollout.checkpoints import (
    CheckpointError,
    checkpoint_folder,
    load_model,
    read_state,
    verify_file,
)

REACH = "eqrobot/Reach-v0"
BAD_NUMBERS = ["abc", "-5", "NaN", "Infinity", "[1, 2]", "{}", "true", "null", '"3"']
# (flag, value, valid?) for `eqrobot train`; values are what a user would type
FIELD_CASES = [
    *[
        ("--seed", v, ok)
        for v, ok in [("0", True), ("7", True), ("-1", False), ("abc", False), ("1.5", False)]
    ],
    *[("--steps", v, ok) for v, ok in [("100", True), ("0", False), ("-3", False), ("1e3", False)]],
    *[("--eval-freq", v, ok) for v, ok in [("0", True), ("50", True), ("-100", False), ("x", False)]],
    *[("--eval-episodes", v, ok) for v, ok in [("1", True), ("0", False), ("-2", False)]],
    *[("--n-envs", v, ok) for v, ok in [("2", True), ("0", False), ("-1", False)]],
    *[("--demos", v, ok) for v, ok in [("0", True), ("3", True), ("-1", False)]],
    *[("--threads", v, ok) for v, ok in [("1", True), ("0", False)]],
    *[
        ("--rotation-range", v, ok)
        for v, ok in [("90", True), ("-1", False), ("nan", False), ("1000", False)]
    ],
    *[("--eval-rotation-range", v, ok) for v, ok in [("45", True), ("inf", False)]],
    *[("--algo", v, ok) for v, ok in [("td3", True), ("dqn", False), ("", False)]],
    *[("--policy", v, ok) for v, ok in [("mlp", True), ("cnn", False)]],
    *[("--vec-env", v, ok) for v, ok in [("subproc", True), ("thread", False)]],
    *[
        ("--env", v, ok)
        for v, ok in [("eqrobot/Push-v0", True), ("eqrobot/Bogus-v0", False), ("CartPole-v1", False)]
    ],
]
HP_CASES = [
    *[
        (k, v, True)
        for k, v in [("learning_rate", "0.001"), ("gamma", "0.9"), ("batch_size", "64"), ("tau", "1")]
    ],
    *[(k, v, True) for k, v in [("buffer_size", "1000"), ("train_freq", '[2, "step"]'), ("ent_coef", "0.1")]],
    *[(k, v, True) for k, v in [("ent_coef", '"auto"'), ("gradient_steps", "-1"), ("learning_starts", "0")]],
    *[
        (k, v, False)
        for k in ("learning_rate", "gamma", "tau", "batch_size", "buffer_size")
        for v in BAD_NUMBERS
    ],
    *[
        (k, v, False)
        for k, v in [("gamma", "1.5"), ("tau", "0"), ("batch_size", "2.5"), ("learning_starts", "-1")]
    ],
    *[
        (k, v, False)
        for k, v in [("train_freq", "0"), ("train_freq", '[1, "week"]'), ("gradient_steps", "0")]
    ],
    *[(k, v, False) for k, v in [("ent_coef", "-1"), ("ent_coef", "auto_x"), ("foo", "1"), ("seed", "1")]],
    *[(k, v, False) for k, v in [("policy", '"MlpPolicy"'), ("optimize_memory_usage", "1")]],
]
POLICY_KWARG_CASES = [
    ("net_arch", "[32, 32]", True),
    ("net_arch", '{"pi": [16], "qf": [16]}', True),
    ("net_arch", "abc", False),
    ("net_arch", "[32, -1.5]", False),
    ("net_arch", "[32, -1]", False),
    ("net_arch", "[0]", False),
    ("net_arch", "7", False),
    ("net_kwargs", "3", False),
    ("n_critics", "two", False),
    ("bogus", "1", False),
]


def _all_train_cases() -> list[tuple[list[str], bool]]:
    cases = [([flag, value], ok) for flag, value, ok in FIELD_CASES]
    cases += [(["--hp", f"{k}={v}"], ok) for k, v, ok in HP_CASES]
    cases += [(["--policy-kwarg", f"{k}={v}"], ok) for k, v, ok in POLICY_KWARG_CASES]
    cases += [
        (["--hp", "novalue"], False),
        (["--policy-kwarg", "=3"], False),
        (["--resume", "/no/such/run"], False),
    ]
    return cases


def _run_train_case(argv, tmp_path, monkeypatch, capsys) -> tuple[str, str]:
    """(outcome, output) for one `eqrobot train` invocation, validated but not trained."""

    def validate_only(config, on_eval=None):  # everything train() checks before building anything
        train_mod.resume_config(config) if config.resume else train_mod.resolve_config(config)
        return tmp_path / "not-created"

    monkeypatch.setattr(train_mod, "train", validate_only)
    try:
        rc = main(["train", "--out", str(tmp_path), "--no-progress", *argv])
    except SystemExit as e:  # argparse inside main returns; anything else here is a crash
        return "crash", f"SystemExit {e.code}"
    except Exception as e:  # noqa: BLE001
        return "crash", f"{type(e).__name__}: {e}"
    out = capsys.readouterr()
    text = out.err + out.out
    if rc == 2 and "Traceback" not in text and "error" in text:
        return "clear error", text
    if rc == 0:
        return "ok", text
    return "crash", text


def _count_train(cases, tmp_path, monkeypatch, capsys) -> Counter:
    counts, bad = Counter(), []
    for argv, valid in cases:
        outcome, text = _run_train_case(argv, tmp_path, monkeypatch, capsys)
        if outcome == "ok" and not valid:
            outcome = "silent nonsense"
        elif outcome == "clear error" and valid:
            outcome = "refused valid input"
        elif outcome == "clear error":
            keys = [
                value.split("=")[0] if flag in ("--hp", "--policy-kwarg") else flag
                for flag, value in zip(argv[::2], argv[1::2], strict=True)
            ]
            named = any(k in text or k.lstrip("-").replace("-", "_") in text for k in keys)
            outcome = "clear error" if named else "unclear error"
        counts[outcome] += 1
        if outcome not in ("ok", "clear error"):
            bad.append((argv, outcome, text.strip()[-300:]))
    print(f"\neqrobot train fuzz ({len(cases)} cases): {dict(counts)}")
    assert not bad, bad
    assert not list(Path(tmp_path).iterdir()), "validation created files"
    return counts


def test_train_flags_fuzz(tmp_path, monkeypatch, capsys):
    counts = _count_train(_all_train_cases(), tmp_path, monkeypatch, capsys)
    assert counts["clear error"] > 50 and counts["ok"] > 20


@pytest.mark.slow
def test_train_flags_fuzz_combinations(tmp_path, monkeypatch, capsys):
    """Pairs of cases: a bad value must be reported whatever else is on the command line."""
    rng = random.Random(0)
    base = _all_train_cases()
    cases = []
    for _ in range(300):
        (a, va), (b, vb) = rng.sample(base, 2)
        if a[0] == b[0] or "--resume" in (a[0], b[0]) or "--algo" in (a[0], b[0]) or "--env" in (a[0], b[0]):
            continue
        cases.append((a + b, va and vb))
    _count_train(cases, tmp_path, monkeypatch, capsys)


# --- checkpoints ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    c = train_mod.resolve_config(TrainConfig(env_id=REACH, steps=100, eval_freq=0))
    venv = train_mod.make_vec_env(c)
    model = train_mod.build_model(c, venv, None)
    path = save_model(model, tmp_path_factory.mktemp("zip") / "model.zip", {"algo": "sac", "env_id": REACH})
    obs = venv.reset()
    action = model.predict(obs, deterministic=True)[0]
    yield path, obs, action
    venv.close()


def _damage(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(["truncate", "flip", "zero", "append"])
    if kind == "truncate":
        return kind, data[: rng.randrange(0, len(data))]
    if kind == "append":
        return kind, data + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    out = bytearray(data)
    at = rng.randrange(len(out))
    if kind == "flip":
        out[at] ^= 1 << rng.randrange(8)
    else:
        n = len(out[at : at + rng.randrange(1, 512)])
        out[at : at + n] = bytes(n)
    return kind, bytes(out)


def _count_checkpoints(n: int, saved_model, tmp_path) -> Counter:
    path, obs, action = saved_model
    good = path.read_bytes()
    rng = random.Random(n)
    counts, bad = Counter(), []
    for i in range(n):
        kind, data = _damage(good, rng)
        target = tmp_path / f"damaged_{i}.zip"
        target.write_bytes(data)
        try:
            model = load_model(target)
            same = np.array_equal(model.predict(obs, deterministic=True)[0], action)
            outcome = "ok" if same else "silent nonsense"
        except CheckpointError as e:
            words = ("truncated", "corrupt", "CRC", "not a zip", "empty", "not an SB3", "unknown algo")
            outcome = "clear error" if any(w in str(e) for w in words) else "unclear error"
            msg = str(e)
        except Exception as e:  # noqa: BLE001
            outcome, msg = "crash", f"{type(e).__name__}: {e}"
        counts[outcome] += 1
        if outcome not in ("ok", "clear error"):
            bad.append((kind, outcome, msg[-300:] if outcome != "silent nonsense" else ""))
    print(f"\ncheckpoint fuzz ({n} damaged zips): {dict(counts)}")
    assert not bad, bad
    return counts


def test_checkpoint_fuzz(saved_model, tmp_path):
    _count_checkpoints(12, saved_model, tmp_path)


@pytest.mark.slow
def test_checkpoint_fuzz_full(saved_model, tmp_path):
    _count_checkpoints(300, saved_model, tmp_path)


def test_damaged_run_folder_files_are_named(tmp_path, saved_model):
    """state.json / checkpoint.json / config.json garbage: CheckpointError or exit 2 naming the file."""
    path, _, _ = saved_model
    run = tmp_path / "run"
    unit = run / "checkpoints" / "step-000000000000"
    unit.mkdir(parents=True)
    (unit / "model.zip").write_bytes(path.read_bytes())
    (unit / "checkpoint.json").write_text("{not json")
    (run / "state.json").write_text(
        json.dumps({"status": "running", "checkpoint": "checkpoints/step-000000000000"})
    )
    with pytest.raises(CheckpointError, match="checkpoint.json: corrupt JSON"):
        load_model(run)
    (run / "state.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="state.json: expected a JSON object"):
        load_model(run)
    (run / "state.json").write_text(json.dumps({"checkpoint": "../../etc"}))
    with pytest.raises(CheckpointError, match="inside the run folder"):
        load_model(run)
    (run / "config.json").write_text("{oops")
    assert main(["train", "--resume", str(run)]) == 2


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_a_consistent_checkpoint(tmp_path):
    """A real training process killed with SIGKILL at random times, resumed each time."""
    rng = random.Random(0)
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    common = ["--no-progress", "--eval-episodes", "1", "--hp", "learning_starts=30", "--hp", "batch_size=32"]
    args = [
        "train",
        "--out",
        str(tmp_path),
        "--run-name",
        "run",
        "--steps",
        "400",
        "--eval-freq",
        "20",
        "--demos",
        "1",
    ]
    counts = Counter()
    for _attempt in range(6):
        cmd = [
            sys.executable,
            "-m",
            "eqrobot.cli",
            *(args if not run.exists() else ["train", "--resume", str(run)]),
        ]
        proc = subprocess.Popen(cmd + common, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(8, 20))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not run.exists():
            counts["killed before the first checkpoint"] += 1
            continue
        state = read_state(run)
        folder = checkpoint_folder(run)
        unit = json.loads((folder / "checkpoint.json").read_text())
        verify_file(folder, "replay_buffer.pkl")
        model = load_model(run, env_id=REACH)
        assert state["num_timesteps"] == unit["num_timesteps"] == model.num_timesteps
        model.load_replay_buffer(verify_file(folder, "replay_buffer.pkl"))
        assert model.replay_buffer.size() == state["num_timesteps"] + state["demo_steps"]
        counts["consistent"] += 1
        if state["status"] == "finished":
            break
    print(f"\nSIGKILL fuzz: {dict(counts)}")
    assert counts["consistent"] >= 1
