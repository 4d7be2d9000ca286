"""nst-tf: paint a photo in the style of a painting.

    nst-tf --content=photo.jpg --style=painting.jpg --output=out.png
    nst-tf --content=photos/ --style=painting.jpg --output=out.png   # out_<photo name>.png
    nst-tf --video=clip.mp4 --style=painting.jpg --output=painted.mp4  # nst_tf.video_cli

Exit status: 0 done; 2 a flag, input file or output path is wrong (nothing is computed);
1 the run failed (weights unavailable, loss not finite, write failed); 130 or 143
interrupted by SIGINT or SIGTERM, after writing the current image and a checkpoint that
--resume continues from. Errors are one line on stderr; files are written atomically, so
they are complete or absent.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys

from nst_tf import options

options.start_tensorflow(sys.argv)  # before anything imports TensorFlow, to keep it quiet

from absl import flags, logging  # noqa: E402

from nst_tf.config import ConfigError  # noqa: E402
from nst_tf.features import WeightsError  # noqa: E402
from nst_tf.images import IMAGE_EXTENSIONS, ImageError, check_output_path, save_image  # noqa: E402
from nst_tf.inputs import prepare  # noqa: E402
from nst_tf.progress import Progress  # noqa: E402

PROG = "nst-tf"

options.define(options.NST_TF_FLAGS)
flags.mark_flags_as_required(["style"])
FLAGS = flags.FLAGS


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; the run stops after the step in progress."""


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _fail(f"unexpected arguments: {' '.join(argv[1:])}", 2)
    signals = _catch_signals()
    if (FLAGS.content is None) == (FLAGS.video is None):
        _fail("give --content (photos) or --video (a clip), one of the two", 2)
    if FLAGS.video:
        from nst_tf import video_cli

        try:
            config = options.config_from_flags()
        except ConfigError as e:
            _fail(str(e), 2)
        return video_cli.main(config, signals)
    checkpoint_dir = FLAGS.checkpoint_dir or FLAGS.output + ".checkpoint"
    try:
        config = options.config_from_flags()
        for name in ("save_every", "checkpoint_every"):
            if FLAGS[name].value < 0:
                raise ConfigError(f"{name} must be >= 0, got {FLAGS[name].value}")
        check_output_path(FLAGS.output)
        if FLAGS.contact_sheet:
            check_output_path(FLAGS.contact_sheet)
        if FLAGS.resume and not os.path.isdir(checkpoint_dir):
            raise ConfigError(f"{checkpoint_dir}: no checkpoint to resume from")
        content_paths = content_files(FLAGS.content)
        outputs = output_paths(FLAGS.output, content_paths)
        inputs = prepare(
            config,
            content_paths if len(content_paths) > 1 else content_paths[0],
            FLAGS.style,
            FLAGS.content_mask,
            FLAGS.style_masks,
            max_input_pixels=FLAGS.max_input_pixels,
        )
        if FLAGS.fast and inputs.masked:
            raise ConfigError("--fast paints the whole photo: it takes no masks")
    except (ConfigError, ImageError) as e:
        _fail(str(e), 2)
    except WeightsError as e:  # init=fast without the fast extra
        _fail(str(e), 1)
    if FLAGS.fast:
        return paint_fast(inputs, outputs)

    from nst_tf import devices
    from nst_tf.transfer import NumericError, StyleTransfer
    from nst_tf.watch import ContactSheet, TensorBoardLog

    try:
        transfer = StyleTransfer(inputs, strategy=devices.strategy(FLAGS.devices))
        if FLAGS.resume:
            transfer.restore(checkpoint_dir)
    except ConfigError as e:  # masks with tiles, a checkpoint of other settings
        _fail(str(e), 2)
    except WeightsError as e:
        _fail(str(e), 1)
    height, width = inputs.content.shape[1:3]
    first, total = transfer.steps_taken, transfer.total_steps
    logging.info(
        "Stylizing %s (%dx%d) in the style of %s: %s%d %s steps at %s px.",
        ", ".join(content_paths), width, height, ", ".join(FLAGS.style),
        f"from step {first}, " if first else "", total, config.optimizer,
        ", ".join(str(size) for size, _ in transfer.scales),
    )  # fmt: skip
    if transfer.strategy is not None:
        logging.info(
            "Tiles spread over %d devices: %s.",
            transfer.strategy.num_replicas_in_sync,
            ", ".join(d.split("device:")[-1] for d in transfer.strategy.extended.worker_devices),
        )
    progress = Progress(transfer.scales, first)

    log = TensorBoardLog(FLAGS.logdir) if FLAGS.logdir else None
    sheet = ContactSheet() if FLAGS.contact_sheet else None

    def save(result, step: int | None = None) -> list:
        """Write each content's result, numbered for an intermediate step."""
        images = result if len(outputs) > 1 else [result]
        for path, image in zip(outputs, images):
            save_image(path if step is None else numbered_path(path, step, total), image)
        return images

    def keep(step: int, image) -> None:
        """An iteration worth looking at (the first content's): to TensorBoard and the sheet."""
        if log:
            log.image(step, image)
        if sheet:
            sheet.add(step, image)

    def after_step(record) -> None:
        step = record.step
        progress.update(step, record.terms, record.accepted)
        if log:
            log(record)
        if FLAGS.save_every and step % FLAGS.save_every == 0 and step < total:
            keep(step, save(record.image(), step)[0])
        if FLAGS.checkpoint_every and step % FLAGS.checkpoint_every == 0:
            transfer.save(checkpoint_dir)
        if signals:
            raise Interrupted()

    try:
        if signals:  # arrived while the model was being built
            raise Interrupted()
        keep(total, save(transfer.run(callback=after_step))[0])
        if sheet:
            save_image(FLAGS.contact_sheet, sheet.render())
    except Interrupted:
        progress.close()
        transfer.save(checkpoint_dir)
        save(transfer.result())
        name = signal.Signals(signals[0]).name
        _fail(
            f"{name} at step {transfer.steps_taken} of {total}; wrote "
            f"{', '.join(outputs)} and a checkpoint in {checkpoint_dir}: add --resume to continue",
            128 + signals[0],
        )
    except NumericError as e:
        progress.close()
        save(transfer.result())
        _fail(f"{e} Wrote the last finite image to {', '.join(outputs)}.", 1)
    except (ImageError, OSError) as e:
        _fail(str(e), 1)
    progress.close()
    if log:
        log.close()
    if os.path.isdir(checkpoint_dir) and (FLAGS.resume or FLAGS.checkpoint_every):
        shutil.rmtree(checkpoint_dir)  # finished: nothing left to resume
    logging.info("Wrote %s.", ", ".join(outputs))


def paint_fast(inputs, outputs: list[str]) -> None:
    """--fast: each content painted by the feed-forward network alone (with its colours put
    back for preserve_colors=luminance), written."""
    from nst_tf import fast

    try:
        for path, image in zip(outputs, fast.stylize(inputs)):
            save_image(path, image)
    except (WeightsError, ImageError, OSError) as e:
        _fail(str(e), 1)
    logging.info("Wrote %s.", ", ".join(outputs))


def content_files(entries: list[str]) -> list[str]:
    """The --content entries, a lone directory standing for the image files in it."""
    if len(entries) != 1 or not os.path.isdir(entries[0]):
        return entries
    directory = entries[0]
    files = sorted(
        os.path.join(directory, name)
        for name in os.listdir(directory)
        if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise ImageError(f"{directory}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in it")
    return files


def output_paths(output: str, contents: list[str]) -> list[str]:
    """One output for one content; OUTPUT_<content name><ext> each for several."""
    if len(contents) == 1:
        return [output]
    stem, ext = os.path.splitext(output)
    names = [os.path.splitext(os.path.basename(path))[0] for path in contents]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f"two content images are named {twice[0]}; their outputs would clash")
    return [f"{stem}_{name}{ext}" for name in names]


def _catch_signals() -> list[int]:
    """From now on SIGINT and SIGTERM are recorded in the returned list instead of killing us."""
    received: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: received.append(signum))
    return received


def numbered_path(path: str, step: int, steps: int) -> str:
    """out.png, step 100 of 500 -> out_0100.png (at least 4 digits, more for long runs)."""
    stem, ext = os.path.splitext(path)
    return f"{stem}_{step:0{max(4, len(str(steps)))}d}{ext}"


def _fail(message: str, code: int):
    options.fail(PROG, message, code, options.NST_TF_FLAGS)


def run() -> None:
    """Console-script entry point."""
    options.run(main, PROG, quiet_packages=("tensorflow",))  # tf.distribute's notices


if __name__ == "__main__":
    run()
