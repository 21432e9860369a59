"""Fuzz `eqrobot train`'s input and eqrobot checkpoints; count outcomes (issue 12).

Outcomes as in ``tests/fuzz_cases.py``: ``crash`` (an exception or traceback instead of a message,
or a message not naming the input), ``silent_nonsense`` (bad input accepted, or a damaged checkpoint
that loads and acts differently), ``clear_error`` (exit status 2 / CheckpointError naming the input
or the damage), ``ok`` (good input accepted; a checkpoint that loads and acts the same). The fast
subset runs in ``make test``; ``-m slow`` runs the full set, plus SIGKILLs of a real training
process. Each test prints its counts and fails on any crash or silent nonsense.
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
from fuzz_cases import OUTCOMES, Case, run_cases, summary

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


class CLIRefused(ValueError):
    """`eqrobot train` exited with status 2 and a message (what fuzz_cases counts as an error)."""


def _train_case(argv: list[str], valid: bool, tmp_path, capsys) -> Case:
    """One `eqrobot train` invocation as a fuzz case: validated (everything train() checks before
    building anything), not trained; a clear error must name one of the flags or keys given."""

    def run():
        rc = main(["train", "--out", str(tmp_path), "--no-progress", *argv])
        out = capsys.readouterr()
        text = out.err + out.out
        if rc == 2 and "Traceback" not in text:
            raise CLIRefused(text)
        if rc != 0 or "Traceback" in text:
            raise RuntimeError(f"exit status {rc}, no clear message: {text[-300:]}")

    pairs = list(zip(argv[::2], argv[1::2], strict=True))
    # the key of a KEY=VALUE flag (the flag itself where there is no key), else the flag
    keys = [v.split("=")[0] if f in ("--hp", "--policy-kwarg") and v.split("=")[0] else f for f, v in pairs]
    names = tuple(k for key in keys for k in (key, key.lstrip("-").replace("-", "_")) if k)
    return Case("train", " ".join(argv), run, names=names, expect_error=not valid)


@pytest.fixture
def validate_only(tmp_path, monkeypatch):
    def fake_train(config, on_eval=None):
        train_mod.resume_config(config) if config.resume else train_mod.resolve_config(config)
        return tmp_path / "not-created"

    monkeypatch.setattr(train_mod, "train", fake_train)


def _fuzz_train(cases, tmp_path, capsys, title: str) -> Counter:
    counts, rows = run_cases([_train_case(argv, valid, tmp_path, capsys) for argv, valid in cases])
    report = summary(counts, rows, title=title)
    print("\n" + report)
    assert counts["crash"] == 0 and counts["silent_nonsense"] == 0, report
    assert not list(Path(tmp_path).iterdir()), "validation created files"
    return counts


def test_train_flags_fuzz(tmp_path, capsys, validate_only):
    counts = _fuzz_train(_all_train_cases(), tmp_path, capsys, "eqrobot train fuzz")
    assert counts["clear_error"] > 50 and counts["ok"] > 20  # the table really ran


@pytest.mark.slow
def test_train_flags_fuzz_combinations(tmp_path, capsys, validate_only):
    """Pairs of cases: a bad value must be reported whatever else is on the command line."""
    rng = random.Random(0)
    base = _all_train_cases()
    cases = []
    for _ in range(300):
        (a, va), (b, vb) = rng.sample(base, 2)
        if a[0] == b[0] or "--resume" in (a[0], b[0]) or "--algo" in (a[0], b[0]) or "--env" in (a[0], b[0]):
            continue
        cases.append((a + b, va and vb))
    _fuzz_train(cases, tmp_path, capsys, "eqrobot train fuzz, pairs of flags")


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


def _fuzz_checkpoints(n: int, saved_model, tmp_path) -> Counter:
    """Damaged zips must raise a CheckpointError naming the damage; one that loads must act exactly
    like the original (damage outside the data, e.g. a header timestamp), else silent nonsense."""
    path, obs, action = saved_model
    good = path.read_bytes()
    rng = random.Random(n)
    counts: Counter = Counter({k: 0 for k in OUTCOMES})
    rows = []
    words = ("truncated", "corrupt", "crc", "not a zip", "empty", "not an sb3", "unknown algo")
    for i in range(n):
        kind, data = _damage(good, rng)
        target = tmp_path / f"damaged_{i}.zip"
        target.write_bytes(data)
        try:
            model = load_model(target)
            same = np.array_equal(model.predict(obs, deterministic=True)[0], action)
            outcome, detail = ("ok", "") if same else ("silent_nonsense", "loads, acts differently")
        except CheckpointError as e:
            named = any(w in str(e).lower() for w in words)
            outcome, detail = ("clear_error", str(e)) if named else ("crash", f"unclear: {e}")
        except Exception as e:  # noqa: BLE001 - any other type is what the fuzz looks for
            outcome, detail = "crash", f"{type(e).__name__}: {e}"
        counts[outcome] += 1
        rows.append(("checkpoint", f"{kind} #{i}", outcome, detail))
    report = summary(counts, rows, title=f"checkpoint fuzz ({n} damaged zips)")
    print("\n" + report)
    assert counts["crash"] == 0 and counts["silent_nonsense"] == 0, report
    return counts


def test_checkpoint_fuzz(saved_model, tmp_path):
    _fuzz_checkpoints(12, saved_model, tmp_path)


@pytest.mark.slow
def test_checkpoint_fuzz_full(saved_model, tmp_path):
    _fuzz_checkpoints(300, saved_model, tmp_path)


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
