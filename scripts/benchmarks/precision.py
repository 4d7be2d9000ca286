"""precision: step time of float32, mixed_bfloat16 and mixed_float16, and of XLA, and the
final loss of a run in each."""

from __future__ import annotations

import sys
import time

import tensorflow as tf
from absl import flags

from benchmarks.timing import (
    bare_network,
    block,
    matmul_gflops,
    new_transfer,
    random_images,
    seconds_per_call,
)
from nst_tf import Config
from nst_tf.config import PRECISIONS
from nst_tf.engine import Stage
from nst_tf.features import build_extractor

TITLE = "Precision and XLA"
flags.DEFINE_integer("precision_size", 512, "precision: square image size in pixels.")
flags.DEFINE_integer("precision_steps", 20, "precision: steps of each run.")
FLAGS = flags.FLAGS


def run(repeats: int) -> str:
    """Step time and final loss of each precision at one size, XLA for the whole step, and
    the L-BFGS update alone as plain TensorFlow ops against XLA."""
    size, steps = FLAGS.precision_size, FLAGS.precision_steps
    content, style = random_images(size)
    base = Config(size=size, steps=steps, weights="random", precision="float32", multiscale="off")
    judge = new_transfer(content, style, base).stage  # every result is scored in float32
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
        transfers[precision, jit] = new_transfer(content, style, config, extractor).stage
        fns[precision, jit, "bare"] = bare_network(extractor, tf.constant(content[None]))
        fns[precision, jit, "step"] = transfers[precision, jit].step
    print(f"precision: timing at {size} px ...", file=sys.stderr)
    r = seconds_per_call(fns, repeats)
    update = _update_ms(transfers["float32", "auto"], repeats)
    for precision, jit in runs:  # the timing rounds took steps: start the runs afresh
        transfer = new_transfer(content, style, base.replace(precision=precision, jit=jit))
        print(f"precision: {steps} steps of {precision}, XLA {jit} ...", file=sys.stderr)
        transfer.run()
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
    block(fns["xla"]())
    compile_seconds = time.perf_counter() - start
    r = seconds_per_call(fns, repeats)
    return {
        "plain": 1000 * r["plain"],
        "xla": 1000 * r["xla"],
        "speed-up": r.ratio("plain", "xla"),
        "compile": compile_seconds,
    }
