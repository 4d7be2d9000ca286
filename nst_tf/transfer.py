"""The run: coarse to fine, one Stage per scale, with one scale as its simplest case.

    transfer = StyleTransfer(prepare(config, "photo.jpg", "painting.jpg"))
    image = transfer.run(callback=lambda record: print(record.step, record.terms["total"]))

`stylize()` does both in one call. The command, the benchmarks and the export all follow
this schedule (nst_tf.pyramid); the export runs it in its graph.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from nst_tf import checkpoint, pyramid
from nst_tf.config import Config
from nst_tf.engine import NumericError, Stage, numeric_message
from nst_tf.images import resize
from nst_tf.inputs import Image, Inputs, prepare
from nst_tf.masks import Mask, fit
from nst_tf.objective import Objective
from nst_tf.tiles import for_image


@dataclasses.dataclass(frozen=True)
class Record:
    """What a callback hears after each step: the step (1 ... total_steps, counted across
    scales: each is one evaluation of the loss), the scale (0: the coarsest), the loss terms
    at the image evaluated, whether the optimizer accepted that image (L-BFGS's line search
    rejects a trial whose loss does not fall enough, and tries a shorter step; every image
    of a batch), and `image()`, the result after the step (computed only when called)."""

    step: int
    scale: int
    terms: dict[str, float]
    image: Callable[[], np.ndarray]
    accepted: bool = True


Callback = Callable[[Record], None]


class StyleTransfer:
    """A run over the scales of pyramid.scales(config), each seeded with the previous scale's result
    upsampled (bicubic), with the targets computed anew at each scale.

    `stage` is the scale being optimised (its image variable, targets, objective and
    `loss_terms()`); `step()` advances it by one step and moves on to the next scale when
    one is done. `steps_taken` counts the steps of every scale. With a tf.distribute
    `strategy` (nst_tf.devices), the tiles of a tiled scale are spread over its replicas.
    """

    def __init__(
        self,
        inputs: Inputs,
        extractor: keras.Model | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ):
        self.inputs = inputs
        self.config = inputs.config
        self.strategy = strategy
        self.objective = Objective(self.config, extractor)
        self.scales = pyramid.scales(self.config)
        self.total_steps = sum(steps for _, steps in self.scales)
        self.scale = 0
        self.stage = self._stage(0)

    def restart(self, inputs: Inputs) -> None:
        """Start over on new inputs with the same settings (the next frame of a clip). A run
        of one scale on inputs of the same shapes keeps its stage, and so does not trace or
        compile its step again."""
        if inputs.config != self.config:
            raise ValueError("restart takes inputs with the settings the run was made with")
        self.inputs, self.scale = inputs, 0
        self.stage = self._stage(0, reuse=self.stage if len(self.scales) == 1 else None)

    def _stage(
        self, scale: int, previous: tf.Tensor | None = None, reuse: Stage | None = None
    ) -> Stage:
        """The Stage of `scale`, starting from `previous` (a coarser result) upsampled, or
        from the start image at the coarsest scale; `reuse` restarted (Stage.restart) if
        its image has the shape of this one's and it has the same objective."""
        c, x = self.config, self.inputs
        size, steps = self.scales[scale]
        content, styles = pyramid.scale_inputs(c, x.content, x.styles, size)
        height, width = content.shape[1:3]
        content_mask = None if x.content_mask is None else fit(x.content_mask, height, width)
        style_masks = [fit(m, height, width) for m in x.style_masks]
        if previous is not None:
            start = pyramid.upsample(previous, content)
        else:
            start = pyramid.initial_image(
                c, content, x.init, styles, x.blend, content_mask, style_masks
            )
        objective = for_image(self.objective, height, width, x.masked, self.strategy)
        targets = objective.targets(
            content, [s[None] for s in styles], x.blend, content_mask, style_masks
        )
        if x.temporal is not None:
            targets = targets._replace(
                temporal=resize(x.temporal[None], height, width),
                temporal_mask=fit(x.temporal_mask, height, width)[None, ..., None],
            )
        if reuse is not None and reuse.objective is objective and reuse.image.shape == start.shape:
            reuse.restart(start, targets, content, styles)
            return reuse
        return Stage(c.replace(size=size, steps=steps), objective, targets, start, content, styles)

    @property
    def steps_taken(self) -> int:
        """Steps taken in all scales so far."""
        return self._steps_before(self.scale) + int(self.stage.steps_taken)

    def _steps_before(self, scale: int) -> int:
        return sum(steps for _, steps in self.scales[:scale])

    def step(self) -> Record:
        """One step of the current scale, then on to the next scale if that one is done.
        Raises NumericError, naming the term, if the loss or gradient stops being finite."""
        stage, scale, done = self.stage, self.scale, self.steps_taken
        before = stage.accepted_steps
        terms = {name: float(value) for name, value in stage.step().items()}
        accepted = stage.accepted_steps > before
        if int(stage.steps_taken) == done - self._steps_before(scale):
            raise NumericError(numeric_message(terms, done + 1))
        if int(stage.steps_taken) == self.scales[scale][1] and scale + 1 < len(self.scales):
            self.scale += 1
            self.stage = self._stage(self.scale, stage.result())
        return Record(done + 1, scale, terms, lambda: self._result(stage), accepted)

    def run(self, steps: int | None = None, callback: Callback | None = None) -> np.ndarray:
        """Step until `steps` steps in all (default: every scale's, `total_steps`), calling
        callback(record) after each; steps already taken (say, restored from a checkpoint)
        count. Returns the result, as `result()`. More steps than the run has are refused:
        its scales' steps come from config.steps."""
        total = steps or self.total_steps
        if total > self.total_steps:
            raise ValueError(
                f"this run has {self.total_steps} steps, not {total}: set config.steps "
                "(the coarsest scale's) for more"
            )
        while self.steps_taken < total:
            record = self.step()
            if callback is not None:
                callback(record)
        return self.result()

    def result(self) -> np.ndarray:
        """The current image, [H, W, 3] float32 in [0, 255] ([B, H, W, 3] for a batch), with
        the content's colours put back when config.preserve_colors is "luminance"."""
        return self._result(self.stage)

    def _result(self, stage: Stage) -> np.ndarray:
        images = pyramid.finish(self.config, stage.result(), stage.content).numpy()
        return images if self.inputs.batched else images[0]

    def save(self, directory: str) -> None:
        """Checkpoint the current scale's state and which scale it is (nst_tf.checkpoint)."""
        checkpoint.save(
            directory, self.stage.variables(), self.config, self.scale, self.steps_taken
        )

    def restore(self, directory: str) -> None:
        """Continue at the scale and step of the checkpoint in `directory`; the settings must
        match but for steps."""
        pointer = checkpoint.read(directory, self.config, len(self.scales))
        if pointer.scale != self.scale:
            self.scale, self.stage = pointer.scale, self._stage(pointer.scale)
        checkpoint.load(directory, pointer, self.stage.variables())


def stylize(
    content: Image | Sequence[Image],
    style: Image | Sequence[Image],
    config: Config | None = None,
    callback: Callback | None = None,
    content_mask: Mask | None = None,
    style_masks: Sequence[Mask] = (),
    extractor: keras.Model | None = None,
) -> np.ndarray:
    """Paint `content` in the style of `style` (one image or several); returns [H, W, 3]
    float32 in [0, 255] ([B, H, W, 3] for a batch of contents).

    Paths and arrays alike are resized: the content so its longest side is `config.size`,
    the styles to `pyramid.style_size`. Above 256 px it runs coarse to fine (pyramid.scales).
    Inputs and masks are as in nst_tf.inputs.prepare. `extractor`, optional, is a feature
    network from nst_tf.features.build_extractor to reuse (built from the config if not
    given).
    """
    inputs = prepare(config or Config(), content, style, content_mask, style_masks)
    return StyleTransfer(inputs, extractor).run(callback=callback)
