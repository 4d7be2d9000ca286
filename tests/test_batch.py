"""Several content images stylized in one batch, sharing the style targets."""

import numpy as np
import pytest

from nst_tf.config import ConfigError
from tests.conftest import new_transfer


@pytest.fixture(scope="module")
def contents(content):
    return [content, content[::-1].copy(), np.roll(content, 20, axis=1)]


# Batched and single convolutions may round differently in the last bit, and early L-BFGS
# steps (no line search) amplify such differences about tenfold a step, so L-BFGS is compared
# after 3 steps. A history shared across the batch would already differ at the second step.
# Adam divides each pixel's step by the size of that pixel's own gradient, so in the few
# pixels whose gradient is as small as Adam's epsilon (a hundredth of the median) rounding
# differences move the pixel by a grey level or two in 6 steps. The Gaussian loss's float32
# polar factor passes the convolutions' last-bit differences on to its gradient magnified
# by the condition number of L^T R (losses.covariance_distance): over noise seeds 0 to 2,
# at most 2.4 grey levels, more than half a grey level in at most 1.3% of the pixels, and a
# mean difference of at most 0.064 (with float64 eigendecompositions: 0.76 and 0.005).
@pytest.mark.slow
@pytest.mark.parametrize(
    "optimizer,steps,atol,mean", [("lbfgs", 3, 0.01, 0.01), ("adam", 6, 3.0, 0.1)]
)
def test_batch_results_equal_single_results(
    extractor, config, contents, style, optimizer, steps, atol, mean
):
    config = config.replace(optimizer=optimizer, init_noise=0.1)
    together = new_transfer(contents, style, config, extractor).run(steps)
    assert together.shape == (3, *contents[0].shape)
    for image, alone in zip(contents, together):
        single = new_transfer(image, style, config, extractor).run(steps)
        assert np.abs(single - image).max() > 10  # the steps did change it
        np.testing.assert_allclose(alone, single, atol=atol)
        assert np.abs(alone - single).mean() < mean


def test_batch_loss_is_the_sum_of_the_single_losses(extractor, config, contents, style):
    batch = new_transfer(contents, style, config, extractor).stage.loss_terms()
    singles = [new_transfer(c, style, config, extractor).stage.loss_terms() for c in contents]
    for term in ("content", "style", "tv", "total"):
        assert float(batch[term]) == pytest.approx(sum(float(s[term]) for s in singles), rel=1e-4)


@pytest.mark.slow
def test_a_batch_runs_coarse_to_fine(extractor, config, contents, style):
    c = config.replace(multiscale="on", min_size=32, steps=2)
    pyramid = new_transfer(contents[:2], style, c, extractor)
    assert pyramid.run().shape == (2, *contents[0].shape)


def test_batch_needs_one_shape_and_no_masks(extractor, config, contents, style):
    with pytest.raises(ConfigError, match="batched content images must have one shape"):
        new_transfer([contents[0], contents[0][:, :40]], style, config, extractor)
    with pytest.raises(ConfigError, match="apply to one content image, not a batch"):
        new_transfer(contents, style, config, extractor, content_mask=np.ones((4, 6)))
