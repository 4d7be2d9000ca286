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
        flat, positions, gram_matrix = _gram_products(features, dtype)
        return gram_matrix, lambda d_gram: _gram_backward(flat, d_gram, positions, features)

    return gram


def _gram_products(features: tf.Tensor, dtype: tf.DType):
    """The activations [B, H, W, C] as [B, HW, C] in `dtype`, HW as float32, and their Gram
    matrix F^T F / HW [B, C, C] in float32."""
    shape = tf.shape(features)
    positions = tf.cast(shape[1] * shape[2], tf.float32)
    flat = tf.cast(tf.reshape(features, [shape[0], -1, shape[3]]), dtype)
    return flat, positions, tf.cast(tf.matmul(flat, flat, transpose_a=True), tf.float32) / positions


def _gram_backward(flat, d_gram, positions, features, d_mean=None):
    """The gradient with respect to `features` of the Gram matrix (upstream `d_gram`) and,
    where `d_mean` is given, of the mean: F (dG + dG^T) / HW + 1 dmu^T / HW, one product
    in the products' dtype, rounded once, and the mean's part added in float32."""
    symmetric = (d_gram + tf.linalg.matrix_transpose(d_gram)) / positions
    product = tf.cast(tf.matmul(flat, tf.cast(symmetric, flat.dtype)), features.dtype)
    if d_mean is not None:
        product += (d_mean / positions)[:, None, :]
    return tf.reshape(product, tf.shape(features))


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


def moments(
    features: tf.Tensor,
    masks: tf.Tensor | None = None,
    products: str = "float32",
    with_mean: bool = True,
) -> tuple[tf.Tensor | None, tf.Tensor]:
    """The mean [N, C] (None unless `with_mean`) and the Gram matrix [N, C, C] (the second
    moment) of activations [B, H, W, C]: N = B, or with masks [R, H, W, 1] (for one image),
    N = R, each over its masked region as `masked_gram`. Without masks both come from the
    same matrix products (`_moments_in`)."""
    if masks is None:
        if not with_mean:
            return None, gram(features, products)
        return _moments_in(tf.as_dtype(products))(features)
    mean = None
    if with_mean:
        wide = tf.cast(features, tf.float32)
        area = tf.reduce_sum(masks, axis=[1, 2])
        mean = tf.math.divide_no_nan(tf.reduce_sum(wide * masks, axis=[1, 2]), area)
    return mean, masked_gram(features, masks, products)


@functools.cache
def _moments_in(dtype: tf.DType):
    """The mean and Gram matrix of activations [B, H, W, C] from matrix products in `dtype`,
    as `gram`'s, and the mean 1^T F / HW, a product with a row of ones in the activations'
    own float32: rounded to bfloat16's 8 bits, the mean's outer product would take about
    ten times as much from the covariance's smallest eigenvalues as the Gram matrix's
    rounding does (a 64-position, 512-channel layer's fell to -0.26 against a
    regularisation of 0.005). Their gradient is written out (`_gram_backward`): one product
    and the mean's part added to it, where a float32 mean and automatic differentiation
    took a float32 copy of the activations, a reduction, a broadcast and a sum of two
    full-size gradients (at 512 px, block 1's 16.7 million values each)."""

    @tf.custom_gradient
    def moments(features: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        flat, positions, gram_matrix = _gram_products(features, dtype)
        wide = tf.reshape(features, tf.shape(flat))
        ones = tf.ones([tf.shape(flat)[0], 1, tf.shape(flat)[1]], features.dtype)
        mean = tf.cast(tf.matmul(ones, wide)[:, 0], tf.float32) / positions

        def gradient(d_mean, d_gram):
            d_gram = tf.zeros_like(gram_matrix) if d_gram is None else d_gram
            return _gram_backward(flat, d_gram, positions, features, d_mean)

        return (mean, gram_matrix), gradient

    return moments


def covariance(mean: tf.Tensor, second_moment: tf.Tensor) -> tf.Tensor:
    """The covariance [N, C, C] from the mean [N, C] and the second moment [N, C, C]."""
    return second_moment - mean[:, :, None] * mean[:, None, :]


def covariance_root(mean: tf.Tensor, second_moment: tf.Tensor) -> tf.Tensor:
    """A square root R of the regularised covariance T (`regularized`), R R^T = T: its
    Cholesky factor, lower triangular, [N, C, C] float32, computed once per target."""
    return tf.linalg.cholesky(regularized(covariance(mean, second_moment)))


# The covariances gaussian_w2 compares have this share of the style's mean variance per
# channel added to their diagonal (`regularized`).
COVARIANCE_REGULARIZATION = 1e-2


def regularized(cov: tf.Tensor, reference: tf.Tensor | None = None) -> tf.Tensor:
    """Covariances [N, C, C] plus epsilon I, epsilon COVARIANCE_REGULARIZATION times the mean
    variance tr(reference) / C of `reference` [1 or N, C, C] (default `cov` itself).

    Both covariances of gaussian_w2 get the same epsilon I, from the style's, so the
    distance is the exact Wasserstein-2 distance between the two regularised Gaussians:
    zero for the style itself, never negative. Epsilon is at least OWN_REGULARIZATION
    times the mean variance of `cov` itself (it decides only where that is over ten times
    the style's) and at least TINY. The regularisation gives every eigenvalue a
    floor of epsilon, which bounds the square roots' slopes (at most 1 / (2 sqrt(epsilon)))
    and so how much the gradient amplifies rounding; directions in which both vary by less
    than about epsilon count for little, together at most that share of the distance's unit.
    It is relative, so scaling the activations scales epsilon with them.
    """
    reference = cov if reference is None else reference
    channels = tf.cast(tf.shape(cov)[-1], cov.dtype)
    epsilon = tf.maximum(
        COVARIANCE_REGULARIZATION * tf.linalg.trace(reference),
        OWN_REGULARIZATION * tf.linalg.trace(cov),
    )
    epsilon = tf.maximum(epsilon / channels, TINY)
    return cov + epsilon[:, None, None] * tf.eye(tf.shape(cov)[-1], dtype=cov.dtype)


# ... and at least this share of their own, and TINY: a covariance over ten times the
# style's, or the zero covariance of a single position (block5 of a 24 px image), still
# has a float32 Cholesky factor.
OWN_REGULARIZATION = 1e-3


def covariance_distance(cov: tf.Tensor, root: tf.Tensor) -> tf.Tensor:
    """tr(S + T - 2 (T^1/2 S T^1/2)^1/2), the covariances' part of the squared Wasserstein-2
    distance between Gaussians, for covariances S [N, C, C] and T = R R^T given by a square
    root R [N or 1, C, C] (`covariance_root`), both positive definite: [N], float32.

    It is min |L Q - R|_F^2 over orthogonal Q, with L the Cholesky factor of S, attained at
    the polar factor U of L^T R (L^T R = U H, H = (R^T S R)^1/2, whose trace is the square
    root's). So it is computed as |L U - R|_F^2: a sum of squares, never negative and zero
    at S = T, with no difference of large traces, and stationary in U, so that U's rounding
    moves it only to second order. Everything is matrix products but one Cholesky
    factorisation and two triangular solves (`polar`), in float32: L^T R has the square root
    of the condition number of R^T S R, which is what float32 can resolve. The gradient
    with respect to S is I - L^-T U R^T (symmetrised), R H^-1 R^T = L^-T U R^T from the
    same factors (never by differentiating the iterations). R is a target's and gets no
    gradient.
    """

    @tf.custom_gradient
    def distance(cov):
        factor = tf.linalg.cholesky(cov)
        rotation = polar(factor, root)
        residual = tf.matmul(factor, rotation) - root
        value = tf.reduce_sum(tf.square(residual), axis=[-2, -1])

        def gradient(upstream):
            slope = tf.linalg.triangular_solve(
                factor, tf.matmul(rotation, root, transpose_b=True), adjoint=True
            )
            slope = tf.eye(tf.shape(cov)[-1]) - (slope + tf.linalg.matrix_transpose(slope)) / 2
            return upstream[:, None, None] * slope

        return value, gradient

    return distance(cov)


def polar(left: tf.Tensor, right: tf.Tensor) -> tf.Tensor:
    """The orthogonal polar factor U of A = left^T right = U H [N, C, C], for lower
    triangular, invertible left [N, C, C] and right [N or 1, C, C].

    One scaled Newton step, X = (mu A + A^-T / mu) / 2 with mu = (|A^-1|_F / |A|_F)^1/2
    (Higham), takes each singular value s to (mu s + 1 / (mu s)) / 2 >= 1, and so the
    condition number to about its square root over 2; A^-T = left^-1 right^-T from two
    triangular solves. Then X / |X|_F, whose singular values lie in [l, 1] with l =
    1 / |X|_F, is iterated with Newton-Schulz steps scaled for that interval (Chen and Chow,
    2014): X <- a X (3 I - a^2 X^T X) / 2, a = (3 / (1 + l + l^2))^1/2, which maps [l, 1]
    onto [l', 1], l' = a l (3 - a^2 l^2) / 2, until l' is 1 to within 1e-6: matrix products
    only, two per step, about ten steps where the condition number is 1e4.
    """
    matrix = tf.matmul(left, right, transpose_a=True)
    eye = tf.eye(tf.shape(matrix)[-1], batch_shape=tf.shape(right)[:-2])
    inverse_t = tf.linalg.triangular_solve(  # A^-T = left^-1 right^-T
        left, tf.linalg.matrix_transpose(tf.linalg.triangular_solve(right, eye))
    )
    norm = lambda x: tf.norm(x, axis=[-2, -1], keepdims=True)  # noqa: E731
    mu = tf.sqrt(norm(inverse_t) / norm(matrix))
    x = (mu * matrix + inverse_t / mu) / 2
    x_norm = norm(x)
    x /= x_norm
    # every singular value of x is >= 1 / |x|_F before the division, up to rounding
    lower = POLAR_MARGIN / x_norm  # [N, 1, 1]: each matrix scaled for its own interval

    def step(x, lower):
        # a x (3 I - a^2 x^T x) / 2, the identity's multiple added to the diagonal alone; a
        # matrix of a batch done before the others has a = 1 (to 1e-6) from then on: the
        # unscaled step, which keeps an orthogonal matrix as it is
        a = tf.sqrt(3.0 / (1.0 + lower + lower * lower))
        inner = (-0.5 * a**3) * tf.matmul(x, x, transpose_a=True)
        inner = tf.linalg.set_diag(inner, tf.linalg.diag_part(inner) + 1.5 * a[..., 0])
        return tf.matmul(x, inner), a * lower * (3.0 - a * a * lower * lower) / 2

    x, _ = tf.while_loop(
        lambda x, lower: tf.reduce_any(lower < 1.0 - POLAR_TOLERANCE), step, (x, lower),
        maximum_iterations=40,
    )  # fmt: skip
    return x


POLAR_MARGIN = 0.9  # the Newton step's singular values may round below 1 by this much
POLAR_TOLERANCE = 1e-6


def gaussian_w2(
    mean: tf.Tensor,
    second_moment: tf.Tensor,
    target_mean: tf.Tensor,
    target_second_moment: tf.Tensor,
    target_root: tf.Tensor,
) -> tf.Tensor:
    """The squared Wasserstein-2 distance between Gaussians fitted to the activations and to
    the style's, over the style's mean square norm: [N] for statistics [N, ...] against
    targets [N or 1, ...] (target_root: `covariance_root` of the target).

    |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S2^1/2 S1 S2^1/2)^1/2), over E|f|^2 = tr(the style's
    second moment): scaling the activations scales both alike, as for the Gram loss. Both
    covariances are `regularized` alike, with the style's epsilon (the target root's in
    `covariance_root`). Both parts are sums of squares (`covariance_distance`), so the
    distance keeps its sign near the target, where it is small beside each trace. float32
    throughout.
    """
    target_cov = covariance(target_mean, target_second_moment)
    cov = regularized(covariance(mean, second_moment), target_cov)
    distance = tf.reduce_sum(tf.math.squared_difference(mean, target_mean), axis=-1)
    distance += covariance_distance(cov, target_root)
    return distance / tf.maximum(tf.linalg.trace(target_second_moment), TINY)


def random_directions(channels: int, count: int, seed: tf.Tensor) -> tf.Tensor:
    """`count` random unit vectors in `channels` dimensions, [channels, count], from a
    stateless seed [2] (int32): the same seed, the same directions."""
    normal = tf.random.stateless_normal([channels, count], seed)
    return normal / tf.norm(normal, axis=0, keepdims=True)


def sliced_w2(
    features: tf.Tensor,
    directions: tf.Tensor,
    target_features: tf.Tensor,
    target_weights: tf.Tensor,
    masks: tf.Tensor | None = None,
) -> tf.Tensor:
    """The sliced Wasserstein-2 distance between the activations and the style's, over the
    style's mean square projection: [N].

    Both are projected on unit `directions` [C, K] and sorted along each; each image
    position's projection is compared with the style's quantile at its own rank, so images
    and styles of different sizes compare as distributions. The style is weighted samples,
    target_features [M, C] with target_weights [T, M] (T = 1, or one row per region): a blend
    of styles is one set of samples weighted by blend weight over each style's sample count,
    and a region's row is non-zero on its own style's samples only. Its quantile at level u
    is the first sorted sample whose cumulative weight reaches u, so zero-weight samples are
    never chosen. Activations [B, H, W, C] give N = B; with masks [R, H, W, 1] (one image)
    each region's positions are weighted by the mask, N = R.

    The rank order is held fixed while differentiating (the sort's gradient is the
    permutation), as in Heitz et al., CVPR 2021.
    """
    shape = tf.shape(features)
    flat = tf.reshape(features, [shape[0], -1, shape[3]])
    projected = tf.transpose(tf.matmul(flat, directions), [0, 2, 1])  # [B, K, P]
    order = tf.argsort(projected, axis=-1)
    values = tf.gather(projected, order, batch_dims=2)
    if masks is None:
        weights = tf.ones_like(values)
    else:
        regions = tf.shape(masks)[0]
        wide = [regions, tf.shape(order)[1], tf.shape(order)[2]]
        region_weights = tf.broadcast_to(tf.reshape(masks, [regions, 1, -1]), wide)
        weights = tf.gather(region_weights, tf.broadcast_to(order, wide), batch_dims=2)
        values = tf.broadcast_to(values, wide)
    total = tf.reduce_sum(weights, axis=-1, keepdims=True)
    levels = tf.math.divide_no_nan(tf.cumsum(weights, axis=-1) - weights / 2, total)
    quantiles = _weighted_quantiles(target_features, target_weights, directions, levels)
    squared = tf.reduce_sum(weights * tf.math.squared_difference(values, quantiles), axis=[1, 2])
    distance = tf.math.divide_no_nan(squared, tf.reduce_sum(total, axis=[1, 2]))
    return distance / _mean_square_projection(target_features, target_weights)


def _weighted_quantiles(samples, weights, directions, levels):
    """The quantiles at `levels` [N, K, P] of weighted samples [M, C] (weights [T, M], T = 1
    or N) projected on `directions` [C, K]: [N, K, P], constant for differentiation."""
    projected = tf.transpose(tf.matmul(samples, directions))  # [K, M]
    order = tf.argsort(projected, axis=-1)
    values = tf.gather(projected, order, batch_dims=1)
    rows = tf.shape(weights)[0]
    wide = [rows, tf.shape(order)[0], tf.shape(order)[1]]
    sorted_weights = tf.gather(
        tf.broadcast_to(weights[:, None, :], wide), tf.broadcast_to(order, wide), batch_dims=2
    )
    cumulative = tf.cumsum(sorted_weights, axis=-1)
    cumulative /= tf.maximum(cumulative[..., -1:], TINY)
    count = tf.shape(levels)[0]
    cumulative = tf.broadcast_to(cumulative, [count, wide[1], wide[2]])
    index = tf.minimum(tf.searchsorted(cumulative, levels, side="left"), wide[2] - 1)
    picked = tf.gather(tf.broadcast_to(values, [count, wide[1], wide[2]]), index, batch_dims=2)
    return tf.stop_gradient(picked)


def _mean_square_projection(samples, weights):
    """E|f|^2 / C of weighted samples [M, C] (weights [T, M]): the mean square of their
    projection on a random unit direction, [T]."""
    norms = tf.reduce_sum(tf.square(samples), axis=-1)
    mean_square = tf.reduce_sum(weights * norms, axis=-1) / tf.maximum(
        tf.reduce_sum(weights, axis=-1), TINY
    )
    return tf.maximum(mean_square / tf.cast(tf.shape(samples)[-1], tf.float32), TINY)


def per_image_mean(values: tf.Tensor) -> tf.Tensor:
    """The mean over each image of a batch [B, ...]: [B]."""
    return tf.reduce_mean(values, axis=list(range(1, values.shape.rank)))


def temporal_error(image: tf.Tensor, target: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Ruder et al.'s short-term temporal loss of each image of [B, H, W, 3]: [B], the mean
    over pixels and channels of mask * (image - target)^2 (1/D sum c (x - w)^2 in their
    paper). `target` is the previous painted frame warped onto this one by the optical flow,
    `mask` [B, H, W, 1] in [0, 1] is 1 where that warp is trusted and 0 at disocclusions and
    motion boundaries (nst_tf.flow). The objective divides it by the content's roughness,
    as it does the total variation, so that it is a relative error like the other terms."""
    return per_image_mean(mask * tf.square(image - target))


# Floor of the normalisers: a flat image or all-zero activations divide by this, not by zero.
TINY = 1e-12


def content_loss(features: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Mean squared difference between activations [B, h, w, c] and the content image's,
    over the mean square of the content's, summed over the batch."""
    return tf.reduce_sum(content_error(features, target))


def content_error(features: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """`content_loss` of each image of the batch: [B]."""
    squared = per_image_mean(tf.math.squared_difference(features, target))
    return squared / content_scale(target)


def content_scale(target: tf.Tensor) -> tf.Tensor:
    """The content loss's unit for each image's activations [B, h, w, c]: their mean
    square, [B]."""
    return tf.maximum(per_image_mean(tf.square(target)), TINY)


def style_loss(gram_matrix: tf.Tensor, target_gram: tf.Tensor) -> tf.Tensor:
    """Squared distance between Gram matrices [B, C, C] and the style's [1, C, C], over the
    squared norm of the style's, summed over the batch."""
    return tf.reduce_sum(gram_distance(gram_matrix, target_gram))


def masked_style_loss(
    features: tf.Tensor, masks: tf.Tensor, target_grams: tf.Tensor, products: str = "float32"
) -> tf.Tensor:
    """Style loss of each masked region against its own target [R, C, C], weighted by the
    region's share of the image (one all-white mask gives exactly `style_loss`)."""
    distances = gram_distance(masked_gram(features, masks, products), target_grams)
    return tf.reduce_sum(region_sum(distances, masks))


def region_sum(per_item: tf.Tensor, masks: tf.Tensor | None = None) -> tf.Tensor:
    """Each image's loss from a loss per image of a batch [B] (itself), or per masked region
    [R] of one image (their sum weighted by each region's share of the image, masks
    [R, H, W, 1]): [B], or [1]."""
    if masks is None:
        return per_item
    return tf.reduce_sum(tf.reduce_mean(masks, axis=[1, 2, 3]) * per_item, keepdims=True)


def gram_distance(grams: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
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
