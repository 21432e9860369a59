"""Equivariant vs MLP SAC+HER: success rate vs env steps, and training throughput, in one run.

For each env (Reach, Push), each demo setting (none, ``--demos`` oracle episodes) and each seed,
trains the equivariant policy and SB3's stock MLP policy with the SAME preset hyperparameters and
budget (eqrobot.rl.presets), evaluating every ``--eval-freq-*`` steps on fixed seeds. The two
policies of a pair run side by side (``--jobs 2``: one process each, one torch thread each), so
their throughputs are measured under the same load and compared as a ratio.

Outputs: ``--out`` JSON (every curve + summary), ``--png`` learning curves (mean over seeds, band =
min..max), and a printed table with the ratios the project's goals are stated in:
throughput(eq) / throughput(mlp) >= 0.7, and steps to 90% success (eq) <= 1/3 of MLP's (or MLP
never gets there within the budget).

Default grid (about 40 minutes here: 72 CPU-minutes of training, two runs side by side): Reach
5,000 steps with and without ``--demos`` (100) oracle episodes, Push 30,000 steps with demos, 3
seeds each: 18 runs, 240k env steps (the demo steps, 50 per episode, come on top and are reported;
the oracle makes them in seconds). Push *without* demos learns from sparse reward alone and needs a
budget several times larger, so it runs only when asked: ``--no-demo-envs Reach Push`` adds runs of
``--steps-push-no-demos`` (100,000, the Push preset's budget) steps, about 32 CPU-minutes each at
the 50-57 env steps/s per run measured here: with ``--seeds-push-no-demos 2`` (the run quoted in
docs/results.md) about an hour more, with the default 3 seeds about 1.5 hours. Finished run folders
are reused with ``--reuse``, so an interrupted grid resumes where it stopped and a grid can be
extended cell by cell. ``--quick`` is a smoke test (about a minute or two).

    python scripts/bench_rl.py --quick
    python scripts/bench_rl.py --reuse                                 # the default grid
    python scripts/bench_rl.py --no-demo-envs Reach Push --seeds-push-no-demos 2 --reuse  # + Push, no demos
    python scripts/bench_rl.py --out docs/bench_rl.json --png docs/bench_rl.png
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

POLICIES = ("equivariant", "mlp")


def run_one(job: dict) -> dict:
    """Train one (env, policy, seed, demos) run in this process; return its curve and throughput."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import eqrobot  # noqa: F401
    from eqrobot.rl.config import TrainConfig
    from eqrobot.rl.train import read_eval_csv, train

    t0 = time.perf_counter()
    config = TrainConfig(
        env_id=job["env_id"],
        algo="sac",
        policy=job["policy"],
        steps=job["steps"],
        seed=job["seed"],
        demos=job["demos"],
        eval_freq=job["eval_freq"],
        eval_episodes=job["eval_episodes"],
        out=job["runs_dir"],
        run_name=job["name"],
        progress_bar=False,
        save_replay_buffer=False,
        hyperparams=job.get("hyperparams", {}),
    )
    run_dir = finished_run(job) if job.get("reuse") else None
    if run_dir is None:
        run_dir = train(config)
    rows = read_eval_csv(run_dir / "eval.csv")
    state = json.loads((run_dir / "state.json").read_text())
    return {
        **{k: job[k] for k in ("env_id", "policy", "seed", "demos", "steps")},
        "run_dir": str(run_dir),
        "steps_axis": [int(r["step"]) for r in rows],
        "success": [r["success_rate"] for r in rows],
        # env steps per second of training (evaluation time excluded), over the whole run
        "train_steps_per_s": rows[-1]["train_steps_per_s"] if rows else float("nan"),
        "demo_steps": int(state.get("demo_steps", 0)),
        "wall_s": time.perf_counter() - t0,
    }


def finished_run(job: dict) -> Path | None:
    """The newest finished run folder of this (task, policy, demos, seed) with the same budget, if any.

    Lets an interrupted benchmark resume without retraining what it already finished (``--reuse``)."""
    prefix = job["name"].rsplit("-", 2)[0]  # drop the time stamp
    for run_dir in sorted(Path(job["runs_dir"]).glob(f"{prefix}-*"), reverse=True):
        try:
            state = json.loads((run_dir / "state.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if state.get("status") == "finished" and state.get("total_steps") == job["steps"]:
            return run_dir
    return None


def first_step_at(steps: list[int], success: list[float], level: float) -> int | None:
    for s, v in zip(steps, success, strict=True):
        if v >= level:
            return s
    return None


def summarize(results: list[dict], level: float = 0.9) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["env_id"], r["demos"], r["policy"]), []).append(r)
    rows = []
    order = {e: i for i, e in enumerate(dict.fromkeys(r["env_id"] for r in results))}
    for (env_id, demos, policy), runs in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], *kv[0][1:])):
        hits = [first_step_at(r["steps_axis"], r["success"], level) for r in runs]
        reached = [h for h in hits if h is not None]
        n = min(len(r["success"]) for r in runs)
        mean_curve = np.mean([r["success"][:n] for r in runs], axis=0)
        rows.append(
            {
                "env": env_id.split("/")[-1],
                "demos": demos,
                "policy": policy,
                "seeds": len(runs),
                "budget": runs[0]["steps"],
                "final_success": float(np.mean([r["success"][-1] for r in runs])),
                "final_success_std": float(np.std([r["success"][-1] for r in runs])),
                "seeds_reaching_90": len(reached),
                # median over seeds; a seed that never gets there counts as "beyond the budget"
                "steps_to_90_median": _median_with_never(hits, runs[0]["steps"]),
                "mean_curve_steps_to_90": first_step_at(runs[0]["steps_axis"][:n], list(mean_curve), level),
                "train_steps_per_s": float(np.mean([r["train_steps_per_s"] for r in runs])),
            }
        )
    return rows


def _median_with_never(hits: list[int | None], budget: int) -> float | None:
    vals = sorted(math.inf if h is None else h for h in hits)
    med = vals[len(vals) // 2] if len(vals) % 2 else 0.5 * (vals[len(vals) // 2 - 1] + vals[len(vals) // 2])
    return None if math.isinf(med) else float(med)


def ratios(rows: list[dict]) -> list[dict]:
    out = []
    by = {(r["env"], r["demos"], r["policy"]): r for r in rows}
    for (env, demos, policy), eq in by.items():
        if policy != "equivariant" or (env, demos, "mlp") not in by:
            continue
        mlp = by[(env, demos, "mlp")]
        tp = eq["train_steps_per_s"] / mlp["train_steps_per_s"] if mlp["train_steps_per_s"] else float("nan")
        e90, m90 = eq["steps_to_90_median"], mlp["steps_to_90_median"]
        if e90 is not None and m90 is not None:
            sr, verdict = e90 / m90, "ok" if e90 <= m90 / 3 else "no"
        elif e90 is not None:
            sr, verdict = None, "ok (MLP never reached 90%)"
        else:
            sr, verdict = None, "no (equivariant never reached 90%)"
        out.append(
            {
                "env": env,
                "demos": demos,
                "throughput_ratio_eq_over_mlp": round(tp, 3),
                "throughput_goal_0.7": "ok" if tp >= 0.7 else "no",
                "steps_to_90_eq": e90,
                "steps_to_90_mlp": m90,
                "steps_ratio_eq_over_mlp": None if sr is None else round(sr, 3),
                "sample_efficiency_goal_1/3": verdict,
            }
        )
    return out


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


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(dict.fromkeys((r["env_id"], r["demos"]) for r in sorted(results, key=lambda r: r["demos"])))
    keys.sort(key=lambda k: [r["env_id"] for r in results].index(k[0]))
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6), squeeze=False)
    for ax, (env_id, demos) in zip(axes[0], keys, strict=True):
        for policy, color in zip(POLICIES, ("tab:blue", "tab:orange"), strict=True):
            runs = [r for r in results if (r["env_id"], r["demos"], r["policy"]) == (env_id, demos, policy)]
            if not runs:
                continue
            n = min(len(r["success"]) for r in runs)
            x = np.array(runs[0]["steps_axis"][:n])
            y = np.array([r["success"][:n] for r in runs])
            ax.plot(x, y.mean(0), color=color, label=f"{policy} ({len(runs)} seeds)")
            ax.fill_between(x, y.min(0), y.max(0), color=color, alpha=0.2)
        ax.axhline(0.9, color="gray", lw=0.8, ls="--")
        ax.set_title(f"{env_id.split('/')[-1]}, demos={demos}")
        ax.set_xlabel("env steps (demo steps not counted)")
        ax.set_ylabel("eval success rate")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plan_jobs(args: argparse.Namespace, stamp: str) -> list[dict]:
    """One job per (task, demos, seed, policy); the eq/MLP pair of a seed is adjacent so it runs together."""
    jobs = []
    for task in args.envs:
        steps = {"Reach": args.steps_reach, "Push": args.steps_push}.get(task, args.steps_other)
        eval_freq = args.eval_freq_reach if task == "Reach" else args.eval_freq_push
        no_demo = task in args.no_demo_envs
        for demos in sorted({args.demos} | ({0} if no_demo else set())):
            budget = args.steps_push_no_demos if task == "Push" and demos == 0 else steps
            n_seeds = args.seeds_push if task == "Push" and args.seeds_push is not None else args.seeds
            if task == "Push" and demos == 0 and args.seeds_push_no_demos is not None:
                n_seeds = args.seeds_push_no_demos
            for seed in range(n_seeds):
                for policy in POLICIES:
                    extra = {"hyperparams": {"learning_starts": 100}} if args.quick else {}
                    jobs.append(
                        {
                            "env_id": f"eqrobot/{task}-v0",
                            "policy": policy,
                            "seed": seed,
                            "demos": demos,
                            "steps": budget,
                            "eval_freq": eval_freq,
                            "eval_episodes": args.eval_episodes,
                            "runs_dir": args.runs_dir,
                            "name": f"{task}-{policy}-demos{demos}-s{seed}-{stamp}",
                            "reuse": args.reuse,
                            **extra,
                        }
                    )
    return jobs


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
    p.add_argument("--reuse", action="store_true", help="reuse finished run folders of the same job")
    p.add_argument("--eval-freq-reach", type=int, default=250)
    p.add_argument("--eval-freq-push", type=int, default=2_500)
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument(
        "--jobs", type=int, default=2, help="parallel training processes (pairs eq/mlp run together)"
    )
    p.add_argument("--runs-dir", default="runs/bench_rl")
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
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    jobs = plan_jobs(args, stamp=time.strftime("%Y%m%d-%H%M%S"))
    total_steps = sum(j["steps"] for j in jobs)
    print(f"{len(jobs)} runs, {total_steps} env steps in total, {args.jobs} parallel processes", flush=True)
    t0 = time.perf_counter()
    results = []
    if args.jobs <= 1:
        for j in jobs:
            results.append(run_one(j))
            print(f"  done {j['name']} ({time.perf_counter() - t0:.0f} s)", flush=True)
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=mp.get_context("spawn")) as pool:
            for r in pool.map(run_one, jobs):
                results.append(r)
                print(f"  done {Path(r['run_dir']).name} ({time.perf_counter() - t0:.0f} s)", flush=True)
    rows = summarize(results)
    rat = ratios(rows)
    report = {
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
        "summary": rows,
        "ratios": rat,
        "runs": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    plot(results, Path(args.png))
    print()
    print(
        table(
            rows,
            [
                "env",
                "demos",
                "policy",
                "seeds",
                "budget",
                "final_success",
                "steps_to_90_median",
                "train_steps_per_s",
            ],
        )
    )
    print()
    print(
        table(
            rat,
            [
                "env",
                "demos",
                "throughput_ratio_eq_over_mlp",
                "throughput_goal_0.7",
                "steps_ratio_eq_over_mlp",
                "sample_efficiency_goal_1/3",
            ],
        )
    )
    print(f"\nwrote {args.out} and {args.png} ({report['wall_time_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
