#!/usr/bin/env python
"""Headline result: train in the canonical scene only, test in rotated scenes.

Trains equivariant and MLP SAC(+HER) on Push and PickAndPlace with task rotation fixed at 0 (via
``eqrobot.rl.train``), plus Reach as the contrast task (the MLP does not learn Push or PickAndPlace
within these budgets, so Reach is where an MLP's rotated success can be seen at all), evaluates
every trained policy (and the scripted oracle, for reference) on every split of
``eqrobot.rotation``, measures the simulator's own equivariance gap on the same layouts, and
writes

- ``docs/rotation_headline.json`` (per task: runs, per-bin tables, retention, sim gap, timings),
- ``docs/rotation_headline_<Task>.png`` (polar plot: success vs task rotation, one curve per policy),
- ``docs/rotation_headline.md`` (the printed tables),

and prints the tables, the headline check (the equivariant policy keeps >= 0.95x its canonical
success in every reachable so2-sweep bin and on so3-world) and the sim-gap figures. The check is
reported twice: on point estimates (the issue's wording; with K episodes per bin the worst of ~23
bins fails it by sampling noise alone unless success is near 1) and "within 95% CI" (no bin whose
whole Wilson interval lies under 0.95x canonical), next to the pooled so2-sweep retention.

Usage::

    python scripts/rotation_headline.py            # full run, about an hour on two cores
    python scripts/rotation_headline.py --quick    # smoke run, a few minutes; writes under runs/
    python scripts/rotation_headline.py --reuse    # evaluate existing runs without training

Training runs go to ``runs/rotation_headline/<Task>_<policy>``; ``--jobs 2`` trains two at a time
(one per core). ``--checkpoints-dir`` copies each trained ``model.zip`` there when it is small.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from pathlib import Path

TASK_IDS = {"Push": "eqrobot/Push-v0", "PickAndPlace": "eqrobot/PickAndPlace-v0", "Reach": "eqrobot/Reach-v0"}
RETENTION_GOAL = 0.95
MIN_CANONICAL_SUCCESS = 0.5  # below this, a policy gets no retention verdict (it did not learn the task)
# Budgets for about an hour on 2 cores with --jobs 2 (measured: SAC+HER on Push ~26 (equivariant)
# and ~34 (MLP) env steps/s per run with two runs and other work sharing the cores; faster when idle).
# Reach is the contrast task: the one task the MLP learns within a few thousand steps, so its
# rotated success shows what an MLP does outside its training rotation (on Push and PickAndPlace it
# does not learn the task at all within these budgets).
DEFAULT_STEPS = {"Push": 40_000, "PickAndPlace": 40_000, "Reach": 5_000}
DEFAULT_DEMOS = 100


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument(
        "--tasks",
        default="Push,PickAndPlace,Reach",
        help="comma-separated: Push, PickAndPlace, Reach (the MLP contrast task)",
    )
    p.add_argument("--policies", default="equivariant,mlp", help="comma-separated network kinds to train")
    p.add_argument(
        "--algo", default="sac", help="training algorithm (HER is used for goal envs by the presets)"
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="env steps per training run, every task (default: DEFAULT_STEPS)",
    )
    for task in TASK_IDS:
        p.add_argument(f"--steps-{task.lower()}", type=int, default=None, help=f"override --steps for {task}")
    p.add_argument(
        "--demos", type=int, default=DEFAULT_DEMOS, help="oracle demo episodes put in the replay buffer first"
    )
    p.add_argument("--episodes", type=int, default=10, help="evaluation episodes per bin")
    p.add_argument("--splits", default="all", help="splits to evaluate ('all' or comma-separated)")
    p.add_argument("--seed", type=int, default=0, help="training seed and evaluation seed block")
    p.add_argument("--jobs", type=int, default=2, help="training runs in parallel (one per core)")
    p.add_argument("--n-envs", type=int, default=2, help="evaluation envs in parallel (processes)")
    p.add_argument(
        "--no-oracle", action="store_true", help="do not evaluate the scripted oracle for reference"
    )
    p.add_argument(
        "--sim-gap-episodes", type=int, default=3, help="episodes for the simulator-gap measurement"
    )
    p.add_argument(
        "--runs-dir", default=None, help="training run folders (default runs/rotation_headline[_quick])"
    )
    p.add_argument("--reuse", action="store_true", help="reuse run folders that already hold a model.zip")
    p.add_argument(
        "--reuse-eval",
        action="store_true",
        help="reuse a saved evaluation (runs dir/rotation_<Task>.json) made with the same policies, "
        "episodes, splits and seed: re-derives the tables and checks without re-running episodes",
    )
    p.add_argument(
        "--out-dir",
        default=None,
        help="where the JSON/PNG/MD go (default docs/, or the runs dir with --quick)",
    )
    p.add_argument(
        "--checkpoints-dir",
        default=None,
        help="copy each model.zip here (as <Task>_<policy>.zip) if small; default "
        "checkpoints/rotation_headline (none with --quick); 'none' disables",
    )
    p.add_argument("--max-checkpoint-mb", type=float, default=5.0)
    p.add_argument(
        "--from-checkpoints",
        default=None,
        help="skip training: evaluate DIR/<Task>_<policy>.zip (e.g. the shipped checkpoints)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: tiny training, 2 episodes per bin, results under runs/",
    )
    args = p.parse_args(argv)
    p_steps = {t: getattr(args, f"steps_{t.lower()}") for t in TASK_IDS}
    if args.quick:
        args.steps = args.steps or 300
        args.demos = min(args.demos, 2)
        args.episodes = 2
        args.sim_gap_episodes = min(args.sim_gap_episodes, 1)
    args.runs_dir = Path(
        args.runs_dir or ("runs/rotation_headline_quick" if args.quick else "runs/rotation_headline")
    )
    args.out_dir = Path(args.out_dir or (args.runs_dir if args.quick else "docs"))
    if args.checkpoints_dir is None and not args.quick:
        args.checkpoints_dir = "checkpoints/rotation_headline"
    if args.checkpoints_dir == "none" or args.from_checkpoints:
        args.checkpoints_dir = None
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    bad = [t for t in args.tasks if t not in TASK_IDS]
    if bad:
        p.error(f"unknown task(s) {bad}; choose from {list(TASK_IDS)}")
    args.policies = [x.strip() for x in args.policies.split(",") if x.strip()]
    args.steps_per_task = {t: p_steps[t] or args.steps or DEFAULT_STEPS[t] for t in TASK_IDS}
    return args


# ---------------------------------------------------------------------------------------------
# training (one process per run, so two runs use the two cores)
# ---------------------------------------------------------------------------------------------
def _train_job(job: dict) -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from eqrobot.rl.config import TrainConfig
    from eqrobot.rl.train import train

    cfg = TrainConfig(
        env_id=job["env_id"],
        algo=job["algo"],
        policy=job["policy"],
        steps=job["steps"],  # None: the preset's budget
        seed=job["seed"],
        demos=job["demos"] or 0,
        rotation_range_deg=0.0,  # the canonical split only: task rotation fixed at 0
        out=str(Path(job["run_dir"]).parent),
        run_name=Path(job["run_dir"]).name,
        save_replay_buffer=False,
        progress_bar=job["progress_bar"],
        torch_threads=1,
    )
    t0 = time.time()
    run_dir = train(cfg)
    return {**job, "run_dir": str(run_dir), "train_s": time.time() - t0}


def train_all(args) -> dict[tuple[str, str], dict]:
    from eqrobot.rollout.checkpoints import checkpoint_folder

    jobs, done = [], {}
    if args.from_checkpoints:
        for task in args.tasks:
            for pol in args.policies:
                z = Path(args.from_checkpoints) / f"{task}_{pol}.zip"
                if not z.exists():
                    raise FileNotFoundError(f"--from-checkpoints: {z} is missing")
                done[(task, pol)] = {"task": task, "policy": pol, "run_dir": str(z), "train_s": None}
        return done
    for task in args.tasks:
        for pol in args.policies:
            run_dir = args.runs_dir / f"{task}_{pol}"
            if args.reuse and run_dir.exists() and checkpoint_folder(run_dir) is not None:
                print(f"reusing {run_dir}")
                done[(task, pol)] = {"task": task, "policy": pol, "run_dir": str(run_dir), "train_s": None}
                continue
            jobs.append(
                {
                    "task": task,
                    "env_id": TASK_IDS[task],
                    "policy": pol,
                    "algo": args.algo,
                    "seed": args.seed,
                    "steps": args.steps_per_task[task],
                    "demos": args.demos,
                    "run_dir": str(run_dir),
                    "progress_bar": args.jobs == 1,
                }
            )
    if jobs:
        print(
            f"training {len(jobs)} runs, {args.jobs} at a time: "
            + ", ".join(f"{j['task']}/{j['policy']}" for j in jobs)
        )
        if args.jobs > 1 and len(jobs) > 1:
            with mp.get_context("spawn").Pool(min(args.jobs, len(jobs))) as pool:
                results = pool.map(_train_job, jobs, chunksize=1)
        else:
            results = [_train_job(j) for j in jobs]
        for r in results:
            print(f"  trained {r['task']}/{r['policy']} in {r['train_s']:.0f} s -> {r['run_dir']}")
            done[(r["task"], r["policy"])] = r
    return done


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------
def headline_check(result, policy: str, reference: str | None = "oracle") -> dict:
    """Retention of ``policy`` in every reachable so2-sweep bin and on so3-world vs its canonical success.

    Bins where the ``reference`` policy (the scripted oracle) itself succeeds less than
    ``RETENTION_GOAL`` of the time are physically limited (near joint 1's limit part of the layout is
    out of reach): they are listed under ``physically_limited_bins`` and left out of the verdict.
    """
    out: dict = {"policy": policy, "goal": RETENTION_GOAL}
    canon = (
        result.overall(policy, "canonical", reachable_only=False).success_rate
        if "canonical" in result.splits
        else None
    )
    out["canonical_success"] = canon
    if not canon or canon < MIN_CANONICAL_SUCCESS:
        # retention of a policy that never learned the task is a ratio of noise around its base rate
        # (layouts that start solved): no verdict rather than a meaningless PASS
        out["verdict"] = out["verdict_within_ci"] = (
            f"n/a (canonical success {_fmt(canon)} < {MIN_CANONICAL_SUCCESS}: "
            "the policy did not learn the task)"
        )
        return out
    if "so2-sweep" in result.splits:
        limited = []
        if reference in result.policies and reference != policy:
            limited = [
                c.label
                for c in result.cells(reference, "so2-sweep")
                if c.reachable and not c.empty and c.success_rate < RETENTION_GOAL
            ]
        out["physically_limited_bins"] = limited
        ret = {
            c.label: c.success_rate / canon
            for c in result.cells(policy, "so2-sweep")
            if c.reachable and not c.empty and c.label not in limited
        }
        worst = min(ret, key=ret.get)
        out["so2_sweep_min_retention"] = ret[worst]
        out["so2_sweep_worst_bin"] = worst
        out["so2_sweep_bins_below_goal"] = sorted(
            (k for k, v in ret.items() if v < RETENTION_GOAL), key=float
        )
        out["so2_sweep_ok"] = ret[worst] >= RETENTION_GOAL
        # With K episodes per bin the worst of ~23 bins sits about 2 standard errors below the mean
        # even when every bin has the same true success, so the point-estimate check above fails
        # by noise alone unless success is near 1. The statistical check asks instead whether any
        # bin is *significantly* below the goal: its whole 95% Wilson interval under 0.95x canonical.
        cells = {c.label: c for c in result.cells(policy, "so2-sweep")}
        out["so2_sweep_bins_significantly_below_goal"] = sorted(
            (k for k in ret if cells[k].ci_high < RETENTION_GOAL * canon), key=float
        )
        out["so2_sweep_ok_within_ci"] = not out["so2_sweep_bins_significantly_below_goal"]
        pooled = result.overall(policy, "so2-sweep")
        out["so2_sweep_pooled_retention"] = (
            pooled.success_rate / canon if pooled.success_rate is not None else None
        )
    if "so3-world" in result.splits:
        s = result.overall(policy, "so3-world").success_rate
        out["so3_world_retention"] = s / canon
        out["so3_world_ok"] = s / canon >= RETENTION_GOAL
        so3 = result.overall(policy, "so3-world")
        out["so3_world_ok_within_ci"] = so3.ci_high >= RETENTION_GOAL * canon
    oks = [v for k, v in out.items() if k.endswith("_ok")]
    out["verdict"] = "PASS" if oks and all(oks) else "FAIL"
    ci_oks = [v for k, v in out.items() if k.endswith("_ok_within_ci")]
    out["verdict_within_ci"] = "PASS" if ci_oks and all(ci_oks) else "FAIL"
    return out


def _saved_evaluation(path: Path, policies: dict, args):
    """The saved RotationResult at ``path`` if it was made with these policies and settings, else None."""
    from eqrobot.rotation.results import RotationResult

    if not path.exists():
        return None
    result = RotationResult.from_json(path)
    wanted_splits = None if args.splits == "all" else [x.strip() for x in args.splits.split(",")]
    same = (
        result.policies == list(policies)
        and result.episodes_per_bin == args.episodes
        and result.seed == args.seed
        and (wanted_splits is None or result.splits == wanted_splits)
    )
    if not same:
        print(f"{path} was made with other policies or settings: evaluating again")
        return None
    return result


def _run_summary(run: dict) -> dict:
    """Run folder, training time, resolved config and the last periodic evaluation of one run."""
    out = {"run_dir": run["run_dir"], "train_s": run.get("train_s")}
    cfg = Path(run["run_dir"]) / "config.json"
    if cfg.exists():
        c = json.loads(cfg.read_text())
        out["config"] = {
            k: c.get(k)
            for k in (
                "env_id",
                "algo",
                "policy",
                "steps",
                "seed",
                "demos",
                "her",
                "rotation_range_deg",
                "hyperparams",
                "policy_kwargs",
            )
        }
    ev = Path(run["run_dir"]) / "eval.csv"
    if ev.exists():
        from eqrobot.rl.train import read_eval_csv

        rows = read_eval_csv(ev)
        out["eval_curve"] = rows
    return out


def _fmt(x, spec=".2f"):
    return "n/a" if x is None else format(x, spec)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from eqrobot.rollout.agents import resolve_agent
    from eqrobot.rollout.checkpoints import checkpoint_folder
    from eqrobot.rotation.sim_gap import format_gap, simulator_equivariance_gap
    from eqrobot.rotation.sweep import evaluate_rotation

    t_start = time.time()
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    runs = train_all(args)
    t_train = time.time() - t_start

    report: dict = {
        "script": "scripts/rotation_headline.py",
        "argv": sys.argv[1:] if argv is None else list(argv),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "tasks": {},
    }
    md_parts = []
    for task in args.tasks:
        env_id = TASK_IDS[task]
        policies = {pol: resolve_agent(runs[(task, pol)]["run_dir"], env_id) for pol in args.policies}
        if not args.no_oracle:
            policies["oracle"] = resolve_agent("oracle", env_id)
        t0 = time.time()
        saved = args.runs_dir / f"rotation_{task}.json"
        result = _saved_evaluation(saved, policies, args) if args.reuse_eval else None
        if result is None:
            result = evaluate_rotation(
                policies,
                env_id,
                split=args.splits,
                episodes_per_bin=args.episodes,
                n_envs=args.n_envs,
                seed=args.seed,
            )
            result.to_json(saved)  # full, with every episode
        else:
            print(f"reusing the evaluation in {saved}")
        t_eval = time.time() - t0
        png = result.plot_polar(
            args.out_dir / f"rotation_headline_{task}.png",
            title=f"{task}: trained at task rotation 0 only ({args.episodes} episodes per bin)",
        )
        t0 = time.time()
        gaps = {}
        if args.sim_gap_episodes > 0:
            for pol in policies:
                gaps[pol] = simulator_equivariance_gap(
                    env_id, policies[pol], episodes=args.sim_gap_episodes, seed=args.seed
                )
            first = args.policies[0]
            gaps[f"{first} (world SE(3))"] = simulator_equivariance_gap(
                env_id,
                policies[first],
                angles_deg=(60.0, 120.0, 180.0),
                episodes=args.sim_gap_episodes,
                seed=args.seed,
                group="world",
            )
        t_gap = time.time() - t0
        checks = {pol: headline_check(result, pol) for pol in policies}
        ckpts = {}
        if args.checkpoints_dir:
            for pol in args.policies:
                folder = checkpoint_folder(runs[(task, pol)]["run_dir"])
                if folder is None:
                    continue
                src = folder / "model.zip"
                mb = src.stat().st_size / 2**20
                if mb <= args.max_checkpoint_mb:
                    dst = Path(args.checkpoints_dir) / f"{task}_{pol}.zip"
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, dst)
                    ckpts[pol] = {"path": str(dst), "mb": round(mb, 2)}
                else:
                    ckpts[pol] = {"path": None, "mb": round(mb, 2), "note": "too large, not copied"}
        d = result.to_dict()
        d.pop("episodes")  # the full per-episode record lives in the runs folder
        report["tasks"][task] = {
            "env_id": env_id,
            "runs": {pol: _run_summary(runs[(task, pol)]) for pol in args.policies},
            "rotation": d,
            "retention_so2_sweep": {pol: result.retention(pol, "so2-sweep") for pol in policies}
            if "so2-sweep" in result.splits
            else {},
            "headline": checks,
            "sim_gap": {k: {kk: vv for kk, vv in g.items() if kk != "rows"} for k, g in gaps.items()},
            "checkpoints": ckpts,
            "plot": str(png),
            "timing_s": {"eval": t_eval, "sim_gap": t_gap},
        }
        lines = [
            f"## {task} ({env_id})",
            "",
            result.to_markdown(),
            "",
            "Headline check (retention vs canonical):",
            "",
        ]
        for pol, c in checks.items():
            if c["verdict"].startswith("n/a"):
                lines.append(f"- {pol}: {c['verdict']}")
                continue
            lines.append(
                f"- {pol}: canonical {_fmt(c.get('canonical_success'))}, worst so2-sweep bin "
                f"{c.get('so2_sweep_worst_bin', 'n/a')} retention {_fmt(c.get('so2_sweep_min_retention'))}, "
                f"so3-world retention {_fmt(c.get('so3_world_retention'))} -> {c['verdict']}; "
                f"pooled so2-sweep retention {_fmt(c.get('so2_sweep_pooled_retention'))}, "
                f"bins significantly below the goal: "
                f"{', '.join(c.get('so2_sweep_bins_significantly_below_goal') or []) or 'none'}"
                f" -> {c.get('verdict_within_ci', 'n/a')} within 95% CI"
                + (
                    f" (bins below goal: {', '.join(c['so2_sweep_bins_below_goal'])})"
                    if c.get("so2_sweep_bins_below_goal")
                    else ""
                )
            )
        limited = next(
            (c["physically_limited_bins"] for c in checks.values() if c.get("physically_limited_bins")), []
        )
        if limited:
            lines.append(
                f"- bins {', '.join(limited)}: the oracle itself succeeds < {RETENTION_GOAL:.0%} there "
                "(part of "
                "the layout is beyond joint 1's reach): reported, left out of the verdict"
            )
        lines += ["", "Simulator equivariance gap (same layouts):", ""]
        for name, g in gaps.items():
            lines.append(f"- {name}: " + format_gap(g).replace("\n", "\n  "))
        md = "\n".join(lines) + "\n"
        print("\n" + md, flush=True)
        md_parts.append(md)

    report["timing_s"] = {"train": t_train, "total": time.time() - t_start}
    out_json = args.out_dir / "rotation_headline.json"
    tmp = out_json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(report), indent=1, allow_nan=False))
    os.replace(tmp, out_json)
    (args.out_dir / "rotation_headline.md").write_text(
        "# Rotation generalization headline (written by scripts/rotation_headline.py)\n\n"
        + "\n".join(md_parts)
    )
    print(
        f"wrote {out_json}, {args.out_dir / 'rotation_headline.md'} and the polar plots "
        f"(train {t_train:.0f} s, total {time.time() - t_start:.0f} s)"
    )
    return 0


def _clean(x):
    import math

    import numpy as np

    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


if __name__ == "__main__":
    sys.exit(main())
