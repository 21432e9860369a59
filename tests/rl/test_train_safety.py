"""train() under bad input, Ctrl-C, crashes mid-checkpoint; transitions in checkpoints; old run folders."""

import json
import os
import shutil
import signal

import pytest

from eqrobot.cli import main
from eqrobot.rl import checkpoint as ckpt
from eqrobot.rl import train as train_mod
from eqrobot.rl.config import TrainConfig
from eqrobot.rl.train import TrainingInterrupted, read_eval_csv, resolve_config, train
from eqrobot.rollout.checkpoints import (
    CheckpointError,
    checkpoint_folder,
    load_model,
    read_state,
    verify_file,
)

REACH = "eqrobot/Reach-v0"


def tiny(tmp_path, **kw):
    base = dict(
        env_id=REACH,
        steps=120,
        eval_freq=100,
        eval_episodes=1,
        out=str(tmp_path),
        run_name="run",
        progress_bar=False,
        hyperparams={"learning_starts": 50, "batch_size": 32},
    )
    base.update(kw)
    return TrainConfig(**base)


BAD_TRAIN_ARGS = [
    (["--seed", "-1"], "seed (--seed): expected an integer >= 0"),
    (["--hp", "foo=1"], "SAC has no parameter 'foo'; valid: action_noise, action_noise_sigma, batch_size"),
    (["--hp", "learning_rate=abc"], "learning_rate='abc': expected float"),
    (["--hp", "gamma=abc"], "gamma='abc': expected float"),
    (["--hp", "gamma=2"], "gamma=2: expected a value in [0, 1]"),
    (["--hp", "learning_rate=NaN"], "learning_rate=nan: expected float"),
    (["--hp", "batch_size=2.5"], "batch_size=2.5: expected int"),
    (["--hp", "batch_size=abc"], "batch_size='abc': expected int"),
    (["--hp", "buffer_size=-5"], "buffer_size=-5: expected a value >= 1"),
    (["--hp", "ent_coef=abc"], "ent_coef='abc': expected a value >= 0, 'auto'"),
    (["--hp", 'train_freq=[1,"week"]'], "train_freq=[1, 'week']"),
    (["--hp", "seed=3"], "set by eqrobot itself"),
    (["--policy-kwarg", "net_arch=abc"], "net_arch='abc': expected"),
    (["--policy-kwarg", "net_kwargs=3"], "net_kwargs=3: expected"),
    (["--policy-kwarg", "bogus=1"], "has no parameter 'bogus'"),
    (["--eval-freq", "-100"], "eval_freq (--eval-freq): expected an integer >= 0"),
    (["--steps", "0"], "steps (--steps): expected an integer >= 1"),
    (["--n-envs", "0"], "n_envs (--n-envs): expected an integer >= 1"),
    (["--demos", "-1"], "demos (--demos): expected an integer >= 0"),
    (["--rotation-range", "400"], "expected degrees in [0, 180]"),
    (["--algo", "ppo", "--hp", "n_steps=0"], "n_steps=0: expected a value >= 1"),
    (["--algo", "ppo", "--demos", "3"], "demos fill a replay buffer"),
    (["--steps", "abc"], "invalid int value"),
    (["--hp", "novalue"], "expected KEY=VALUE"),
    (["--resume", "/nonexistent/run"], "no config.json"),
]


@pytest.mark.parametrize("argv,message", BAD_TRAIN_ARGS, ids=[" ".join(a) for a, _ in BAD_TRAIN_ARGS])
def test_bad_train_input_is_a_clear_exit_2_and_leaves_nothing(argv, message, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "runs"), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "runs").exists()


def test_bad_env_kwarg_fails_before_the_folder(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), "--env-kwarg", "reward_type=bogus", "--no-progress"]) == 2
    assert "--env-kwarg" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_valid_hyperparameters_pass():
    c = resolve_config(
        TrainConfig(hyperparams={"train_freq": [1, "episode"], "ent_coef": "auto_0.1", "gradient_steps": -1})
    )
    assert c.hyperparams["train_freq"] == [1, "episode"]
    resolve_config(TrainConfig(algo="td3", hyperparams={"action_noise_sigma": 0.1, "policy_delay": 3}))
    resolve_config(TrainConfig(policy_kwargs={"net_arch": {"pi": [32], "qf": [32]}}))


def test_checkpoints_hold_every_transition_hook_stop_and_old_layout(tmp_path, monkeypatch):
    """Every checkpoint's buffer holds demos + num_timesteps transitions; on_eval can stop the run;
    a run folder in the older layout (files at the top) still loads and resumes."""
    seen = []
    real_write = train_mod.write_checkpoint

    def spy(run_dir, model, meta, state, save_buffer=True):
        seen.append((int(model.num_timesteps), model.replay_buffer.size(), state["status"]))
        return real_write(run_dir, model, meta, state, save_buffer)

    monkeypatch.setattr(train_mod, "write_checkpoint", spy)
    rows = []
    run = train(
        tiny(tmp_path, steps=200, eval_freq=50, demos=1), on_eval=lambda r: rows.append(r) or r["step"] < 100
    )
    demo_steps = 50
    assert [s[0] for s in seen] == [0, 50, 100]
    assert all(size == demo_steps + step for step, size, _ in seen), seen
    assert [s[2] for s in seen] == ["running", "running", "stopped"]
    assert [r["step"] for r in rows] == [0, 50, 100] and 0 <= rows[-1]["success_rate"] <= 1
    assert read_state(run)["status"] == "stopped" and read_state(run)["num_timesteps"] == 100

    # the older layout: model.zip, replay_buffer.pkl, state.json at the top of the run folder
    unit = checkpoint_folder(run)
    for name in ("model.zip", "replay_buffer.pkl"):
        shutil.move(unit / name, run / name)
    shutil.rmtree(run / "checkpoints")
    state = read_state(run)
    del state["checkpoint"]
    (run / "state.json").write_text(json.dumps(state))
    assert checkpoint_folder(run) == run and load_model(run, env_id=REACH).num_timesteps == 100
    train(TrainConfig(resume=str(run), steps=150, progress_bar=False))
    assert seen[-1][0] == 150 and seen[-1][1] == demo_steps + 150  # the old buffer was loaded and extended
    assert read_state(run)["status"] == "finished"
    assert not (run / "model.zip").exists() and not (run / "replay_buffer.pkl").exists()  # superseded


def test_second_sigint_during_the_interrupt_checkpoint(tmp_path, monkeypatch):
    real_row, real_bytes = train_mod.append_eval_row, ckpt.model_zip_bytes
    calls = {"rows": 0, "zips": 0}

    def row_then_sigint(path, row):
        real_row(path, row)
        calls["rows"] += 1
        if calls["rows"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # first Ctrl-C at the step-100 evaluation

    def zip_then_sigint(model, meta=None):
        calls["zips"] += 1
        if calls["zips"] == 2:  # writing the interrupt checkpoint: Ctrl-C again
            os.kill(os.getpid(), signal.SIGINT)
        return real_bytes(model, meta)

    monkeypatch.setattr(train_mod, "append_eval_row", row_then_sigint)
    monkeypatch.setattr(ckpt, "model_zip_bytes", zip_then_sigint)
    with pytest.raises(TrainingInterrupted, match="kept the step-0 checkpoint") as e:
        train(tiny(tmp_path, steps=200))
    run = tmp_path / "run"
    assert e.value.step == 0
    state = read_state(run)
    assert state["status"] == "interrupted" and state["num_timesteps"] == 0
    leftovers = [p for p in run.rglob("*") if ".tmp" in p.name]
    assert leftovers == [] and len(list((run / "checkpoints").iterdir())) == 1
    assert load_model(run, env_id=REACH).num_timesteps == 0


def test_sigint_before_the_first_checkpoint_saves_nothing_and_says_so(tmp_path, monkeypatch, capsys):
    real_build = train_mod.build_model

    def build_then_sigint(*args):
        model = real_build(*args)
        os.kill(os.getpid(), signal.SIGINT)
        return model

    monkeypatch.setattr(train_mod, "build_model", build_then_sigint)
    argv = ["train", "--out", str(tmp_path), "--run-name", "r", "--steps", "60", "--no-progress"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "nothing saved" in err and "checkpoint written" not in err
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def reach_model():
    c = resolve_config(tiny("unused", eval_freq=0))
    venv = train_mod.make_vec_env(c)
    yield train_mod.build_model(c, venv, None)
    venv.close()


@pytest.mark.parametrize("fail_at", range(6))
def test_a_crash_anywhere_in_a_checkpoint_keeps_the_previous_one(tmp_path, reach_model, monkeypatch, fail_at):
    """Fault injection at each write / rename / commit step (what a SIGKILL at that moment leaves)."""
    run = tmp_path
    reach_model.num_timesteps = 10
    ckpt.write_checkpoint(run, reach_model, {}, {"status": "running"})
    ops = {"n": 0}

    def failing(real):
        def op(*args, **kwargs):
            if ops["n"] == fail_at:
                raise OSError("simulated crash")
            ops["n"] += 1
            return real(*args, **kwargs)

        return op

    monkeypatch.setattr(ckpt, "_write_fsynced", failing(ckpt._write_fsynced))  # 3 files
    monkeypatch.setattr(ckpt.os, "rename", failing(os.rename))  # the unit into place
    monkeypatch.setattr(ckpt, "atomic_write_bytes", failing(ckpt.atomic_write_bytes))  # state.json
    reach_model.num_timesteps = 20
    try:
        ckpt.write_checkpoint(run, reach_model, {}, {"status": "running"})
        expected = 20
    except OSError:
        expected = 10
    monkeypatch.undo()
    state = read_state(run)
    folder = checkpoint_folder(run)
    unit = json.loads((folder / "checkpoint.json").read_text())
    assert state["num_timesteps"] == unit["num_timesteps"] == expected
    assert load_model(run).num_timesteps == expected
    verify_file(folder, "replay_buffer.pkl")
    assert not [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp")]


def test_damaged_replay_buffer_is_named(tmp_path, reach_model):
    reach_model.num_timesteps = 5
    folder = ckpt.write_checkpoint(tmp_path, reach_model, {}, {"status": "running"})
    data = (folder / "replay_buffer.pkl").read_bytes()
    (folder / "replay_buffer.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        verify_file(folder, "replay_buffer.pkl")
    (folder / "replay_buffer.pkl").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(CheckpointError, match="corrupt"):
        verify_file(folder, "replay_buffer.pkl")


def test_tensorboard_eval_success_rate_at_the_measured_steps(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train(tiny(tmp_path, steps=120, eval_freq=100, save_replay_buffer=False))
    (events,) = (run / "tb").rglob("events.out.tfevents*")
    acc = EventAccumulator(str(events))
    acc.Reload()
    steps = [e.step for e in acc.Scalars("eval/success_rate")]
    assert steps == [0, 100, 120] == [int(r["step"]) for r in read_eval_csv(run / "eval.csv")]


def test_a_crash_after_a_checkpoint_marks_the_run_failed(tmp_path):
    def boom(row):
        if row["step"] >= 100:
            raise RuntimeError("trial reporter died")

    with pytest.raises(RuntimeError, match="reporter died"):
        train(tiny(tmp_path, steps=200, save_replay_buffer=False), on_eval=boom)
    state = read_state(tmp_path / "run")
    assert state["status"] == "failed" and "reporter died" in state["error"] and state["num_timesteps"] == 0


def test_her_learning_starts_waits_for_the_first_episode_of_every_env():
    c = resolve_config(TrainConfig(n_envs=2, hyperparams={"learning_starts": 50}))
    assert c.hyperparams["learning_starts"] == 100  # 2 envs x 50-step episodes
