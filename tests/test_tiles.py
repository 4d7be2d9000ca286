"""Tiles: the loss and gradient of a large image computed tile by tile equal the whole
image's, so tiled optimisation leaves no seams."""

import numpy as np
import pytest
import tensorflow as tf

from nst_tf.config import Config, ConfigError
from nst_tf.images import load_image
from nst_tf.objective import Objective
from nst_tf.tiles import TiledObjective, layer_geometry, plan
from tests.conftest import CONTENT_PATH, STYLE_PATH, assert_same_gradient, new_transfer

# Layers up to block2: a receptive radius of 16 px, so 96 px images hold real halos.
SHALLOW = {"content_layers": ("block2_conv2",), "style_layers": ("block1_conv1", "block2_conv1")}
# test_style_losses.py tiles the Gaussian loss with masks and blends too.


def _setup(size, **layers):
    config = Config(size=size, weights="random", precision="float32", **layers)
    content, style = load_image(CONTENT_PATH, size), load_image(STYLE_PATH, size)
    objective = Objective(config)
    targets = objective.targets(content[None], [style[None]])
    noise = np.random.default_rng(0).normal(0, 30, content.shape)
    image = tf.constant(np.clip(content + noise, 0, 255)[None], tf.float32)
    return objective, targets, image


def _with_temporal(targets, image):
    """`targets` of a video frame: the temporal target a shifted copy of `image`, trusted
    on a random two thirds of the pixels."""
    rng = np.random.default_rng(1)
    mask = (rng.uniform(size=(1, *image.shape[1:3], 1)) < 2 / 3).astype(np.float32)
    return targets._replace(temporal=tf.roll(image, 3, axis=2), temporal_mask=tf.constant(mask))


@pytest.mark.parametrize(
    "size,tile,layers,temporal",
    [
        (96, 32, SHALLOW, False),
        (96, 32, SHALLOW, True),
        pytest.param(200, 64, {}, False, marks=pytest.mark.slow),
    ],
    ids=["96 px", "96 px, a video frame", "200 px"],
)
def test_tiled_loss_and_gradient_equal_the_whole_images(size, tile, layers, temporal):
    objective, targets, image = _setup(size, **layers)
    if temporal:
        targets = _with_temporal(targets, image)
    terms, grad = objective.terms_and_gradient(image, targets)
    tiled = TiledObjective(objective, tile)
    assert len(plan(*image.shape[1:3], tile, tiled.halo)) > 4
    tiled_terms, tiled_grad = tiled.terms_and_gradient(image, targets)
    assert ("temporal" in terms) == temporal
    for name in terms:
        assert float(tiled_terms[name]) == pytest.approx(float(terms[name]), rel=1e-5)
    for name, value in tiled.terms(image, targets).items():  # tile by tile, no gradient
        assert float(value) == pytest.approx(float(terms[name]), rel=1e-5)
    assert_same_gradient(tiled_grad, grad)


def test_tiles_are_traced_without_the_retracing_warning(caplog):
    objective, targets, image = _setup(96, **SHALLOW)
    with caplog.at_level("WARNING"):  # nine tiles: TF warns from the fifth trace by call
        TiledObjective(objective, 32).terms_and_gradient(image, targets)
    assert "retracing" not in caplog.text


def test_without_the_halo_the_gradient_is_wrong():
    objective, targets, image = _setup(96, **SHALLOW)
    _, grad = objective.terms_and_gradient(image, targets)
    tiled = TiledObjective(objective, 32)
    tiled.halo = 0
    _, wrong = tiled.terms_and_gradient(image, targets)
    assert float(tf.reduce_max(tf.abs(wrong - grad))) > 0.01 * float(tf.reduce_max(tf.abs(grad)))


def test_receptive_radius_and_strides():
    objective, _, _ = _setup(64)
    strides, halo = layer_geometry(objective.extractor)
    assert strides["block1_conv1"] == 1 and strides["block5_conv1"] == 16
    assert halo == 80  # block5_conv1 sees 156 px; half of it, up to the 16 px grid


def test_cores_cover_the_image_once():
    covered = np.zeros((100, 70), int)
    for tile in plan(100, 70, 32, 16):
        y0, y1, x0, x1 = tile.core
        covered[y0:y1, x0:x1] += 1
        ey0, ey1, ex0, ex1 = tile.extent
        assert ey0 <= y0 and y1 <= ey1 and ex0 <= x0 and x1 <= ex1
    assert np.all(covered == 1)


@pytest.mark.slow
def test_tiled_run_has_no_seams_and_matches_the_whole_image_run():
    config = Config(
        size=96, steps=4, weights="random", precision="float32", optimizer="adam",
        style_loss="gram", **SHALLOW,
    )  # fmt: skip
    # Gram: with the Gaussian loss 2 of the 18432 values end up to 1.1 grey levels apart
    # after 4 steps (float32 sums taken in another order, grown by the loss's gradient at
    # 96 px with two shallow layers), where this test allows 0.5.
    content, style = load_image(CONTENT_PATH, 96), load_image(STYLE_PATH, 96)
    whole = new_transfer(content, style, config.replace(tile_size=0))
    tiled = new_transfer(content, style, config.replace(tile_size=32), whole.objective.extractor)
    assert isinstance(tiled.stage.objective, TiledObjective)
    assert not isinstance(whole.stage.objective, TiledObjective)
    tiled_targets, whole_targets = tiled.stage.targets, whole.stage.targets
    for x, y in zip(
        tiled_targets.content + tiled_targets.style, whole_targets.content + whole_targets.style
    ):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-4 * float(tf.reduce_max(tf.abs(y))))
    a, b = whole.run(), tiled.run()
    # The gradients agree to 1e-4 of their largest value; Adam divides each pixel's step by
    # that pixel's own gradient's size, so where a gradient is small the difference shows, at
    # a few tenths of a grey level in a few pixels after 4 steps.
    np.testing.assert_allclose(b, a, atol=0.5)
    assert np.abs(b - a).mean() < 0.01
    # A seam would be a jump of the tiled result's deviation at the tile borders.
    jump = np.abs(np.diff(b - a, axis=1)).mean(axis=(0, 2))  # between columns x and x+1
    borders = np.arange(31, jump.size, 32)
    inside = np.setdiff1d(np.arange(jump.size), borders)
    assert jump[borders].mean() <= jump[inside].mean() + 1e-3


def test_masks_and_tiles_are_refused_together_when_the_objective_is_made():
    config = Config(size=96, tile_size=32, weights="random", precision="float32", **SHALLOW)
    content, style = load_image(CONTENT_PATH, 96), load_image(STYLE_PATH, 96)
    with pytest.raises(ConfigError, match="masks cannot be used with tiles: raise tile_size"):
        new_transfer(content, style, config, content_mask=np.ones((2, 3)))
    with pytest.raises(ConfigError, match="masks cannot be used with tiles"):
        TiledObjective(Objective(config), 32, masked=True)


def test_a_tiled_run_under_float16_scales_the_loss_as_the_whole_image_does():
    objective, targets, image = _setup(96, **SHALLOW)
    half = Objective(objective.config.replace(precision="mixed_float16"), objective.extractor)
    tiled = TiledObjective(half, 32)
    _, grad = half.terms_and_gradient(image, targets)
    _, tiled_grad = tiled.terms_and_gradient(image, targets)
    assert_same_gradient(tiled_grad, grad)
