"""resolve_agent: every way of naming an agent, and rl-zoo3 run folders (env id, VecNormalize)."""

from __future__ import annotations

from collections import OrderedDict

import gymnasium as gym
import numpy as np
import pytest

import eqrobot  # noqa: F401
from eqrobot.cli import main
from eqrobot.envs.oracles import OraclePolicy
from eqrobot.rollout.agents import NormalizedAgent, RandomAgent, default_env_id, name_agents, resolve_agent
from eqrobot.rollout.checkpoints import CheckpointError
from eqrobot.rollout.zoo_runs import read_zoo_run

REACH = "eqrobot/Reach-v0"
SHIPPED = "checkpoints/rotation_headline/Reach_equivariant.zip"


def test_names_resolve_to_agents():
    assert isinstance(resolve_agent("oracle", REACH), OraclePolicy)
    assert resolve_agent("oracle-push", "eqrobot/Push-v0").task == "Push"
    rnd = resolve_agent("random", REACH, seed=3)
    assert isinstance(rnd, RandomAgent)
    obs = {"observation": np.zeros((5, 20))}
    a, _ = rnd.predict(obs)
    assert a.shape == (5, 4) and np.all(np.linalg.norm(a[:, :3], axis=1) <= 1.0)
    seeker = OraclePolicy(gym.make(REACH))
    assert resolve_agent(seeker) is seeker  # anything with predict passes through
    with pytest.raises(ValueError, match="needs the env id"):
        resolve_agent("oracle")
    with pytest.raises(FileNotFoundError, match="no such file"):
        resolve_agent("/nonexistent/run", REACH)
    with pytest.raises(TypeError):
        resolve_agent(42, REACH)
    assert list(name_agents(["oracle", "mine=oracle", SHIPPED])) == ["oracle", "mine", "Reach_equivariant"]


def test_shipped_checkpoint_resolves_and_names_its_env():
    agent = resolve_agent(SHIPPED, REACH)
    assert agent.eqrobot_meta["env_id"] == REACH or default_env_id(SHIPPED) in (None, REACH)
    env = gym.make(REACH)
    obs, _ = env.reset(seed=0)
    a1, _ = agent.predict(obs, deterministic=True)
    a2, _ = resolve_agent(SHIPPED, REACH).predict(obs, deterministic=True)
    np.testing.assert_array_equal(a1, a2)
    env.close()


def test_dynamics_checkpoint_is_an_mpc_agent(tmp_path):
    """`eqrobot rotation --policy model.pt` plans with the learned model like any other policy."""
    from eqrobot.dynamics.checkpoint import save_dynamics_model
    from eqrobot.dynamics.models import make_model
    from eqrobot.dynamics.mpc import MPPIPlanner

    env = gym.make("eqrobot/Push-v0")
    try:
        model = make_model(env.unwrapped.geometry_spec, hidden=16, layers=1)
        path = save_dynamics_model(model, tmp_path / "push_dynamics.pt", extra={"env_id": "eqrobot/Push-v0"})
        policy = resolve_agent(str(path), env_id="eqrobot/Push-v0")
        assert isinstance(policy, MPPIPlanner) and default_env_id(path) == "eqrobot/Push-v0"
        obs, _ = env.reset(seed=0)
        action, _ = policy.predict(obs, deterministic=True)
    finally:
        env.close()
    assert action.shape == env.action_space.shape
    assert action[-1] == pytest.approx(-1.0, abs=1e-6)  # the gripper is held closed


# ---------------------------------------------------------------------------------------------
# rl-zoo3 run folders
# ---------------------------------------------------------------------------------------------
def _zoo_run(tmp_path, normalize: bool):
    """A run folder laid out (and its YAML written) exactly as rl-zoo3's ExperimentManager does."""
    yaml = pytest.importorskip("yaml")
    hf = pytest.importorskip("huggingface_sb3")
    from stable_baselines3 import SAC
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    name = hf.EnvironmentName(REACH)
    run = tmp_path / "sac" / f"{name}_1"
    params = run / name
    params.mkdir(parents=True)
    venv = DummyVecEnv([lambda: gym.make(REACH)])
    if normalize:
        venv = VecNormalize(venv, norm_obs_keys=["observation", "achieved_goal", "desired_goal"])
        venv.reset()
        for _ in range(30):  # some running statistics, far from the identity
            venv.step(np.array([venv.action_space.sample()]))
        venv.save(str(params / "vecnormalize.pkl"))
    SAC("MultiInputPolicy", venv, learning_starts=10, buffer_size=100, seed=0).save(run / f"{name}.zip")
    hyper = OrderedDict([("normalize", normalize), ("policy", "MultiInputPolicy")])
    args = OrderedDict([("algo", "sac"), ("env", name), ("env_kwargs", None), ("seed", 0)])
    (params / "config.yml").write_text(yaml.dump(hyper))
    (params / "args.yml").write_text(yaml.dump(args))
    return run, name


def test_zoo_run_env_id_and_vecnormalize_applied(tmp_path, capsys):
    run, name = _zoo_run(tmp_path, normalize=True)
    info = read_zoo_run(run)
    assert info.env_id == REACH and info.algo == "sac" and info.vecnormalize_path is not None
    assert read_zoo_run(run / f"{name}.zip").model_path == run / f"{name}.zip"
    agent = resolve_agent(run)  # no env id needed: the run says
    assert isinstance(agent, NormalizedAgent) and default_env_id(run) == REACH
    env = gym.make(REACH)
    obs, _ = env.reset(seed=1)
    env.close()
    got, _ = agent.predict(obs, deterministic=True)
    raw, _ = agent.model.predict(obs, deterministic=True)
    want, _ = agent.model.predict(agent.vec_normalize.normalize_obs(obs), deterministic=True)
    np.testing.assert_array_equal(got, want)
    assert not np.allclose(got, raw)  # the statistics are applied, not ignored
    assert main(["evaluate", str(run), "--episodes", "1", "--json"]) == 0
    assert '"env_id": "eqrobot/Reach-v0"' in capsys.readouterr().out


def test_zoo_run_without_normalization_and_bad_statistics(tmp_path):
    run, name = _zoo_run(tmp_path, normalize=False)
    assert not isinstance(resolve_agent(run), NormalizedAgent)
    (run / name / "vecnormalize.pkl").write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match="VecNormalize"):
        resolve_agent(run)


def test_zoo_yaml_refuses_other_python_objects(tmp_path):
    run, name = _zoo_run(tmp_path, normalize=False)
    (run / name / "args.yml").write_text("algo: sac\nenv: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(CheckpointError, match="refuses"):
        read_zoo_run(run)
