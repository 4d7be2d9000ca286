"""Painting a clip frame by frame, without flicker (Ruder et al., "Artistic style transfer
for videos", GCPR 2016: short-term consistency).

Painted on its own, each frame lands in a different optimum, and the strokes flicker. Here
the first frame is painted as a photo is, coarse to fine. Each later frame starts from the
painted frame before it, carried along the photo's optical flow (nst_tf.flow), and takes
`frame_steps` steps at the finest size, with the temporal loss (Config.temporal_weight)
pulling it towards that carried frame where the flow is trusted; elsewhere (what came into
view, motion boundaries) only the content and style losses act.

Ruder et al. start the untrusted pixels from the carried frame too; starting them from the
photo instead left what came into view half painted after the frame's steps, and the
temporal loss then kept it so in the frames after: on a 12-frame pan the colours measure
fell from 0.91 to 0.78 by the last frame, against 0.87 from the carried frame
(BENCHMARKS.md, video).

A frame continues from the previous frame as it was saved (rounded to 8 bits), so a run
resumed from the frames on disk paints the same frames as one that never stopped.

With config.init "fast" (`--video --init=fast`), the first frame starts from the
feed-forward network's picture (nst_tf.fast), as a photo does; each later frame starts from
the carried frame where the flow is trusted and from the network's picture of that frame
elsewhere, so what comes into view starts painted rather than smeared from its neighbours.

With `fast`, each frame is painted by the feed-forward network alone (nst_tf.fast): no
optimisation and no flow, about a second a frame. Each frame is painted on its own, so the
strokes flicker nearly as much as frames optimised one by one (BENCHMARKS.md, video).

    painter = ClipPainter("painting.jpg", Config(size=512))
    for frame in frames:  # RGB arrays [H, W, 3]
        painted = painter.paint(frame)
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from nst_tf import flow, pyramid
from nst_tf.config import FAST_INIT, FRAME_STEPS, MAX_INPUT_PIXELS, Config
from nst_tf.images import resize_longest, to_uint8
from nst_tf.inputs import Image, Inputs, prepare
from nst_tf.transfer import Callback, StyleTransfer


class ClipPainter:
    """Paints the frames of one clip in order: `paint(frame)` for each.

    `style` is one painting or several (mixed as config.style_blend says); frames are RGB
    arrays of one size, resized so the longest side is config.size. `extractor`, optional,
    is a feature network to reuse (nst_tf.features.build_extractor).
    """

    def __init__(
        self,
        style: Image | Sequence[Image],
        config: Config | None = None,
        frame_steps: int = FRAME_STEPS,
        extractor: keras.Model | None = None,
        max_input_pixels: int = MAX_INPUT_PIXELS,
        fast: bool = False,
    ):
        self.config = config or Config()
        self.fast = fast
        if fast or self.config.init == FAST_INIT:  # loaded now: WeightsError before any frame
            from nst_tf import fast as network

            network.network()
        self.frame_config = self.config.replace(steps=frame_steps, multiscale="off")
        self.style = style
        self.extractor = extractor
        self.max_input_pixels = max_input_pixels
        self.previous: tuple[np.ndarray, np.ndarray] | None = None  # (photo, painted)
        self._code = None  # the styles' code for the network, predicted once
        self._follower: StyleTransfer | None = None

    def scales(self) -> list[tuple[int, int]]:
        """(size, steps) of each scale the next frame will take (none with `fast`)."""
        if self.fast:
            return []
        return pyramid.scales(self.config if self.previous is None else self.frame_config)

    def continue_after(self, frame: np.ndarray, painted: np.ndarray) -> None:
        """Go on from a frame already painted (resuming a clip): `frame` is its photo and
        `painted` its painted frame as saved."""
        self.previous = (self._photo(frame), np.asarray(painted, np.float32))

    def paint(self, frame: np.ndarray, callback: Callback | None = None) -> np.ndarray:
        """The painted `frame`, uint8 [H, W, 3] at config.size; `callback` hears each step
        (nst_tf.transfer.Record)."""
        photo = self._photo(frame)
        if self.fast:
            from nst_tf import fast

            inputs = self._inputs(self.config, photo)
            return to_uint8(fast.stylize(inputs, self._style_code(inputs))[0]).numpy()
        if self.previous is None:
            transfer = StyleTransfer(self._inputs(self.config, photo), self.extractor)
            self.extractor = transfer.objective.extractor
        else:
            before, painted_before = self.previous
            move = flow.motion(before, photo)
            carried = np.clip(move.warp(painted_before), 0.0, 255.0)
            start = self.start(photo, carried, move.mask)
            inputs = self._inputs(self.frame_config, photo, start, carried, move.mask)
            if self._follower is None:
                self._follower = StyleTransfer(inputs, self.extractor)
            else:
                self._follower.restart(inputs)
            transfer = self._follower
        painted = to_uint8(transfer.run(callback=callback)).numpy()
        self.previous = (photo, painted.astype(np.float32))
        return painted

    def start(self, photo: np.ndarray, carried: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """A later frame's start: the frame before, carried along the flow; with init
        "fast", the network's start for this frame (fast.start) where the flow is not trusted."""
        if self.config.init != FAST_INIT:
            return carried
        from nst_tf import fast

        if self._code is None:  # the paintings read as a run reads them
            self._style_code(self._inputs(self.frame_config.replace(init="content"), photo))
        network = fast.start(photo[None], self._code)[0].numpy()
        return fast.frame_start(carried, network, mask[..., None])

    def _style_code(self, inputs: Inputs):
        """The network's code of the run's paintings, predicted for the first frame that
        needs it and kept for the clip."""
        from nst_tf import fast

        if self._code is None:
            self._code = fast.style_code(inputs.styles, inputs.blend)
        return self._code

    def _photo(self, frame: np.ndarray) -> np.ndarray:
        """A frame as the run sees it: float32, longest side config.size."""
        return resize_longest(np.asarray(frame, np.float32), self.config.size).numpy()

    def _inputs(self, config, photo, start=None, temporal=None, mask=None) -> Inputs:
        inputs = prepare(
            config, photo, self.style, init=start, temporal=temporal, temporal_mask=mask,
            max_input_pixels=self.max_input_pixels,
        )  # fmt: skip
        self.style = list(inputs.styles)  # read and resized once, for every frame
        return inputs
