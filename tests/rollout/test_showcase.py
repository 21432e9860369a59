"""The oracle showcase behind `make demo`: rows and a GIF per task."""

import os

from eqrobot.rollout.showcase import format_rows, run_oracle_showcase


def test_showcase_rows_and_gif(tmp_path):
    rows = run_oracle_showcase(str(tmp_path), episodes=1, tasks=["Reach"], verbose=False)
    assert len(rows) == 1
    row = rows[0]
    assert row["task"] == "Reach" and row["success_rate"] == 1.0 and row["steps_per_s"] > 0
    assert os.path.getsize(row["gif"]) > 1000
    assert "Reach" in format_rows(rows)
