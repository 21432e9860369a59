"""The search ranking: scores from the end of each curve, seeds averaged, ties broken as documented."""

import pytest

from eqrobot.experiments.config import AgentSpec
from eqrobot.experiments.search import rank_agents, trial_score

STEPS = [0, 2500, 5000, 7500, 10000, 12500]


def run(agent, seed, success, steps_per_s=50.0, budget=12500):
    return {
        "agent": agent,
        "seed": seed,
        "env_id": "eqrobot/Push-v0",
        "steps": budget,
        "demos": 100,
        "policy": "mlp",
        "steps_axis": STEPS[: len(success)],
        "success": success,
        "train_steps_per_s": steps_per_s,
    }


def test_trial_score_averages_the_last_evaluations():
    assert trial_score([0.0, 0.0, 1.0, 0.5], window=2) == pytest.approx(0.75)
    assert trial_score([0.2], window=5) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="no score"):
        trial_score([])


def test_rank_agents_orders_by_mean_score_over_seeds():
    agents = {
        "a": AgentSpec("a", "sac", "mlp"),
        "b": AgentSpec("b", "tqc", "mlp", hyperparams={"learning_rate": 3e-4}),
    }
    runs = [
        run("a", 0, [0, 0.1, 0.2, 0.3, 0.4, 0.5]),
        run("a", 1, [0, 0, 0, 0, 0, 0]),
        run("b", 0, [0, 0.1, 0.2, 0.2, 0.2, 0.2]),
        run("b", 1, [0, 0.1, 0.2, 0.2, 0.2, 0.2]),
    ]
    rows = rank_agents(runs, agents, window=2)
    assert [r["agent"] for r in rows] == ["a", "b"]  # a: (0.45 + 0) / 2 = 0.225 > b: 0.2
    assert rows[0]["score_per_seed"] == pytest.approx([0.45, 0.0])
    assert rows[1]["algo"] == "tqc" and rows[1]["hyperparams"] == {"learning_rate": 3e-4}
    assert [r["rank"] for r in rows] == [1, 2]


def test_ties_go_to_the_agent_that_reached_90_first_then_to_the_faster():
    agents = {n: AgentSpec(n, "sac", "mlp") for n in ("slow", "late", "early")}
    runs = [
        run("late", 0, [0, 0, 0, 0, 0.9, 0.9], steps_per_s=90.0),
        run("early", 0, [0, 0, 0.9, 0.9, 0.9, 0.9], steps_per_s=10.0),
        run("slow", 0, [0, 0, 0, 0, 0.9, 0.9], steps_per_s=20.0),
    ]
    assert [r["agent"] for r in rank_agents(runs, agents, window=2)] == ["early", "late", "slow"]


def test_mixed_budgets_within_an_agent_are_refused():
    agents = {"a": AgentSpec("a", "sac", "mlp")}
    with pytest.raises(ValueError, match="different envs, budgets"):
        rank_agents([run("a", 0, [0.1]), run("a", 1, [0.1], budget=60000)], agents)
