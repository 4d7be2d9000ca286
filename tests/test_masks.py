"""Spatial control: a content mask and per-region styles, from the losses up to the command."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from nst_tf import losses
from nst_tf.config import ConfigError
from nst_tf.images import ImageError
from nst_tf.masks import load_mask
from tests.conftest import CONTENT_PATH, STYLE_PATH, new_transfer
from tests.test_cli import FAST, nst_tf

rng = np.random.default_rng(0)


def test_masked_gram_is_the_weighted_correlation_of_the_region():
    features = rng.normal(size=(1, 7, 5, 4)).astype(np.float32)
    masks = rng.uniform(size=(3, 7, 5, 1)).astype(np.float32)
    masks[2] = 0.0  # an empty region
    grams = losses.masked_gram(features, masks).numpy()
    flat = features[0].reshape(-1, 4).astype(np.float64)
    for region in range(2):
        weight = masks[region].reshape(-1).astype(np.float64)
        expected = (flat * weight[:, None]).T @ flat / weight.sum()
        np.testing.assert_allclose(grams[region], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(grams[2], 0.0)


def test_an_all_white_mask_changes_nothing_in_the_losses():
    features = rng.normal(size=(1, 6, 6, 4)).astype(np.float32)
    target = rng.normal(size=(1, 4, 4)).astype(np.float32)
    white = np.ones((1, 6, 6, 1), np.float32)
    np.testing.assert_allclose(
        losses.masked_style_loss(features, white, target),
        losses.style_loss(losses.gram(features), target),
        rtol=1e-6,
    )
    image = rng.uniform(0, 255, size=(1, 6, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(
        losses.total_variation(image, white), losses.total_variation(image), rtol=1e-6
    )
    assert float(losses.total_variation(image, 0 * white)) == 0.0


def _terms(transfer):
    return {name: float(value) for name, value in transfer.stage.loss_terms().items()}


def test_white_content_mask_is_no_mask(extractor, config, content, style):
    plain = new_transfer(content, style, config, extractor)
    white = new_transfer(content, style, config, extractor, content_mask=np.ones((10, 15)))
    assert _terms(white) == pytest.approx(_terms(plain), rel=1e-5)


def test_black_content_mask_leaves_the_content_loss_only(extractor, config, content, style):
    transfer = new_transfer(
        content, style, config.replace(init="noise", init_noise=0.0), extractor,
        content_mask=np.zeros(content.shape[:2]),
    )  # fmt: skip
    terms = _terms(transfer)
    assert terms["style"] == 0.0 and terms["tv"] == 0.0
    assert terms["total"] == terms["content"] > 0
    stage = transfer.stage
    _, grad = stage.objective.terms_and_gradient(stage.image, stage.targets)
    with tf.GradientTape() as tape:
        tape.watch(stage.image)
        features = stage.objective.extractor(stage.image)["block4_conv2"]
        content_only = config.content_weight * losses.content_loss(
            features, stage.targets.content[0]
        )
    np.testing.assert_allclose(grad, tape.gradient(content_only, stage.image), rtol=1e-5)


@pytest.mark.slow
def test_half_mask_stylizes_the_white_half_and_keeps_the_black_half(
    extractor, config, content, style
):
    height, width = content.shape[:2]
    mask = np.zeros((height, width))
    mask[:, width // 2 :] = 1.0
    transfer = new_transfer(content, style, config, extractor, content_mask=mask)
    change = np.abs(transfer.run(10) - content).mean(axis=(0, 2))
    kept, painted = change[: width // 4].mean(), change[-width // 4 :].mean()
    assert painted > 5 * kept, (kept, painted)


@pytest.mark.slow
def test_style_masks_match_each_style_inside_its_region(extractor, config, content, style):
    height, width = content.shape[:2]
    left = np.zeros((height, width))
    left[:, : width // 2] = 1.0
    other = content[::-1].copy()
    regions = new_transfer(
        content, [style, other], config, extractor, style_masks=[left, 1 - left]
    ).stage.targets
    for name, grams, masks in zip(config.style_layers, regions.style, regions.regions):
        singles = [
            new_transfer(content, s, config, extractor).stage.targets for s in (style, other)
        ]
        layer = config.style_layers.index(name)
        np.testing.assert_allclose(grams[0], singles[0].style[layer][0], rtol=1e-5)
        np.testing.assert_allclose(grams[1], singles[1].style[layer][0], rtol=1e-5)
        assert masks.shape[0] == 2
        np.testing.assert_allclose(tf.reduce_sum(masks, axis=0), 1.0, atol=1e-5)
    # One style with an all-white mask is the plain run.
    plain = new_transfer(content, style, config, extractor)
    masked = new_transfer(content, style, config, extractor, style_masks=[np.ones((4, 6))])
    assert _terms(masked) == pytest.approx(_terms(plain), rel=1e-5)


@pytest.mark.slow
def test_masks_follow_the_scales_of_a_pyramid(extractor, config, content, style):
    mask = np.zeros(content.shape[:2])
    pyramid = new_transfer(
        content, style, config.replace(multiscale="on", min_size=32, steps=2), extractor,
        content_mask=mask,
    )  # fmt: skip
    seen = []
    pyramid.run(callback=lambda record: seen.append((pyramid.stage.targets.styled.shape, record)))
    shapes = [tuple(shape[1:3]) for shape, _ in seen]
    assert sorted(set(shapes), key=shapes.index) == [(22, 32), (30, 45), (43, 64)]
    assert all(r.terms["style"] == r.terms["tv"] == 0.0 for _, r in seen)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"style_masks": [np.ones((8, 8))] * 2}, ConfigError, "2 style masks given for 1 style"),
        ({"content_mask": np.ones((8, 32))}, ImageError, "needs the content's aspect ratio"),
        ({"content_mask": np.full((8, 12), 2.0)}, ImageError, "must lie in [0, 1]"),
    ],
)
def test_bad_masks_are_refused(extractor, config, content, style, kwargs, error, message):
    with pytest.raises(error, match=message.replace("[", r"\[").replace("]", r"\]")):
        new_transfer(content, style, config, extractor, **kwargs)


def test_blend_and_style_masks_exclude_each_other(extractor, config, content, style):
    with pytest.raises(ConfigError, match="style_blend and style_masks exclude each other"):
        new_transfer(
            content, [style, style], config.replace(style_blend=(1, 2)), extractor,
            style_masks=[np.ones((8, 12))] * 2,
        )  # fmt: skip


def test_mask_files_are_read_as_grey_and_stretched(tmp_path):
    path = tmp_path / "mask.png"
    pixels = np.zeros((30, 45, 3), np.uint8)
    pixels[:, 30:] = 255
    Image.fromarray(pixels).save(path)
    mask = load_mask(str(path), 20, 30)
    assert mask.shape == (20, 30)
    assert mask[:, :18].max() == 0.0 and mask[:, 22:].min() == 1.0


@pytest.mark.slow
def test_masks_from_the_command(tmp_path):
    out, mask = tmp_path / "out.png", tmp_path / "mask.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 90, dtype=np.uint8), (60, 1))).save(mask)
    ok = nst_tf(
        f"--content={CONTENT_PATH}", f"--style={STYLE_PATH},{CONTENT_PATH}", f"--output={out}",
        *FAST, f"--content_mask={mask}", f"--style_masks={mask},{mask}",
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert out.exists()
