"""nst-tf --video: a clip painted frame by frame (nst_tf.clip), from a video file or a folder
of frames into a video file or a folder of numbered frames.

Each finished frame is written at once (video.frame_path) in the frames folder: the output
folder itself, or OUTPUT.frames beside an output video, which is made from the frames at the
end (at the input's frame rate, with its audio) and the folder then removed. After SIGINT or
SIGTERM, --resume goes on after the last frame written, with the settings recorded beside
the frames; the frames come out as they would have without the stop.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal

from absl import flags, logging

from nst_tf import options, pyramid
from nst_tf.config import Config, ConfigError
from nst_tf.images import ImageError, load_image, save_image

FLAGS = flags.FLAGS
SETTINGS_FILE = "nst_tf_video.json"  # in the frames folder: what --resume must match
# Flags of still images that a clip does not take.
STILL_ONLY = ("content", "content_mask", "style_masks", "save_every", "checkpoint_every",
              "checkpoint_dir", "contact_sheet", "logdir", "devices")  # fmt: skip


class Stopped(Exception):
    """A signal arrived; the run stops after the step in progress."""


def main(config: Config, signals: list[int]) -> None:
    """The --video run of the parsed flags; exits as nst-tf does (see nst_tf.cli)."""
    try:
        from nst_tf import video
        from nst_tf.clip import ClipPainter
    except ImportError as e:
        _fail(f"video needs the video extra (pip install 'nst_tf[video]'): no module {e.name}", 1)
    output = FLAGS.output
    try:
        given = [name for name in STILL_ONLY if FLAGS[name].present]
        if given:
            raise ConfigError(f"{given[0]} is for still images and does not apply to video")
        if FLAGS.frame_steps < 1:
            raise ConfigError(f"frame_steps must be at least 1, got {FLAGS.frame_steps}")
        if FLAGS.fps is not None and FLAGS.fps <= 0:
            raise ConfigError(f"fps must be positive, got {FLAGS.fps}")
        video.check_output(output)
        clip = video.open_clip(FLAGS.video)
        folder = output + ".frames" if video.is_video_file(output) else output
        settings = _settings(config, clip)
        done = _frames_done(folder, settings) if FLAGS.resume else 0
    except (ConfigError, ImageError) as e:
        _fail(str(e), 2)
    fps = FLAGS.fps or clip.fps

    from nst_tf.features import WeightsError
    from nst_tf.progress import FrameProgress, Progress
    from nst_tf.transfer import NumericError

    try:
        painter = ClipPainter(
            FLAGS.style, config, FLAGS.frame_steps, max_input_pixels=FLAGS.max_input_pixels,
            fast=FLAGS.fast,
        )  # fmt: skip
        frames = clip.read(max(done - 1, 0))
        if done:
            painter.continue_after(next(frames), load_image(video.frame_path(folder, done)))
        else:
            _start_folder(folder, settings)
    except WeightsError as e:
        _fail(str(e), 1)
    except (ConfigError, ImageError, OSError) as e:
        _fail(str(e), 2)
    how = (
        "each frame by the feed-forward network"
        if FLAGS.fast
        else f"the first frame in {'+'.join(str(n) for _, n in pyramid.scales(config))} steps, "
        f"each next one in {FLAGS.frame_steps}"
    )
    logging.info(
        "Painting %s (%d frames, %dx%d, %.4g fps) in the style of %s: %s%d px, %s.",
        clip.path, clip.frames, clip.width, clip.height, clip.fps, ", ".join(FLAGS.style),
        f"from frame {done + 1}, " if done else "", config.size, how,
    )  # fmt: skip
    frame_progress = FrameProgress(clip.frames, done)
    step_progress = None

    def after_step(record) -> None:
        if step_progress is not None:
            step_progress.update(record.step, record.terms, record.accepted)
        if signals:
            raise Stopped()

    finished = done
    try:
        for number, frame in enumerate(frames, start=done + 1):
            if number == 1 and painter.scales():  # the long one: a still image's progress
                step_progress = Progress(painter.scales())
            painted = painter.paint(frame, callback=after_step)
            if step_progress is not None:
                step_progress.close()
                step_progress = None
            save_image(video.frame_path(folder, number), painted)
            finished = number
            frame_progress.update(number)
            if signals:
                raise Stopped()
        frame_progress.close()
        if video.is_video_file(output):
            files = [video.frame_path(folder, i) for i in range(1, clip.frames + 1)]
            video.write_video(output, files, fps, clip)
            shutil.rmtree(folder)
    except Stopped:
        frame_progress.close()
        kept = f"frames 1 to {finished} are in {folder}" if finished else "no frame was finished"
        _fail(
            f"{signal.Signals(signals[0]).name} after frame {finished} of {clip.frames}; "
            f"{kept}: add --resume to continue",
            128 + signals[0],
        )
    except NumericError as e:
        _fail(f"frame {finished + 1}: {e}", 1)
    except (ImageError, OSError) as e:
        _fail(str(e), 1)
    audio = " with its audio" if clip.audio and video.is_video_file(output) else ""
    logging.info("Wrote %s: %d frames at %.4g fps%s.", output, clip.frames, fps, audio)


def _settings(config: Config, clip) -> dict:
    """What makes the frames what they are, as recorded beside them for --resume."""
    return {
        "video": os.path.abspath(clip.path),
        "frames": clip.frames,
        "style": [os.path.abspath(s) for s in FLAGS.style],
        "frame_steps": FLAGS.frame_steps,
        "fast": FLAGS.fast,
        **json.loads(json.dumps(dataclasses.asdict(config))),  # as JSON gives them back
    }


def _frames_done(folder: str, settings: dict) -> int:
    """Frames already painted in `folder` by a run of these settings (for --resume)."""
    from nst_tf.video import frame_path

    try:
        with open(os.path.join(folder, SETTINGS_FILE)) as f:
            recorded = json.load(f)
    except (OSError, ValueError):
        raise ConfigError(f"{folder}: no frames of an earlier run to resume from") from None
    if recorded != settings:
        changed = sorted(k for k in settings if recorded.get(k) != settings[k])
        raise ConfigError(
            f"{folder}: its frames were painted with other settings ({', '.join(changed)}); "
            "run without --resume to start over"
        )
    done = 0
    while done < settings["frames"] and os.path.isfile(frame_path(folder, done + 1)):
        done += 1
    return done


def _start_folder(folder: str, settings: dict) -> None:
    """A frames folder for a new run: made, or emptied of an earlier run's frames."""
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name == SETTINGS_FILE or (name.startswith("frame_") and name.endswith(".png")):
            os.unlink(os.path.join(folder, name))
    with open(os.path.join(folder, SETTINGS_FILE), "w") as f:
        json.dump(settings, f, indent=1)


def _fail(message: str, code: int):
    options.fail("nst-tf", message, code, options.NST_TF_FLAGS)
