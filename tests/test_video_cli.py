"""nst-tf --video end to end: a clip in, a clip out with its frame count, rate and audio;
interrupt and resume; inputs it refuses."""

import os
import signal

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("cv2", reason="the video extra is not installed")
pytest.importorskip("imageio_ffmpeg", reason="the video extra is not installed")

from nst_tf import video  # noqa: E402
from tests.conftest import STYLE_PATH  # noqa: E402
from tests.test_cli import interrupted_run, nst_tf_here, unwritable_directory  # noqa: E402
from tests.test_video import ffmpeg, frame_files, shifted_clip  # noqa: E402

pytestmark = pytest.mark.slow  # whole commands

FAST = ["--weights=random", "--size=48", "--steps=4", "--frame_steps=2"]


@pytest.fixture(scope="module")
def clip_with_audio(tmp_path_factory) -> str:
    """A 24-frame mp4 at 12 fps with an AAC audio track."""
    tmp = tmp_path_factory.mktemp("clip")
    silent = str(tmp / "silent.mp4")
    video.write_video(silent, frame_files(tmp, shifted_clip(24, size=64, step=2)), 12.0)
    path = str(tmp / "clip.mp4")
    ffmpeg("-i", silent, "-f", "lavfi", "-i", "sine=frequency=440", "-shortest", "-c:v", "copy",
           "-c:a", "aac", path)  # fmt: skip
    return path


def test_a_clip_comes_out_with_its_frame_count_rate_and_audio(tmp_path, clip_with_audio):
    source = video.open_clip(clip_with_audio)
    assert (source.frames, source.fps, source.audio) == (24, 12.0, "aac")
    out = tmp_path / "painted.mp4"
    result = nst_tf_here(f"--video={clip_with_audio}", f"--style={STYLE_PATH}", *FAST,
                         f"--output={out}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    painted = video.open_clip(str(out))
    assert (painted.frames, painted.fps, painted.audio) == (24, 12.0, "aac")
    assert (painted.width, painted.height) == (48, 36)
    assert "frame 24/24" in result.stderr and "s/frame" in result.stderr and "ETA" in result.stderr
    assert "with its audio" in result.stderr
    assert not (tmp_path / "painted.mp4.frames").exists()  # the frames, once in the video


def test_interrupt_then_resume_gives_the_same_frames(tmp_path):
    frames = tmp_path / "in"
    frame_files(tmp_path, shifted_clip(8, size=64, step=2))
    os.rename(tmp_path / "frames", frames)
    common = [f"--video={frames}", f"--style={STYLE_PATH}", *FAST, "--frame_steps=5"]
    whole = tmp_path / "whole"
    assert nst_tf_here(*common, f"--output={whole}").returncode == 0

    out = tmp_path / "resumed"
    status, log = interrupted_run(
        [*common, f"--output={out}"], signal.SIGINT, after_line="frame 4/"
    )
    assert status == 130, log
    assert "add --resume to continue" in log and "Traceback" not in log
    done = sorted(n for n in os.listdir(out) if n.startswith("frame_"))
    assert 4 <= len(done) < 8  # stopped after a frame, with the frames so far on disk

    result = nst_tf_here(*common, f"--output={out}", "--resume")
    assert result.returncode == 0, result.stderr
    assert f"from frame {len(done) + 1}" in result.stderr
    for i in range(1, 9):
        name = os.path.basename(video.frame_path("", i))
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name


def test_resume_refuses_frames_of_other_settings(tmp_path):
    frames = tmp_path / "frames"
    frame_files(tmp_path, shifted_clip(3))
    out = tmp_path / "out"
    common = [f"--video={frames}", f"--style={STYLE_PATH}", *FAST, f"--output={out}"]
    assert nst_tf_here(*common).returncode == 0
    result = nst_tf_here(*common, "--resume", "--frame_steps=3", "--style_weight=2")
    assert result.returncode == 2
    assert "painted with other settings (--frame_steps, --style_weight)" in result.stderr


def _bad_inputs(tmp_path) -> list[tuple[str, list[str], str]]:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("RGB", (32, 24)).save(mixed / "a.png")
    Image.new("RGB", (24, 32)).save(mixed / "b.png")
    audio_only = str(tmp_path / "audio.mp4")
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440", "-t", "1", "-c:a", "aac", audio_only)
    good = tmp_path / "good"
    good.mkdir()
    for i, frame in enumerate(shifted_clip(2)):
        Image.fromarray(frame).save(good / f"{i}.png")
    out = str(tmp_path / "out.mp4")
    unwritable = unwritable_directory(tmp_path)
    return [
        ("not a video", [f"--video={text}", f"--output={out}"], "not a video that ffmpeg can read"),
        ("no video frames", [f"--video={audio_only}", f"--output={out}"], "has no video frames"),
        ("frames of two sizes", [f"--video={mixed}", f"--output={out}"], "frames differ in size"),
        ("missing clip", [f"--video={tmp_path / 'nope.mp4'}", f"--output={out}"], "no such file"),
        ("output folder missing", [f"--video={good}", f"--output={tmp_path / 'no' / 'o.mp4'}"],
         "does not exist"),
        ("an image as output", [f"--video={good}", f"--output={tmp_path / 'o.png'}"],
         "not as one image"),
        ("content and video", [f"--video={good}", f"--content={good}/0.png", f"--output={out}"],
         "give --content (photos) or --video (a clip), one of the two"),
        ("neither content nor video", [f"--output={out}"], "or --video (a clip), one of the two"),
        ("a still-only flag", [f"--video={good}", "--save_every=2", f"--output={out}"],
         "--save_every is for still images"),
        ("no frame steps", [f"--video={good}", "--frame_steps=0", f"--output={out}"],
         "--frame_steps must be at least 1"),
        ("fps of zero", [f"--video={good}", "--fps=0", f"--output={out}"], "must be positive"),
        ("nothing to resume", [f"--video={good}", "--resume", f"--output={out}"],
         "no frames of an earlier run to resume from"),
    ] + ([("unwritable output", [f"--video={good}", f"--output={unwritable}/painted.mp4"],
           "is not writable")] if unwritable else [])  # fmt: skip


def test_bad_inputs_give_one_sentence_exit_2_and_write_nothing(tmp_path):
    for name, args, message in _bad_inputs(tmp_path):
        before = set(os.listdir(tmp_path))
        result = nst_tf_here(f"--style={STYLE_PATH}", *FAST, *args)  # args last: they win
        assert result.returncode == 2, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (name, result.stderr)
        assert set(os.listdir(tmp_path)) == before, name  # no video, no frames folder


def test_a_painted_clip_follows_its_photo_clip(tmp_path):
    """Frames written into a folder are the painted frames, in order: each is closer to its
    own photo than to the photo of the frame before (the camera moves 4 px a frame)."""
    frames = shifted_clip(4, size=64, step=4)
    frame_files(tmp_path, frames)
    out = tmp_path / "painted"
    result = nst_tf_here(f"--video={tmp_path / 'frames'}", f"--style={STYLE_PATH}",
                         "--weights=random", "--size=64", "--steps=30", "--frame_steps=10",
                         "--style_weight=0.1", f"--output={out}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    painted = [np.asarray(Image.open(video.frame_path(str(out), i + 1)), float) for i in range(4)]
    for i in range(1, 4):
        own = np.abs(painted[i] - frames[i]).mean()
        assert own < np.abs(painted[i] - frames[i - 1]).mean(), i
