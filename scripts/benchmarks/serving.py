"""serving: latency of the exported serving_default signature through the TF1 session loader
(as TF Serving runs it) against the Python API on the same input."""

from __future__ import annotations

import io
import sys
import tempfile
import time

import numpy as np
from absl import flags
from PIL import Image

from benchmarks.timing import new_transfer, random_images, seconds_per_call
from nst_tf import Config
from nst_tf.features import build_extractor

TITLE = "Serving latency against the Python API"
flags.DEFINE_integer("serving_size", 256, "serving: square image size in pixels.")
flags.DEFINE_list("serving_steps", ["50", "200"], "serving: optimizer steps per request.")
FLAGS = flags.FLAGS


def run(repeats: int) -> str:
    from nst_tf.export import SessionModel, export_saved_model

    size = FLAGS.serving_size
    content, style = random_images(size)
    encoded = {}
    for name, image in (("content_bytes", content), ("style_bytes", style)):
        buffer = io.BytesIO()
        Image.fromarray(image.astype(np.uint8)).save(buffer, "PNG")
        encoded[name] = buffer.getvalue()
    config = Config(size=size, weights="random", precision="float32")
    extractor = build_extractor(config.content_layers + config.style_layers, weights="random")
    with tempfile.TemporaryDirectory() as root:
        print("serving: exporting ...", file=sys.stderr)
        start = time.perf_counter()
        path = export_saved_model(config, root)
        exported = time.perf_counter()
        served = SessionModel(path)
        loaded = time.perf_counter()
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
                # A run takes its config's steps (run(n) refuses more than those).
                "api": lambda n=steps: new_transfer(
                    *decoded, config.replace(steps=n), extractor
                ).run(),
            }
            r = seconds_per_call(fns, repeats, warmup=1)
            ratio = r.ratio("serving", "api")
            lines.append(f"| {steps} | {r['serving']:.2f} | {r['api']:.2f} | {ratio:.2f} |")
        served.close()
    return (
        f"{size}x{size} PNG inputs, L-BFGS; median of {repeats} interleaved rounds after 1 "
        "warm-up round (the ratio: median of the rounds' ratios); the serving time includes "
        "decoding, targets and PNG encoding. The export (`export_saved_model`, in this "
        f"process) took {exported - start:.1f} s and its loading by the session loader "
        f"{loaded - exported:.1f} s.\n\n" + "\n".join(lines)
    )
