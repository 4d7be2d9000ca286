"""step: seconds per step of our step against a bare forward and input-gradient through the
same truncated network and against the naive baseline (naive_baseline.py); GFLOP/s against a
measured matmul peak; peak memory of a whole run in a child process."""

from __future__ import annotations

import sys

import tensorflow as tf
from absl import flags
from naive_baseline import NaiveStyleTransfer  # scripts/, on the path of benchmark.py

from benchmarks.timing import (
    bare_network,
    conv_flops,
    matmul_gflops,
    new_transfer,
    random_images,
    rounds_for,
    seconds_per_call,
    square_run,
)
from nst_tf import Config
from nst_tf.features import build_extractor

TITLE = "Step time against the bare network and the naive baseline"
flags.DEFINE_list("sizes", ["256", "512", "1024"], "step: square image sizes in pixels.")
NETWORKS = ["vgg19", "vgg16"]  # the suite's own section; other networks get one of their own
flags.DEFINE_list(
    "networks", NETWORKS,
    "step: feature networks, vgg19, vgg16 or squeezenet (the naive baseline is VGG19's).",
)  # fmt: skip
FLAGS = flags.FLAGS


def variant() -> str:
    """The networks, when they are not the suite's usual two: the feature networks' step
    costs side by side (docs/weights.md's network table) are a section of their own."""
    if FLAGS.networks == NETWORKS:
        return ""
    sizes = ", ".join(f"{s} px" for s in FLAGS.sizes)
    return f"{', '.join(n.upper() for n in FLAGS.networks)} at {sizes}"


def run(repeats: int) -> str:
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
        "arithmetic of the truncated network (to its deepest default layer) per step; the "
        f"matmul peak is a 4096x4096 float32 product in the same run: {peak:.0f} GFLOP/s. "
        "Peak RSS: a whole `nst_tf` command (5 steps, one scale) in a child process.\n\n"
        + "\n".join(lines)
    )


def _step_row(network: str, size: int, repeats: int, peak: float) -> str:
    content, style = random_images(size)
    config = Config(
        size=size, weights="random", network=network, precision="float32", multiscale="off"
    )
    extractor = build_extractor(
        config.content_layers + config.style_layers, weights="random", network=network
    )
    fns = {
        "bare": bare_network(extractor, tf.constant(content[None])),
        "ours": new_transfer(content, style, config, extractor).stage.step,
        "naive": NaiveStyleTransfer(content, style).step,
    }
    r = seconds_per_call(fns, rounds_for(repeats, size))
    gflops = conv_flops(extractor, size, size) / r["ours"] / 1e9
    rss = square_run(size, 5, f"--network={network}").rss
    return (
        f"| {network.upper()} | {size}x{size} | {r['bare']:.3f} | {r['ours']:.3f} | "
        f"{r['naive']:.3f} | {r.ratio_with_quartiles('ours', 'bare')} | "
        f"{r.ratio_with_quartiles('naive', 'ours')} | {gflops:.0f} | {gflops / peak:.0%} | "
        f"{rss:.2f} |"
    )
