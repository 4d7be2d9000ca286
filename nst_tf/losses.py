"""The three loss terms of Gatys et al. as pure functions of tensors.

Each term is a relative error, so that one set of loss weights means the same on every
network, at every layer and at every image size:
- content: the mean squared difference of activations over the mean square of the content's
  activations at that layer;
- style: the squared distance between Gram matrices over the squared norm of the style's
  Gram matrix at that layer;
- total variation: the image's mean squared neighbour difference over a reference's (the
  objective passes the content image's).
Scaling a layer's activations by a constant, as another network or layer does, leaves the
first two unchanged; a Gram matrix grows with the square of the activations and with the
channel count, so unnormalised its term grew with C^2 and the fourth power of the activation
scale. The Gram matrix is divided by H*W and the other terms are means over positions, so no
term depends on the image size either. For a batch [B, ...] the per-image terms are summed,
so each image gets the gradient it would get alone.
"""

from __future__ import annotations

import functools

import tensorflow as tf


def gram(features: tf.Tensor, products: str = "float32") -> tf.Tensor:
    """Channel correlations of activations [B, H, W, C] -> [B, C, C], divided by H*W; float32.

    The gradient is written out, F ((dG + dG^T) / HW): one matrix product where automatic
    differentiation of F^T F takes two, and the division on the small C x C matrix rather
    than a pass over the full-size result.

    `products` is the dtype the two matrix products run in. Under mixed_bfloat16 they run
    in bfloat16 ("bfloat16"): the activations are bfloat16 numbers already, so nothing is
    lost casting them, the kernels accumulate the sums in float32, and only the Gram matrix
    and the gradient are rounded to bfloat16's 8 significant bits, as the network's own
    backward pass is. In float32 the products were the most of what a bfloat16 step cost
    beyond its network (BENCHMARKS.md, overhead suite).
    """
    return _gram_in(tf.as_dtype(products))(features)


@functools.cache
def _gram_in(dtype: tf.DType):
    @tf.custom_gradient
    def gram(features: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(features)
        positions = tf.cast(shape[1] * shape[2], tf.float32)
        flat = tf.cast(tf.reshape(features, [shape[0], -1, shape[3]]), dtype)
        gram_matrix = tf.cast(tf.matmul(flat, flat, transpose_a=True), tf.float32) / positions

        def gradient(upstream):
            symmetric = (upstream + tf.linalg.matrix_transpose(upstream)) / positions
            product = tf.matmul(flat, tf.cast(symmetric, dtype))
            return tf.reshape(tf.cast(product, tf.float32), shape)

        return gram_matrix, gradient

    return gram


def masked_gram(features: tf.Tensor, masks: tf.Tensor, products: str = "float32") -> tf.Tensor:
    """Gram matrices of activations [1, H, W, C] weighted by masks [R, H, W, 1] in [0, 1]:
    [R, C, C], each divided by its mask's sum instead of H*W (zero for an empty mask).

    sum_p m_p f_p f_p^T / sum_p m_p: the channel correlations of the masked region alone,
    so a region's Gram matrix is comparable with a whole style image's.
    """
    shape = tf.shape(features)
    positions = tf.cast(shape[1] * shape[2], features.dtype)
    area = tf.reduce_sum(masks, axis=[1, 2, 3])
    weighted = gram(features * tf.sqrt(masks), products)
    return weighted * tf.math.divide_no_nan(positions, area)[:, None, None]


def per_image_mean(values: tf.Tensor) -> tf.Tensor:
    """The mean over each image of a batch [B, ...]: [B]."""
    return tf.reduce_mean(values, axis=list(range(1, values.shape.rank)))


# Floor of the normalisers: a flat image or all-zero activations divide by this, not by zero.
TINY = 1e-12


def content_loss(features: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Mean squared difference between activations [B, h, w, c] and the content image's,
    over the mean square of the content's, summed over the batch."""
    squared = per_image_mean(tf.math.squared_difference(features, target))
    return tf.reduce_sum(squared / content_scale(target))


def content_scale(target: tf.Tensor) -> tf.Tensor:
    """The content loss's unit for each image's activations [B, h, w, c]: their mean
    square, [B]."""
    return tf.maximum(per_image_mean(tf.square(target)), TINY)


def style_loss(gram_matrix: tf.Tensor, target_gram: tf.Tensor) -> tf.Tensor:
    """Squared distance between Gram matrices [B, C, C] and the style's [1, C, C], over the
    squared norm of the style's, summed over the batch."""
    return tf.reduce_sum(_relative_squared_distance(gram_matrix, target_gram))


def masked_style_loss(
    features: tf.Tensor, masks: tf.Tensor, target_grams: tf.Tensor, products: str = "float32"
) -> tf.Tensor:
    """Style loss of each masked region against its own target [R, C, C], weighted by the
    region's share of the image (one all-white mask gives exactly `style_loss`)."""
    grams = masked_gram(features, masks, products)
    per_region = _relative_squared_distance(grams, target_grams)
    return tf.reduce_sum(tf.reduce_mean(masks, axis=[1, 2, 3]) * per_region)


def _relative_squared_distance(grams: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """|G - T|^2 / |T|^2 for each matrix of [N, C, C] against [N or 1, C, C]: [N]."""
    norms = tf.maximum(tf.reduce_sum(tf.square(targets), axis=[1, 2]), TINY)
    return tf.reduce_sum(tf.math.squared_difference(grams, targets), axis=[1, 2]) / norms


def total_variation(
    image: tf.Tensor, mask: tf.Tensor | None = None, reference: tf.Tensor | float = 1.0
) -> tf.Tensor:
    """Each image's `roughness` over `reference` (per image [B], or one number), summed
    over the batch. The objective passes the content image's roughness as the reference."""
    return tf.reduce_sum(roughness(image, mask) / reference)


def roughness(image: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
    """Mean squared difference of vertically plus horizontally neighbouring pixels of each
    image of [B, H, W, C]: [B].

    With a mask [1, H, W, 1] in [0, 1], each difference is weighted by the mean of its two
    pixels' mask values, so smoothing applies only where the mask is white.

    The gradient is written out: each weighted difference, padded by one pixel on both ends
    of its axis, minus itself shifted by one, in place of the four StridedSliceGrad ops of
    TensorFlow's own gradient of the slices.
    """

    @tf.custom_gradient
    def tv(image):
        per_image, slopes = 0.0, []
        for axis in (1, 2):
            diff = _neighbour_difference(image, axis)
            weighted = diff if mask is None else diff * _neighbour_mean(mask, axis)
            per_image += per_image_mean(weighted * diff)
            pixels = tf.cast(tf.reduce_prod(tf.shape(diff)[1:]), diff.dtype)
            slopes.append((axis, weighted * (2.0 / pixels)))

        def gradient(upstream):
            spread = []
            for axis, slope in slopes:
                paddings = [[1, 1] if a == axis else [0, 0] for a in range(4)]
                spread.append(_neighbour_difference(tf.pad(slope, paddings), axis))
            return -tf.reshape(upstream, [-1, 1, 1, 1]) * tf.add_n(spread)

        return per_image, gradient

    return tv(tf.convert_to_tensor(image))


def _neighbour_difference(x: tf.Tensor, axis: int) -> tf.Tensor:
    """x[i + 1] - x[i] along `axis` (1: rows, 2: columns) of [B, H, W, C]."""
    return _shifted(x, axis, 1) - _shifted(x, axis, 0)


def _neighbour_mean(x: tf.Tensor, axis: int) -> tf.Tensor:
    """(x[i + 1] + x[i]) / 2 along `axis` (1: rows, 2: columns) of [B, H, W, C]."""
    return (_shifted(x, axis, 1) + _shifted(x, axis, 0)) / 2


def _shifted(x: tf.Tensor, axis: int, start: int) -> tf.Tensor:
    """All but the last (start 0) or all but the first (start 1) entries along `axis`."""
    window = slice(start, None if start else -1)
    return x[:, window] if axis == 1 else x[:, :, window]
