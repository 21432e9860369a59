"""Benchmark of the dynamics models and the MPC planner (issue 6), all in one run.

- one-step and 10-step open-loop rollout errors (object and end-effector position in mm, object
  orientation in degrees) on held-out test sets: canonical, task-rotated (SO(2) about gravity) and
  world-transformed (random SE(3), gravity included), for the equivariant model and the MLP of
  matched parameter count, each trained on the first 1k / 10k / 50k canonical transitions;
- forward time of one model step at batch 256 and 1024, both models;
- MPC (MPPI on the largest equivariant model) success rate and planning time per control step on
  Push, canonical and world-transformed, next to a model-free SAC checkpoint if one is given.

Goals (issue 6): equivariant rotated error <= 1.1x its canonical error; equivariant@1k beats
MLP@10k on rotated data; MPC >= 80% on Push at < 100 ms per step.

    python scripts/bench_dynamics.py --quick                       # ~3 min smoke run
    python scripts/bench_dynamics.py --sac runs/push_sac/model.zip  # full run (lead)

Writes JSON (``--out``) and prints tables of the figures and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from eqrobot.dynamics.data import Transitions
from eqrobot.dynamics.models import make_model, matched_mlp
from eqrobot.dynamics.mpc import MPPIPlanner
from eqrobot.dynamics.training import fit, rollout_errors
from eqrobot.rollout.agents import resolve_agent
from eqrobot.rollout.collect import DEFAULT_POLICY_MIX, collect_transitions
from eqrobot.rollout.evaluation import evaluate

# Test sets collected in the env, paired episode by episode (same seed: same tasks, the collector's
# randomness co-rotates; see collect_transitions(moves=...)): they differ only by the move and by the
# simulator's own contact asymmetry. Task rotations stay within +-90 deg about gravity, away from
# Panda joint 1's limits (+-166 deg) where the arm's own dynamics change.
TEST_SETS = {"canonical": None, "task_rotated": "task", "world_se3": "world"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="eqrobot/Push-v0")
    p.add_argument("--sizes", default="1000,10000,50000", help="training set sizes (transitions)")
    p.add_argument("--test-transitions", type=int, default=5000, help="per test set")
    p.add_argument("--policy", default=DEFAULT_POLICY_MIX, help="data collection policy / mixture")
    p.add_argument("--action-noise", type=float, default=0.3)
    p.add_argument("--random-action-prob", type=float, default=0.15)
    p.add_argument("--fit-steps", type=int, default=3000)
    p.add_argument("--fit-seconds", type=float, default=None, help="time budget per model fit")
    p.add_argument("--horizon", type=int, default=5, help="training rollout horizon")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--mpc-episodes", type=int, default=20)
    p.add_argument("--mpc-horizon", type=int, default=8)
    p.add_argument("--mpc-samples", type=int, default=128)
    p.add_argument("--mpc-iterations", type=int, default=1)
    p.add_argument(
        "--mpc-free-gripper", action="store_true", help="also plan the gripper (default: closed hand)"
    )
    p.add_argument("--mpc-mlp", action="store_true", help="also run MPC with the MLP model")
    p.add_argument("--sac", default=None, help="model-free SAC checkpoint (zip or run folder) to compare")
    p.add_argument("--data-dir", default="runs/bench_dynamics", help="cache of collected transitions")
    p.add_argument("--out", default=None, help="JSON output (default docs/bench_dynamics.json)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--quick", action="store_true", help="tiny sizes and budgets: a smoke run of a few minutes"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.sizes = "1000,3000"
        args.test_transitions = min(args.test_transitions, 500)
        args.fit_steps = min(args.fit_steps, 150)
        args.mpc_episodes = min(args.mpc_episodes, 3)
        args.data_dir = args.data_dir + "_quick"
    if args.out is None:
        args.out = "runs/bench_dynamics_quick.json" if args.quick else "docs/bench_dynamics.json"
    args.sizes = [int(s) for s in str(args.sizes).split(",") if s]
    return args


def cached_collect(args, name: str, n: int, seed: int, moves: str | None = None) -> Transitions:
    """Collect (or reuse) a transitions file; the file name encodes what was collected."""
    import hashlib

    key = json.dumps(
        [args.env, name, n, seed, args.policy, args.action_noise, args.random_action_prob, moves, 2]
    )
    tag = f"{args.env.replace('/', '_')}_{name}_{n}_{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    path = Path(args.data_dir) / f"{tag}.npz"
    if path.exists():
        data = Transitions.load(path)
        if data.meta.get("policy") == args.policy and len(data) == n:
            return data
    t0 = time.perf_counter()
    data = collect_transitions(
        args.env,
        n,
        policy=args.policy,
        seed=seed,
        action_noise=args.action_noise,
        random_action_prob=args.random_action_prob,
        moves=moves,
        move_seed=seed + 17,
    )
    data.save(path)
    print(f"  collected {name}: {n} transitions in {time.perf_counter() - t0:.0f} s -> {path}", flush=True)
    return data


def move_episodes(data: Transitions, seed: int) -> Transitions:
    from eqrobot.testing import random_group_element

    rng = np.random.default_rng(seed + 77)
    parts = []
    for ep in data.episodes():
        R, t = random_group_element("se3", rng, translation_scale=1.0)
        parts.append(data.select(np.flatnonzero(data.episode == ep)).transform(R, t))
    return Transitions.concatenate(parts)


def time_forward(models: dict, data: Transitions, batch: int, reps: int = 30) -> dict:
    """Median ms of one ``step`` per model, timed interleaved so that load from other processes hits
    all models alike."""
    idx = np.resize(np.arange(len(data)), batch)
    x = torch.as_tensor(data.observation[idx])
    a = torch.as_tensor(data.action[idx])
    times = {k: [] for k in models}
    with torch.no_grad():
        for m in models.values():
            for _ in range(3):
                m.step(x, a)
        for _ in range(reps):
            for k, m in models.items():
                t0 = time.perf_counter()
                m.step(x, a)
                times[k].append(time.perf_counter() - t0)
    return {k: 1e3 * float(np.median(v)) for k, v in times.items()}


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    print(
        f"bench_dynamics: env {args.env}, sizes {args.sizes}, fit {args.fit_steps} steps"
        f"{'' if args.fit_seconds is None else f' / {args.fit_seconds:.0f} s'}, threads {args.threads}",
        flush=True,
    )

    # --- data --------------------------------------------------------------------------------
    train_all = cached_collect(args, "train", max(args.sizes), args.seed)
    tests = {
        name: cached_collect(args, f"test_{name}", args.test_transitions, args.seed + 1000, moves)
        for name, moves in TEST_SETS.items()
    }
    # the canonical test set itself, each episode moved by its own random SE(3) element: isolates the
    # models' generalisation from the simulator's own (contact) asymmetry and from sampling noise
    tests["canonical_moved"] = move_episodes(tests["canonical"], args.seed)

    # --- models --------------------------------------------------------------------------------
    results: dict = {"sizes": {}, "forward_ms": {}, "mpc": {}}
    models = {}
    for size in args.sizes:
        data = train_all.head(size)
        torch.manual_seed(args.seed)
        eq = make_model(data.spec, "equivariant", data=data, hidden=args.hidden)
        mlp = matched_mlp(eq, data)
        entry = {}
        for kind, model in (("equivariant", eq), ("mlp", mlp)):
            torch.manual_seed(args.seed)
            res = fit(
                model,
                data,
                horizon=args.horizon,
                steps=args.fit_steps,
                batch_size=args.batch_size,
                seed=args.seed,
                time_budget=args.fit_seconds,
            )
            errs = {
                name: rollout_errors(model, test, horizons=(1, 10), max_windows=len(test))
                for name, test in tests.items()
            }
            entry[kind] = {
                "params": model.n_params(),
                "fit_seconds": res.seconds,
                "fit_steps": res.steps,
                "best_val": res.best_val,
                "errors": {name: {str(h): v for h, v in e.items()} for name, e in errs.items()},
            }
            e1 = errs["canonical"][1]
            print(
                f"  [{size:>6}] {kind:11s} {model.n_params():>6} params, fit {res.steps} steps in "
                f"{res.seconds:.0f} s; 1-step canonical obj {e1.get('obj_pos_mm', float('nan')):.2f} mm, "
                f"rotated {errs['world_se3'][1].get('obj_pos_mm', float('nan')):.2f} mm",
                flush=True,
            )
            models[(size, kind)] = model
        results["sizes"][str(size)] = entry

    # --- forward timing --------------------------------------------------------------------------
    biggest = max(args.sizes)
    pair = {kind: models[(biggest, kind)] for kind in ("equivariant", "mlp")}
    results["forward_ms"] = {kind: {} for kind in pair}
    for b in (256, 1024):
        for kind, ms in time_forward(pair, tests["canonical"], b).items():
            results["forward_ms"][kind][str(b)] = ms

    # --- MPC -------------------------------------------------------------------------------------
    planners = [("equivariant", {"gripper": -1.0}, "closed hand")]
    if args.mpc_free_gripper:
        planners.append(("equivariant", None, "free gripper"))
    if args.mpc_mlp:
        planners.append(("mlp", {"gripper": -1.0}, "closed hand"))
    task_is_push = "Push" in args.env
    for kind, fixed, label in planners:
        if not task_is_push:
            fixed = None
        for world, kw in (("canonical", {}), ("world_se3", {"world_transform": "random"})):
            planner = MPPIPlanner(
                models[(biggest, kind)],
                horizon=args.mpc_horizon,
                n_samples=args.mpc_samples,
                iterations=args.mpc_iterations,
                seed=args.seed,
                fixed_scalars=fixed,
            )
            r = evaluate(planner, args.env, args.mpc_episodes, seed=args.seed + 5000, env_kwargs=kw)
            key = f"mpc_{kind}_{label.replace(' ', '_')}_{world}"
            results["mpc"][key] = r
            print(f"  {key}: success {r['success_rate']:.2f}, {r['ms_per_step']:.1f} ms/step", flush=True)
    if args.sac:
        sac = resolve_agent(args.sac, args.env)
        for world, kw in (("canonical", {}), ("world_se3", {"world_transform": "random"})):
            r = evaluate(sac, args.env, args.mpc_episodes, seed=args.seed + 5000, env_kwargs=kw)
            results["mpc"][f"sac_{world}"] = r
            print(
                f"  sac_{world}: success {r['success_rate']:.2f}, {r['ms_per_step']:.2f} ms/step", flush=True
            )

    # --- summary ---------------------------------------------------------------------------------
    results["ratios"] = ratios(results, args.sizes)
    results["config"] = {k: v for k, v in vars(args).items()}
    results["machine"] = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    results["seconds"] = time.perf_counter() - t_start
    print_tables(results, args.sizes)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float))
    print(f"wrote {out} ({results['seconds']:.0f} s)")
    return results


def _err(results, size, kind, test, h, metric):
    return results["sizes"][str(size)][kind]["errors"][test][str(h)].get(metric, float("nan"))


def ratios(results, sizes) -> dict:
    out = {}
    for size in sizes:
        for kind in ("equivariant", "mlp"):
            for h in (1, 10):
                for metric in ("obj_pos_mm", "ee_pos_mm", "rot_deg"):
                    can = _err(results, size, kind, "canonical", h, metric)
                    for test in ("canonical_moved", "task_rotated", "world_se3"):
                        out[f"{kind}@{size} {test}/canonical h={h} {metric}"] = (
                            _err(results, size, kind, test, h, metric) / can if can else float("nan")
                        )
                        # the same, each error divided by the nothing-moves error of its own test set:
                        # separately collected test sets differ in how much happens in them
                        st = _err(results, size, kind, test, h, metric + "_static")
                        cst = _err(results, size, kind, "canonical", h, metric + "_static")
                        out[f"{kind}@{size} {test}/canonical h={h} {metric} vs static"] = (
                            (_err(results, size, kind, test, h, metric) / st) / (can / cst)
                            if can and st and cst
                            else float("nan")
                        )
    small, mid = min(sizes), sorted(sizes)[1] if len(sizes) > 1 else min(sizes)
    for h in (1, 10):
        for metric in ("obj_pos_mm", "ee_pos_mm", "rot_deg"):
            eq = _err(results, small, "equivariant", "world_se3", h, metric)
            ml = _err(results, mid, "mlp", "world_se3", h, metric)
            out[f"eq@{small} / mlp@{mid} world_se3 h={h} {metric}"] = eq / ml if ml else float("nan")
    f = results["forward_ms"]
    for b in ("256", "1024"):
        out[f"forward eq/mlp batch {b}"] = f["equivariant"][b] / f["mlp"][b]
    return out


def print_tables(results, sizes) -> None:
    print("\nRollout errors (object position mm / end-effector mm / object orientation deg):")
    names = ["canonical", "canonical_moved", "task_rotated", "world_se3"]
    head = f"{'size':>6} {'model':11s} {'h':>2} " + " ".join(f"{t:>24s}" for t in names)
    print(head)
    for size in sizes:
        for kind in ("equivariant", "mlp"):
            for h in (1, 10):
                cells = []
                for test in names:
                    o, e, r = (
                        _err(results, size, kind, test, h, m) for m in ("obj_pos_mm", "ee_pos_mm", "rot_deg")
                    )
                    cells.append(f"{o:7.2f} /{e:7.2f} /{r:6.2f}")
                print(f"{size:>6} {kind:11s} {h:>2} " + " ".join(f"{c:>24s}" for c in cells))
    static = results["sizes"][str(sizes[0])]["equivariant"]["errors"]["canonical"]
    print(
        "  (nothing-moves baseline, canonical: "
        + ", ".join(
            f"h={h}: {static[str(h)].get('obj_pos_mm_static', float('nan')):.2f} / "
            f"{static[str(h)].get('ee_pos_mm_static', float('nan')):.2f} / "
            f"{static[str(h)].get('rot_deg_static', float('nan')):.2f}"
            for h in (1, 10)
        )
        + ")"
    )
    f = results["forward_ms"]
    print(
        "\nForward time of one model step (ms): "
        + ", ".join(f"{k} b{b}={v:.2f}" for k, d in f.items() for b, v in d.items())
    )
    print("\nMPC / policies:")
    for k, r in results["mpc"].items():
        print(
            f"  {k:44s} success {r['success_rate']:.2f}  final dist {r['final_distance_m'] * 100:.1f} cm  "
            f"{r['ms_per_step']:.1f} ms/step (p95 {r['ms_per_step_p95']:.1f})"
        )
    r = results["ratios"]
    print("\nRatio of error on moved data to canonical error (goal for the equivariant model: <= 1.1);")
    print("in brackets: the same with each error relative to its test set's nothing-moves error")
    tests = ("canonical_moved", "task_rotated", "world_se3")
    print(
        f"  {'model':18s} {'metric':10s} "
        + " ".join(f"{t + ' h=' + str(h):>20s}" for t in tests for h in (1, 10))
    )
    for size in sizes:
        for kind in ("equivariant", "mlp"):
            for metric in ("obj_pos_mm", "ee_pos_mm", "rot_deg"):
                cells = [
                    f"{r.get(f'{kind}@{size} {t}/canonical h={h} {metric}', float('nan')):.2f} "
                    f"({r.get(f'{kind}@{size} {t}/canonical h={h} {metric} vs static', float('nan')):.2f})"
                    for t in tests
                    for h in (1, 10)
                ]
                print(f"  {kind + '@' + str(size):18s} {metric:10s} " + " ".join(f"{c:>20s}" for c in cells))
    print("\nSample efficiency (goal < 1) and speed:")
    for k, v in r.items():
        if k.startswith("eq@") or k.startswith("forward"):
            print(f"  {k:52s} {v:6.2f}")


if __name__ == "__main__":
    main()
