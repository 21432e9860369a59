"""The tuned-MLP search table: rank the MLP configurations of a search sweep, name the winner.

Reads a finished (or partly finished) ``eqrobot sweep`` folder, e.g. the one of
``experiments/baselines_push.toml``, ranks its MLP agents without augmentation by
:func:`eqrobot.experiments.search.rank_agents` (mean success over the last 5 evaluations, averaged
over seeds) and prints a markdown table, the reference agents of the same sweep (equivariant, ...)
scored the same way for scale, and the winner, which becomes the ``mlp-tuned`` preset
(``eqrobot/rl/presets.py``). Writes ``--out`` (JSON).

    python scripts/tuned_mlp_search.py runs/sweeps/baselines_push --out docs/baselines_push/search.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eqrobot.experiments.report import collect_runs
from eqrobot.experiments.search import SCORE_WINDOW, rank_agents
from eqrobot.experiments.sweep import load_sweep_config


def fmt_steps(v) -> str:
    return "never" if v is None else f"{int(v):,}"


def table(rows: list[dict]) -> str:
    head = (
        "| rank | agent | algo | net | batch | lr | seeds | score per seed | score | final | "
        "steps to 90% per seed | env steps/s |\n|" + "---|" * 12
    )
    lines = [head]
    for r in rows:
        hp, pk = r["hyperparams"], r["policy_kwargs"]
        lines.append(
            f"| {r['rank']} | {r['agent']} | {r['algo']} | {pk.get('net_arch', 'preset')} | "
            f"{hp.get('batch_size', 'preset')} | {hp.get('learning_rate', 'preset')} | {len(r['seeds'])} | "
            f"{' / '.join(f'{s:.2f}' for s in r['score_per_seed'])} | {r['score']:.3f} | "
            f"{r['final_success']:.2f} | {' / '.join(fmt_steps(h) for h in r['steps_to_90_per_seed'])} | "
            f"{r['train_steps_per_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", type=Path, help="an eqrobot sweep output folder")
    p.add_argument("--window", type=int, default=SCORE_WINDOW, help="evaluations averaged per trial")
    p.add_argument(
        "--min-seeds",
        type=int,
        default=2,
        help="configurations with fewer finished seeds are listed, not ranked",
    )
    p.add_argument("--out", type=Path, help="JSON file to write")
    a = p.parse_args(argv)
    config = load_sweep_config(a.sweep)
    runs, entries = collect_runs(a.sweep)
    searched = {x.name: x for x in config.agents if x.policy == "mlp" and x.augment is None}
    others = {x.name: x for x in config.agents if x.name not in searched}
    ranked = rank_agents(runs, searched, a.window)
    complete = [r for r in ranked if len(r["seeds"]) >= a.min_seeds]
    short = [r for r in ranked if len(r["seeds"]) < a.min_seeds]
    for rank, r in enumerate(complete, 1):
        r["rank"] = rank
    for r in short:
        r["rank"] = "-"
    references = rank_agents(runs, others, a.window)
    for r in references:
        r["rank"] = "ref"
    pending = sorted(k for k, v in entries.items() if v["status"] != "finished")
    print(
        f"## MLP search: {len(searched)} configurations, "
        f"score = mean success over the last {a.window} evaluations\n"
    )
    print(table(complete + short))
    print(f"\n## Other agents of the sweep, scored the same way\n\n{table(references)}")
    if short:
        print(
            f"\nnot ranked (fewer than {a.min_seeds} finished seeds): {', '.join(r['agent'] for r in short)}"
        )
    if pending:
        print(f"unfinished trials: {len(pending)}")
    winner = complete[0] if complete else None
    print(f"\nwinner: {winner['agent'] if winner else 'none (no configuration has enough seeds)'}")
    result = {
        "sweep": str(a.sweep),
        "window": a.window,
        "min_seeds": a.min_seeds,
        "ranked": complete,
        "not_ranked": short,
        "references": references,
        "unfinished_trials": pending,
        "winner": winner,
    }
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if winner else 1


if __name__ == "__main__":
    sys.exit(main())
