"""Shared fixtures: small real images and one random-weights VGG19 for the whole session."""

import os
import subprocess
import sys

import numpy as np
import pytest

from nst_tf import devices
from nst_tf.config import Config
from nst_tf.images import load_image

devices.split_cpu("cpu:2")  # two logical CPUs for test_devices.py, before TensorFlow starts

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "nst_tf", "samples")
CONTENT_PATH = os.path.join(SAMPLES, "chelsea.jpg")
STYLE_PATH = os.path.join(SAMPLES, "swirls.jpg")
# The test export: small limits, so over-limit requests are cheap to make.
EXPORT_SIZE, EXPORT_STEPS, MAX_STEPS, MAX_PIXELS = 64, 4, 50, 96 * 96


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m module args...` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="session")
def content() -> np.ndarray:
    return load_image(CONTENT_PATH, 64)


@pytest.fixture(scope="session")
def style() -> np.ndarray:
    return load_image(STYLE_PATH, 64)


@pytest.fixture(scope="session")
def config() -> Config:
    """Small and quick, with the default style loss. (Before its covariances were
    regularised, the Gaussian loss's gradient divided by the square roots of their tiny
    eigenvalues at this size, and turned rounding differences between two ways of
    computing the same step into visible ones, so this config matched Gram matrices.)"""
    return Config(size=64, steps=10, weights="random", precision="float32")


@pytest.fixture(scope="session")
def extractor(config):
    from nst_tf.features import build_extractor

    return build_extractor(config.content_layers + config.style_layers, weights="random")


@pytest.fixture(scope="session")
def export_path(tmp_path_factory) -> str:
    """A SavedModel written by the real export command, in another process."""
    root = tmp_path_factory.mktemp("models")
    result = run_module(
        "nst_tf.export_cli", f"--export_dir={root}", "--name=nst", "--version=3",
        "--weights=random", "--precision=float32", f"--size={EXPORT_SIZE}",
        f"--steps={EXPORT_STEPS}", f"--max_steps={MAX_STEPS}", f"--max_pixels={MAX_PIXELS}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return str(root / "nst" / "3")


@pytest.fixture(scope="session")
def served(export_path):
    """The export loaded the way TF Serving loads it."""
    from nst_tf.export import SessionModel

    model = SessionModel(export_path)
    yield model
    model.close()


def new_transfer(content, style, config, extractor=None, **inputs):
    """A StyleTransfer of these inputs (prepared by nst_tf.inputs.prepare, `inputs` its
    keyword arguments), sharing the session's network."""
    from nst_tf.inputs import prepare
    from nst_tf.transfer import StyleTransfer

    return StyleTransfer(prepare(config, content, style, **inputs), extractor)


def assert_same_gradient(tiled, whole) -> None:
    """A tiled gradient is the whole image's to float32's rounding, scaled by the largest
    element: each within 3e-5, on average within 2e-6. The covariances' square roots in the
    style loss amplify rounding, so sums taken in another order (tile by tile, or by
    another kernel) move single elements by about 1e-5; a tiling error moves them by 1e-2."""
    scale = float(np.max(np.abs(whole)))
    difference = np.abs(np.asarray(tiled) - np.asarray(whole)) / scale
    assert difference.max() <= 3e-5, difference.max()
    assert difference.mean() <= 2e-6, difference.mean()
