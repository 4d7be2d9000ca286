#!/usr/bin/env python3
"""Benchmarks of nst_tf, printed as Markdown tables (and appended to BENCHMARKS.md on request).

Suites (--suite, comma-separated):
  quickstart  wall time and peak memory of the README's quick-start command, as a user
           runs it, with the default precision and in float32.
  step     seconds per step of our step against a bare forward and input-gradient through
           the same truncated network and against the naive baseline (naive_baseline.py);
           GFLOP/s against a measured matmul peak; peak memory of a whole run in a child
           process (--sizes, --networks: VGG19 and VGG16).
  overhead  our step (L-BFGS and Adam) and the command's step (with its per-step work)
           against the bare network, in each precision (--overhead_precisions) and size
           (--overhead_sizes).
  conv     milliseconds of each distinct VGG19 convolution's forward pass as TensorFlow's
           Conv2D and as the transposed convolution nst_tf runs instead, and of the whole
           truncated network's forward and input-gradient with Keras's layers and ours
           (--conv_size).
  large    peak memory and wall time of whole runs at large sizes (--large_sizes).
  batch    images per second of a batch of contents against one at a time
           (--batch_size_px, --batch_count).
  precision  step time of float32, mixed_bfloat16 and mixed_float16, and of XLA, and the
           final loss of a run in each (--precision_size, --precision_steps).
  serving  latency of the exported serving_default signature through the TF1 session loader
           (as TF Serving runs it) against the Python API on the same input (--serving_size,
           --serving_steps).
  time_to_quality  the quality of the image (nst_tf.quality's measures) against wall time
           of nst_tf's defaults, jcjohnson/neural-style's recipe, the TensorFlow tutorial's
           and the naive baseline, with trained features (--time_to_quality_size; plot and
           sheets written to docs/; see time_to_quality.py); with --time_to_quality_losses,
           jcjohnson's recipe against the defaults with each style loss.
  history  quality and time of a large coarse-to-fine run of trained features with the
           L-BFGS history in float32, in bfloat16 and in bfloat16 with 5 pairs
           (--history_size, --history_steps; sheet written to docs/history.jpg).
  multiscale  wall time and final loss of coarse-to-fine against one scale with the same
           finest-scale steps, and the time coarse-to-fine takes to reach the single-scale
           final loss (--multiscale_sizes, --multiscale_steps).

    python scripts/benchmark.py --suite=step,serving --append

Timings use random weights: the arithmetic is the same as with the ImageNet weights.
"""

from __future__ import annotations

import io
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import time_to_quality  # noqa: E402  (scripts/, beside this file, as naive_baseline)
from absl import app, flags  # noqa: E402
from naive_baseline import NaiveStyleTransfer  # noqa: E402  (scripts/, beside this file)
from PIL import Image  # noqa: E402
from sheet import contact_sheet  # noqa: E402  (scripts/, beside this file)

from nst_tf import Config, StyleTransfer, features, prepare, pyramid, quality  # noqa: E402
from nst_tf.config import PRECISIONS  # noqa: E402
from nst_tf.engine import Stage  # noqa: E402
from nst_tf.features import build_extractor, resolve_precision  # noqa: E402
from nst_tf.images import load_image  # noqa: E402
from nst_tf.progress import Progress  # noqa: E402

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "nst_tf", "samples")

flags.DEFINE_list("suite", ["step"], "Suites to run, in order (see above).")
flags.DEFINE_list("sizes", ["256", "512", "1024"], "step: square image sizes in pixels.")
flags.DEFINE_list(
    "networks", ["vgg19", "vgg16"], "step: feature networks (the naive baseline is VGG19's)."
)
flags.DEFINE_list("overhead_precisions", ["float32", "mixed_bfloat16"], "overhead: precisions.")
flags.DEFINE_list("overhead_sizes", ["128", "256", "512"], "overhead: square sizes in pixels.")
flags.DEFINE_integer("conv_size", 512, "conv: square image size in pixels.")
flags.DEFINE_integer("precision_size", 512, "precision: square image size in pixels.")
flags.DEFINE_integer("precision_steps", 20, "precision: steps of each run.")
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
flags.DEFINE_integer("batch_size_px", 256, "batch: square image size in pixels.")
flags.DEFINE_integer("batch_count", 4, "batch: content images in the batch.")
flags.DEFINE_integer("repeats", 10, "Timed rounds (after the warm-up rounds).")
flags.DEFINE_integer("serving_size", 256, "serving: square image size in pixels.")
flags.DEFINE_list("serving_steps", ["50", "200"], "serving: optimizer steps per request.")
flags.DEFINE_list("multiscale_sizes", ["512", "1024"], "multiscale: output sizes.")
flags.DEFINE_list("multiscale_steps", ["50", "10"], "multiscale: finest-scale steps per size.")
flags.DEFINE_integer("time_to_quality_size", 512, "time_to_quality: longest side in pixels.")
flags.DEFINE_bool(
    "time_to_quality_losses",
    False,
    "time_to_quality: jcjohnson's recipe against the defaults with each style loss instead.",
)
flags.DEFINE_multi_enum(
    "time_to_quality_recipes",
    list(time_to_quality.RECIPES),
    time_to_quality.RECIPES,
    "time_to_quality: the recipes run beside jcjohnson's (the reference, always run).",
)
flags.DEFINE_integer("history_size", 2048, "history: longest side in pixels.")
flags.DEFINE_integer("history_steps", 30, "history: finest-scale steps.")
flags.DEFINE_integer("history_every", 10, "history: measure every this many finest-scale steps.")
flags.DEFINE_list(
    "history_pair", ["astronaut.jpg", "woman-with-hat-matisse.jpg"], "history: photo, painting."
)
flags.DEFINE_bool("append", False, "Append the tables to BENCHMARKS.md.")
flags.DEFINE_integer("quickstart_runs", 1, "quickstart: runs of the command per precision.")
flags.DEFINE_list("quickstart_precisions", ["auto", "float32"], "quickstart: --precision values.")
FLAGS = flags.FLAGS


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


def seconds_per_call(fns: dict[str, object], repeats: int, warmup: int = 3) -> Rounds:
    """Wall time of each fn() in `repeats` rounds, after `warmup` rounds.

    The functions take turns within each round, so a slow spell of a shared machine lands
    on all of them alike. Ratios are taken within each round, then the median of them,
    which cancels the machine's drift from round to round.
    """
    times = {name: [] for name in fns}
    for round_ in range(warmup + repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            _block(fn())
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return Rounds(times)


def _block(result) -> None:
    """Wait for the result's values, so asynchronous execution is inside the timing."""
    for t in tf.nest.flatten(result):
        if hasattr(t, "numpy"):
            t.numpy()


def _images(size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return tuple(rng.uniform(0, 255, (size, size, 3)).astype(np.float32) for _ in "cs")


# -- step: our step against the bare network ---------------------------------------------


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
    input for an image of height x width."""
    for layer in extractor.layers:
        if isinstance(layer, keras.layers.Conv2D):
            yield layer, height, width
        elif isinstance(layer, keras.layers.MaxPooling2D | keras.layers.AveragePooling2D):
            height, width = height // 2, width // 2


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
        for name, image in zip("cs", _images(size)):
            paths.append(os.path.join(tmp, f"{name}{size}.png"))
            Image.fromarray(image.astype(np.uint8)).save(paths[-1])
        return peak_rss_gib(
            f"--content={paths[0]}", f"--style={paths[1]}", f"--size={size}",
            f"--steps={steps}", "--multiscale=off", "--weights=random", "--precision=float32",
            f"--max_input_pixels={size * size}", f"--output={os.path.join(tmp, 'out.png')}", *flags,
        )  # fmt: skip


def _rounds(repeats: int, size: int) -> int:
    """Fewer rounds for big images: `repeats` up to 512 px, a quarter of them per doubling."""
    return max(3, round(repeats * min(1.0, (512 / size) ** 2)))


def step_suite(repeats: int) -> str:
    peak = matmul_gflops()
    lines = [
        "| network | size | bare fwd+bwd (s) | our step (s) | naive baseline (s) | ours / bare "
        "| naive / ours | our GFLOP/s | of matmul peak | peak RSS of a run (GiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for network in FLAGS.networks:
        for size in (int(s) for s in FLAGS.sizes):
            print(f"step: {network} {size}x{size} ...", file=sys.stderr)
            lines.append(_step_row(network, size, repeats, peak))
    return (
        f"Median of interleaved rounds ({repeats} up to 512 px, a quarter as many per doubling, "
        "at least 3) after 3 warm-up rounds; float32, L-BFGS, random weights. A ratio is the "
        "median of the rounds' ratios, with their quartiles in brackets. The naive baseline "
        "is VGG19's in every row. GFLOP/s counts the convolutions' forward and input-gradient "
        "arithmetic of the truncated network (to block5_conv1) per step; the matmul peak is a "
        f"4096x4096 float32 product in the same run: {peak:.0f} GFLOP/s. Peak RSS: a whole "
        "`nst_tf` command (5 steps, one scale) in a child process.\n\n" + "\n".join(lines)
    )


def _transfer(content, style, config: Config, extractor=None) -> StyleTransfer:
    """A run of these images and settings, as the API makes it."""
    return StyleTransfer(prepare(config, content, style), extractor)


def _step_row(network: str, size: int, repeats: int, peak: float) -> str:
    content, style = _images(size)
    config = Config(
        size=size, weights="random", network=network, precision="float32", multiscale="off"
    )
    extractor = build_extractor(
        config.content_layers + config.style_layers, weights="random", network=network
    )
    fns = {
        "bare": bare_network(extractor, tf.constant(content[None])),
        "ours": _transfer(content, style, config, extractor).stage.step,
        "naive": NaiveStyleTransfer(content, style).step,
    }
    r = seconds_per_call(fns, _rounds(repeats, size))
    gflops = conv_flops(extractor, size, size) / r["ours"] / 1e9
    rss = square_run(size, 5, f"--network={network}").rss
    return (
        f"| {network.upper()} | {size}x{size} | {r['bare']:.3f} | {r['ours']:.3f} | "
        f"{r['naive']:.3f} | {r.ratio_with_quartiles('ours', 'bare')} | "
        f"{r.ratio_with_quartiles('naive', 'ours')} | {gflops:.0f} | {gflops / peak:.0%} | "
        f"{rss:.2f} |"
    )


# -- overhead: our step and the command's against the bare network, per precision ------


def overhead_suite(repeats: int) -> str:
    lines = [
        "| precision | size | bare fwd+bwd (s) | L-BFGS step / bare | Adam step / bare | "
        "Adam step with the command's per-step work / bare |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for precision in FLAGS.overhead_precisions:
        for size in (int(s) for s in FLAGS.overhead_sizes):
            print(f"overhead: {precision} {size}x{size} ...", file=sys.stderr)
            r = _overhead_rounds(precision, size, _rounds(repeats, size))
            lines.append(
                f"| {precision} | {size}x{size} | {r['bare']:.3f} | "
                f"{r.ratio_with_quartiles('lbfgs', 'bare')} | "
                f"{r.ratio_with_quartiles('adam', 'bare')} | "
                f"{r.ratio_with_quartiles('command', 'bare')} |"
            )
    return (
        f"VGG19, random weights, one scale, median of interleaved rounds ({repeats} up to 512 "
        "px, a quarter as many per doubling, at least 3) after 3 warm-up rounds; a ratio is "
        "the median of the rounds' ratios, with their quartiles in brackets. Bare: forward "
        "and input gradient of the same extractor, in the same precision, with a trivial "
        "loss. A step: `StyleTransfer(...).stage.step()`, the loss terms, their gradient, "
        "the finite check and the update. With the command's per-step work: "
        "`StyleTransfer.step()`, which reads the terms and the step count back to Python "
        "and makes the step's Record, then the command's progress line "
        "(`nst_tf.progress.Progress`).\n\n" + "\n".join(lines)
    )


def _overhead_rounds(precision: str, size: int, repeats: int) -> Rounds:
    content, style = _images(size)
    config = Config(  # steps: never done within the rounds
        size=size, steps=10**6, weights="random", precision=precision, multiscale="off"
    )
    extractor = build_extractor(
        config.content_layers + config.style_layers, weights="random", precision=precision
    )
    adam = _transfer(content, style, config.replace(optimizer="adam"), extractor)
    progress = Progress(adam.scales, stream=io.StringIO())

    def command_step():
        record = adam.step()
        progress.update(record.step, record.terms, record.accepted)

    fns = {
        "bare": bare_network(extractor, tf.constant(content[None])),
        "lbfgs": _transfer(content, style, config, extractor).stage.step,
        "adam": adam.stage.step,
        "command": command_step,
    }
    return seconds_per_call(fns, repeats)


# -- conv: TensorFlow's forward convolution against the transposed one ------------------


def conv_suite(repeats: int) -> str:
    size = FLAGS.conv_size
    extractor = build_extractor(["block5_conv1"], weights="random")
    vgg = features.load_network("vgg19", "random")
    keras_net = keras.Model(vgg.inputs, vgg.get_layer("block5_conv1").output)
    preprocess = features.CaffePreprocess()
    image = tf.constant(_images(size)[0][None])
    shapes = {}  # (side, in, out) -> layer names
    for layer, side, _ in conv_layers(extractor, size, size):
        shapes.setdefault((side, *layer.kernel.shape[2:]), []).append(layer.name)
    lines = [
        "| layers | input | output channels | Conv2D forward (ms) | transposed (ms) | speed-up "
        "| nst_tf runs |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    rng = np.random.default_rng(0)
    for (side, cin, cout), names in shapes.items():
        print(f"conv: {side}x{side}x{cin} -> {cout} ...", file=sys.stderr)
        x = tf.constant(rng.normal(size=(1, side, side, cin)), tf.float32)
        kernel = tf.constant(rng.normal(size=(3, 3, cin, cout)), tf.float32)
        r = seconds_per_call(
            {
                "conv2d": tf.function(lambda x=x, k=kernel: tf.nn.conv2d(x, k, 1, "SAME")),
                "transposed": tf.function(
                    lambda x=x, k=kernel: features.same_conv_as_transpose(x, k)
                ),
            },
            repeats,
        )
        runs = "transposed" if features.runs_transposed(cin) else "Conv2D"
        lines.append(
            f"| {', '.join(names)} | {side}x{side}x{cin} | {cout} | {r['conv2d'] * 1e3:.1f} | "
            f"{r['transposed'] * 1e3:.1f} | {r.ratio('conv2d', 'transposed'):.2f} | {runs} |"
        )
    print("conv: whole network ...", file=sys.stderr)
    r = seconds_per_call(
        {
            "keras": bare_network(lambda x: {"out": keras_net(preprocess(x))}, image),
            "ours": bare_network(extractor, image),
        },
        repeats,
    )
    return (
        f"{size}x{size} image, float32, random weights; median of {repeats} interleaved "
        "rounds after 3 warm-up rounds. Speed-up: Conv2D's time over the transposed "
        "convolution's, the median of the rounds' ratios. nst_tf runs a layer transposed "
        f"from {features.TRANSPOSED_FORWARD_CHANNELS} input channels up "
        "(`nst_tf.features.Conv2D`).\n\n"
        + "\n".join(lines)
        + "\n\nThe whole truncated VGG19 (to block5_conv1), forward and input gradient: "
        f"Keras's layers {r['keras']:.3f} s, nst_tf's {r['ours']:.3f} s, "
        f"{r.ratio('keras', 'ours'):.2f}x faster (median of the rounds' ratios)."
    )


def precision_suite(repeats: int) -> str:
    """Step time and final loss of each precision at one size, XLA for the whole step, and
    the L-BFGS update alone as plain TensorFlow ops against XLA."""
    size, steps = FLAGS.precision_size, FLAGS.precision_steps
    content, style = _images(size)
    base = Config(size=size, weights="random", precision="float32", multiscale="off")
    judge = _transfer(content, style, base).stage  # every result is scored in float32
    lines = [
        "| precision | --jit | bare VGG19 fwd+bwd (s) | our step (s) | step speed-up | "
        f"loss after {steps} steps | vs float32 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    runs = [(p, "auto") for p in PRECISIONS if p != "auto"] + [("float32", "on")]
    fns, transfers = {}, {}
    for precision, jit in runs:
        config = base.replace(precision=precision, jit=jit)
        extractor = build_extractor(
            config.content_layers + config.style_layers, weights="random", precision=precision
        )
        transfers[precision, jit] = _transfer(content, style, config, extractor).stage
        fns[precision, jit, "bare"] = bare_network(extractor, tf.constant(content[None]))
        fns[precision, jit, "step"] = transfers[precision, jit].step
    print(f"precision: timing at {size} px ...", file=sys.stderr)
    r = seconds_per_call(fns, repeats)
    update = _update_ms(transfers["float32", "auto"], repeats)
    for precision, jit in runs:  # the timing rounds took steps: start the runs afresh
        transfer = _transfer(content, style, base.replace(precision=precision, jit=jit))
        print(f"precision: {steps} steps of {precision}, XLA {jit} ...", file=sys.stderr)
        transfer.run(steps)
        judge.image.assign(transfer.stage.image)
        loss = float(judge.loss_terms()["total"])
        if (precision, jit) == runs[0]:
            reference = loss
        lines.append(
            f"| {precision} | {jit} | {r[precision, jit, 'bare']:.3f} | "
            f"{r[precision, jit, 'step']:.3f} | "
            f"{r.ratio(('float32', 'auto', 'step'), (precision, jit, 'step')):.2f} | "
            f"{loss:.4g} | {loss / reference - 1:+.2%} |"
        )
    return (
        f"{size}x{size}, L-BFGS, median of {repeats} interleaved rounds after 3 warm-up "
        "rounds; a speed-up is the median of the rounds' ratios. Each final image is scored "
        "by the float32 objective. Matmul peak in the same "
        f"run: float32 {matmul_gflops():.0f} GFLOP/s, bfloat16 "
        f"{matmul_gflops(tf.bfloat16):.0f} GFLOP/s.\n\n" + "\n".join(lines) + "\n\n"
        f"The L-BFGS update alone, after the timing rounds: {update['plain']:.1f} ms as TensorFlow "
        f"ops, {update['xla']:.1f} ms under XLA ({update['speed-up']:.2f}x); "
        f"the first XLA call, which traces and compiles it, took {update['compile']:.2f} s."
    )


def _update_ms(transfer: Stage, repeats: int) -> dict[str, float]:
    """Milliseconds of the transfer's optimizer update, plain and XLA-compiled, from its
    current state and with its current image standing in for the gradient; XLA's speed-up
    over the plain update; and the seconds of the first XLA call ("compile"). The calls
    write into the transfer's L-BFGS history, as its own updates do; nothing after the
    timing uses it."""
    image = transfer.image.read_value()
    loss = tf.zeros([1])  # every trial accepted: the update's full work
    fns = {
        name: tf.function(
            lambda: transfer.optimizer.update(image, image, loss, transfer.state),
            jit_compile=jit,
        )
        for name, jit in (("plain", False), ("xla", True))
    }
    start = time.perf_counter()
    _block(fns["xla"]())
    compile_seconds = time.perf_counter() - start
    r = seconds_per_call(fns, repeats)
    return {
        "plain": 1000 * r["plain"],
        "xla": 1000 * r["xla"],
        "speed-up": r.ratio("plain", "xla"),
        "compile": compile_seconds,
    }


def batch_suite(repeats: int) -> str:
    """Images per second of one batched step against single steps, same size and style."""
    size, count = FLAGS.batch_size_px, FLAGS.batch_count
    content, style = _images(size)
    config = Config(size=size, weights="random", precision="float32", multiscale="off")
    extractor = build_extractor(config.content_layers + config.style_layers, weights="random")
    contents = [np.roll(content, 7 * i, axis=1) for i in range(count)]
    r = seconds_per_call(
        {
            "single": _transfer(content, style, config, extractor).stage.step,
            "batch": _transfer(contents, style, config, extractor).stage.step,
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


def large_suite(repeats: int) -> str:
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


# -- serving: the exported loop through the session loader against the Python API --------


def serving_suite(repeats: int) -> str:
    from nst_tf.export import SessionModel, export_saved_model

    size = FLAGS.serving_size
    content, style = _images(size)
    encoded = {}
    for name, image in (("content_bytes", content), ("style_bytes", style)):
        buffer = io.BytesIO()
        Image.fromarray(image.astype(np.uint8)).save(buffer, "PNG")
        encoded[name] = buffer.getvalue()
    config = Config(size=size, weights="random", precision="float32")
    extractor = build_extractor(config.content_layers + config.style_layers, weights="random")
    with tempfile.TemporaryDirectory() as root:
        print("serving: exporting ...", file=sys.stderr)
        served = SessionModel(export_saved_model(config, root))
        lines = [
            "| steps | serving_default via session (s) | Python API (s) | serving / API |",
            "|---:|---:|---:|---:|",
        ]
        # The API as a user calls it: a new StyleTransfer per image (its targets and the
        # tracing of its step included), the extractor built once.
        decoded = [np.asarray(Image.open(io.BytesIO(v)), np.float32) for v in encoded.values()]
        for steps in (int(s) for s in FLAGS.serving_steps):
            print(f"serving: {steps} steps ...", file=sys.stderr)
            fns = {
                "serving": lambda n=steps: served.run(**encoded, num_steps=n),
                "api": lambda n=steps: _transfer(*decoded, config, extractor).run(n),
            }
            r = seconds_per_call(fns, repeats, warmup=1)
            ratio = r.ratio("serving", "api")
            lines.append(f"| {steps} | {r['serving']:.2f} | {r['api']:.2f} | {ratio:.2f} |")
        served.close()
    return (
        f"{size}x{size} PNG inputs, L-BFGS; median of {repeats} interleaved rounds after 1 "
        "warm-up round (the ratio: median of the rounds' ratios); the serving time includes "
        "decoding, targets and PNG encoding.\n\n" + "\n".join(lines)
    )


# -- multiscale: coarse to fine against one scale ---------------------------------------


class _Reached(Exception):
    """The run reached the target loss."""


def _timed_run(content, style, config, extractor, target=None):
    """Wall time and final-scale loss of a whole coarse-to-fine run, or the time it first
    reaches `target` at its finest scale (the run then stops)."""
    start = time.perf_counter()
    run = _transfer(content, style, config, extractor)
    finest = run.total_steps - run.scales[-1][1]
    last = {}

    def watch(record):
        step, terms = record.step, record.terms
        if step > finest:
            last.update(terms, seconds=time.perf_counter() - start, step=step - finest)
            if target is not None and terms["total"] <= target:
                raise _Reached()

    try:
        run.run(callback=watch)
    except _Reached:
        pass
    return last


def multiscale_suite(repeats: int) -> str:
    del repeats  # each run is long; one of each
    photo = np.asarray(Image.open(os.path.join(SAMPLES, "chelsea.jpg")), np.float32)
    painting = np.asarray(Image.open(os.path.join(SAMPLES, "swirls.jpg")), np.float32)
    base = Config(weights="random", multiscale="off", precision="float32")
    extractor = build_extractor(base.content_layers + base.style_layers, weights="random")
    _timed_run(photo, painting, base.replace(size=64, steps=2), extractor)  # warm-up
    lines = [
        "| size | final-scale steps | run | wall time (s) | final loss | note |",
        "|---:|---:|---|---:|---:|---|",
    ]
    for size, steps in zip(FLAGS.multiscale_sizes, FLAGS.multiscale_steps):
        size, steps = int(size), int(steps)
        print(f"multiscale: {size} px, {steps} steps ...", file=sys.stderr)
        single = _timed_run(photo, painting, base.replace(size=size, steps=steps), extractor)
        on = base.replace(size=size, steps=steps, multiscale="on")
        scales = ", ".join(str(s) for s, _ in pyramid.scales(on))
        multi = _timed_run(photo, painting, on, extractor)
        reach = _timed_run(photo, painting, on, extractor, target=single["total"])
        lines += [
            f"| {size} | {steps} | single scale | {single['seconds']:.0f} | "
            f"{single['total']:.4g} | |",
            f"| {size} | {steps} | multi-scale ({scales}) | {multi['seconds']:.0f} | "
            f"{multi['total']:.4g} | |",
            f"| {size} | {steps} | multi-scale to the single-scale final loss | "
            f"{reach['seconds']:.0f} | {reach['total']:.4g} | reached at finest-scale step "
            f"{reach['step']} |"
            if reach["total"] <= single["total"]
            else f"| {size} | {steps} | multi-scale to the single-scale final loss | - | - | "
            "not reached |",
        ]
    return (
        "Bundled sample images (content 451x300 photo), L-BFGS, random weights; each run "
        "includes building the targets and tracing each scale's step.\n\n" + "\n".join(lines)
    )


def history_suite(repeats: int) -> str:
    """The L-BFGS history in float32 and in bfloat16, and with half the pairs (HISTORIES): the
    same coarse-to-fine run of trained features at a large size, the result measured every
    few finest-scale steps; docs/history.jpg shows the results."""
    del repeats  # one run of each: minutes apiece
    size, steps, every = FLAGS.history_size, FLAGS.history_steps, FLAGS.history_every
    photo, painting = (os.path.join(SAMPLES, name) for name in FLAGS.history_pair)
    base = Config(size=size, steps=steps, weights="hed")
    extractor = build_extractor(
        base.content_layers + base.style_layers, "hed", network="vgg16", precision=base.precision
    )
    judge = build_extractor(quality.MEASURE_LAYERS, "hed", network="vgg16")
    measure = quality.measurer(load_image(photo, size), load_image(painting, size), judge)
    lines = [
        "| history | finest-scale step | seconds | features | colours | edges | sharpness |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    results = {}
    for name, (dtype, pairs) in HISTORIES.items():
        print(f"history: {name} at {size} px ...", file=sys.stderr)
        config = base.replace(lbfgs_history_dtype=dtype, lbfgs_history=pairs)
        transfer = _transfer(photo, painting, config, extractor)
        finest = transfer.total_steps - transfer.scales[-1][1]
        kept, start = [], time.perf_counter()

        def keep(record, kept=kept, start=start, finest=finest, steps=steps):
            step = record.step - finest
            if step > 0 and (step % every == 0 or step == steps):
                kept.append((step, time.perf_counter() - start, record.image()))

        results[name] = transfer.run(callback=keep)
        for step, seconds, image in kept:
            m = measure(image)
            lines.append(
                f"| {name} | {step} | {seconds:.0f} | "
                + " | ".join(f"{m[k]:.3f}" for k in ("features", "colours", "edges", "sharpness"))
                + " |"
            )
    reference = results[next(iter(HISTORIES))]
    differences = []
    for name, result in list(results.items())[1:]:
        difference = np.abs(result - reference)
        differences.append(
            f"{name} differs from it by {difference.mean():.2f} grey levels on average, "
            f"{np.percentile(difference, 99):.1f} at the 99th percentile"
        )
    _history_sheet(results, os.path.join(os.path.dirname(__file__), "..", "docs", "history.jpg"))
    scales = ", ".join(f"{s} px: {n}" for s, n in pyramid.scales(base))
    return (
        f"{os.path.basename(photo)} in the style of {os.path.basename(painting)} at {size} px, "
        f"the defaults (`--precision={resolve_precision(base.precision)}`) with {steps} "
        f"finest-scale steps ({scales}), HED VGG16; "
        "seconds since the run began (the measures are taken outside the run but inside "
        f"these times). Against the result with the history {next(iter(HISTORIES))}: "
        f"{'; '.join(differences)}.\n\n" + "\n".join(lines)
    )


# The L-BFGS histories the history suite compares: (--lbfgs_history_dtype, --lbfgs_history).
HISTORIES = {
    "float32, 10 pairs": ("float32", 10),
    "bfloat16, 10 pairs": ("bfloat16", 10),
    "bfloat16, 5 pairs": ("bfloat16", 5),
}


def _history_sheet(results: dict[str, np.ndarray], path: str) -> None:
    """The results whole, then the same 512-pixel square from the middle of each, at full
    resolution, where rounding differences would show."""
    images = list(results.values())
    height, width = images[0].shape[:2]
    y, x = (height - 512) // 2, (width - 512) // 2
    rows = [images, [image[y : y + 512, x : x + 512] for image in images]]
    caption = (
        f"L-BFGS history, left to right: {', '.join(results)}; whole, then a 512 px square "
        "from the middle at full resolution"
    )
    contact_sheet(rows, caption, 512).save(path, quality=90)


# The README's quick start, run as a user runs it.
QUICKSTART = (
    "--content=nst_tf/samples/astronaut.jpg",
    "--style=nst_tf/samples/woman-with-hat-matisse.jpg",
)


def quickstart_suite(repeats: int) -> str:
    del repeats  # minutes apiece: --quickstart_runs says how many
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    lines = [
        "| precision | runs | wall time (s), fastest to slowest | peak RSS (GiB) |",
        "|---|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for precision in FLAGS.quickstart_precisions:
            runs = []
            for run in range(FLAGS.quickstart_runs):
                print(f"quickstart: --precision={precision}, run {run + 1} ...", file=sys.stderr)
                rss, seconds, _ = peak_rss_gib(
                    *(flag.replace("=", f"={root}/", 1) for flag in QUICKSTART),
                    f"--output={os.path.join(tmp, 'out.png')}", f"--precision={precision}",
                )  # fmt: skip
                runs.append((seconds, rss))
            times = sorted(seconds for seconds, _ in runs)
            span = f"{times[0]:.0f}" if len(times) == 1 else f"{times[0]:.0f} to {times[-1]:.0f}"
            peak = max(rss for _, rss in runs)
            lines.append(f"| {precision} | {len(runs)} | {span} | {peak:.2f} |")
    return (
        "The README's quick-start command (default settings: 512 px, coarse to fine from "
        "256 px, 100 L-BFGS steps at 512 px; `--weights=auto`, here the HED VGG16), a whole "
        "process from start to the written file, `--quickstart_runs` times with each "
        "precision (`auto`: bfloat16 on a CPU with AVX-512 BF16 or AMX).\n\n" + "\n".join(lines)
    )


def time_to_quality_suite(repeats: int) -> str:
    del repeats  # one run of each recipe: minutes apiece
    docs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs")
    return time_to_quality.suite(
        FLAGS.time_to_quality_size,
        docs,
        losses=FLAGS.time_to_quality_losses,
        chosen=tuple(r for r in time_to_quality.RECIPES if r in FLAGS.time_to_quality_recipes),
    )


SUITES = {
    "quickstart": ("The README's quick start", quickstart_suite),
    "step": ("Step time against the bare network and the naive baseline", step_suite),
    "overhead": (
        "Our step and the command's against the bare network, by precision",
        overhead_suite,
    ),
    "conv": ("Forward convolutions: Conv2D against the transposed form", conv_suite),
    "precision": ("Precision and XLA", precision_suite),
    "batch": ("Batch against one image at a time", batch_suite),
    "large": ("Large images: peak memory and time", large_suite),
    "serving": ("Serving latency against the Python API", serving_suite),
    "multiscale": ("Coarse to fine against one scale", multiscale_suite),
    "time_to_quality": ("Time to a good picture", time_to_quality_suite),
    "history": ("The L-BFGS history in bfloat16 and with fewer pairs", history_suite),
}


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
    unknown = set(FLAGS.suite) - set(SUITES)
    if unknown:
        raise app.UsageError(
            f"unknown suite {', '.join(sorted(unknown))}; choose from {', '.join(SUITES)}"
        )
    header = (
        f"Machine: {machine()}\nCommand: `python scripts/benchmark.py {' '.join(sys.argv[1:])}`\n"
    )
    # The large suite first: its child processes need the memory that the other suites
    # leave held by this process.
    for name in sorted(FLAGS.suite, key=lambda name: name != "large"):
        title, suite = SUITES[name]
        report = f"### {title}, {time.strftime('%Y-%m-%d')}\n\n{header}{suite(FLAGS.repeats)}\n"
        print(report)
        if FLAGS.append:
            with open(os.path.join(os.path.dirname(__file__), "..", "BENCHMARKS.md"), "a") as f:
                f.write(f"\n{report}")


if __name__ == "__main__":
    app.run(main)
