"""The loss terms against float64 NumPy references."""

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import losses

rng = np.random.default_rng(0)


def np_gram(f):
    b, h, w, c = f.shape
    flat = f.reshape(b, h * w, c).astype(np.float64)
    return np.einsum("bnc,bnd->bcd", flat, flat) / (h * w)


def test_gram_matches_numpy():
    f = rng.normal(size=(2, 7, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(losses.gram(tf.constant(f)).numpy(), np_gram(f), rtol=1e-5)


def test_gram_is_size_independent():
    """A tiled copy of the same features has the same Gram matrix."""
    f = rng.normal(size=(1, 4, 4, 3)).astype(np.float32)
    tiled = np.tile(f, (1, 3, 2, 1))
    np.testing.assert_allclose(
        losses.gram(tf.constant(tiled)).numpy(), losses.gram(tf.constant(f)).numpy(), rtol=1e-5
    )


def test_gram_gradient_matches_automatic_differentiation():
    """The hand-written gradient equals TensorFlow's differentiation of F^T F / HW."""
    f = tf.constant(rng.normal(size=(2, 5, 3, 4)).astype(np.float32))
    upstream = tf.constant(rng.normal(size=(2, 4, 4)).astype(np.float32))  # not symmetric
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(f)
        ours = tf.reduce_sum(losses.gram(f) * upstream)
        reference = tf.reduce_sum(tf.einsum("bhwc,bhwd->bcd", f, f) / 15.0 * upstream)
    np.testing.assert_allclose(
        tape.gradient(ours, f).numpy(), tape.gradient(reference, f).numpy(), rtol=1e-5, atol=1e-6
    )


def test_content_loss_matches_numpy():
    a, b = (rng.normal(size=(1, 6, 5, 8)).astype(np.float32) for _ in range(2))
    expected = np.mean((a.astype(np.float64) - b) ** 2)
    assert losses.content_loss(tf.constant(a), tf.constant(b)).numpy() == pytest.approx(expected)


def test_style_loss_matches_numpy():
    fa, fb = (rng.normal(size=(1, 9, 7, 5)).astype(np.float32) for _ in range(2))
    ga, gb = np_gram(fa), np_gram(fb)
    got = losses.style_loss(losses.gram(tf.constant(fa)), losses.gram(tf.constant(fb)))
    assert got.numpy() == pytest.approx(np.mean((ga - gb) ** 2), rel=1e-5)


def test_total_variation_matches_numpy():
    x = rng.uniform(0, 255, size=(1, 6, 9, 3))
    dy = x[:, 1:] - x[:, :-1]
    dx = x[:, :, 1:] - x[:, :, :-1]
    expected = np.mean(dy**2) + np.mean(dx**2)
    got = losses.total_variation(tf.constant(x, tf.float32)).numpy()
    assert got == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("masked", [False, True])
def test_total_variation_gradient_matches_automatic_differentiation(masked):
    """The hand-written gradient equals TensorFlow's differentiation of the sliced squares,
    in float64, for a batch of two, with and without a mask."""
    x = tf.constant(rng.uniform(0, 255, size=(2, 6, 9, 3)))
    mask = tf.constant(rng.uniform(size=(1, 6, 9, 1))) if masked else tf.ones([1, 6, 9, 1], x.dtype)

    def reference(image):
        dy = (image[:, 1:] - image[:, :-1]) ** 2 * (mask[:, 1:] + mask[:, :-1]) / 2
        dx = (image[:, :, 1:] - image[:, :, :-1]) ** 2 * (mask[:, :, 1:] + mask[:, :, :-1]) / 2
        return tf.reduce_sum(tf.reduce_mean(dy, [1, 2, 3]) + tf.reduce_mean(dx, [1, 2, 3]))

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = 3.0 * losses.total_variation(x, mask if masked else None)
        expected = 3.0 * reference(x)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        tape.gradient(ours, x).numpy(), tape.gradient(expected, x).numpy(), rtol=1e-12, atol=1e-12
    )


def test_total_variation_of_flat_image_is_zero():
    assert losses.total_variation(tf.fill([1, 8, 8, 3], 77.0)).numpy() == 0.0
