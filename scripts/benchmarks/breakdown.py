"""breakdown: where a default step's time goes: the network's forward pass, its backward pass,
the style statistics (means and Gram matrices, with their gradient) and the style loss's
matrix functions (gaussian_w2's covariance distance and its gradient), beside the whole step,
in each precision and size."""

from __future__ import annotations

import sys
import time

import tensorflow as tf
from absl import flags

from benchmarks.timing import (
    bare_network,
    block,
    new_transfer,
    random_images,
    rounds_for,
    seconds_per_call,
)
from nst_tf import Config, losses
from nst_tf.features import build_extractor
from nst_tf.objective import gram_products

TITLE = "Where a default step's time goes"
flags.DEFINE_list("breakdown_precisions", ["float32", "mixed_bfloat16"], "breakdown: precisions.")
flags.DEFINE_list("breakdown_sizes", ["256", "512"], "breakdown: square sizes in pixels.")
FLAGS = flags.FLAGS


def run(repeats: int) -> str:
    lines = [
        "| precision | size | first step (s) | step (s) | forward | backward | style statistics "
        "| matrix functions | the rest | step / bare network |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for precision in FLAGS.breakdown_precisions:
        for size in (int(s) for s in FLAGS.breakdown_sizes):
            print(f"breakdown: {precision} {size}x{size} ...", file=sys.stderr)
            r, first = _rounds(precision, size, rounds_for(repeats, size))
            step = r["step"]
            backward = r["network"] - r["forward"]
            rest = step - r["network"] - r["statistics"] - r["matrix"]
            shares = [r["forward"], backward, r["statistics"], r["matrix"], rest]
            lines.append(
                f"| {precision} | {size}x{size} | {first:.2f} | {step:.3f} | "
                + " | ".join(f"{s:.3f} ({s / step:.0%})" for s in shares)
                + f" | {r.ratio_with_quartiles('step', 'network')} |"
            )
    return (
        "VGG19, random weights, the default settings at one scale (`gaussian_w2`, L-BFGS), "
        f"median seconds of interleaved rounds ({repeats} up to 512 px, a quarter as many per "
        "doubling, at least 3) after 3 warm-up rounds, and each part's share of the step. "
        "First step: making the run (its targets and its stage, which traces the loss and "
        "gradient's graph) and the step's first call (which traces and compiles the update), "
        "before the rounds (the first row's in a process that has traced nothing else). "
        "Forward: the truncated network's forward pass alone. Backward: its forward and "
        "input gradient with a trivial loss (the bare network) less the forward pass. Style "
        "statistics: each style layer's mean and Gram matrix and their gradient, from "
        "activations already computed. Matrix functions: `losses.covariance_distance` of each "
        "style layer's covariance, its value and gradient (per layer a Cholesky factorisation, "
        "two triangular solves and the polar factor of a C x C matrix by matrix products, in "
        "float32). The rest: the step less all of these (content and "
        "total-variation terms, the loss's other sums, L-BFGS's update and line search). The "
        "step against the bare network is the median of the rounds' ratios, with their "
        "quartiles in brackets.\n\n" + "\n".join(lines)
    )


def _rounds(precision: str, size: int, repeats: int):
    content, style = random_images(size)
    config = Config(  # steps: never done within the rounds
        size=size, steps=10**6, weights="random", precision=precision, multiscale="off"
    )
    extractor = build_extractor(
        config.content_layers + config.style_layers, weights="random", precision=precision
    )
    image = tf.constant(content[None])
    start = time.perf_counter()
    transfer = new_transfer(content, style, config, extractor)
    block(transfer.stage.step())
    first = time.perf_counter() - start
    targets = transfer.stage.targets
    features = {name: extractor(image)[name] for name in config.style_layers}
    products = gram_products(config)

    @tf.function
    def statistics():
        with tf.GradientTape() as tape:
            tape.watch(features)
            moments = [losses.moments(f, products=products) for f in features.values()]
            total = tf.add_n([tf.reduce_sum(m) + tf.reduce_sum(g) for m, g in moments])
        return tape.gradient(total, features)

    covariances = [
        losses.regularized(
            losses.covariance(*losses.moments(f)),
            losses.covariance(targets.style_mean[i], targets.style[i]),
        )
        for i, f in enumerate(features.values())
    ]

    @tf.function
    def matrix():
        with tf.GradientTape() as tape:
            tape.watch(covariances)
            total = tf.add_n(
                [
                    tf.reduce_sum(losses.covariance_distance(cov, root))
                    for cov, root in zip(covariances, targets.style_root)
                ]
            )
        return tape.gradient(total, covariances)

    fns = {
        "forward": tf.function(lambda: extractor(image)),
        "network": bare_network(extractor, image),
        "statistics": statistics,
        "matrix": matrix,
        "step": transfer.stage.step,
    }
    return seconds_per_call(fns, repeats), first
