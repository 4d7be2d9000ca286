"""batch: images per second of a batch of contents against one at a time."""

from __future__ import annotations

import numpy as np
from absl import flags

from benchmarks.timing import new_transfer, random_images, seconds_per_call
from nst_tf import Config
from nst_tf.features import build_extractor

TITLE = "Batch against one image at a time"
flags.DEFINE_integer("batch_size_px", 256, "batch: square image size in pixels.")
flags.DEFINE_integer("batch_count", 4, "batch: content images in the batch.")
FLAGS = flags.FLAGS


def run(repeats: int) -> str:
    """Images per second of one batched step against single steps, same size and style."""
    size, count = FLAGS.batch_size_px, FLAGS.batch_count
    content, style = random_images(size)
    config = Config(size=size, weights="random", precision="float32", multiscale="off")
    extractor = build_extractor(config.content_layers + config.style_layers, weights="random")
    contents = [np.roll(content, 7 * i, axis=1) for i in range(count)]
    r = seconds_per_call(
        {
            "single": new_transfer(content, style, config, extractor).stage.step,
            "batch": new_transfer(contents, style, config, extractor).stage.step,
        },
        repeats,
    )
    single, batch = 1.0 / r["single"], count / r["batch"]
    speedup = count * r.ratio("single", "batch")
    return (
        f"{size}x{size}, L-BFGS, float32; median of {repeats} interleaved rounds after 3 "
        "warm-up rounds; the speed-up is the median of the rounds' ratios.\n\n"
        "| run | step (s) | images / s | speed-up |\n|---|---:|---:|---:|\n"
        f"| one image at a time | {r['single']:.3f} | {single:.2f} | 1.00 |\n"
        f"| batch of {count} | {r['batch']:.3f} | {batch:.2f} | {speedup:.2f} |"
    )
