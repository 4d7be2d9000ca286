"""Coarse to fine: the sizes and steps of each scale, and what each scale starts from.

The run optimises the image at sizes a factor sqrt(2) apart, each scale seeded with the
previous one's result upsampled. Written in TensorFlow so that the served graph computes
all of this from a request's size with the same ops and the same rounding as the command
does from `Config.size`; `nst_tf.transfer` and `nst_tf.export` both call these functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorflow as tf

from nst_tf.colors import (
    color_statistics,
    keep_luminance_only,
    match_colors,
    match_statistics,
    mixture_statistics,
)
from nst_tf.config import MULTISCALE_AUTO_ABOVE, RECOLORED_INIT, Config
from nst_tf.images import resize, resize_longest


def scales(config: Config) -> list[tuple[int, int]]:
    """(size, steps) of each scale of a run, coarse to fine: see sizes and steps."""
    sides = sizes(config)
    return list(zip(sides.numpy().tolist(), steps(config, len(sides)).numpy().tolist()))


def sizes(config: Config, size: int | tf.Tensor | None = None) -> tf.Tensor:
    """The longest side of each scale, coarse to fine, int32 [n].

    Sizes are a factor sqrt(2) apart, from about config.min_size up to `size` (default
    config.size). One scale unless config.multiscale is "on", or "auto" above
    MULTISCALE_AUTO_ABOVE pixels.
    """
    size = tf.cast(config.size if size is None else size, tf.int32)
    on = tf.logical_or(
        config.multiscale == "on",
        tf.logical_and(config.multiscale == "auto", size > MULTISCALE_AUTO_ABOVE),
    )

    def smaller(side):
        return tf.cast(tf.round(tf.cast(side, tf.float32) / math.sqrt(2.0)), tf.int32)

    (result,) = tf.while_loop(
        lambda sides: tf.logical_and(on, smaller(sides[0]) >= config.min_size),
        lambda sides: (tf.concat([smaller(sides[0])[None], sides], axis=0),),
        (size[None],),
        shape_invariants=(tf.TensorShape([None]),),
    )
    return result


def steps(config: Config, scales: int | tf.Tensor, coarsest: int | tf.Tensor | None = None):
    """The steps of each of `scales` scales, coarse to fine, int32 [scales].

    The coarsest scale (the only one of a one-scale run) takes `coarsest` (default
    config.steps): it makes the picture, the painting's forms and colours. Each finer scale
    takes REFINE_SHARE as many, at least one: it adds its own size's detail to a picture
    already made, which takes few steps. For the defaults, 160, 20 and 20 steps at 256, 362
    and 512 px.
    """
    coarsest = tf.cast(config.steps if coarsest is None else coarsest, tf.int32)
    refine = tf.cast(tf.round(tf.cast(coarsest, tf.float32) * REFINE_SHARE), tf.int32)
    refine = tf.maximum(refine, 1)
    finer = tf.fill([tf.maximum(tf.cast(scales, tf.int32) - 1, 0)], refine)
    return tf.concat([coarsest[None], finer], axis=0)


# The share of the coarsest scale's steps each finer scale takes.
REFINE_SHARE = 1 / 8


def style_size(config: Config, size: int | tf.Tensor) -> tf.Tensor:
    """Longest side of the style images at a scale whose content has longest side `size`."""
    scaled = tf.round(tf.cast(size, tf.float32) * config.style_scale)
    return tf.maximum(16, tf.cast(scaled, tf.int32))


def scale_inputs(
    config: Config, content: tf.Tensor, styles: Sequence[tf.Tensor], size
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """The content [B, H, W, 3] and styles [h, w, 3] of the finest scale, shrunk for a scale
    of longest side `size`; with preserve_colors "histogram" each style is recoloured to the
    content's colour statistics (one content image: batches are refused for it)."""
    content = resize_longest(content, size)
    styles = [resize_longest(style, style_size(config, size)) for style in styles]
    if config.preserve_colors == "histogram":
        styles = [match_colors(style, content[0]) for style in styles]
    return content, styles


def initial_image(
    config: Config,
    content: tf.Tensor,
    init: tf.Tensor | None = None,
    styles: Sequence[tf.Tensor] = (),
    blend: Sequence[float] | None = None,
    content_mask: tf.Tensor | None = None,
    style_masks: Sequence[tf.Tensor] = (),
) -> tf.Tensor:
    """The coarsest scale's starting image for content [B, H, W, 3]: `init` (an image or a
    batch, of any size) when given, else config.init (content, recolored, noise or gray),
    with a fraction config.init_noise of seeded uniform noise blended in. The noise is one
    image, the same for every image of a batch. "recolored" needs the styles [h, w, 3],
    their `blend` weights (by default config.style_blend's, else equal) and the masks the
    run has ([H, W] in [0, 1]): see `recolored`."""
    content = tf.convert_to_tensor(content, tf.float32)
    shape = tf.shape(content)
    noise = tf.random.stateless_uniform(shape[1:], [config.seed, 0], 0.0, 255.0)
    if init is not None:
        start = resize(init, shape[1], shape[2]) * tf.ones_like(content)
    elif config.init == RECOLORED_INIT:
        blend = blend or config.normalized_style_blend(len(styles))
        start = recolored(content, styles, blend, content_mask, style_masks)
    elif config.init == "noise":
        start = noise * tf.ones_like(content)
    elif config.init == "gray":
        start = tf.fill(shape, 127.5)
    else:
        start = content
    return (1.0 - config.init_noise) * start + config.init_noise * noise


def recolored(
    content: tf.Tensor,
    styles: Sequence[tf.Tensor],
    blend: Sequence[float],
    content_mask: tf.Tensor | None = None,
    style_masks: Sequence[tf.Tensor] = (),
) -> tf.Tensor:
    """Each image of content [B, H, W, 3] given by an affine map of its own colours the
    colour mean and covariance of the styles [h, w, 3] mixed with the `blend` weights
    (colors.match_statistics): the photo's light and shade in the painting's colours. With
    style masks [H, W], style i's colours where mask i is white; with a content mask [H, W],
    the photo's own colours where it is black, as the style does not go there."""

    def recolor(mean: tf.Tensor, covariance: tf.Tensor) -> tf.Tensor:
        return tf.map_fn(lambda image: match_statistics(image, mean, covariance), content)

    if style_masks:
        colours = [recolor(*color_statistics(style)) for style in styles]
        areas = list(style_masks)
    else:
        colours = [recolor(*mixture_statistics(styles, blend))]
        areas = [tf.ones(tf.shape(content)[1:3])]
    if content_mask is not None:
        areas = [area * content_mask for area in areas]
    start = content + sum(
        area[..., None] * (colour - content) for colour, area in zip(colours, areas)
    )
    return tf.clip_by_value(start, 0.0, 255.0)


def upsample(image: tf.Tensor, content: tf.Tensor) -> tf.Tensor:
    """A coarser scale's result [B, h, w, 3] resized (bicubic) to the content's size."""
    shape = tf.shape(content)
    return resize(image, shape[1], shape[2], method="bicubic")


def finish(config: Config, image: tf.Tensor, content: tf.Tensor) -> tf.Tensor:
    """The result from the optimised image: the content's colours put back with
    preserve_colors "luminance", else the image itself."""
    if config.preserve_colors == "luminance":
        return keep_luminance_only(image, content)
    return tf.convert_to_tensor(image)
