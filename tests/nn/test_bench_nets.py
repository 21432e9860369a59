"""Smoke test of scripts/bench_nets.py (slow: it builds e3nn tensor-product networks)."""

import json

import pytest


@pytest.mark.slow
def test_bench_nets_quick(tmp_path, load_script):
    mod = load_script("bench_nets")
    out = tmp_path / "bench.json"
    res = mod.main(["--quick", "--hidden", "16", "--threads", "1", "--out", str(out)])
    data = json.loads(out.read_text())
    assert {c["net"] for c in data["configs"]} == {"equivariant", "mlp", "e3nn_tp"}
    assert res["goals"].keys() == data["goals"].keys()
    for c in data["configs"]:
        assert c["params"] > 0 and c["fwd_b1_ms"] > 0
