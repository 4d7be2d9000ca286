"""Render a contact sheet: for each photo x painting pair, photo | painting | result (one
result per --variant); and print a Markdown table of each result's time and quality measures.

    python scripts/gallery.py --output=docs/gallery.jpg
    python scripts/gallery.py --output=sheet.png --pairs=photo.jpg:painting.jpg --size=256
    python scripts/gallery.py --output=losses.jpg --variant="style_loss=gram" \
        --variant="style_loss=gaussian_w2" --variant="style_loss=gaussian_w2 average=0.99"
    python scripts/gallery.py --output=fast.jpg --variant=fast --variant=init=fast \
        --variant=""   # the feed-forward network alone, as the start, and not at all

Each result is what `nst-tf` gives with the same flags (every flag of the command's settings
is accepted here, with the same defaults), made through the Python API with one feature
network for all pairs. Under the sheet, one line gives the settings and the time each result
took. A .jpg output is written small (quality 85) for the README.

The measures are nst_tf.quality's, taken with the HED VGG16 whatever network made the
result: its distance to the painting in feature statistics at each depth, block1 (colour,
fine texture) to block5 (large forms), over the photo's own (1: the photo unmoved there,
0: the painting's statistics), how far it came from the photo towards the painting in
colours (1 - distance after / distance before), the correlation of its edges with the
photo's (both seen at most 256 px on the long side), its fine-detail energy over the
photo's (below 1: softer than the photo), and its light layout (the correlation of its
coarse luma with the photo's: below 0, the light is inverted). With several variants, "as
first" is the correlation of each result's coarse colours with the first variant's:
whether, say, --variant=size=384 --variant=size=1024 give the same picture.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import NamedTuple

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nst_tf import options  # noqa: E402

options.start_tensorflow(sys.argv)

from absl import flags, logging  # noqa: E402
from sheet import contact_sheet  # noqa: E402  (scripts/, beside this file)

from nst_tf import fast, quality  # noqa: E402
from nst_tf.config import Config  # noqa: E402
from nst_tf.images import load_image, save_image  # noqa: E402
from nst_tf.inputs import prepare  # noqa: E402
from nst_tf.objective import Objective  # noqa: E402
from nst_tf.transfer import stylize  # noqa: E402

MEASURES = (*quality.DEPTHS, "colours", "edges", "sharpness", "light")
SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nst_tf", "samples")
# The README's gallery: photos and paintings the project may ship (see nst_tf/samples/NOTICE).
DEFAULT_PAIRS = [
    f"{SAMPLES}/{photo}:{SAMPLES}/{painting}"
    for photo, painting in [
        ("chelsea.jpg", "shipwreck.jpg"),
        ("astronaut.jpg", "woman-with-hat-matisse.jpg"),
        ("rocket.jpg", "the_scream.jpg"),
        ("astronaut.jpg", "starry_night.jpg"),
    ]
]

flags.DEFINE_list("pairs", DEFAULT_PAIRS, "PHOTO:PAINTING pairs, comma-separated.")
flags.DEFINE_string("output", "gallery.jpg", "The contact sheet: .jpg, .png or .webp.")
flags.DEFINE_integer("row_height", 256, "Height of each row of the sheet, in pixels.")
flags.DEFINE_string("title", None, "Caption; default: the settings that differ from nst-tf's.")
flags.DEFINE_string(
    "results_dir", None, "Also write each result there as PHOTO_PAINTING_N.png (N: the variant)."
)
flags.DEFINE_multi_string(
    "variant",
    [],
    "Settings of one result column, as space-separated name=value pairs of the command's "
    "flags on top of the flags given (repeat for more columns); default: one column.",
)
options.define(options.CONFIG_FLAGS)
FLAGS = flags.FLAGS


def settings_caption(config: Config) -> str:
    """The settings as a command line: the flags that differ from the defaults."""
    changed = [
        f"--{f.name}={_flag_value(getattr(config, f.name))}"
        for f in dataclasses.fields(Config)
        if getattr(config, f.name) != getattr(Config(), f.name)
    ]
    return "nst-tf " + (" ".join(changed) if changed else "(defaults)")


def _flag_value(value) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


class Variant(NamedTuple):
    """One result column: its settings, and whether the feed-forward network paints it
    alone (`nst-tf --fast`) instead of the optimisation."""

    config: Config
    fast: bool = False

    @property
    def caption(self) -> str:
        return "nst-tf --fast" if self.fast else settings_caption(self.config)


def variants(config: Config) -> list[Variant]:
    """One Variant per --variant (the flags given, with the variant's settings on top; the
    word "fast" for the feed-forward network), or the flags' own when there is none."""
    result = []
    for variant in FLAGS.variant or [""]:
        changes = {}
        for setting in variant.split():
            if setting == "fast":
                continue
            name, _, value = setting.partition("=")
            if name not in {f.name for f in dataclasses.fields(Config)}:
                raise flags.ValidationError(f"--variant names no setting {name!r}")
            changes[name] = FLAGS[name].parser.parse(value)
        result.append(Variant(config.replace(**changes), "fast" in variant.split()))
    return result


def paint(photo: str, painting: str, variant: Variant, extractor) -> np.ndarray:
    """The variant's result for one pair, as `nst-tf` with its settings gives it."""
    if not variant.fast:
        return stylize(photo, painting, variant.config, extractor=extractor)
    return fast.stylize(prepare(variant.config, photo, painting))[0]


def main(argv: list[str]) -> None:
    del argv
    chosen = variants(options.config_from_flags())
    extractor = Objective(chosen[0].config).extractor
    judge = quality.default_judge()
    rows, seconds = [], []
    columns = (*MEASURES, "as first")
    table = [
        "| photo | painting | settings | seconds | " + " | ".join(columns) + " |",
        "|---|---|---|---:|" + "---:|" * len(columns),
    ]
    for pair in FLAGS.pairs:
        photo, painting = pair.split(":")
        size = chosen[0].config.size
        rows.append([load_image(photo, size), load_image(painting, size)])
        for n, variant in enumerate(chosen):
            config = variant.config
            start = time.monotonic()
            result = paint(photo, painting, variant, extractor)
            seconds.append(time.monotonic() - start)
            logging.info("%s in the style of %s: %.0f s", photo, painting, seconds[-1])
            rows[-1].append(result)
            if FLAGS.results_dir:
                names = (os.path.splitext(os.path.basename(p))[0] for p in (photo, painting))
                name = f"{'_'.join(names)}_{n}.png"
                save_image(os.path.join(FLAGS.results_dir, name), result)
            inputs = (load_image(path, config.size) for path in (photo, painting))
            m = quality.measure(*inputs, result, judge)
            m["as first"] = quality.same_picture(result, rows[-1][2])
            table.append(
                f"| {os.path.basename(photo)} | {os.path.basename(painting)} | "
                f"{variant.caption} | {seconds[-1]:.0f} | "
                + " | ".join(f"{m[k]:.2f}" for k in columns)
                + " |"
            )
    print("\n".join(table))
    caption = FLAGS.title or "; ".join(variant.caption for variant in chosen)
    network = extractor.name.removesuffix("_features").upper()
    times = ", ".join(f"{s:.0f} s" for s in seconds)
    caption += f"  |  {network} features  |  {times} on {os.cpu_count()} CPU cores"
    sheet = contact_sheet(rows, caption, FLAGS.row_height)
    sheet.save(FLAGS.output, quality=85, optimize=True)  # JPEG options; others ignore them
    logging.info("Wrote %s.", FLAGS.output)


if __name__ == "__main__":
    options.run(main, "gallery")
