"""Equivariant vs MLP SAC+HER: success rate vs env steps, and training throughput, in one run.

A thin wrapper over ``eqrobot sweep``: builds the experiment (the same grid as
experiments/bench_rl.toml by default; flags resize it), runs it on Ray (``--jobs`` trials at
once, one CPU and one torch thread each; the equivariant/MLP pair of a seed is adjacent in the
grid, so with 2 at once they train side by side and their throughputs compare), then writes the
report's figures.

For each env (Reach, Push), each demo setting (none, ``--demos`` oracle episodes) and each seed,
trains the equivariant policy and SB3's stock MLP policy with the SAME preset hyperparameters and
budget (eqrobot.rl.presets), evaluating every ``--eval-freq-*`` steps on fixed seeds.

Outputs: ``--out`` JSON (every curve + summary), ``--png`` learning curves (mean over seeds, band =
min..max), and a printed table with the ratios the project's goals are stated in:
throughput(eq) / throughput(mlp) >= 0.7, and steps to 90% success (eq) <= 1/3 of MLP's (or MLP
never gets there within the budget). The sweep folder (``--runs-dir``) also gets the full
``eqrobot sweep report`` (per-seed steps to 90% with bootstrap and Wilson intervals).

Default grid (about 40 minutes here: 72 CPU-minutes of training, two runs side by side): Reach
5,000 steps with and without ``--demos`` (100) oracle episodes, Push 30,000 steps with demos, 3
seeds each: 18 runs. Push *without* demos needs several times the budget and runs only when asked:
``--no-demo-envs Reach Push`` adds runs of ``--steps-push-no-demos`` (100,000) steps, about 32
CPU-minutes each. An interrupted grid resumes where it stopped with ``--resume`` (finished trials
are kept). ``--quick`` is a smoke test (about a minute or two).

    python scripts/bench_rl.py --quick
    python scripts/bench_rl.py                                          # the default grid
    python scripts/bench_rl.py --no-demo-envs Reach Push --seeds-push-no-demos 2 --resume
    python scripts/bench_rl.py --address auto --seeds 5                 # on a Ray cluster
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from eqrobot.experiments.config import AgentSpec, ExperimentConfig, GridSpec
from eqrobot.experiments.curves import plot_curves

POLICIES = ("equivariant", "mlp")


def experiment(args: argparse.Namespace) -> ExperimentConfig:
    """The grid: per task one [[grids]] entry per demo setting, both policies, the given seeds."""
    hyperparams = {"learning_starts": 100} if args.quick else {}
    agents = [AgentSpec(p, "sac", p, hyperparams=dict(hyperparams)) for p in POLICIES]
    grids = []
    for task in args.envs:
        steps = {"Reach": args.steps_reach, "Push": args.steps_push}.get(task, args.steps_other)
        eval_freq = args.eval_freq_reach if task == "Reach" else args.eval_freq_push
        no_demo = task in args.no_demo_envs
        for demos in sorted({args.demos} | ({0} if no_demo else set())):
            budget = args.steps_push_no_demos if task == "Push" and demos == 0 else steps
            n_seeds = args.seeds_push if task == "Push" and args.seeds_push is not None else args.seeds
            if task == "Push" and demos == 0 and args.seeds_push_no_demos is not None:
                n_seeds = args.seeds_push_no_demos
            grids.append(
                GridSpec(
                    envs=[task],
                    seeds=list(range(n_seeds)),
                    demos=[demos],
                    steps=[budget],
                    eval_freq=eval_freq,
                    eval_episodes=args.eval_episodes,
                )
            )
    config = ExperimentConfig(
        name="bench_rl",
        agents=agents,
        grids=grids,
        save_replay_buffer=False,
        description=__doc__.split("\n")[0],
    )
    config.validate("scripts/bench_rl.py arguments")
    return config


def table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        if v is None:
            return "never"
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    w = (
        [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
        if cells
        else [len(c) for c in cols]
    )
    lines = ["  ".join(c.ljust(k) for c, k in zip(cols, w, strict=True)), "  ".join("-" * k for k in w)]
    lines += ["  ".join(v.ljust(k) for v, k in zip(x, w, strict=True)) for x in cells]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--envs", nargs="+", default=["Reach", "Push"], help="tasks (default: Reach Push)")
    p.add_argument("--steps-reach", type=int, default=5_000)
    p.add_argument("--steps-push", type=int, default=30_000, help="Push budget with demos")
    p.add_argument(
        "--steps-push-no-demos",
        type=int,
        default=100_000,
        help="Push budget without demos (used when Push is in --no-demo-envs; sparse reward needs more)",
    )
    p.add_argument("--steps-other", type=int, default=50_000, help="budget for any other task in --envs")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seeds-push", type=int, default=None, help="seeds for Push (default: --seeds)")
    p.add_argument("--seeds-push-no-demos", type=int, default=None, help="Push seeds without demos")
    p.add_argument(
        "--demos", type=int, default=100, help="oracle episodes in the 'with demos' setting (0: skip it)"
    )
    p.add_argument(
        "--no-demo-envs",
        nargs="*",
        default=["Reach"],
        help="tasks that also run without demos (default: Reach; 'Reach Push' adds Push, ~1.5 h more)",
    )
    p.add_argument("--resume", "--reuse", action="store_true", help="continue the sweep in --runs-dir")
    p.add_argument("--eval-freq-reach", type=int, default=250)
    p.add_argument("--eval-freq-push", type=int, default=2_500)
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument(
        "--jobs", type=int, default=2, help="trials at once (the eq/MLP pair of a seed runs together)"
    )
    p.add_argument("--address", default=None, help="a Ray cluster to join (default: local Ray on 127.0.0.1)")
    p.add_argument("--runs-dir", default="runs/bench_rl", help="the sweep folder")
    p.add_argument("--out", default="docs/bench_rl.json")
    p.add_argument("--png", default="docs/bench_rl.png")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny budgets, 1 seed, 2 demo episodes")
    args = p.parse_args(argv)
    if args.quick:
        args.steps_reach = args.steps_push = args.steps_push_no_demos = args.steps_other = 300
        args.eval_freq_reach = args.eval_freq_push = 150
        args.seeds, args.eval_episodes = 1, 3
        args.demos = min(args.demos, 2)
        if args.out == "docs/bench_rl.json":
            args.out, args.png = "runs/bench_rl_quick.json", "runs/bench_rl_quick.png"
        if args.runs_dir == "runs/bench_rl":
            args.runs_dir = "runs/bench_rl_quick"
    return args


def main(argv: list[str] | None = None) -> int:
    from eqrobot.experiments.report import build_report
    from eqrobot.experiments.sweep import run_sweep

    args = parse_args(argv)
    config = experiment(args)
    trials = config.trials()
    print(
        f"{len(trials)} runs, {sum(t.steps for t in trials)} env steps in total, {args.jobs} at once",
        flush=True,
    )
    t0 = time.perf_counter()
    ledger = run_sweep(
        config, args.runs_dir, address=args.address, max_concurrent=args.jobs, resume=args.resume
    )
    report = build_report(args.runs_dir)
    out = {
        "script": "scripts/bench_rl.py",
        "argv": sys.argv[1:] if argv is None else argv,
        "budgets": {
            "reach": args.steps_reach,
            "push": args.steps_push,
            "push_no_demos": args.steps_push_no_demos,
            "seeds": args.seeds,
            "seeds_push": args.seeds_push if args.seeds_push is not None else args.seeds,
            "seeds_push_no_demos": args.seeds_push_no_demos,
            "demos": args.demos,
            "no_demo_envs": args.no_demo_envs,
        },
        "wall_time_s": round(time.perf_counter() - t0, 1),
        "trials": ledger["trials"],
        "summary": report["summary"],
        "ratios": report["ratios"],
        "runs": report["runs"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    Path(args.png).parent.mkdir(parents=True, exist_ok=True)
    if report["runs"]:
        plot_curves(report["runs"], Path(args.png))
    cols = [
        "env",
        "demos",
        "policy",
        "seeds",
        "budget",
        "final_success",
        "steps_to_90_median",
        "train_steps_per_s",
    ]
    print("\n" + table(report["summary"], cols))
    cols = [
        "env",
        "demos",
        "throughput_ratio_eq_over_mlp",
        "throughput_goal_0.7",
        "steps_ratio_eq_over_mlp",
        "sample_efficiency_goal_1/3",
    ]
    print("\n" + table(report["ratios"], cols))
    failed = [n for n, e in ledger["trials"].items() if e["status"] != "finished"]
    if failed:
        print(f"\nnot finished: {', '.join(failed)} (see {args.runs_dir}/report.md; --resume continues)")
    print(f"\nwrote {args.out}, {args.png} and {args.runs_dir}/report.md ({out['wall_time_s']} s)")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
