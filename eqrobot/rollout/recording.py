"""Episode GIFs: the frames :func:`~eqrobot.rollout.episodes.run_episodes` rendered, written with
imageio, optionally labelled (e.g. with the task-rotation angle) in the top-left corner."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def label_frame(frame: np.ndarray, text: str) -> np.ndarray:
    """The frame with ``text`` drawn in white on a dark box at the top left (Pillow's default font)."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = draw.textbbox((4, 3), text)
    draw.rectangle((x0 - 3, y0 - 2, x1 + 3, y1 + 2), fill=(20, 20, 20))
    draw.text((4, 3), text, fill=(255, 255, 255))
    return np.asarray(img)


def save_gif(
    frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 12.5, label: str | None = None
) -> Path:
    """Write ``frames`` as a looping GIF at ``fps`` frames per second; ``label`` goes on every frame."""
    import imageio.v3 as iio

    if not frames:
        raise ValueError(f"{path}: no frames to write (was the env made with render_mode='rgb_array'?)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stack = np.stack([label_frame(f, label) if label else np.asarray(f) for f in frames])
    iio.imwrite(path, stack, duration=int(round(1000 / fps)), loop=0)
    return path
