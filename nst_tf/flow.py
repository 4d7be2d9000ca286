"""Optical flow between video frames, and where it can be trusted (Ruder et al., "Artistic
style transfer for videos", GCPR 2016).

The temporal loss pulls each painted frame towards the previous painted frame carried onto
it along the photo's motion. That needs, for every pixel of frame i, where it was in frame
i - 1 (the backward flow), and whether that is known: not where something comes out from
behind something else (a disocclusion) or at the edge of a moving object (a motion
boundary). OpenCV's DIS flow (Kroeger et al., ECCV 2016) stands in for the paper's DeepFlow:
it is in the opencv-python-headless wheel, needs no build, and takes a few milliseconds a
frame at 512 px.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

# Ruder et al.'s thresholds (section 3.1): a pixel is disoccluded where going forward and
# then back misses by more than DISOCCLUSION_RATIO of the motion's squared length plus
# DISOCCLUSION_FLOOR px^2, and on a motion boundary where the flow's squared gradient
# exceeds BOUNDARY_RATIO of its squared length plus BOUNDARY_FLOOR.
DISOCCLUSION_RATIO, DISOCCLUSION_FLOOR = 0.01, 0.5
BOUNDARY_RATIO, BOUNDARY_FLOOR = 0.01, 0.002


class Motion(NamedTuple):
    """How a frame follows the one before: `flow` [H, W, 2], for each pixel the offset
    (dx, dy) to where it was in the previous frame, and `mask` [H, W] float32, 1 where that
    is trusted and 0 at disocclusions and motion boundaries."""

    flow: np.ndarray
    mask: np.ndarray

    def warp(self, image: np.ndarray) -> np.ndarray:
        """An image of the previous frame [H, W, C] carried onto this frame."""
        return warp(image, self.flow)


def motion(previous: np.ndarray, frame: np.ndarray) -> Motion:
    """The Motion from `previous` to `frame`, RGB images [H, W, 3] in [0, 255] of one size."""
    first, second = _grey(previous), _grey(frame)
    forward = optical_flow(first, second)
    backward = optical_flow(second, first)
    return Motion(backward, consistency(forward, backward))


def optical_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """DIS optical flow from grey uint8 `first` to `second` [H, W]: [H, W, 2] float32, for
    each pixel of `first` the offset (dx, dy) to where it moves in `second`."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(first, second, None)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`image` [H, W, C] sampled at each pixel plus its `flow` offset (bilinear; outside the
    image, its nearest edge pixel), float32."""
    height, width = flow.shape[:2]
    x, y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(
        np.asarray(image, np.float32),
        x + flow[..., 0],
        y + flow[..., 1],
        interpolation=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    ).reshape(image.shape)


def consistency(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Ruder et al.'s mask for the second frame [H, W] float32 in {0, 1}, from the flow
    forward (first to second frame, on the first) and backward (second to first, on the
    second): 0 where the forward flow carried back along the backward one does not return
    (a disocclusion), where the backward flow changes fast (a motion boundary), and where it
    points outside the first frame (what came into view at its edges)."""
    returned = warp(forward, backward)  # the forward flow at where each pixel came from
    squared = lambda v: np.sum(np.square(v), axis=-1)  # noqa: E731
    miss = squared(returned + backward)
    disoccluded = miss > DISOCCLUSION_RATIO * (squared(returned) + squared(backward)) + (
        DISOCCLUSION_FLOOR
    )
    slope = sum(np.square(g) for c in range(2) for g in np.gradient(backward[..., c]))
    boundary = slope > BOUNDARY_RATIO * squared(backward) + BOUNDARY_FLOOR
    height, width = backward.shape[:2]
    x, y = np.meshgrid(np.arange(width), np.arange(height))
    source_x, source_y = x + backward[..., 0], y + backward[..., 1]
    outside = (source_x < 0) | (source_x > width - 1) | (source_y < 0) | (source_y > height - 1)
    return (~(disoccluded | boundary | outside)).astype(np.float32)


def _grey(image: np.ndarray) -> np.ndarray:
    """An RGB image in [0, 255] as grey uint8 (Rec. 601 luma), what DIS flow reads."""
    rgb = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
