"""Shared fixtures: small real images and one random-weights VGG19 for the whole session."""

import os

import numpy as np
import pytest

from nst_tf.config import Config
from nst_tf.images import load_image

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "nst_tf", "samples")
CONTENT_PATH = os.path.join(SAMPLES, "chelsea.jpg")
STYLE_PATH = os.path.join(SAMPLES, "swirls.jpg")


@pytest.fixture(scope="session")
def content() -> np.ndarray:
    return load_image(CONTENT_PATH, 64)


@pytest.fixture(scope="session")
def style() -> np.ndarray:
    return load_image(STYLE_PATH, 64)


@pytest.fixture(scope="session")
def config() -> Config:
    return Config(size=64, steps=10, weights="random")


@pytest.fixture(scope="session")
def extractor(config):
    from nst_tf.features import build_extractor

    return build_extractor(config.content_layers + config.style_layers, weights="random")
