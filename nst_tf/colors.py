"""Colour preservation, after Gatys et al. 2017, "Controlling Perceptual Factors in NST".

Two ways to keep the photo's colours while taking the painting's strokes:
- `match_colors` (before optimising): give the style image the content's colour mean and
  covariance, so the style carries no colour of its own.
- `keep_luminance_only` (after optimising): keep the stylized luminance, put back the
  content's chrominance (YIQ).
Both work on RGB float arrays [H, W, 3] in [0, 255], in float64 internally.
"""

from __future__ import annotations

import numpy as np

# NTSC YIQ (FCC), the transform Gatys et al. 2017 use for luminance-only transfer.
RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


def rgb_to_yiq(rgb: np.ndarray) -> np.ndarray:
    """RGB [..., 3] -> YIQ [..., 3] (Y in the units of the input)."""
    return np.asarray(rgb, np.float64) @ RGB_TO_YIQ.T


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    """YIQ [..., 3] -> RGB [..., 3]; the exact inverse of rgb_to_yiq."""
    return np.asarray(yiq, np.float64) @ YIQ_TO_RGB.T


def keep_luminance_only(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The stylized image's luminance Y with the content's chrominance I and Q.

    Where that pair falls outside the RGB cube, Y (not the chrominance) is clamped to the
    range that keeps every channel in [0, 255]: the colours stay exactly the content's.
    """
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = 0.0
    chroma = yiq_to_rgb(yiq)  # RGB = Y * YIQ_TO_RGB[:, 0] + chroma, and that column is > 0
    per_y = YIQ_TO_RGB[:, 0]
    low = np.max(-chroma / per_y, axis=-1)
    high = np.min((255.0 - chroma) / per_y, axis=-1)
    luminance = np.clip(rgb_to_yiq(stylized)[..., 0], low, high)
    return np.clip(luminance[..., None] * per_y + chroma, 0.0, 255.0).astype(np.float32)


def color_statistics(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [3] and covariance [3, 3] of an image's RGB values."""
    pixels = np.asarray(image, np.float64).reshape(-1, 3)
    return pixels.mean(0), np.cov(pixels, rowvar=False, bias=True)


def match_colors(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`source` recoloured by an affine map so its colour mean and covariance are `reference`'s.

    x -> A (x - mu_s) + mu_r with A = C_r^(1/2) C_s^(-1/2) (symmetric square roots), the
    linear colour transfer of Gatys et al. 2017, section 5.1. Values are clipped to [0, 255].
    """
    mu_s, cov_s = color_statistics(source)
    mu_r, cov_r = color_statistics(reference)
    transform = _sqrtm(cov_r) @ np.linalg.inv(_sqrtm(cov_s + 1e-6 * np.eye(3)))
    matched = (np.asarray(source, np.float64) - mu_s) @ transform.T + mu_r
    return np.clip(matched, 0.0, 255.0).astype(np.float32)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T
