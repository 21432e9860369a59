"""Fitting dynamics models with a multi-step rollout loss, and rollout error metrics."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from eqrobot.dynamics.data import Transitions
from eqrobot.dynamics.models import DynamicsModel
from eqrobot.geometry.so3 import rotation_angle


@dataclass
class FitResult:
    """What :func:`fit` did: per-evaluation history, best validation loss, steps, wall time."""

    history: list[dict] = field(default_factory=list)
    best_val: float = math.inf
    best_step: int = 0
    steps: int = 0
    seconds: float = 0.0
    train_windows: int = 0
    horizon: int = 1

    def as_dict(self) -> dict:
        return {
            "best_val": self.best_val,
            "best_step": self.best_step,
            "steps": self.steps,
            "seconds": self.seconds,
            "train_windows": self.train_windows,
            "horizon": self.horizon,
            "history": self.history,
        }


class _Windows:
    """Tensors of a data set and its valid rollout windows."""

    def __init__(self, data: Transitions, horizon: int, dtype):
        self.obs = torch.as_tensor(data.observation, dtype=dtype)
        self.act = torch.as_tensor(data.action, dtype=dtype)
        self.next = torch.as_tensor(data.next_observation, dtype=dtype)
        self.horizon = horizon
        self.starts = torch.as_tensor(data.window_starts(horizon))

    def __len__(self):
        return len(self.starts)

    def batch(self, idx: torch.Tensor, horizon: int):
        s = self.starts[idx]
        steps = s[:, None] + torch.arange(horizon)[None]  # (B, H)
        return self.obs[s], self.act[steps], self.next[steps]


def rollout_loss(
    model: DynamicsModel, x0: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean normalised squared state error over an open-loop rollout of ``actions`` (B, H, A)."""
    x = x0
    loss = x0.new_zeros(())
    H = actions.shape[1]
    for t in range(H):
        x = model.step(x, actions[:, t])
        loss = loss + model.state_error(x, targets[:, t]).mean()
    return loss / H


def fit(
    model: DynamicsModel,
    data: Transitions,
    horizon: int = 5,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 2e-3,
    weight_decay: float = 0.0,
    val_data: Transitions | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    time_budget: float | None = None,
    eval_every: int = 200,
    grad_clip: float = 1.0,
    warmup_fraction: float = 0.3,
    verbose: bool = False,
) -> FitResult:
    """Train ``model`` in place on ``data`` with an open-loop ``horizon``-step rollout loss.

    The rollout horizon grows linearly from 1 to ``horizon`` over the first ``warmup_fraction`` of
    the steps. Validation (``val_data``, else ``val_fraction`` of the episodes held out) every
    ``eval_every`` steps at the full horizon; the best weights are restored at the end. Stops
    early after ``time_budget`` seconds. Normalisation is set from the training data if the model
    has none yet. Returns a :class:`FitResult`.
    """
    if (
        data.spec.observation != model.geometry_spec.observation
        or data.spec.action != model.geometry_spec.action
    ):
        raise ValueError("data and model have different observation/action specs")
    t_start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    if val_data is None and val_fraction > 0 and len(data.episodes()) >= 4:
        val_data, train = data.split(val_fraction, seed=seed)  # (held-out fraction, rest)
    else:
        train = data
    if not bool(model.normalized):
        model.set_normalization(train)
    dtype = next(model.parameters()).dtype
    H = max(1, int(horizon))
    while H > 1 and len(train.window_starts(H)) == 0:
        H -= 1
    tr = _Windows(train, H, dtype)
    if len(tr) == 0:
        raise ValueError("no training transitions")
    va = _Windows(val_data, H, dtype) if val_data is not None and len(val_data.window_starts(H)) else None
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    result = FitResult(train_windows=len(tr), horizon=H)
    best_state = None
    val_idx = None
    if va is not None:
        val_idx = torch.randperm(len(va), generator=gen)[: min(len(va), 2048)]

    def validate() -> float:
        if va is None:
            return math.nan
        model.eval()
        with torch.no_grad():
            losses = []
            for chunk in val_idx.split(512):
                x0, a, y = va.batch(chunk, H)
                losses.append(rollout_loss(model, x0, a, y).item() * len(chunk))
        model.train()
        return float(sum(losses) / len(val_idx))

    model.train()
    running = 0.0
    step = 0
    for step in range(1, steps + 1):
        h = H if warmup_fraction <= 0 else max(1, min(H, 1 + int((H - 1) * step / (warmup_fraction * steps))))
        idx = torch.randint(len(tr), (min(batch_size, len(tr)),), generator=gen)
        x0, a, y = tr.batch(idx, h)
        loss = rollout_loss(model, x0, a, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        sched.step()
        running = 0.95 * running + 0.05 * loss.item() if step > 1 else loss.item()
        out_of_time = time_budget is not None and time.perf_counter() - t_start > time_budget
        if step % eval_every == 0 or step == steps or out_of_time:
            val = validate()
            rec = {
                "step": step,
                "train_loss": running,
                "val_loss": val,
                "horizon": h,
                "seconds": time.perf_counter() - t_start,
            }
            result.history.append(rec)
            if verbose:
                print(f"[fit {model.config.kind}] step {step} h={h} train {running:.4g} val {val:.4g}")
            score = val if not math.isnan(val) else running
            if h == H and score < result.best_val:
                result.best_val, result.best_step = score, step
                best_state = copy.deepcopy(model.state_dict())
        if out_of_time:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.steps = step
    result.seconds = time.perf_counter() - t_start
    return result


@torch.no_grad()
def rollout_errors(
    model, data: Transitions, horizons=(1, 10), max_windows: int = 2000, seed: int = 0
) -> dict:
    """Open-loop prediction errors at the given horizons on ``data``.

    For each horizon ``h``: ``obj_pos_mm`` (mean object position error after ``h`` steps, mm),
    ``ee_pos_mm``, ``rot_deg`` (mean object orientation geodesic error, degrees), and the same for
    the trivial "nothing moves" prediction (``*_static``) for scale. ``model`` is anything with
    ``step(obs, action)`` and a ``layout`` (a :class:`DynamicsModel`), or ``None`` for the static
    prediction only.
    """
    spec = data.spec.observation
    out = {}
    rng = np.random.default_rng(seed)
    dtype = next(model.parameters()).dtype if model is not None else torch.float64
    obj_pts = [f for f in spec.by_role("object") if f.kind == "point"]
    frames = [f for f in spec.fields if f.kind == "frame"]
    ee = spec["ee_position"] if "ee_position" in spec else None
    for h in horizons:
        starts = data.window_starts(h)
        if len(starts) == 0:
            out[h] = {"windows": 0}
            continue
        if len(starts) > max_windows:
            starts = np.sort(rng.choice(starts, max_windows, replace=False))
        steps = starts[:, None] + np.arange(h)[None]
        x0 = torch.as_tensor(data.observation[starts], dtype=dtype)
        acts = torch.as_tensor(data.action[steps], dtype=dtype)
        true = torch.as_tensor(data.next_observation[starts + h - 1], dtype=torch.float64)
        preds = {"static": x0.to(torch.float64)}
        if model is not None:
            x = x0
            for t in range(h):
                x = model.step(x, acts[:, t])
            preds["model"] = x.to(torch.float64)
        rec = {"windows": int(len(starts))}
        for name, pred in preds.items():
            sfx = "" if name == "model" else "_static"
            if obj_pts:
                e = torch.stack([(pred[:, f.slice] - true[:, f.slice]).norm(dim=-1) for f in obj_pts], 1)
                rec[f"obj_pos_mm{sfx}"] = float(e.mean() * 1e3)
            if ee is not None:
                rec[f"ee_pos_mm{sfx}"] = float(
                    (pred[:, ee.slice] - true[:, ee.slice]).norm(dim=-1).mean() * 1e3
                )
            if frames:
                angs = []
                for f in frames:
                    Mp = pred[:, f.slice].reshape(-1, 3, 3)
                    Mt = true[:, f.slice].reshape(-1, 3, 3)
                    angs.append(rotation_angle(Mp.transpose(-1, -2) @ Mt))
                rec[f"rot_deg{sfx}"] = float(torch.stack(angs, 1).mean() * 180 / math.pi)
        out[h] = rec
    return out


# --------------------------------------------------------------------------------------------
# fitting a checkpoint from a transitions file (what `eqrobot dynamics fit` runs)
# --------------------------------------------------------------------------------------------
@dataclass
class FitConfig:
    """How to fit a dynamics model from a transitions file (the ``eqrobot dynamics fit`` flags)."""

    kind: Literal["equivariant", "mlp"] = "equivariant"
    """``equivariant`` or ``mlp`` (the MLP matches the equivariant model's parameter counts)."""
    horizon: int = 5
    """Rollout horizon of the training loss (control steps)."""
    steps: int = 3000
    """Gradient steps."""
    batch_size: int = 256
    """Windows per gradient step."""
    lr: float = 2e-3
    """Adam learning rate."""
    hidden: int = 64
    """Hidden width of every net."""
    layers: int = 2
    """Hidden layers of every net."""
    vector_channels: int = 16
    """Vector channels of the equivariant nets."""
    val_fraction: float = 0.1
    """Fraction of episodes held out for validation."""
    max_transitions: int | None = None
    """Keep only the first this many transitions (whole episodes first)."""
    match: str | None = None
    """(mlp) match the parameter counts of this equivariant checkpoint."""
    seed: int = 0
    """Seed of the initialisation and of the batches."""
    time_budget: float | None = None
    """Stop after this many seconds."""

    def __post_init__(self) -> None:
        if self.kind not in ("equivariant", "mlp"):
            raise ValueError(f"kind must be 'equivariant' or 'mlp', got {self.kind!r}")
        for name in ("horizon", "steps", "batch_size", "hidden", "layers", "vector_channels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.max_transitions is not None and self.max_transitions < 1:
            raise ValueError(f"max_transitions must be >= 1, got {self.max_transitions}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(f"time_budget must be > 0 seconds, got {self.time_budget}")
        if self.match is not None and self.kind != "mlp":
            raise ValueError("match only applies to kind='mlp'")


def fit_to_checkpoint(data, out, config: FitConfig | None = None, verbose: bool = False) -> dict:
    """Train a dynamics model on ``data`` (a :class:`Transitions` or an ``.npz`` path) and save it
    to ``out`` (``.pt``). Returns a JSON-friendly dict: path, kind, params and the fit summary."""
    from eqrobot.dynamics.checkpoint import load_dynamics_model, save_dynamics_model
    from eqrobot.dynamics.models import make_model, matched_mlp

    c = config or FitConfig()
    if not isinstance(data, Transitions):
        data = Transitions.load(data)
    if c.max_transitions is not None:
        data = data.head(int(c.max_transitions))
    torch.manual_seed(c.seed)
    net = dict(hidden=c.hidden, layers=c.layers, vector_channels=c.vector_channels)
    if c.kind == "equivariant":
        model = make_model(data.spec, "equivariant", data=data, **net)
    else:
        ref = (
            load_dynamics_model(c.match, data.spec)
            if c.match is not None
            else make_model(data.spec, data=data, **net)
        )
        model = matched_mlp(ref, data)
    res = fit(
        model,
        data,
        horizon=c.horizon,
        steps=c.steps,
        batch_size=c.batch_size,
        lr=c.lr,
        val_fraction=c.val_fraction,
        seed=c.seed,
        time_budget=c.time_budget,
        verbose=verbose,
    )
    summary = {k: v for k, v in res.as_dict().items() if k != "history"}
    path = save_dynamics_model(model, out, extra={"env_id": data.meta.get("env_id"), "fit": summary})
    return {"path": str(path), "kind": c.kind, "params": model.n_params(), **res.as_dict()}
