"""Rotation-sweep results: per-bin cells with 95% Wilson intervals, tables (Markdown, CSV) and JSON.

:class:`RotationResult` holds one :class:`BinResult` per (policy, split, bin) plus every episode's
record; ``to_markdown``/``to_csv``/``to_json`` write it out, ``RotationResult.from_json`` reads it
back, ``plot_polar`` draws it (:mod:`eqrobot.rotation.plots`).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from eqrobot.files import atomic_write_bytes
from eqrobot.rotation.splits import SPLITS, Split


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (scipy's ``binomtest``); ``(nan, nan)`` for n = 0."""
    if n <= 0:
        return (math.nan, math.nan)
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


@dataclass
class BinResult:
    """One (policy, split, bin) cell of a rotation table."""

    policy: str
    split: str
    bin: int
    label: str
    angle_deg: float | None
    reachable: bool
    episodes: int
    successes: int
    success_rate: float | None
    """None (never 0) when no episode reached this bin."""
    ci_low: float | None
    ci_high: float | None
    mean_return: float | None
    std_return: float | None
    note: str = ""

    @property
    def empty(self) -> bool:
        return self.episodes == 0

    def cell(self) -> str:
        """Markdown cell text: ``0.95 [0.76, 0.99]`` or a clearly marked empty cell."""
        if self.empty:
            return "**no episodes**" + (" (env refused)" if self.note.startswith("env refused") else "")
        return f"{self.success_rate:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}]"


def summarize_bins(policy: str, split: Split, records: list[dict]) -> list[BinResult]:
    """One :class:`BinResult` per bin of ``split`` from episode records (``bin``, ``success``, ``return``)."""
    rows = []
    for b in split.bins:
        recs = [r for r in records if r["bin"] == b.index]
        n = len(recs)
        k = int(sum(bool(r["success"]) for r in recs))
        rets = np.array([r["return"] for r in recs], dtype=float)
        lo, hi = wilson_interval(k, n)
        rows.append(
            BinResult(
                policy=policy,
                split=split.name,
                bin=b.index,
                label=b.label,
                angle_deg=b.angle_deg,
                reachable=b.reachable,
                episodes=n,
                successes=k,
                success_rate=(k / n) if n else None,
                ci_low=lo if n else None,
                ci_high=hi if n else None,
                mean_return=float(rets.mean()) if n else None,
                std_return=float(rets.std()) if n else None,
                note="" if n else "no episode reached this bin",
            )
        )
    return rows


@dataclass
class RotationResult:
    """Per-bin success of every policy on every evaluated split (plus the raw episodes)."""

    env_id: str
    policies: list[str]
    splits: list[str]
    episodes_per_bin: int
    seed: int
    rows: list[BinResult]
    episodes: list[dict] = field(default_factory=list)
    """One record per episode: policy, split, bin, episode, seed, success, return, length, options."""
    meta: dict = field(default_factory=dict)

    # --- queries ------------------------------------------------------------------------------
    def cells(self, policy: str | None = None, split: str | None = None) -> list[BinResult]:
        return [
            r
            for r in self.rows
            if (policy is None or r.policy == policy) and (split is None or r.split == split)
        ]

    def success(self, policy: str, split: str) -> dict[str, float | None]:
        """Bin label -> success rate (None for a bin no episode reached)."""
        return {r.label: r.success_rate for r in self.cells(policy, split)}

    def overall(self, policy: str, split: str, reachable_only: bool = True) -> BinResult:
        """All episodes of a split pooled into one cell (reachable bins only by default)."""
        recs = [
            e
            for e in self.episodes
            if e["policy"] == policy and e["split"] == split and (e["reachable"] or not reachable_only)
        ]
        n = len(recs)
        k = int(sum(bool(e["success"]) for e in recs))
        rets = np.array([e["return"] for e in recs], dtype=float)
        lo, hi = wilson_interval(k, n)
        return BinResult(
            policy,
            split,
            -1,
            "all",
            None,
            True,
            n,
            k,
            k / n if n else None,
            lo if n else None,
            hi if n else None,
            float(rets.mean()) if n else None,
            float(rets.std()) if n else None,
            "" if n else "no episodes",
        )

    def retention(self, policy: str, split: str, reference: str = "canonical") -> dict[str, float | None]:
        """Bin label -> success rate / the policy's pooled success on ``reference``.

        None where the bin or the reference has no episodes or the reference success is 0.
        """
        ref = self.overall(policy, reference, reachable_only=False).success_rate
        out = {}
        for r in self.cells(policy, split):
            out[r.label] = None if (r.success_rate is None or not ref) else r.success_rate / ref
        return out

    # --- outputs ------------------------------------------------------------------------------
    def to_markdown(self, returns: bool = True) -> str:
        """One table per split: rows are bins, columns are policies (success [95% CI], mean return)."""
        lines = [
            f"Rotation generalization on `{self.env_id}` ({self.episodes_per_bin} episodes per bin, "
            f"seed {self.seed}). Success rate [95% Wilson CI]"
            + ("; mean return in parentheses." if returns else ".")
        ]
        for split in self.splits:
            s = SPLITS.get(split)
            lines.append("")
            lines.append(f"### {split}" + (f": {s.description}" if s is not None else ""))
            lines.append("")
            lines.append("| bin | " + " | ".join(self.policies) + " |")
            lines.append("|---|" + "---|" * len(self.policies))
            bins = self.cells(self.policies[0], split) if self.policies else []
            for b in bins:
                label = b.label + ("" if b.reachable else " (unreachable)")
                cells = []
                for p in self.policies:
                    c = next(r for r in self.rows if r.policy == p and r.split == split and r.bin == b.bin)
                    text = c.cell()
                    if returns and not c.empty:
                        text += f" ({c.mean_return:.1f})"
                    cells.append(text)
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
            notes = sorted({f"{r.label}: {r.note}" for r in self.cells(split=split) if r.empty and r.note})
            if len(bins) > 1:
                cells = []
                for p in self.policies:
                    c = self.overall(p, split)
                    cells.append(c.cell())
                lines.append("| **all reachable** | " + " | ".join(cells) + " |")
            for note in notes:
                lines.append(f"\nBin {note}.")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {
            "env_id": self.env_id,
            "policies": list(self.policies),
            "splits": list(self.splits),
            "episodes_per_bin": self.episodes_per_bin,
            "seed": self.seed,
            "rows": [asdict(r) for r in self.rows],
            "episodes": self.episodes,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict) -> RotationResult:
        return cls(
            env_id=d["env_id"],
            policies=list(d["policies"]),
            splits=list(d["splits"]),
            episodes_per_bin=int(d["episodes_per_bin"]),
            seed=int(d["seed"]),
            rows=[BinResult(**r) for r in d["rows"]],
            episodes=list(d.get("episodes", [])),
            meta=dict(d.get("meta", {})),
        )

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write the whole result (cells, raw episodes, meta); NaN-free, so any JSON parser reads it."""
        text = json.dumps(jsonable(self.to_dict()), indent=1, allow_nan=False)
        return atomic_write_bytes(path, text.encode())

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> RotationResult:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_csv(self, path: str | os.PathLike) -> Path:
        """One line per (policy, split, bin); empty cells have blank rates and ``episodes`` = 0."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = list(BinResult.__dataclass_fields__)
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["env_id", *names])
            w.writeheader()
            for r in self.rows:
                d = asdict(r)
                w.writerow({"env_id": self.env_id, **{k: ("" if v is None else v) for k, v in d.items()}})
        return path

    def plot_polar(self, path: str | os.PathLike, title: str | None = None) -> Path:
        """:func:`eqrobot.rotation.plots.plot_polar` of this result."""
        from eqrobot.rotation.plots import plot_polar

        return plot_polar(self, path, title)


def jsonable(x):
    """``x`` with numpy values as plain Python ones and non-finite floats as None (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x
