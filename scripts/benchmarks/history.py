"""history: quality and time of a large coarse-to-fine run of trained features with the
L-BFGS history in float32, in bfloat16 and in bfloat16 with 5 pairs (sheet written to
docs/history.jpg)."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from absl import flags
from sheet import contact_sheet  # scripts/, on the path of benchmark.py

from benchmarks.timing import DOCS, SAMPLES, new_transfer
from nst_tf import Config, pyramid, quality
from nst_tf.features import build_extractor, resolve_precision
from nst_tf.images import load_image

TITLE = "The L-BFGS history in bfloat16 and with fewer pairs"
flags.DEFINE_integer("history_size", 2048, "history: longest side in pixels.")
flags.DEFINE_integer("history_steps", 30, "history: finest-scale steps.")
flags.DEFINE_integer("history_every", 10, "history: measure every this many finest-scale steps.")
flags.DEFINE_list(
    "history_pair", ["astronaut.jpg", "woman-with-hat-matisse.jpg"], "history: photo, painting."
)
FLAGS = flags.FLAGS


def run(repeats: int) -> str:
    """The L-BFGS history in float32 and in bfloat16, and with half the pairs (HISTORIES): the
    same coarse-to-fine run of trained features at a large size, the result measured every
    few finest-scale steps; docs/history.jpg shows the results."""
    del repeats  # one run of each: minutes apiece
    size, steps, every = FLAGS.history_size, FLAGS.history_steps, FLAGS.history_every
    photo, painting = (os.path.join(SAMPLES, name) for name in FLAGS.history_pair)
    base = Config(size=size, steps=steps, weights="hed")
    extractor = build_extractor(
        base.content_layers + base.style_layers, "hed", network="vgg16", precision=base.precision
    )
    judge = quality.default_judge()
    measure = quality.measurer(load_image(photo, size), load_image(painting, size), judge)
    lines = [
        "| history | finest-scale step | seconds | features | colours | edges | sharpness |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    results = {}
    for name, (dtype, pairs) in HISTORIES.items():
        print(f"history: {name} at {size} px ...", file=sys.stderr)
        config = base.replace(lbfgs_history_dtype=dtype, lbfgs_history=pairs)
        transfer = new_transfer(photo, painting, config, extractor)
        finest = transfer.total_steps - transfer.scales[-1][1]
        kept, start = [], time.perf_counter()

        def keep(record, kept=kept, start=start, finest=finest, steps=steps):
            step = record.step - finest
            if step > 0 and (step % every == 0 or step == steps):
                kept.append((step, time.perf_counter() - start, record.image()))

        results[name] = transfer.run(callback=keep)
        for step, seconds, image in kept:
            m = measure(image)
            lines.append(
                f"| {name} | {step} | {seconds:.0f} | "
                + " | ".join(f"{m[k]:.3f}" for k in ("features", "colours", "edges", "sharpness"))
                + " |"
            )
    reference = results[next(iter(HISTORIES))]
    differences = []
    for name, result in list(results.items())[1:]:
        difference = np.abs(result - reference)
        differences.append(
            f"{name} differs from it by {difference.mean():.2f} grey levels on average, "
            f"{np.percentile(difference, 99):.1f} at the 99th percentile"
        )
    _history_sheet(results, os.path.join(DOCS, "history.jpg"))
    scales = ", ".join(f"{s} px: {n}" for s, n in pyramid.scales(base))
    return (
        f"{os.path.basename(photo)} in the style of {os.path.basename(painting)} at {size} px, "
        f"the defaults (`--precision={resolve_precision(base.precision)}`) with {steps} "
        f"finest-scale steps ({scales}), HED VGG16; "
        "seconds since the run began (the measures are taken outside the run but inside "
        f"these times). Against the result with the history {next(iter(HISTORIES))}: "
        f"{'; '.join(differences)}.\n\n" + "\n".join(lines)
    )


# The L-BFGS histories the history suite compares: (--lbfgs_history_dtype, --lbfgs_history).
HISTORIES = {
    "float32, 10 pairs": ("float32", 10),
    "bfloat16, 10 pairs": ("bfloat16", 10),
    "bfloat16, 5 pairs": ("bfloat16", 5),
}


def _history_sheet(results: dict[str, np.ndarray], path: str) -> None:
    """The results whole, then the same 512-pixel square from the middle of each, at full
    resolution, where rounding differences would show."""
    images = list(results.values())
    height, width = images[0].shape[:2]
    y, x = (height - 512) // 2, (width - 512) // 2
    rows = [images, [image[y : y + 512, x : x + 512] for image in images]]
    caption = (
        f"L-BFGS history, left to right: {', '.join(results)}; whole, then a 512 px square "
        "from the middle at full resolution"
    )
    contact_sheet(rows, caption, 512).save(path, quality=90)
