"""Colour preservation, after Gatys et al. 2017, "Controlling Perceptual Factors in NST".

Two ways to keep the photo's colours while taking the painting's strokes:
- `match_colors` (before optimising): give the style image the content's colour mean and
  covariance, so the style carries no colour of its own.
- `keep_luminance_only` (after optimising): keep the stylized luminance, put back the
  content's chrominance (YIQ).
The same transfer the other way round is a start (`init` "recolored"): the photo given the
painting's colour mean and covariance (`match_statistics`, `mixture_statistics`).
Both take RGB images [..., H, W, 3] in [0, 255], arrays or tensors, and compute in their
dtype (float32 for images, float64 for float64 arrays), in TensorFlow so that the served
graph runs them exactly as the command does.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# NTSC YIQ (FCC), the transform Gatys et al. 2017 use for luminance-only transfer.
RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)
LUMA = RGB_TO_YIQ[0]  # the luminance row (Rec. 601 luma)


def _float(image) -> tf.Tensor:
    image = tf.convert_to_tensor(image)
    return image if image.dtype.is_floating else tf.cast(image, tf.float32)


def _apply(matrix: np.ndarray, image: tf.Tensor) -> tf.Tensor:
    """matrix @ each pixel of image [..., 3]."""
    return tf.linalg.matvec(tf.constant(matrix, image.dtype), image)


def rgb_to_yiq(rgb) -> tf.Tensor:
    """RGB [..., 3] -> YIQ [..., 3] (Y in the units of the input)."""
    return _apply(RGB_TO_YIQ, _float(rgb))


def yiq_to_rgb(yiq) -> tf.Tensor:
    """YIQ [..., 3] -> RGB [..., 3]; the exact inverse of rgb_to_yiq."""
    return _apply(YIQ_TO_RGB, _float(yiq))


def keep_luminance_only(stylized, content) -> tf.Tensor:
    """The stylized image's luminance Y with the content's chrominance I and Q.

    Where that pair falls outside the RGB cube, Y (not the chrominance) is clamped to the
    range that keeps every channel in [0, 255]: the colours stay exactly the content's.
    """
    stylized, content = _float(stylized), _float(content)
    iq = rgb_to_yiq(content) * tf.constant([0.0, 1.0, 1.0], content.dtype)
    chroma = yiq_to_rgb(iq)  # RGB = Y * YIQ_TO_RGB[:, 0] + chroma, and that column is > 0
    per_y = tf.constant(YIQ_TO_RGB[:, 0], content.dtype)
    low = tf.reduce_max(-chroma / per_y, axis=-1)
    high = tf.reduce_min((255.0 - chroma) / per_y, axis=-1)
    luminance = tf.clip_by_value(rgb_to_yiq(stylized)[..., 0], low, high)
    return tf.clip_by_value(luminance[..., None] * per_y + chroma, 0.0, 255.0)


def color_statistics(image) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean [3] and covariance [3, 3] of an image's RGB values."""
    pixels = tf.reshape(_float(image), [-1, 3])
    mean = tf.reduce_mean(pixels, axis=0)
    centred = pixels - mean
    count = tf.cast(tf.shape(pixels)[0], pixels.dtype)
    return mean, tf.matmul(centred, centred, transpose_a=True) / count


def match_colors(source, reference) -> tf.Tensor:
    """`source` recoloured by an affine map so its colour mean and covariance are `reference`'s.

    x -> A (x - mu_s) + mu_r with A = C_r^(1/2) C_s^(-1/2) (symmetric square roots), the
    linear colour transfer of Gatys et al. 2017, section 5.1. Values are clipped to [0, 255].
    """
    source = _float(source)
    return match_statistics(source, *color_statistics(tf.cast(reference, source.dtype)))


def match_statistics(source, mean: tf.Tensor, covariance: tf.Tensor) -> tf.Tensor:
    """`source` recoloured as by match_colors to the colour `mean` [3] and `covariance`
    [3, 3], clipped to [0, 255]."""
    source = _float(source)
    mu_s, cov_s = color_statistics(source)
    transform = _sqrtm(tf.cast(covariance, source.dtype)) @ _inverse_sqrtm(cov_s)
    matched = tf.linalg.matvec(transform, source - mu_s) + tf.cast(mean, source.dtype)
    return tf.clip_by_value(matched, 0.0, 255.0)


def mixture_statistics(images, weights) -> tuple[tf.Tensor, tf.Tensor]:
    """Colour mean [3] and covariance [3, 3] of the mixture that draws a pixel from image i
    with probability weights[i] (weights summing to 1): several paintings' colours blended
    as their style is."""
    stats = [color_statistics(image) for image in images]
    mean = sum(w * m for w, (m, _) in zip(weights, stats))
    second = sum(w * (c + m[:, None] * m[None, :]) for w, (m, c) in zip(weights, stats))
    return mean, second - mean[:, None] * mean[None, :]


def _sqrtm(matrix: tf.Tensor) -> tf.Tensor:
    """Square root of a symmetric positive semi-definite matrix."""
    values, vectors = tf.linalg.eigh(matrix)
    return (vectors * tf.sqrt(tf.maximum(values, 0.0))) @ tf.transpose(vectors)


def _inverse_sqrtm(matrix: tf.Tensor) -> tf.Tensor:
    """Inverse square root of a symmetric positive semi-definite matrix, each eigenvalue
    raised to at least EIGEN_FLOOR times the largest (plus 1e-6): a grey image's colour
    covariance has two zero eigenvalues, which float32 rounds to about +-1e-3, and the
    directions they belong to, where the image does not vary, must not be scaled up."""
    values, vectors = tf.linalg.eigh(matrix)
    floor = EIGEN_FLOOR * tf.reduce_max(values) + 1e-6
    return (vectors * tf.math.rsqrt(tf.maximum(values, floor))) @ tf.transpose(vectors)


EIGEN_FLOOR = 1e-5  # above float32's rounding of a covariance's zero eigenvalues
