"""warm_start: what starting from the feed-forward network's picture (`--init=fast`) saves,
and the network's picture alone beside both optimisations (a sheet, docs/fast.jpg).

On each pair, with trained features (the HED VGG16), the defaults run once from the photo
(`--init=content`, today's default) and once from the network's start (fast.start: its
picture in the photo's coarse light), each for the defaults' schedule, keeping a snapshot
of the image every few seconds (time_to_quality's `record`; the start is painted inside the
timed run). The snapshots are measured afterwards with nst_tf.quality at every depth and
for the outlines. The warm start reaches the defaults' quality at its first snapshot that
falls short of the photo start's final image by no more than time_to_quality.SLACK at any
depth or in edges; the saving is the steps and seconds before that against the whole
schedule. The network's picture alone
(`nst-tf --fast`) and the start it gives the optimisation (fast.start) are measured too.
"""

from __future__ import annotations

import math
import os
import sys
import time

from absl import flags
from sheet import contact_sheet  # scripts/, on the path of benchmark.py

from benchmarks.record import ROOT
from benchmarks.time_to_quality import Extractors, Trace, first_reach, record, shortfalls
from benchmarks.timing import DOCS, MEASURES, SAMPLES
from nst_tf import Config, StyleTransfer, fast, prepare, pyramid, quality
from nst_tf.features import resolve_precision
from nst_tf.images import load_image, resize

TITLE = "Starting from the feed-forward network's picture"
flags.DEFINE_integer("warm_start_size", 256, "warm_start: longest side in pixels.")
flags.DEFINE_list(
    "warm_start_pairs",
    [
        "chelsea.jpg:shipwreck.jpg",
        "astronaut.jpg:woman-with-hat-matisse.jpg",
        "rocket.jpg:the_scream.jpg",
    ],  # fmt: skip
    "warm_start: PHOTO:PAINTING pairs, bundled names or paths.",
)
flags.DEFINE_string(
    "warm_start_sheet", os.path.join(DOCS, "fast.jpg"),
    "warm_start: the sheet of each pair's pictures (the network alone, from it, from the "
    "photo); '' for none.",
)  # fmt: skip
FLAGS = flags.FLAGS
STARTS = {"the photo": "content", "the network's start": "fast"}


def variant() -> str:
    return f"{FLAGS.warm_start_size} px" if FLAGS.warm_start_size != 256 else ""


def run(repeats: int) -> str:
    del repeats  # one run each: minutes apiece
    size = FLAGS.warm_start_size
    precision = resolve_precision("auto")
    extractors = Extractors(precision)
    base = Config(size=size, weights="hed", precision=precision)
    extractors(base), fast.network()  # built and loaded once, outside the timed runs
    steps = sum(n for _, n in pyramid.scales(base))
    rows = [
        "| photo | painting | picture | "
        + " | ".join(MEASURES)
        + " | steps to the photo start's quality | seconds to it | seconds of the schedule |",
        "|---|---|---|" + "---:|" * len(MEASURES) + "---|---:|---:|",
    ]
    pictures = []
    for pair in FLAGS.warm_start_pairs:
        photo, painting = (p if os.path.isfile(p) else os.path.join(SAMPLES, p)
                           for p in pair.split(":"))  # fmt: skip
        traces = {"the network alone": _alone(base, photo, painting)}
        for start, init in STARTS.items():
            make = _run(base.replace(init=init), photo, painting, extractors)
            traces[start] = record(start, make, steps, math.inf)
            print(f"warm_start: {pair} from {start}", file=sys.stderr)
        images = load_image(photo, size), load_image(painting, size)
        height, width = images[0].shape[:2]
        measure = quality.measurer(*images, quality.default_judge())
        for trace in traces.values():
            trace.measures = [measure(resize(i, height, width).numpy()) for i in trace.images]
        goal = traces["the photo"].measures[-1]
        warm = traces["the network's start"]  # its first snapshot: the start it was given
        names = os.path.basename(photo), os.path.basename(painting)
        given = Trace("start", warm.seconds[:1], [0], warm.images[:1], warm.measures[:1])
        labelled = [
            ("the network alone (--fast)", traces["the network alone"]),
            ("the network's start (--init=fast)", given),
            *((f"from {name}", traces[name]) for name in STARTS),
        ]
        for label, trace in labelled:
            rows.append(_row(*names, label, trace, goal))
        alone = traces["the network alone"].images[0]
        pictures.append([*images, alone, warm.images[-1], traces["the photo"].images[-1]])
    sheet = FLAGS.warm_start_sheet and pictures
    if sheet:
        caption = (
            f"photo | painting | the feed-forward network alone (--fast) | the optimisation "
            f"started from it (--init=fast) | the optimisation from the photo (the defaults); "
            f"{size} px, HED VGG16 features"
        )
        contact_sheet(pictures, caption, 256).save(FLAGS.warm_start_sheet, quality=85)
    return (
        f"{size} px (longest side), HED VGG16 features, {precision}, the defaults' schedule "
        f"({steps} steps) from each start; the measures are each run's final image's "
        "(block1 to block5: the style distance at each depth, 1 the photo, 0 the painting). "
        "Steps and seconds to the photo start's quality: the first snapshot of the run that "
        "is within 0.03 of the photo start's final image at every depth and in edges (the "
        "photo start reaches its own a little before its end). Seconds include building "
        "the run and, from the network's start, painting it (fast.start: the network's "
        "picture in the photo's coarse light), which is that run's first snapshot; "
        "the network alone is `nst-tf --fast`'s picture."
        + (f" The pictures: {os.path.relpath(FLAGS.warm_start_sheet, ROOT)}." if sheet else "")
        + "\n\n"
        + "\n".join(rows)
    )


def _row(photo: str, painting: str, label: str, trace: Trace, goal: dict) -> str:
    """A table row: the trace's final measures, when it reached `goal`, and its time."""
    final = trace.measures[-1]
    cells = [photo, painting, label]
    cells += [f"{final[k]:.2f}" for k in MEASURES]
    reached = first_reach(trace, goal)
    if reached is None:
        cells += [f"not reached (short in {', '.join(shortfalls(final, goal))})", "-"]
    else:
        cells += [str(trace.steps[reached]), f"{trace.seconds[reached]:.0f}"]
    return "| " + " | ".join([*cells, f"{trace.seconds[-1]:.0f}"]) + " |"


def _alone(config: Config, photo: str, painting: str) -> Trace:
    """`nst-tf --fast`'s picture of the pair, timed from reading the files."""
    began = time.perf_counter()
    image = fast.stylize(prepare(config, photo, painting))[0]
    return Trace("the network alone", [time.perf_counter() - began], [0], [image])


def _run(config: Config, photo: str, painting: str, extractors: Extractors):
    """What `record` times: the run built (its start painted) from the files."""
    return lambda: StyleTransfer(prepare(config, photo, painting), extractors(config))
