"""Equivariance tests for models and functions on spec'd flat arrays (shipped for users).

>>> from eqrobot.testing import assert_equivariant
>>> err = assert_equivariant(model, in_spec, out_spec, group="se3")   # raises if not equivariant

A function ``f`` is equivariant under a group element ``g = (R, t)`` when
``f(g . x) == g . f(x)``, where ``g .`` acts on each flat array through its
:class:`~eqrobot.geometry.spec.ArraySpec` (points ``R p + t``, vectors/pseudovectors/frame columns
``R v``, scalars unchanged). Groups:

- ``"se3"``: uniform rotation and Gaussian translation of std ``translation_scale``;
- ``"so3"``: uniform rotation, no translation;
- ``"so2"``: rotation by a uniform angle about ``axis`` (through the origin), no translation —
  the task-rotation group about gravity;
- ``"se2"``: ``"so2"`` plus a translation (any direction, std ``translation_scale``).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

from eqrobot.geometry.so3 import random_rotation, rotation_about_axis
from eqrobot.geometry.spec import ArraySpec

__all__ = [
    "GROUPS",
    "SB3PolicyAdapter",
    "assert_equivariant",
    "equivariance_error",
    "random_group_element",
    "random_inputs",
]

GROUPS = ("se3", "so3", "so2", "se2")


def _as_specs(spec) -> tuple[ArraySpec, ...]:
    if isinstance(spec, ArraySpec):
        return (spec,)
    if isinstance(spec, Sequence) and spec and all(isinstance(s, ArraySpec) for s in spec):
        return tuple(spec)
    raise TypeError(f"expected an ArraySpec or a non-empty tuple of ArraySpecs, got {spec!r}")


def random_group_element(group: str = "se3", rng=None, axis=(0.0, 0.0, 1.0), translation_scale: float = 10.0):
    """A random ``(R (3, 3), t (3,))`` in float64 numpy. ``rng``: numpy Generator or seed."""
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; expected one of {GROUPS}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if group in ("se3", "so3"):
        R = random_rotation(rng)
    else:
        R = rotation_about_axis(np.asarray(axis, dtype=np.float64), rng.uniform(-np.pi, np.pi))
    t = rng.standard_normal(3) * translation_scale if group in ("se3", "se2") else np.zeros(3)
    return R, t


def random_inputs(spec: ArraySpec, batch: int, rng=None, point_scale: float = 1.0) -> np.ndarray:
    """Random float64 inputs laid out by ``spec``: frames are random rotations, other entries normal."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    x = rng.standard_normal((batch, spec.dim))
    for f in spec.fields:
        if f.kind == "frame":
            x[:, f.slice] = np.swapaxes(random_rotation(rng, batch), -1, -2).reshape(batch, 9)
        elif f.kind == "point":
            x[:, f.slice] *= point_scale
    return x


def _output_dtype(outs) -> torch.dtype:
    """The least precise floating dtype among the outputs (what the tolerance must allow for)."""
    found = []
    for o in outs:
        if isinstance(o, torch.Tensor):
            d = o.dtype
        else:
            d = torch.from_numpy(np.zeros(0, np.asarray(o).dtype)).dtype
        if d.is_floating_point:
            found.append(d)
    return max(found, key=lambda d: torch.finfo(d).eps) if found else torch.float64


def _call(fn, xs, backend: str, dtype, dtypes_seen: list | None = None):
    if backend == "torch":
        args = [torch.as_tensor(x, dtype=dtype) for x in xs]
        with torch.no_grad():
            out = fn(*args)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if dtypes_seen is not None:
            dtypes_seen.append(_output_dtype(outs))
        return tuple(o.detach().to(torch.float64).cpu().numpy() for o in outs)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    out = fn(*[np.asarray(x, dtype=np_dtype) for x in xs])
    outs = out if isinstance(out, (tuple, list)) else (out,)
    if dtypes_seen is not None:
        dtypes_seen.append(_output_dtype(outs))
    return tuple(np.asarray(o, dtype=np.float64) for o in outs)


def _detect_backend(fn, xs, dtype) -> str:
    if isinstance(fn, torch.nn.Module):
        return "torch"
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            out = fn(*[torch.as_tensor(x, dtype=dtype) for x in xs])
    except Exception:  # a numpy function fed tensors may fail in any way
        return "numpy"
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return "torch" if all(isinstance(o, torch.Tensor) for o in outs) else "numpy"


def equivariance_error(
    fn: Callable,
    spec_in,
    spec_out,
    rotation,
    translation=None,
    inputs=None,
    batch: int = 16,
    dtype=torch.float64,
    seed=0,
    backend: str | None = None,
    dtypes_seen: list | None = None,
) -> dict[str, dict[str, float]]:
    """Per-output-field errors of ``fn`` under one group element.

    Returns ``{field: {"abs": max |f(g.x) - g.f(x)|, "scale": max |g.f(x)|}}`` with fields named
    ``"<i>:<name>"`` when there are several outputs. ``inputs`` (a flat array or tuple of them, one
    per input spec) default to :func:`random_inputs`.
    """
    specs_in, specs_out = _as_specs(spec_in), _as_specs(spec_out)
    R = np.asarray(rotation, dtype=np.float64)
    t = np.zeros(3) if translation is None else np.asarray(translation, dtype=np.float64)
    if inputs is None:
        rng = np.random.default_rng(seed)
        inputs = tuple(random_inputs(s, batch, rng) for s in specs_in)
    elif not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    inputs = tuple(
        np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64) for x in inputs
    )
    if len(inputs) != len(specs_in):
        raise ValueError(f"{len(inputs)} inputs for {len(specs_in)} input specs")
    if backend is None:
        backend = _detect_backend(fn, inputs, dtype)
    # transform in float64, then cast: the float32 run sees the same (rounded) points either way
    moved = tuple(s.transform(x, R, t) for s, x in zip(specs_in, inputs, strict=True))
    y = _call(fn, inputs, backend, dtype, dtypes_seen)
    y_moved = _call(fn, moved, backend, dtype, dtypes_seen)
    if len(y) != len(specs_out):
        raise ValueError(f"fn returned {len(y)} outputs for {len(specs_out)} output specs")
    errors: dict[str, dict[str, float]] = {}
    for i, (spec, a, b) in enumerate(zip(specs_out, y, y_moved, strict=True)):
        if a.shape[-1] != spec.dim:
            raise ValueError(f"output {i} has {a.shape[-1]} features, its spec expects {spec.dim}")
        expected = spec.transform(a, R, t)
        for f in spec.fields:
            key = f.name if len(specs_out) == 1 else f"{i}:{f.name}"
            diff = np.abs(b[..., f.slice] - expected[..., f.slice])
            errors[key] = {
                "abs": float(diff.max(initial=0.0)),
                "scale": float(np.abs(expected[..., f.slice]).max(initial=0.0)),
            }
    return errors


_DEFAULT_TOL = {torch.float64: (1e-9, 1e-9), torch.float32: (1e-4, 1e-5)}  # (rtol, atol)


class SB3PolicyAdapter(torch.nn.Module):
    """A stable-baselines3 policy (or its actor) as a function of one flat array.

    SB3 policies take a Dict observation; this splits a flat ``(B, in_spec.dim)`` array into the
    observation space's keys (laid out by the env's geometry spec, fields named ``"<key>/<field>"``)
    and returns the deterministic action ``policy._predict(obs, deterministic=True)`` (in the
    policy's ``[-1, 1]`` action units, before SB3's rescaling to the Box; for eqrobot envs the two
    agree). ``in_spec`` and ``out_spec`` (the action spec) are what :func:`assert_equivariant` uses
    when it is given no specs.
    """

    def __init__(self, policy: torch.nn.Module):
        super().__init__()
        space = getattr(policy, "observation_space", None)
        spec = getattr(policy, "geometry_spec", None) or getattr(space, "geometry_spec", None)
        if spec is None or not hasattr(space, "spaces"):
            raise TypeError(
                f"{type(policy).__name__} has no geometry spec on a Dict observation space: pass "
                "spec_in/spec_out and a function of flat arrays instead"
            )
        parts = spec.parts()
        self.keys = tuple(k for k in space.spaces if k in parts)
        self.in_spec = ArraySpec.concat({k: parts[k] for k in self.keys})
        self.out_spec = spec.action
        self.policy = policy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        obs = self._split(x)
        return self.policy._predict(obs, deterministic=True)

    def _split(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out, start = {}, 0
        for k in self.keys:
            dim = self.policy.observation_space.spaces[k].shape[0]
            out[k] = x[..., start : start + dim]
            start += dim
        return out


def _sb3_policy(fn):
    """``fn``'s SB3 policy (an SB3 model's ``.policy``, a policy, or an actor), or None."""
    policy = getattr(fn, "policy", None)
    if isinstance(policy, torch.nn.Module) and hasattr(policy, "_predict"):
        fn = policy  # an SB3 model (SAC, PPO, ...)
    if isinstance(fn, torch.nn.Module) and hasattr(fn, "_predict") and hasattr(fn, "observation_space"):
        return fn
    return None


def _module_dtype(module: torch.nn.Module) -> torch.dtype:
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float64


def assert_equivariant(
    fn: Callable,
    spec_in=None,
    spec_out=None,
    group: str = "se3",
    axis=(0.0, 0.0, 1.0),
    n_samples: int = 8,
    batch: int = 16,
    dtype=None,
    rtol: float | None = None,
    atol: float | None = None,
    translation_scale: float = 10.0,
    seed: int = 0,
    inputs=None,
) -> float:
    """Check ``fn(g . x) == g . fn(x)`` for ``n_samples`` random group elements; return the max error.

    ``fn``: a torch module or function of tensors, a numpy function of flat arrays (detected from
    what it returns when given tensors), or a stable-baselines3 model, policy or actor
    (``model``, ``model.policy``, ``model.policy.actor``; see :class:`SB3PolicyAdapter`: with no
    specs given, the input is the Dict observation flattened and the output the deterministic
    action). ``spec_in``/``spec_out``: an ArraySpec or a tuple (several inputs/outputs).

    ``dtype``: inputs are built in float64 and cast to it; modules are deep-copied and cast to it.
    Default float64, except for SB3 policies: their own parameter dtype (SB3 casts observations to
    float32, so a trained float32 policy is tested as it runs; pass ``dtype=torch.float64`` to test
    an eqrobot policy's maths in float64). A field passes when
    ``max |f(g.x) - g.f(x)| <= atol + rtol * max |g.f(x)|``
    over the batch; the default tolerances follow the dtype the outputs were actually computed in
    (the least precise of ``dtype`` and the outputs' dtype): ``rtol=atol=1e-9`` in float64,
    ``rtol=1e-4, atol=1e-5`` in float32. Raises AssertionError naming the error, the tolerance, that
    dtype, the field and the group element otherwise.
    """
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; expected one of {GROUPS}")
    policy = _sb3_policy(fn)
    if policy is not None:
        fn = SB3PolicyAdapter(policy)
        spec_in = fn.in_spec if spec_in is None else spec_in
        spec_out = fn.out_spec if spec_out is None else spec_out
    if spec_in is None or spec_out is None:
        raise TypeError("assert_equivariant needs spec_in and spec_out (only SB3 policies bring their own)")
    if policy is not None and dtype is None:
        dtype = _module_dtype(policy)  # SB3 casts observations to float32: run it as it was trained
    if isinstance(fn, torch.nn.Module):
        dtype = torch.float64 if dtype is None else dtype
        fn = copy.deepcopy(fn).to(dtype).eval()
    dtype = torch.float64 if dtype is None else dtype
    rng = np.random.default_rng(seed)
    specs_in = _as_specs(spec_in)
    backend = None
    seen: list[torch.dtype] = [dtype]
    results = []
    for sample in range(n_samples):
        R, t = random_group_element(group, rng, axis=axis, translation_scale=translation_scale)
        xs = inputs if inputs is not None else tuple(random_inputs(s, batch, rng) for s in specs_in)
        if backend is None:
            xs_t = xs if isinstance(xs, (tuple, list)) else (xs,)
            backend = (
                "torch"
                if isinstance(fn, torch.nn.Module)
                else _detect_backend(fn, [np.asarray(x, dtype=np.float64) for x in xs_t], dtype)
            )
        errs = equivariance_error(
            fn, spec_in, spec_out, R, t, inputs=xs, dtype=dtype, backend=backend, dtypes_seen=seen
        )
        results.append((sample, R, t, errs))
    computed = max(seen, key=lambda d: torch.finfo(d).eps)  # the least precise dtype involved
    d_rtol, d_atol = _DEFAULT_TOL.get(computed, (1e-4, 1e-5))
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    worst_err, worst = 0.0, None
    for sample, R, t, errs in results:
        for name, e in errs.items():
            tol = atol + rtol * e["scale"]
            worst_err = max(worst_err, e["abs"])
            if e["abs"] > tol and (worst is None or e["abs"] / tol > worst[0]):
                worst = (e["abs"] / tol, name, e, tol, sample, R, t)
    if worst is not None:
        _, name, e, tol, sample, R, t = worst
        where = f"computed in {computed}" + (f" from {dtype} inputs" if computed != dtype else "")
        raise AssertionError(
            f"not {group}-equivariant: error {e['abs']:.3e} > tolerance {tol:.3e} "
            f"(atol {atol:g} + rtol {rtol:g} x output scale {e['scale']:.3g}) in field {name!r} "
            f"(sample {sample}, {where}; "
            f"rotation angle {np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1))):.1f} deg, "
            f"|t| = {np.linalg.norm(t):.3g})"
        )
    return worst_err
