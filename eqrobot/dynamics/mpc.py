"""Sampling-based model-predictive control (MPPI with optional CEM-style refinement) on a learned model.

:class:`MPPIPlanner` acts through the ordinary policy interface
(``predict(obs, deterministic=True) -> (action, None)``), so ``eqrobot evaluate/rotation`` and
SB3-style loops can run it like any trained policy.

Equivariance (shared/DESIGN.md section 2): the planner commutes with world rotations and
translations when the model does:

- the cost (:class:`GoalCost`) only uses distances and angles, so it is invariant;
- displacement samples are isotropic Gaussians, norm-limited to the unit ball (radially, never per
  component); the gripper scalar is clipped (a scalar clip is invariant);
- for a fixed seed the *draws* themselves co-rotate with the scene: noise is drawn in a frame built
  from the observation (gravity, object-to-goal, ee-to-object, ...; :func:`observation_frame`)
  and turned into world coordinates. An isotropic Gaussian in any orthonormal frame is the same
  distribution, so this changes nothing statistically, but it makes ``planner(g . obs) ==
  g . planner(obs)`` hold sample for sample (tested), not just in distribution;
- MPPI weights are a softmax of invariant costs; the update is a weighted mean of actions; the
  refinement shrinks one isotropic std per vector field.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from eqrobot.geometry.spec import GeometrySpec


def _limit_vectors(u: torch.Tensor, vec_slices, scalar_slices) -> torch.Tensor:
    out = u.clone()
    for sl in vec_slices:
        v = u[..., sl]
        out[..., sl] = v / torch.clamp(v.norm(dim=-1, keepdim=True), min=1.0)
    for sl in scalar_slices:
        out[..., sl] = torch.clamp(u[..., sl], -1.0, 1.0)
    return out


def _goal_field_map(spec: GeometrySpec) -> list[tuple]:
    """For each achieved-goal field, the observation field that holds the same quantity."""
    obs = spec.observation
    pairs = []
    for f, g in zip(spec.achieved_goal.fields, spec.desired_goal.fields, strict=True):
        candidates = [f.name, f.name.removeprefix("achieved_"), f.name.removeprefix("achieved_goal_")]
        match = next((obs[c] for c in candidates if c in obs and obs[c].kind == f.kind), None)
        if match is None:
            same_kind = [o for o in obs.fields if o.kind == f.kind and (f.name in o.name or o.name in f.name)]
            if len(same_kind) == 1:
                match = same_kind[0]
        if match is None:
            raise ValueError(
                f"GoalCost: cannot tell which observation field the achieved-goal field {f.name!r} "
                f"({f.kind}) "
                "is; pass cost=... to the planner"
            )
        pairs.append((match, g))
    return pairs


class GoalCost:
    """Invariant cost of predicted states: distance of each achieved-goal field to the desired goal.

    ``point``/``vector`` goal fields cost their Euclidean distance; ``frame`` fields cost
    ``orientation_weight * |R - G|_F / sqrt(2)`` (about the angle for small angles, metres per
    radian); scalars their absolute difference. For point goals held by an object (not the end
    effector), a shaping term ``reach_weight * |ee - (obj - behind * u)|`` with ``u`` the unit
    vector from the object to its goal draws the end effector to the pushing side of the object.
    All terms are distances, so the cost is invariant under world rotations and translations.
    """

    def __init__(
        self,
        spec: GeometrySpec,
        reach_weight: float = 1.0,
        behind: float = 0.06,
        orientation_weight: float = 0.05,
        done_radius: float = 0.02,
    ):
        self.spec = spec
        self.pairs = _goal_field_map(spec)
        obs = spec.observation
        self.ee = obs["ee_position"].slice if "ee_position" in obs else None
        self.reach_weight = reach_weight
        self.behind = behind
        self.orientation_weight = orientation_weight
        self.done_radius = done_radius

    def __call__(self, x: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """``x`` (..., obs_dim), ``goal`` (..., dg_dim) broadcastable -> cost (...)."""
        cost = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        for of, gf in self.pairs:
            a, g = x[..., of.slice], goal[..., gf.slice]
            if of.kind == "frame":
                cost = cost + self.orientation_weight * (a - g).norm(dim=-1) / np.sqrt(2.0)
            elif of.kind == "scalar":
                cost = cost + (a - g).abs().sum(-1)
            else:
                diff = g - a
                dist = diff.norm(dim=-1)
                cost = cost + dist
                if (
                    of.kind == "point"
                    and self.ee is not None
                    and of.slice != self.ee
                    and self.reach_weight > 0
                ):
                    u = diff / (dist[..., None] + 1e-9)
                    target = a - self.behind * u
                    reach = (x[..., self.ee] - target).norm(dim=-1)
                    # once the object sits at its goal the end effector may rest anywhere
                    gate = torch.clamp(dist / self.done_radius, max=1.0)
                    cost = cost + self.reach_weight * gate * reach
        return cost


def observation_frame(spec: GeometrySpec, obs: np.ndarray, goal: np.ndarray | None = None) -> np.ndarray:
    """A proper rotation (columns = axes) built equivariantly from one observation.

    Axes come from Gram-Schmidt on the first two non-degenerate of: gravity direction, object-to-goal,
    ee-to-object, base-to-ee, then fixed world axes (the last resort is not equivariant; it is only
    reached in degenerate scenes).
    """
    o = spec.observation
    x = np.asarray(obs, dtype=np.float64)
    cands = []
    if "gravity_direction" in o:
        cands.append(x[o["gravity_direction"].slice])
    pts = [f for f in o.by_role("object") if f.kind == "point"]
    if goal is not None:
        g = np.asarray(goal, dtype=np.float64)
        for of, gf in _safe_pairs(spec):
            if of.kind == "point":
                cands.append(g[gf.slice] - x[of.slice])
    if "ee_position" in o:
        ee = x[o["ee_position"].slice]
        for f in pts:
            cands.append(x[f.slice] - ee)
        if "base_position" in o:
            cands.append(ee - x[o["base_position"].slice])
    cands += [np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])]
    axes: list[np.ndarray] = []
    for c in cands:
        v = np.array(c, dtype=np.float64)
        for e in axes:
            v = v - (v @ e) * e
        n = np.linalg.norm(v)
        if n > 1e-6 * max(1.0, np.linalg.norm(c)):
            axes.append(v / n)
        if len(axes) == 2:
            break
    e1, e2 = axes
    return np.stack([e1, e2, np.cross(e1, e2)], axis=1)


def _safe_pairs(spec):
    try:
        return _goal_field_map(spec)
    except ValueError:
        return []


class MPPIPlanner:
    """MPPI over action sequences with a learned (or any) model exposing ``step(obs, action) -> next_obs``.

    Per control step: ``iterations`` rounds of ``n_samples`` sequences of ``horizon`` actions, all
    rolled out through the model in one batch per time step; the first round samples around the
    previous plan shifted by one step (warm start). Returns the first action of the weighted mean.

    Parameters: ``noise_std`` (isotropic std of the displacement samples, in action units),
    ``gripper_std``, ``temperature`` (softmax temperature relative to the spread between best and
    mean cost), ``shrink`` (std factor per refinement round), ``cost`` (callable ``(x, goal) ->
    cost``, default :class:`GoalCost`), ``terminal_weight`` (extra weight of the last state),
    ``fixed_scalars`` (scalar action fields held constant, e.g. ``{"gripper": -1.0}`` to push with a
    closed hand; invariant, so equivariance is kept).
    """

    def __init__(
        self,
        model,
        spec: GeometrySpec | None = None,
        horizon: int = 8,
        n_samples: int = 128,
        iterations: int = 1,
        noise_std: float = 0.4,
        gripper_std: float = 0.5,
        temperature: float = 0.1,
        shrink: float = 0.5,
        cost=None,
        terminal_weight: float = 2.0,
        seed: int = 0,
        dtype: torch.dtype | None = None,
        device: str | torch.device = "cpu",
        fixed_scalars: dict | None = None,
    ):
        spec = spec if spec is not None else getattr(model, "geometry_spec", None)
        if spec is None:
            raise ValueError("MPPIPlanner needs spec=GeometrySpec (the model carries none)")
        self.model = model
        self.spec = spec
        self.horizon, self.n_samples, self.iterations = int(horizon), int(n_samples), int(iterations)
        if self.horizon < 1 or self.n_samples < 2 or self.iterations < 1:
            raise ValueError("need horizon >= 1, n_samples >= 2, iterations >= 1")
        self.noise_std, self.gripper_std = float(noise_std), float(gripper_std)
        self.temperature, self.shrink, self.terminal_weight = (
            float(temperature),
            float(shrink),
            float(terminal_weight),
        )
        self.cost = cost if cost is not None else GoalCost(spec)
        self.seed = seed
        if dtype is None:
            p = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
            dtype = p.dtype if p is not None else torch.float32
        self.dtype, self.device = dtype, torch.device(device)
        a = spec.action
        self.vec_slices = [f.slice for f in a.fields if f.kind in ("vector", "pseudovector")]
        self.scalar_slices = [f.slice for f in a.fields if f.kind == "scalar"]
        if any(f.kind in ("point", "frame") for f in a.fields):
            raise ValueError("MPPIPlanner supports actions made of vector/pseudovector/scalar fields only")
        self.fixed = []
        for name, value in (fixed_scalars or {}).items():
            if name not in a or a[name].kind != "scalar":
                raise ValueError(f"fixed_scalars: {name!r} is not a scalar action field of {a}")
            self.fixed.append((a[name].slice, float(value)))
        self.observation_space = None
        self.last_plan_time = 0.0
        self.plan_times: list[float] = []
        self.reset()

    # --- state -------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        """Forget the warm start (call at episode starts) and reseed the sampler."""
        if seed is not None:
            self.seed = seed
        self.generator = torch.Generator(device="cpu").manual_seed(int(self.seed))
        self._mean: dict[int, torch.Tensor] = {}
        self._goal: dict[int, np.ndarray] = {}

    # --- planning ----------------------------------------------------------------------------
    @torch.no_grad()
    def plan(self, observation: np.ndarray, desired_goal: np.ndarray, mean: torch.Tensor | None = None):
        """Plan from one flat observation; returns ``(action (act_dim,), plan (H, act_dim))``."""
        spec, H, N, A = self.spec, self.horizon, self.n_samples, self.spec.action.dim
        frame = torch.as_tensor(observation_frame(spec, observation, desired_goal), dtype=self.dtype)
        x0 = torch.as_tensor(np.asarray(observation), dtype=self.dtype, device=self.device)
        goal = torch.as_tensor(np.asarray(desired_goal), dtype=self.dtype, device=self.device)
        mean = torch.zeros(H, A, dtype=self.dtype) if mean is None else mean.to(self.dtype)
        for sl, value in self.fixed:
            mean[..., sl] = value
        std_vec = torch.full((len(self.vec_slices),), self.noise_std, dtype=self.dtype)
        std_sc = self.gripper_std
        for it in range(self.iterations):
            eps = torch.randn(N, H, A, generator=self.generator, dtype=torch.float64).to(self.dtype)
            U = mean.expand(N, H, A).clone()
            for k, sl in enumerate(self.vec_slices):
                U[..., sl] = U[..., sl] + std_vec[k] * (eps[..., sl] @ frame.T)
            for sl in self.scalar_slices:
                U[..., sl] = U[..., sl] + std_sc * eps[..., sl]
            U[0] = mean  # keep the current plan among the candidates
            for sl, value in self.fixed:
                U[..., sl] = value
            U = _limit_vectors(U, self.vec_slices, self.scalar_slices)
            costs = self._rollout_cost(x0, goal, U.to(self.device)).to(self.dtype).cpu()
            c_min = costs.min()
            spread = torch.clamp(costs.mean() - c_min, min=1e-9)
            w = torch.softmax(-(costs - c_min) / (self.temperature * spread), dim=0)
            mean = torch.einsum("n,nha->ha", w, U)
            mean = _limit_vectors(mean, self.vec_slices, self.scalar_slices)
            if it + 1 < self.iterations:
                for k, sl in enumerate(self.vec_slices):
                    var = (w[:, None, None] * (U[..., sl] - mean[..., sl]) ** 2).sum(0).mean()
                    std_vec[k] = torch.clamp(torch.sqrt(var), min=0.05 * self.noise_std, max=self.noise_std)
                std_sc = std_sc * self.shrink
        return mean[0].clone(), mean

    def _rollout_cost(self, x0: torch.Tensor, goal: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        N, H, _ = U.shape
        x = x0.expand(N, -1)
        total = torch.zeros(N, dtype=x0.dtype, device=x0.device)
        for t in range(H):
            x = self.model.step(x, U[:, t])
            w = 1.0 + (self.terminal_weight if t == H - 1 else 0.0)
            total = total + w * self.cost(x, goal)
        return total / (H + self.terminal_weight)

    # --- SB3-like policy interface -----------------------------------------------------------
    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        """``obs`` a goal-conditioned dict (single or batched) -> ``(action, None)`` (float32)."""
        o = np.asarray(obs["observation"], dtype=np.float64)
        g = np.asarray(obs["desired_goal"], dtype=np.float64)
        single = o.ndim == 1
        o2, g2 = np.atleast_2d(o), np.atleast_2d(g)
        starts = np.zeros(len(o2), dtype=bool) if episode_start is None else np.atleast_1d(episode_start)
        actions = np.zeros((len(o2), self.spec.action.dim), dtype=np.float32)
        t0 = time.perf_counter()
        for i in range(len(o2)):
            prev = self._mean.get(i)
            if starts[i] or prev is None or not np.array_equal(self._goal.get(i), g2[i]):
                warm = None
            else:
                warm = torch.cat([prev[1:], prev[-1:]], dim=0)
            a, plan = self.plan(o2[i], g2[i], warm)
            self._mean[i], self._goal[i] = plan, g2[i].copy()
            actions[i] = a.cpu().numpy().astype(np.float32)
        self.last_plan_time = (time.perf_counter() - t0) / len(o2)
        self.plan_times.append(self.last_plan_time)
        return (actions[0] if single else actions), None

    def __call__(self, obs):
        return self.predict(obs)[0]
