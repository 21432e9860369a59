"""The ``mlp-tuned`` preset is what the search chose: held to the committed search result."""

import json
from pathlib import Path

import pytest

from eqrobot.rl.config import TrainConfig
from eqrobot.rl.presets import TUNED_MLP, get_preset
from eqrobot.rl.train import resolve_config

SEARCH = Path(__file__).resolve().parents[2] / "docs" / "baselines_push" / "search.json"


def best_per_algo(ranked: list[dict]) -> dict[str, dict]:
    best: dict[str, dict] = {}
    for row in ranked:  # ranked best first
        best.setdefault(row["algo"], row)
    return best


def test_the_preset_holds_each_algorithms_search_winner():
    search = json.loads(SEARCH.read_text())
    best = best_per_algo(search["ranked"])
    assert set(best) == set(TUNED_MLP), "the preset covers exactly the searched algorithms"
    for algo, row in best.items():
        assert TUNED_MLP[algo] == {"hyperparams": row["hyperparams"], "policy_kwargs": row["policy_kwargs"]}
        preset = get_preset("eqrobot/Push-v0", algo, "mlp-tuned")
        plain = get_preset("eqrobot/Push-v0", algo, "mlp")
        for key, value in row["hyperparams"].items():
            assert preset.hyperparams[key] == value, (algo, key)
        expected_net = row["policy_kwargs"].get("net_arch", plain.policy_kwargs["net_arch"])
        assert preset.policy_kwargs["net_arch"] == expected_net
    assert search["winner"]["agent"] == search["ranked"][0]["agent"]


@pytest.mark.parametrize("algo", sorted(TUNED_MLP))
def test_mlp_tuned_trains_sb3s_stock_policy(algo):
    c = resolve_config(TrainConfig(env_id="eqrobot/Push-v0", algo=algo, policy="mlp-tuned"))
    plain = resolve_config(TrainConfig(env_id="eqrobot/Push-v0", algo=algo, policy="mlp"))
    assert c.steps == plain.steps and c.her == plain.her  # same budget: only the searched settings move
    assert set(c.hyperparams) == set(plain.hyperparams)


def test_unsearched_algorithms_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="use policy 'mlp' with td3"):
        resolve_config(TrainConfig(env_id="eqrobot/Push-v0", algo="td3", policy="mlp-tuned"))
