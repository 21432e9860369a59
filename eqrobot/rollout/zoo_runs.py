"""rl-zoo3 run folders: env id, algorithm, model and normalisation statistics, read from the folder.

An rl-zoo3 run folder (``logs/<algo>/<env-name>_<n>/``) holds ``<env-name>.zip`` (and
``best_model.zip``) next to ``<env-name>/args.yml``, ``config.yml`` and, when trained with
``normalize: True``, ``vecnormalize.pkl``: :func:`read_zoo_run` finds the env id, the algorithm and
those statistics, so nothing has to be passed by hand and nothing is silently ignored.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from eqrobot.rollout.checkpoints import (
    CheckpointError,
    check_checkpoint_layout,
    load_sb3_zip,
    read_checkpoint_info,
)

_ZOO_ALGOS = {
    "a2c": ("stable_baselines3", "A2C"),
    "ddpg": ("stable_baselines3", "DDPG"),
    "dqn": ("stable_baselines3", "DQN"),
    "ppo": ("stable_baselines3", "PPO"),
    "sac": ("stable_baselines3", "SAC"),
    "td3": ("stable_baselines3", "TD3"),
    "ars": ("sb3_contrib", "ARS"),
    "crossq": ("sb3_contrib", "CrossQ"),
    "qrdqn": ("sb3_contrib", "QRDQN"),
    "tqc": ("sb3_contrib", "TQC"),
    "trpo": ("sb3_contrib", "TRPO"),
    "ppo_lstm": ("sb3_contrib", "RecurrentPPO"),
}
"""rl-zoo3's algorithm names -> the class it trains them with (rl_zoo3.utils.ALGOS)."""


def _zoo_python_tag(loader, suffix, node):
    if suffix == "apply:collections.OrderedDict":
        (pairs,) = loader.construct_sequence(node, deep=True)
        return OrderedDict((k, v) for k, v in pairs)
    if suffix == "new:huggingface_sb3.naming_schemes.EnvironmentName":
        spec = loader.construct_mapping(node, deep=True)
        return str((spec.get("state") or {}).get("_gym_id") or spec["args"][0])
    raise CheckpointError(
        f"rl-zoo3 file holds a Python object this reader refuses to build: !!python/{suffix}"
    )


def _read_zoo_yaml(path: Path) -> dict:
    """rl-zoo3's ``args.yml``/``config.yml``, read safely.

    rl-zoo3 dumps them with PyYAML's full dumper, so they hold two Python tags (an ``OrderedDict``
    and huggingface_sb3's ``EnvironmentName``, a str). A SafeLoader subclass reads those two as a
    dict and a str and refuses any other Python tag (``yaml.UnsafeLoader``, which rl-zoo3 itself
    uses, would build arbitrary objects, i.e. run code from the file)."""
    import yaml  # PyYAML comes with rl-zoo3; only rl-zoo3 runs need it

    class ZooLoader(yaml.SafeLoader):
        pass

    ZooLoader.add_multi_constructor("tag:yaml.org,2002:python/object/", _zoo_python_tag)
    with open(path) as fh:
        data = yaml.load(fh, Loader=ZooLoader)  # noqa: S506 - a SafeLoader subclass
    return dict(data or {})


@dataclass
class ZooRun:
    """What an rl-zoo3 run folder holds."""

    folder: Path
    model_path: Path
    algo: str
    env_id: str
    env_kwargs: dict = field(default_factory=dict)
    hyperparams: dict = field(default_factory=dict)
    vecnormalize_path: Path | None = None


def find_zoo_run(path: str | Path) -> Path | None:
    """The params folder (holding ``args.yml``) of an rl-zoo3 run folder or of a zip inside one."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    candidates = [p.parent for p in folder.glob("*/args.yml")]
    if path.is_file():
        same = [c for c in candidates if c.name == path.stem]
        candidates = same or candidates
    return candidates[0] if len(candidates) == 1 else None


def read_zoo_run(path: str | Path) -> ZooRun:
    """Env id, algorithm, model zip and normalisation statistics of an rl-zoo3 run folder (or a zip
    inside one); raises :class:`CheckpointError` when the folder is not an rl-zoo3 run."""
    path = Path(path)
    params = find_zoo_run(path)
    if params is None:
        raise CheckpointError(f"{path}: not an rl-zoo3 run folder (no <env-name>/args.yml next to the model)")
    args = _read_zoo_yaml(params / "args.yml")
    config = _read_zoo_yaml(params / "config.yml") if (params / "config.yml").exists() else {}
    algo, env_id = args.get("algo"), args.get("env")
    if not algo or not env_id:
        raise CheckpointError(f"{params / 'args.yml'}: no 'algo'/'env' entry; is this an rl-zoo3 run?")
    if path.is_file():
        model = path
    else:
        model = next((p for p in (path / f"{params.name}.zip", path / "best_model.zip") if p.exists()), None)
        if model is None:
            raise CheckpointError(f"{path}: rl-zoo3 run folder without {params.name}.zip or best_model.zip")
    env_kwargs = dict(config.get("env_kwargs") or {})
    env_kwargs.update(args.get("env_kwargs") or {})
    vecnorm = params / "vecnormalize.pkl"
    return ZooRun(
        folder=params.parent,
        model_path=model,
        algo=str(algo),
        env_id=str(env_id),
        env_kwargs=env_kwargs,
        hyperparams=config,
        vecnormalize_path=vecnorm if vecnorm.exists() else None,
    )


def load_zoo_model(run: ZooRun, device: str = "cpu"):
    """The SB3 model of an rl-zoo3 run (the class rl-zoo3 trained it with)."""
    import importlib

    if run.algo not in _ZOO_ALGOS:
        raise CheckpointError(
            f"{run.model_path}: unknown rl-zoo3 algo {run.algo!r}; known: {list(_ZOO_ALGOS)}"
        )
    module, name = _ZOO_ALGOS[run.algo]
    cls = getattr(importlib.import_module(module), name)
    zip_path, data, meta = read_checkpoint_info(run.model_path)
    check_checkpoint_layout(zip_path, meta, run.env_id)
    model = load_sb3_zip(cls, zip_path, data, run.env_id, None, device, {})
    model.eqrobot_meta = {
        **(meta or {}),
        "env_id": run.env_id,
        "env_kwargs": run.env_kwargs,
        "algo": run.algo,
        "source": "rl-zoo3",
    }
    return model
