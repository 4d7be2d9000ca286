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
# after 3 steps, every pixel to a hundredth of a grey level. A history shared across the
# batch would already differ at the second step.
# Adam moves each pixel by about its learning rate a step whatever the size of its gradient,
# so where a gradient is near zero a rounding difference can flip the step's sign: a few
# pixels end several grey levels apart while the rest agree. Where oneDNN's graph rewrites
# are on (CPUs with AVX-512 VNNI, BF16 or AMX), batched and single convolutions differ more:
# after 6 steps 1.4% of the pixels were more than a grey level apart (the most, 10.7) and
# the mean difference was 0.12, against 0.064 at most without them. Moments shared across
# the batch, or images mixed up, would move most pixels by many grey levels.
@pytest.mark.slow
@pytest.mark.parametrize(
    "optimizer,steps,grey,share,mean", [("lbfgs", 3, 0.01, 0.0, 0.01), ("adam", 6, 1.0, 0.03, 0.2)]
)
def test_batch_results_equal_single_results(
    extractor, config, contents, style, optimizer, steps, grey, share, mean
):
    """Each image of a batch ends as it does alone: at most `share` of its pixels more than
    `grey` grey levels apart, and a mean difference under `mean`."""
    config = config.replace(optimizer=optimizer, init_noise=0.1)
    together = new_transfer(contents, style, config, extractor).run(steps)
    assert together.shape == (3, *contents[0].shape)
    for image, alone in zip(contents, together):
        single = new_transfer(image, style, config, extractor).run(steps)
        assert np.abs(single - image).max() > 10  # the steps did change it
        difference = np.abs(alone - single)
        assert (difference > grey).mean() <= share
        assert difference.mean() < mean


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
