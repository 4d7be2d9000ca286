"""The style losses other than Gram matrices, through the objective: tiles, masks, blends
(the loss functions themselves are checked against NumPy in test_losses)."""

import os

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import losses
from nst_tf.config import Config, ConfigError
from nst_tf.images import load_image
from nst_tf.masks import at_layer
from nst_tf.objective import Objective
from nst_tf.tiles import TiledObjective
from tests.conftest import CONTENT_PATH, SAMPLES, STYLE_PATH, new_transfer

GAUSSIAN = {"style_loss": "gaussian_w2"}
SHALLOW = {"content_layers": ("block2_conv2",), "style_layers": ("block1_conv1", "block2_conv1")}


def _noisy(content):
    noise = np.random.default_rng(0).normal(0, 30, content.shape)
    return tf.constant(np.clip(content + noise, 0, 255)[None], tf.float32)


@pytest.mark.slow
def test_gaussian_w2_tiled_equals_the_whole_image():
    """The mean and the Gram matrix are sums over positions, so tiles give them exactly, and
    with them the loss and its gradient."""
    config = Config(size=96, weights="random", precision="float32", **GAUSSIAN, **SHALLOW)
    content, style = load_image(CONTENT_PATH, 96), load_image(STYLE_PATH, 96)
    objective = Objective(config)
    targets = objective.targets(content[None], [style[None]])
    image = _noisy(content)
    terms, grad = objective.terms_and_gradient(image, targets)
    tiled = TiledObjective(objective, 32)
    tiled_targets = tiled.targets(content[None], [style[None]])
    for ours, whole in zip(tiled_targets.style_root, targets.style_root):
        np.testing.assert_allclose(ours, whole, atol=1e-4 * float(tf.reduce_max(whole)))
    tiled_terms, tiled_grad = tiled.terms_and_gradient(image, targets)
    for name in terms:
        assert float(tiled_terms[name]) == pytest.approx(float(terms[name]), rel=1e-5)
    scale = float(tf.reduce_max(tf.abs(grad)))
    np.testing.assert_allclose(tiled_grad / scale, grad / scale, atol=1e-5)


def test_gaussian_w2_targets_are_the_mixture_of_blended_styles(extractor, config, content, style):
    """Blending two styles 3:1 matches the moments of a mixture of their features: the
    means and second moments mix linearly, the covariance root is taken of the mixture's
    (regularised): R R^T is its covariance."""
    gaussian = config.replace(**GAUSSIAN)
    other = content[::-1].copy()
    alone = [new_transfer(content, s, gaussian, extractor).stage.targets for s in (style, other)]
    mixed = new_transfer(
        content, [style, other], gaussian.replace(style_blend=(3.0, 1.0)), extractor
    ).stage.targets
    mean = 0.75 * alone[0].style_mean[0] + 0.25 * alone[1].style_mean[0]
    second = 0.75 * alone[0].style[0] + 0.25 * alone[1].style[0]
    np.testing.assert_allclose(mixed.style_mean[0], mean, rtol=1e-5)
    np.testing.assert_allclose(mixed.style[0], second, rtol=1e-5)
    root = mixed.style_root[0].numpy()[0].astype(np.float64)
    np.testing.assert_allclose(
        root @ root.T,
        losses.regularized(losses.covariance(mean, second))[0],
        atol=1e-3 * float(tf.reduce_max(second)),
    )


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["gaussian_w2", "sliced_w2"])
def test_one_white_mask_is_the_unmasked_loss(extractor, config, content, style, loss):
    settings = config.replace(style_loss=loss)
    white = np.ones(content.shape[:2], np.float32)
    plain = new_transfer(content, style, settings, extractor).stage.loss_terms()
    masked = new_transfer(
        content, style, settings, extractor, content_mask=white
    ).stage.loss_terms()
    for name in ("style", "total"):
        assert float(masked[name]) == pytest.approx(float(plain[name]), rel=1e-4)


def _two_styles_in_halves(settings, extractor, content, style):
    """A run of `content` with `style` in its left half and the flipped content as a second
    style in its right half."""
    other = content[::-1].copy()
    left = np.zeros(content.shape[:2], np.float32)
    left[:, : content.shape[1] // 2] = 1.0
    return new_transfer(
        content, [style, other], settings, extractor, style_masks=[left, 1.0 - left]
    ), other


@pytest.mark.slow
def test_gaussian_w2_style_masks_match_each_style_inside_its_region(
    extractor, config, content, style
):
    """Two styles, each in half the image: each region's target is its own style's moments,
    and the loss is the regions' losses weighted by their area."""
    gaussian = config.replace(**GAUSSIAN)
    run, other = _two_styles_in_halves(gaussian, extractor, content, style)
    targets = run.stage.targets
    singles = [new_transfer(content, s, gaussian, extractor).stage.targets for s in (style, other)]
    for layer in range(len(config.style_layers)):
        for region in (0, 1):
            np.testing.assert_allclose(
                targets.style_mean[layer][region], singles[region].style_mean[layer][0], rtol=1e-5
            )
    assert np.isfinite(float(run.stage.loss_terms()["style"]))
    run.run(2)
    assert np.isfinite(run.result()).all()


def test_an_unknown_style_loss_is_refused():
    with pytest.raises(ConfigError, match="style_loss must be one of gram, gaussian_w2"):
        Config(style_loss="mmd")


SLICED = {"style_loss": "sliced_w2"}


def test_sliced_w2_blend_weights_each_style_by_its_blend(extractor, config, content, style):
    other = content[:, :40].copy()  # another shape: another sample count
    run = new_transfer(
        content, [style, other], config.replace(**SLICED, style_blend=(3.0, 1.0)), extractor
    )
    weights = run.stage.targets.style_weights[0].numpy()[0]
    first, second = (s.shape[0] * s.shape[1] for s in run.stage.styles)  # block1: per pixel
    assert first != second and weights.shape == (first + second,)
    assert weights[:first].sum() == pytest.approx(0.75)
    assert weights[first:].sum() == pytest.approx(0.25)


@pytest.mark.slow
def test_sliced_w2_directions_are_new_each_step_and_seeded(extractor, config, content, style):
    run = new_transfer(content, style, config.replace(**SLICED), extractor)
    image, targets = run.stage.image, run.stage.targets
    at = [float(run.objective.terms(image, targets, None, step)["style"]) for step in (0, 0, 1)]
    assert at[0] == at[1] and at[0] != at[2]
    again = new_transfer(content, style, config.replace(**SLICED, steps=3), extractor).run()
    np.testing.assert_array_equal(
        again, new_transfer(content, style, config.replace(**SLICED, steps=3), extractor).run()
    )


@pytest.mark.slow
def test_sliced_w2_style_masks_give_each_region_its_own_style(extractor, config, content, style):
    run, _ = _two_styles_in_halves(config.replace(**SLICED), extractor, content, style)
    weights = run.stage.targets.style_weights[0].numpy()
    count = run.stage.styles[0].shape[0] * run.stage.styles[0].shape[1]
    assert weights[0, count:].sum() == 0 and weights[1, :count].sum() == 0
    run.run(2)
    assert np.isfinite(run.result()).all()


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["gaussian_w2", "sliced_w2"])
def test_a_run_moves_towards_the_style(extractor, config, content, style, loss):
    run = new_transfer(content, style, config.replace(style_loss=loss, steps=20), extractor)
    first = float(run.stage.loss_terms()["style"])
    run.run()
    assert float(run.stage.loss_terms()["style"]) < 0.5 * first


def test_sliced_w2_refuses_tiles_in_one_sentence(config, content, style):
    objective = Objective(config.replace(**SLICED))
    with pytest.raises(ConfigError, match="sliced_w2 cannot be used with tiles, as it sorts"):
        TiledObjective(objective, 32)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["gaussian_w2", "sliced_w2"])
def test_a_batch_gets_what_its_images_get_alone(extractor, config, content, style, loss):
    settings = config.replace(style_loss=loss)
    other = content[::-1].copy()
    alone = [
        float(new_transfer(c, style, settings, extractor).stage.loss_terms()["style"])
        for c in (content, other)
    ]
    batch = new_transfer(np.stack([content, other]), style, settings, extractor)
    assert float(batch.stage.loss_terms()["style"]) == pytest.approx(sum(alone), rel=1e-4)
    stage = batch.stage
    _, gradient = stage.objective.terms_and_gradient(stage.image, stage.targets, None, 0)
    for image, together in zip((content, other), gradient.numpy()):
        single = new_transfer(image, style, settings, extractor).stage
        _, expected = single.objective.terms_and_gradient(single.image, single.targets, None, 0)
        scale = np.abs(expected).max()
        np.testing.assert_allclose(together / scale, expected[0] / scale, atol=1e-3)


# -- gaussian_w2 is zero at its target and never below, on the activations real runs give --

PAINTINGS = [os.path.join(SAMPLES, name) for name in ("the_scream.jpg", "shipwreck.jpg")]
STYLE_LAYERS = Config().style_layers


@pytest.fixture(scope="module", params=["float32", "mixed_bfloat16"])
def trained(request):
    """The HED VGG16's trained features (what a real run matches), in each precision, and
    the precision's Gram products."""
    from nst_tf.features import build_extractor
    from nst_tf.objective import gram_products

    config = Config(weights="hed", precision=request.param)
    extractor = build_extractor(STYLE_LAYERS, weights="hed", network="vgg16",
                                precision=request.param)  # fmt: skip
    return extractor, gram_products(config)


def _statistics(trained, path, size, masks=None):
    extractor, products = trained
    features = extractor(load_image(path, size)[None])
    return [losses.moments(features[name], masks, products) for name in STYLE_LAYERS]


def _w2(statistics, target):
    (mean, second), (target_mean, target_second) = statistics, target
    root = losses.covariance_root(target_mean, target_second)
    return losses.gaussian_w2(mean, second, target_mean, target_second, root).numpy()


# 64 px gives block5_conv1 16 positions for 512 channels: rank-deficient covariances.
@pytest.mark.slow
@pytest.mark.parametrize("size", [64, 512])
def test_gaussian_w2_of_a_painting_to_itself_is_zero(trained, size):
    for layer in _statistics(trained, PAINTINGS[0], size):
        assert np.abs(_w2(layer, layer)).max() < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("size", [64, 512])
def test_gaussian_w2_of_masked_regions_to_themselves_is_zero(trained, size):
    """Two regions (left and right of a soft edge), each matched against itself."""
    height, width = load_image(PAINTINGS[0], size).shape[:2]
    ramp = np.clip(np.linspace(-1.0, 2.0, width), 0.0, 1.0)[None, :].repeat(height, 0)
    regions = np.stack([ramp, 1.0 - ramp])[..., None].astype(np.float32)
    extractor, _ = trained
    features = extractor(load_image(PAINTINGS[0], size)[None])
    for name in STYLE_LAYERS:
        masks = at_layer(tf.constant(regions), features[name])
        region_stats = losses.moments(features[name], masks, trained[1])
        assert np.abs(_w2(region_stats, region_stats)).max() < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("size", [64, 512])
def test_gaussian_w2_of_a_blend_to_itself_is_zero_and_others_are_positive(trained, size):
    """The moments of a 3:1 mixture of two paintings, against themselves (zero) and against
    each painting and a photo (positive)."""
    first, second = (_statistics(trained, path, size) for path in PAINTINGS)
    photo = _statistics(trained, CONTENT_PATH, size)
    for a, b, p in zip(first, second, photo):
        blend = tuple(0.75 * x + 0.25 * y for x, y in zip(a, b))
        assert np.abs(_w2(blend, blend)).max() < 1e-6
        for other in (a, b, p):
            assert _w2(other, blend).min() > 1e-3


def _w2_float64(statistics, target):
    """`_w2` from the same moments by float64 eigendecompositions, as gaussian_w2 computed
    it before it ran in float32: [N]."""
    (mean, second), (target_mean, target_second) = (
        tuple(np.asarray(x, np.float64) for x in pair) for pair in (statistics, target)
    )
    cov = second - mean[:, :, None] * mean[:, None, :]
    target_cov = target_second - target_mean[:, :, None] * target_mean[:, None, :]
    epsilon = losses.COVARIANCE_REGULARIZATION * np.trace(target_cov[0]) / cov.shape[-1]
    target_cov = target_cov[0] + epsilon * np.eye(cov.shape[-1])
    root = _sqrtm(target_cov)
    distances = []
    for m, c in zip(mean, cov + epsilon * np.eye(cov.shape[-1])):
        cross = np.trace(_sqrtm(root @ c @ root))
        distances.append(np.sum((m - target_mean[0]) ** 2) + np.trace(c + target_cov) - 2 * cross)
    return np.array(distances) / np.trace(target_second[0])


def _sqrtm(m):
    values, vectors = np.linalg.eigh((m + m.T) / 2)
    return (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T


@pytest.mark.slow
@pytest.mark.parametrize("size", [64, 512])
def test_gaussian_w2_matches_float64_eigendecompositions(trained, size):
    """The photo and the other painting against a painting, a 3:1 blend of the two against
    the photo, and the photo's two masked regions against the painting, at every style
    layer: within 1e-5 of the distance's unit of the same distance from the same moments by
    float64 eigendecompositions (at most 4e-7 measured on 256 and 512 px features)."""
    painting, other = (_statistics(trained, path, size) for path in PAINTINGS)
    photo = _statistics(trained, CONTENT_PATH, size)
    height, width = load_image(CONTENT_PATH, size).shape[:2]
    ramp = np.clip(np.linspace(-1.0, 2.0, width), 0.0, 1.0)[None, :].repeat(height, 0)
    regions = tf.constant(np.stack([ramp, 1.0 - ramp])[..., None].astype(np.float32))
    extractor, products = trained
    features = extractor(load_image(CONTENT_PATH, size)[None])
    for name, p, o, target in zip(STYLE_LAYERS, photo, other, painting):
        masked = losses.moments(features[name], at_layer(regions, features[name]), products)
        blend = tuple(0.75 * x + 0.25 * y for x, y in zip(target, o))
        for statistics, against in ((p, target), (o, target), (blend, p), (masked, target)):
            ours, expected = _w2(statistics, against), _w2_float64(statistics, against)
            np.testing.assert_allclose(ours, expected, atol=1e-5, err_msg=name)
