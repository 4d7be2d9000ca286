"""devices: a tiled run on one device and spread over two logical CPU devices
(--devices=cpu:2): that the picture is the same (correctness, not speed: two logical CPU
devices share the same cores), and the scaling to expect on GPUs, as arithmetic."""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile

import numpy as np
from absl import flags
from PIL import Image

from benchmarks.timing import SAMPLES, peak_rss_gib

TITLE = "Tiles across devices"
flags.DEFINE_integer("devices_size", 512, "devices: longest side of the run.")
flags.DEFINE_integer("devices_tile_size", 128, "devices: --tile_size of the run.")
flags.DEFINE_integer("devices_steps", 10, "devices: steps of the run (one scale).")
FLAGS = flags.FLAGS


def run(repeats: int) -> str:
    del repeats  # one run per device count
    size, tile, steps = FLAGS.devices_size, FLAGS.devices_tile_size, FLAGS.devices_steps
    lines = [
        "| --devices | wall time (s) | seconds per step | max difference from cpu:1 (grey levels) "
        "| mean difference |",
        "|---|---:|---:|---:|---:|",
    ]
    images = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in ("cpu:1", "cpu:2"):
            print(f"devices: {spec} ...", file=sys.stderr)
            out = os.path.join(tmp, f"{spec.replace(':', '')}.png")
            child = peak_rss_gib(
                f"--content={os.path.join(SAMPLES, 'chelsea.jpg')}",
                f"--style={os.path.join(SAMPLES, 'the_scream.jpg')}", f"--output={out}",
                f"--size={size}", f"--tile_size={tile}", f"--steps={steps}",
                "--multiscale=off", "--weights=random", "--precision=float32",
                f"--devices={spec}",
            )  # fmt: skip
            images[spec] = np.asarray(Image.open(out), np.float32)
            difference = np.abs(images[spec] - images["cpu:1"])
            per_step = re.findall(r"([0-9.]+) s/eval", child.stderr)
            lines.append(
                f"| {spec} | {child.seconds:.0f} | {per_step[-1] if per_step else '-'} | "
                f"{difference.max():.0f} | {difference.mean():.4f} |"
            )
    return (
        f"The bundled cat in the style of The Scream at {size} px, --tile_size={tile} "
        f"({_tiles(*images['cpu:1'].shape[:2], tile)} tiles), {steps} L-BFGS steps, one scale, "
        "float32, random weights, written as 8-bit PNG; the two logical CPU devices share "
        "the machine's cores, so the times say nothing of speed-up.\n\n"
        + "\n".join(lines)
        + "\n\n"
        + expected_scaling()
    )


def _tiles(height: int, width: int, tile: int) -> int:
    return math.ceil(height / tile) * math.ceil(width / tile)


def expected_scaling() -> str:
    """The speed-up to expect on n GPUs, as arithmetic: the tiles of a step are dealt out
    in turn, so the slowest device has ceil(T / n) of T; not measured."""
    rows = [
        "| image | --tile_size | tiles | 2 GPUs | 4 GPUs | 8 GPUs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for side, tile in ((4096, 1024), (6144, 2048), (8192, 1024), (8192, 2048)):
        count = _tiles(side, side, tile)
        speedups = [count / math.ceil(count / n) for n in (2, 4, 8)]
        rows.append(
            f"| {side}x{side} | {tile} | {count} | "
            + " | ".join(f"{s:.1f}x" for s in speedups)
            + " |"
        )
    return (
        "**Expected, not measured** (no GPU machine was at hand): the speed-up of the tiles' "
        "passes on n GPUs, T / ceil(T / n) for T tiles, before the all-reduce (the style "
        "statistics, under 3 MB, and an image-sized gradient: 0.8 GB at 8192x8192, some "
        "milliseconds over NVLink, tens over PCIe) and the update, which runs on one device "
        "and costs a few image-sized vector operations.\n\n" + "\n".join(rows)
    )
