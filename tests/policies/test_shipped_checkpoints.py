"""The shipped checkpoints (checkpoints/) load and act exactly as when they were trained.

``checkpoint_reference.npz`` holds, per checkpoint, observations taken from its env and the
deterministic actions and critic values that the policy code of commit ca75a27 (before the training
speed-ups of issue 14) computed for them (``headline_push/``: the code of 9750066, when they were
added; ``headline_pickandplace/``: the code of bff5b6f, likewise, and for its equivariant TQC
policies the code of session 7). Re-record only on purpose, with the code whose outputs are the
reference:
``python tests/policies/test_shipped_checkpoints.py --record`` (every checkpoint) or
``--record-missing`` (only checkpoints without a reference yet, keeping the others' as they are).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = sorted((ROOT / "checkpoints").glob("*/*.zip"))
REFERENCE = Path(__file__).with_name("checkpoint_reference.npz")
N_RESETS, N_STEPS = 4, 3


def _key(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _load(path: Path):
    from eqrobot.rollout.checkpoints import load_model

    return load_model(path)


def _observations(model) -> dict[str, np.ndarray]:
    """Observations from the checkpoint's own env: a few resets, a few random steps each."""
    import gymnasium as gym

    env = gym.make(model.eqrobot_meta["env_id"])
    rows = []
    rng = np.random.default_rng(0)
    for seed in range(N_RESETS):
        obs, _ = env.reset(seed=seed)
        rows.append(obs)
        for _ in range(N_STEPS):
            obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
            rows.append(obs)
    env.close()
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def _outputs(model, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    actions, _ = model.predict(obs, deterministic=True)
    with torch.no_grad():
        obs_t, _ = model.policy.obs_to_tensor(obs)
        q = model.policy.critic(obs_t, torch.as_tensor(actions))
    # SAC's critics give one (B, 1) value per head; TQC's give one (B, n_critics, n_quantiles) tensor
    q = torch.cat(q, dim=1) if isinstance(q, (tuple, list)) else q.flatten(1)
    return actions, q.numpy()


def record(missing_only: bool = False) -> None:
    arrays = dict(np.load(REFERENCE)) if missing_only and REFERENCE.exists() else {}
    for path in CHECKPOINTS:
        if f"{_key(path)}|actions" in arrays:
            continue
        model = _load(path)
        obs = _observations(model)
        actions, q = _outputs(model, obs)
        key = _key(path)
        arrays.update({f"{key}|obs|{k}": v for k, v in obs.items()})
        arrays[f"{key}|actions"], arrays[f"{key}|q"] = actions, q
    np.savez_compressed(REFERENCE, **arrays)
    print(f"wrote {REFERENCE} for {len(CHECKPOINTS)} checkpoints")


@pytest.mark.parametrize("path", CHECKPOINTS, ids=_key)
def test_shipped_checkpoint_acts_as_recorded(path):
    ref = np.load(REFERENCE)
    key = _key(path)
    assert f"{key}|actions" in ref, f"no reference for {key}: record it (see the module docstring)"
    obs = {k.split("|")[-1]: ref[k] for k in ref.files if k.startswith(f"{key}|obs|")}
    model = _load(path)
    actions, q = _outputs(model, obs)
    # acting is bit-identical; the critics may sum in another order (batched twin critics)
    np.testing.assert_array_equal(actions, ref[f"{key}|actions"])
    np.testing.assert_allclose(q, ref[f"{key}|q"], rtol=1e-5, atol=1e-5)


if __name__ == "__main__":
    if sys.argv[1:] not in (["--record"], ["--record-missing"]):
        usage = "usage: python tests/policies/test_shipped_checkpoints.py --record | --record-missing"
        raise SystemExit(usage)
    record(missing_only=sys.argv[1:] == ["--record-missing"])
