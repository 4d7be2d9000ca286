"""scripts/round_weights.py: a kernel rounded to a few values by one-dimensional k-means."""

import numpy as np

from scripts.round_weights import round_to_levels


def test_values_already_that_few_are_kept():
    values = np.repeat(np.linspace(-1, 1, 7, dtype=np.float32), 5).reshape(5, 7)
    np.testing.assert_array_equal(round_to_levels(values, 7), values)


def test_the_levels_fit_the_values_better_than_even_steps():
    values = np.random.default_rng(0).laplace(size=(3, 3, 64, 64)).astype(np.float32)
    rounded = round_to_levels(values, 16)
    assert rounded.shape == values.shape and rounded.dtype == values.dtype
    assert np.unique(rounded).size == 16
    even = np.linspace(values.min(), values.max(), 16)
    evenly = even[np.abs(values[..., None] - even).argmin(-1)]
    error = lambda r: np.sqrt(np.mean((r - values) ** 2))  # noqa: E731
    assert error(rounded) < 0.5 * error(evenly)  # dense where the values are
    # each value goes to its nearest level
    levels = np.unique(rounded)
    nearest = levels[np.abs(values[..., None] - levels).argmin(-1)]
    np.testing.assert_array_equal(rounded, nearest)
    # and is the mean of the values it stands for: k-means' fixed point
    for level in levels:
        assert np.isclose(values[rounded == level].mean(), level, rtol=1e-4, atol=1e-6)
