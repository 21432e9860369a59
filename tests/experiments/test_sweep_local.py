"""`eqrobot sweep` on an embedded local Ray: run, interrupt, resume, a crashing trial, the report, and
Ray evaluation == `evaluate_rotation` per episode. One Ray session for the whole module (ray.init
costs seconds); budgets are tiny (300 steps), so this checks the machinery, not learning."""

import json
import os
import signal

import numpy as np
import pytest

ray = pytest.importorskip("ray")
tune = pytest.importorskip("ray.tune")

from eqrobot.experiments import load_experiment, ray_session, run_sweep  # noqa: E402
from eqrobot.experiments.cluster import loopback_only_env  # noqa: E402
from eqrobot.rollout.checkpoints import checkpoint_folder  # noqa: E402

TINY = """
name = "tiny"

[[agents]]
name = "eq"
algo = "sac"
policy = "equivariant"
hyperparams = { learning_starts = 100 }

[[agents]]  # a constructor argument SB3 does not know: passes config checks, crashes in its trial
name = "broken"
policy = "mlp"
hyperparams = { not_an_sb3_argument = 1 }

# dense reward: every episode's return differs, so the per-episode identity check is not vacuous
[[grids]]
envs = ["ReachDense"]
agents = ["eq"]
seeds = [0, 1]
steps = 300
eval_freq = 150
eval_episodes = 2

[[grids]]
envs = ["ReachDense"]
agents = ["broken"]
steps = 300
eval_episodes = 2

[evaluation]
splits = ["canonical", "so3-world"]
episodes_per_bin = 1
episodes_per_task = 3
references = ["oracle"]
"""
EQ0, EQ1, BROKEN = (
    "ReachDense-eq-d0-n300-r0-s0",
    "ReachDense-eq-d0-n300-r0-s1",
    "ReachDense-broken-d0-n300-r0-s0",
)


class InterruptAfterFirstTrial(tune.Callback):
    """Ctrl-C (SIGINT, which Tune handles by saving its state and stopping) once one trial completed."""

    def on_trial_complete(self, iteration, trials, trial, **info):
        os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture(scope="module")
def local_ray():
    loopback_only_env()
    with ray_session(num_cpus=2) as r:
        yield r
    assert not ray.is_initialized()


def _file_times(folder):
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def sweep(local_ray, tmp_path_factory):
    """The sweep interrupted after its first trial, then resumed from the command line: (folder,
    first ledger, final ledger, run-folder file times of the first trial before the resume)."""
    from eqrobot.cli import main

    tmp = tmp_path_factory.mktemp("sweep")
    toml = tmp / "tiny.toml"
    toml.write_text(TINY)
    out = tmp / "tiny"
    first = run_sweep(load_experiment(toml), out, max_concurrent=1, callbacks=[InterruptAfterFirstTrial()])
    stamps = _file_times(out / "runs" / EQ0)
    resume = ["sweep", "run", str(toml), "--out", str(out), "--resume", "--max-concurrent", "2"]
    assert main(resume) == 1  # 1: a trial failed
    final = json.loads((out / "sweep.json").read_text())
    return out, first, final, stamps


def test_the_interrupted_sweep_keeps_its_finished_trial_and_resume_does_not_rerun_it(sweep):
    out, first, final, stamps = sweep
    assert first["trials"][EQ0]["status"] == "finished"
    assert first["trials"][EQ1]["status"] != "finished"
    assert final["trials"][EQ0]["status"] == final["trials"][EQ1]["status"] == "finished"
    # the finished trial's run folder was not touched by the resumed sweep
    assert stamps == _file_times(out / "runs" / EQ0)
    for name in (EQ0, EQ1):
        run = out / "runs" / name
        assert {"checkpoints", "config.json", "eval.csv", "state.json"} <= {p.name for p in run.iterdir()}
        assert (checkpoint_folder(run) / "model.zip").exists()
        rows = (run / "eval.csv").read_text().splitlines()
        assert [r.split(",")[0] for r in rows[1:]] == ["0", "150", "300"]  # each evaluation once


def test_a_crashing_trial_is_reported_with_its_error_and_the_others_finish(sweep):
    out, _, final, _ = sweep
    broken = final["trials"][BROKEN]
    assert broken["status"] == "error" and "not_an_sb3_argument" in broken["error"]


def test_report_has_curves_intervals_and_retention(sweep, capsys):
    from eqrobot.cli import main

    out, *_ = sweep
    assert main(["sweep", "report", str(out)]) == 0
    assert "Success vs env steps" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    (row,) = report["summary"]
    assert row["agent"] == "eq" and row["seeds"] == 2 and row["budget"] == 300
    assert set(row["steps_to_90_per_seed"]) == {"0", "1"}
    assert {r["trial"] for r in report["retention"]} == {EQ0, EQ1}
    # per agent, each split's success over its seeds: the mean of the per-trial rows, with min and max
    (group,) = report["success_by_group"]
    assert group["seeds"] == 2
    for split, agg in ((k, v) for k, v in group.items() if k not in ("group", "seeds")):
        per_trial = [r[split] for r in report["retention"]]
        assert agg["n"] == 2 and agg["mean"] == pytest.approx(np.mean(per_trial))
        assert (agg["min"], agg["max"]) == (min(per_trial), max(per_trial))
    for name in ("report.md", "report.json", "learning_curves.png", "retention.png"):
        assert (out / name).stat().st_size > 0, name
    md = (out / "report.md").read_text()
    assert BROKEN in md and "failed" in md


def test_ray_evaluation_equals_evaluate_rotation_per_episode(sweep):
    from eqrobot.rotation import RotationResult, evaluate_rotation

    out, *_ = sweep
    sources = {EQ0: out / "runs" / EQ0, "oracle": "oracle"}
    saved = {
        EQ0: RotationResult.from_json(out / "runs" / EQ0 / "rotation.json"),
        "oracle": RotationResult.from_json(out / "references" / "ReachDense-v0" / "oracle" / "rotation.json"),
    }
    direct = evaluate_rotation(
        sources, "eqrobot/ReachDense-v0", ["canonical", "so3-world"], 1, progress=False
    )
    keys = ("split", "bin", "episode", "seed", "success", "return", "length")
    for name, result in saved.items():
        assert result.meta["ray_tasks"] == 3  # 1 + 6 episodes in chunks of 3
        mine = [tuple(e[k] for k in keys) for e in result.episodes]
        theirs = [tuple(e[k] for k in keys) for e in direct.episodes if e["policy"] == name]
        assert mine == theirs and len(mine) == 7
        assert [c.success_rate for c in result.rows] == [c.success_rate for c in direct.cells(name)]
    for result in saved.values():  # the comparison is not vacuous
        assert len({e["return"] for e in result.episodes}) == 7


def test_the_local_ray_listens_on_loopback_only(local_ray):
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}


def test_the_sweep_leaves_ctrl_c_to_the_caller(sweep):
    import signal as sig

    assert sig.getsignal(sig.SIGINT) is sig.default_int_handler  # Tune's handler is gone again
