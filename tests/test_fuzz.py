"""Fuzzing the two doors images come in by: the file loader and the serving decoder.

Random bytes and mutated real images (bit flips, truncation, spliced junk) must give a valid
image or a clean error, never a crash or another exception. CI runs a fixed budget; for a
long run by hand:

    NST_TF_FUZZ_EXAMPLES=20000 pytest tests/test_fuzz.py
"""

import io
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nst_tf.export import decode_image
from nst_tf.images import MIN_SIDE, ImageError, load_image
from tests.conftest import CONTENT_PATH

EXAMPLES = int(os.environ.get("NST_TF_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _seeds() -> list[bytes]:
    photo = Image.open(CONTENT_PATH).resize((40, 27))
    seeds = []
    for image, fmt in [(photo, "PNG"), (photo, "JPEG"), (photo.convert("P"), "GIF"),
                       (photo.convert("RGBA"), "PNG"), (photo.convert("L"), "JPEG"),
                       (photo, "WEBP"), (photo, "BMP")]:  # fmt: skip
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        seeds.append(buffer.getvalue())
    return seeds


SEEDS = _seeds()


@st.composite
def mutated_images(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "truncate", "splice"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[position:]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


inputs = st.one_of(st.binary(max_size=512), mutated_images())


@FUZZ
@given(data=inputs)
def test_loader_gives_an_image_or_a_clean_error(data):
    with tempfile.NamedTemporaryFile(suffix=".img") as f:
        f.write(data)
        f.flush()
        try:
            image = load_image(f.name, max_input_pixels=10_000_000)
        except ImageError:
            return
    assert image.dtype == np.float32 and image.ndim == 3 and image.shape[2] == 3
    assert min(image.shape[:2]) >= MIN_SIDE
    assert np.isfinite(image).all() and image.min() >= 0 and image.max() <= 255


_decode = tf.function(lambda data: decode_image(data, "content", 10_000_000))


@FUZZ
@given(data=inputs)
def test_serving_decoder_gives_an_image_or_invalid_argument(data):
    try:
        image = _decode(tf.constant(data)).numpy()
    except tf.errors.InvalidArgumentError:
        return
    assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= MIN_SIDE
    assert image.min() >= 0 and image.max() <= 255


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_the_unmutated_seeds_decode(seed):
    """The fuzz seeds themselves are valid, so mutations start from real images."""
    with tempfile.NamedTemporaryFile(suffix=".img") as f:
        f.write(SEEDS[seed])
        f.flush()
        assert load_image(f.name).shape == (27, 40, 3)
