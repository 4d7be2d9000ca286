"""The quality controls: several styles, style scale, colour preservation, starts, presets."""

import numpy as np
import pytest

from nst_tf import colors, pyramid, quality
from nst_tf.config import PRESETS, Config, ConfigError
from nst_tf.pyramid import initial_image
from tests.conftest import new_transfer

rng = np.random.default_rng(0)


def test_blend_one_zero_gives_the_first_style_alone(extractor, config, content, style):
    alone = new_transfer(content, style, config, extractor).stage.targets
    mixed = new_transfer(
        content, [style, content[::-1].copy()], config.replace(style_blend=(1.0, 0.0)), extractor
    ).stage.targets
    for a, b in zip(alone.style, mixed.style):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_blend_mixes_the_gram_matrices_linearly(extractor, config, content, style):
    other = content[::-1].copy()
    grams = [
        new_transfer(content, s, config, extractor).stage.targets.style[0] for s in (style, other)
    ]
    mixed = new_transfer(
        content, [style, other], config.replace(style_blend=(3.0, 1.0)), extractor
    ).stage.targets.style[0]
    np.testing.assert_allclose(mixed, 0.75 * grams[0] + 0.25 * grams[1], rtol=1e-5)


def test_blend_needs_one_weight_per_style(extractor, config, content, style):
    with pytest.raises(ConfigError, match="2 style blend weights given for 1 style images"):
        new_transfer(content, style, config.replace(style_blend=(1.0, 1.0)), extractor)


@pytest.mark.parametrize("scale,longest", [(1.0, 64), (0.5, 32), (2.0, 128)])
def test_style_scale_sets_the_style_size_fed_to_the_network(
    extractor, config, content, style, scale, longest
):
    transfer = new_transfer(content, style, config.replace(style_scale=scale), extractor)
    assert max(transfer.stage.styles[0].shape[:2]) == longest
    assert max(transfer.stage.content.shape[1:3]) == 64


def test_luminance_keeps_the_contents_chrominance(extractor, config, content, style):
    transfer = new_transfer(content, style, config.replace(preserve_colors="luminance"), extractor)
    transfer.run()
    raw = transfer.stage.result().numpy()[0]  # the optimised image, before the colours
    out = transfer.result()
    assert not np.allclose(raw, content, atol=1)  # the optimisation did change the image
    np.testing.assert_allclose(
        colors.rgb_to_yiq(out)[..., 1:], colors.rgb_to_yiq(content)[..., 1:], atol=0.5
    )
    # The stylized luminance is kept, except where the content's colour cannot be that bright
    # or that dark (outside the RGB cube): there it is clamped, never the colour.
    same_y = np.abs(colors.rgb_to_yiq(out)[..., 0] - colors.rgb_to_yiq(raw)[..., 0]) < 0.5
    assert same_y.mean() > 0.8


def test_yiq_round_trip():
    x = rng.uniform(0, 255, (5, 7, 3))
    np.testing.assert_allclose(colors.yiq_to_rgb(colors.rgb_to_yiq(x)), x, atol=1e-9)


def test_histogram_matching_gives_the_reference_mean_and_covariance(content, style):
    matched = colors.match_colors(style, content)
    mean, cov = colors.color_statistics(matched)
    want_mean, want_cov = colors.color_statistics(content)
    np.testing.assert_allclose(mean, want_mean, atol=0.5)  # clipping to [0, 255] moves a little
    np.testing.assert_allclose(cov, want_cov, rtol=0.05, atol=5)


def test_a_grey_image_is_recoloured_in_float32_as_in_float64(content, style):
    """A grey photo (or a grey painting under preserve_colors "histogram") has two zero
    colour variances, which float32 rounds to either side of 0: the map must not scale
    up the directions where the image does not vary."""
    grey = np.repeat(content @ quality.LUMA, 3).reshape(content.shape)
    wide = colors.match_colors(grey.astype(np.float64), style.astype(np.float64)).numpy()
    narrow = colors.match_colors(grey.astype(np.float32), style).numpy()
    assert np.isfinite(narrow).all()
    np.testing.assert_allclose(narrow, wide, atol=1.0)
    flat = colors.match_colors(np.full_like(content, 90.0), style)  # one colour: the mean
    np.testing.assert_allclose(
        flat, np.broadcast_to(colors.color_statistics(style)[0], content.shape), atol=1e-3
    )


def test_histogram_option_recolours_the_style_before_optimising(extractor, config, content, style):
    transfer = new_transfer(content, style, config.replace(preserve_colors="histogram"), extractor)
    np.testing.assert_allclose(
        colors.color_statistics(transfer.stage.styles[0])[0],
        colors.color_statistics(content)[0],
        atol=0.5,
    )


def test_init_noise_blends_seeded_noise_into_the_start(config, content):
    clean = initial_image(config, content[None])
    noise = initial_image(config.replace(init="noise"), content[None])
    half = initial_image(config.replace(init_noise=0.5), content[None])
    np.testing.assert_allclose(half, 0.5 * clean + 0.5 * noise, atol=1e-4)
    np.testing.assert_array_equal(
        initial_image(config.replace(init_noise=0.5), content[None]), half
    )


def test_mixture_statistics_are_those_of_the_pooled_pixels(content, style):
    """Weights 1/4 and 3/4 mix as one image beside three copies of another as large would."""
    other = 255.0 - style[::-1]
    mean, cov = colors.mixture_statistics([style, other], [0.25, 0.75])
    pooled = np.concatenate([style, other, other, other])
    want_mean, want_cov = colors.color_statistics(pooled)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-5)
    np.testing.assert_allclose(cov, want_cov, rtol=1e-4)


def test_recolored_start_is_the_photo_in_the_paintings_colours(config, content, style):
    """Each image of a batch is recoloured by its own affine map (match_colors, whose
    statistics are tested above), which keeps where the photo is light and dark."""
    batch = np.stack([content, content[:, ::-1] * 0.5])
    start = initial_image(config.replace(init="recolored"), batch, styles=[style]).numpy()
    for image, photo in zip(start, batch):
        np.testing.assert_allclose(image, colors.match_colors(photo, style), atol=1e-3)
    # the same colours, to float32 rounding of the 3 x 3 matrix roots (up to 0.002 grey
    # levels with AVX2's arithmetic)
    np.testing.assert_allclose(start[1], start[0][:, ::-1], atol=1e-2)
    light = np.corrcoef((start[0] @ quality.LUMA).ravel(), (content @ quality.LUMA).ravel())
    assert light[0, 1] > 0.5


def test_recolored_start_takes_the_blend_of_several_paintings(config, content, style):
    other = content[::-1].copy()
    blended = config.replace(init="recolored", style_blend=(1.0, 3.0))
    start = initial_image(blended, content[None], styles=[style, other])
    want = colors.match_statistics(
        content, *colors.mixture_statistics([style, other], [0.25, 0.75])
    )
    np.testing.assert_allclose(start[0], want, atol=1e-3)


def test_recolored_start_follows_the_masks(config, content, style):
    """The style masks say whose colours go where; where the content mask is black, where
    no style goes, the photo keeps its own."""
    other = content[::-1].copy()
    left = np.zeros(content.shape[:2], np.float32)
    left[:, :32] = 1.0
    everywhere = np.ones_like(left)
    start = initial_image(
        config.replace(init="recolored"), content[None], styles=[style, other],
        content_mask=left, style_masks=[everywhere, 1.0 - everywhere],
    )[0].numpy()  # fmt: skip
    in_style = colors.match_colors(content, style).numpy()
    np.testing.assert_allclose(start[:, :32], in_style[:, :32], atol=1e-3)
    np.testing.assert_allclose(start[:, 32:], content[:, 32:], atol=1e-3)


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_set_what_they_claim_and_overrides_win(name):
    config = Config.from_preset(name)
    for field, value in PRESETS[name].items():
        assert getattr(config, field) == value
    assert Config.from_preset(name, steps=7).steps == 7
    with pytest.raises(ConfigError, match="unknown preset"):
        Config.from_preset("monet")


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("style_scale", 0.0, "style_scale must be between"),
        ("init_noise", 1.5, "init_noise must be between 0 and 1"),
        ("preserve_colors", "sepia", "preserve_colors must be"),
        ("style_blend", (1.0, -1.0), "every style blend weight must be"),
        ("style_depth", 1.5, "style_depth must be between 0 and 1, got 1.5"),
        ("style_depth", float("nan"), "style_depth must be between 0 and 1"),
    ],
)
def test_bad_control_values_are_refused(field, value, message):
    with pytest.raises(ConfigError, match=message):
        Config(**{field: value})


def test_style_depth_runs_from_brushwork_to_forms():
    """0: blocks 1 and 2 alike, each deeper block a tenth of the one before; 1: every block
    alike; between, the deep blocks gain weight steadily. Explicit layer weights win."""

    def weights(depth):
        return Config(weights="random", style_depth=depth).normalized_style_layer_weights

    brushwork = np.array([1, 1, 0.1, 0.01, 0.001])
    assert weights(0.0) == pytest.approx(brushwork / brushwork.sum())
    assert weights(1.0) == pytest.approx([0.2] * 5)
    assert weights(0.5) == pytest.approx(np.array([1, 1, 0.1**0.5, 0.1, 0.1**1.5]) / 2.4479, 1e-4)
    deep = [weights(d)[-1] for d in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert deep == sorted(deep)
    explicit = Config(weights="random", style_depth=1.0, style_layer_weights=(1, 0, 0, 0, 1))
    assert explicit.normalized_style_layer_weights == (0.5, 0.0, 0.0, 0.0, 0.5)


def test_scales_are_sqrt2_apart_and_the_coarsest_takes_the_steps():
    assert pyramid.scales(Config(size=256)) == [(256, 160)]  # auto: one scale up to 256 px
    assert pyramid.scales(Config(size=512, multiscale="off")) == [(512, 160)]
    assert pyramid.scales(Config(size=512)) == [(256, 160), (362, 20), (512, 20)]  # from min_size
    scales = pyramid.scales(Config(size=512, steps=100, min_size=128))
    assert [size for size, _ in scales] == [128, 181, 256, 362, 512]
    assert [steps for _, steps in scales] == [100, 12, 12, 12, 12]  # an eighth, rounded
    assert pyramid.scales(Config(size=512, steps=2)) == [(256, 2), (362, 1), (512, 1)]


@pytest.mark.slow
def test_multiscale_runs_coarse_to_fine_and_ends_at_the_right_size(extractor, config, style):
    from tests.conftest import CONTENT_PATH

    c = config.replace(size=64, min_size=32, multiscale="on", steps=2)
    pyramid = new_transfer(CONTENT_PATH, style, c, extractor)
    seen = []
    result = pyramid.run(callback=lambda record: seen.append((record.step, record.scale)))
    assert pyramid.scales == [(32, 2), (45, 1), (64, 1)]
    assert [step for step, _ in seen] == list(range(1, 5))
    assert [level for _, level in seen] == [0, 0, 1, 2]
    assert result.shape == (43, 64, 3)  # the 451 x 300 photo at 64 px


@pytest.mark.slow
def test_each_scale_starts_from_the_previous_result_upsampled(extractor, config, content, style):
    from nst_tf.images import resize

    pyramid = new_transfer(content, style, config.replace(min_size=32, multiscale="on"), extractor)
    last = pyramid.scales[0][1]
    seen = {}
    pyramid.run(last, callback=lambda record: seen.setdefault(record.step, record.image()))
    coarse = seen[last]
    assert pyramid.scale == 1  # the first scale is done, the second one built
    expected = resize(coarse, *pyramid.stage.content.shape[1:3], method="bicubic").numpy()
    np.testing.assert_array_equal(pyramid.stage.image.numpy()[0], expected)
