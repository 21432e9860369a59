"""Experiment configs: TOML loading, the trial grid, and bad input caught before any trial starts
(no Ray needed)."""

import sys
import textwrap
from pathlib import Path

import pytest

from eqrobot.experiments.config import ConfigError, ExperimentConfig, load_experiment

ROOT = Path(__file__).resolve().parents[2]

GOOD = textwrap.dedent(
    """
    name = "demo"
    [[agents]]
    name = "eq"
    algo = "sac"
    policy = "equivariant"
    hyperparams = { learning_starts = 100 }
    [[agents]]
    name = "mlp"
    policy = "mlp"
    [[grids]]
    envs = ["Reach", "eqrobot/Push-v0"]
    seeds = [0, 1]
    demos = [0, 10]
    steps = 400
    [[grids]]
    envs = "Reach"
    agents = "eq"
    seeds = 5
    rotation_range_deg = [0, 90]
    [evaluation]
    splits = ["canonical", "so2-sweep"]
    episodes_per_bin = 3
    """
)


def _write(tmp_path, text, name="exp.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_grid_expands_to_its_cross_product(tmp_path):
    config = load_experiment(_write(tmp_path, GOOD))
    trials = config.trials()
    first = [t for t in trials if t.steps == 400]
    assert len(first) == 2 * 2 * 2 * 2  # envs x agents x seeds x demos
    # the second grid takes the preset budget (Reach SAC: 5,000) and scalars stand for 1-lists
    second = [t for t in trials if t.seed == 5]
    assert {(t.rotation_range_deg, t.steps, t.agent.name) for t in second} == {
        (0.0, 5000, "eq"),
        (90.0, 5000, "eq"),
    }
    assert len({t.name for t in trials}) == len(trials)
    t = first[0]
    c = t.train_config("runs/x")
    assert (c.env_id, c.algo, c.policy, c.steps, c.seed, c.torch_threads) == (
        "eqrobot/Reach-v0",
        "sac",
        "equivariant",
        400,
        0,
        1,
    )
    assert c.hyperparams == {"learning_starts": 100} and c.run_name == t.name and c.out == "runs/x"
    # a config survives the JSON round trip a sweep folder stores it in
    assert ExperimentConfig.from_dict(config.to_dict()).trials() == trials


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[evaluation]", "seed_typo = 1\n[evaluation]"), "unknown key 'seed_typo'"),
        (('policy = "mlp"', 'policy = "mlp"\nlr = 1'), "agents[1]: unknown key 'lr'; valid keys: name, algo"),
        (("steps = 400", "steps = 400\nseed = 1"), "grids[0]: unknown key 'seed'"),
        (("episodes_per_bin = 3", "episodes = 3"), "evaluation: unknown key 'episodes'"),
        (('envs = "Reach"', 'envs = "Rech"'), "unknown env 'Rech'; valid: eqrobot/Reach-v0"),
        (('agents = "eq"', 'agents = "eqq"'), "grids[1].agents: unknown agent 'eqq'; valid: eq, mlp"),
        (('algo = "sac"', 'algo = "dqn"'), "agents[0].algo: unknown algo 'dqn'; valid: sac, td3, ppo"),
        (('policy = "mlp"', 'policy = "cnn"'), "unknown policy 'cnn'; valid: equivariant, mlp"),
        (
            ('policy = "mlp"', 'policy = "mlp"\naugment = "so4"'),
            "unknown augmentation 'so4'; valid: so2, se3",
        ),
        (("steps = 400", "steps = 0"), "grids[0].steps must be > 0"),
        (("steps = 400", "steps = [400, -5]"), "grids[0].steps must be > 0"),
        (
            ('"so2-sweep"]', '"so2_sweep"]'),
            "unknown split 'so2_sweep'; valid: canonical, so2-sweep, so3-world, so2+shift",
        ),
        (("seeds = [0, 1]", 'seeds = ["a"]'), "grids[0].seeds[0]: expected int"),
        (("seeds = 5", "seeds = 0\nsteps = 400"), "appear in more than one grid"),
        # a full turn is more than the envs allow (joint 1's 166 deg): refused here, not at trial time
        (
            ("rotation_range_deg = [0, 90]", "rotation_range_deg = [180]"),
            "rotation_range_deg must be in [0, 166.0]",
        ),
    ],
)
def test_bad_input_names_the_key_and_the_valid_values(tmp_path, edit, message):
    old, new = edit
    assert old in GOOD
    with pytest.raises(ConfigError) as e:
        load_experiment(_write(tmp_path, GOOD.replace(old, new, 1)))
    assert message in str(e.value)
    assert "exp.toml" in str(e.value)


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_experiment(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_experiment(_write(tmp_path, "name = "))
    with pytest.raises(ConfigError, match="missing key 'name'"):
        load_experiment(_write(tmp_path, GOOD.replace('name = "demo"', "")))


def test_python_310_without_tomli_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 10, 0))
    monkeypatch.setitem(sys.modules, "tomli", None)  # import tomli -> ImportError
    with pytest.raises(ConfigError, match="pip install tomli"):
        load_experiment(_write(tmp_path, GOOD))


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    config = load_experiment(path)
    assert config.trials()


def test_cli_rejects_a_bad_config_before_any_trial(tmp_path, capsys):
    from eqrobot.cli import main

    bad = _write(tmp_path, GOOD.replace("steps = 400", "steps = -1"))
    assert main(["sweep", "run", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "grids[0].steps must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_without_ray_names_the_extra(tmp_path, monkeypatch, capsys):
    from eqrobot.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["sweep", "run", str(_write(tmp_path, GOOD))]) == 2
    assert 'pip install -e ".[ray]"' in capsys.readouterr().err
