"""multiscale: wall time and final loss of coarse-to-fine against one scale with the same
finest-scale steps, and the time coarse-to-fine takes to reach the single-scale final loss."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from absl import flags
from PIL import Image

from benchmarks.timing import SAMPLES, new_transfer
from nst_tf import Config, pyramid
from nst_tf.features import build_extractor

TITLE = "Coarse to fine against one scale"
flags.DEFINE_list("multiscale_sizes", ["512", "1024"], "multiscale: output sizes.")
flags.DEFINE_list("multiscale_steps", ["50", "10"], "multiscale: finest-scale steps per size.")
FLAGS = flags.FLAGS


class _Reached(Exception):
    """The run reached the target loss."""


def _timed_run(content, style, config, extractor, target=None):
    """Wall time and final-scale loss of a whole coarse-to-fine run, or the time it first
    reaches `target` at its finest scale (the run then stops)."""
    start = time.perf_counter()
    run = new_transfer(content, style, config, extractor)
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


def run(repeats: int) -> str:
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
