"""scripts/bench_rl.py: the job plan (budgets per cell) and the verdicts, on synthetic curves."""

import pytest


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("bench_rl")


def _cells(jobs):
    return {(j["env_id"].split("/")[-1].split("-")[0], j["demos"], j["steps"]) for j in jobs}


def test_default_plan_leaves_out_push_without_demos(bench):
    jobs = bench.plan_jobs(bench.parse_args([]), stamp="t")
    assert _cells(jobs) == {("Reach", 0, 5_000), ("Reach", 100, 5_000), ("Push", 100, 30_000)}
    assert len(jobs) == 3 * 3 * 2  # cells x seeds x policies
    # the eq/MLP pair of one seed is adjacent, so the two run side by side
    assert [j["policy"] for j in jobs[:2]] == ["equivariant", "mlp"]
    assert jobs[0]["seed"] == jobs[1]["seed"]


def test_push_without_demos_gets_its_own_budget(bench):
    argv = ["--no-demo-envs", "Reach", "Push", "--steps-push-no-demos", "80000", "--seeds-push-no-demos", "2"]
    jobs = bench.plan_jobs(bench.parse_args(argv), stamp="t")
    assert ("Push", 0, 80_000) in _cells(jobs) and ("Push", 100, 30_000) in _cells(jobs)
    push = [(j["demos"], j["seed"]) for j in jobs if j["env_id"] == "eqrobot/Push-v0"]
    assert sorted(set(push)) == [(0, 0), (0, 1), (100, 0), (100, 1), (100, 2)]


def _run(policy, curve, steps=(0, 1000, 2000, 3000, 4000), budget=4000, tp=50.0):
    return {
        "env_id": "eqrobot/Push-v0",
        "policy": policy,
        "seed": 0,
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
def test_sample_efficiency_verdict(bench, eq_curve, mlp_curve, verdict, ratio):
    rows = bench.summarize([_run("equivariant", eq_curve, tp=40.0), _run("mlp", mlp_curve)])
    (r,) = bench.ratios(rows)
    assert r["sample_efficiency_goal_1/3"] == verdict
    assert r["steps_ratio_eq_over_mlp"] == (None if ratio is None else round(ratio, 3))
    assert r["throughput_ratio_eq_over_mlp"] == pytest.approx(0.8)
    assert r["throughput_goal_0.7"] == "ok"


def test_median_steps_to_90_counts_seeds_that_never_get_there(bench):
    runs = [
        _run("equivariant", [0, 0.9, 1, 1, 1]),
        _run("equivariant", [0, 0, 0, 0, 0]),
        _run("equivariant", [0, 0, 0, 0, 0]),
    ]
    (row,) = bench.summarize(runs)
    assert row["seeds_reaching_90"] == 1
    assert row["steps_to_90_median"] is None  # 2 of 3 seeds beyond the budget: the median is "never"
