"""Rotation-generalization evaluation: splits, statistics, outputs (on a tiny analytic goal env)."""

from __future__ import annotations

import csv
import json
import math

import gymnasium as gym
import numpy as np
import pytest

from eqrobot.geometry.so3 import rot_z
from eqrobot.geometry.spec import ArraySpec, GeometrySpec
from eqrobot.rotation.results import RotationResult, wilson_interval
from eqrobot.rotation.sim_gap import simulator_equivariance_gap
from eqrobot.rotation.splits import JOINT1_LIMIT_DEG, SPLITS, get_split, resolve_splits, seed_for
from eqrobot.rotation.sweep import evaluate_rotation

FAKE_ID = "eqrobot_test/FakeReach-v0"
STEP = 0.05  # metres per control step at |d| = 1


class FakeReachEnv(gym.Env):
    """A point end effector that must end within 5 cm of a goal; exact symmetry under both groups.

    Canonical layout: ee starts at (0.3, 0, 0.2); the goal is 0.25 m further along +x (+-2 cm noise),
    so the fixed action (0.1, 0, 0, 0) solves the canonical task (0.25 m in 50 steps) and fails
    once the task is rotated by more than ~11 degrees. ``broken=True`` clips the displacement per
    component (breaks rotation equivariance of the "physics"). ``max_rotation_deg`` makes the env
    refuse larger task rotations (to test marked cells).
    """

    metadata = {"render_modes": []}

    def __init__(self, broken: bool = False, max_rotation_deg: float | None = None):
        self.broken = broken
        self.max_rotation_deg = max_rotation_deg
        obs = ArraySpec(
            [
                ("gravity_direction", "vector"),
                ("base_position", "point"),
                ("ee_position", "point"),
                ("ee_velocity", "vector"),
                ("gripper_width", "scalar"),
                ("puck_position", "point"),
            ]
        )
        goal = ArraySpec([("position", "point")])
        self.geometry_spec = GeometrySpec(
            obs, goal, goal, ArraySpec([("ee_displacement", "vector"), ("gripper", "scalar")])
        )
        box = lambda n: gym.spaces.Box(-np.inf, np.inf, (n,), np.float32)  # noqa: E731
        self.observation_space = gym.spaces.Dict(
            {"observation": box(obs.dim), "achieved_goal": box(3), "desired_goal": box(3)}
        )
        self.observation_space.geometry_spec = self.geometry_spec
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = dict(options or {})
        theta = float(options.get("task_rotation", 0.0))
        if self.max_rotation_deg is not None and abs(math.degrees(theta)) > self.max_rotation_deg:
            raise ValueError(f"task_rotation {math.degrees(theta):.1f} deg beyond joint 1's range")
        R = np.asarray(options.get("world_rotation", np.eye(3)), dtype=float)
        t = np.asarray(options.get("world_translation", np.zeros(3)), dtype=float)
        Rt = R @ rot_z(theta)
        noise = self.np_random.uniform(-0.02, 0.02, size=3)
        self.R, self.t = R, t
        self.base = t.copy()
        self.gravity = R @ np.array([0.0, 0.0, -1.0])
        self.ee = Rt @ np.array([0.3, 0.0, 0.2]) + t
        self.goal = Rt @ (np.array([0.55, 0.0, 0.2]) + noise) + t
        self.puck = Rt @ np.array([0.4, 0.1, 0.02]) + t
        self.vel = np.zeros(3)
        return self._obs(), {"task_rotation": theta, "world_rotation": R, "world_translation": t}

    def _obs(self):
        o = np.concatenate([self.gravity, self.base, self.ee, self.vel, [0.04], self.puck]).astype(np.float32)
        return {
            "observation": o,
            "achieved_goal": self.ee.astype(np.float32),
            "desired_goal": self.goal.astype(np.float32),
        }

    def compute_reward(self, achieved_goal, desired_goal, info):
        return -(np.linalg.norm(achieved_goal - desired_goal, axis=-1) > 0.05).astype(np.float32)

    def step(self, action):
        d = np.asarray(action, dtype=float)[:3]
        if self.broken:
            d = np.clip(d, -0.3, 0.3)
        d = d / max(1.0, float(np.linalg.norm(d)))
        self.vel = STEP * d
        self.ee = self.ee + self.vel
        if np.linalg.norm(self.ee - self.puck) < 0.05:  # the puck is dragged along
            self.puck = self.puck + self.vel
        obs = self._obs()
        success = bool(np.linalg.norm(self.ee - self.goal) < 0.05)
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], {}))
        return obs, reward, False, False, {"is_success": success}


gym.register(FAKE_ID, entry_point=FakeReachEnv, max_episode_steps=50)


class GoalSeeker:
    """Equivariant oracle for the fake env: move to the goal."""

    def predict(self, obs, deterministic=True):
        d = (np.asarray(obs["desired_goal"]) - np.asarray(obs["achieved_goal"])) / STEP
        return np.concatenate([d, np.zeros(d.shape[:-1] + (1,))], axis=-1).astype(np.float32), None


class FixedAction:
    """Deliberately non-equivariant: always the same action (solves only the canonical layout)."""

    def predict(self, obs, deterministic=True):
        batch = np.asarray(obs["observation"]).shape[:-1]
        return np.broadcast_to(np.array([0.1, 0.0, 0.0, 0.0], np.float32), batch + (4,)).copy(), None


# ---------------------------------------------------------------------------------------------
# splits
# ---------------------------------------------------------------------------------------------
def test_split_names_and_bins():
    assert set(SPLITS) == {"canonical", "so2-sweep", "so3-world", "so2+shift"}
    sweep = SPLITS["so2-sweep"]
    angles = [b.angle_deg for b in sweep.bins]
    assert len(angles) == 24 and angles[0] == -180.0 and angles[-1] == 165.0
    assert np.allclose(np.diff(angles), 15.0)
    assert [b.label for b in sweep.bins if not b.reachable] == ["-180"]
    assert 165.9 < JOINT1_LIMIT_DEG < 166.1
    assert [s.name for s in resolve_splits("all")] == list(SPLITS)
    assert [s.name for s in resolve_splits("canonical,so3-world")] == ["canonical", "so3-world"]


def test_unknown_split_lists_valid_names():
    with pytest.raises(ValueError, match="so2-sweep"):
        get_split("so2_sweep")
    with pytest.raises(ValueError, match="unknown split"):
        evaluate_rotation({"o": GoalSeeker()}, FAKE_ID, split="nope", episodes_per_bin=1, progress=False)


def _same(a, b):
    assert [(e.split, e.bin_index, e.episode, e.seed) for e in a] == [
        (e.split, e.bin_index, e.episode, e.seed) for e in b
    ]
    for x, y in zip(a, b, strict=True):
        assert x.options.keys() == y.options.keys()
        for k in x.options:
            np.testing.assert_array_equal(x.options[k], y.options[k])


@pytest.mark.parametrize("name", list(SPLITS))
def test_splits_are_deterministic_and_paired(name):
    s = SPLITS[name]
    a, b = s.episodes(3, seed=0), s.episodes(3, seed=0)
    _same(a, b)
    assert len(a) == 3 * len(s.bins)
    # paired layouts: episode i has the same env seed in every bin; another seed gives other seeds
    assert {e.seed for e in a} == {seed_for(0, i) for i in range(3)}
    assert not {e.seed for e in s.episodes(3, seed=1)} & {e.seed for e in a}
    # more episodes per bin extend, never reshuffle, the first ones
    longer = [e for e in s.episodes(5, seed=0) if e.episode < 3]
    _same(a, longer)


def test_split_group_elements():
    for e in SPLITS["so3-world"].episodes(4):
        R = e.options["world_rotation"]
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
        b = SPLITS["so3-world"].bins[e.bin_index]
        angle = math.degrees(math.acos(np.clip((np.trace(R) - 1) / 2, -1, 1)))
        assert b.lo_deg - 1e-6 <= angle <= b.hi_deg + 1e-6
    for e in SPLITS["so2+shift"].episodes(4):
        t = e.options["world_translation"]
        assert t[2] == 0.0 and np.linalg.norm(t) <= 0.05
        assert e.options["task_rotation"] == pytest.approx(
            math.radians(SPLITS["so2+shift"].bins[e.bin_index].angle_deg)
        )


def test_same_seed_same_layout_in_env():
    env = gym.make(FAKE_ID)
    for e in SPLITS["so3-world"].episodes(2)[:4]:
        o1, _ = env.reset(seed=e.seed, options=e.options)
        env.reset(seed=123)
        o2, _ = env.reset(seed=e.seed, options=e.options)
        for k in o1:
            np.testing.assert_array_equal(o1[k], o2[k])
    env.close()


# ---------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------
def test_wilson_interval():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert lo == pytest.approx(0.7225, abs=1e-4) and hi == 1.0
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


# ---------------------------------------------------------------------------------------------
# evaluation on the fake env
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake_result():
    return evaluate_rotation(
        {"oracle": GoalSeeker(), "fixed": FixedAction()},
        FAKE_ID,
        split=["canonical", "so2-sweep", "so3-world", "so2+shift"],
        episodes_per_bin=3,
        progress=False,
    )


def test_oracle_succeeds_everywhere_and_fixed_action_drops(fake_result):
    r = fake_result
    for split in r.splits:
        for c in r.cells("oracle", split):
            assert c.episodes == 3 and c.success_rate == 1.0, (split, c.label)
            assert c.mean_return > -20
    assert r.success("fixed", "canonical") == {"0": 1.0}
    sweep = r.success("fixed", "so2-sweep")
    assert sweep["+0"] == 1.0
    assert all(v == 0.0 for k, v in sweep.items() if k != "+0")
    assert r.overall("fixed", "so3-world").success_rate < 0.5
    assert r.retention("oracle", "so2-sweep")["+90"] == 1.0
    assert r.retention("fixed", "so2-sweep")["+90"] == 0.0


def test_outputs_written_and_parse(fake_result, tmp_path):
    r = fake_result
    md = r.to_markdown()
    assert "### so2-sweep" in md and "-180 (unreachable)" in md and "1.00 [0.44, 1.00]" in md
    back = RotationResult.from_json(r.to_json(tmp_path / "r.json"))
    assert back.rows == r.rows and back.policies == ["oracle", "fixed"]
    json.loads((tmp_path / "r.json").read_text())
    with open(r.to_csv(tmp_path / "r.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * (1 + 24 + 6 + 24)
    assert {row["policy"] for row in rows} == {"oracle", "fixed"}
    png = r.plot_polar(tmp_path / "polar.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # episode records carry the reset parameters
    ep = next(e for e in r.episodes if e["split"] == "so3-world")
    assert "world_rotation_deg" in ep and ep["seed"] == seed_for(0, ep["episode"])


def test_refused_bin_is_a_marked_cell_not_a_zero(tmp_path):
    r = evaluate_rotation(
        {"oracle": GoalSeeker()},
        FAKE_ID,
        split="so2-sweep",
        episodes_per_bin=1,
        progress=False,
        env_kwargs={"max_rotation_deg": 170.0},
    )
    cell = next(c for c in r.cells("oracle", "so2-sweep") if c.label == "-180")
    assert cell.episodes == 0 and cell.success_rate is None and not cell.reachable
    assert "refused" in cell.note
    assert "**no episodes**" in r.to_markdown()
    d = json.loads(r.to_json(tmp_path / "r.json").read_text())
    assert next(x for x in d["rows"] if x["label"] == "-180")["success_rate"] is None
    with open(r.to_csv(tmp_path / "r.csv")) as fh:
        row = next(x for x in csv.DictReader(fh) if x["label"] == "-180")
    assert row["success_rate"] == "" and row["episodes"] == "0"
    r.plot_polar(tmp_path / "p.png")
    # a reachable bin refused by the env is an error, not a marked cell
    with pytest.raises(ValueError, match="refused"):
        evaluate_rotation(
            GoalSeeker(), FAKE_ID, "so2-sweep", 1, progress=False, env_kwargs={"max_rotation_deg": 100}
        )


def test_policy_that_does_not_fit_is_a_clear_error():
    class Wrong(GoalSeeker):
        observation_space = gym.spaces.Dict(
            {
                k: gym.spaces.Box(-1, 1, (n,), np.float32)
                for k, n in [("observation", 7), ("achieved_goal", 3), ("desired_goal", 3)]
            }
        )
        action_space = gym.spaces.Box(-1, 1, (4,), np.float32)

    with pytest.raises(ValueError, match="does not fit"):
        evaluate_rotation({"wrong": Wrong()}, FAKE_ID, "canonical", 1, progress=False)

    class WrongAction(GoalSeeker):
        action_space = gym.spaces.Box(-1, 1, (7,), np.float32)

    with pytest.raises(ValueError, match="action space"):
        evaluate_rotation({"w": WrongAction()}, FAKE_ID, "canonical", 1, progress=False)
    with pytest.raises(FileNotFoundError):
        evaluate_rotation({"missing": "/nonexistent/model.zip"}, FAKE_ID, "canonical", 1, progress=False)


def test_simulator_gap_is_zero_for_exact_physics_and_not_for_broken():
    exact = simulator_equivariance_gap(FAKE_ID, FixedAction(), angles_deg=(90.0, -135.0), episodes=2)
    assert exact["initial_gap_max"] < 1e-6
    assert exact["object_gap_open_loop"]["max"] < 1e-5
    assert exact["open_loop"]["ee_position"]["max"] < 1e-5
    # a non-equivariant policy: open loop is exact, closed loop is not
    assert exact["closed_loop"]["ee_position"]["max"] > 0.1
    world = simulator_equivariance_gap(
        FAKE_ID, GoalSeeker(), angles_deg=(60.0, 170.0), episodes=1, group="world"
    )
    assert world["initial_gap_max"] < 1e-5 and world["open_loop"]["ee_position"]["max"] < 1e-5
    broken = simulator_equivariance_gap(
        FAKE_ID, GoalSeeker(), angles_deg=(45.0,), episodes=1, env_kwargs={"broken": True}
    )
    assert broken["open_loop"]["ee_position"]["max"] > 0.01


def test_run_rotation_writes_every_output(tmp_path):
    from eqrobot.rotation.sweep import run_rotation

    r = run_rotation(
        {"seek": GoalSeeker(), "fixed": FixedAction()},
        FAKE_ID,
        split="canonical,so2-sweep",
        episodes_per_bin=1,
        out_dir=tmp_path,
        sim_gap_episodes=1,
        progress=False,
    )
    assert {p.name for p in tmp_path.iterdir()} >= {
        "rotation.md",
        "rotation.json",
        "rotation.csv",
        "rotation_polar.png",
    }
    d = json.loads((tmp_path / "rotation.json").read_text())
    assert d["meta"]["sim_gap"]["seek"]["object_gap_open_loop"]["max"] < 1e-5
    assert "simulator equivariance gap" in (tmp_path / "rotation.md").read_text()
    assert r.splits == ["canonical", "so2-sweep"]


def test_polar_plot_legend_panels_and_angle_labels(fake_result, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from eqrobot.rotation import plots
    from eqrobot.rotation.results import RotationResult

    captured = {}
    monkeypatch.setattr(plt, "close", lambda fig: captured.setdefault("fig", fig))
    # a result that lists so2+shift but never ran it: no panel for it
    d = fake_result.to_dict()
    d["rows"] = [r for r in d["rows"] if r["split"] != "so2+shift"] + [
        {**r, "episodes": 0, "successes": 0, "success_rate": None, "ci_low": None, "ci_high": None}
        for r in d["rows"]
        if r["split"] == "so2+shift"
    ]
    plots.plot_polar(RotationResult.from_dict(d), tmp_path / "p.png")
    axes = captured["fig"].axes
    polar = [ax for ax in axes if ax.name == "polar"]
    assert len(polar) == 1 and polar[0].get_title().startswith("so2-sweep")
    assert len(axes) == 2  # so2-sweep + the bar panel of canonical / so3-world
    labels = [t.get_text() for t in polar[0].get_xticklabels()]
    assert labels == ["-180", "-135", "-90", "-45", "+0", "+45", "+90", "+135"]
    legend = [t.get_text() for t in polar[0].get_legend().get_texts()]
    assert "95% Wilson CI (band)" in legend and "oracle" in legend
    assert polar[0].get_rlabel_position() == plots.RADIAL_LABEL_DEG


def test_progress_is_throttled_in_log_files(capsys, monkeypatch):
    import sys
    import time

    from eqrobot.rollout.episodes import progress_bar

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    bar = progress_bar(100, "rotation test")
    for _ in range(100):  # 2 s of episodes: an unthrottled bar writes a line every 0.1 s
        time.sleep(0.02)
        bar.update(1)
    bar.close()
    err = capsys.readouterr().err
    assert err.count("rotation test") <= 3, err  # start and end, not one line per episode
