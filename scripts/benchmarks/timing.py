"""What the suites share: timing in interleaved rounds, random test images, the bare
network to compare a step with, the machine's matmul peak, whole commands in a child
process with their peak memory, and the picture measures a results table shows."""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from nst_tf import Config, StyleTransfer, prepare, quality

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SAMPLES = os.path.join(ROOT, "nst_tf", "samples")
DOCS = os.path.join(ROOT, "docs")
# The measures of nst_tf.quality a table of pictures shows, in its columns' order.
MEASURES = (*quality.DEPTHS, "colours", "edges", "light")


class Rounds:
    """Wall times of functions timed in interleaved rounds: `rounds[name]` is the median
    seconds of one, `rounds.ratio(a, b)` the median over rounds of a's time over b's."""

    def __init__(self, times: dict[str, list[float]]):
        self.times = times

    def __getitem__(self, name) -> float:
        return statistics.median(self.times[name])

    def ratios(self, a, b) -> list[float]:
        return [x / y for x, y in zip(self.times[a], self.times[b], strict=True)]

    def ratio(self, a, b) -> float:
        return statistics.median(self.ratios(a, b))

    def ratio_with_quartiles(self, a, b) -> str:
        """The ratio, and in brackets the lower and upper quartiles of the rounds' ratios
        (of three rounds: the lowest and the highest). The middle quartile is the median."""
        low, median, high = statistics.quantiles(self.ratios(a, b), n=4)
        return f"{median:.2f} ({low:.2f}-{high:.2f})"


def seconds_per_call(
    fns: dict[str, object], repeats: int, warmup: int = 3, settle: bool = False
) -> Rounds:
    """Wall time of each fn() in `repeats` rounds, after `warmup` rounds.

    The functions take turns within each round, so a slow spell of a shared machine lands
    on all of them alike. Ratios are taken within each round, then the median of them,
    which cancels the machine's drift from round to round.

    With `settle`, each timed call follows an untimed call of the same function: for
    functions of different libraries, whose worker threads go on spinning for a while
    after a call (onnxruntime's do) and would take the cores from the start of the next
    library's call. Each is then timed as it runs when called again and again.
    """
    times = {name: [] for name in fns}
    for round_ in range(warmup + repeats):
        for name, fn in fns.items():
            if settle:
                block(fn())
            start = time.perf_counter()
            block(fn())
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return Rounds(times)


def block(result) -> None:
    """Wait for the result's values, so asynchronous execution is inside the timing."""
    for t in tf.nest.flatten(result):
        if hasattr(t, "numpy"):
            t.numpy()


def random_images(size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return tuple(rng.uniform(0, 255, (size, size, 3)).astype(np.float32) for _ in "cs")


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


def conv_layers(extractor, height: int, width: int):
    """(layer, height, width) of each of the extractor's convolutions, with the size of its
    output for an image of height x width (every window layer's output is floor(input /
    stride), as in nst_tf's networks)."""
    for layer in extractor.layers:
        if isinstance(layer, keras.layers.Conv2D):
            height, width = height // layer.strides[0], width // layer.strides[1]
            yield layer, height, width
        elif isinstance(layer, keras.layers.MaxPooling2D | keras.layers.AveragePooling2D):
            height, width = height // layer.strides[0], width // layer.strides[1]


def conv_flops(extractor, height: int, width: int) -> int:
    """Multiply-adds x 2 of the extractor's convolutions, forward plus input gradient (the
    input gradient of a convolution costs what its forward pass does)."""
    return 2 * sum(
        2 * h * w * math.prod(layer.kernel.shape)
        for layer, h, w in conv_layers(extractor, height, width)
    )


def matmul_gflops(dtype=tf.float32, n: int = 4096, repeats: int = 5) -> float:
    """The machine's measured peak: GFLOP/s of an n x n matrix product."""
    a = tf.random.stateless_normal((n, n), seed=(1, 2), dtype=tf.float32)
    a = tf.cast(a, dtype)
    product = tf.function(lambda: tf.matmul(a, a))
    seconds = seconds_per_call({"matmul": product}, repeats, warmup=2)["matmul"]
    return 2 * n**3 / seconds / 1e9


# Runs argv[1:] and prints its peak resident memory in KiB. A child's ru_maxrss starts from
# the high-water mark of the process it was forked from, so children are forked from this
# small launcher, never from the benchmark process, which by then holds gigabytes.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(usage.ru_maxrss)
if os.WIFSIGNALED(status):
    print(f"killed by signal {os.WTERMSIG(status)}", file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status) != 0)
"""


class ChildRun(NamedTuple):
    rss: float  # peak resident memory, GiB
    seconds: float  # wall time
    stderr: str  # what the command wrote: its progress lines and any error


def peak_rss_gib(*args: str) -> ChildRun:
    """Peak resident memory (GiB), wall time (s) and stderr of `python -m nst_tf args...`,
    measured from outside by the kernel's accounting of the finished child."""
    start = time.perf_counter()
    launcher = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "nst_tf", *args],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if launcher.returncode:
        raise RuntimeError(f"nst_tf {' '.join(args)} failed:\n{launcher.stderr}")
    # ru_maxrss is in KiB on Linux
    return ChildRun(int(launcher.stdout) / 2**20, seconds, launcher.stderr)


def square_run(size: int, steps: int, *flags: str) -> ChildRun:
    """peak_rss_gib of a whole one-scale `nst_tf` run on random square images of `size`,
    with any further command-line `flags`."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, image in zip("cs", random_images(size)):
            paths.append(os.path.join(tmp, f"{name}{size}.png"))
            Image.fromarray(image.astype(np.uint8)).save(paths[-1])
        return peak_rss_gib(
            f"--content={paths[0]}", f"--style={paths[1]}", f"--size={size}",
            f"--steps={steps}", "--multiscale=off", "--weights=random", "--precision=float32",
            f"--max_input_pixels={size * size}", f"--output={os.path.join(tmp, 'out.png')}", *flags,
        )  # fmt: skip


def rounds_for(repeats: int, size: int) -> int:
    """Fewer rounds for big images: `repeats` up to 512 px, a quarter of them per doubling."""
    return max(3, round(repeats * min(1.0, (512 / size) ** 2)))


def new_transfer(content, style, config: Config, extractor=None) -> StyleTransfer:
    """A run of these images and settings, as the API makes it."""
    return StyleTransfer(prepare(config, content, style), extractor)
