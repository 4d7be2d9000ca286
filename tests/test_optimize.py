"""Adam and L-BFGS updates against float64 NumPy references."""

import numpy as np
import pytest
import tensorflow as tf

from nst_tf.colors import LUMA
from nst_tf.optimize import (
    LBFGS,
    LIGHT_SHARE,
    MAX_BACKTRACKS,
    SMOOTH_PIXELS,
    Adam,
    project,
    smooth,
    smooth_colours,
    update_variables,
)

rng = np.random.default_rng(0)


def test_adam_matches_numpy_reference():
    """Epsilon is given for 512 x 512 pixels and scales with the gradient of a mean over
    pixels, as 1 / (H * W): 1e-3 there is 1e-3 * 512^2 / 16 on a 4 x 4 image."""
    adam = Adam(learning_rate=2.0, beta_1=0.9, beta_2=0.99, epsilon=1e-3)
    epsilon = 1e-3 * 512**2 / 16
    x = rng.uniform(50, 200, (1, 4, 4, 3)).astype(np.float32)
    state = adam.init(tf.constant(x))
    m = v = np.zeros_like(x, np.float64)
    ref = x.astype(np.float64)
    image = tf.constant(x)
    for t in range(1, 6):
        g = rng.normal(size=x.shape).astype(np.float32)
        image, state = adam.update(image, tf.constant(g), tf.zeros([1]), state)
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g.astype(np.float64) ** 2
        step = 2.0 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.99**t)) + epsilon)
        ref = np.clip(ref - step, 0, 255)
    np.testing.assert_allclose(image.numpy(), ref, rtol=1e-5, atol=1e-4)


def test_updates_keep_pixels_in_range():
    x = tf.constant([[[[0.0, 128.0, 255.0]]]])
    g = tf.constant([[[[1e6, -1e6, -1e6]]]])
    for optimizer in (Adam(100.0), LBFGS(1e6)):
        image, _ = optimizer.update(x, g, tf.zeros([1]), optimizer.init(x))
        assert np.all(image.numpy() >= 0) and np.all(image.numpy() <= 255)
    np.testing.assert_array_equal(project(tf.constant([-3.0, 9.0, 300.0])), [0.0, 9.0, 255.0])


def dense_lbfgs_direction(g, pairs, start=None):
    """H g with H built explicitly by the BFGS update over the pairs (oldest first), from
    gamma P, P = `start` (default I) and gamma = s . y / y . P y of the newest pair."""
    s_new, y_new = pairs[-1]
    start = np.eye(len(g)) if start is None else start
    h = start * (s_new @ y_new) / (y_new @ start @ y_new)
    for s, y in pairs:
        rho = 1.0 / (y @ s)
        left = np.eye(len(g)) - rho * np.outer(s, y)
        h = left @ h @ left.T + rho * np.outer(s, s)
    return h @ g


def dense(linear, shape):
    """A linear function of images of `shape` [1, H, W, C] as a matrix."""
    basis = np.eye(np.prod(shape), dtype=np.float32).reshape(-1, *shape[1:])
    return linear(tf.constant(basis)).numpy().reshape(len(basis), -1).T.astype(np.float64)


# A colour with no luminance, and the grey of unit luminance direction.
CHROMA = np.cross(LUMA, [0.0, 0.0, 1.0]) / np.linalg.norm(np.cross(LUMA, [0.0, 0.0, 1.0]))
LIGHT = LUMA / np.linalg.norm(LUMA)


def test_smooth_is_symmetric_positive_semidefinite_and_keeps_only_large_areas():
    """K: symmetric with no negative eigenvalue (so P = I + c K is positive definite and
    L-BFGS's direction a descent one); a field smooth over many cells passes, away from
    the border, and pixel-sized detail does not."""
    k = dense(smooth, [1, 24, 40, 1])
    np.testing.assert_allclose(k, k.T, atol=1e-6)
    assert np.linalg.eigvalsh(k).min() > -1e-5
    y, x = np.mgrid[:96, :256]
    inside = (slice(2 * SMOOTH_PIXELS, -2 * SMOOTH_PIXELS),) * 2  # two cells from the border
    for field in (np.ones((96, 256)), np.cos(2 * np.pi * x / 256) + np.sin(2 * np.pi * y / 192)):
        kept = smooth(tf.constant(field[None, :, :, None], tf.float32)).numpy()[0, :, :, 0]
        np.testing.assert_allclose(kept[inside], field[inside], atol=0.05)
    checkers = (-1.0) ** (x + y)
    assert np.abs(smooth(tf.constant(checkers[None, :, :, None], tf.float32))).max() < 0.05


def test_smooth_colours_moves_light_a_share_as_far_as_colour():
    """K (x) (I - (1 - LIGHT_SHARE) l l^T): symmetric, positive semidefinite; a smooth field
    of a colour without luminance passes as `smooth` passes it, one of light LIGHT_SHARE
    as much."""
    k = dense(smooth_colours, [1, 6, 40, 3])
    np.testing.assert_allclose(k, k.T, atol=1e-6)
    assert np.linalg.eigvalsh(k).min() > -1e-5
    field = np.cos(2 * np.pi * np.arange(40) / 40)[None, None, :, None] * np.ones((1, 6, 1, 1))
    for colour, share in [(CHROMA, 1.0), (LIGHT, LIGHT_SHARE)]:
        image = tf.constant(field * colour, tf.float32)
        np.testing.assert_allclose(smooth_colours(image), share * smooth(image), atol=1e-6)


def test_smooth_colours_in_a_graph_of_unknown_sizes_equals_eager():
    """As the served graph runs it (shapes known only per request) and as XLA does."""
    unknown = tf.function(smooth_colours, input_signature=[tf.TensorSpec([None, None, None, 3])])
    compiled = tf.function(smooth_colours, jit_compile=True)
    for shape in ([1, 45, 64, 3], [2, 90, 37, 3]):
        x = tf.constant(rng.normal(size=shape).astype(np.float32))
        np.testing.assert_allclose(unknown(x), smooth_colours(x), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(compiled(x), smooth_colours(x), rtol=1e-5, atol=1e-5)


def test_smooth_works_on_each_image_and_channel_at_any_size():
    """Each image and channel apart; cells SMOOTH_PIXELS wide whatever the size, so bands
    6 cells wide are kept and bands one cell wide removed, at 64 px as at 768 px."""
    images = rng.normal(size=(2, 40, 70, 3)).astype(np.float32)
    together = smooth(tf.constant(images)).numpy()
    for b, c in [(0, 0), (1, 2)]:
        alone = smooth(tf.constant(images[b : b + 1, :, :, c : c + 1])).numpy()
        np.testing.assert_allclose(together[b, :, :, c], alone[0, :, :, 0], rtol=1e-5, atol=1e-5)
    for side in (8 * SMOOTH_PIXELS, 96 * SMOOTH_PIXELS):
        for cells, kept in [(6, True), (1, False)]:
            bands = np.where(np.arange(side) // (cells * SMOOTH_PIXELS) % 2, 1.0, -1.0)
            image = tf.constant(np.tile(bands, (8, 1))[None, :, :, None].astype(np.float32))
            left = np.abs(smooth(image).numpy()[0, 4, side // 4 : -side // 4]).mean()
            assert (left > 0.5) == kept, (side, cells, left)


@pytest.mark.parametrize("precondition, width", [(0.0, 6), (2.0, 40)])
def test_two_loop_recursion_equals_dense_bfgs_inverse_hessian(precondition, width):
    """From gamma I, and preconditioned from gamma (I + c `smooth_colours`) (not a multiple
    of the identity on a 40 px row)."""
    history, n = 4, 3 * width
    a = rng.normal(size=(n, n))
    hessian = a @ a.T + n * np.eye(n)
    pairs = []
    for _ in range(3):  # fewer pairs than slots: the empty slot must not contribute
        s = rng.normal(size=n)
        pairs.append((s, hessian @ s))
    # The ring after 6 pairs, of which the last 3 are kept: it wraps, oldest in 3, newest
    # in 1, slot 2 empty.
    slots = [3, 0, 1]
    s_hist = np.zeros((history, n))
    y_hist = np.zeros((history, n))
    rho = np.zeros(history)
    for slot, (s, y) in zip(slots, pairs):
        s_hist[slot], y_hist[slot], rho[slot] = s, y, 1.0 / (s @ y)
    s_last, y_last = pairs[-1]
    start = np.eye(n) + precondition * dense(smooth_colours, [1, 1, width, 3])
    g = rng.normal(size=n)
    as_image = lambda a: tf.reshape(tf.constant(a, tf.float32), [1, -1, 1, width, 3])  # noqa: E731
    per_image = lambda a: tf.reshape(tf.constant(a, tf.float32), [1, -1, 1, 1, 1])  # noqa: E731
    lbfgs = LBFGS(history=history, precondition=precondition)
    state = lbfgs.init(as_image(g)[0])._replace(
        s=as_image(s_hist),
        y=as_image(y_hist),
        rho=per_image(rho),
        gamma=per_image([(s_last @ y_last) / (y_last @ start @ y_last)])[:, 0],
        pairs=per_image([6.0])[:, 0],
    )
    got = lbfgs.two_loop(as_image(g)[:, 0], state)
    expected = dense_lbfgs_direction(g, pairs, start)
    np.testing.assert_allclose(got.numpy().ravel(), expected, rtol=1e-4, atol=1e-5)


def minimize(optimizer, fn, x0, steps, jit_compile=False):
    """`steps` evaluations of fn(x) -> (loss per image, gradient) and updates from x0, the
    state carried as tensors (as the serving loop does), the update compiled with XLA if
    asked (as `--jit=auto` does on CPU); the optimizer's result."""
    update = tf.function(optimizer.update, jit_compile=True) if jit_compile else optimizer.update
    x = tf.constant(x0)
    state = optimizer.init(x)
    for _ in range(steps):
        x, state = update(x, fn(x)[1], fn(x)[0], state)
    return optimizer.result(x, state).numpy()


def per_image_sum(values):
    return tf.reduce_sum(values, axis=[1, 2, 3])


def _image(evaluation, i):
    """Image i's part of an evaluation (loss [B], gradient [B, ...])."""
    loss, grad = evaluation
    return loss[i : i + 1], grad[i : i + 1]


def quadratic(batch: int = 1):
    """An ill-conditioned quadratic (condition number 100) per image of a batch
    [batch, 1, 12, 1]: fn(x) -> (loss per image, gradient), its minima, and a start."""
    scales = tf.reshape(tf.constant(np.geomspace(0.01, 1.0, 12), tf.float32), [1, 1, 12, 1])
    target = tf.constant(rng.uniform(60, 190, (batch, 1, 12, 1)), tf.float32)
    x0 = np.full((batch, 1, 12, 1), 128.0, np.float32)

    def fn(x):
        return per_image_sum(0.5 * scales * tf.square(x - target)), scales * (x - target)

    return fn, target.numpy(), x0


def test_lbfgs_solves_an_ill_conditioned_quadratic():
    """Minimum inside the box: L-BFGS gets there, plain steps do not. (50 evaluations: its
    result is the last image its line search accepted, one behind the latest trial.)"""
    fn, target, x0 = quadratic()
    x = minimize(LBFGS(history=5), fn, x0, steps=50)
    np.testing.assert_allclose(x, target, atol=0.05)
    adam = minimize(Adam(1.0), fn, x0, steps=40)
    assert np.abs(adam - target).max() > 1.0


def test_a_batch_takes_the_steps_its_images_take_alone():
    fn, target, x0 = quadratic(batch=3)
    x0 = x0 + rng.normal(0, 10, x0.shape).astype(np.float32)
    for optimizer in (LBFGS(history=5), Adam(1.0)):
        together = minimize(optimizer, fn, x0, steps=7)
        for i in range(3):
            alone = minimize(optimizer, lambda x, i=i: _image(fn(x), i), x0[i : i + 1], 7)
            np.testing.assert_allclose(together[i : i + 1], alone, rtol=1e-5)


def test_a_bfloat16_history_gives_the_float32_direction_to_within_its_rounding():
    """Both fed the same images and gradients of an ill-conditioned quadratic on 4096
    pixels: after 8 updates the quasi-Newton steps differ by 1% of their size at most, a
    few times bfloat16's rounding (8 significant bits: 0.4%), where the steps themselves
    move pixels by tens of grey levels; the history takes half the bytes."""
    scales = tf.constant(np.geomspace(0.01, 1.0, 4096).reshape(1, 64, 64, 1), tf.float32)
    target = tf.constant(rng.uniform(60, 190, (1, 64, 64, 1)), tf.float32)
    grad_fn = lambda x: scales * (x - target)  # noqa: E731
    loss_fn = lambda x: per_image_sum(0.5 * scales * tf.square(x - target))  # noqa: E731
    exact, rounded = LBFGS(history=5), LBFGS(history=5, history_dtype="bfloat16")
    x = tf.fill([1, 64, 64, 1], 128.0)
    states = exact.init(x), rounded.init(x)
    for _ in range(8):
        (x_exact, exact_state), (x_rounded, rounded_state) = (
            optimizer.update(x, grad_fn(x), loss_fn(x), state)
            for optimizer, state in zip((exact, rounded), states)
        )
        states = exact_state, rounded_state
        step, step_rounded = (x - x_exact).numpy(), (x - x_rounded).numpy()
        x = x_exact
    assert np.abs(step).max() > 10.0
    assert np.linalg.norm(step_rounded - step) < 0.01 * np.linalg.norm(step)
    assert rounded_state.s.dtype == tf.bfloat16 and rounded_state.y.dtype == tf.bfloat16
    assert exact_state.s.dtype == tf.float32


def test_a_bfloat16_history_uses_the_pairs_it_keeps():
    """The direction equals the dense BFGS inverse Hessian's built from the pairs rounded to
    bfloat16, rho included: the recursion is exact for what is kept."""
    n = 8
    hessian = np.diag(np.geomspace(0.1, 10.0, n))
    lbfgs = LBFGS(history=4, history_dtype="bfloat16")
    as_image = lambda a: tf.reshape(tf.constant(a, tf.float32), [1, 1, n, 1])  # noqa: E731
    rounded = lambda a: tf.cast(tf.cast(a, tf.bfloat16), tf.float64).numpy()  # noqa: E731
    xs = [rng.uniform(100, 150, n) for _ in range(4)]
    state, pairs = lbfgs.init(as_image(xs[0])), []
    for k, (previous, x) in enumerate(zip([None, *xs], xs)):
        falling = tf.constant([-1e6 * k])  # every image accepted
        _, state = lbfgs.update(as_image(x), as_image(hessian @ x), falling, state)
        if previous is not None:
            s = rounded(as_image(x).numpy().ravel() - as_image(previous).numpy().ravel())
            y = rounded((as_image(hessian @ x) - as_image(hessian @ previous)).numpy().ravel())
            pairs.append((s, y))
    g = rng.normal(size=n)
    got = lbfgs.two_loop(as_image(g), state).numpy().ravel()
    np.testing.assert_allclose(got, dense_lbfgs_direction(g, pairs), rtol=1e-4, atol=1e-6)


def test_lbfgs_skips_pairs_without_positive_curvature():
    lbfgs = LBFGS(history=3)
    pixels = lambda *values: tf.reshape(tf.constant(values), [1, 1, -1, 1])  # noqa: E731
    x = pixels(10.0, 20.0)
    state = lbfgs.init(x)
    _, state = lbfgs.update(x, pixels(1.0, 1.0), tf.constant([10.0]), state)
    # Moving along +x while the gradient drops: s . y < 0, so no pair is stored, though the
    # loss fell and the image is accepted.
    _, state = lbfgs.update(pixels(11.0, 21.0), pixels(-1.0, -1.0), tf.constant([5.0]), state)
    assert state.accepted.numpy().ravel().tolist() == [2.0]
    assert np.all(state.rho.numpy() == 0.0) and state.pairs.numpy().ravel().tolist() == [0.0]
    assert np.all(state.gamma.numpy() == 0.0)


def minimize_in_variables(optimizer, fn, x0, steps, jit_compile=False):
    """`minimize` with the image and state in tf.Variables, as the interactive loop keeps them
    (L-BFGS writes its history in place there)."""
    x = tf.Variable(x0)
    state = tf.nest.map_structure(tf.Variable, optimizer.init(x))
    update = tf.function(
        lambda grad, loss: update_variables(optimizer, x, grad, loss, state),
        jit_compile=jit_compile,
    )
    for _ in range(steps):
        loss, grad = fn(x)
        update(grad, loss)
    return optimizer.result(x, state).numpy()


def wavy():
    """A function with curvature of both signs per image of a batch of two, fn(x) -> (loss
    per image, gradient), and a start: some curvature pairs are refused, at other steps in
    each image."""
    x0 = np.random.default_rng(0).uniform(60, 190, (2, 1, 12, 1)).astype(np.float32)

    def fn(x):
        loss = per_image_sum(-8.0 * tf.cos(x / 8.0) + 0.005 * tf.square(x - 128.0))
        return loss, tf.sin(x / 8.0) + 0.01 * (x - 128.0)

    return fn, x0


@pytest.mark.parametrize("jit_compile", [False, True], ids=["plain", "xla"])
def test_updates_in_variables_equal_the_pure_ones(jit_compile):
    """Ten steps with a three-slot history: the ring wraps round three times, and the two
    images refuse pairs at different steps. (Plain and XLA are compared each with itself:
    the refused pairs make this function amplify XLA's different rounding.)"""
    fn, x0 = wavy()
    for optimizer in (LBFGS(history=3), Adam(1.0)):
        pure = minimize(optimizer, fn, x0, 10, jit_compile)
        in_place = minimize_in_variables(optimizer, fn, x0, 10, jit_compile)
        np.testing.assert_allclose(in_place, pure, rtol=1e-5)


def test_lbfgs_refuses_some_wavy_pairs_and_keeps_others():
    """What the test above relies on: of the pairs of steps 1-9, some are refused and some
    kept, and the two images do not refuse at the same steps."""
    fn, x0 = wavy()
    lbfgs = LBFGS(history=3)
    x, state = tf.constant(x0), lbfgs.init(tf.constant(x0))
    refused, kept = [], []
    for _ in range(10):
        before = state
        x, state = lbfgs.update(x, fn(x)[1], fn(x)[0], state)
        accepted = (state.accepted - before.accepted).numpy().ravel() > 0
        stored = (state.pairs - before.pairs).numpy().ravel() > 0
        refused.append(accepted & ~stored)
        kept.append(stored)
    refused = np.array(refused[1:])  # the first evaluation has no pair to keep
    assert refused.any() and np.any(kept)
    assert (refused[:, 0] != refused[:, 1]).any()


def test_xla_compiled_updates_equal_the_plain_ones():
    fn, _, x0 = quadratic(batch=2)
    for optimizer in (LBFGS(history=3), Adam(1.0)):
        plain = minimize(optimizer, fn, x0, steps=6)
        compiled = minimize(optimizer, fn, x0, steps=6, jit_compile=True)
        np.testing.assert_allclose(compiled, plain, rtol=1e-5)


# -- the line search ---------------------------------------------------------------------


def test_lbfgs_rejects_a_rise_and_tries_the_parabolas_minimum():
    """A trial whose loss rises is rejected: the result stays at the last accepted image
    and the next trial lies back along the step, at the minimum of the parabola through the
    loss there, its slope along the step and the trial's loss."""
    lbfgs = LBFGS(history=3)
    x0 = tf.fill([1, 1, 4, 1], 100.0)
    g0 = tf.constant([1.0, -2.0, 0.5, 1.0], shape=[1, 1, 4, 1])
    trial, state = lbfgs.update(x0, g0, tf.constant([10.0]), lbfgs.init(x0))
    step = (trial - x0).numpy()
    slope = float(np.sum(g0.numpy() * step))
    assert slope < 0  # a descent step
    rise = 1.0 - slope  # the trial's loss minus the loss predicted by the slope: 11 in all
    loss = 10.0 + slope + rise
    back, state = lbfgs.update(trial, g0, tf.constant([loss]), state)
    fraction = np.clip(-slope / (2 * rise), 0.1, 0.5)
    np.testing.assert_allclose(back.numpy(), x0.numpy() + fraction * step, rtol=1e-6)
    np.testing.assert_array_equal(lbfgs.result(back, state).numpy(), x0.numpy())
    assert state.accepted.numpy().ravel().tolist() == [1.0]
    assert state.tries.numpy().ravel().tolist() == [1.0]


def test_lbfgs_drops_its_history_after_too_many_rejections():
    """MAX_BACKTRACKS rejections in a row: every slot is emptied and the next trial is the
    first step's kind, the gradient at the last accepted image scaled to move its most
    sensitive pixel by one grey level."""
    fn, _, x0 = quadratic()
    lbfgs = LBFGS(history=3)
    x, state = tf.constant(x0), lbfgs.init(tf.constant(x0))
    while state.accepted.numpy().item() < 4 or state.tries.numpy().item() > 0:
        loss, grad = fn(x)  # a few accepted steps: pairs in the history, no rejection since
        x, state = lbfgs.update(x, grad, loss, state)
    assert np.any(state.rho.numpy() != 0.0)
    accepted, grad = lbfgs.result(x, state), state.prev_grad
    for _ in range(MAX_BACKTRACKS):
        x, state = lbfgs.update(x, fn(x)[1], tf.constant([1e9]), state)  # every trial rises
    assert np.all(state.rho.numpy() == 0.0) and np.all(state.gamma.numpy() == 0.0)
    expected = accepted - grad / tf.reduce_max(tf.abs(grad))
    np.testing.assert_allclose(x.numpy(), expected.numpy(), rtol=1e-6)


def test_a_preconditioned_first_step_moves_large_areas_farther():
    """With no pairs yet the trial is P g / max|g|, P = I + c `smooth_colours`: the plain
    step of one grey level for the most sensitive pixel, preconditioned, so a gradient that
    is one smooth field of colour plus pixel noise steps along the field about (1 + c)
    times as far as without, and its noise about as far (only the noise's smooth part goes
    farther)."""
    x = np.arange(192)[None, None, :, None]
    field = np.cos(2 * np.pi * x / 192) * np.ones((1, 32, 1, 1)) * CHROMA
    noise = rng.normal(0, 0.3, field.shape)
    grad = tf.constant(field + noise, tf.float32)
    start = tf.fill(grad.shape, 128.0)
    moved = {}
    for c in (0.0, 4.0):
        lbfgs = LBFGS(precondition=c)
        trial, _ = lbfgs.update(start, grad, tf.constant([1.0]), lbfgs.init(start))
        step = (start - trial).numpy()
        direction = grad + c * smooth_colours(grad)
        np.testing.assert_allclose(step, direction / tf.reduce_max(tf.abs(grad)), atol=1e-4)
        along = np.sum(step * field) / np.sum(field * field)
        moved[c] = along, np.std(step - along * field)
    assert 3.0 < moved[4.0][0] / moved[0.0][0] < 6.0, moved
    assert 1.0 <= moved[4.0][1] / moved[0.0][1] < 1.5, moved


def test_the_preconditioned_start_is_scaled_by_s_y_over_y_p_y():
    """gamma = s . y / y . P y of the newest pair (Nocedal & Wright 7.20 with P for I): the
    start gamma P then maps y to a step as long as s in P's measure, whatever c; with
    s . y / y . y, c alone would lengthen every step, and did (QUALITY.md)."""
    rng_ = np.random.default_rng(3)
    x0 = tf.constant(rng_.uniform(0, 255, (1, 16, 24, 3)), tf.float32)
    target = tf.constant(rng_.uniform(0, 255, x0.shape), tf.float32)
    fn = lambda x: (tf.reduce_sum((x - target) ** 2, axis=[1, 2, 3]), 2 * (x - target))  # noqa: E731
    for c in (0.0, 5.0):
        lbfgs = LBFGS(precondition=c)
        x, state = x0, lbfgs.init(x0)
        for _ in range(2):
            before = x
            x, state = lbfgs.update(x, fn(x)[1], fn(x)[0], state)
        s, y = (before - x0).numpy().ravel(), (fn(before)[1] - fn(x0)[1]).numpy().ravel()
        y_image = tf.reshape(tf.constant(y, tf.float32), x0.shape)
        py = (y_image + c * smooth_colours(y_image)).numpy().ravel()
        np.testing.assert_allclose(state.gamma.numpy().ravel(), [s @ y / (y @ py)], rtol=1e-4)


def test_the_loss_never_rises_from_one_accepted_image_to_the_next():
    """On the wavy function (curvature of both signs), a batch of two, with a step size the
    plain quasi-Newton step overshoots with: trials are rejected, accepted losses fall."""
    fn, x0 = wavy()
    lbfgs = LBFGS(learning_rate=3.0, history=3)
    x, state = tf.constant(x0), lbfgs.init(tf.constant(x0))
    accepted_losses, rejected = [], 0
    for _ in range(30):
        loss, grad = fn(x)
        before = state.accepted.numpy().ravel()
        x, state = lbfgs.update(x, grad, loss, state)
        rejected += int(np.sum(state.accepted.numpy().ravel() == before))
        accepted_losses.append(fn(lbfgs.result(x, state))[0].numpy())
    assert rejected > 0
    assert np.all(np.diff(np.array(accepted_losses), axis=0) <= 1e-5 * np.abs(accepted_losses[0]))
