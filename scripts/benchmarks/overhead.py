"""overhead: our step (L-BFGS and Adam) and the command's step (with its per-step work)
against the bare network, in each precision and size."""

from __future__ import annotations

import io
import sys

import tensorflow as tf
from absl import flags

from benchmarks.timing import (
    Rounds,
    bare_network,
    new_transfer,
    random_images,
    rounds_for,
    seconds_per_call,
)
from nst_tf import Config
from nst_tf.features import build_extractor
from nst_tf.progress import Progress

TITLE = "Our step and the command's against the bare network, by precision"
flags.DEFINE_list("overhead_precisions", ["float32", "mixed_bfloat16"], "overhead: precisions.")
flags.DEFINE_list("overhead_sizes", ["128", "256", "512"], "overhead: square sizes in pixels.")
FLAGS = flags.FLAGS


def run(repeats: int) -> str:
    lines = [
        "| precision | size | bare fwd+bwd (s) | L-BFGS step / bare | Adam step / bare | "
        "Adam step with the command's per-step work / bare |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for precision in FLAGS.overhead_precisions:
        for size in (int(s) for s in FLAGS.overhead_sizes):
            print(f"overhead: {precision} {size}x{size} ...", file=sys.stderr)
            r = _overhead_rounds(precision, size, rounds_for(repeats, size))
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
    content, style = random_images(size)
    config = Config(  # steps: never done within the rounds
        size=size, steps=10**6, weights="random", precision=precision, multiscale="off"
    )
    extractor = build_extractor(
        config.content_layers + config.style_layers, weights="random", precision=precision
    )
    adam = new_transfer(content, style, config.replace(optimizer="adam"), extractor)
    progress = Progress(adam.scales, stream=io.StringIO())

    def command_step():
        record = adam.step()
        progress.update(record.step, record.terms, record.accepted)

    fns = {
        "bare": bare_network(extractor, tf.constant(content[None])),
        "lbfgs": new_transfer(content, style, config, extractor).stage.step,
        "adam": adam.stage.step,
        "command": command_step,
    }
    return seconds_per_call(fns, repeats)
