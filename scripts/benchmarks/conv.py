"""conv: milliseconds of each distinct VGG19 convolution's forward pass and input gradient
by each of TensorFlow's two kernels for the same sums (the convolution, and the transposed
convolution with the flipped kernel), and of the whole truncated network's forward and
input gradient with Keras's layers and ours (`nst_tf.features.Conv2D`, `conv_plan`)."""

from __future__ import annotations

import sys

import keras
import numpy as np
import tensorflow as tf
from absl import flags

from benchmarks.timing import bare_network, conv_layers, random_images, seconds_per_call
from nst_tf import features
from nst_tf.features import build_extractor

TITLE = "Convolutions: Conv2D against the transposed form"
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
        "| layers | input | output channels | forward: Conv2D (ms) | forward: transposed (ms) "
        "| input gradient: transposed (ms) | input gradient: Conv2D (ms) | nst_tf runs |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    rng = np.random.default_rng(0)
    for (side, cin, cout), names in shapes.items():
        print(f"conv: {side}x{side}x{cin} -> {cout} ...", file=sys.stderr)
        x = tf.constant(rng.normal(size=(1, side, side, cin)), tf.float32)
        up = tf.constant(rng.normal(size=(1, side, side, cout)), tf.float32)
        kernel = tf.constant(rng.normal(size=(3, 3, cin, cout)), tf.float32)
        r = seconds_per_call(
            {
                "conv": _compiled(features.convolve_same, x, kernel, "conv", None),
                "transposed": _compiled(
                    features.convolve_same, x, kernel, "transposed", tf.shape(up)
                ),
                "transposed gradient": _compiled(
                    features.transpose_same, up, kernel, "transposed", tf.shape(x)
                ),
                "conv gradient": _compiled(features.transpose_same, up, kernel, "conv", None),
            },
            repeats,
        )
        r = {name: r[name] * 1e3 for name in r.times}
        forward, gradient = features.conv_plan(cin)
        lines.append(
            f"| {', '.join(names)} | {side}x{side}x{cin} | {cout} | {r['conv']:.1f} | "
            f"{r['transposed']:.1f} | {r['transposed gradient']:.1f} | "
            f"{r['conv gradient']:.1f} | forward {forward}, gradient {gradient} |"
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
        f"{size}x{size} image, float32, random weights, "
        f"{kernels()}; "
        f"median of {repeats} interleaved rounds after 3 warm-up rounds. Each layer's "
        "forward pass and its input gradient, each by either kernel (TensorFlow's own "
        "gradient is the transposed convolution). nst_tf runs: "
        "`nst_tf.features.conv_plan` on this machine.\n\n"
        + "\n".join(lines)
        + "\n\nThe whole truncated VGG19 (to block5_conv1), forward and input gradient: "
        f"Keras's layers {r['keras']:.3f} s, nst_tf's {r['ours']:.3f} s, "
        f"{r.ratio('keras', 'ours'):.2f}x faster (median of the rounds' ratios)."
    )


def _compiled(convolution, x, kernel, by, shape):
    """A compiled call of `convolution` (`nst_tf.features.convolve_same` or
    `transpose_same`) on x and kernel by the kernel `by`, output `shape`."""
    return tf.function(lambda: convolution(x, kernel, by, shape))


def kernels() -> str:
    """Which CPU kernels TensorFlow runs here, and with which vector width."""
    width = "" if features.onednn_avx512() else ", with AVX2 or narrower"
    if features.onednn():
        return f"TensorFlow's CPU kernels through oneDNN{width}"
    return f"TensorFlow's own CPU kernels (Eigen, its matrix products by oneDNN{width}; oneDNN off)"
