"""Clips in and out: video files through ffmpeg, and folders of numbered frames.

Video files are read and written by the ffmpeg that the imageio-ffmpeg wheel carries, so
nothing needs building or installing beside it. It reads what ffmpeg reads (mp4, mov, webm,
mkv, animated GIF and more), writes H.264 and VP9, and copies the audio track across.
OpenCV's VideoWriter, the other wheel-only choice, writes no H.264 and drops the audio.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator, Sequence

import imageio_ffmpeg
import numpy as np
from PIL import Image

from nst_tf.images import IMAGE_EXTENSIONS, ImageError, load_image

# Output containers and the video codec each gets (GIF is written by Pillow).
VIDEO_CODECS = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9",
                ".gif": None}  # fmt: skip
# The audio codecs each container takes as they are, and what others are re-encoded to.
AUDIO_KEPT = {".mp4": {"aac", "mp3", "opus", "alac", "ac3", "flac"},
              ".mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le"},
              ".webm": {"opus", "vorbis"}}  # fmt: skip
AUDIO_CODECS = {".mp4": "aac", ".mov": "aac", ".webm": "libopus"}
FOLDER_FRAME_RATE = 24.0  # a folder of frames has no frame rate of its own
FRAME_NAME = "frame_{:06d}.png"  # frames in a folder, from 1


@dataclasses.dataclass(frozen=True)
class Clip:
    """A video file or a folder of frames: its frame count, rate and size, and the codec of
    the audio track to carry over."""

    path: str
    frames: int
    fps: float
    width: int
    height: int
    audio: str | None = None  # the audio track's codec, None without one
    files: tuple[str, ...] = ()  # a folder's frame files, in order

    def read(self, start: int = 0) -> Iterator[np.ndarray]:
        """The frames from index `start` on, RGB uint8 [H, W, 3]."""
        if self.files:
            for path in self.files[start:]:
                yield load_image(path).astype(np.uint8)
            return
        frames = imageio_ffmpeg.read_frames(self.path)
        next(frames)  # the metadata
        try:
            for i, data in enumerate(frames):
                if i >= start:
                    yield np.frombuffer(data, np.uint8).reshape(self.height, self.width, 3)
        finally:
            frames.close()


def open_clip(path: str) -> Clip:
    """The Clip at `path`, a video file or a folder of image files (in name order, all of
    one size, at FOLDER_FRAME_RATE); ImageError, one sentence, if it holds no frames."""
    if os.path.isdir(path):
        return _folder(path)
    if not os.path.isfile(path):
        raise ImageError(f"{path}: no such file or folder")
    try:
        frames, _ = imageio_ffmpeg.count_frames_and_secs(path)
        reader = imageio_ffmpeg.read_frames(path)
        meta = next(reader)
        reader.close()
    except (OSError, RuntimeError, StopIteration) as e:
        if "Input #0" in str(e):  # ffmpeg read the container, and found no video in it
            raise ImageError(f"{path}: the file has no video frames") from None
        raise ImageError(f"{path}: not a video that ffmpeg can read") from None
    if not frames:
        raise ImageError(f"{path}: the file has no video frames")
    width, height = meta["size"]
    return Clip(path, frames, meta["fps"] or FOLDER_FRAME_RATE, width, height,
                audio=meta.get("audio_codec"))  # fmt: skip


def _folder(path: str) -> Clip:
    files = tuple(
        os.path.join(path, name)
        for name in sorted(os.listdir(path))
        if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise ImageError(f"{path}: no frames ({', '.join(IMAGE_EXTENSIONS)} files) in it")
    sizes = {}
    for file in files:
        try:
            with Image.open(file) as image:
                sizes.setdefault(image.size, file)
        except OSError:
            raise ImageError(f"{file}: not an image that can be read") from None
    if len(sizes) > 1:
        (a, first), (b, other) = list(sizes.items())[:2]
        raise ImageError(
            f"{path}: the frames differ in size ({os.path.basename(first)} is {a[0]}x{a[1]}, "
            f"{os.path.basename(other)} {b[0]}x{b[1]})"
        )
    (width, height), _ = sizes.popitem()
    return Clip(path, len(files), FOLDER_FRAME_RATE, width, height, files=files)


def frame_path(folder: str, number: int) -> str:
    """Where frame `number` (from 1) of a clip written as a folder goes."""
    return os.path.join(folder, FRAME_NAME.format(number))


def is_video_file(path: str) -> bool:
    """Whether an output path names a video file (else it is a folder of frames)."""
    return os.path.splitext(path)[1].lower() in VIDEO_CODECS


def check_output(path: str) -> None:
    """ImageError, one sentence, unless `path` can be written: a video file (VIDEO_CODECS)
    or a folder of frames, new or existing, in a writable place."""
    target = os.path.dirname(os.path.abspath(path)) if is_video_file(path) else path
    ext = os.path.splitext(path)[1].lower()
    if ext in IMAGE_EXTENSIONS and not is_video_file(path) and not os.path.isdir(path):
        raise ImageError(
            f"{path}: a clip is written as a video ({', '.join(VIDEO_CODECS)}) or into a "
            "folder of frames, not as one image"
        )
    if is_video_file(path) and os.path.isdir(path):
        raise ImageError(f"{path}: is a folder, not a video file")
    if not is_video_file(path) and os.path.isfile(path):
        raise ImageError(
            f"{path}: is a file; give a video ({', '.join(VIDEO_CODECS)}) or a folder for frames"
        )
    existing = target
    while not os.path.isdir(existing):
        existing = os.path.dirname(existing) or "."
    if not os.access(existing, os.W_OK):
        raise ImageError(f"{path}: {existing} is not writable")
    if is_video_file(path) and existing != target:
        raise ImageError(f"{path}: output folder {target} does not exist")


def write_video(path: str, files: Sequence[str], fps: float, audio: Clip | None = None):
    """The frames in `files` (image files of one size) as the video `path`, atomically, at
    `fps` frames a second, with the audio track of `audio` if it has one (copied as it is
    where the container takes its codec, else re-encoded); GIFs loop and have no audio.
    ImageError, one sentence, if ffmpeg fails."""
    ext = os.path.splitext(path)[1].lower()
    directory = os.path.dirname(os.path.abspath(path))
    fd, partial = tempfile.mkstemp(dir=directory, prefix=".nst_tf-", suffix=ext)
    os.close(fd)
    try:
        if ext == ".gif":
            _write_gif(partial, files, fps)
        else:
            _write_ffmpeg(partial, files, fps, ext, audio if audio and audio.audio else None)
            written, _ = imageio_ffmpeg.count_frames_and_secs(partial)
            if written != len(files):  # ffmpeg reports some failures only on its stderr
                raise RuntimeError(f"{written} of {len(files)} frames written")
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException as e:
        os.unlink(partial)
        if isinstance(e, OSError | RuntimeError):
            raise ImageError(f"{path}: could not write the video ({e})") from None
        raise


def _write_ffmpeg(path: str, files: Sequence[str], fps: float, ext: str, audio: Clip | None):
    frames = (load_image(file).astype(np.uint8) for file in files)
    first = next(frames)
    height, width = first.shape[:2]
    codec = VIDEO_CODECS[ext]
    quality = ["-crf", "18"] if codec == "libx264" else ["-crf", "30", "-b:v", "0"]
    audio_codec = None
    if audio is not None:
        kept = audio.audio in AUDIO_KEPT.get(ext, {audio.audio})
        audio_codec = "copy" if kept else AUDIO_CODECS[ext]
    writer = imageio_ffmpeg.write_frames(
        path, (width, height), fps=fps, codec=codec, quality=None, macro_block_size=2,
        output_params=quality, ffmpeg_log_level="error",
        audio_path=audio.path if audio else None, audio_codec=audio_codec,
    )  # fmt: skip
    writer.send(None)
    try:
        writer.send(first.tobytes())
        for frame in frames:
            writer.send(frame.tobytes())
    finally:
        writer.close()


def _write_gif(path: str, files: Sequence[str], fps: float) -> None:
    frames = [Image.open(file).convert("RGB") for file in files]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:],
                   duration=round(1000 / fps), loop=0)  # fmt: skip
