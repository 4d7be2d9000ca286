"""Every input of a run, read and checked once: the images, masks, blend weights and start
image, their limits and their agreement with each other and with the Config.

`prepare` turns paths or arrays into `Inputs`, arrays at the finest scale's sizes; the
engine (nst_tf.transfer) works on these and reads no file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from nst_tf import pyramid
from nst_tf.config import FAST_INIT, INIT_CHOICES, MAX_INPUT_PIXELS, Config, ConfigError
from nst_tf.images import load_image, resize_longest
from nst_tf.masks import Mask, load_mask

Image = str | np.ndarray  # a file path, or an RGB array [H, W, 3] in [0, 255]


@dataclasses.dataclass(frozen=True)
class Inputs:
    """A run's inputs, prepared for `config`."""

    config: Config
    content: np.ndarray  # [B, H, W, 3] float32 in [0, 255], longest side config.size
    styles: tuple[np.ndarray, ...]  # [h, w, 3] each, longest side pyramid.style_size at config.size
    blend: tuple[float, ...]  # one weight per style, summing to 1
    batched: bool  # the content was a batch: results are [B, H, W, 3], else [H, W, 3]
    content_mask: np.ndarray | None = None  # [H, W] in [0, 1]: where the style applies
    style_masks: tuple[np.ndarray, ...] = ()  # [H, W] in [0, 1] each: where each style goes
    init: np.ndarray | None = None  # the start image (or batch), any size; None: config.init
    temporal: np.ndarray | None = None  # video: the previous painted frame warped, [H, W, 3]
    temporal_mask: np.ndarray | None = None  # [H, W] in [0, 1]: where that warp is trusted

    @property
    def masked(self) -> bool:
        return self.content_mask is not None or bool(self.style_masks)


def prepare(
    config: Config,
    content: Image | Sequence[Image],
    style: Image | Sequence[Image],
    content_mask: Mask | None = None,
    style_masks: Sequence[Mask] = (),
    init: Image | None = None,
    max_input_pixels: int = MAX_INPUT_PIXELS,
    temporal: np.ndarray | None = None,
    temporal_mask: np.ndarray | None = None,
) -> Inputs:
    """Read, resize and check a run's inputs; raises ConfigError or ImageError, one sentence.

    `content` is one image, or a batch (a list, or an array [B, H, W, 3]) of images of one
    shape after resizing, stylized together. `style` is one image or several, mixed with
    config.style_blend, or placed by `style_masks` (one per style). `content_mask` is white
    where the style applies. `init`, an image or batch of any size, replaces config.init as
    the start. Files of more than `max_input_pixels` pixels are refused before decoding.
    For a video frame, `temporal` [H, W, 3] and `temporal_mask` [H, W] (the content's size
    after resizing) are the previous painted frame carried onto this one by the optical flow
    and where that is trusted: the temporal loss pulls the image towards it there.
    """
    if max_input_pixels < 1:
        raise ConfigError(f"max_input_pixels must be at least 1, got {max_input_pixels}")
    styles = [style] if isinstance(style, str | np.ndarray) else list(style)
    blend = config.normalized_style_blend(len(styles))
    if style_masks and len(style_masks) != len(styles):
        raise ConfigError(f"{len(style_masks)} style masks given for {len(styles)} style images")
    if style_masks and config.style_blend is not None:
        raise ConfigError(
            "style_blend and style_masks exclude each other: the masks say which style goes where"
        )
    batched = isinstance(content, list | tuple) or getattr(content, "ndim", 0) == 4
    contents = [
        _read(c, config.size, max_input_pixels) for c in (content if batched else [content])
    ]
    shapes = sorted({f"{c.shape[1]}x{c.shape[0]}" for c in contents})
    if len(shapes) > 1:
        raise ConfigError(
            f"batched content images must have one shape at size {config.size}, got "
            f"{' and '.join(shapes[:2])}: stylize them separately or crop them alike"
        )
    masked = content_mask is not None or bool(style_masks)
    if batched and (masked or config.preserve_colors == "histogram"):
        raise ConfigError(
            "masks and preserve_colors=histogram apply to one content image, not a batch"
        )
    height, width = contents[0].shape[:2]

    def mask(m: Mask) -> np.ndarray:
        return load_mask(m, height, width, max_input_pixels)

    if (temporal is None) != (temporal_mask is None):
        raise ConfigError("a temporal target needs its mask, and a mask its target")
    if temporal is not None and (
        batched or temporal.shape != (height, width, 3) or temporal_mask.shape != (height, width)
    ):
        raise ConfigError(
            f"the temporal target must be one {width}x{height} image with a mask of that "
            f"size, the content's after resizing, got {temporal.shape} and {temporal_mask.shape}"
        )
    style_px = int(pyramid.style_size(config, config.size))
    styles = [_read(s, style_px, max_input_pixels) for s in styles]
    if init is None and config.init == FAST_INIT:
        from nst_tf import fast

        init = fast.start(np.stack(contents), fast.style_code(styles, blend)).numpy()
        init = init if batched else init[0]
    elif init is None and config.init not in INIT_CHOICES:
        init = config.init  # a path: Config checked that the file exists
    return Inputs(
        config=config,
        content=np.stack(contents),
        styles=tuple(styles),
        blend=blend,
        batched=batched,
        content_mask=None if content_mask is None else mask(content_mask),
        style_masks=tuple(mask(m) for m in style_masks),
        init=None if init is None else _read(init, None, max_input_pixels),
        temporal=None if temporal is None else np.asarray(temporal, np.float32),
        temporal_mask=None if temporal_mask is None else np.asarray(temporal_mask, np.float32),
    )


def _read(image: Image, size: int | None, max_input_pixels: int) -> np.ndarray:
    """A path or array as RGB float32 in [0, 255], longest side `size` (None: as it is)."""
    if isinstance(image, str):
        return load_image(image, size, max_input_pixels)
    array = np.asarray(image, dtype=np.float32)
    return array if size is None else resize_longest(array, size).numpy()
