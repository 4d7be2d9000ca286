"""Adam and L-BFGS updates against float64 NumPy references."""

import numpy as np
import tensorflow as tf

from nst_tf.optimize import LBFGS, Adam, project

rng = np.random.default_rng(0)


def test_adam_matches_numpy_reference():
    adam = Adam(learning_rate=2.0, beta_1=0.9, beta_2=0.99, epsilon=1e-3)
    x = rng.uniform(50, 200, (1, 4, 4, 3)).astype(np.float32)
    state = adam.init(tf.constant(x))
    m = v = np.zeros_like(x, np.float64)
    ref = x.astype(np.float64)
    image = tf.constant(x)
    for t in range(1, 6):
        g = rng.normal(size=x.shape).astype(np.float32)
        image, state = adam.update(image, tf.constant(g), state)
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g.astype(np.float64) ** 2
        step = 2.0 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.99**t)) + 1e-3)
        ref = np.clip(ref - step, 0, 255)
    np.testing.assert_allclose(image.numpy(), ref, rtol=1e-5, atol=1e-4)


def test_updates_keep_pixels_in_range():
    x = tf.constant([[[[0.0, 128.0, 255.0]]]])
    g = tf.constant([[[[1e6, -1e6, -1e6]]]])
    for optimizer in (Adam(100.0), LBFGS(1e6)):
        image, _ = optimizer.update(x, g, optimizer.init(x))
        assert np.all(image.numpy() >= 0) and np.all(image.numpy() <= 255)
    np.testing.assert_array_equal(project(tf.constant([-3.0, 9.0, 300.0])), [0.0, 9.0, 255.0])


def dense_lbfgs_direction(g, pairs):
    """H g with H built explicitly by the BFGS update over the pairs (oldest first)."""
    s_new, y_new = pairs[-1]
    h = np.eye(len(g)) * (s_new @ y_new) / (y_new @ y_new)
    for s, y in pairs:
        rho = 1.0 / (y @ s)
        left = np.eye(len(g)) - rho * np.outer(s, y)
        h = left @ h @ left.T + rho * np.outer(s, s)
    return h @ g


def test_two_loop_recursion_equals_dense_bfgs_inverse_hessian():
    n, history = 6, 4
    a = rng.normal(size=(n, n))
    hessian = a @ a.T + n * np.eye(n)
    pairs = []
    for _ in range(3):  # fewer pairs than slots: empty slots must not contribute
        s = rng.normal(size=n)
        pairs.append((s, hessian @ s))
    s_hist = np.zeros((history, n))
    y_hist = np.zeros((history, n))
    rho = np.zeros(history)
    for i, (s, y) in enumerate(pairs):
        slot = history - len(pairs) + i
        s_hist[slot], y_hist[slot], rho[slot] = s, y, 1.0 / (s @ y)
    g = rng.normal(size=n)
    lbfgs = LBFGS(history=history)
    as_image = lambda a: tf.reshape(tf.constant(a, tf.float32), [-1, 1, 1, n, 1])  # noqa: E731
    got = lbfgs._two_loop(
        as_image(g)[0],
        as_image(s_hist),
        as_image(y_hist),
        tf.reshape(tf.constant(rho, tf.float32), [-1, 1, 1, 1, 1]),
    )
    expected = dense_lbfgs_direction(g, pairs)
    np.testing.assert_allclose(got.numpy().ravel(), expected, rtol=1e-4, atol=1e-5)


def minimize(optimizer, grad_fn, x0, steps):
    x = tf.constant(x0)
    state = optimizer.init(x)
    for _ in range(steps):
        x, state = optimizer.update(x, grad_fn(x), state)
    return x.numpy()


def quadratic(batch: int = 1):
    """Gradient of an ill-conditioned quadratic (condition number 100) per image of a batch
    [batch, 1, 12, 1], its minima, and a start."""
    scales = tf.reshape(tf.constant(np.geomspace(0.01, 1.0, 12), tf.float32), [1, 1, 12, 1])
    target = tf.constant(rng.uniform(60, 190, (batch, 1, 12, 1)), tf.float32)
    x0 = np.full((batch, 1, 12, 1), 128.0, np.float32)
    return (lambda x: scales * (x - target)), target.numpy(), x0


def test_lbfgs_solves_an_ill_conditioned_quadratic():
    """Minimum inside the box: L-BFGS gets there, plain steps do not."""
    grad_fn, target, x0 = quadratic()
    x = minimize(LBFGS(history=5), grad_fn, x0, steps=40)
    np.testing.assert_allclose(x, target, atol=0.05)
    adam = minimize(Adam(1.0), grad_fn, x0, steps=40)
    assert np.abs(adam - target).max() > 1.0


def test_a_batch_takes_the_steps_its_images_take_alone():
    grad_fn, target, x0 = quadratic(batch=3)
    x0 = x0 + rng.normal(0, 10, x0.shape).astype(np.float32)
    for optimizer in (LBFGS(history=5), Adam(1.0)):
        together = minimize(optimizer, grad_fn, x0, steps=7)
        for i in range(3):
            alone = minimize(optimizer, lambda x, i=i: grad_fn(x)[i : i + 1], x0[i : i + 1], 7)
            np.testing.assert_allclose(together[i : i + 1], alone, rtol=1e-5)


def test_lbfgs_skips_pairs_without_positive_curvature():
    lbfgs = LBFGS(history=3)
    pixels = lambda *values: tf.reshape(tf.constant(values), [1, 1, -1, 1])  # noqa: E731
    x = pixels(10.0, 20.0)
    state = lbfgs.init(x)
    _, state = lbfgs.update(x, pixels(1.0, 1.0), state)
    # Moving along +x while the gradient drops: s . y < 0, so no pair is stored.
    _, state = lbfgs.update(pixels(11.0, 21.0), pixels(-1.0, -1.0), state)
    assert np.all(state.rho.numpy() == 0.0)


class _Compiled:
    """An optimizer whose update is compiled with XLA, as `--jit=auto` does on CPU."""

    def __init__(self, optimizer):
        self.init = optimizer.init
        self.update = tf.function(optimizer.update, jit_compile=True)


def test_xla_compiled_updates_equal_the_plain_ones():
    grad_fn, _, x0 = quadratic(batch=2)
    for optimizer in (LBFGS(history=3), Adam(1.0)):
        plain = minimize(optimizer, grad_fn, x0, steps=6)
        compiled = minimize(_Compiled(optimizer), grad_fn, x0, steps=6)
        np.testing.assert_allclose(compiled, plain, rtol=1e-5)
