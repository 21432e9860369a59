"""scripts/bench_replay.py: the four buffers it times are filled alike and its JSON holds both ratios."""

import json

import numpy as np
import torch


def test_bench_replay_small(tmp_path, load_script):
    mod = load_script("bench_replay")
    out = tmp_path / "replay.json"
    argv = ["--env", "Reach", "--transitions", "120", "--buffer-size", "500", "--batch", "16",
            "--calls", "3", "--rounds", "1", "--out", str(out)]  # fmt: skip
    assert mod.main(argv) == 0
    data = json.loads(out.read_text())
    assert set(data["ms_per_sample"]) == {cls.__name__ for cls in mod.BUFFERS}
    assert set(data["speedup"]) == set(mod.PAIRS) and all(r > 0 for r in data["speedup"].values())
    buffers = mod.fill("eqrobot/Reach-v0", 120, 500)
    batches = {}
    for name, buffer in buffers.items():
        np.random.seed(0)
        batches[name] = buffer.sample(16)
    for sb3, fast in mod.PAIRS.values():  # each pair is timed on the same batches
        for key in batches[sb3].observations:
            torch.testing.assert_close(batches[fast].observations[key], batches[sb3].observations[key])
