"""The three loss terms of Gatys et al. as pure functions of tensors.

All are means, not sums, and the Gram matrix is divided by H*W, so a loss value does not
depend on the image size: the same weights work at 256 px and at 4096 px.
"""

from __future__ import annotations

import tensorflow as tf


@tf.custom_gradient
def gram(features: tf.Tensor) -> tf.Tensor:
    """Channel correlations of activations [B, H, W, C] -> [B, C, C], divided by H*W.

    The gradient is written out, F (dG + dG^T) / HW: one matrix product where automatic
    differentiation of F^T F takes two. The Gram matrices are ~15% of a step's arithmetic.
    """
    shape = tf.shape(features)
    positions = tf.cast(shape[1] * shape[2], features.dtype)
    flat = tf.reshape(features, [shape[0], -1, shape[3]])
    gram_matrix = tf.matmul(flat, flat, transpose_a=True) / positions

    def gradient(upstream):
        symmetric = upstream + tf.linalg.matrix_transpose(upstream)
        return tf.reshape(tf.matmul(flat, symmetric) / positions, shape)

    return gram_matrix, gradient


def content_loss(features: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Mean squared difference between activations and the content image's activations."""
    return tf.reduce_mean(tf.math.squared_difference(features, target))


def style_loss(gram_matrix: tf.Tensor, target_gram: tf.Tensor) -> tf.Tensor:
    """Mean squared difference between a Gram matrix and the style image's Gram matrix."""
    return tf.reduce_mean(tf.math.squared_difference(gram_matrix, target_gram))


def total_variation(image: tf.Tensor) -> tf.Tensor:
    """Mean squared difference of vertically plus horizontally neighbouring pixels."""
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return tf.reduce_mean(tf.square(dy)) + tf.reduce_mean(tf.square(dx))
