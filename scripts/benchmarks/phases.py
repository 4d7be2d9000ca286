"""phases: where a coarse-to-fine run's time goes, run alone in its process
(--suite=phases) as the command's run is: making the run (the network, the coarsest
scale's targets and stage), and at each scale its first step, the median of its other
steps and its last step, which also makes the next scale's stage."""

from __future__ import annotations

import os
import statistics
import sys
import time

from absl import flags

from benchmarks.timing import SAMPLES, new_transfer
from nst_tf import Config
from nst_tf.images import load_image

TITLE = "Where a run's time goes"
flags.DEFINE_integer("phases_size", 512, "phases: the run's size in pixels.")
flags.DEFINE_string("phases_precision", "auto", "phases: the run's precision.")
FLAGS = flags.FLAGS


def run(repeats: int) -> str:
    del repeats  # one run: a second in the same process finds kernels already set up
    size, precision = FLAGS.phases_size, FLAGS.phases_precision
    print(f"phases: {size} px, {precision} ...", file=sys.stderr)
    content, style = (load_image(os.path.join(SAMPLES, name), size)
                      for name in ("astronaut.jpg", "woman-with-hat-matisse.jpg"))  # fmt: skip
    config = Config(size=size, weights="random", precision=precision)
    start = time.perf_counter()
    transfer = new_transfer(content, style, config)
    making = time.perf_counter() - start
    lines = [
        "| scale | size | steps | first step (s) | median step (s) | last step (s) "
        "| all its steps (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| making the run | | | | | | {making:.2f} |",
    ]
    for scale, (side, steps) in enumerate(transfer.scales):
        times = []
        for _ in range(steps):
            began = time.perf_counter()
            transfer.step()
            times.append(time.perf_counter() - began)
        median = statistics.median(times[1:-1]) if steps > 2 else float("nan")
        lines.append(
            f"| {scale} | {side} | {steps} | {times[0]:.2f} | {median:.3f} | {times[-1]:.2f} "
            f"| {sum(times):.1f} |"
        )
    total = time.perf_counter() - start
    lines.append(f"| the whole run | | {transfer.total_steps} | | | | {total:.1f} |")
    return (
        f"The default schedule at {size} px on the quick start's pair (resized), random "
        f"weights (the trained network's arithmetic), precision `{precision}`, in this "
        "process after its imports. Making the run: the network, the coarsest scale's "
        "targets and stage (which traces the loss's graph). Each scale's first step traces "
        "and compiles its update; its last step also makes the next scale's stage.\n\n"
        + "\n".join(lines)
    )
