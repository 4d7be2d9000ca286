"""Video: the temporal loss on real frames, the optical flow and its mask, the flicker
measure, clips in and out, and painting a clip frame by frame (the temporal loss against
NumPy is in test_losses.py, the command's runs in test_video_cli.py)."""

import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

pytest.importorskip("cv2", reason="the video extra is not installed")
imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="the video extra is not installed")

from nst_tf import flow, quality, video  # noqa: E402
from nst_tf.images import ImageError, load_image  # noqa: E402
from nst_tf.objective import content_roughness, temporal_term  # noqa: E402
from tests.conftest import CONTENT_PATH, STYLE_PATH  # noqa: E402


def shifted_clip(frames: int = 4, size: int = 64, step: int = 3) -> list[np.ndarray]:
    """Frames [size * 3/4, size, 3] uint8 of a camera panning right across the photo by
    `step` px a frame."""
    photo = load_image(CONTENT_PATH, size * 2).astype(np.uint8)
    height = size * 3 // 4
    return [photo[:height, i * step : i * step + size].copy() for i in range(frames)]


# --- the temporal loss ---------------------------------------------------------------


def test_temporal_term_is_zero_at_its_target_never_negative_and_free_of_scale():
    """On what a run gives it: a photo frame, the next one's warped painting, the flow's mask."""
    first, second = (f.astype(np.float32) for f in shifted_clip(2))
    move = flow.motion(first, second)
    target = move.warp(first)[None]
    mask = move.mask[None, ..., None]
    assert 0.5 < mask.mean() < 1.0  # a real mask: most pixels trusted, the new strip not

    def term(image, scale=1.0):
        targets = _targets(scale * target, mask, scale * second[None])
        return float(temporal_term(tf.constant(scale * image, tf.float32), targets)[0])

    assert term(target) == 0.0
    rng = np.random.default_rng(0)
    for image in (second[None], rng.uniform(0, 255, target.shape), target + 1e-3):
        assert term(image) >= 0.0
    image = second[None]  # the photo against its predecessor carried along the flow
    assert term(image, 0.5) == pytest.approx(term(image), rel=1e-5)
    assert 0 < term(image) < 0.01 < 1 < term(rng.uniform(0, 255, target.shape))


def _targets(target, mask, content):
    from nst_tf.objective import Targets

    return Targets(
        content=(), style=(), content_tv=content_roughness(content),
        temporal=tf.constant(target, tf.float32), temporal_mask=tf.constant(mask, tf.float32),
    )  # fmt: skip


# --- optical flow and its mask -------------------------------------------------------


def test_warp_moves_an_image_by_its_flow():
    image = load_image(CONTENT_PATH, 64)
    offset = np.zeros((*image.shape[:2], 2), np.float32)
    offset[..., 0] = 2.0  # each pixel takes the one two to its right
    np.testing.assert_allclose(flow.warp(image, offset)[:, :-2], image[:, 2:], atol=1e-3)
    np.testing.assert_allclose(
        flow.warp(image, offset)[:, -2:], image[:, -1:].repeat(2, axis=1), atol=1e-3
    )


def test_dis_flow_finds_the_cameras_pan_and_the_mask_drops_what_came_into_view():
    step = 3
    first, second = (f.astype(np.float32) for f in shifted_clip(2, size=96, step=step))
    move = flow.motion(first, second)
    inner = move.flow[8:-8, 8 : -8 - step]
    assert np.median(inner[..., 0]) == pytest.approx(step, abs=0.25)  # was 3 px to the right
    assert np.median(np.abs(inner[..., 1])) < 0.25
    assert move.mask[:, -step + 1 :].mean() < 0.5  # the strip that came into view
    assert move.mask[8:-8, 8 : -8 - step].mean() > 0.9
    carried = move.warp(first)
    trusted = move.mask > 0
    assert np.abs(carried - second)[trusted].mean() < 6  # grey levels, resampling included


def test_the_mask_drops_motion_boundaries_and_keeps_smooth_motion():
    """The top half slides right and the bottom half left: inside the frame nothing is
    uncovered, and the only untrusted pixels are the two rows where the motion changes and
    the 4 px at the sides that came into view."""
    height, width = 32, 48
    forward = np.zeros((height, width, 2), np.float32)
    forward[: height // 2, :, 0], forward[height // 2 :, :, 0] = 4.0, -4.0
    mask = flow.consistency(forward, -forward)  # each row's backward flow is its opposite
    assert mask[height // 2 - 1 : height // 2 + 1].max() == 0.0
    inside = mask[:, 4:-4]
    assert inside[: height // 2 - 1].min() == 1.0 and inside[height // 2 + 1 :].min() == 1.0
    assert mask[: height // 2, :4].max() == 0.0 and mask[height // 2 :, -4:].max() == 0.0
    slid = forward.copy()
    slid[:, width // 2 :, 0] += 6.0  # the right half also moves away: uncovers a strip
    assert flow.consistency(slid, np.zeros_like(slid))[4:-4, width // 2 :].max() == 0.0


# --- flicker ---------------------------------------------------------------------------


def test_temporal_error_is_zero_for_frames_that_follow_the_flow_and_large_for_noise():
    frames = [f.astype(np.float32) for f in shifted_clip(4)]
    motions = [flow.motion(a, b) for a, b in zip(frames, frames[1:])]
    following = [frames[0]]
    for move in motions:
        following.append(move.warp(following[-1]))
    assert quality.temporal_error(following, motions) < 1e-3
    rng = np.random.default_rng(0)
    noise = [rng.uniform(0, 255, frames[0].shape) for _ in frames]
    assert quality.temporal_error(noise, motions) > 50
    assert quality.temporal_error(frames, motions) < 8  # the photo's clip: flow and resampling


# --- clips in and out -------------------------------------------------------------------


def ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args], check=True)


def frame_files(tmp_path, frames) -> list[str]:
    folder = tmp_path / "frames"
    folder.mkdir(exist_ok=True)
    files = [video.frame_path(str(folder), i + 1) for i in range(len(frames))]
    for file, frame in zip(files, frames):
        Image.fromarray(frame).save(file)
    return files


@pytest.mark.parametrize(
    "ext,fps", [(".mp4", 12.0), (".webm", 25.0), (".mov", 30.0), (".gif", 10.0)]
)
def test_a_written_video_reads_back_with_its_frames_and_rate(tmp_path, ext, fps):
    frames = shifted_clip(5, size=64)
    path = str(tmp_path / f"clip{ext}")
    video.write_video(path, frame_files(tmp_path, frames), fps)
    clip = video.open_clip(path)
    assert (clip.frames, clip.fps, clip.width, clip.height) == (5, fps, 64, frames[0].shape[0])
    assert not clip.audio
    back = list(clip.read())
    assert len(back) == 5
    lossy = 12 if ext == ".gif" else 6  # a GIF has 256 colours, the others are compressed
    assert np.abs(back[3].astype(float) - frames[3]).mean() < lossy
    assert [f.shape for f in clip.read(3)] == [frames[0].shape] * 2
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".nst_tf-")]  # no temp file


@pytest.mark.parametrize("ext", [".mp4", ".webm"])  # AAC copied into mp4; re-encoded for webm
def test_the_audio_track_is_carried_over(tmp_path, ext):
    source = str(tmp_path / "with_audio.mp4")
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-f", "lavfi", "-i",
           "sine=frequency=440", "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-c:a", "aac", source)  # fmt: skip
    clip = video.open_clip(source)
    assert (clip.frames, clip.fps, clip.audio) == (10, 10.0, "aac")
    out = str(tmp_path / f"out{ext}")
    video.write_video(out, frame_files(tmp_path, list(clip.read())), clip.fps, clip)
    assert video.open_clip(out).audio


def test_a_folder_of_frames_is_read_in_name_order(tmp_path):
    frames = shifted_clip(3)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"shot_{9 - i}.png")  # names in reverse order
    clip = video.open_clip(str(tmp_path))
    assert (clip.frames, clip.fps) == (3, video.FOLDER_FRAME_RATE)
    np.testing.assert_array_equal(next(clip.read()), frames[2])


def test_outputs_are_a_video_file_or_a_folder_never_one_image(tmp_path):
    for name in ("painted.mp4", "painted.webm", "painted.gif", "frames", "frames.d"):
        video.check_output(str(tmp_path / name))  # an animated GIF is a video here
    for name in ("painted.png", "painted.jpg"):
        with pytest.raises(ImageError, match="not as one image"):
            video.check_output(str(tmp_path / name))


def test_clips_that_cannot_be_painted_are_refused_in_one_sentence(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    audio_only = str(tmp_path / "audio.mp4")
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440", "-t", "1", "-c:a", "aac", audio_only)
    empty = tmp_path / "empty"
    empty.mkdir()
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("RGB", (32, 24)).save(mixed / "a.png")
    Image.new("RGB", (24, 32)).save(mixed / "b.png")
    cases = {
        str(text): "not a video that ffmpeg can read",
        audio_only: "the file has no video frames",
        str(empty): "no frames",
        str(mixed): "the frames differ in size (a.png is 32x24, b.png 24x32)",
        str(tmp_path / "missing.mp4"): "no such file or folder",
    }
    for path, message in cases.items():
        with pytest.raises(ImageError, match=r"^[^\n]*$") as error:
            video.open_clip(path)
        assert message in str(error.value)


# --- painting a clip ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_clip_goes_on_from_saved_frames_as_if_it_had_never_stopped(config, extractor):
    """What --resume relies on: a painter continuing after frame 2 from its saved painting
    paints frames 3 and 4 as the painter that painted all four did, to the byte (frame 3
    with a new stage where the other restarted its own: test_transfer checks restart)."""
    from nst_tf.clip import ClipPainter

    frames = shifted_clip(4)
    settings = config.replace(steps=6)
    whole = ClipPainter(STYLE_PATH, settings, frame_steps=3, extractor=extractor)
    painted = [whole.paint(frame) for frame in frames]
    resumed = ClipPainter(STYLE_PATH, settings, frame_steps=3, extractor=extractor)
    resumed.continue_after(frames[1], painted[1])
    assert resumed.scales() == [(64, 3)]
    for frame, want in zip(frames[2:], painted[2:]):
        np.testing.assert_array_equal(resumed.paint(frame), want)
    assert painted[0].dtype == np.uint8 and painted[0].shape == (48, 64, 3)
