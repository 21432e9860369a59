"""``build_report(sweep_dir)``: the tables and plots of a sweep, as markdown + JSON + PNG.

Writes into the sweep folder:

- ``report.md`` / ``report.json``: trial status (errors included), per group (env, agent, demos,
  budget, rotation range) the final success, steps to 90% success per seed, their median, a
  bootstrap interval of the mean over the seeds that got there and a Wilson interval of the
  fraction of seeds that did; equivariant/MLP ratios and verdicts; rotation retention per split
  (pooled over bins, per trial and averaged over seeds) and the headline check per trial;
- ``learning_curves.png``: success vs env steps, mean and min..max band over seeds;
- ``retention.png``: retention per split, mean over seeds with the min..max range.

Needs no Ray: it only reads the run folders.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from eqrobot.experiments import curves, retention
from eqrobot.experiments.sweep import LEDGER_FILE, ROTATION_FILE, ledger_entries, load_sweep_config
from eqrobot.experiments.trial import RUNS_DIR


def collect_runs(out: Path) -> tuple[list[dict], dict[str, dict]]:
    """Every trial's curve (see :mod:`eqrobot.experiments.curves`) and the ledger entries."""
    from eqrobot.rl.train import read_eval_csv

    config = load_sweep_config(out)
    trials = config.trials()
    ledger_path = out / LEDGER_FILE
    saved = json.loads(ledger_path.read_text()).get("trials", {}) if ledger_path.exists() else {}
    errors = {k: v["error"] for k, v in saved.items() if v.get("error")}
    entries = ledger_entries(trials, out / RUNS_DIR, errors)
    runs = []
    for t in trials:
        csv_path = out / RUNS_DIR / t.name / "eval.csv"
        rows = read_eval_csv(csv_path) if csv_path.exists() else []
        if entries[t.name]["status"] != "finished" or not rows:
            continue
        runs.append(
            {
                "trial": t.name,
                "env_id": t.env_id,
                "agent": t.agent.name,
                "policy": t.agent.policy,
                "seed": t.seed,
                "demos": t.demos,
                "steps": t.steps,
                "rotation_range_deg": t.rotation_range_deg,
                "steps_axis": [int(r["step"]) for r in rows],
                "success": [r["success_rate"] for r in rows],
                "train_steps_per_s": rows[-1]["train_steps_per_s"],
            }
        )
    return runs, entries


def merge_results(results: list):
    """One RotationResult holding the policies of several (same env, splits, episodes, seed)."""
    from eqrobot.rotation.results import RotationResult

    first = results[0]
    return RotationResult(
        env_id=first.env_id,
        policies=[p for r in results for p in r.policies],
        splits=list(first.splits),
        episodes_per_bin=first.episodes_per_bin,
        seed=first.seed,
        rows=[row for r in results for row in r.rows],
        episodes=[e for r in results for e in r.episodes],
        meta=dict(first.meta),
    )


def rotation_tables(out: Path) -> tuple[list[dict], list[dict]]:
    """(retention rows per trial, headline checks per trial) from the saved rotation.json files."""
    from eqrobot.rotation.results import RotationResult

    config = load_sweep_config(out)
    rows, checks = [], []
    for t in config.trials():
        path = out / RUNS_DIR / t.name / ROTATION_FILE
        if not path.exists():
            continue
        result = RotationResult.from_json(path)
        refs = []
        for ref in config.evaluation.references:
            ref_path = out / "references" / t.env_id.split("/")[-1] / ref / ROTATION_FILE
            if ref_path.exists():
                refs.append(RotationResult.from_json(ref_path))
        merged = merge_results([result, *refs])
        rows.append({"trial": t.name, "group": t.group, **retention_row_safe(merged, t.name)})
        if "canonical" in merged.splits:
            reference = "oracle" if "oracle" in merged.policies else None
            checks.append({"trial": t.name, **retention.headline_check(merged, t.name, reference=reference)})
    return rows, checks


def retention_row_safe(result, policy: str) -> dict:
    row = retention.retention_row(result, policy)
    row.pop("policy")
    return row


def _group_stats(rows: list[dict], include) -> list[dict]:
    """Per group (an agent's seeds), for each column ``include(column)`` accepts: the mean over the
    group's rows, its min, max and count; also ``seeds``, the most rows any column had."""
    out: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        g = out.setdefault(r["group"], {})
        for k, v in r.items():
            if k not in ("trial", "group") and include(k) and v is not None:
                g.setdefault(k, []).append(float(v))
    return [
        {"group": g, "seeds": max((len(v) for v in d.values()), default=0),
         **{k: {"mean": float(np.mean(v)), "min": min(v), "max": max(v), "n": len(v)} for k, v in d.items()}}
        for g, d in out.items()
    ]  # fmt: skip


def _group_retention(rows: list[dict]) -> list[dict]:
    """Each split's retention (success / canonical success) per group."""
    return _group_stats(rows, lambda k: k.endswith("retention"))


def _group_success(rows: list[dict]) -> list[dict]:
    """Each split's success per group."""
    return _group_stats(rows, lambda k: not k.endswith("retention"))


def _fmt_spread(v) -> str:
    return "n/a" if v is None else f"{v['mean']:.3g} [{v['min']:.3g}, {v['max']:.3g}]"


def _fmt(v, none: str = "n/a") -> str:
    if v is None:
        return none
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return ", ".join(f"s{k}: {_fmt(x, none)}" for k, x in v.items())
    return str(v)


def _none_text(col: str) -> str:
    """A missing steps-to-90 figure means the seed(s) never got there within the budget."""
    return "never" if col.startswith("steps_to_90") and not col.endswith("_95") else "n/a"


def markdown_table(rows: list[dict], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c), _none_text(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def plot_retention(groups: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    keys = sorted({k for g in groups for k in g if k not in ("group", "seeds")})
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(keys) * max(1, len(groups))), 3.6))
    width = 0.8 / max(1, len(groups))
    for j, g in enumerate(groups):
        x = np.arange(len(keys)) + j * width
        mean = [g[k]["mean"] if k in g else np.nan for k in keys]
        err = [
            [g[k]["mean"] - g[k]["min"] if k in g else 0 for k in keys],
            [g[k]["max"] - g[k]["mean"] if k in g else 0 for k in keys],
        ]
        ax.bar(x, mean, width, yerr=err, capsize=2, label=g["group"])
    ax.axhline(retention.RETENTION_GOAL, color="gray", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(keys)) + width * (len(groups) - 1) / 2)
    ax.set_xticklabels([k.replace(" retention", "") for k in keys], fontsize=8)
    ax.set_ylabel("success / canonical success")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build_report(out: str | os.PathLike) -> dict[str, Any]:
    """Write report.md, report.json and the PNGs into the sweep folder ``out``; return the JSON."""
    out = Path(out)
    config = load_sweep_config(out)
    runs, entries = collect_runs(out)
    summary = curves.summarize(runs) if runs else []
    rat = curves.ratios(summary)
    ret_rows, checks = rotation_tables(out)
    ret_groups = _group_retention(ret_rows)
    success_groups = _group_success(ret_rows)
    report = {
        "experiment": config.name,
        "description": config.description,
        "trials": entries,
        "summary": summary,
        "ratios": rat,
        "retention": ret_rows,
        "retention_by_group": ret_groups,
        "success_by_group": success_groups,
        "headline": checks,
        "runs": runs,
    }
    from eqrobot.rotation.results import jsonable

    (out / "report.json").write_text(json.dumps(jsonable(report), indent=1, allow_nan=False) + "\n")
    n_status = {s: sum(e["status"] == s for e in entries.values()) for s in ("finished", "error", "pending")}
    md = [f"# Sweep `{config.name}`", "", config.description, ""]
    md.append(f"Trials: {len(entries)} ({', '.join(f'{v} {k}' for k, v in n_status.items() if v)}).")
    for name, e in entries.items():
        if e["status"] == "error":
            md.append(f"- **{name} failed**: {e['error']}")
    if summary:
        plot_path = out / "learning_curves.png"
        curves.plot_curves(runs, plot_path)
        md += ["", "## Success vs env steps", "", f"![learning curves]({plot_path.name})", ""]
        md.append(
            markdown_table(
                summary,
                [
                    "env",
                    "agent",
                    "demos",
                    "rotation_range_deg",
                    "seeds",
                    "budget",
                    "final_success",
                    "steps_to_90_per_seed",
                    "steps_to_90_median",
                    "steps_to_90_mean_bootstrap_95",
                    "seeds_reaching_90",
                    "seeds_reaching_90_wilson_95",
                    "train_steps_per_s",
                ],
            )
        )
        md.append("")
        md.append(
            "Steps to 90%: first evaluation at >= 0.9 success; 'never' = not within the budget. "
            "Intervals: percentile bootstrap (95%) of the mean over the seeds that got there; "
            "Wilson (95%) of the fraction of seeds that got there."
        )
    if rat:
        md += ["", "## Equivariant vs MLP", "", markdown_table(rat, list(rat[0]))]
    if ret_rows:
        plot_path = out / "retention.png"
        plot_retention(ret_groups, plot_path)
        cols = ["trial"] + [k for k in ret_rows[0] if k not in ("trial", "group")]
        md += [
            "",
            "## Rotation retention (success on a split / canonical success)",
            "",
            f"![retention]({plot_path.name})",
            "",
            markdown_table(ret_rows, cols),
        ]
        splits = [k for k in ret_rows[0] if k not in ("trial", "group") and not k.endswith("retention")]
        md += ["", "## Success per split, by agent (mean over seeds [min, max])", ""]
        md += ["| group | seeds | " + " | ".join(splits) + " |", "|" + "---|" * (len(splits) + 2)]
        md += [
            f"| {g['group']} | {g['seeds']} | " + " | ".join(_fmt_spread(g.get(k)) for k in splits) + " |"
            for g in success_groups
        ]
    if checks:
        md += ["", "## Headline check (retention vs canonical)", ""]
        md += [retention.format_check({**c, "policy": c["trial"]}) for c in checks]
    (out / "report.md").write_text("\n".join(md) + "\n")
    return report
