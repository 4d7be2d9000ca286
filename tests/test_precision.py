"""Mixed precision and XLA: the same losses and steps as float32 without XLA, within rounding."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nst_tf import features
from nst_tf.engine import XLA_UPDATE_PIXELS, use_xla_update
from nst_tf.features import build_extractor, resolve_precision
from nst_tf.objective import Objective, loss_scale, use_xla
from nst_tf.optimize import history_dtype, make_optimizer
from tests.conftest import new_transfer

MIXED = ["mixed_bfloat16", "mixed_float16"]


@pytest.fixture(scope="module")
def noisy(content):
    rng = np.random.default_rng(1)
    return tf.constant(
        np.clip(content + rng.normal(0, 20, content.shape), 0, 255)[None], tf.float32
    )


def _terms_and_gradient(config, content, style, image):
    objective = Objective(config)
    targets = objective.targets(content[None], [style[None]])
    terms, grad = objective.terms_and_gradient(image, targets)
    return {k: float(v) for k, v in terms.items()}, grad.numpy()


@pytest.mark.slow
@pytest.mark.parametrize("precision", MIXED)
def test_mixed_precision_losses_and_gradient_are_close_to_float32(
    config, content, style, noisy, precision
):
    exact, exact_grad = _terms_and_gradient(config, content, style, noisy)
    mixed, mixed_grad = _terms_and_gradient(
        config.replace(precision=precision), content, style, noisy
    )
    assert all(np.isfinite(list(mixed.values())))
    assert mixed == pytest.approx(exact, rel=0.01)
    assert np.linalg.norm(mixed_grad - exact_grad) < 0.2 * np.linalg.norm(exact_grad)


@pytest.mark.parametrize("precision", MIXED)
def test_the_network_computes_in_16_bits_and_returns_float32(precision):
    """Under a mixed policy the frozen network keeps its weights in the compute dtype, the
    float32 weights rounded once: what a mixed layer's cast on each call would give."""
    extractor = build_extractor(["block1_conv1"], weights="random", precision=precision)
    exact = build_extractor(["block1_conv1"], weights="random", precision="float32")
    conv, float_conv = extractor.get_layer("block1_conv1"), exact.get_layer("block1_conv1")
    half = keras.DTypePolicy(precision).compute_dtype
    assert conv.compute_dtype == half and conv.kernel.dtype == half
    np.testing.assert_array_equal(conv.kernel, tf.cast(float_conv.kernel, half))
    np.testing.assert_array_equal(conv.bias, tf.cast(float_conv.bias, half))
    assert extractor(tf.zeros((1, 16, 16, 3)))["block1_conv1"].dtype == tf.float32


@pytest.mark.slow
@pytest.mark.parametrize("precision", MIXED)
def test_a_mixed_precision_run_ends_near_the_float32_loss(config, content, style, precision):
    def final_loss(cfg):
        transfer = new_transfer(content, style, cfg.replace(optimizer="adam"))
        transfer.run(8)
        exact = new_transfer(content, style, config)  # judged in float32
        exact.stage.image.assign(transfer.stage.image)
        return float(exact.stage.loss_terms()["total"])

    reference = final_loss(config)
    assert final_loss(config.replace(precision=precision)) == pytest.approx(reference, rel=0.02)


@pytest.mark.parametrize(
    "pixels,scale",
    [
        ((64, 64), 1.0),
        ((256, 256), 1.0),
        ((512, 512), 4.0),
        ((4096, 4096), 256.0),
        ((300, 451), 2.0),
    ],
)
def test_float16_loss_scale_grows_with_the_pixel_count(pixels, scale):
    assert float(loss_scale(tf.zeros((1, *pixels, 3)))) == scale


def test_jit_choices(config):
    assert use_xla(config.replace(jit="on")) and not use_xla(config.replace(jit="off"))
    devices = tf.config.list_logical_devices("GPU") + tf.config.list_logical_devices("TPU")
    assert use_xla(config.replace(jit="auto")) == bool(devices)
    auto, off = config.replace(jit="auto"), config.replace(jit="off")
    assert use_xla_update(auto, XLA_UPDATE_PIXELS) and not use_xla_update(off, 10**8)
    assert use_xla_update(auto, XLA_UPDATE_PIXELS - 1) == bool(devices)
    assert use_xla_update(auto, 10**8, tiled=True) == bool(devices)  # memory first


@pytest.mark.slow
def test_an_xla_step_equals_the_plain_step(extractor, config, content, style):
    plain = new_transfer(content, style, config.replace(jit="off"), extractor)
    xla = new_transfer(content, style, config.replace(jit="on"), extractor)
    for _ in range(2):
        a, b = plain.step().terms, xla.step().terms
        assert float(b["total"]) == pytest.approx(float(a["total"]), rel=1e-4)
    # The second L-BFGS step moves some pixels by ~170 grey levels along a direction built
    # from y = g1 - g0, the difference of two gradients one grey level apart, where the two
    # graphs' rounding (a millionth of the gradient) is a larger share: the images agree to
    # a thousandth of that step on average and to 5% of it in the worst pixel.
    moved = np.abs(plain.stage.image.numpy() - content).max()
    difference = np.abs(xla.stage.image.numpy() - plain.stage.image.numpy())
    assert difference.mean() < 1e-3 * moved and difference.max() < 0.05 * moved


@pytest.mark.parametrize(
    "flags,gpu,expected",
    [
        ({"avx2", "avx512_bf16"}, None, "mixed_bfloat16"),
        ({"avx2", "amx_bf16"}, None, "mixed_bfloat16"),
        ({"avx2", "avx512f"}, None, "float32"),
        (set(), (8, 0), "mixed_bfloat16"),
        ({"avx512_bf16"}, (7, 5), "float32"),
    ],
)
def test_auto_precision_is_bfloat16_where_the_hardware_runs_it_fast(
    monkeypatch, flags, gpu, expected
):
    monkeypatch.setattr(features, "cpu_flags", lambda: flags)
    gpus = [] if gpu is None else ["GPU:0"]
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: [])
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus)
    monkeypatch.setattr(
        tf.config.experimental, "get_device_details", lambda device: {"compute_capability": gpu}
    )
    assert resolve_precision("auto") == expected
    assert resolve_precision("float32") == "float32"


@pytest.mark.parametrize(
    "fast, precision, asked, expected",
    [
        (True, "auto", "auto", "bfloat16"),
        (False, "auto", "auto", "float32"),
        (True, "float32", "auto", "float32"),
        (False, "mixed_bfloat16", "auto", "bfloat16"),
        (True, "mixed_float16", "auto", "float32"),
        (True, "auto", "float32", "float32"),
        (False, "float32", "bfloat16", "bfloat16"),
    ],
)
def test_the_lbfgs_history_is_bfloat16_where_the_network_is(
    monkeypatch, config, fast, precision, asked, expected
):
    monkeypatch.setattr(features, "fast_bfloat16", lambda: fast)
    chosen = config.replace(precision=precision, lbfgs_history_dtype=asked)
    assert history_dtype(chosen) == expected
    state = make_optimizer(chosen).init(tf.zeros([1, 4, 4, 3]))
    assert state.s.dtype == state.y.dtype == tf.as_dtype(expected)
