"""Hyperparameter presets per (env, algo, policy), in one readable place.

Budgets are planned for this project's reference machine (2 CPU cores, one torch thread per run):
SAC+HER runs at roughly 50-70 env steps/s per run, including one gradient step per env step, with
two runs side by side (fewer when other jobs share the cores). So Reach, solved in a few thousand
steps, trains in a few minutes. The equivariant policy solves Push in 22.5-27.5k steps with 100
demos and in 47.5-50k without; see docs/results.md section 4.

How a preset is built: ``BASE[algo]`` (shared by every env and both policies, so equivariant and
MLP runs use *the same* hyperparameters), then ``TASK[task][algo]`` overrides (budget, buffer,
exploration), then ``POLICY[policy]`` (network size; ``compress_invariants`` for the equivariant
nets); TQC takes SAC's settings throughout. Policy ``mlp-tuned`` adds the overrides a search chose
(``TUNED_MLP``, SAC and TQC only). Sparse goal envs use HER for SAC, TD3 and TQC; dense
``*Dense`` variants do not. Print one with ``python -m eqrobot.rl.presets ENV ALGO POLICY``.
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from eqrobot.rl.config import ALGOS, OFF_POLICY_ALGOS, POLICIES


@dataclass(frozen=True)
class Preset:
    """Resolved defaults for one (env, algo, policy)."""

    steps: int
    """Default training budget in env steps."""
    eval_freq: int
    """Env steps between evaluations/checkpoints."""
    her: bool
    """Use HerReplayBuffer (off-policy algorithms on sparse goal envs)."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    """SB3 algorithm constructor arguments."""
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    """SB3 policy_kwargs."""


HER_KWARGS = {"n_sampled_goal": 4, "goal_selection_strategy": "future"}

# --- shared by every env and both policies ------------------------------------------------------
BASE: dict[str, dict[str, Any]] = {
    "sac": {
        "learning_rate": 1e-3,
        "buffer_size": 200_000,
        "batch_size": 256,
        "gamma": 0.95,  # 50-step episodes with sparse rewards (panda-gym / rl-zoo HER settings)
        "tau": 0.05,
        "learning_starts": 1_000,
        "train_freq": 1,
        "gradient_steps": 1,
        "ent_coef": "auto",
    },
    "td3": {
        "learning_rate": 1e-3,
        "buffer_size": 200_000,
        "batch_size": 256,
        "gamma": 0.95,
        "tau": 0.05,
        "learning_starts": 1_000,
        "train_freq": 1,
        "gradient_steps": 1,
        "policy_delay": 2,
        "target_policy_noise": 0.2,
        "target_noise_clip": 0.5,
        "action_noise_sigma": 0.2,  # eqrobot key: isotropic NormalActionNoise(0, sigma) per component
    },
    "ppo": {
        "learning_rate": 3e-4,
        "n_steps": 1024,  # per env
        "batch_size": 256,
        "n_epochs": 10,
        "gamma": 0.95,
        "gae_lambda": 0.95,
        "clip_range": 0.2,
        "ent_coef": 0.0,
    },
}

# TQC (sb3-contrib) is SAC with a distributional critic: SAC's settings plus TQC's default truncation
# made explicit (the top 2 of each critic's 25 quantiles dropped), so the two compare at equal settings
BASE["tqc"] = {**BASE["sac"], "top_quantiles_to_drop_per_net": 2}

# --- per task (budgets, exploration) ------------------------------------------------------------
TASK: dict[str, dict[str, dict[str, Any]]] = {
    "Reach": {
        # measured (seed 0, 2 cores): equivariant 100% eval success at 1,200 steps, MLP at 4,200
        "sac": {"steps": 5_000, "eval_freq": 500, "learning_starts": 500},
        "td3": {"steps": 5_000, "eval_freq": 500, "learning_starts": 500},
        "ppo": {"steps": 60_000, "eval_freq": 10_000},
    },
    # measured (scripts/bench_rl.py): equivariant SAC+HER first at 90% success after 22.5-27.5k steps
    # with demos=100 (3 seeds), 47.5-50k without (2 seeds); the stock MLP never within 30k / 100k
    "Push": {
        "sac": {"steps": 100_000, "eval_freq": 5_000},
        "td3": {"steps": 100_000, "eval_freq": 5_000},
        "ppo": {"steps": 500_000, "eval_freq": 50_000},
    },
    "PickAndPlace": {
        "sac": {"steps": 200_000, "eval_freq": 10_000},
        "td3": {"steps": 200_000, "eval_freq": 10_000},
        "ppo": {"steps": 1_000_000, "eval_freq": 50_000},
    },
    "Stack": {
        "sac": {"steps": 500_000, "eval_freq": 20_000, "gamma": 0.98},
        "td3": {"steps": 500_000, "eval_freq": 20_000, "gamma": 0.98},
        "ppo": {"steps": 2_000_000, "eval_freq": 100_000, "gamma": 0.98},
    },
    "Rotate": {
        "sac": {"steps": 200_000, "eval_freq": 10_000},
        "td3": {"steps": 200_000, "eval_freq": 10_000},
        "ppo": {"steps": 1_000_000, "eval_freq": 50_000},
    },
    # not measured yet: 100-step episodes (as Stack), so Stack's gamma; Push-like budget doubled
    "Slide": {
        "sac": {"steps": 200_000, "eval_freq": 10_000, "gamma": 0.98},
        "td3": {"steps": 200_000, "eval_freq": 10_000, "gamma": 0.98},
        "ppo": {"steps": 1_000_000, "eval_freq": 50_000, "gamma": 0.98},
    },
}

# --- per policy (network size and options) -----------------------------------------------------------
POLICY: dict[str, dict[str, dict[str, Any]]] = {
    # one invariant-MLP width for every EquivariantNet (actor, each critic); 16 vector channels.
    # compress_invariants (asinh on the dot/triple products): without it the equivariant critic blew
    # up (loss 0.2 -> 1e3 within 400 steps) on 2 of 3 no-demo Push seeds at 27-28k steps; suspected
    # cause: a cube spinning at 20+ rad/s gives raw invariants of ~600 (docs/results.md section 4)
    "equivariant": {
        "sac": {"net_arch": [64, 64], "net_kwargs": {"compress_invariants": True}},
        "td3": {"net_arch": [64, 64], "net_kwargs": {"compress_invariants": True}},
        "ppo": {"net_arch": [64, 64], "net_kwargs": {"compress_invariants": True}},
    },
    # SB3's stock MultiInputPolicy (rl-zoo's panda-gym HER settings use [64, 64] for Reach too)
    "mlp": {
        "sac": {"net_arch": [256, 256]},
        "td3": {"net_arch": [256, 256]},
        "ppo": {"net_arch": [64, 64]},
    },
}

for _table in (*TASK.values(), *POLICY.values()):  # TQC: the same budgets and networks as SAC
    _table["tqc"] = copy.deepcopy(_table["sac"])

# --- the tuned MLP baseline (policy "mlp-tuned") -------------------------------------------------
# Chosen by a search, not by hand: scripts/tuned_mlp_search.py ranked the 8 MLP configurations of
# experiments/baselines_push.toml (Push, 100 demos, 30k env steps, 2 seeds each, SAC and TQC over
# width, batch and learning rate) by mean success over the last 5 evaluations. Per algorithm, the
# best configuration's overrides of the shared preset are below; the search table and the winner
# are docs/results.md section 10 (docs/baselines_push/search.json, which a test holds this table to).
# Tuned on Push, applied to every task. TD3 and PPO were not searched: use policy "mlp" for them.
TUNED_MLP: dict[str, dict[str, dict[str, Any]]] = {
    "sac": {"hyperparams": {}, "policy_kwargs": {"net_arch": [64, 64]}},  # search row mlp_w64
    "tqc": {"hyperparams": {"learning_rate": 3e-4}, "policy_kwargs": {}},  # mlp_tqc_lr3e4, the winner
}
POLICY["mlp-tuned"] = {
    algo: {**copy.deepcopy(POLICY["mlp"][algo]), **copy.deepcopy(tuned["policy_kwargs"])}
    for algo, tuned in TUNED_MLP.items()
}

_PRESET_KEYS = ("steps", "eval_freq")

OPTIMIZER_KWARGS = {"fused": True}
"""Every preset's Adam runs its fused kernel: one op per parameter group instead of a dozen per
tensor, 3.5x faster steps on CPU, same update rule (docs/results.md, "Training throughput")."""


def task_of(env_id: str) -> tuple[str, bool]:
    """``"eqrobot/PushDense-v0"`` -> ``("Push", True)`` (task name, dense reward)."""
    name = env_id.split("/")[-1].split("-")[0]
    dense = name.endswith("Dense")
    return name.removesuffix("Dense"), dense


def get_preset(env_id: str, algo: str, policy: str) -> Preset:
    """The preset for one (env, algo, policy); raises ValueError listing valid names."""
    if algo not in ALGOS:
        raise ValueError(f"unknown algo {algo!r}; valid: {', '.join(ALGOS)}")
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; valid: {', '.join(POLICIES)}")
    task, dense = task_of(env_id)
    if task not in TASK:
        raise ValueError(
            f"no preset for env {env_id!r} (task {task!r}); tasks with presets: {', '.join(TASK)}"
        )
    if algo not in POLICY[policy]:
        raise ValueError(
            f"policy {policy!r} has settings for {', '.join(POLICY[policy])} only (it was tuned for "
            f"those algorithms); use policy 'mlp' with {algo}"
        )
    hp = copy.deepcopy(BASE[algo])
    hp.update(copy.deepcopy(TASK[task][algo]))
    if policy == "mlp-tuned":
        hp.update(copy.deepcopy(TUNED_MLP[algo]["hyperparams"]))
    budget = {k: hp.pop(k) for k in _PRESET_KEYS}
    her = algo in OFF_POLICY_ALGOS and not dense
    return Preset(
        steps=int(budget["steps"]),
        eval_freq=int(budget["eval_freq"]),
        her=her,
        hyperparams=hp,
        policy_kwargs={"optimizer_kwargs": dict(OPTIMIZER_KWARGS), **copy.deepcopy(POLICY[policy][algo])},
    )


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m eqrobot.rl.presets ENV_ID ALGO POLICY")
        raise SystemExit(2)
    print(json.dumps(asdict(get_preset(*args)), indent=2))


if __name__ == "__main__":
    main()
