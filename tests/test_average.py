"""Iterate averaging (--average): the result is the bias-corrected moving average of the
images a scale went through, restarted at each scale."""

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import pyramid
from nst_tf.config import Config, ConfigError
from nst_tf.optimize import Average
from tests.conftest import new_transfer


def np_average(images, decay):
    """sum_k d^(n-k) (1-d) x_k / sum_k d^(n-k) (1-d), float64."""
    n = len(images) - 1
    weights = [decay ** (n - k) * (1 - decay) for k in range(n + 1)]
    return sum(w * x.astype(np.float64) for w, x in zip(weights, images)) / sum(weights)


def test_average_is_the_bias_corrected_moving_average():
    rng = np.random.default_rng(0)
    images = [rng.uniform(0, 255, (1, 4, 5, 3)).astype(np.float32) for _ in range(6)]
    average = Average.start(tf.constant(images[0]), 0.9)
    for image in images[1:]:
        average = average.add(tf.constant(image), 0.9)
    np.testing.assert_allclose(average.value(), np_average(images, 0.9), rtol=1e-5)


def test_decay_zero_is_the_latest_image():
    images = [np.full((1, 2, 2, 3), v, np.float32) for v in (10.0, 20.0, 30.0)]
    average = Average.start(tf.constant(images[0]), 0.0)
    for image in images[1:]:
        average = average.add(tf.constant(image), 0.0)
    np.testing.assert_array_equal(average.value(), images[-1])


@pytest.mark.slow
def test_the_result_is_the_average_of_the_steps_images(extractor, config, content, style):
    """The images averaged are the optimizer's results after each step (for L-BFGS the last
    image its line search accepted)."""
    run = new_transfer(content, style, config.replace(average=0.8, steps=5), extractor)
    stage = run.stage
    images = [stage.image.numpy()]
    run.run(
        callback=lambda _: images.append(stage.optimizer.result(stage.image, stage.state).numpy())
    )
    expected = np_average(images, 0.8)[0]
    np.testing.assert_allclose(run.result(), expected, atol=1e-3)
    assert np.abs(run.result() - images[-1][0]).mean() > 0.1  # not the last image


def test_the_average_restarts_at_each_scale_from_the_coarser_average(
    extractor, config, content, style
):
    settings = config.replace(average=0.8, size=64, min_size=32, multiscale="on", steps=3)
    run = new_transfer(content, style, settings, extractor)
    run.run(run.scales[0][1] - 1)
    coarse = run.stage
    run.step()  # the coarse scale's last step, then on to the finer scale
    assert run.scale == 1
    assert float(run.stage.average.weight) == pytest.approx(0.2)  # only its start image
    expected = pyramid.upsample(coarse.result(), run.stage.content)
    np.testing.assert_allclose(run.stage.image, expected, atol=1e-4)
    assert float(tf.reduce_mean(tf.abs(coarse.result() - coarse.image))) > 0.1


def test_average_must_be_below_one():
    with pytest.raises(ConfigError, match="average must be at least 0 and below 1"):
        Config(average=1.0)
