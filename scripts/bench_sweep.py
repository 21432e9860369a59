"""Ray overhead of ``eqrobot sweep``: the same 4-trial grid with 1 and with 2 trials at once.

Runs, in one process and one local Ray (loopback only), a grid of ``--trials`` equivariant SAC+HER
trials on Reach (``--steps`` each, different seeds) twice: with ``max_concurrent=1`` and with
``max_concurrent=2``. Reports

- the wall-clock speed-up of 2 concurrent trials over 1 (goal >= 1.7x on 2 cores);
- Ray's overhead per trial: the sequential sweep's wall time per trial minus the time a trial
  spends inside ``eqrobot.rl.train`` (recorded by the trial itself; goal < 10 s). It holds the
  Tune trial start/stop, the worker's imports and the reporting;
- the same overhead with 2 at once (wall x 2 / trials - mean train time).

Writes ``--out`` (JSON) and prints the ratios. The figure wants a quiet machine: other load on the
two cores slows the concurrent run more than the sequential one.

    python scripts/bench_sweep.py --quick                       # a smoke test (tiny trials)
    python scripts/bench_sweep.py --out docs/bench_sweep.json   # the published figure
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from eqrobot.experiments.config import AgentSpec, ExperimentConfig, GridSpec


def grid(trials: int, steps: int, eval_freq: int) -> ExperimentConfig:
    agent = AgentSpec("eq", "sac", "equivariant", hyperparams={"learning_starts": min(500, steps // 2)})
    return ExperimentConfig(
        name="bench_sweep",
        agents=[agent],
        grids=[
            GridSpec(
                envs=["Reach"], seeds=list(range(trials)), steps=[steps], eval_freq=eval_freq, eval_episodes=5
            )
        ],
        save_replay_buffer=False,
    )


def measure(config: ExperimentConfig, folder: Path, concurrent: int) -> dict:
    from eqrobot.experiments.sweep import run_sweep

    out = folder / f"concurrent{concurrent}"
    t0 = time.perf_counter()
    ledger = run_sweep(config, out, max_concurrent=concurrent)
    wall = time.perf_counter() - t0
    train_s = [
        json.loads((out / "trials" / f"{name}.json").read_text())["train_s"] for name in ledger["trials"]
    ]
    n = len(train_s)
    return {
        "concurrent": concurrent,
        "wall_s": round(wall, 2),
        "trials_finished": sum(e["status"] == "finished" for e in ledger["trials"].values()),
        "train_s_per_trial": [round(x, 2) for x in train_s],
        # what the sweep adds per trial beyond eqrobot.rl.train itself
        "overhead_s_per_trial": round(wall * concurrent / n - sum(train_s) / n, 2),
        "nodes": sorted({e["node_id"] for e in ledger["trials"].values()}),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--steps", type=int, default=2000, help="env steps per trial")
    p.add_argument("--eval-freq", type=int, default=500)
    p.add_argument("--out", default="docs/bench_sweep.json")
    p.add_argument("--keep", default=None, help="keep the two sweep folders here (default: a temp dir)")
    p.add_argument("--quick", action="store_true", help="smoke test: 300-step trials, JSON under runs/")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.eval_freq = 300, 150
        if args.out == "docs/bench_sweep.json":
            args.out = "runs/bench_sweep_quick.json"
    from eqrobot.experiments.cluster import ray_session

    config = grid(args.trials, args.steps, args.eval_freq)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="bench_sweep-"))
    t0 = time.perf_counter()
    try:
        with ray_session(num_cpus=2):  # both sweeps in one Ray: its start-up is not part of either
            init_s = time.perf_counter() - t0
            seq = measure(config, folder, 1)
            par = measure(config, folder, 2)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    speedup = seq["wall_s"] / par["wall_s"]
    report = {
        "script": "scripts/bench_sweep.py",
        "argv": sys.argv[1:] if argv is None else argv,
        "grid": {
            "trials": args.trials,
            "steps": args.steps,
            "eval_freq": args.eval_freq,
            "env": "eqrobot/Reach-v0",
        },
        "ray_init_s": round(init_s, 2),
        "sequential": seq,
        "concurrent": par,
        "speedup_2_over_1": round(speedup, 3),
        "speedup_goal_1.7": "ok" if speedup >= 1.7 else "no",
        "overhead_goal_10s": "ok" if seq["overhead_s_per_trial"] < 10 else "no",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"ray.init: {init_s:.1f} s")
    for r in (seq, par):
        print(
            f"{r['concurrent']} at once: {r['wall_s']:.1f} s wall, "
            f"train {sum(r['train_s_per_trial']):.1f} s in all, "
            f"overhead {r['overhead_s_per_trial']:.1f} s per trial"
        )
    print(
        f"speed-up 2 vs 1: {speedup:.2f}x (goal >= 1.7: {report['speedup_goal_1.7']}); "
        f"overhead per trial {seq['overhead_s_per_trial']:.1f} s (goal < 10: {report['overhead_goal_10s']})"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
