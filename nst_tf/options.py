"""The commands' flags, defined once, and what the commands share: start-up, clean failure.

Every flag of both commands is listed here. Those of Config's fields (and, for
nst-tf-export, of Limits') are made from the fields themselves: name, default, choices and
help (config.setting), so a new setting needs its field and nothing else, and no flag can
disagree with its field. The commands turn the parsed flags into a Config with
`config_from_flags`, and `fail` speaks of flags where the library speaks of settings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging as pylogging
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple

from absl import app, flags
from absl import logging as absl_logging

from nst_tf.config import FRAME_STEPS, MAX_INPUT_PIXELS, PRESETS, Config, ConfigError, Limits

FLAGS = flags.FLAGS


class Flag(NamedTuple):
    """One command-line flag: absl's kind (string, integer, float, enum, list, bool)."""

    name: str
    kind: str
    default: object
    help: str
    choices: tuple[str, ...] | None = None


def _field_flag(field: dataclasses.Field, default=dataclasses.MISSING) -> Flag:
    """The flag of a Config or Limits field, its kind read from the field's type."""
    choices = field.metadata["choices"]
    kind = {"int": "integer", "float": "float", "float | None": "float", "str": "string"}.get(
        field.type, "list"
    )
    if choices:
        kind = "enum"
    value = field.default if default is dataclasses.MISSING else default
    if kind == "list" and value is not None:
        value = [str(v) for v in value]
    return Flag(field.name, kind, value, field.metadata["help"], choices)


PRESET = Flag(
    "preset", "enum", None,
    "Start from a published configuration (gatys, tutorial) or a quick one (fast); flags "
    "given explicitly override it.", tuple(PRESETS),
)  # fmt: skip
CONFIG_FLAGS = (*(_field_flag(f) for f in dataclasses.fields(Config)), PRESET)
LIMIT_FIELDS = {f.name: f for f in dataclasses.fields(Limits)}

STYLE_FLAG = Flag("style", "list", None, "Style image(s): the painting(s) whose style to copy.")
MAX_INPUT_PIXELS_FLAG = _field_flag(LIMIT_FIELDS["max_input_pixels"], MAX_INPUT_PIXELS)

NST_TF_FLAGS = (
    Flag(
        "content", "list", None,
        "Content image(s): the photo to repaint, several comma-separated or a directory of "
        "them, stylized together in one batch (one shape after resizing) as OUTPUT_<name>.",
    ),
    STYLE_FLAG,
    Flag("output", "string", "out.png", "Output image; .png, .jpg, .jpeg or .webp."),
    *CONFIG_FLAGS,
    Flag(
        "content_mask", "string", None,
        "Grey image: white where the style applies, black keeps the photo.",
    ),
    Flag(
        "style_masks", "list", [],
        "One grey image per style: white where that style goes (no --style_blend).",
    ),
    Flag(
        "save_every", "integer", 0,
        "Also write the image every N steps, as OUTPUT_0100.png etc.; 0: never.",
    ),
    Flag(
        "checkpoint_every", "integer", 0,
        "Also checkpoint every N steps (always on SIGINT/SIGTERM); 0: never.",
    ),
    Flag(
        "checkpoint_dir", "string", None,
        "Where checkpoints go; default OUTPUT.checkpoint next to the output.",
    ),
    Flag("resume", "bool", False, "Continue from the checkpoint in --checkpoint_dir."),
    Flag(
        "devices", "string", "auto",
        "Devices to spread a large image's tiles over (see --tile_size): auto (every GPU, "
        "else the CPU), a number of GPUs, or cpu:N (the CPU as N devices).",
    ),
    Flag("logdir", "string", None, "Write TensorBoard summaries (loss terms, images) here."),
    Flag(
        "contact_sheet", "string", None,
        "At the end, write a PNG grid of the --save_every images and the result.",
    ),
    MAX_INPUT_PIXELS_FLAG,
    Flag(
        "video", "string", None,
        "Paint a clip instead of --content: a video file (mp4, webm, mov, animated gif, ...) "
        "or a folder of frames; --output is then a video file or a folder for the frames.",
    ),
    Flag(
        "frame_steps", "integer", FRAME_STEPS,
        "Video: steps of each frame after the first (which takes --steps, coarse to fine); "
        "each starts from the frame before.",
    ),
    Flag("fps", "float", None, "Video: frames a second of the output; default the input's."),
    Flag(
        "fast", "bool", False,
        "Paint with the feed-forward network of Ghiasi et al. alone (the fast extra): a "
        "picture (or a --video frame) in about a second, with no optimisation; --init=fast "
        "starts the optimisation from it instead.",
    ),
)  # fmt: skip

EXPORT_FLAGS = (
    Flag("export_dir", "string", "saved_models", "Directory of the model repository."),
    Flag("name", "string", "nst_tf", "Model name: the subdirectory TF Serving serves it under."),
    Flag("version", "integer", 1, "Model version: a new integer for each export."),
    *(_field_flag(f) for f in LIMIT_FIELDS.values()),
    *CONFIG_FLAGS,
)


BEAM_FLAGS = (
    Flag("input", "string", None, "Photos: a file pattern on any Beam filesystem."),
    STYLE_FLAG,
    Flag("output_dir", "string", None, "Where the paintings and failures.jsonl go."),
    Flag(
        "format", "enum", "png", "File format of the paintings.", ("png", "jpg", "webp")
    ),
    Flag(
        "model_dir", "string", None,
        "Paint with this exported SavedModel's stylize signature (nst-tf-export) instead of "
        "building the network from the flags.",
    ),
    *CONFIG_FLAGS,
    MAX_INPUT_PIXELS_FLAG,
)  # fmt: skip


def define(command_flags: Sequence[Flag]) -> None:
    """Define a command's flags with absl."""
    for f in command_flags:
        if f.kind == "enum":
            flags.DEFINE_enum(f.name, f.default, list(f.choices), f.help)
        else:
            getattr(flags, f"DEFINE_{f.kind}")(f.name, f.default, f.help)


def config_from_flags() -> Config:
    """The Config the parsed flags describe: defaults, then --preset, then flags given."""
    names = [f.name for f in dataclasses.fields(Config)]
    values = {name: FLAGS[name].value for name in names}
    if FLAGS.preset:
        values.update(PRESETS[FLAGS.preset])
        values.update({name: FLAGS[name].value for name in names if FLAGS[name].present})
    for name in ("style_layer_weights", "style_blend"):
        if values[name] is not None:
            try:
                values[name] = tuple(float(w) for w in values[name])
            except ValueError:
                raise ConfigError(f"{name} must be numbers, got {','.join(values[name])}") from None
    return Config(**values)


def limits_from_flags() -> Limits:
    """The Limits the parsed flags describe."""
    return Limits(**{name: FLAGS[name].value for name in LIMIT_FIELDS})


def in_flag_terms(message: str, command_flags: Sequence[Flag]) -> str:
    """`message` with the settings it names as the command's flags: content_weight becomes
    --content_weight, network=vgg16 --network=vgg16. A name stands for a setting when it
    is given a value (name=...) or, for names with an underscore (size or steps are words as
    well), when it stands alone: not inside a path or a longer name."""
    valued = "|".join(re.escape(f.name) for f in command_flags)
    alone = "|".join(re.escape(f.name) for f in command_flags if "_" in f.name)
    if not valued:
        return message
    pattern = rf"(?<![\w/.-])(?:({valued})(?==)|({alone or valued})(?=[\s,;:)]|\.(?:\s|$)|$))"
    return re.sub(pattern, lambda m: "--" + (m.group(1) or m.group(2)), message)


def start_tensorflow(argv: Sequence[str]) -> None:
    """Import TensorFlow and start its runtime without the native libraries' start-up
    notices (oneDNN, CUDA drivers, CPU features), unless `argv` asks for debug output with
    --verbosity (or -v) of 1 or more; with --devices=cpu:N in `argv`, the CPU split into N
    logical devices first (possible only before the runtime starts).

    The notices come from the C++ libraries before their logging is set up, where
    TF_CPP_MIN_LOG_LEVEL no longer holds them back, so standard error is pointed at
    /dev/null at the level of the file descriptor while they load.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with contextlib.nullcontext() if _verbosity(argv) >= 1 else _native_stderr_silenced():
        import tensorflow as tf

        from nst_tf import devices

        try:
            devices.split_cpu(_flag_value(argv, "--devices") or "auto")
        except ConfigError:
            pass  # the flag's check reports it, after parsing
        tf.config.list_logical_devices()  # starts the runtime: the CUDA probe speaks here


class _Quiet(pylogging.Filter):
    """Drops records below errors logged by code of these packages, whichever logger they
    use (some log on the root logger)."""

    def __init__(self, packages: Sequence[str]):
        super().__init__()
        self.parts = tuple(f"{os.sep}{p}{os.sep}" for p in packages)
        self.names = tuple(packages)

    def filter(self, record: pylogging.LogRecord) -> bool:
        if record.levelno >= pylogging.ERROR:
            return True
        mine = record.name.startswith(self.names) or any(p in record.pathname for p in self.parts)
        return not mine


@contextlib.contextmanager
def quiet_python_logging():
    """Python logging of warnings and below dropped meanwhile: for a library that logs at
    import, before the command's log handler is in place."""
    root = pylogging.getLogger()
    handler, level = pylogging.NullHandler(), root.level
    root.addHandler(handler)  # so logging.warning() does not set up a stderr handler itself
    root.setLevel(pylogging.ERROR)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _verbosity(argv: Sequence[str]) -> int:
    """The value of --verbosity, --v or -v in `argv` (0 when absent or unreadable)."""
    try:
        return int(_flag_value(argv, "--verbosity", "--v", "-v") or 0)
    except ValueError:
        return 0


def _flag_value(argv: Sequence[str], *names: str) -> str | None:
    """The last value given in `argv` to a flag of these names (--name=value or --name
    value), before absl parses them: for what must be set before TensorFlow starts."""
    value = None
    for i, arg in enumerate(argv):
        name, equals, given = arg.partition("=")
        if name in names:
            value = given if equals else (argv[i + 1] if i + 1 < len(argv) else "")
    return value


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


def fail(prog: str, message: str, code: int, command_flags: Sequence[Flag] = ()):
    """One line on stderr, in the terms of the command's flags, then exit with `code`."""
    sys.stderr.write(f"{prog}: error: {in_flag_terms(message, command_flags)}\n")
    sys.exit(code)


def run(
    main: Callable[[list[str]], None],
    prog: str,
    known_only: bool = False,
    quiet_packages: Sequence[str] = (),
) -> None:
    """app.run(main), with a bad flag reported as one line and exit status 2, and log lines
    as plain "prog: message" lines (absl's prefix of level, time, thread and source line
    only with --verbosity of 1 or more). With `known_only`, flags the command does not
    define are passed on to main in argv (a pipeline's options). Log lines below errors from
    the Python packages in `quiet_packages` (a library's notes to its developers) are
    dropped, unless --verbosity is 1 or more."""

    def parse(argv: list[str]) -> list[str]:
        try:
            args = FLAGS(argv, known_only=known_only)
        except flags.Error as e:
            fail(prog, str(e), 2)
        if FLAGS["verbosity"].using_default_value:
            FLAGS.verbosity = 0  # info, as absl sets it on its first run only
        return args

    def plain_main(argv: list[str]) -> None:
        if FLAGS.verbosity < 1:
            absl_logging.get_absl_handler().setFormatter(
                pylogging.Formatter(f"{prog}: %(message)s")
            )
            if quiet_packages:
                absl_logging.get_absl_handler().addFilter(_Quiet(quiet_packages))
            for name in quiet_packages:  # and their own loggers, whatever their handlers
                pylogging.getLogger(name).setLevel(pylogging.ERROR)
        main(argv)

    app.run(plain_main, flags_parser=parse)
