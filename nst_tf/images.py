"""Image files in and out: decode anything Pillow reads into RGB float32 [0, 255], write atomically.

Every failure to read or write surfaces as ImageError with one sentence for the user.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
import warnings

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError

from nst_tf.config import MAX_INPUT_PIXELS

OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
MIN_SIDE = 16
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")  # read
# What Pillow raises for files it cannot decode (its plugins use SyntaxError for corrupt data).
UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError)


class ImageError(ValueError):
    """An image cannot be read or written; the message is one sentence fit to show a user."""


def load_image(
    path: str, size: int | None = None, max_input_pixels: int = MAX_INPUT_PIXELS
) -> np.ndarray:
    """Read an image file as RGB float32 [H, W, 3] in [0, 255], upright (EXIF applied).

    With `size`, it is resized (antialiased Lanczos) so that its longest side is `size` pixels.
    Grey, palette, CMYK, 16-bit and alpha images are converted; alpha is composited on white;
    an animation gives its first frame. Files of more than `max_input_pixels` pixels are
    refused from their header, before decoding (decompression bombs).
    """
    if not os.path.exists(path):
        raise ImageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ImageError(f"{path}: is a directory, not an image file")
    return _decode(path, path, size, max_input_pixels)


def decode_image(
    data: bytes, name: str, size: int | None = None, max_input_pixels: int = MAX_INPUT_PIXELS
) -> np.ndarray:
    """load_image of a file's contents, read from anywhere; `name` (its path) names it in
    errors."""
    return _decode(io.BytesIO(data), name, size, max_input_pixels)


def _decode(source, name: str, size: int | None, max_input_pixels: int) -> np.ndarray:
    try:
        with _opened(source) as img:
            _check_size(name, img.size, max_input_pixels)
            img.seek(0)  # first frame of an animation
            rgb = _to_rgb8(ImageOps.exif_transpose(img))
    except ImageError:
        raise
    except UNREADABLE as e:
        raise ImageError(f"{name}: not a readable image ({_reason(e)})") from None
    array = np.asarray(rgb, dtype=np.float32)
    if size is not None:
        array = resize_longest(array, size).numpy()
        _check_size(name, (array.shape[1], array.shape[0]), max_input_pixels, resized_to=size)
    return array


_PILLOW_LIMIT = threading.Lock()


@contextlib.contextmanager
def _opened(source):
    """Image.open(source), a path or a file, without Pillow's own size limit: `_check_size`
    is the limit here, and it names the size and the setting. Pillow reads its limit from a
    global, so it is lifted only while the header is read, under a lock; decoding comes
    later, outside it."""
    with _PILLOW_LIMIT:
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            img = Image.open(source)
        finally:
            Image.MAX_IMAGE_PIXELS = limit
    with warnings.catch_warnings(), img:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield img


def _check_size(path: str, wh: tuple[int, int], max_input_pixels: int, resized_to: int = 0) -> None:
    width, height = wh
    at = f" at size {resized_to}" if resized_to else ""
    if min(width, height) < MIN_SIDE:
        raise ImageError(
            f"{path}: image is {width}x{height} pixels{at}; each side must be at least {MIN_SIDE}"
        )
    if width * height > max_input_pixels:
        raise ImageError(
            f"{path}: image is {width}x{height} = {width * height} pixels{at}, "
            f"over the limit of {max_input_pixels} (max_input_pixels)"
        )


def resize(image: tf.Tensor | np.ndarray, height, width, method: str = "lanczos3") -> tf.Tensor:
    """Resize RGB float images [..., H, W, 3] in [0, 255] (antialiased), kept in range.

    Sizes may be Python ints or scalar tensors, so this also runs in graphs with dynamic shapes.
    An image already of that size is returned unchanged (Lanczos at scale 1 is not exact).
    """
    image = tf.convert_to_tensor(image, tf.float32)
    size = tf.cast(tf.stack([height, width]), tf.int32)

    def resized():
        scaled = tf.image.resize(image, size, method=method, antialias=True)
        return tf.clip_by_value(scaled, 0.0, 255.0)

    unchanged = tf.reduce_all(tf.equal(tf.shape(image)[-3:-1], size))
    return tf.cond(unchanged, lambda: image, resized)


def resize_longest(image: tf.Tensor | np.ndarray, size) -> tf.Tensor:
    """Resize RGB float images [..., H, W, 3] so the longest side is `size`, aspect kept."""
    # side * size / longest rounded half to even, in integers: no float64 in a served graph
    height_width = tf.cast(tf.shape(image)[-3:-1], tf.int64)
    longest, scaled = tf.reduce_max(height_width), height_width * tf.cast(size, tf.int64)
    quotient, twice_rest = scaled // longest, 2 * (scaled % longest)
    up = (twice_rest > longest) | ((twice_rest == longest) & (quotient % 2 == 1))
    new = tf.maximum(1, tf.cast(quotient + tf.cast(up, tf.int64), tf.int32))
    return resize(image, new[0], new[1])


def to_uint8(image: tf.Tensor | np.ndarray) -> tf.Tensor:
    """Clip a float image to [0, 255] and round it (half to even) to uint8."""
    return tf.cast(tf.round(tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 255.0)), tf.uint8)


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
    data = encode_image(image, os.path.splitext(path)[1])
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".nst_tf-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        os.unlink(tmp)
        if isinstance(e, OSError):
            raise ImageError(f"{path}: could not write ({_reason(e)})") from None
        raise


def encode_image(image: np.ndarray, extension: str) -> bytes:
    """An RGB image [H, W, 3] in [0, 255] as the bytes of a file with this extension (.png,
    .jpg, .jpeg or .webp), as save_image writes them."""
    fmt = OUTPUT_FORMATS[extension.lower()]
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image).numpy()).save(buffer, format=fmt, **_save_options(fmt))
    return buffer.getvalue()


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
    if isinstance(e, UnidentifiedImageError):  # its text names the file, or a buffer's id
        return "no image format Pillow reads"
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return text.rstrip(".")
