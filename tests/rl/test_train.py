"""train(): run folder, evaluation CSV, resume, Ctrl-C checkpoint, demos; load_model errors; CLI."""

import json
import os
import signal
import zipfile

import numpy as np
import pytest
from stable_baselines3 import SAC

import eqrobot  # noqa: F401
from eqrobot.cli import main
from eqrobot.envs import ENV_IDS
from eqrobot.policies import EquivariantSACPolicy
from eqrobot.rl import train as train_mod
from eqrobot.rl.config import ALGOS, POLICIES, TrainConfig
from eqrobot.rl.presets import TUNED_MLP, get_preset
from eqrobot.rl.train import TrainingInterrupted, read_eval_csv, resolve_config, train
from eqrobot.rollout.checkpoints import CheckpointError, checkpoint_folder, load_model
from eqrobot.rollout.evaluation import evaluate

REACH = "eqrobot/Reach-v0"
FAST = {"learning_starts": 50, "batch_size": 64}


def tiny(tmp_path, **kw):
    base = dict(
        env_id=REACH,
        steps=120,
        eval_freq=100,
        eval_episodes=2,
        out=str(tmp_path),
        run_name="run",
        progress_bar=False,
        hyperparams=dict(FAST),
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def reach_run(tmp_path_factory):
    """One tiny equivariant SAC+HER run with demos, shared by the read-only tests."""
    out = tmp_path_factory.mktemp("runs")
    return train(tiny(out, demos=2))


def test_run_folder(reach_run):
    names = {p.name for p in reach_run.iterdir()}
    assert names == {"checkpoints", "config.json", "eval.csv", "state.json", "tb"}
    (unit,) = (reach_run / "checkpoints").iterdir()  # only the current checkpoint is kept
    assert {p.name for p in unit.iterdir()} == {"model.zip", "replay_buffer.pkl", "checkpoint.json"}
    assert checkpoint_folder(reach_run) == unit
    cfg = json.loads((reach_run / "config.json").read_text())
    assert cfg["her"] is True and cfg["steps"] == 120 and cfg["hyperparams"]["gamma"] == 0.95
    rows = read_eval_csv(reach_run / "eval.csv")
    assert [int(r["step"]) for r in rows] == [0, 100, 120]
    assert all(0.0 <= r["success_rate"] <= 1.0 for r in rows)
    state = json.loads((reach_run / "state.json").read_text())
    assert state["status"] == "finished" and state["num_timesteps"] == 120
    assert state["checkpoint"] == "checkpoints/" + unit.name
    assert json.loads((unit / "checkpoint.json").read_text())["num_timesteps"] == 120
    assert state["demo_episodes"] == 2 and state["demo_success_rate"] == 1.0
    assert any((reach_run / "tb").rglob("events.out.tfevents*"))


def test_plain_sb3_and_load_model(reach_run):
    env = __import__("gymnasium").make(REACH)
    obs, _ = env.reset(seed=0)
    model = load_model(reach_run, env_id=REACH)
    assert isinstance(model.policy, EquivariantSACPolicy)
    plain = SAC.load(checkpoint_folder(reach_run) / "model.zip", env=model.get_env())
    np.testing.assert_allclose(
        plain.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    )
    assert load_model(checkpoint_folder(reach_run) / "model.zip").eqrobot_meta["env_id"] == REACH
    res = evaluate(reach_run, REACH, episodes=2, seed=0)
    assert res["episodes"] == 2 and res["mean_length"] == 50


def test_load_model_errors(reach_run, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such"):
        load_model(tmp_path / "missing.zip")
    with pytest.raises(CheckpointError, match="without model.zip"):
        load_model(tmp_path)
    good = (checkpoint_folder(reach_run) / "model.zip").read_bytes()
    for cut in (2000, len(good) // 2, len(good) - 30):
        (tmp_path / "cut.zip").write_bytes(good[:cut])
        with pytest.raises(CheckpointError, match="truncated"):
            load_model(tmp_path / "cut.zip")
    flipped = bytearray(good)
    flipped[len(good) // 3] ^= 0xFF  # inside a member's data
    (tmp_path / "flipped.zip").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="CRC|corrupt"):
        load_model(tmp_path / "flipped.zip")
    (tmp_path / "text.zip").write_text("hello")
    with pytest.raises(CheckpointError, match="not a zip"):
        load_model(tmp_path / "text.zip")
    with pytest.raises(CheckpointError, match="layout differs"):
        load_model(reach_run, env_id="eqrobot/Push-v0")
    assert load_model(reach_run, env_id="eqrobot/ReachDense-v0") is not None  # same layout: fine
    other = tmp_path / "other_algo.zip"
    model_zip = checkpoint_folder(reach_run) / "model.zip"
    with zipfile.ZipFile(model_zip) as src, zipfile.ZipFile(other, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "eqrobot.json":
                data = json.dumps({**json.loads(data), "algo": "dqn"}).encode()
            dst.writestr(name, data)
    with pytest.raises(CheckpointError, match="unknown algo 'dqn'"):
        load_model(other)


def test_resume_and_interrupt(tmp_path, monkeypatch):
    """A real SIGINT during the second evaluation: the run stops at the next consistent point."""
    calls = {"n": 0}
    real = train_mod.append_eval_row

    def interrupt_on_second(path, row):
        calls["n"] += 1
        real(path, row)
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(train_mod, "append_eval_row", interrupt_on_second)
    with pytest.raises(TrainingInterrupted, match="checkpoint at step 100") as e:
        train(tiny(tmp_path, steps=200))
    run = tmp_path / "run"
    assert e.value.run_dir == run and e.value.step == 100
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "interrupted" and state["num_timesteps"] == 100
    assert load_model(run, env_id=REACH).num_timesteps == 100
    monkeypatch.setattr(train_mod, "append_eval_row", real)
    with pytest.raises(FileExistsError, match="resume"):
        train(tiny(tmp_path, steps=200))
    with pytest.raises(ValueError, match="seed=3 differs"):
        train(TrainConfig(resume=str(run), seed=3))
    train(TrainConfig(resume=str(run), steps=150, progress_bar=False))
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "finished" and state["num_timesteps"] == 150
    assert [int(r["step"]) for r in read_eval_csv(run / "eval.csv")] == [0, 100, 150]


@pytest.mark.parametrize("demos", [0, 1])
def test_resume_without_a_saved_replay_buffer(tmp_path, demos):
    """A run made with save_replay_buffer=False resumes from an empty buffer (HER used to crash at
    the first update: 'Unable to sample before the end of the first episode'): the demos go back
    in, or learning waits for a whole episode, and state.json says where the buffer restarted."""
    run = train(tiny(tmp_path, steps=100, eval_freq=0, demos=demos, save_replay_buffer=False))
    first = json.loads((run / "state.json").read_text())
    train(TrainConfig(resume=str(run), steps=160, progress_bar=False))
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "finished" and state["num_timesteps"] == 160
    assert state["replay_buffer_restarted_at"] == 100
    model = load_model(run, env_id=REACH)
    assert model._n_updates > 0  # it learned after the restart
    if demos:
        assert state["demo_episodes"] == first["demo_episodes"] == 1
    else:
        assert model.learning_starts == 150  # one whole episode after the restart


@pytest.mark.parametrize(
    "algo,hp", [("td3", dict(FAST)), ("ppo", {"n_steps": 64, "batch_size": 32, "n_epochs": 1})]
)
def test_other_algos(tmp_path, algo, hp):
    run = train(tiny(tmp_path, algo=algo, steps=128, eval_freq=0, hyperparams=hp, save_replay_buffer=False))
    assert load_model(run, env_id=REACH).num_timesteps == 128
    assert not (run / "eval.csv").exists()


def test_mlp_baseline_same_hyperparameters(tmp_path):
    eq, mlp = (
        resolve_config(TrainConfig(env_id="eqrobot/Push-v0", policy=p)) for p in ("equivariant", "mlp")
    )
    assert eq.hyperparams == mlp.hyperparams and eq.steps == mlp.steps and eq.her and mlp.her
    run = train(tiny(tmp_path, policy="mlp", steps=60, eval_freq=0))
    assert type(load_model(run).policy).__name__ == "MultiInputPolicy"


def test_presets_and_names():
    for env_id in ENV_IDS:
        for algo in ALGOS:
            for policy in POLICIES:
                if policy == "mlp-tuned" and algo not in TUNED_MLP:
                    with pytest.raises(ValueError, match="use policy 'mlp' with"):
                        get_preset(env_id, algo, policy)
                    continue
                p = get_preset(env_id, algo, policy)
                assert p.steps > 0 and p.eval_freq > 0
                assert p.her == (algo != "ppo" and "Dense" not in env_id)
    for bad, match in [
        ({"algo": "dqn"}, "sac, td3, ppo"),
        ({"policy": "cnn"}, "equivariant, mlp"),
        ({"env_id": "eqrobot/Fly-v0"}, "eqrobot/Reach-v0"),
    ]:
        with pytest.raises(ValueError, match=match):
            resolve_config(TrainConfig(**bad))
    with pytest.raises(ValueError, match="demos"):
        resolve_config(TrainConfig(algo="ppo", demos=3))


def test_user_net_kwargs_merge_with_the_preset():
    def kwargs(**policy_kwargs):
        config = TrainConfig(env_id="eqrobot/Push-v0", policy_kwargs=policy_kwargs)
        return resolve_config(config).policy_kwargs

    assert kwargs()["net_kwargs"] == {"compress_invariants": True}
    assert kwargs(net_kwargs={"vector_channels": 8})["net_kwargs"] == {
        "compress_invariants": True,
        "vector_channels": 8,
    }
    assert kwargs(net_kwargs={"compress_invariants": False})["net_kwargs"] == {"compress_invariants": False}
    assert "net_kwargs" not in kwargs(net="mlp")  # the preset's options are EquivariantNet's


def test_oracle_evaluation():
    from eqrobot.envs.oracles import make_oracle

    assert evaluate(make_oracle(REACH), REACH, episodes=3, seed=0)["success_rate"] == 1.0


def test_cli(tmp_path, capsys):
    assert main(["train", "--env", "eqrobot/Nope-v0"]) == 2
    assert "unknown env" in capsys.readouterr().err
    assert main(["train", "--algo", "a2c"]) == 2
    assert "invalid choice: 'a2c'" in capsys.readouterr().err
    rc = main(
        [
            "train",
            "--steps",
            "60",
            "--eval-freq",
            "0",
            "--out",
            str(tmp_path),
            "--run-name",
            "cli",
            "--no-progress",
            "--hp",
            "learning_starts=30",
            "--hp",
            "batch_size=32",
        ]
    )
    assert rc == 0 and "run folder" in capsys.readouterr().out
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["hyperparams"]["batch_size"] == 32
    assert main(["evaluate", str(tmp_path / "cli"), "--episodes", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 1
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "no such" in capsys.readouterr().err


@pytest.mark.slow
def test_equivariant_sac_her_solves_reach(tmp_path):
    """The acceptance bar: the Reach preset reaches >= 90% success (a few minutes on 2 cores)."""
    run = train(TrainConfig(env_id=REACH, out=str(tmp_path), run_name="reach", progress_bar=False))
    res = evaluate(run, REACH, episodes=50, seed=123)
    assert res["success_rate"] >= 0.9, res
