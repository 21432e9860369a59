"""scripts/bench_rl.py (a wrapper over `eqrobot sweep`): its experiment grid (budgets per cell) and
the verdicts it prints (eqrobot.experiments.curves), on synthetic curves."""

from pathlib import Path

import pytest

from eqrobot.experiments import curves
from eqrobot.experiments.config import load_experiment

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("bench_rl")


def _cells(trials):
    return {(t.task, t.demos, t.steps) for t in trials}


def test_default_plan_leaves_out_push_without_demos(bench):
    trials = bench.experiment(bench.parse_args([])).trials()
    assert _cells(trials) == {("Reach", 0, 5_000), ("Reach", 100, 5_000), ("Push", 100, 30_000)}
    assert len(trials) == 3 * 3 * 2  # cells x seeds x policies
    # the eq/MLP pair of one seed is adjacent, so the two run side by side
    assert [t.agent.policy for t in trials[:2]] == ["equivariant", "mlp"]
    assert trials[0].seed == trials[1].seed


def test_the_shipped_config_is_the_default_grid(bench):
    shipped = load_experiment(ROOT / "experiments" / "bench_rl.toml").trials()
    assert [t.name for t in shipped] == [t.name for t in bench.experiment(bench.parse_args([])).trials()]
    assert {(t.eval_freq, t.eval_episodes) for t in shipped if t.task == "Push"} == {(2500, 20)}


def test_push_without_demos_gets_its_own_budget(bench):
    argv = ["--no-demo-envs", "Reach", "Push", "--steps-push-no-demos", "80000", "--seeds-push-no-demos", "2"]
    trials = bench.experiment(bench.parse_args(argv)).trials()
    assert ("Push", 0, 80_000) in _cells(trials) and ("Push", 100, 30_000) in _cells(trials)
    push = [(t.demos, t.seed) for t in trials if t.env_id == "eqrobot/Push-v0"]
    assert sorted(set(push)) == [(0, 0), (0, 1), (100, 0), (100, 1), (100, 2)]


def test_quick_is_tiny(bench):
    trials = bench.experiment(bench.parse_args(["--quick"])).trials()
    assert {t.steps for t in trials} == {300} and {t.seed for t in trials} == {0}
    assert all(t.agent.hyperparams["learning_starts"] == 100 for t in trials)


def _run(policy, curve, steps=(0, 1000, 2000, 3000, 4000), budget=4000, tp=50.0, seed=0):
    return {
        "env_id": "eqrobot/Push-v0",
        "policy": policy,
        "seed": seed,
        "demos": 0,
        "steps": budget,
        "steps_axis": list(steps),
        "success": list(curve),
        "train_steps_per_s": tp,
    }


@pytest.mark.parametrize(
    ("eq_curve", "mlp_curve", "verdict", "ratio"),
    [
        ([0, 0.9, 1, 1, 1], [0, 0, 0, 0.9, 1], "ok", 1 / 3),
        ([0, 0, 0.9, 1, 1], [0, 0, 0, 0.9, 1], "no", 2 / 3),
        ([0, 0, 0, 0.9, 1], [0, 0.5, 0.5, 0.5, 0.5], "ok (MLP never reached 90%)", None),
        ([0, 0.5, 0.5, 0.5, 0.5], [0, 0, 0.9, 1, 1], "no (equivariant never reached 90%)", None),
    ],
)
def test_sample_efficiency_verdict(eq_curve, mlp_curve, verdict, ratio):
    rows = curves.summarize([_run("equivariant", eq_curve, tp=40.0), _run("mlp", mlp_curve)])
    (r,) = curves.ratios(rows)
    assert r["sample_efficiency_goal_1/3"] == verdict
    assert r["steps_ratio_eq_over_mlp"] == (None if ratio is None else round(ratio, 3))
    assert r["throughput_ratio_eq_over_mlp"] == pytest.approx(0.8)
    assert r["throughput_goal_0.7"] == "ok"


def test_median_steps_to_90_counts_seeds_that_never_get_there():
    runs = [
        _run("equivariant", [0, 0.9, 1, 1, 1], seed=0),
        _run("equivariant", [0, 0, 0, 0, 0], seed=1),
        _run("equivariant", [0, 0, 0, 0, 0], seed=2),
    ]
    (row,) = curves.summarize(runs)
    assert row["seeds_reaching_90"] == 1
    assert row["steps_to_90_median"] is None  # 2 of 3 seeds beyond the budget: the median is "never"
    assert row["steps_to_90_per_seed"] == {"0": 1000, "1": None, "2": None}
    lo, hi = row["seeds_reaching_90_wilson_95"]
    assert 0 < lo < 1 / 3 < hi < 1
    assert row["steps_to_90_mean_bootstrap_95"] is None  # one seed got there: no interval


def test_bootstrap_interval_of_steps_to_90():
    runs = [_run("equivariant", [0] * k + [0.95] * (5 - k), seed=k) for k in (1, 2, 3, 4)]
    (row,) = curves.summarize(runs)
    lo, hi = row["steps_to_90_mean_bootstrap_95"]
    assert row["steps_to_90_mean_of_reached"] == 2500.0
    assert 1000 <= lo < 2500 < hi <= 4000
