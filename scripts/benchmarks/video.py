"""video: a clip painted frame by frame (nst_tf.clip), by the optimisation and by the
feed-forward network alone, against its frames painted one by one as still images: flicker
(quality.temporal_error) and the per-frame measures, with trained features; then seconds per
frame, first and following, and the optical flow's share, with random weights."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from absl import flags
from PIL import Image

from benchmarks.timing import DOCS, MEASURES, SAMPLES
from nst_tf import flow, quality
from nst_tf.clip import ClipPainter
from nst_tf.config import FRAME_STEPS, Config
from nst_tf.images import to_uint8
from nst_tf.inputs import prepare
from nst_tf.transfer import StyleTransfer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from make_clip import pan_and_zoom  # noqa: E402  (scripts/, beside this package)

TITLE = "Video without flicker"
flags.DEFINE_integer("video_frames", 24, "video: frames of the clip (pan and zoom of a photo).")
flags.DEFINE_integer("video_size", 256, "video: --size of the flicker comparison.")
flags.DEFINE_string("video_photo", "chelsea.jpg", "video: the bundled photo the clip moves over.")
flags.DEFINE_string("video_style", "shipwreck.jpg", "video: the bundled painting.")
flags.DEFINE_float("video_temporal_weight", None, "video: --temporal_weight; default its default.")
flags.DEFINE_integer("video_frame_steps", FRAME_STEPS, "video: --frame_steps.")
# The ways a clip is painted in the flicker comparison, and each one's row.
PAINTERS = {
    "video": "video mode (`--video`)",
    "warm": "video mode from the network's picture (`--video --init=fast`)",
    "fast": "the network alone (`--video --fast`)",
    "alone": "one by one, as stills",
}
flags.DEFINE_multi_enum(
    "video_painters", list(PAINTERS), list(PAINTERS),
    "video: the ways the flicker comparison paints the clip (fast: the fast extra).",
)  # fmt: skip
flags.DEFINE_list("video_speed_sizes", ["256", "512"], "video: sizes timed with random weights.")
flags.DEFINE_integer("video_speed_frames", 6, "video: frames of each timed clip.")
flags.DEFINE_string(
    "video_output", os.path.join(DOCS, "video.webp"),
    "video: the animated side-by-side clip (video mode | frames one by one); '' for none.",
)  # fmt: skip
FLAGS = flags.FLAGS


def variant() -> str:
    changed = []
    if FLAGS.video_temporal_weight is not None:
        changed.append(f"--temporal_weight={FLAGS.video_temporal_weight:g}")
    if FLAGS.video_frame_steps != FRAME_STEPS:
        changed.append(f"--frame_steps={FLAGS.video_frame_steps}")
    if set(FLAGS.video_painters) != set(PAINTERS):
        changed.append(" and ".join(n for n in PAINTERS if n in FLAGS.video_painters))
    return " ".join(changed)


def run(repeats: int) -> str:
    del repeats  # one run each: minutes apiece
    timed = "video" in FLAGS.video_painters  # the optimisation's seconds per frame
    return flicker() + ("\n\n" + speed() if timed else "")


def _config(**settings) -> Config:
    if FLAGS.video_temporal_weight is not None:
        settings["temporal_weight"] = FLAGS.video_temporal_weight
    return Config(**settings)


def flicker() -> str:
    size = FLAGS.video_size
    config = _config(size=size, weights="hed")
    style = os.path.join(SAMPLES, FLAGS.video_style)
    frames = pan_and_zoom(os.path.join(SAMPLES, FLAGS.video_photo), FLAGS.video_frames, size)
    stills = [prepare(config, frame, style) for frame in frames]  # each frame as a photo
    painted, seconds, extractor = {}, {}, None
    for name in (n for n in PAINTERS if n in FLAGS.video_painters):
        start = time.perf_counter()
        if name == "alone":
            paint = lambda i, network=extractor: to_uint8(  # noqa: E731
                StyleTransfer(stills[i], network).run()
            ).numpy()
        else:
            settings = config.replace(init="fast") if name == "warm" else config
            painter = ClipPainter(style, settings, FLAGS.video_frame_steps, extractor,
                                  fast=name == "fast")  # fmt: skip
            paint = lambda i, painter=painter: painter.paint(frames[i])  # noqa: E731
        painted[name] = []
        for i in range(len(frames)):
            painted[name].append(paint(i))
            print(f"video: frame {i + 1}, {name}", file=sys.stderr)
        seconds[name] = time.perf_counter() - start
        if name in ("video", "warm"):
            extractor = painter.extractor
    photos = [inputs.content[0] for inputs in stills]
    motions = [flow.motion(a, b) for a, b in zip(photos, photos[1:])]
    errors = {name: quality.temporal_error(p, motions) for name, p in painted.items()}
    photo_error = quality.temporal_error(photos, motions)
    judge = quality.default_judge()
    painting = stills[0].styles[0]
    means = {}
    for name, results in painted.items():
        per_frame = [
            quality.measure(photo, painting, result.astype(np.float32), judge)
            for photo, result in zip(photos, results)
        ]
        means[name] = {k: float(np.mean([m[k] for m in per_frame])) for k in per_frame[0]}
    if FLAGS.video_output and {"video", "alone"} <= painted.keys():
        _side_by_side(painted["video"], painted["alone"], FLAGS.video_output)
    trusted = float(np.mean([m.mask.mean() for m in motions]))
    rows = [
        "| frames painted | temporal error (grey levels) | of one by one | "
        + " | ".join(MEASURES)
        + " | wall time (s) |",
        "|---|---:|---:|" + "---:|" * len(MEASURES) + "---:|",
    ]
    for name in painted:
        m = means[name]
        relative = f"{errors[name] / errors['alone']:.2f}" if "alone" in errors else "-"
        rows.append(
            f"| {PAINTERS[name]} | {errors[name]:.2f} | {relative} | "
            + " | ".join(f"{m[k]:.2f}" for k in MEASURES)
            + f" | {seconds[name]:.0f} |"
        )
    return (
        f"A {FLAGS.video_frames}-frame clip panning and zooming across {FLAGS.video_photo} "
        f"(scripts/make_clip.py) in the style of {FLAGS.video_style}, at {size} px with the "
        f"HED VGG16's trained features: `nst-tf --video` (the first frame with the defaults, "
        f"each next one in {FLAGS.video_frame_steps} steps from the one before), the same "
        "started from the feed-forward network's picture (`--video --init=fast`: the first "
        "frame, and each next one where the flow is not trusted), the feed-forward network "
        "alone on each frame (`--video --fast`), and each frame painted on its own with the "
        "defaults, as those of `--video_painters` that ran. The temporal "
        "error is `quality.temporal_error`: the mean absolute difference between each "
        "painted frame and the one before carried along the photo's optical flow, where the "
        f"flow is trusted ({100 * trusted:.0f}% of the pixels); the photo's own clip scores "
        f"{photo_error:.2f} (the flow's error and the resampling). The measures are "
        "`quality.measure`'s, averaged over the frames (block1 to block5: the style distance "
        "at each depth, 1 the photo, 0 the painting).\n\n" + "\n".join(rows)
    )


def speed() -> str:
    style = os.path.join(SAMPLES, FLAGS.video_style)
    rows = [
        "| size | first frame (s) | each next frame (s) | optical flow (s per frame) | "
        "flow's share |",
        "|---:|---:|---:|---:|---:|",
    ]
    for size in (int(s) for s in FLAGS.video_speed_sizes):
        frames = pan_and_zoom(
            os.path.join(SAMPLES, FLAGS.video_photo), FLAGS.video_speed_frames, size
        )
        config = _config(size=size, weights="random")
        painter = ClipPainter(style, config, FLAGS.video_frame_steps)
        times = []
        for frame in frames:
            start = time.perf_counter()
            painter.paint(frame)
            times.append(time.perf_counter() - start)
        photos = [prepare(config, frame, style).content[0] for frame in frames]
        start = time.perf_counter()
        for a, b in zip(photos, photos[1:]):
            flow.motion(a, b)
        flow_seconds = (time.perf_counter() - start) / (len(photos) - 1)
        following = float(np.median(times[2:]))  # the second frame traces the step
        rows.append(
            f"| {size} | {times[0]:.1f} | {following:.2f} | {flow_seconds:.3f} | "
            f"{100 * flow_seconds / following:.1f}% |"
        )
        print(f"video: {size} px timed", file=sys.stderr)
    return (
        f"Seconds per frame of `ClipPainter` (what `nst-tf --video` runs) on a "
        f"{FLAGS.video_speed_frames}-frame clip, random weights, the defaults; each next "
        f"frame is the median of the frames from the third on (the second also traces and "
        "compiles the frame's step). The flow is `flow.motion`: DIS flow forward and "
        "backward and the consistency mask.\n\n" + "\n".join(rows)
    )


def _side_by_side(video: list, alone: list, path: str) -> None:
    """An animated WebP: each frame of the video mode beside the same frame painted alone;
    and beside it (_strip.jpg) four consecutive frames of the two, one under the other."""
    gap = np.full((video[0].shape[0], 8, 3), 255, np.uint8)
    frames = [Image.fromarray(np.concatenate([v, gap, a], axis=1)) for v, a in zip(video, alone)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0,
                   quality=80, method=6)  # fmt: skip
    middle = len(frames) // 2 - 2
    strip = np.concatenate([np.asarray(f) for f in frames[middle : middle + 4]], axis=0)
    Image.fromarray(strip).save(os.path.splitext(path)[0] + "_strip.jpg", quality=85)
