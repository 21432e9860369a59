"""Same learning behaviour? SAC+HER learning curves of the old code vs the new, same seeds and preset.

Usage: python scripts/compare_learning.py [--env Reach] [--policy equivariant] [--seeds 0 1]
           [--steps 3000] [--demos 0] [--eval-freq 500] [--eval-episodes 10]
           [--old-rev ca75a27 | --old-src DIR]
           [--out docs/learning_old_vs_new.json] [--png docs/learning_old_vs_new.png]

Trains ``eqrobot.rl.train.train`` with the env's preset (``--steps`` overrides the budget) once per
seed with the old code (a ``git archive`` of ``eqrobot/`` at ``--old-rev``, default ca75a27, the
commit before the training speed-ups of issue 14) and once with this checkout's, each run in its
own process whose ``PYTHONPATH`` selects the code. The speed-ups change float rounding (fused Adam,
batched critics), so curves are not bit-identical; the question is whether the difference between
old and new is within the spread between seeds. Verdict: the new mean area under the success
curve lies within the old seeds' range widened by that range (with two seeds the range is the only
spread estimate there is), and the same holds with old and new swapped. Writes JSON + one plot.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OLD_REV = "ca75a27"


def worker(args: argparse.Namespace) -> None:
    from eqrobot.rl.config import TrainConfig
    from eqrobot.rl.train import train

    cfg = TrainConfig(
        env_id=f"eqrobot/{args.env}-v0",
        policy=args.policy,
        steps=args.steps,
        seed=args.seed,
        demos=args.demos,
        eval_freq=args.eval_freq,
        eval_episodes=args.eval_episodes,
        out=args.run_out,
        run_name=args.run_name,
        save_replay_buffer=False,
        progress_bar=False,
    )
    run_dir = train(cfg)
    print("RUN_DIR " + str(run_dir))


def read_curve(run_dir: Path) -> list[tuple[int, float]]:
    with open(run_dir / "eval.csv", newline="") as f:
        return [(int(float(r["step"])), float(r["success_rate"])) for r in csv.DictReader(f)]


def export_old(rev: str, dest: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "eqrobot"], capture_output=True, check=True
    )
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def run_one(src: Path, args: argparse.Namespace, seed: int, version: str, runs: Path) -> list:
    argv = ["--worker", "--env", args.env, "--policy", args.policy, "--steps", str(args.steps)]
    argv += ["--demos", str(args.demos)]
    argv += [
        "--seed",
        str(seed),
        "--eval-freq",
        str(args.eval_freq),
        "--eval-episodes",
        str(args.eval_episodes),
    ]
    argv += ["--run-out", str(runs), "--run-name", f"{version}-s{seed}"]
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-P", str(Path(__file__).resolve()), *argv], env=env, capture_output=True, text=True
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RUN_DIR "):
            return read_curve(Path(line[len("RUN_DIR ") :]))
    raise RuntimeError(f"{version} seed {seed} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def area(curve: list[tuple[int, float]]) -> float:
    """Mean success over the evaluations (the area under the curve per evaluation)."""
    return sum(s for _, s in curve) / len(curve)


def verdict(areas: dict[str, list[float]]) -> dict:
    def within(a: str, b: str) -> bool:
        lo, hi = min(areas[b]), max(areas[b])
        spread = hi - lo
        mean_a = sum(areas[a]) / len(areas[a])
        return lo - spread - 1e-9 <= mean_a <= hi + spread + 1e-9

    return {
        "new_within_old_spread": within("new", "old"),
        "old_within_new_spread": within("old", "new"),
        "rule": "mean AUC of one version within [min - range, max + range] of the other's seeds",
    }


def plot(result: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for version, color, style in (("old", "tab:gray", "--"), ("new", "tab:blue", "-")):
        for i, (seed, curve) in enumerate(result["curves"][version].items()):
            steps, success = zip(*curve, strict=True)
            label = f"{version} code" if i == 0 else None
            ax.plot(steps, success, color=color, alpha=0.8, marker="o", ms=3, label=label, linestyle=style)
            ax.annotate(f"s{seed}", (steps[-1], success[-1]), color=color, fontsize=7)
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval success rate")
    ax.set_ylim(-0.05, 1.05)
    ok = result["verdict"]["new_within_old_spread"] and result["verdict"]["old_within_new_spread"]
    ax.set_title(f"{result['env']} {result['policy']} SAC+HER: old vs new code "
                 f"({'within' if ok else 'NOT within'} seed spread)", fontsize=9)  # fmt: skip
    ax.legend()
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="Reach")
    p.add_argument("--policy", default="equivariant", choices=["equivariant", "mlp"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--demos", type=int, default=0, help="oracle episodes put in the buffer first (Push)")
    p.add_argument("--eval-freq", type=int, default=500)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--old-rev", default=DEFAULT_OLD_REV)
    p.add_argument("--old-src", default=None, help="folder holding an old eqrobot/ (instead of --old-rev)")
    p.add_argument("--out", default="docs/learning_old_vs_new.json")
    p.add_argument("--png", default="docs/learning_old_vs_new.png")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    p.add_argument("--run-out", help=argparse.SUPPRESS)
    p.add_argument("--run-name", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return {}
    curves: dict[str, dict[int, list]] = {"old": {}, "new": {}}
    with tempfile.TemporaryDirectory(prefix="compare_learning_") as tmp:
        old_src = Path(args.old_src) if args.old_src else export_old(args.old_rev, Path(tmp) / "old")
        runs = Path(tmp) / "runs"
        for seed in args.seeds:  # interleaved, so load hits both versions alike
            for version, src in (("old", old_src), ("new", ROOT)):
                curves[version][seed] = run_one(src, args, seed, version, runs)
                print(f"{version} seed {seed}: " + " ".join(f"{s}:{r:.2f}" for s, r in curves[version][seed]))
    areas = {v: [area(c) for c in curves[v].values()] for v in curves}
    result = {
        "env": args.env,
        "policy": args.policy,
        "seeds": args.seeds,
        "steps": args.steps,
        "demos": args.demos,
        "old_rev": None if args.old_src else args.old_rev,
        "curves": curves,
        "mean_success_over_evals": areas,
        "final_success": {v: [c[-1][1] for c in curves[v].values()] for v in curves},
        "verdict": verdict(areas),
    }
    print(f"mean success over evaluations: old {areas['old']}, new {areas['new']}")
    print(f"verdict: {result['verdict']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    plot(result, Path(args.png))
    print(f"wrote {args.out} and {args.png}")
    return result


if __name__ == "__main__":
    main()
