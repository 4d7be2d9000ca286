"""The loss terms against float64 NumPy references."""

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import losses
from nst_tf.features import fast_bfloat16
from nst_tf.objective import LossWeights, Objective, units

rng = np.random.default_rng(0)


def np_gram(f):
    b, h, w, c = f.shape
    flat = f.reshape(b, h * w, c).astype(np.float64)
    return np.einsum("bnc,bnd->bcd", flat, flat) / (h * w)


def test_gram_matches_numpy():
    f = rng.normal(size=(2, 7, 5, 6)).astype(np.float32)
    expected = np_gram(f)  # float32 sums: an entry near 0 is exact to the largest's rounding
    atol = 1e-6 * np.abs(expected).max()
    np.testing.assert_allclose(losses.gram(tf.constant(f)).numpy(), expected, rtol=1e-5, atol=atol)


def test_gram_products_in_bfloat16_round_only_the_result():
    """bfloat16 activations (what a mixed_bfloat16 network returns, in float32): their Gram
    matrix and its gradient from bfloat16 products are the float64 ones to within
    bfloat16's rounding of the result (2^-8 relative), returned as float32. On a CPU
    without bfloat16 arithmetic (where precision auto never chooses it) TensorFlow emulates
    the products and rounds the sums it builds them from too: within 2^-6 there, still far
    from what summing 1200 products in bfloat16 would lose."""
    f = tf.cast(tf.cast(rng.normal(size=(1, 40, 30, 16)), tf.bfloat16), tf.float32)
    upstream = tf.constant(rng.normal(size=(1, 16, 16)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(f)
        g = losses.gram(f, "bfloat16")
        total = tf.reduce_sum(g * upstream)
    grad = tape.gradient(total, f)
    exact = np_gram(f.numpy())
    assert g.dtype == grad.dtype == tf.float32
    rounding = 2**-8 if fast_bfloat16() else 2**-6
    np.testing.assert_allclose(g.numpy(), exact, atol=rounding * np.abs(exact).max())
    flat = f.numpy().reshape(-1, 16).astype(np.float64)
    up = upstream.numpy()[0].astype(np.float64)
    exact_grad = (flat @ (up + up.T) / (40 * 30)).reshape(f.shape)
    np.testing.assert_allclose(
        grad.numpy(), exact_grad, atol=2 * rounding * np.abs(exact_grad).max()
    )


@pytest.mark.parametrize("products", ["float32", "bfloat16"])
def test_moments_and_their_gradient_match_numpy(products):
    """The mean and the Gram matrix from one set of products, and the written-out gradient
    of both together, against float64 NumPy: within float32's rounding, and with bfloat16
    products (bfloat16 activations, as test_gram_products_in_bfloat16_round_only_the_result)
    the mean and the Gram matrix within bfloat16's rounding of the results, the gradient
    within two (the upstream matrix is rounded to bfloat16 for its product, then the
    product is; the mean's part is added in float32). ReLU-like activations, whose mean is
    large beside their spread, as a real network's are. Forty draws in bfloat16: the worst
    gradient is 1.3 roundings off with an AMX CPU's bfloat16 kernels, so the bound holds
    with room on every draw, not by the luck of one."""
    for seed in range(40 if products == "bfloat16" else 4):
        draw = np.random.default_rng(seed)
        f = np.maximum(draw.normal(size=(2, 40, 30, 16)), 0.0).astype(np.float32)
        if products == "bfloat16":
            f = tf.cast(tf.cast(f, tf.bfloat16), tf.float32).numpy()
        d_mean = tf.constant(draw.normal(size=(2, 16)), tf.float32)
        d_gram = tf.constant(draw.normal(size=(2, 16, 16)), tf.float32)
        f_t = tf.constant(f)
        with tf.GradientTape() as tape:
            tape.watch(f_t)
            mean, second = losses.moments(f_t, products=products)
            total = tf.reduce_sum(mean * d_mean) + tf.reduce_sum(second * d_gram)
        grad = tape.gradient(total, f_t)
        flat = f.reshape(2, -1, 16).astype(np.float64)
        up = d_gram.numpy().astype(np.float64)
        exact_grad = (
            np.einsum("bnc,bcd->bnd", flat, up + up.transpose(0, 2, 1))
            + d_mean.numpy()[:, None, :].astype(np.float64)
        ) / (40 * 30)
        rounding = 1e-5 if products == "float32" else 2**-8 if fast_bfloat16() else 2**-6
        assert mean.dtype == second.dtype == grad.dtype == tf.float32
        checks = (
            (mean, flat.mean(axis=1), rounding),
            (second, np_gram(f), rounding),
            (grad, exact_grad.reshape(f.shape), 2 * rounding),
        )
        for got, exact, bound in checks:
            np.testing.assert_allclose(got.numpy(), exact, atol=bound * np.abs(exact).max())


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
    """Per image, the mean squared difference over the mean square of the target."""
    a, b = (rng.normal(size=(2, 6, 5, 8)).astype(np.float32) for _ in range(2))
    b64 = b.astype(np.float64)
    expected = sum(np.mean((a[i] - b64[i]) ** 2) / np.mean(b64[i] ** 2) for i in range(2))
    got = losses.content_loss(tf.constant(a), tf.constant(b)).numpy()
    assert got == pytest.approx(expected, rel=1e-5)


def test_style_loss_matches_numpy():
    """Per image, the squared distance of the Gram matrices over the target's squared norm."""
    fa = rng.normal(size=(2, 9, 7, 5)).astype(np.float32)
    fb = rng.normal(size=(1, 9, 7, 5)).astype(np.float32)
    ga, gb = np_gram(fa), np_gram(fb)
    expected = sum(np.sum((ga[i] - gb[0]) ** 2) / np.sum(gb[0] ** 2) for i in range(2))
    got = losses.style_loss(losses.gram(tf.constant(fa)), losses.gram(tf.constant(fb)))
    assert got.numpy() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("factor", [1e-3, 0.5, 40.0])
def test_scaling_a_layer_leaves_content_and_style_losses_unchanged(factor):
    """A network or layer whose activations are `factor` times larger gives the same loss
    values, so one set of weights means the same on every network and layer."""
    f, target, style = (rng.uniform(0, 3, size=(1, 8, 6, 16)).astype(np.float32) for _ in range(3))

    def both(scale):
        x, t, s = (tf.constant(a * scale) for a in (f, target, style))
        return (
            losses.content_loss(x, t).numpy(),
            losses.style_loss(losses.gram(x), losses.gram(s)).numpy(),
            losses.masked_style_loss(x, tf.ones([1, 8, 6, 1]), losses.gram(s)).numpy(),
        )

    np.testing.assert_allclose(both(factor), both(1.0), rtol=1e-4)


def test_total_variation_matches_numpy():
    x = rng.uniform(0, 255, size=(2, 6, 9, 3))
    dy = x[:, 1:] - x[:, :-1]
    dx = x[:, :, 1:] - x[:, :, :-1]
    per_image = np.mean(dy**2, axis=(1, 2, 3)) + np.mean(dx**2, axis=(1, 2, 3))
    np.testing.assert_allclose(
        losses.roughness(tf.constant(x, tf.float32)).numpy(), per_image, rtol=1e-5
    )
    reference = np.array([30.0, 700.0])
    got = losses.total_variation(tf.constant(x, tf.float32), None, reference.astype(np.float32))
    assert got.numpy() == pytest.approx(np.sum(per_image / reference), rel=1e-5)


@pytest.mark.parametrize("masked", [False, True])
def test_total_variation_gradient_matches_automatic_differentiation(masked):
    """The hand-written gradient equals TensorFlow's differentiation of the sliced squares,
    in float64, for a batch of two, with and without a mask, each image with its own
    reference."""
    x = tf.constant(rng.uniform(0, 255, size=(2, 6, 9, 3)))
    mask = tf.constant(rng.uniform(size=(1, 6, 9, 1))) if masked else tf.ones([1, 6, 9, 1], x.dtype)
    scale = tf.constant([40.0, 900.0], tf.float64)

    def reference(image):
        dy = (image[:, 1:] - image[:, :-1]) ** 2 * (mask[:, 1:] + mask[:, :-1]) / 2
        dx = (image[:, :, 1:] - image[:, :, :-1]) ** 2 * (mask[:, :, 1:] + mask[:, :, :-1]) / 2
        per_image = tf.reduce_mean(dy, [1, 2, 3]) + tf.reduce_mean(dx, [1, 2, 3])
        return tf.reduce_sum(per_image / scale)

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = 3.0 * losses.total_variation(x, mask if masked else None, scale)
        expected = 3.0 * reference(x)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        tape.gradient(ours, x).numpy(), tape.gradient(expected, x).numpy(), rtol=1e-12, atol=1e-12
    )


def test_total_variation_of_flat_image_is_zero():
    assert losses.total_variation(tf.fill([1, 8, 8, 3], 77.0)).numpy() == 0.0


def test_weights_times_units_give_the_loss_of_absolute_units(config, extractor, content, style):
    """Weights written for absolute terms, translated by objective.units, give exactly those
    terms: here jcjohnson/neural-style's, 5 * the mean squared content difference and, per
    style layer, 100 * the mean squared difference of Gram matrices taken over C*H*W."""
    config = config.replace(style_loss="gram")  # its loss: Gram matrices
    objective = Objective(config, extractor)
    targets = objective.targets(content[None], [style[None]])
    unit = units(targets)
    per_layer = [100.0 * norm / c**4 for norm, c in zip(unit.style, unit.channels)]
    translated = config.replace(
        content_weight=5.0 * unit.content[0],
        style_weight=sum(per_layer),
        style_layer_weights=tuple(per_layer),
    )
    image = np.clip(content + rng.normal(0, 30, content.shape), 0, 255)[None].astype(np.float32)
    terms = Objective(translated, extractor).terms(tf.constant(image), targets)
    ours = {name: np.asarray(f, np.float64) for name, f in extractor(image).items()}
    theirs = {name: np.asarray(f, np.float64) for name, f in extractor(style[None]).items()}
    photo = np.asarray(targets.content[0], np.float64)
    content_loss = 5.0 * np.mean((ours[config.content_layers[0]] - photo) ** 2)
    style_loss = sum(
        100.0 * np.mean(((np_gram(ours[n]) - np_gram(theirs[n])) / ours[n].shape[-1]) ** 2)
        for n in config.style_layers
    )
    assert float(terms["content"]) == pytest.approx(content_loss, rel=1e-4)
    assert float(terms["style"]) == pytest.approx(style_loss, rel=1e-4)


# -- the Gaussian Wasserstein-2 style loss ------------------------------------------------


def np_sqrtm(m):
    values, vectors = np.linalg.eigh((m + m.T) / 2)
    return (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T


def np_gaussian_w2(f, s):
    """The loss of activations f [1, H, W, C] against a style's s [1, h, w, C], float64."""
    a, b = (x.reshape(-1, x.shape[-1]).astype(np.float64) for x in (f, s))
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a.T, bias=True), np.cov(b.T, bias=True)
    epsilon = losses.COVARIANCE_REGULARIZATION * np.trace(cov_b) / len(cov_b)
    cov_a, cov_b = cov_a + epsilon * np.eye(len(cov_a)), cov_b + epsilon * np.eye(len(cov_b))
    root_b = np_sqrtm(cov_b)
    cross = np.trace(np_sqrtm(root_b @ cov_a @ root_b))
    distance = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b) - 2 * cross
    return distance / np.mean(np.sum(b**2, axis=1))


def tf_gaussian_w2(f, s, products="float32"):
    mean, second = losses.moments(f, products=products)
    target_mean, target_second = losses.moments(s)
    root = losses.covariance_root(target_mean, target_second)
    return losses.gaussian_w2(mean, second, target_mean, target_second, root)


def relu_features(shape, scale=1.0, shift=0.0):
    """Non-negative activations with a non-zero mean, as a ReLU layer gives."""
    return np.maximum(rng.normal(shift, scale, size=shape), 0.0).astype(np.float32)


def ill_conditioned(channels, spread, seed):
    """A covariance [channels, channels] with eigenvalues spread log-evenly over `spread`
    (1e4 is what trained VGG features at blocks 3 to 5 give, regularised), float64."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(channels, channels)))
    return (q * np.logspace(0, -np.log10(spread), channels)) @ q.T


def np_covariance_distance(s, t):
    root = np_sqrtm(t)
    return np.trace(s) + np.trace(t) - 2 * np.trace(np_sqrtm(root @ s @ root))


@pytest.mark.parametrize("spread", [1e2, 1e4, 1e5])
def test_covariance_distance_matches_float64_eigendecompositions(spread):
    """Far from the target, near it and at it, with the condition numbers real runs give
    and beyond: within 1e-6 of tr(T), and never negative (the float64 traces' difference,
    as computed before, needed float64 for that)."""
    t = ill_conditioned(256, spread, 0)
    far = ill_conditioned(256, spread, 1)
    cases = {"far": far, "near": 0.99 * t + 0.01 * far, "at": t}
    root = losses.covariance_root(tf.zeros([1, 256]), tf.constant(t[None], tf.float32))
    for name, s in cases.items():
        s = s + losses.COVARIANCE_REGULARIZATION * np.trace(t) / 256 * np.eye(256)
        ours = float(losses.covariance_distance(tf.constant(s[None], tf.float32), root)[0])
        t_regularized = root.numpy()[0].astype(np.float64) @ root.numpy()[0].T
        expected = np_covariance_distance(s, t_regularized)
        assert ours >= 0.0, name
        assert abs(ours - expected) < 1e-6 * np.trace(t), (name, ours, expected)


@pytest.mark.parametrize("image_positions, style_positions", [(1, 1), (4, 1), (1, 4)])
def test_gaussian_w2_of_single_positions_is_finite(image_positions, style_positions):
    """Block5 of a 24 px image is one position: a zero covariance, whose Cholesky factor
    exists only with a floor on the regularisation. One position against one is the means'
    distance alone; the value and gradient stay finite against four positions either way."""
    f = tf.constant(relu_features((1, 1, image_positions, 512), 1.0, 0.5))
    s = tf.constant(relu_features((1, 1, style_positions, 512), 2.0, 0.5))
    with tf.GradientTape() as tape:
        tape.watch(f)
        loss = tf_gaussian_w2(f, s)[0]
    assert np.isfinite(float(loss)) and float(loss) >= 0.0
    assert np.isfinite(tape.gradient(loss, f).numpy()).all()
    if image_positions == style_positions == 1:
        means = np.sum((f.numpy() - s.numpy()) ** 2) / np.sum(s.numpy() ** 2)
        assert float(loss) == pytest.approx(means, rel=1e-4)


def test_polar_factor_is_orthogonal_and_leaves_a_symmetric_positive_factor():
    """U of A = L^T R = U H: U^T U = I and U^T A symmetric positive definite, for triangular
    factors of covariances with condition number 1e4."""
    left, right = (np.linalg.cholesky(ill_conditioned(128, 1e4, seed)) for seed in (2, 3))
    left, right = (tf.constant(m[None], tf.float32) for m in (left, right))
    matrix = tf.matmul(left, right, transpose_a=True)
    u = losses.polar(left, right).numpy()[0].astype(np.float64)
    np.testing.assert_allclose(u.T @ u, np.eye(128), atol=1e-5)
    h = u.T @ matrix.numpy()[0].astype(np.float64)
    np.testing.assert_allclose(h, h.T, atol=1e-5 * np.abs(h).max())
    assert np.linalg.eigvalsh((h + h.T) / 2).min() > 0


def test_polar_factors_of_a_batch_are_each_matrix_alone():
    """Matrices that need different numbers of steps (condition numbers 1e2 and 1e4), in
    one batch: each gets the factor it gets alone, the one done first kept orthogonal."""
    lefts, rights = (
        np.stack([np.linalg.cholesky(ill_conditioned(64, spread, seed + k)) for k, spread in
                  enumerate((1e2, 1e4))]).astype(np.float32)
        for seed in (4, 6)
    )  # fmt: skip
    together = losses.polar(tf.constant(lefts), tf.constant(rights)).numpy()
    for k in range(2):
        alone = losses.polar(tf.constant(lefts[k : k + 1]), tf.constant(rights[k : k + 1]))
        np.testing.assert_allclose(together[k], alone.numpy()[0], atol=1e-6)


def test_gaussian_w2_matches_numpy():
    f, s = relu_features((1, 9, 7, 6)), relu_features((1, 11, 5, 6), 2.0, 0.5)
    ours = tf_gaussian_w2(tf.constant(f), tf.constant(s)).numpy()
    np.testing.assert_allclose(ours, [np_gaussian_w2(f, s)], rtol=1e-4)


@pytest.mark.parametrize("positions", [256, 64, 16])
def test_gaussian_w2_of_the_style_itself_is_zero(positions):
    """256, 64 and 16 positions for 512 channels, as block5 of small images has: the
    covariance is rank-deficient, and the distance is still zero, not below it (a floor on
    the eigenvalues of the cross term once gave -0.004 and -0.017 here)."""
    s = relu_features((1, positions // 8, 8, 512), 2.0, 0.5)
    assert abs(float(tf_gaussian_w2(tf.constant(s), tf.constant(s))[0])) < 1e-6


def test_gaussian_w2_is_never_negative_near_the_style():
    """Activations a little off the style's, in both directions: small distances, all >= 0
    and growing with the offset."""
    s = relu_features((1, 8, 8, 256), 2.0, 0.5)
    noise = rng.normal(size=s.shape).astype(np.float32)
    distances = [
        float(tf_gaussian_w2(tf.constant(np.maximum(s + t * noise, 0.0)), tf.constant(s))[0])
        for t in (1e-3, 1e-2, 1e-1)
    ]
    assert 0.0 <= distances[0] < distances[1] < distances[2]


def test_gaussian_w2_gradient_matches_numpy_differences():
    """d loss / d activations against central differences of the float64 reference."""
    f, s = relu_features((1, 5, 4, 3)), relu_features((1, 6, 6, 3), 2.0, 0.5)
    x = tf.constant(f)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf_gaussian_w2(x, tf.constant(s))[0]
    ours = tape.gradient(loss, x).numpy()
    numeric, step = np.zeros_like(f, np.float64), 1e-6
    for index in np.ndindex(f.shape):
        up, down = f.astype(np.float64), f.astype(np.float64)
        up[index] += step
        down[index] -= step
        numeric[index] = (np_gaussian_w2(up, s) - np_gaussian_w2(down, s)) / (2 * step)
    np.testing.assert_allclose(ours, numeric, atol=1e-4 * np.abs(numeric).max())


def test_gaussian_w2_gradient_is_finite_for_a_rank_deficient_covariance():
    """Fewer positions than channels: the covariance is singular, and the square root's
    slope would be infinite without the regularisation."""
    f, s = relu_features((1, 2, 2, 8)), relu_features((1, 3, 3, 8), 2.0, 0.5)
    x = tf.constant(f)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf_gaussian_w2(x, tf.constant(s))[0]
    assert np.isfinite(tape.gradient(loss, x).numpy()).all()


def test_gaussian_w2_is_unchanged_by_scaling_the_activations():
    f, s = relu_features((1, 9, 7, 6)), relu_features((1, 11, 5, 6), 2.0, 0.5)
    base = tf_gaussian_w2(tf.constant(f), tf.constant(s)).numpy()
    scaled = tf_gaussian_w2(tf.constant(f * 30.0), tf.constant(s * 30.0)).numpy()
    np.testing.assert_allclose(scaled, base, rtol=1e-4)


def test_masked_moments_are_the_region_alone():
    f = relu_features((1, 6, 8, 4))
    mask = np.zeros((1, 6, 8, 1), np.float32)
    mask[:, :, :3] = 1.0
    mean, second = losses.moments(tf.constant(f), tf.constant(mask))
    region = f[:, :, :3]
    np.testing.assert_allclose(mean.numpy()[0], region.reshape(-1, 4).mean(0), rtol=1e-5)
    np.testing.assert_allclose(second.numpy(), np_gram(region), rtol=1e-5)


# -- the sliced Wasserstein-2 style loss -------------------------------------------------


def np_sliced_w2(f, directions, samples, weights, mask=None):
    """One image f [H, W, C] (positions weighted by mask [H, W], default 1) against weighted
    samples [M, C] (weights [M]), float64: for each direction, each position's projection
    against the samples' quantile at the position's rank level."""
    x = f.reshape(-1, f.shape[-1]).astype(np.float64)
    m = np.ones(len(x)) if mask is None else mask.reshape(-1).astype(np.float64)
    d = directions.astype(np.float64)
    total = 0.0
    for k in range(d.shape[1]):
        px, pz = x @ d[:, k], samples.astype(np.float64) @ d[:, k]
        ox, oz = np.argsort(px, kind="stable"), np.argsort(pz, kind="stable")
        wx, wz = m[ox], weights[oz].astype(np.float64)
        levels = (np.cumsum(wx) - wx / 2) / wx.sum()
        cumulative = np.cumsum(wz) / wz.sum()
        for value, weight, level in zip(px[ox], wx, levels):
            j = min(np.searchsorted(cumulative, level, side="left"), len(pz) - 1)
            total += weight * (value - pz[oz][j]) ** 2
    distance = total / (m.sum() * d.shape[1])
    scale = np.sum(weights * np.sum(samples.astype(np.float64) ** 2, axis=1)) / weights.sum()
    return distance / (scale / f.shape[-1])


def test_sliced_w2_matches_numpy_for_equal_sizes_as_sorted_differences():
    f, s = relu_features((1, 6, 5, 4)), relu_features((1, 5, 6, 4), 2.0, 0.5)
    d = losses.random_directions(4, 7, tf.constant([1, 2]))
    samples = s.reshape(-1, 4)
    ours = losses.sliced_w2(tf.constant(f), d, samples, tf.ones([1, 30]) / 30).numpy()
    x, z = f.reshape(-1, 4).astype(np.float64) @ d.numpy(), samples @ d.numpy()
    plain = np.mean((np.sort(x, 0) - np.sort(z, 0)) ** 2)
    expected = plain / (np.mean(np.sum(samples.astype(np.float64) ** 2, 1)) / 4)
    np.testing.assert_allclose(ours, [expected], rtol=1e-5)


def test_sliced_w2_matches_numpy_with_sizes_weights_and_masks():
    f, s = relu_features((1, 7, 5, 4)), relu_features((1, 4, 6, 4), 2.0, 0.5)
    samples = s.reshape(-1, 4)
    weights = rng.uniform(0, 1, size=24) * (rng.uniform(size=24) > 0.3)  # some zero
    masks = rng.uniform(0, 1, size=(2, 7, 5, 1)).astype(np.float32)
    d = losses.random_directions(4, 5, tf.constant([3, 4]))
    ours = losses.sliced_w2(
        tf.constant(f), d, samples, tf.constant(weights[None], tf.float32), tf.constant(masks)
    ).numpy()
    for region in range(2):
        expected = np_sliced_w2(f[0], d.numpy(), samples, weights, masks[region, ..., 0])
        np.testing.assert_allclose(ours[region], expected, rtol=1e-4)


def test_sliced_w2_of_the_style_itself_is_zero_and_its_gradient_matches_numpy():
    s = relu_features((1, 6, 6, 3), 2.0, 0.5)
    d = losses.random_directions(3, 4, tf.constant([5, 6]))
    samples, weights = s.reshape(-1, 3), tf.ones([1, 36])
    assert float(losses.sliced_w2(tf.constant(s), d, samples, weights)[0]) == pytest.approx(0.0)
    f = rng.normal(1.0, 1.0, size=(1, 5, 4, 3)).astype(np.float32)  # no ties, unlike ReLU's zeros
    x = tf.constant(f)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = losses.sliced_w2(x, d, samples, weights)[0]
    ours = tape.gradient(loss, x).numpy()
    numeric, step = np.zeros_like(f, np.float64), 1e-6
    for index in np.ndindex(f.shape):  # small steps keep every rank order
        up, down = f[0].astype(np.float64), f[0].astype(np.float64)
        up[index[1:]] += step
        down[index[1:]] -= step
        ones, dirs = np.ones(36), d.numpy()
        numeric[index] = (
            np_sliced_w2(up, dirs, samples, ones) - np_sliced_w2(down, dirs, samples, ones)
        ) / (2 * step)
    np.testing.assert_allclose(ours, numeric, atol=1e-4 * np.abs(numeric).max())


def test_random_directions_are_unit_and_seeded():
    a = losses.random_directions(8, 5, tf.constant([0, 1]))
    np.testing.assert_allclose(tf.norm(a, axis=0), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(a, losses.random_directions(8, 5, tf.constant([0, 1])))
    assert not np.allclose(a, losses.random_directions(8, 5, tf.constant([0, 2])))


def test_temporal_error_is_numpys_mean_and_its_gradient_is_the_masked_difference():
    image, target = rng.uniform(0, 255, (2, 2, 9, 7, 3))
    mask = (rng.uniform(size=(2, 9, 7, 1)) < 0.6).astype(np.float64)
    x = tf.constant(image, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        error = losses.temporal_error(
            x, tf.constant(target, tf.float32), tf.constant(mask, tf.float32)
        )
        summed = tf.reduce_sum(error)
    want = np.mean(mask * (image - target) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(error, want, rtol=1e-5)
    gradient = tape.gradient(summed, x)
    np.testing.assert_allclose(
        gradient, 2 * mask * (image - target) / (9 * 7 * 3), rtol=1e-4, atol=1e-7
    )


def test_the_temporal_loss_reaches_the_gradient_where_the_mask_trusts_the_flow(
    config, extractor, content, style
):
    """Unlike neural-style-tf's, whose temporal loss is a constant to the optimiser: the
    gradient with temporal_weight w is the one without plus w times the term's own."""
    objective = Objective(config, extractor)
    targets = objective.targets(content[None], [style[None]])
    rng = np.random.default_rng(0)
    warped = np.clip(content + rng.normal(0, 20, content.shape), 0, 255)[None]
    mask = np.zeros((1, *content.shape[:2], 1), np.float32)
    mask[:, :, : content.shape[1] // 2] = 1.0  # trusted on the left half only
    targets = targets._replace(
        temporal=tf.constant(warped, tf.float32), temporal_mask=tf.constant(mask)
    )
    image = tf.constant(content[None])

    def gradient(weight):
        w = LossWeights(config.content_weight, config.style_weight, config.tv_weight, weight)
        return objective.evaluate(image, targets, w).gradient.numpy()

    pull = gradient(2.0) - gradient(0.0)
    pixels = np.prod(content.shape)
    want = 2.0 * 2 * mask * (content[None] - warped) / pixels / float(targets.content_tv[0])
    np.testing.assert_allclose(pull, want, atol=1e-4 * np.abs(want).max())
    assert np.abs(pull[:, :, content.shape[1] // 2 + 1 :]).max() < 1e-4 * np.abs(want).max()
    terms = objective.evaluate(image, targets).terms
    assert float(terms["temporal"]) > 0
    assert float(terms["total"]) == pytest.approx(
        sum(float(terms[k]) for k in ("content", "style", "tv", "temporal")), rel=1e-6
    )
