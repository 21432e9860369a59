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

__all__ = ["GROUPS", "assert_equivariant", "equivariance_error", "random_group_element", "random_inputs"]

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


def _call(fn, xs, backend: str, dtype):
    if backend == "torch":
        args = [torch.as_tensor(x, dtype=dtype) for x in xs]
        with torch.no_grad():
            out = fn(*args)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return tuple(o.detach().to(torch.float64).cpu().numpy() for o in outs)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    out = fn(*[np.asarray(x, dtype=np_dtype) for x in xs])
    outs = out if isinstance(out, (tuple, list)) else (out,)
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
    y = _call(fn, inputs, backend, dtype)
    y_moved = _call(fn, moved, backend, dtype)
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


def assert_equivariant(
    fn: Callable,
    spec_in,
    spec_out,
    group: str = "se3",
    axis=(0.0, 0.0, 1.0),
    n_samples: int = 8,
    batch: int = 16,
    dtype=torch.float64,
    rtol: float | None = None,
    atol: float | None = None,
    translation_scale: float = 10.0,
    seed: int = 0,
    inputs=None,
) -> float:
    """Check ``fn(g . x) == g . fn(x)`` for ``n_samples`` random group elements; return the max error.

    ``fn``: a torch module or function of tensors, or a numpy function of flat arrays (detected
    from what it returns when given tensors). Modules are deep-copied and cast to ``dtype``.
    ``spec_in``/``spec_out``: an ArraySpec or a tuple (several inputs/outputs). A field passes when
    ``max |f(g.x) - g.f(x)| <= atol + rtol * max |g.f(x)|`` over the batch; defaults are
    ``rtol=atol=1e-9`` in float64 and ``rtol=1e-4, atol=1e-5`` in float32. Raises AssertionError
    naming the error, the tolerance, the field and the group element otherwise.
    """
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; expected one of {GROUPS}")
    d_rtol, d_atol = _DEFAULT_TOL.get(dtype, (1e-4, 1e-5))
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    if isinstance(fn, torch.nn.Module):
        fn = copy.deepcopy(fn).to(dtype).eval()
    rng = np.random.default_rng(seed)
    specs_in = _as_specs(spec_in)
    backend = None
    worst_err, worst = 0.0, None
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
        errs = equivariance_error(fn, spec_in, spec_out, R, t, inputs=xs, dtype=dtype, backend=backend)
        for name, e in errs.items():
            tol = atol + rtol * e["scale"]
            if e["abs"] > worst_err:
                worst_err = e["abs"]
            if e["abs"] > tol and (worst is None or e["abs"] / tol > worst[0]):
                worst = (e["abs"] / tol, name, e, tol, sample, R, t)
    if worst is not None:
        _, name, e, tol, sample, R, t = worst
        raise AssertionError(
            f"not {group}-equivariant: error {e['abs']:.3e} > tolerance {tol:.3e} "
            f"(atol {atol:g} + rtol {rtol:g} x output scale {e['scale']:.3g}) in field {name!r} "
            f"(sample {sample}, {dtype}; "
            f"rotation angle {np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1))):.1f} deg, "
            f"|t| = {np.linalg.norm(t):.3g})"
        )
    return worst_err
