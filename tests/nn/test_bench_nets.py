"""Smoke test of scripts/bench_nets.py (slow: it builds e3nn tensor-product networks)."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_nets.py"


@pytest.mark.slow
def test_bench_nets_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_nets", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "bench.json"
    res = mod.main(["--quick", "--hidden", "16", "--threads", "1", "--out", str(out)])
    data = json.loads(out.read_text())
    assert {c["net"] for c in data["configs"]} == {"equivariant", "mlp", "e3nn_tp"}
    assert res["goals"].keys() == data["goals"].keys()
    for c in data["configs"]:
        assert c["params"] > 0 and c["fwd_b1_ms"] > 0
