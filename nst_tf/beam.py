"""Photo collections on Apache Beam: every photo matching a pattern painted in one style.

    import apache_beam as beam
    from nst_tf.beam import Painting, pipeline
    with beam.Pipeline(options=...) as root:
        pipeline(root, "gs://bucket/photos/*.jpg", Painting(Config(), ("painting.jpg",), out))

Each photo becomes OUTPUT_DIR/<its name><extension>, written whole or not at all; a photo
whose output is already there is skipped, so running the same pipeline again finishes a
job that was stopped. A photo that cannot be painted (unreadable, too large) does not stop
the job: it becomes a line of OUTPUT_DIR/failures.jsonl, its path and one sentence.

The painting is a RunInference transform with `PaintHandler`: each worker process builds
one model (Beam shares it between the process's threads), the feature network of the
settings (or an exported SavedModel's `stylize` signature, `model_dir`), and paints one
photo at a time, as the nst-tf command would. The command is nst_tf.beam_cli.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterable, Sequence

from nst_tf.options import quiet_python_logging

with quiet_python_logging():  # Beam's import warns of cloud clients it lacks
    import apache_beam as beam
import numpy as np
import tensorflow as tf
from absl import logging
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics, MetricsFilter
from apache_beam.ml.inference.base import ModelHandler, RunInference

from nst_tf import pyramid
from nst_tf.config import MAX_INPUT_PIXELS, Config, ConfigError
from nst_tf.images import ImageError, decode_image, encode_image
from nst_tf.inputs import prepare
from nst_tf.objective import Objective
from nst_tf.transfer import StyleTransfer

NAMESPACE = "nst_tf"
FAILURES = "failures.jsonl"


@dataclasses.dataclass(frozen=True)
class Painting:
    """What a pipeline paints with: settings, the style images' paths, and where to write."""

    config: Config
    styles: tuple[str, ...]
    output_dir: str
    extension: str = ".png"
    model_dir: str | None = None
    max_input_pixels: int = MAX_INPUT_PIXELS

    def output(self, photo: str) -> str:
        """Where the painting of `photo` goes: OUTPUT_DIR/<photo's name><extension>."""
        name = os.path.splitext(os.path.basename(photo))[0]
        return FileSystems.join(self.output_dir, name + self.extension)

    def settings(self) -> Config:
        """The settings the photos are painted with: the export's, with a model_dir."""
        return exported_config(self.model_dir) if self.model_dir else self.config


class Painter:
    """One worker's model: paints a decoded photo [H, W, 3] as the command would."""

    def __init__(self, painting: Painting):
        self.painting = painting
        self.config = config = painting.settings()
        style_px = int(pyramid.style_size(config, config.size))
        self.styles = [
            decode_image(_read(path), path, style_px, painting.max_input_pixels)
            for path in painting.styles
        ]
        if painting.model_dir:
            self.model = tf.saved_model.load(painting.model_dir)
        else:
            self.extractor = Objective(config).extractor

    def __call__(self, photo: np.ndarray) -> np.ndarray:
        if self.painting.model_dir:
            c = self.config  # the signature's defaults, which a TF2 load does not apply
            outputs = self.model.signatures["stylize"](
                content=tf.constant(photo[None]),
                style=tf.constant(self.styles[0][None]),
                num_steps=tf.constant(c.steps),
                content_weight=tf.constant(c.content_weight),
                style_weight=tf.constant(c.style_weight),
                tv_weight=tf.constant(c.tv_weight),
            )
            return outputs["image"][0].numpy()
        inputs = prepare(self.config, photo, self.styles)
        return StyleTransfer(inputs, self.extractor).run()


class PaintHandler(ModelHandler):
    """RunInference's model handler: one Painter per worker process, one photo per batch.
    Elements are (path, photo [H, W, 3]); results (path, the painting's file bytes)."""

    def __init__(self, painting: Painting):
        super().__init__(min_batch_size=1, max_batch_size=1)
        self.painting = painting

    def load_model(self) -> Painter:
        return Painter(self.painting)

    def run_inference(self, batch: Sequence, model: Painter, inference_args=None) -> Iterable:
        milliseconds = Metrics.distribution(NAMESPACE, "milliseconds_per_image")
        for path, photo in batch:
            start = time.perf_counter()
            painted = encode_image(model(photo), self.painting.extension)
            took = time.perf_counter() - start
            milliseconds.update(round(1000 * took))
            logging.info("%s painted in %.1f s", path, took)
            yield path, painted

    def get_metrics_namespace(self) -> str:
        return NAMESPACE


def pipeline(root: beam.Pipeline, pattern: str, painting: Painting) -> beam.PCollection:
    """Add the painting of every photo matching `pattern` to `root`; returns the failures,
    {"input": path, "error": sentence} each, which are also written to failures.jsonl."""
    done = Metrics.counter(NAMESPACE, "images_done")
    failed = Metrics.counter(NAMESPACE, "images_failed")
    config = painting.settings()

    def not_painted_yet(match) -> bool:
        return not FileSystems.exists(painting.output(match.path))

    def decode(record):
        path, data = record
        return path, decode_image(data, path, config.size, painting.max_input_pixels)

    def write(record):
        path, data = record
        _write_atomically(painting.output(path), data)
        done.inc()
        return path

    def failure(record):
        (element, (kind, _, trace)) = record
        failed.inc()
        return {"input": _path_of(element), "error": _sentence(kind, trace)}

    photos = (
        root
        | "Match" >> fileio.MatchFiles(pattern)
        | "Not painted yet" >> beam.Filter(not_painted_yet)
        | "Read" >> fileio.ReadMatches()
        | "Bytes" >> beam.Map(lambda f: (f.metadata.path, f.read()))
    )
    decoded, undecodable = photos | "Decode" >> beam.Map(decode).with_exception_handling()
    painted, unpainted = (
        decoded | "Paint" >> RunInference(PaintHandler(painting)).with_exception_handling()
    )
    _, unwritten = painted | "Write" >> beam.Map(write).with_exception_handling()
    failures = (
        (undecodable, unpainted.failed_inferences, unwritten)
        | "Failures" >> beam.Flatten()
        | "Describe" >> beam.Map(failure)
    )
    _ = (
        failures
        | "All" >> beam.combiners.ToList()
        | "failures.jsonl" >> beam.Map(
            lambda found: _write_atomically(
                FileSystems.join(painting.output_dir, FAILURES),
                "".join(json.dumps(f) + "\n" for f in sorted(found, key=str)).encode(),
            )
        )
    )  # fmt: skip
    return failures


def _path_of(element) -> str:
    """The photo's path in a failed element: (path, data), or a batch of one of those."""
    while isinstance(element, list | tuple) and not isinstance(element[0], str):
        element = element[0]
    return element[0]


def _sentence(kind: type, trace: Sequence[str]) -> str:
    """The exception's message, from the last line of its traceback ("Type: message")."""
    last = "".join(trace).rstrip().splitlines()[-1]
    head, _, message = last.partition(": ")
    return message if message and head.endswith(kind.__name__) else last


def _read(path: str) -> bytes:
    try:
        with FileSystems.open(path) as f:
            return f.read()
    except Exception as e:  # Beam wraps each filesystem's errors in its own types
        raise ImageError(f"{path}: could not be read ({e})") from None


def _write_atomically(path: str, data: bytes) -> None:
    """Write `path` whole or not at all: a temporary name beside it, then a rename (on
    object stores, whose objects appear only once complete, a plain write is atomic)."""
    if "://" in path:
        with FileSystems.create(path) as f:
            f.write(data)
        return
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    os.makedirs(directory or ".", exist_ok=True)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def exported_config(model_dir: str) -> Config:
    """The settings an export was made with (its assets.extra/nst_tf_config.json)."""
    path = FileSystems.join(model_dir, "assets.extra", "nst_tf_config.json")
    try:
        with FileSystems.open(path) as f:
            recorded = json.loads(f.read())["config"]
    except Exception:
        raise ConfigError(f"{model_dir}: not a model written by nst-tf-export") from None
    fields = {f.name for f in dataclasses.fields(Config)}
    return Config(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items() if k in fields}
    )


def metrics(result) -> tuple[int, int, float]:
    """A finished pipeline's photos painted, photos failed and mean seconds per photo."""
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))

    def total(name: str) -> int:
        found = [c for c in query["counters"] if c.key.metric.name == name]
        return sum(c.committed or c.attempted or 0 for c in found)

    times = [
        d.committed or d.attempted
        for d in query["distributions"]
        if d.key.metric.name == "milliseconds_per_image"
    ]
    times = [t for t in times if t is not None and t.count]
    seconds = sum(t.sum for t in times) / max(1, sum(t.count for t in times)) / 1000
    return total("images_done"), total("images_failed"), seconds
