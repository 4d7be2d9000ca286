"""conv: milliseconds of each distinct VGG19 convolution's forward pass as TensorFlow's Conv2D
and as the transposed convolution nst_tf runs instead, and of the whole truncated network's
forward and input-gradient with Keras's layers and ours."""

from __future__ import annotations

import sys

import keras
import numpy as np
import tensorflow as tf
from absl import flags

from benchmarks.timing import bare_network, conv_layers, random_images, seconds_per_call
from nst_tf import features
from nst_tf.features import build_extractor

TITLE = "Forward convolutions: Conv2D against the transposed form"
flags.DEFINE_integer("conv_size", 512, "conv: square image size in pixels.")
FLAGS = flags.FLAGS


def run(repeats: int) -> str:
    size = FLAGS.conv_size
    extractor = build_extractor(["block5_conv1"], weights="random")
    vgg = features.load_network("vgg19", "random")
    keras_net = keras.Model(vgg.inputs, vgg.get_layer("block5_conv1").output)
    preprocess = features.CaffePreprocess()
    image = tf.constant(random_images(size)[0][None])
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
