"""Make a clip by panning and zooming across a photo: a test clip whose every frame is a
photo the project may ship.

    python scripts/make_clip.py --photo=nst_tf/samples/chelsea.jpg --output=clip.mp4
    python scripts/make_clip.py --output=frames/ --frames=24 --size=256

The camera starts on the left of the photo and moves right while zooming in by a quarter,
one smooth move over the clip (a global motion with new image content coming in at one
edge: what optical flow and its mask must get right).
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np
from absl import app, flags
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nst_tf", "samples")

flags.DEFINE_string("photo", os.path.join(SAMPLES, "chelsea.jpg"), "The photo to move across.")
flags.DEFINE_string("output", "clip.mp4", "A video file, or a folder for numbered PNG frames.")
flags.DEFINE_integer("frames", 24, "Frame count.")
flags.DEFINE_integer("size", 256, "Width of each frame, in pixels.")
flags.DEFINE_float("fps", 12.0, "Frames a second.")
FLAGS = flags.FLAGS


def pan_and_zoom(photo: str, frames: int = 24, size: int = 256) -> list[np.ndarray]:
    """`frames` RGB uint8 frames [H, W, 3] of width `size`: a window of 70% of the photo
    moving from 42% to 58% of its width while zooming in by a quarter."""
    source = Image.open(photo).convert("RGB")
    width, height = source.size
    window_w, window_h = width / 1.4, height / 1.4
    result = []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        zoom = 1.0 + 0.25 * t
        w, h = window_w / zoom, window_h / zoom
        x, y = width * (0.42 + 0.16 * t), height * 0.5
        box = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
        frame = source.resize((size, round(size * h / w)), Image.BICUBIC, box=box)
        result.append(np.asarray(frame))
    return result


def write_clip(frames: list[np.ndarray], output: str, fps: float) -> None:
    """Frames as a video file (its extension says which) or as numbered PNGs in a folder."""
    from nst_tf import video

    if video.is_video_file(output):
        with tempfile.TemporaryDirectory() as tmp:
            files = [video.frame_path(tmp, i + 1) for i in range(len(frames))]
            for file, frame in zip(files, frames):
                Image.fromarray(frame).save(file)
            video.write_video(output, files, fps)
        return
    os.makedirs(output, exist_ok=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(video.frame_path(output, i + 1))


def main(argv: list[str]) -> None:
    del argv
    write_clip(pan_and_zoom(FLAGS.photo, FLAGS.frames, FLAGS.size), FLAGS.output, FLAGS.fps)


if __name__ == "__main__":
    app.run(main)
