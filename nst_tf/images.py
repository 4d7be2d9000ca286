"""Image files in and out: decode anything Pillow reads into RGB float32 [0, 255], write atomically.

Every failure to read or write surfaces as ImageError with one sentence for the user.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError

OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
MIN_SIDE = 16
# What Pillow raises for files it cannot decode (its plugins use SyntaxError for corrupt data).
UNREADABLE = (
    UnidentifiedImageError,
    Image.DecompressionBombError,
    OSError,
    SyntaxError,
    ValueError,
)


class ImageError(ValueError):
    """An image cannot be read or written; the message is one sentence fit to show a user."""


def load_image(path: str, size: int | None = None) -> np.ndarray:
    """Read an image file as RGB float32 [H, W, 3] in [0, 255], upright (EXIF applied).

    With `size`, it is resized (antialiased Lanczos) so that its longest side is `size` pixels.
    Grey, palette, CMYK, 16-bit and alpha images are converted; alpha is composited on white.
    """
    if not os.path.exists(path):
        raise ImageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ImageError(f"{path}: is a directory, not an image file")
    try:
        with Image.open(path) as img:
            img.seek(0)  # first frame of an animation
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb8(img)
    except UNREADABLE as e:
        raise ImageError(f"{path}: not a readable image ({_reason(e)})") from None
    array = np.asarray(rgb, dtype=np.float32)
    if size is not None:
        array = resize_longest(array, size)
    if min(array.shape[:2]) < MIN_SIDE:
        raise ImageError(
            f"{path}: image is {array.shape[1]}x{array.shape[0]} pixels; "
            f"each side must be at least {MIN_SIDE}"
        )
    return array


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an RGB float image [H, W, 3] in [0, 255] (antialiased Lanczos), kept in range."""
    if image.shape[:2] == (height, width):
        return image
    resized = tf.image.resize(image, (height, width), method="lanczos3", antialias=True)
    return np.clip(resized.numpy(), 0.0, 255.0)


def resize_longest(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB float image so its longest side is `size` pixels, aspect ratio kept."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    return resize(image, max(1, round(height * scale)), max(1, round(width * scale)))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip a float image in [0, 255] to uint8."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def check_output_path(path: str) -> None:
    """Fail early, before any work, if `path` cannot be written as an image."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in OUTPUT_FORMATS:
        raise ImageError(
            f"{path}: unsupported output extension {ext or '(none)'!r}; "
            f"use one of {', '.join(sorted(OUTPUT_FORMATS))}"
        )
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ImageError(f"{path}: output directory {directory} does not exist")
    if os.path.isdir(path):
        raise ImageError(f"{path}: is a directory")
    if not os.access(directory, os.W_OK):
        raise ImageError(f"{path}: output directory {directory} is not writable")


def save_image(path: str, image: np.ndarray) -> None:
    """Write an RGB image [H, W, 3] in [0, 255] atomically: a temp file, then a rename.

    The format follows the extension (PNG, JPEG, WebP). An interrupted or failed write
    never leaves a partial file at `path`.
    """
    check_output_path(path)
    fmt = OUTPUT_FORMATS[os.path.splitext(path)[1].lower()]
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".nst_tf-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(to_uint8(image)).save(f, format=fmt, **_save_options(fmt))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        os.unlink(tmp)
        if isinstance(e, OSError):
            raise ImageError(f"{path}: could not write ({_reason(e)})") from None
        raise


def _save_options(fmt: str) -> dict:
    return {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}}.get(fmt, {})


def _to_rgb8(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; 16-bit and float greys are rescaled, not clipped."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        scale = 255.0 / 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 1.0
        img = Image.fromarray(np.clip(np.rint(a * scale), 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _reason(e: BaseException) -> str:
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return text.rstrip(".")
