"""An experiment: a typed grid of training trials plus the rotation splits each trained policy meets.

A config is a TOML file (shipped ones live under ``experiments/`` at the repository root)::

    name = "reach-demo"

    [[agents]]                      # an agent = algorithm + policy + preset overrides
    name = "eq"
    algo = "sac"
    policy = "equivariant"
    hyperparams = { learning_starts = 100 }

    [[grids]]                       # each grid is a cross product; the trials are their union
    envs = ["eqrobot/Reach-v0"]     # or the task name alone: "Reach"
    agents = ["eq"]                 # default: every agent
    seeds = [0, 1, 2]
    demos = [0]
    steps = 5000                    # a number or a list (budget axis); omitted: the preset's budget
    rotation_range_deg = [0.0]      # train-time task rotation half-width(s)

    [evaluation]                    # run on every finished policy (optional)
    splits = ["canonical", "so2-sweep"]
    episodes_per_bin = 10

Every table and key is checked before anything runs (:meth:`ExperimentConfig.validate`): an
unknown key, env, algorithm, policy or split, or a budget <= 0, raises :class:`ConfigError` naming
the key and the valid values.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A bad experiment config; the message names the key and the valid values."""


@dataclass
class AgentSpec:
    """One learner: an algorithm, a policy kind and overrides of their preset."""

    name: str
    """Label used in trial names and reports (letters, digits, ``_`` and ``.``)."""
    algo: str = "sac"
    """RL algorithm (``eqrobot.rl.ALGOS``: sac, td3, ppo)."""
    policy: str = "equivariant"
    """Policy kind (``eqrobot.rl.POLICIES``: equivariant, mlp)."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    """SB3 algorithm arguments overriding the preset's, key by key."""
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    """SB3 ``policy_kwargs`` overriding the preset's, key by key."""
    augment: str | None = None
    """Replay augmentation (``eqrobot.rl.config.AUGMENTATIONS``: so2, se3; off-policy only); None: off."""


@dataclass
class GridSpec:
    """A cross product of trials: envs x agents x seeds x demos x steps x rotation ranges."""

    envs: list[str]
    """Env ids (``eqrobot/Push-v0``) or task names (``Push``, meaning ``eqrobot/Push-v0``)."""
    agents: list[str] | None = None
    """Names of ``[[agents]]`` entries; None: every agent."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Training seeds."""
    demos: list[int] = field(default_factory=lambda: [0])
    """Oracle demo episodes put into the replay buffer before learning."""
    steps: list[int] | None = None
    """Training budgets in env steps; None: each (env, algo, policy) preset's budget."""
    rotation_range_deg: list[float] = field(default_factory=lambda: [0.0])
    """Half-widths (degrees) of the random task rotation at each training reset."""
    eval_freq: int | None = None
    """Env steps between periodic evaluations; None: the preset's."""
    eval_episodes: int = 20
    """Episodes per periodic evaluation."""


@dataclass
class EvaluationSpec:
    """Rotation splits run on every finished policy (as Ray tasks)."""

    splits: list[str] = field(default_factory=list)
    """Split names as ``eqrobot rotation`` knows them; empty: no rotation evaluation."""
    episodes_per_bin: int = 10
    """Episodes in every bin of every split."""
    seed: int = 0
    """Seed block of the splits (same seed, same episodes as ``eqrobot rotation --seed``)."""
    episodes_per_task: int = 24
    """Episodes per Ray task (each task loads the policy once, so not too few)."""
    references: list[str] = field(default_factory=list)
    """Extra policies evaluated once per env on the same splits, e.g. ``"oracle"``."""


@dataclass
class ExperimentConfig:
    """A named set of training trials and the evaluation of each trained policy."""

    name: str
    """Experiment name (the default output folder is ``runs/sweeps/<name>``)."""
    agents: list[AgentSpec]
    """The learners the grids refer to by name."""
    grids: list[GridSpec]
    """Cross products of trials; the experiment's trials are their union (no duplicates)."""
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)
    """Rotation evaluation of every finished policy."""
    description: str = ""
    """Free text for the report."""
    save_replay_buffer: bool = True
    """Checkpoint the replay buffer too, so an interrupted trial resumes exactly (costs disk); without
    it an interrupted trial resumes from an empty buffer, refilled with its demos."""

    # --- building -------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> ExperimentConfig:
        """Build from plain data (a parsed TOML file); unknown keys raise :class:`ConfigError`."""
        _check_keys(d, cls, source)
        if "name" not in d:
            raise ConfigError(f"{source}: missing key 'name' (the experiment's name)")
        agents = [
            _build(AgentSpec, a, f"{source}: agents[{i}]")
            for i, a in enumerate(_table_list(d, "agents", source))
        ]
        grids = [
            _build(GridSpec, g, f"{source}: grids[{i}]")
            for i, g in enumerate(_table_list(d, "grids", source))
        ]
        evaluation = _build(EvaluationSpec, d.get("evaluation", {}), f"{source}: evaluation")
        config = cls(
            name=str(d["name"]),
            agents=agents,
            grids=grids,
            evaluation=evaluation,
            description=str(d.get("description", "")),
            save_replay_buffer=bool(d.get("save_replay_buffer", True)),
        )
        config.validate(source)
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # --- checking -------------------------------------------------------------------------------
    def validate(self, source: str = "config") -> None:
        """Raise :class:`ConfigError` for anything that would fail once trials run."""
        from eqrobot.rl.config import ALGOS, AUGMENTATIONS, POLICIES

        if not self.agents:
            raise ConfigError(f"{source}: no [[agents]]; add at least one (name, algo, policy)")
        if not self.grids:
            raise ConfigError(f"{source}: no [[grids]]; add at least one (envs, seeds, steps, ...)")
        names = [a.name for a in self.agents]
        for i, a in enumerate(self.agents):
            where = f"{source}: agents[{i}]"
            if not a.name or not all(ch.isalnum() or ch in "_." for ch in a.name):
                raise ConfigError(f"{where}.name {a.name!r}: use letters, digits, '_' and '.' only")
            if names.count(a.name) > 1:
                raise ConfigError(f"{where}.name {a.name!r} is used by two agents; names must be unique")
            if a.algo not in ALGOS:
                raise ConfigError(f"{where}.algo: unknown algo {a.algo!r}; valid: {', '.join(ALGOS)}")
            if a.augment is not None and a.augment not in AUGMENTATIONS:
                raise ConfigError(
                    f"{where}.augment: unknown augmentation {a.augment!r}; valid: {', '.join(AUGMENTATIONS)}"
                )
            if a.policy not in POLICIES:
                raise ConfigError(
                    f"{where}.policy: unknown policy {a.policy!r}; valid: {', '.join(POLICIES)}"
                )
        for i, g in enumerate(self.grids):
            where = f"{source}: grids[{i}]"
            g.envs = [_env_id(e, f"{where}.envs") for e in g.envs]
            for agent in g.agents or []:
                if agent not in names:
                    raise ConfigError(f"{where}.agents: unknown agent {agent!r}; valid: {', '.join(names)}")
            for key in ("envs", "seeds", "demos", "rotation_range_deg"):
                if not getattr(g, key):
                    raise ConfigError(f"{where}.{key} is empty; give at least one value")
            if g.steps is not None and (not g.steps or any(s <= 0 for s in g.steps)):
                raise ConfigError(f"{where}.steps must be > 0 (env steps per trial), got {g.steps}")
            if any(s < 0 for s in g.seeds) or any(n < 0 for n in g.demos):
                raise ConfigError(f"{where}: seeds and demos must be >= 0, got {g.seeds} and {g.demos}")
            max_deg = _max_rotation_range_deg()
            if any(not math.isfinite(r) or not 0 <= r <= max_deg for r in g.rotation_range_deg):
                raise ConfigError(
                    f"{where}.rotation_range_deg must be in [0, {max_deg:.1f}] (degrees; the task rotates "
                    f"about the robot's base, within Panda joint 1's range), got {g.rotation_range_deg}"
                )
            if g.eval_freq is not None and g.eval_freq < 0 or g.eval_episodes < 1:
                raise ConfigError(f"{where}: need eval_freq >= 0 and eval_episodes >= 1")
        ev = self.evaluation
        _check_splits(ev.splits, f"{source}: evaluation.splits")
        if ev.episodes_per_bin < 1 or ev.episodes_per_task < 1 or ev.seed < 0:
            raise ConfigError(
                f"{source}: evaluation needs episodes_per_bin >= 1, episodes_per_task >= 1 and seed >= 0"
            )
        trials = self.trials()
        seen: dict[str, int] = {}
        for t in trials:
            seen[t.name] = seen.get(t.name, 0) + 1
        dup = sorted(n for n, k in seen.items() if k > 1)
        if dup:
            raise ConfigError(
                f"{source}: trials {dup} appear in more than one grid; each trial must be unique"
            )

    # --- expanding ------------------------------------------------------------------------------
    def trials(self) -> list[Trial]:
        """Every trial, grid by grid, in a fixed order: env, demos, budget, rotation, seed, agent.

        The agents of one seed are adjacent, so with two concurrent trials an equivariant run and
        its MLP baseline train side by side, under the same load (their throughputs compare).
        """
        from eqrobot.rl.presets import get_preset

        by_name = {a.name: a for a in self.agents}
        out = []
        for g in self.grids:
            agents = [by_name[n] for n in (g.agents or list(by_name))]
            budgets: list = g.steps or [None]  # None: each agent's preset budget
            for env_id in g.envs:
                for demos in g.demos:
                    for steps in budgets:
                        for rot in g.rotation_range_deg:
                            for seed in g.seeds:
                                for agent in agents:
                                    n = steps or get_preset(env_id, agent.algo, agent.policy).steps
                                    out.append(
                                        Trial(
                                            env_id, agent, seed, demos, n, rot, g.eval_freq, g.eval_episodes
                                        )
                                    )
        return out


@dataclass(frozen=True)
class Trial:
    """One training run of the grid."""

    env_id: str
    agent: AgentSpec
    seed: int
    demos: int
    steps: int
    rotation_range_deg: float
    eval_freq: int | None
    eval_episodes: int

    @property
    def task(self) -> str:
        return self.env_id.split("/")[-1].split("-")[0]

    @property
    def name(self) -> str:
        """Stable, readable and unique within an experiment: the run folder's name."""
        return (
            f"{self.task}-{self.agent.name}-d{self.demos}-n{self.steps}"
            f"-r{self.rotation_range_deg:g}-s{self.seed}"
        )

    @property
    def group(self) -> str:
        """The trial's name without its seed: the trials a report pools over seeds."""
        return self.name.rsplit("-s", 1)[0]

    def train_config(self, out: str | Path, save_replay_buffer: bool = True):
        """The :class:`eqrobot.rl.TrainConfig` of this trial, its run folder ``out/<name>``."""
        from eqrobot.rl.config import TrainConfig

        return TrainConfig(
            env_id=self.env_id,
            algo=self.agent.algo,
            policy=self.agent.policy,
            steps=self.steps,
            seed=self.seed,
            demos=self.demos,
            rotation_range_deg=self.rotation_range_deg,
            eval_freq=self.eval_freq,
            eval_episodes=self.eval_episodes,
            out=str(out),
            run_name=self.name,
            augment=self.agent.augment,
            hyperparams=dict(self.agent.hyperparams),
            policy_kwargs=dict(self.agent.policy_kwargs),
            save_replay_buffer=save_replay_buffer,
            progress_bar=False,
            torch_threads=1,
        )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "name": self.name, "group": self.group}


# --- files ----------------------------------------------------------------------------------------
def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and check an experiment TOML file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"experiment config {str(path)!r}: no such file")
    if path.suffix != ".toml":
        raise ConfigError(f"{path}: experiment configs are TOML files (.toml)")
    toml = _toml_module()
    try:
        data = toml.loads(path.read_text())
    except toml.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from e
    return ExperimentConfig.from_dict(data, source=str(path))


def _max_rotation_range_deg() -> float:
    from eqrobot.sim import JOINT1_LIMIT  # the envs' own bound on task_rotation_range

    return math.degrees(JOINT1_LIMIT)


def _toml_module():
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:
        import tomli  # the same parser, before it joined the standard library in Python 3.11
    except ImportError:
        raise ConfigError(
            "reading TOML on Python 3.10 needs the 'tomli' package: pip install tomli "
            "(eqrobot depends on it there: reinstalling it, pip install -e ., brings it)"
        ) from None
    return tomli


# --- helpers --------------------------------------------------------------------------------------
_LIST_FIELDS = {"envs", "agents", "seeds", "demos", "steps", "rotation_range_deg", "splits", "references"}


def _check_keys(d: Any, cls: type, where: str) -> None:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a table, got {type(d).__name__}")
    valid = [f.name for f in dataclasses.fields(cls)]
    for key in d:
        if key not in valid:
            raise ConfigError(f"{where}: unknown key {key!r}; valid keys: {', '.join(valid)}")


def _table_list(d: dict, key: str, source: str) -> list:
    value = d.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(
            f"{source}: '{key}' must be an array of tables ([[{key}]]), got {type(value).__name__}"
        )
    return value


def _build(cls: type, d: Any, where: str):
    """A dataclass from a table: keys checked, scalar-or-list fields normalized, types checked."""
    _check_keys(d, cls, where)
    kwargs = {}
    hints = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in d.items():
        if key in _LIST_FIELDS and value is not None and not isinstance(value, list):
            value = [value]
        kwargs[key] = _coerce(value, hints[key].type, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required key is missing
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in d
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        raise ConfigError(f"{where}: missing key(s) {missing}") from e


def _coerce(value: Any, type_text: str, where: str) -> Any:
    """Check a TOML value against a field's annotation (the annotations are strings here)."""
    scalar = {"int": int, "float": (int, float), "str": str, "bool": bool}
    kind = type_text.replace(" | None", "")
    if value is None:
        return None
    if kind.startswith("list["):
        inner = kind[5:-1]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list of {inner}, got {value!r}")
        return [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if kind.startswith("dict["):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return value
    if kind in scalar:
        ok = isinstance(value, scalar[kind]) and not (kind != "bool" and isinstance(value, bool))
        if not ok:
            raise ConfigError(f"{where}: expected {kind}, got {value!r}")
        return float(value) if kind == "float" else value
    return value


def _env_id(name: str, where: str) -> str:
    from eqrobot.envs.registration import ENV_IDS

    env_id = name if "/" in name else f"eqrobot/{name}-v0"
    if env_id not in ENV_IDS:
        short = [e.split("/")[-1].split("-")[0] for e in ENV_IDS]
        raise ConfigError(
            f"{where}: unknown env {name!r}; valid: {', '.join(ENV_IDS)} (or {', '.join(short)})"
        )
    return env_id


def _check_splits(names: list[str], where: str) -> None:
    from eqrobot.rotation.splits import SPLITS

    for n in names:
        if n not in SPLITS:
            raise ConfigError(f"{where}: unknown split {n!r}; valid: {', '.join(SPLITS)}")
