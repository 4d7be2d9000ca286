"""nst-tf: paint a photo in the style of a painting.

    nst-tf --content=photo.jpg --style=painting.jpg --output=out.png

Exit status: 0 done; 2 a flag, input file or output path is wrong (nothing is computed);
1 the run failed (weights unavailable, write failed); 130 interrupted. Errors are one line
on stderr; the output file is written atomically, so it is complete or absent.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from absl import app, flags, logging  # noqa: E402

from nst_tf.config import (  # noqa: E402
    INIT_CHOICES,
    OPTIMIZERS,
    POOLING_CHOICES,
    Config,
    ConfigError,
)
from nst_tf.images import ImageError, check_output_path, load_image, save_image  # noqa: E402

PROG = "nst-tf"
DEFAULTS = Config()

flags.DEFINE_string("content", None, "Content image: the photo to repaint.")
flags.DEFINE_string("style", None, "Style image: the painting whose style to copy.")
flags.DEFINE_string("output", "out.png", "Output image; .png, .jpg, .jpeg or .webp.")
flags.DEFINE_integer("size", DEFAULTS.size, "Longest side of the output, in pixels.")
flags.DEFINE_integer("steps", DEFAULTS.steps, "Optimisation steps (loss evaluations).")
flags.DEFINE_enum("optimizer", DEFAULTS.optimizer, OPTIMIZERS, "Optimizer.")
flags.DEFINE_float(
    "learning_rate",
    None,
    "Step size; default 5.1 for adam, 1.0 (the full quasi-Newton step) for lbfgs.",
)
flags.DEFINE_float("content_weight", DEFAULTS.content_weight, "Weight of the content loss.")
flags.DEFINE_float("style_weight", DEFAULTS.style_weight, "Weight of the style loss.")
flags.DEFINE_float("tv_weight", DEFAULTS.tv_weight, "Weight of the total-variation loss.")
flags.DEFINE_list("content_layers", list(DEFAULTS.content_layers), "VGG19 content layers.")
flags.DEFINE_list("style_layers", list(DEFAULTS.style_layers), "VGG19 style layers.")
flags.DEFINE_list(
    "style_layer_weights", None, "Per-style-layer weights (normalised to sum 1); default equal."
)
flags.DEFINE_string(
    "init", DEFAULTS.init, f"Starting image: {', '.join(INIT_CHOICES)} or an image file."
)
flags.DEFINE_string(
    "weights",
    DEFAULTS.weights,
    "VGG19 weights: auto (ImageNet if available, else random with a warning), imagenet, "
    "random (seeded, for trials), or a path to vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5.",
)
flags.DEFINE_enum("pooling", DEFAULTS.pooling, POOLING_CHOICES, "VGG19 pooling.")
flags.DEFINE_integer("seed", DEFAULTS.seed, "Seed for noise init and random weights.")
flags.DEFINE_integer(
    "save_every", 0, "Also write the image every N steps, as OUTPUT_0100.png etc.; 0: never."
)
flags.mark_flags_as_required(["content", "style"])
FLAGS = flags.FLAGS


def config_from_flags() -> Config:
    """The Config the flags describe."""
    try:
        layer_weights = (
            None
            if FLAGS.style_layer_weights is None
            else tuple(float(w) for w in FLAGS.style_layer_weights)
        )
    except ValueError:
        raise ConfigError(
            f"style_layer_weights must be numbers, got {','.join(FLAGS.style_layer_weights)}"
        ) from None
    return Config(
        size=FLAGS.size,
        steps=FLAGS.steps,
        optimizer=FLAGS.optimizer,
        learning_rate=FLAGS.learning_rate,
        content_weight=FLAGS.content_weight,
        style_weight=FLAGS.style_weight,
        tv_weight=FLAGS.tv_weight,
        content_layers=tuple(FLAGS.content_layers),
        style_layers=tuple(FLAGS.style_layers),
        style_layer_weights=layer_weights,
        init=FLAGS.init,
        weights=FLAGS.weights,
        pooling=FLAGS.pooling,
        seed=FLAGS.seed,
    )


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _fail(f"unexpected arguments: {' '.join(argv[1:])}", 2)
    try:
        config = config_from_flags()
        if FLAGS.save_every < 0:
            raise ConfigError(f"save_every must be >= 0, got {FLAGS.save_every}")
        check_output_path(FLAGS.output)
        content = load_image(FLAGS.content, config.size)
        style = load_image(FLAGS.style, config.size)
    except (ConfigError, ImageError) as e:
        _fail(str(e), 2)

    from nst_tf.features import WeightsError
    from nst_tf.transfer import StyleTransfer

    try:
        transfer = StyleTransfer(content, style, config)
    except ImageError as e:  # an --init image that does not decode
        _fail(str(e), 2)
    except WeightsError as e:
        _fail(str(e), 1)
    height, width = content.shape[:2]
    logging.info(
        "Stylizing %s (%dx%d) in the style of %s: %d %s steps.",
        FLAGS.content, width, height, FLAGS.style, config.steps, config.optimizer,
    )  # fmt: skip
    progress = Progress(config.steps)

    def after_step(step: int, terms: dict[str, float]) -> None:
        progress.update(step, terms)
        if FLAGS.save_every and step % FLAGS.save_every == 0 and step < config.steps:
            save_image(numbered_path(FLAGS.output, step, config.steps), transfer.result())

    try:
        image = transfer.run(callback=after_step)
        save_image(FLAGS.output, image)
    except ImageError as e:
        _fail(str(e), 1)
    except KeyboardInterrupt:
        _fail("interrupted; no output written", 130)
    progress.close()
    logging.info("Wrote %s.", FLAGS.output)


def numbered_path(path: str, step: int, steps: int) -> str:
    """out.png, step 100 of 500 -> out_0100.png (at least 4 digits, more for long runs)."""
    stem, ext = os.path.splitext(path)
    return f"{stem}_{step:0{max(4, len(str(steps)))}d}{ext}"


class Progress:
    """Step, loss terms, speed and ETA: one live line on a terminal, else every 5%."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total = total
        self.stream = stream
        self.live = stream.isatty()
        self.every = max(1, total // 20)
        self.start = time.monotonic()

    def update(self, step: int, terms: dict[str, float]) -> None:
        if not self.live and step % self.every and step != self.total:
            return
        elapsed = time.monotonic() - self.start
        eta = elapsed / step * (self.total - step)
        losses = " ".join(f"{k} {terms[k]:.4g}" for k in ("total", "content", "style", "tv"))
        line = f"step {step}/{self.total}  {losses}  {elapsed / step:.2f} s/step  ETA {_clock(eta)}"
        self.stream.write(f"\r{line}\033[K" if self.live else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _fail(message: str, code: int):
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.exit(code)


def _parse_flags(argv: list[str]) -> list[str]:
    """Parse flags; a bad flag is a usage error: one line, exit 2, no traceback."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        _fail(str(e), 2)


def run() -> None:
    """Console-script entry point."""
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
