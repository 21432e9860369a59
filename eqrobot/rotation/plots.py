"""Polar plot of a rotation sweep: success vs task-rotation angle, one curve and CI band per policy."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from eqrobot.rotation.results import RotationResult
from eqrobot.rotation.splits import JOINT1_LIMIT_DEG, SPLITS

RADIAL_LABEL_DEG = 172.5
"""Radial tick labels sit between the +165 and -180 bins, inside the shaded sector beyond joint 1
(no reachable bin there), on a white box so a crossing curve cannot hide them."""


def _was_run(result: RotationResult, split: str) -> bool:
    return any(not c.empty for c in result.cells(split=split))


def _angle_label(deg: float) -> str:
    """Angles as the tables write them: -180 ... +165."""
    deg = (deg + 180.0) % 360.0 - 180.0
    return f"{deg:+.0f}" if deg != -180.0 else "-180"


def _polar_panel(ax, result: RotationResult, split: str, colors, with_legend: bool) -> None:
    from matplotlib.patches import Patch

    ax.set_theta_zero_location("E")
    lim = np.radians(JOINT1_LIMIT_DEG)
    ax.fill_between(
        np.linspace(lim, 2 * np.pi - lim, 50),
        0,
        1.05,
        color="0.85",
        zorder=0,
        label=f"beyond joint 1 (|a| > {JOINT1_LIMIT_DEG:.0f} deg)",
    )
    for j, p in enumerate(result.policies):
        cells = sorted(result.cells(p, split), key=lambda r: r.angle_deg)
        th = np.radians([c.angle_deg for c in cells])
        r = np.array([np.nan if c.empty else c.success_rate for c in cells], dtype=float)
        lo = np.array([np.nan if c.empty else c.ci_low for c in cells], dtype=float)
        hi = np.array([np.nan if c.empty else c.ci_high for c in cells], dtype=float)
        # close the curve
        th, r, lo, hi = (np.append(a, a[0] + (2 * np.pi if a is th else 0)) for a in (th, r, lo, hi))
        color = colors[j % len(colors)]
        style = ("-", "--", ":", "-.")[j % 4]
        marker = ("o", "s", "^", "d")[j % 4]
        ax.plot(th, r, linestyle=style, marker=marker, color=color, label=p, markersize=3, linewidth=1.5)
        ax.fill_between(th, lo, hi, color=color, alpha=0.12)
        if any(c.empty for c in cells):
            ax.plot(
                [np.radians(c.angle_deg) for c in cells if c.empty],
                [0.0] * sum(c.empty for c in cells),
                "x",
                color=color,
            )
    ax.set_ylim(0, 1.05)
    ticks = np.arange(-180.0, 180.0, 45.0)
    ax.set_thetagrids(ticks % 360.0, [_angle_label(t) for t in ticks], fontsize=8)
    ax.set_rgrids([0.25, 0.5, 0.75, 1.0], ["0.25", "0.5", "0.75", "1"], angle=RADIAL_LABEL_DEG, fontsize=7)
    for label in ax.get_yticklabels():
        label.set_bbox({"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    ax.set_title(f"{split}: success vs task rotation (deg)", fontsize=10)
    if with_legend:
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Patch(facecolor="0.5", alpha=0.25, label="95% Wilson CI (band)"))
        labels.append("95% Wilson CI (band)")
        ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(-0.15, -0.25), fontsize=7)


def _bar_panel(ax, result: RotationResult, splits: list[str], colors) -> None:
    groups = [(s, c) for s in splits for c in result.cells(result.policies[0], s)]
    x = np.arange(len(groups))
    width = 0.8 / max(1, len(result.policies))
    for j, p in enumerate(result.policies):
        vals, errs = [], [[], []]
        for s, c0 in groups:
            c = next(r for r in result.rows if r.policy == p and r.split == s and r.bin == c0.bin)
            v = 0.0 if c.empty else c.success_rate
            vals.append(v)
            errs[0].append(0.0 if c.empty else v - c.ci_low)
            errs[1].append(0.0 if c.empty else c.ci_high - v)
        ax.bar(x + j * width, vals, width, yerr=errs, label=p, color=colors[j % len(colors)], capsize=2)
        for xi, (s, c0) in zip(x, groups, strict=False):
            c = next(r for r in result.rows if r.policy == p and r.split == s and r.bin == c0.bin)
            if c.empty:
                ax.text(xi + j * width, 0.02, "n/a", ha="center", fontsize=6, rotation=90)
    ax.set_xticks(x + width * (len(result.policies) - 1) / 2)
    ax.set_xticklabels([f"{s}\n{c.label}" for s, c in groups], fontsize=7, rotation=45)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (error bars: 95% Wilson CI)")
    ax.set_title("non-angular splits (so3-world: rotation angle)", fontsize=10)


def plot_polar(result: RotationResult, path: str | os.PathLike, title: str | None = None) -> Path:
    """Polar plot of success vs task-rotation angle, one curve (with 95% CI band) per policy.

    One panel per angular split that was run (``so2-sweep``, ``so2+shift``); the sector beyond Panda
    joint 1's range is shaded; bins without episodes are drawn as gaps (x at the centre). Non-angular
    splits that were run (``canonical``, ``so3-world``) share a bar chart panel next to them.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    run = [s for s in result.splits if _was_run(result, s)]
    angular = [s for s in run if s in SPLITS and SPLITS[s].angular]
    other = [s for s in run if s not in angular]
    n_panels = len(angular) + (1 if other else 0)
    if n_panels == 0:
        raise ValueError("nothing to plot: the result holds no split with episodes")
    fig = plt.figure(figsize=(5.2 * n_panels, 5.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, split in enumerate(angular):
        ax = fig.add_subplot(1, n_panels, k + 1, projection="polar")
        _polar_panel(ax, result, split, colors, with_legend=k == 0)
    if other:
        ax = fig.add_subplot(1, n_panels, n_panels)
        _bar_panel(ax, result, other, colors)
        if not angular:
            ax.legend(fontsize=7)
    fig.suptitle(title or f"{result.env_id}: rotation generalization", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
