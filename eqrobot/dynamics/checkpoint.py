"""Dynamics-model checkpoints: one ``.pt`` file with the weights, the config and the geometry spec.

The payload holds only tensors, strings, numbers, lists and dicts, so it loads with
``torch.load(weights_only=True)``: opening a checkpoint from elsewhere cannot run code. (SB3
policy checkpoints are another format: :mod:`eqrobot.rollout.checkpoints`.)
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from eqrobot.dynamics.models import DynamicsConfig, DynamicsModel
from eqrobot.files import atomic_write
from eqrobot.geometry.spec import GeometrySpec, spec_differences

CHECKPOINT_FORMAT = "eqrobot.dynamics.model"
CHECKPOINT_VERSION = 1


class DynamicsCheckpointError(ValueError):
    """A dynamics checkpoint that cannot be read (corrupt, truncated, another format or version)."""


def save_dynamics_model(model: DynamicsModel, path, extra: dict | None = None) -> Path:
    """``torch.save`` of state_dict + spec + config, written atomically (tmp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = asdict(model.config)
    cfg["static_fields"] = list(cfg["static_fields"])
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": cfg,
        "spec": model.geometry_spec.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    with atomic_write(path) as fh:
        torch.save(payload, fh)
    return path


def _read_payload(path: Path, map_location="cpu") -> dict:
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad or unsafe file
        raise DynamicsCheckpointError(
            f"{path}: not a readable dynamics checkpoint (corrupt or truncated, or holding pickled "
            f"objects that weights_only loading refuses): {e}"
        ) from e
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise DynamicsCheckpointError(f"{path}: not an eqrobot dynamics checkpoint")
    return payload


def is_dynamics_checkpoint(path) -> bool:
    """Whether ``path`` is a file written by :func:`save_dynamics_model` (reads it safely)."""
    p = Path(path)
    if not p.is_file() or _is_sb3_zip(p):
        return False
    try:
        _read_payload(p)
    except DynamicsCheckpointError:
        return False
    return True


def _is_sb3_zip(path: Path) -> bool:
    """SB3 zips are zip files too (so are ``.pt`` files): tell them apart by SB3's ``data`` member."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return "data" in zf.namelist()


def load_dynamics_model(path, spec: GeometrySpec | None = None, map_location="cpu") -> DynamicsModel:
    """Read a checkpoint of :func:`save_dynamics_model`; with ``spec``, require it to match."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no dynamics checkpoint at {path}")
    payload = _read_payload(path, map_location)
    if payload.get("version") != CHECKPOINT_VERSION:
        raise DynamicsCheckpointError(
            f"{path}: checkpoint version {payload.get('version')}, this eqrobot reads {CHECKPOINT_VERSION}"
        )
    file_spec = GeometrySpec.from_dict(payload["spec"])
    if spec is not None and spec != file_spec:
        raise DynamicsCheckpointError(
            f"{path}: model was trained for another geometry spec: "
            + "; ".join(spec_differences(file_spec, spec, "checkpoint", "expected"))
        )
    cfg = dict(payload["config"])
    cfg["static_fields"] = tuple(cfg.get("static_fields", ()))
    model = DynamicsModel(file_spec, DynamicsConfig(**cfg))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        raise DynamicsCheckpointError(
            f"{path}: weights do not fit the model the checkpoint describes: {e}"
        ) from e
    model.checkpoint_extra = payload.get("extra", {})
    return model
