"""Dynamics checkpoints: round trip, clear errors, and weights-only (no-pickle) loading."""

import numpy as np
import pytest
import torch

from eqrobot.dynamics.checkpoint import (
    CHECKPOINT_FORMAT,
    DynamicsCheckpointError,
    is_dynamics_checkpoint,
    load_dynamics_model,
    save_dynamics_model,
)
from eqrobot.dynamics.models import DynamicsModel, make_model, matched_mlp

SMALL = dict(hidden=32, vector_channels=8)


def _inputs(data, n=16):
    idx = np.linspace(0, len(data) - 1, n).astype(int)
    return data.observation[idx].astype(np.float64), data.action[idx].astype(np.float64)


def test_save_load_round_trip_and_errors(tmp_path, push_data, stack_spec):
    for kind in ("equivariant", "mlp"):
        model = make_model(push_data.spec, kind=kind, data=push_data, **SMALL)
        if kind == "mlp":
            model = matched_mlp(make_model(push_data.spec, data=push_data, **SMALL), push_data)
        path = save_dynamics_model(model, tmp_path / f"{kind}.pt", extra={"note": "x"})
        back = load_dynamics_model(path, push_data.spec)
        assert isinstance(back, DynamicsModel) and back.config == model.config
        assert back.checkpoint_extra == {"note": "x"}
        x, a = (torch.as_tensor(v, dtype=torch.float32) for v in _inputs(push_data))
        with torch.no_grad():
            torch.testing.assert_close(back.step(x, a), model.step(x, a), rtol=0, atol=0)
    assert not list(tmp_path.glob("*.tmp"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes((tmp_path / "equivariant.pt").read_bytes()[:300])
    with pytest.raises(DynamicsCheckpointError, match="corrupt or truncated"):
        load_dynamics_model(bad)
    with pytest.raises(DynamicsCheckpointError, match="another geometry spec"):
        load_dynamics_model(tmp_path / "equivariant.pt", stack_spec)
    torch.save({"something": 1}, tmp_path / "foreign.pt")
    with pytest.raises(DynamicsCheckpointError, match="not an eqrobot dynamics checkpoint"):
        load_dynamics_model(tmp_path / "foreign.pt")
    with pytest.raises(FileNotFoundError):
        load_dynamics_model(tmp_path / "missing.pt")


class _Boom:
    """Unpickling this would run code: weights-only loading must refuse it."""

    def __reduce__(self):
        return (print, ("unpickled: code ran",))


def test_checkpoints_load_weights_only(tmp_path, push_data, capsys):
    model = make_model(push_data.spec, data=push_data, **SMALL)
    path = save_dynamics_model(model, tmp_path / "m.pt")
    assert is_dynamics_checkpoint(path)
    torch.load(path, weights_only=True)  # the format itself holds no pickled objects
    payload = torch.load(path, weights_only=True)
    payload["extra"] = {"evil": _Boom()}
    torch.save(payload, tmp_path / "evil.pt")
    assert payload["format"] == CHECKPOINT_FORMAT
    with pytest.raises(DynamicsCheckpointError, match="weights_only"):
        load_dynamics_model(tmp_path / "evil.pt")
    assert not is_dynamics_checkpoint(tmp_path / "evil.pt")
    assert "code ran" not in capsys.readouterr().out
