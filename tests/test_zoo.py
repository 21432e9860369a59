"""rl-zoo3 integration: the `python -m eqrobot.zoo` shim and the files in experiments/rl_zoo3."""

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import yaml

import eqrobot
from eqrobot import zoo

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "experiments" / "rl_zoo3").glob("*.yml"))
HER_KEYS = {"goal_selection_strategy", "n_sampled_goal"}


def run(args, cwd, timeout=300):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_argv_is_handed_to_rl_zoo3_unchanged(monkeypatch):
    seen = {}

    def fake_run_module(module, run_name, alter_sys):
        seen.update(module=module, run_name=run_name, argv=list(sys.argv))
        seen["registered"] = "eqrobot/Push-v0" in gym.registry

    monkeypatch.setattr(zoo.runpy, "run_module", fake_run_module)
    monkeypatch.setattr(
        sys, "argv", ["python -m eqrobot.zoo", "record_video", "--env", "eqrobot/Push-v0", "-n", "5"]
    )
    zoo.main()
    assert seen == {
        "module": "rl_zoo3.record_video",
        "run_name": "__main__",
        "argv": ["rl_zoo3.record_video", "--env", "eqrobot/Push-v0", "-n", "5"],
        "registered": True,
    }
    assert sys.argv[1] == "record_video"  # restored afterwards
    zoo.main(["train", "--algo", "tqc"])
    assert seen["module"] == "rl_zoo3.train" and seen["argv"] == ["rl_zoo3.train", "--algo", "tqc"]


def test_unknown_or_missing_script_names_the_choices():
    with pytest.raises(SystemExit, match="unknown script 'video'.*record_video"):
        zoo.main(["video"])
    with pytest.raises(SystemExit, match="usage: python -m eqrobot.zoo"):
        zoo.main([])


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_hyperparameter_file_parses_for_eqrobot_ids(path):
    """What rl-zoo3 does with the file (yaml with merge keys, then eval of the kwargs strings)."""
    from rl_zoo3.utils import ALGOS

    algo = path.stem.split("_")[0]
    equivariant = path.stem.endswith("_equivariant")
    with open(path) as f:
        blocks = yaml.load(f, Loader=yaml.UnsafeLoader)
    assert "eqrobot/Push-v0" in blocks
    for env_id, hp in blocks.items():
        assert env_id in eqrobot.ENV_IDS, env_id
        assert hp["n_timesteps"] > 0 and hp["replay_buffer_class"] == "HerReplayBuffer"
        assert set(eval(hp["replay_buffer_kwargs"])) == HER_KEYS
        policy_kwargs = eval(hp["policy_kwargs"])
        assert hp["policy"] in ALGOS[algo].policy_aliases
        if equivariant:
            # rl-zoo3's VecNormalize breaks equivariance; the equivariant policy would refuse it
            assert hp["policy"] == "EquivariantPolicy" and hp["normalize"] is False
            assert policy_kwargs["net_kwargs"]["compress_invariants"] is True
        else:
            assert hp["policy"] == "MultiInputPolicy"
    if not equivariant:  # rl-zoo3's Panda setting
        push = blocks["eqrobot/Push-v0"]
        assert eval(push["policy_kwargs"])["net_arch"] == [512, 512, 512]
        assert (
            push["batch_size"],
            push["buffer_size"],
            push["gamma"],
            push["learning_rate"],
            push["tau"],
        ) == (
            2048,
            1_000_000,
            0.95,
            1e-3,
            0.05,
        )


@pytest.mark.parametrize("conf", ["tqc.yml", "tqc_equivariant.yml"])
def test_tqc_file_trains_with_plain_rl_zoo3(conf, tmp_path):
    """The issue's command line, a few hundred steps (20 updates at a smaller batch, to stay cheap)."""
    rc, out = run(
        ["-m", "rl_zoo3.train", "--algo", "tqc", "--env", "eqrobot/Push-v0", "--gym-packages", "eqrobot"]
        + ["-conf", str(ROOT / "experiments/rl_zoo3" / conf), "-n", "300", "-f", "logs", "--eval-freq", "-1"]
        + ["--hyperparams", "learning_starts:280", "batch_size:256"],
        cwd=tmp_path,
    )
    assert rc == 0, out[-3000:]
    assert (tmp_path / "logs/tqc/eqrobot-Push-v0_1/eqrobot-Push-v0.zip").is_file(), out[-3000:]


@pytest.mark.slow
def test_record_video_through_the_shim(tmp_path):
    """Train the equivariant SAC file a few steps, then record a video headless; rl-zoo3 alone cannot."""
    conf = str(ROOT / "experiments/rl_zoo3/sac_equivariant.yml")
    rc, out = run(
        ["-m", "eqrobot.zoo", "train", "--algo", "sac", "--env", "eqrobot/Reach-v0", "-conf", conf]
        + [
            "-n",
            "300",
            "-f",
            "logs",
            "--eval-freq",
            "-1",
            "--hyperparams",
            "learning_starts:200",
            "batch_size:64",
        ],
        cwd=tmp_path,
    )
    assert rc == 0, out[-3000:]
    video = [
        "--algo",
        "sac",
        "--env",
        "eqrobot/Reach-v0",
        "-f",
        "logs",
        "-n",
        "20",
        "--no-render",
        "-o",
        "videos",
    ]
    rc, out = run(["-m", "rl_zoo3.record_video", *video], cwd=tmp_path)
    assert rc != 0 and "eqrobot/Reach-v0" in out  # why the shim exists
    rc, out = run(["-m", "eqrobot.zoo", "record_video", *video], cwd=tmp_path)
    assert rc == 0, out[-3000:]
    (mp4,) = (tmp_path / "videos").glob("*.mp4")
    assert mp4.stat().st_size > 1000


def test_equivariant_normaliser_as_an_rl_zoo3_vec_env_wrapper():
    """docs/rl_zoo3.md's `vec_env_wrapper` entry, resolved the way rl-zoo3 resolves it."""
    from rl_zoo3.utils import get_wrapper_class
    from stable_baselines3.common.vec_env import DummyVecEnv

    from eqrobot.envs.normalization import EquivariantVecNormalize

    name = "eqrobot.envs.normalization.EquivariantVecNormalize"
    wrap = get_wrapper_class({"vec_env_wrapper": [{name: {"norm_reward": False}}]}, "vec_env_wrapper")
    venv = wrap(DummyVecEnv([lambda: gym.make("eqrobot/Reach-v0")]))
    assert isinstance(venv, EquivariantVecNormalize) and venv.norm_reward is False
    obs = venv.reset()
    assert set(obs) == {"observation", "achieved_goal", "desired_goal"}
    venv.close()
