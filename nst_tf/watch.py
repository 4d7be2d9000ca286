"""Watching a run: TensorBoard summaries and a contact sheet of the saved iterations.

Both are step callbacks, `callback(step, terms)`, for `StyleTransfer.run`, with `image`
fed the current image whenever there is one worth keeping.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw
from tensorflow.core.framework import summary_pb2

from nst_tf.images import to_uint8


class TensorBoardLog:
    """Each loss term as a scalar every step, and images when given, under `logdir`.
    Called with a step's record (nst_tf.transfer.Record), it is a callback for `run`.

    Written with TensorFlow's own `tf.summary.write` and the metadata of TensorBoard's
    scalar and image plugins, so logging needs no TensorBoard install (viewing does).
    """

    def __init__(self, logdir: str):
        self.writer = tf.summary.create_file_writer(logdir)

    def __call__(self, record) -> None:
        with self.writer.as_default(step=record.step):
            for name, value in record.terms.items():
                tf.summary.write(f"loss/{name}", tf.constant(value, tf.float32), metadata=_SCALAR)

    def image(self, step: int, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        png = tf.io.encode_png(to_uint8(image))
        tensor = tf.stack([tf.as_string(width), tf.as_string(height), png])
        with self.writer.as_default(step=step):
            tf.summary.write("image", tensor, metadata=_IMAGE)

    def close(self) -> None:
        self.writer.close()


def _plugin(name: str) -> bytes:
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = name
    return metadata.SerializeToString()


_SCALAR = _plugin("scalars")
_IMAGE = _plugin("images")  # tensor [width, height, png...], as TensorBoard's image plugin reads


class ContactSheet:
    """Thumbnails of the iterations it is shown, laid out in a labelled grid."""

    def __init__(self, thumbnail: int = 256):
        self.thumbnail = thumbnail
        self.frames: list[tuple[int, Image.Image]] = []

    def add(self, step: int, image: np.ndarray) -> None:
        frame = Image.fromarray(to_uint8(image).numpy())
        frame.thumbnail((self.thumbnail, self.thumbnail), Image.Resampling.LANCZOS)
        self.frames.append((step, frame))

    def render(self, columns: int = 4) -> np.ndarray:
        """The sheet as an RGB array [H, W, 3] in [0, 255]: frames in order, step below each."""
        if not self.frames:
            raise ValueError("a contact sheet needs at least one image")
        label = 14
        cell_w = max(f.width for _, f in self.frames)
        cell_h = max(f.height for _, f in self.frames) + label
        columns = min(columns, len(self.frames))
        rows = -(-len(self.frames) // columns)
        sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), (255, 255, 255))
        draw = ImageDraw.Draw(sheet)
        for i, (step, frame) in enumerate(self.frames):
            x, y = (i % columns) * cell_w, (i // columns) * cell_h
            sheet.paste(frame, (x, y))
            draw.text((x + 2, y + frame.height + 1), f"step {step}", fill=(0, 0, 0))
        return np.asarray(sheet, np.float32)
