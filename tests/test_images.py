"""Image decoding of awkward files, and atomic writes."""

import io
import itertools
import os
import zlib
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from nst_tf import images
from nst_tf.images import ImageError, check_output_path, load_image, resize_longest, save_image

rng = np.random.default_rng(0)
RGB = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)


def write(tmp_path, name, image: Image.Image, **kwargs) -> str:
    path = str(tmp_path / name)
    image.save(path, **kwargs)
    return path


def test_rgb_png_round_trips_exactly(tmp_path):
    path = write(tmp_path, "a.png", Image.fromarray(RGB))
    out = load_image(path)
    assert out.dtype == np.float32 and out.shape == (20, 30, 3)
    np.testing.assert_array_equal(out, RGB)


@pytest.mark.parametrize(
    "mode,expected",
    [
        ("L", lambda g: np.repeat(g[..., None], 3, -1)),
        ("P", None),
        ("CMYK", None),
    ],
)
def test_other_modes_become_rgb(tmp_path, mode, expected):
    grey = RGB[..., 0]
    source = Image.fromarray(grey) if mode == "L" else Image.fromarray(RGB).convert(mode)
    ext = "jpg" if mode == "CMYK" else "png"
    out = load_image(write(tmp_path, f"a.{ext}", source))
    assert out.shape == (20, 30, 3)
    if expected:
        np.testing.assert_array_equal(out, expected(grey))


def test_sixteen_bit_grey_is_rescaled(tmp_path):
    deep = np.full((20, 20), 65535, np.uint16)
    deep[:, :10] = 0
    path = write(tmp_path, "deep.png", Image.fromarray(deep))
    out = load_image(path)
    assert out[0, 0, 0] == 0 and out[0, 15, 0] == 255


def test_alpha_is_composited_on_white(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent on the left, opaque on the right
    rgba[:, 10:, 3] = 255
    out = load_image(write(tmp_path, "a.png", Image.fromarray(rgba)))
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 15], [255, 0, 0])


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(RGB)  # 30 wide, 20 tall
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = write(tmp_path, "rotated.jpg", img, exif=exif)
    assert load_image(path).shape == (30, 20, 3)


def test_resizes_longest_side(tmp_path):
    path = write(tmp_path, "a.png", Image.fromarray(RGB))
    assert load_image(path, 60).shape == (40, 60, 3)
    assert load_image(path, 24).shape == (16, 24, 3)


def test_tiny_images_are_refused(tmp_path):
    path = write(tmp_path, "tiny.png", Image.fromarray(RGB[:8, :8]))
    with pytest.raises(ImageError, match="at least 16"):
        load_image(path)
    path = write(tmp_path, "four.png", Image.fromarray(RGB[:4, :4]))
    with pytest.raises(ImageError) as e:  # readable, just too small: said once, plainly
        load_image(path)
    assert str(e.value) == f"{path}: image is 4x4 pixels; each side must be at least 16"


def test_a_header_claiming_a_huge_image_gets_the_size_and_the_limit(tmp_path):
    """60000 x 60000 is past Pillow's own limit, which would refuse it in other words."""
    path = write(tmp_path, "claims.png", Image.fromarray(RGB))
    with open(path, "r+b") as f:  # IHDR width and height: big-endian at bytes 16 and 20
        data = bytearray(f.read())
        data[16:24] = (60000).to_bytes(4, "big") * 2
        data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # the chunk's CRC
        f.seek(0)
        f.write(data)
    with pytest.raises(ImageError) as e:
        load_image(path)
    assert str(e.value) == (
        f"{path}: image is 60000x60000 = 3600000000 pixels, over the limit of 100000000 "
        "(max_input_pixels)"
    )
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's limit is back for everyone else


def test_an_init_image_is_read_within_the_input_limit(tmp_path):
    from nst_tf.config import Config
    from nst_tf.inputs import prepare

    start = write(tmp_path, "start.png", Image.fromarray(RGB))
    config = Config(size=32, init=start, weights="random")
    with pytest.raises(ImageError, match="over the limit of 500"):
        prepare(config, RGB.astype(np.float32), RGB.astype(np.float32), max_input_pixels=500)
    assert prepare(config, RGB.astype(np.float32), RGB.astype(np.float32)).init.shape == RGB.shape


def test_save_formats_follow_the_extension(tmp_path):
    for ext, fmt in [(".png", "PNG"), (".jpg", "JPEG"), (".jpeg", "JPEG"), (".webp", "WEBP")]:
        path = str(tmp_path / f"out{ext}")
        save_image(path, RGB.astype(np.float32))
        with Image.open(path) as img:
            assert img.format == fmt and img.size == (30, 20)


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = str(tmp_path / "out.png")
    save_image(path, RGB.astype(np.float32))
    before = open(path, "rb").read()

    class FullDisk(io.FileIO):
        def write(self, data):
            super().write(data[:10])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(images.os, "fdopen", lambda fd, mode: FullDisk(fd, "w"))
    with pytest.raises(ImageError, match="No space left on device"):
        save_image(path, np.zeros((20, 30, 3), np.float32))
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["out.png"]


def test_unwritable_directory_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(images.os, "access", lambda path, mode: False)
    with pytest.raises(ImageError, match="not writable"):
        check_output_path(str(tmp_path / "out.png"))


def test_decoding_bytes_reads_as_the_file_does(tmp_path):
    from nst_tf.images import decode_image, encode_image

    path = tmp_path / "photo.png"
    save_image(str(path), RGB.astype(np.float32))
    data = path.read_bytes()
    np.testing.assert_array_equal(decode_image(data, "x", 24), load_image(str(path), 24))
    assert encode_image(RGB.astype(np.float32), ".png") == data  # what save_image writes
    with pytest.raises(ImageError, match="^gs://b/notes.jpg: not a readable image"):
        decode_image(b"not an image", "gs://b/notes.jpg")


def test_resize_longest_rounds_each_side_half_to_even():
    """Each side becomes side * size / longest rounded half to even (computed in integers,
    as a served graph must not compute in float64), at least 1 pixel."""
    for height, width, size in itertools.product(range(1, 21), range(1, 21), (7, 33)):
        longest = max(height, width)
        expected = [max(1, round(Fraction(side * size, longest))) for side in (height, width)]
        shape = resize_longest(np.zeros((height, width, 3), np.float32), size).shape
        assert list(shape[:2]) == expected, (height, width, size)
