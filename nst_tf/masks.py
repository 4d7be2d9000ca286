"""Spatial control: where the style applies (a content mask) and which style goes where
(one mask per style image). White is 1, black is 0, greys blend.

A mask is a file path, or an array [H, W] (or [H, W, C], averaged) with values in [0, 1].
It is stretched to the content image's size, so it must have the content's aspect ratio.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from nst_tf.config import MAX_INPUT_PIXELS
from nst_tf.images import ImageError, load_image

Mask = str | np.ndarray
ASPECT_TOLERANCE = 0.05  # a mask's width/height may differ from the content's by this fraction


def load_mask(
    mask: Mask, height: int, width: int, max_input_pixels: int = MAX_INPUT_PIXELS
) -> np.ndarray:
    """A mask as float32 [height, width] in [0, 1]: files are read as grey, white = 1."""
    if isinstance(mask, str):
        name = mask
        array = load_image(mask, max_input_pixels=max_input_pixels).mean(axis=-1) / 255.0
    else:
        name, array = "mask array", np.asarray(mask, dtype=np.float32)
        if array.ndim == 3:
            array = array.mean(axis=-1)
        if array.ndim != 2 or min(array.shape) < 1:
            raise ImageError(f"{name}: a mask must be [H, W] or [H, W, C], got {array.shape}")
        if not (np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0):
            raise ImageError(f"{name}: mask values must lie in [0, 1]")
    rows, cols = array.shape
    if abs((cols / rows) / (width / height) - 1.0) > ASPECT_TOLERANCE:
        raise ImageError(
            f"{name}: the mask is {cols}x{rows} pixels but the content is {width}x{height}; "
            "a mask needs the content's aspect ratio"
        )
    return fit(array, height, width).numpy()


def fit(mask, height, width) -> tf.Tensor:
    """A mask [h, w] stretched (antialiased) to [height, width], kept in [0, 1]."""
    resized = tf.image.resize(tf.convert_to_tensor(mask, tf.float32)[..., None], (height, width),
                              antialias=True)  # fmt: skip
    return tf.clip_by_value(resized[..., 0], 0.0, 1.0)


def at_layer(masks: tf.Tensor, features: tf.Tensor) -> tf.Tensor:
    """Masks [R, H, W, 1] averaged down to the spatial size of activations [B, h, w, C]."""
    return tf.image.resize(masks, tf.shape(features)[1:3], method="area")
