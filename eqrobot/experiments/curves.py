"""Learning-curve statistics over seeds: steps to a success level, their intervals, eq/MLP verdicts.

A *run* here is one trial's curve as a dict: ``env_id, agent, policy, seed, demos, steps`` (budget),
``steps_axis`` and ``success`` (the periodic evaluations) and ``train_steps_per_s``. Runs with the
same (env, agent, demos, budget, rotation range) form a group, summarized over its seeds.
"""

from __future__ import annotations

import math

import numpy as np

LEVEL = 0.9
"""The success level the sample-efficiency claims are stated at."""


def first_step_at(steps: list[int], success: list[float], level: float = LEVEL) -> int | None:
    """The first evaluation step whose success is >= ``level`` (None: never within the run)."""
    for s, v in zip(steps, success, strict=True):
        if v >= level:
            return s
    return None


def median_with_never(hits: list[int | None]) -> float | None:
    """Median over seeds where a seed that never got there counts as beyond the budget (None if the
    median itself is "never")."""
    vals = sorted(math.inf if h is None else h for h in hits)
    if not vals:
        return None
    n = len(vals)
    med = vals[n // 2] if n % 2 else 0.5 * (vals[n // 2 - 1] + vals[n // 2])
    return None if math.isinf(med) else float(med)


def bootstrap_mean_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of the mean (scipy.stats.bootstrap; None for < 2 values)."""
    if len(values) < 2:
        return None
    if len(set(values)) == 1:
        return (float(values[0]), float(values[0]))
    import inspect

    from scipy.stats import bootstrap

    # scipy >= 1.15 names the generator `rng`; older versions `random_state`
    seeded = {
        "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state": np.random.default_rng(
            0
        )
    }
    res = bootstrap(
        (np.asarray(values, dtype=float),),
        np.mean,
        confidence_level=confidence,
        n_resamples=2000,
        method="percentile",
        **seeded,
    )
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def group_key(run: dict) -> tuple:
    return (
        run["env_id"],
        run.get("agent", run["policy"]),
        run["demos"],
        run["steps"],
        run.get("rotation_range_deg", 0.0),
    )


def _order(key: tuple, env_order: dict) -> tuple:
    env_id, agent, demos, budget, rot = key
    return (env_order[env_id], demos, budget, rot, str(agent))


def summarize(runs: list[dict], level: float = LEVEL) -> list[dict]:
    """One row per group: seeds, final success, steps to ``level`` per seed, median, intervals."""
    from eqrobot.rotation.results import wilson_interval

    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault(group_key(r), []).append(r)
    env_order = {e: i for i, e in enumerate(dict.fromkeys(r["env_id"] for r in runs))}
    rows = []
    for key, members in sorted(groups.items(), key=lambda kv: _order(kv[0], env_order)):
        env_id, agent, demos, budget, rot = key
        members = sorted(members, key=lambda r: r["seed"])
        hits = [first_step_at(r["steps_axis"], r["success"], level) for r in members]
        reached = [h for h in hits if h is not None]
        n = min(len(r["success"]) for r in members)
        mean_curve = np.mean([r["success"][:n] for r in members], axis=0) if n else np.array([])
        lo, hi = wilson_interval(len(reached), len(members))
        ci = bootstrap_mean_ci([float(h) for h in reached])
        rows.append(
            {
                "env": env_id.split("/")[-1],
                "agent": agent,
                "policy": members[0]["policy"],
                "demos": demos,
                "rotation_range_deg": rot,
                "seeds": len(members),
                "budget": budget,
                "final_success": float(np.mean([r["success"][-1] for r in members])) if n else None,
                "final_success_std": float(np.std([r["success"][-1] for r in members])) if n else None,
                "steps_to_90_per_seed": {str(r["seed"]): h for r, h in zip(members, hits, strict=True)},
                "seeds_reaching_90": len(reached),
                "seeds_reaching_90_wilson_95": [lo, hi],
                # median over seeds; a seed that never gets there counts as "beyond the budget"
                "steps_to_90_median": median_with_never(hits),
                "steps_to_90_mean_of_reached": float(np.mean(reached)) if reached else None,
                "steps_to_90_mean_bootstrap_95": None if ci is None else list(ci),
                "mean_curve_steps_to_90": first_step_at(
                    members[0]["steps_axis"][:n], list(mean_curve), level
                ),
                "train_steps_per_s": float(np.nanmean([r["train_steps_per_s"] for r in members])),
            }
        )
    return rows


def ratios(rows: list[dict]) -> list[dict]:
    """Equivariant vs MLP per (env, demos): throughput ratio (goal >= 0.7) and steps-to-90 ratio
    (goal <= 1/3, or the MLP never gets there)."""
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


def plot_curves(runs: list[dict], path, level: float = LEVEL) -> None:
    """Success vs env steps, one panel per (env, demos, rotation), one line (mean) and band
    (min..max over seeds) per agent."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys((r["env_id"], r["demos"], r.get("rotation_range_deg", 0.0)) for r in runs))
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.5 * max(1, len(panels)), 3.6), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    agents = list(dict.fromkeys(r.get("agent", r["policy"]) for r in runs))
    for ax, (env_id, demos, rot) in zip(axes[0], panels, strict=False):
        for j, agent in enumerate(agents):
            sel = [
                r
                for r in runs
                if (r["env_id"], r["demos"], r.get("rotation_range_deg", 0.0), r.get("agent", r["policy"]))
                == (env_id, demos, rot, agent)
            ]
            if not sel or not min(len(r["success"]) for r in sel):
                continue
            n = min(len(r["success"]) for r in sel)
            x = np.array(sel[0]["steps_axis"][:n])
            y = np.array([r["success"][:n] for r in sel])
            c = colors[j % len(colors)]
            ax.plot(x, y.mean(0), color=c, label=f"{agent} ({len(sel)} seeds)")
            ax.fill_between(x, y.min(0), y.max(0), color=c, alpha=0.2)
        ax.axhline(level, color="gray", lw=0.8, ls="--")
        ax.set_title(
            f"{env_id.split('/')[-1]}, demos={demos}" + (f", rot +-{rot:g}" if rot else ""), fontsize=9
        )
        ax.set_xlabel("env steps (demo steps not counted)")
        ax.set_ylabel("eval success rate")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
