"""scripts/bench_train.py at a tiny size: the fast test runs the new code in this process; the slow
one also exports the old code with git and runs both in worker processes."""

import json

import pytest


def _check(data, versions):
    (row,) = data["rows"]
    for v in versions:
        assert row[v]["steps"] == 20 and row[v]["updates"] >= 20 and row[v]["steps_per_s_cpu"] > 0
    limit = row["limit"]
    assert 0 < limit["env_step_ms"] < limit["limit_ms"] and limit["update_ms"] > 0
    # the matrix products are part of the update, not more than it
    assert 0 < limit["matmul_ms"] < limit["update_ms"]
    assert limit["matmul_floor_ms"] == pytest.approx(limit["env_step_ms"] + limit["matmul_ms"])
    assert row["step_over_limit"] == pytest.approx(1e3 / row["new"]["steps_per_s_cpu"] / limit["limit_ms"])
    assert all("met" in g for g in data["goals"].values())


ARGS = ["--envs", "Reach", "--steps", "20", "--warmup", "100", "--repeats", "1",
        "--limit-updates", "3", "--limit-env-steps", "20"]  # fmt: skip


def test_bench_train_tiny_in_process(tmp_path, load_script):
    mod = load_script("bench_train")
    out = tmp_path / "bench.json"
    res = mod.main([*ARGS, "--policies", "mlp", "--no-old", "--in-process", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data["rows"] == json.loads(json.dumps(res["rows"]))
    _check(data, ["new"])
    with pytest.raises(SystemExit):
        mod.parse_args(["--in-process"])  # would compare nothing: needs --no-old


@pytest.mark.slow
def test_bench_train_old_vs_new(tmp_path, load_script):
    mod = load_script("bench_train")
    out = tmp_path / "bench.json"
    mod.main([*ARGS, "--policies", "equivariant", "--profile", "--out", str(out)])
    data = json.loads(out.read_text())
    _check(data, ["new", "old"])
    row = data["rows"][0]
    assert row["old"]["eqrobot_path"] != row["new"]["eqrobot_path"]
    assert row["speedup_cpu"] > 0 and row["new"]["profile_s"]["SAC.train (all updates)"] > 0
    old_step_ms = 1e3 / row["old"]["steps_per_s_cpu"]
    assert row["max_speedup_at_matmul_floor"] == pytest.approx(old_step_ms / row["limit"]["matmul_floor_ms"])
