"""large: peak memory and wall time of whole runs at large sizes, each in a child process."""

from __future__ import annotations

import re
import sys

from absl import flags

from benchmarks.timing import square_run
from nst_tf import Config

TITLE = "Large images: peak memory and time"
flags.DEFINE_list("large_sizes", ["2048", "3072", "4096"], "large: square output sizes in pixels.")
flags.DEFINE_integer(
    "large_steps", 2, "large: optimizer steps of each run (from 2 on, one updates a history)."
)
flags.DEFINE_integer(
    "large_tile_size", Config().tile_size, "large: --tile_size of each run (smaller: less memory)."
)
flags.DEFINE_string(
    "large_precision", "auto", "large: --precision of each run (auto: the command's default)."
)
flags.DEFINE_list("large_flags", [], "large: more nst_tf flags, without the dashes.")
FLAGS = flags.FLAGS


def run(repeats: int) -> str:
    """Peak memory and wall time of whole runs at large sizes, each in a child process; a
    size that runs out of memory is reported as such, so the table shows the largest that
    fits."""
    del repeats  # each run is long; one of each
    tile_size, precision = FLAGS.large_tile_size, FLAGS.large_precision
    lines = [
        "| size | tiles | peak RSS (GiB) | wall time (s) | seconds per step |",
        "|---:|---|---:|---:|---:|",
    ]
    for size in (int(s) for s in FLAGS.large_sizes):
        print(f"large: {size} px ...", file=sys.stderr)
        tiles = f"of {tile_size}" if size > tile_size else "none"
        try:
            run = square_run(
                size, FLAGS.large_steps, f"--tile_size={tile_size}", f"--precision={precision}",
                *(f"--{flag}" for flag in FLAGS.large_flags),
            )  # fmt: skip
        except RuntimeError as error:
            out_of_memory = re.search("out of memory|killed by signal 9", str(error), re.I)
            reason = "out of memory" if out_of_memory else "failed"
            lines.append(f"| {size}x{size} | {tiles} | {reason} | - | - |")
            continue
        per_step = re.findall(r"([0-9.]+) s/eval", run.stderr)
        lines.append(
            f"| {size}x{size} | {tiles} | {run.rss:.2f} | {run.seconds:.0f} | "
            f"{per_step[-1] if per_step else '-'} |"
        )
    extra = "".join(f" --{flag}" for flag in FLAGS.large_flags)
    return (
        f"Whole `nst_tf` commands (random square images, {FLAGS.large_steps} L-BFGS step(s), "
        f"one scale, --tile_size={tile_size} --precision={precision}{extra}): reading, "
        "targets, steps and writing the PNG; peak resident memory of the child process. "
        "Seconds per step: the mean over the steps from the command's last progress line "
        "(the first step includes tracing).\n\n" + "\n".join(lines)
    )
