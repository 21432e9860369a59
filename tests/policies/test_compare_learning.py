"""scripts/compare_learning.py: the verdict rule (fast) and a tiny old-vs-new run (slow)."""

import json

import pytest


def test_verdict_is_within_seed_spread(load_script):
    mod = load_script("compare_learning")
    assert mod.area([(0, 0.0), (500, 0.5), (1000, 1.0)]) == pytest.approx(0.5)
    same = mod.verdict({"old": [0.4, 0.6], "new": [0.5, 0.55]})
    assert same["new_within_old_spread"] and same["old_within_new_spread"]
    worse = mod.verdict({"old": [0.8, 0.9], "new": [0.1, 0.2]})  # 0.15 far below [0.7, 1.0]
    assert not worse["new_within_old_spread"] and not worse["old_within_new_spread"]


@pytest.mark.slow
def test_compare_learning_tiny(tmp_path, load_script):
    from pathlib import Path

    mod = load_script("compare_learning")
    root = Path(mod.__file__).resolve().parents[1]
    out, png = tmp_path / "l.json", tmp_path / "l.png"
    argv = ["--seeds", "0", "--steps", "100", "--eval-freq", "50", "--eval-episodes", "1"]
    mod.main([*argv, "--old-src", str(root), "--out", str(out), "--png", str(png)])
    data = json.loads(out.read_text())
    assert [s for s, _ in data["curves"]["old"]["0"]] == [s for s, _ in data["curves"]["new"]["0"]]
    assert png.stat().st_size > 1000
