"""`eqrobot sweep` joining a cluster: a simulated 2-node Ray cluster on loopback
(ray.cluster_utils.Cluster, 1 CPU per node) runs a 2-trial sweep with one trial on each node."""

import pytest

pytest.importorskip("ray")

from eqrobot.experiments import ExperimentConfig, run_sweep  # noqa: E402
from eqrobot.experiments.cluster import loopback_only_env  # noqa: E402

CONFIG = {
    "name": "two-nodes",
    "agents": [
        {"name": "eq", "algo": "sac", "policy": "equivariant", "hyperparams": {"learning_starts": 100}}
    ],
    "grids": [{"envs": ["Reach"], "seeds": [0, 1], "steps": 200, "eval_freq": 100, "eval_episodes": 1}],
}


@pytest.fixture(scope="module")
def two_node_cluster():
    import ray
    from ray.cluster_utils import Cluster

    assert not ray.is_initialized()
    loopback_only_env()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}  # loopback only
        assert len(ray.nodes()) == 2
        ray.shutdown()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_trials_are_placed_on_both_nodes(two_node_cluster, tmp_path):
    import ray

    ledger = run_sweep(
        ExperimentConfig.from_dict(CONFIG), tmp_path / "sweep", address=two_node_cluster.address
    )
    assert not ray.is_initialized()  # a joined cluster is left running, this driver disconnected
    nodes = {e["node_id"] for e in ledger["trials"].values()}
    assert all(e["status"] == "finished" for e in ledger["trials"].values())
    assert len(nodes) == 2 and None not in nodes
