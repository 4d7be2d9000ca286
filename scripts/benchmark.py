#!/usr/bin/env python3
"""Seconds per step of our Adam and L-BFGS steps against a bare VGG19 forward+backward.

The bare network is the same truncated VGG19 (same layers, same weights) differentiated
with respect to its input, with a trivial loss: what any optimisation-based style transfer
must pay per step. The ratio step/bare is the overhead of our losses and optimizer.

    python scripts/benchmark.py                      # 256 and 512 px, prints a table
    python scripts/benchmark.py --sizes=256,512 --append   # also appends it to BENCHMARKS.md

Timings use random weights: the arithmetic is the same as with the ImageNet weights.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from nst_tf import Config, StyleTransfer  # noqa: E402
from nst_tf.config import OPTIMIZERS  # noqa: E402
from nst_tf.features import build_extractor  # noqa: E402

flags.DEFINE_list("sizes", ["256", "512"], "Square image sizes in pixels.")
flags.DEFINE_integer("repeats", 10, "Timed rounds (after 3 warm-up rounds).")
flags.DEFINE_bool("append", False, "Append the table to BENCHMARKS.md.")
FLAGS = flags.FLAGS


def seconds_per_call(fns: dict[str, object], repeats: int) -> dict[str, float]:
    """Median wall time of each fn() over `repeats` rounds, after 3 warm-up rounds.

    The functions take turns within each round, so a slow spell of a shared machine
    lands on all of them alike and the ratios stay fair.
    """
    times = {name: [] for name in fns}
    for round_ in range(3 + repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            _block(fn())
            if round_ >= 3:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _block(result) -> None:
    """Wait for the result's values, so asynchronous execution is inside the timing."""
    for t in tf.nest.flatten(result):
        t.numpy()


def bare_network(extractor, image: tf.Tensor):
    """Forward + input-gradient of the truncated VGG19, with a trivial loss."""

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            tape.watch(image)
            features = extractor(image)
            total = tf.add_n([tf.reduce_sum(f) for f in features.values()])
        return tape.gradient(total, image)

    return forward_backward


def measure(size: int, repeats: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    content, style = (rng.uniform(0, 255, (size, size, 3)).astype(np.float32) for _ in "cs")
    base = Config(size=size, weights="random")
    extractor = build_extractor(base.content_layers + base.style_layers, weights="random")
    fns = {"bare": bare_network(extractor, tf.constant(content[None]))}
    for optimizer in OPTIMIZERS:
        config = base.replace(optimizer=optimizer)
        fns[optimizer] = StyleTransfer(content, style, config, extractor).step
    return seconds_per_call(fns, repeats)


def table(rows: dict[int, dict[str, float]]) -> str:
    lines = [
        "| size | bare VGG19 fwd+bwd (s) | adam step (s) | lbfgs step (s) "
        "| adam / bare | lbfgs / bare |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for size, r in rows.items():
        lines.append(
            f"| {size}x{size} | {r['bare']:.3f} | {r['adam']:.3f} | {r['lbfgs']:.3f} | "
            f"{r['adam'] / r['bare']:.2f} | {r['lbfgs'] / r['bare']:.2f} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}"
    )


def main(argv):
    del argv
    rows = {}
    for size in (int(s) for s in FLAGS.sizes):
        print(f"measuring {size}x{size} ...", file=sys.stderr)
        rows[size] = measure(size, FLAGS.repeats)
    report = (
        f"Machine: {machine()}\n"
        f"Command: `python scripts/benchmark.py {' '.join(sys.argv[1:])}`\n"
        f"Median of {FLAGS.repeats} interleaved rounds after 3 warm-up rounds; float32; "
        "random weights.\n\n"
        f"{table(rows)}\n"
    )
    print(report)
    if FLAGS.append:
        with open(os.path.join(os.path.dirname(__file__), "..", "BENCHMARKS.md"), "a") as f:
            f.write(f"\n### Step time, {time.strftime('%Y-%m-%d')}\n\n{report}")


if __name__ == "__main__":
    app.run(main)
