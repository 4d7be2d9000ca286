"""time_to_quality: the quality of a run's image against wall time, for nst_tf's defaults and
for the recipes users would run instead, with trained features (plot and sheets written to
docs/); with --time_to_quality_losses, jcjohnson's recipe against the defaults with each
style loss.

Recipes, each on the HED VGG16 (trained features that need no download), all in the same
precision (`--precision=auto`'s choice on the machine) and the same step code, so what
differs is the method and not the arithmetic, except for the naive baseline, whose code
is the point:
- "nst_tf defaults": `Config(size=..., weights="hed")`, coarse to fine.
- "nst_tf defaults, adam": the same with `optimizer="adam"`: whether L-BFGS, which now pays
  for its line search in evaluations, is still the faster way to a good picture.
- "jcjohnson": jcjohnson/neural-style's defaults. One scale, 1000 L-BFGS steps of learning
  rate 1 with 100 curvature pairs (its `-lbfgs_num_correction 0` is torch's default, 100),
  content relu4_2, style relu1_1 ... relu5_1 equally weighted, max pooling, from noise.
  Its content and style weights (5 and 100) are in its units: content 5 * mean (F - P)^2,
  each style layer 100 * mean (G/C - A/C)^2 over its C x C entries, with Gram matrices
  over C*H*W where ours are over H*W. Multiplied by our units (nst_tf.objective.units) they
  are weights of our relative terms that give exactly its content and style terms. Its
  total variation (1e-3) is not translated: it is in pixel units, so its share against the
  network's terms depends on the network's activation scale. The HED VGG16's activations
  are far smaller than the ImageNet VGGs': taken literally, its weight here is about 200
  times the content's, and the cat at 384 px came out a blur. It gets the share ours has,
  0.03 of the content weight. Its start is Gaussian noise of 0.001 grey levels around the
  mean pixel, which a bfloat16 network cannot tell from a flat image, so it starts from
  our uniform noise.
- "TF tutorial": the preset "tutorial" (nst_tf.config.PRESETS), the TensorFlow tutorial
  "Neural style transfer": Adam(0.02, beta_1 0.99) on [0, 1] pixels, content
  block5_conv2, style block1_conv1 ... block5_conv1, 1000 steps from the content image. Its
  weights, in its units on ImageNet VGG19, have the same problem as jcjohnson's total
  variation (the share of style against content goes with the square of the activation
  scale), so the preset's weights are ours. So is Adam's epsilon: the tutorial's 0.1 is
  for its loss's units, ours is scaled to stay small against our gradients
  (nst_tf.optimize.Adam).
- "naive": scripts/naive_baseline.py, the Keras example as written (all three images
  through the network every step, SGD with its decaying rate and its weights, in its units,
  unchanged), until the wall time jcjohnson's recipe took.

Quality is nst_tf.quality's, not the loss: the style distance at each depth ("block1" to
"block5", each over the photo's own: 1 the photo, 0 the painting), at layers no recipe
matches, and "edges", how well the photo's outlines survive. A snapshot of the image is kept
every few seconds (more often early on) and measured after the run, outside the timed loop.
A recipe reaches jcjohnson's quality at the first snapshot that is, at every depth, at most
SLACK further from the painting than jcjohnson's final image, and whose edges are at least
jcjohnson's less SLACK: a picture whose brushwork is there and whose forms are not has not
arrived. Its time then, and jcjohnson's own, give the ratio.

The defaults, after their schedule, go on at the finest scale (MORE times as long), so their
own converged picture is known too: a run has come as near it as counts at its first
snapshot within SLACK of its last at every depth and in edges (`settled`), further or
nearer. That time does not lean on another recipe's measures.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable

import numpy as np
from absl import flags
from naive_baseline import NaiveStyleTransfer  # scripts/, on the path of benchmark.py
from sheet import contact_sheet

from benchmarks.timing import DOCS, SAMPLES
from nst_tf import Config, StyleTransfer, prepare, pyramid, quality
from nst_tf.config import CONTENT_WEIGHT, STYLE_LAYERS, TV_WEIGHT
from nst_tf.features import build_extractor, resolve_precision
from nst_tf.images import load_image, resize
from nst_tf.objective import units

TITLE = "Time to a good picture"
REFERENCE = "jcjohnson"
FLOAT32 = "nst_tf defaults, float32"
ADAM = "nst_tf defaults, adam"
# The recipes beside jcjohnson's (which always runs: it is the reference), by short name.
RECIPES = ("defaults", "adam", "tutorial", "naive", "float32")
flags.DEFINE_list(
    "time_to_quality_pairs",
    [
        "chelsea.jpg:shipwreck.jpg",
        "astronaut.jpg:woman-with-hat-matisse.jpg",
        "rocket.jpg:the_scream.jpg",
    ],
    "time_to_quality: PHOTO:PAINTING pairs of bundled samples.",
)
flags.DEFINE_integer("time_to_quality_size", 512, "time_to_quality: longest side in pixels.")
flags.DEFINE_bool(
    "time_to_quality_losses",
    False,
    "time_to_quality: jcjohnson's recipe against the defaults with each style loss instead.",
)
flags.DEFINE_multi_enum(
    "time_to_quality_recipes",
    list(RECIPES),
    RECIPES,
    "time_to_quality: the recipes run beside jcjohnson's (the reference, always run).",
)
FLAGS = flags.FLAGS
MORE = 3.0  # the defaults go on at the finest scale for 3 times their schedule's time
# With --losses: jcjohnson's recipe against the defaults with each style loss instead.
LOSSES = {
    "defaults, gram": {"style_loss": "gram"},
    "defaults, gaussian_w2": {"style_loss": "gaussian_w2"},
    "defaults, gaussian_w2, average 0.99": {"style_loss": "gaussian_w2", "average": 0.99},
    "defaults, sliced_w2": {"style_loss": "sliced_w2"},
}


@dataclasses.dataclass
class Trace:
    """Snapshots of one run: wall seconds since the recipe started, steps taken, the image;
    and, once measured, the measures of each image."""

    recipe: str
    seconds: list[float] = dataclasses.field(default_factory=list)
    steps: list[int] = dataclasses.field(default_factory=list)
    images: list[np.ndarray] = dataclasses.field(default_factory=list)
    measures: list[dict] = dataclasses.field(default_factory=list)
    scheduled: int | None = None  # the snapshot at the recipe's last scheduled step

    @property
    def end(self) -> int:
        """The snapshot of the recipe's result: its last scheduled step, else its last."""
        return len(self.seconds) - 1 if self.scheduled is None else self.scheduled

    def final(self, key: str) -> float:
        return self.measures[self.end][key]


SLACK = 0.03  # how far from a goal's measure still counts as there (see the docstring)


def shortfalls(measures: dict, goal: dict) -> list[str]:
    """The measures in which `measures` falls short of `goal` by more than SLACK: a depth
    whose distance is larger, or edges that are lower."""
    short = [d for d in quality.DEPTHS if measures[d] > goal[d] + SLACK]
    return short + (["edges"] if measures["edges"] < goal["edges"] - SLACK else [])


def first_reach(trace: Trace, goal: dict) -> int | None:
    """The index of the first snapshot that falls short of `goal` in nothing, or None."""
    for i, m in enumerate(trace.measures):
        if not shortfalls(m, goal):
            return i
    return None


def settled(trace: Trace) -> int | None:
    """The index of the first snapshot within SLACK of the trace's last at every depth and
    in edges: when a recipe that went on past its schedule (`record`'s `more`) had come as
    near its converged picture as counts. None for a recipe that stopped at its schedule."""
    if trace.scheduled is None or trace.scheduled == len(trace.measures) - 1:
        return None
    last = trace.measures[-1]
    for i, m in enumerate(trace.measures):
        if all(abs(m[k] - last[k]) <= SLACK for k in (*quality.DEPTHS, "edges")):
            return i
    return None  # unreachable: the last snapshot is within SLACK of itself


def at_time(trace: Trace, seconds: float) -> dict:
    """The measures of the last snapshot taken by `seconds`."""
    index = max(i for i, s in enumerate(trace.seconds) if s <= seconds or i == 0)
    return trace.measures[index]


def record(
    recipe: str, make: Callable[[], object], steps: int, seconds: float, more: float = 0.0
) -> Trace:
    """Run `make()` (its setup timed too) for `steps` steps or `seconds` of wall time, whichever
    comes first, keeping the image at 0 s and then whenever 8% of the time so far, and at
    least a second, has passed since the last snapshot; and at the end. With `more`, the
    run goes on past `steps` for `more` times the time they took (within `seconds`), and
    `trace.scheduled` is the snapshot at `steps`."""
    trace = Trace(recipe)
    start = time.perf_counter()
    run = make()

    def snapshot(taken: int) -> None:
        image = run.result()  # waits for the step's work, so the time includes it
        trace.seconds.append(time.perf_counter() - start)
        trace.steps.append(taken)
        trace.images.append(np.asarray(image))

    snapshot(0)
    taken = 0
    while True:
        run.step()
        taken += 1
        elapsed = time.perf_counter() - start
        if taken == steps:
            snapshot(taken)
            trace.scheduled = len(trace.seconds) - 1
            seconds = min(seconds, elapsed * (1.0 + more))
        if elapsed >= seconds or (taken >= steps and not more):
            if trace.steps[-1] != taken:
                snapshot(taken)
            return trace
        if elapsed >= trace.seconds[-1] + max(1.0, 0.08 * trace.seconds[-1]):
            snapshot(taken)


class Extractors:
    """One HED VGG16 extractor per set of layers, built once, outside the timed runs."""

    def __init__(self, precision: str):
        self.precision = precision
        self.built = {}

    def __call__(self, config: Config):
        layers = config.content_layers + config.style_layers
        if layers not in self.built:
            self.built[layers] = build_extractor(
                layers, weights="hed", network="vgg16", precision=self.precision
            )
        return self.built[layers]


def jcjohnson_config(base: Config, photo: str, painting: str, extractors: Extractors) -> Config:
    config = base.replace(
        multiscale="off", steps=1000, optimizer="lbfgs", lbfgs_history=100, init="noise",
        content_layers=("block4_conv2",), style_layers=STYLE_LAYERS, style_loss="gram",
        average=0.0,
    )  # fmt: skip
    unit = _units(config, photo, painting, extractors)
    per_layer = [100.0 * norm / c**4 for norm, c in zip(unit.style, unit.channels)]
    return config.replace(
        content_weight=5.0 * unit.content[0],
        style_weight=sum(per_layer),
        style_layer_weights=tuple(per_layer),
        tv_weight=5.0 * unit.content[0] * TV_WEIGHT / CONTENT_WEIGHT,
    )


def _units(config: Config, photo: str, painting: str, extractors: Extractors):
    stage = StyleTransfer(prepare(config, photo, painting), extractors(config)).stage
    return units(stage.targets)


def run_pair(
    photo: str, painting: str, size: int, precision: str, losses: bool, others=RECIPES
) -> list[Trace]:
    """The traces of jcjohnson's recipe and the `others` (RECIPES) on one pair,
    measured; with `losses`, of jcjohnson's and the defaults with each style loss (LOSSES)."""
    extractors = Extractors(precision)
    base = Config(size=size, weights="hed", precision=precision)

    def ours(config: Config):
        return lambda: StyleTransfer(prepare(config, photo, painting), extractors(config))

    jcjohnson = jcjohnson_config(base, photo, painting, extractors)
    tutorial = Config.from_preset("tutorial", size=size, weights="hed", precision=precision)
    traces = [record(REFERENCE, ours(jcjohnson), jcjohnson.steps, math.inf)]
    budget = traces[0].seconds[-1]
    defaults = sum(steps for _, steps in pyramid.scales(base))
    images = load_image(photo, size), load_image(painting, size)
    height, width = images[0].shape[:2]
    if losses:
        for recipe, fields in LOSSES.items():
            config = base.replace(**fields)
            traces.append(record(recipe, ours(config), defaults, budget, more=MORE))
    else:
        if "defaults" in others:
            traces.append(record("nst_tf defaults", ours(base), defaults, budget, more=MORE))
        if "adam" in others:
            adam = base.replace(optimizer="adam")
            traces.append(record(ADAM, ours(adam), defaults, budget, more=MORE))
        if "tutorial" in others:
            traces.append(record("TF tutorial", ours(tutorial), tutorial.steps, math.inf))
        if "naive" in others:
            # As the Keras example does, the painting takes the photo's height and width.
            stretched = resize(images[1][None], height, width)[0].numpy()
            naive = lambda: NaiveStyleTransfer(images[0], stretched, "hed", "vgg16", precision)  # noqa: E731
            traces.append(record("naive", naive, 10**9, budget))
        if "float32" in others and precision != "float32":
            # the precision decision: the defaults in float32 beside those in `precision`
            float32 = base.replace(precision="float32")
            extractors = Extractors("float32")
            traces.append(record(FLOAT32, ours(float32), defaults, budget))
    measure = quality.measurer(*images, quality.default_judge())
    for trace in traces:  # a coarse scale's snapshot is measured as it would be seen: enlarged
        trace.measures = [measure(resize(image, height, width).numpy()) for image in trace.images]
    return traces


def table(pair: tuple[str, str], traces: list[Trace]) -> tuple[list[str], dict[str, float]]:
    """Markdown rows of one pair, and each recipe's ratio of jcjohnson's time to reach its
    final quality over its own (recipes that never reach it left out)."""
    reference = next(t for t in traces if t.recipe == REFERENCE)
    goal = reference.measures[reference.end]
    reference_seconds = reference.seconds[first_reach(reference, goal)]
    rows, ratios = [], {}
    for trace in traces:
        reached = first_reach(trace, goal)
        final = trace.measures[trace.end]
        cells = [
            pair[0], pair[1], trace.recipe, str(trace.steps[trace.end]),
            f"{trace.seconds[trace.end]:.0f}",
            *(f"{final[d]:.2f}" for d in quality.DEPTHS), f"{final['edges']:.2f}",
        ]  # fmt: skip
        if reached is None:
            then = at_time(trace, reference_seconds)
            short = ", ".join(f"{m} {then[m]:.2f}" for m in shortfalls(then, goal))
            cells += [f"not reached; at {reference_seconds:.0f} s short in {short}", "-"]
        else:
            ratios[trace.recipe] = reference_seconds / trace.seconds[reached]
            cells += [
                f"{trace.seconds[reached]:.1f} (step {trace.steps[reached]})",
                f"{ratios[trace.recipe]:.1f}",
            ]
        own = settled(trace)
        if own is None:
            cells.append("-")
        else:
            cells.append(f"{trace.seconds[own]:.1f} (step {trace.steps[own]} of {trace.steps[-1]})")
        rows.append("| " + " | ".join(cells) + " |")
    return rows, ratios


def report(size: int, precision: str, results: dict[tuple[str, str], list[Trace]]) -> str:
    lines = [
        "| photo | painting | recipe | steps | wall time (s) | "
        + " | ".join(quality.DEPTHS)
        + " | edges | time to jcjohnson's final quality (s) | jcjohnson's time / this "
        "| time to its own converged quality (s) |",
        "|---|---|---|---:|---:|" + "---:|" * len(quality.DEPTHS) + "---:|---|---:|---|",
    ]
    ratios = {}
    for pair, traces in results.items():
        rows, pair_ratios = table(pair, traces)
        lines += rows
        for recipe, ratio in pair_ratios.items():
            ratios.setdefault(recipe, []).append(ratio)
    summary = [
        f"{recipe}: {math.exp(np.mean(np.log(r))):.1f}x on {len(r)} of {len(results)} pairs"
        for recipe, r in ratios.items()
        if recipe != REFERENCE
    ]
    but = " but the row marked float32" if FLOAT32 in recipes(results) else ""
    return (
        f"{size} px (longest side), HED VGG16 features, every recipe in {precision}{but}; "
        "recipes and measures as in scripts/benchmarks/time_to_quality.py. block1 to block5: "
        "the style distance at each depth over the photo's (1 the photo, 0 the painting); "
        "edges: correlation of the result's HED edges with the photo's, both seen at most "
        f"{quality.EDGE_SIZE} px on the long side; steps, wall time "
        "and the measures are those of each recipe's result (the defaults' at the end of their "
        f"schedule, after which they went on at the finest scale for {MORE:g} times as long, "
        "as a user asking for more steps would; a dot on each curve in the plot). Time to its "
        "own converged quality: for a recipe that went on, its first snapshot within "
        f"{SLACK:g} of its last at every depth and in edges. Geometric "
        "mean of jcjohnson's time over each recipe's: "
        + "; ".join(summary)
        + ".\n\n"
        + "\n".join(lines)
    )


COLOURS = {
    "nst_tf defaults": "#d62728",
    FLOAT32: "#ff9896",
    ADAM: "#8c564b",
    REFERENCE: "#1f77b4",
    "TF tutorial": "#2ca02c",
    "naive": "#7f7f7f",
    "defaults, gram": "#d62728",
    "defaults, gaussian_w2": "#9467bd",
    "defaults, gaussian_w2, average 0.99": "#c5b0d5",
    "defaults, sliced_w2": "#ff7f0e",
}


def recipes(results: dict[tuple[str, str], list[Trace]]) -> list[str]:
    """The recipes that ran, in the order of COLOURS."""
    ran = {t.recipe for traces in results.values() for t in traces}
    return [r for r in COLOURS if r in ran]


def plot(results: dict[tuple[str, str], list[Trace]], path: str) -> None:
    """An SVG of features against wall seconds (log scale), one panel per pair, one line per
    recipe, and jcjohnson's final quality dashed."""
    width, height, margin = 330, 240, 45
    longest = max(t.seconds[-1] for traces in results.values() for t in traces)
    right = 10 ** math.ceil(math.log10(longest))
    x = lambda s: margin + (width - margin - 10) * math.log10(max(s, 1.0)) / math.log10(right)  # noqa: E731
    y = lambda q: 20 + (height - margin - 20) * (1.0 - max(min(q, 1.0), 0.0))  # noqa: E731
    panels = []
    for n, (pair, traces) in enumerate(results.items()):
        parts = [f'<g transform="translate({n * width},0)">']
        parts.append(
            f'<text x="{width / 2}" y="14" text-anchor="middle">'
            f"{pair[0].split('.')[0]} / {pair[1].split('.')[0]}</text>"
        )
        for q in (0.0, 0.25, 0.5, 0.75, 1.0):
            parts.append(
                f'<line x1="{margin}" x2="{width - 10}" y1="{y(q)}" y2="{y(q)}" stroke="#ddd"/>'
                f'<text x="{margin - 4}" y="{y(q) + 4}" text-anchor="end">{q:g}</text>'
            )
        for e in range(0, round(math.log10(right)) + 1):
            parts.append(
                f'<line x1="{x(10**e)}" x2="{x(10**e)}" y1="20" y2="{y(0)}" stroke="#ddd"/>'
                f'<text x="{x(10**e)}" y="{y(0) + 14}" text-anchor="middle">{10**e:g}</text>'
            )
        parts.append(f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">seconds</text>')
        reference = next(t for t in traces if t.recipe == REFERENCE)
        goal = y(reference.final("features"))
        parts.append(
            f'<line x1="{margin}" x2="{width - 10}" y1="{goal}" y2="{goal}" '
            f'stroke="{COLOURS[REFERENCE]}" stroke-dasharray="4 3"/>'
        )
        for trace in traces:
            points = " ".join(
                f"{x(s):.1f},{y(m['features']):.1f}" for s, m in zip(trace.seconds, trace.measures)
            )
            colour = COLOURS[trace.recipe]
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
                f'<circle cx="{x(trace.seconds[trace.end]):.1f}" '
                f'cy="{y(trace.final("features")):.1f}" r="3" fill="{colour}"/>'
            )
        parts.append("</g>")
        panels += parts
    shown = recipes(results)
    legend = [
        f'<text x="{margin + 300 * (i % 3)}" y="{height + 14 + 14 * (i // 3)}" '
        f'fill="{COLOURS[recipe]}">&#9644; {recipe}</text>'
        for i, recipe in enumerate(shown)
    ]
    total, tall = width * len(results), height + 10 + 14 * math.ceil(len(shown) / 3)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{tall}" '
        'font-family="sans-serif" font-size="11">'
        f'<rect width="{total}" height="{tall}" fill="white"/>'
        f'<text x="4" y="{height / 2}" transform="rotate(-90 10 {height / 2})">features</text>'
        + "".join(panels + legend)
        + "</svg>\n"
    )
    with open(path, "w") as f:
        f.write(svg)


def sheets(results: dict[tuple[str, str], list[Trace]], directory: str, name: str) -> None:
    """Contact sheets of the final images: every recipe's (`name`.jpg), and, where the
    defaults ran in float32 too, the defaults in the benchmark's precision beside float32
    (precision.jpg)."""
    rows, pairs = [], []
    shown = [r for r in recipes(results) if r != FLOAT32]
    for (photo, painting), traces in results.items():
        by_name = {t.recipe: t.images[t.end] for t in traces}
        size = max(by_name[REFERENCE].shape[:2])
        originals = [load_image(os.path.join(SAMPLES, f), size) for f in (photo, painting)]
        rows.append(originals + [by_name[r] for r in shown])
        if FLOAT32 in by_name and "nst_tf defaults" in by_name:
            pairs.append([originals[0], by_name["nst_tf defaults"], by_name[FLOAT32]])
    caption = "photo | painting | " + " | ".join(shown) + ": final images"
    contact_sheet(rows, caption, 200).save(os.path.join(directory, f"{name}.jpg"), quality=85)
    if pairs:
        caption = "photo | nst_tf defaults in bfloat16 (precision auto here) | the same in float32"
        contact_sheet(pairs, caption, 256).save(
            os.path.join(directory, "precision.jpg"), quality=85
        )


def chosen() -> tuple[str, ...]:
    """The recipes --time_to_quality_recipes asks for, in the order of RECIPES."""
    return tuple(r for r in RECIPES if r in FLAGS.time_to_quality_recipes)


def variant() -> str:
    """What the flags chose, when it is not the whole suite: part of the heading."""
    if FLAGS.time_to_quality_losses:
        return "the style losses"
    if chosen() != RECIPES:
        return "jcjohnson's recipe and " + ", ".join(chosen())
    return ""


def run(repeats: int) -> str:
    """jcjohnson's recipe and the chosen others on every pair (with --time_to_quality_losses,
    jcjohnson's and the defaults with each style loss): the report, and the plot and sheets
    in docs/ (named after the variant when not all of the recipes ran)."""
    del repeats  # one run of each recipe: minutes apiece
    size, losses = FLAGS.time_to_quality_size, FLAGS.time_to_quality_losses
    precision = resolve_precision("auto")
    name = "time_to_quality_losses" if losses else "time_to_quality"
    if not losses and chosen() != RECIPES:
        name += "_" + "_".join(chosen())
    results = {}
    for photo, painting in (pair.split(":") for pair in FLAGS.time_to_quality_pairs):
        print(f"time_to_quality: {photo} / {painting} ...", flush=True)
        paths = (os.path.join(SAMPLES, photo), os.path.join(SAMPLES, painting))
        results[photo, painting] = run_pair(*paths, size, precision, losses, chosen())
    plot(results, os.path.join(DOCS, f"{name}.svg"))
    sheets(results, DOCS, name)
    shown = [r for r in recipes(results) if r != FLOAT32]
    return (
        report(size, precision, results)
        + "\n\n![Features against seconds, one panel per pair and one line per recipe; "
        f"jcjohnson's final quality dashed](docs/{name}.svg)\n\n"
        f"Final images, photo | painting | {' | '.join(shown)} (docs/{name}.jpg):\n\n"
        f"![Final images of each recipe](docs/{name}.jpg)"
    )
