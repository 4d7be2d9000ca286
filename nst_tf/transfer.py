"""The optimisation loop: a tf.Variable image updated by a tf.function-compiled step.

`StyleTransfer(content, style, config).run()` is the whole loop; `step()` is one iteration
(one loss-and-gradient evaluation and one update) for callers who drive the loop themselves.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from nst_tf.colors import keep_luminance_only, match_colors
from nst_tf.config import Config, ConfigError
from nst_tf.features import on_accelerator
from nst_tf.images import load_image, resize, resize_longest
from nst_tf.masks import Mask, check_masks, load_mask
from nst_tf.objective import Objective, Targets
from nst_tf.optimize import make_optimizer, update_variables
from nst_tf.tiles import TiledObjective

Image = str | np.ndarray  # a file path, or an RGB array [H, W, 3] in [0, 255]
Callback = Callable[[int, dict[str, float]], None]


class NumericError(RuntimeError):
    """A loss term or the gradient became NaN or infinite; the image keeps its last finite value."""


# What to change when a term goes non-finite.
_REMEDIES = {
    "content": "lower --content_weight",
    "style": "lower --style_weight",
    "tv": "lower --tv_weight",
    "total": "lower the loss weights",
    "gradient": "lower --learning_rate or use --optimizer=adam",
}


class StyleTransfer:
    """One stylization: targets computed once, an image variable, a compiled step.

    Embeddable: `step()` is a tf.function; `image` is the tf.Variable it updates;
    `loss_terms()` evaluates the objective at the current image without changing it;
    `steps_taken` counts the updates applied. A step whose loss or gradient is not finite
    changes nothing, so the image always holds the last finite iterate.
    """

    def __init__(
        self,
        content: Image | Sequence[Image],
        style: Image | Sequence[Image],
        config: Config | None = None,
        extractor: keras.Model | None = None,
        init: np.ndarray | None = None,
        content_mask: Mask | None = None,
        style_masks: Sequence[Mask] = (),
    ):
        """`content` is one image, or a batch (a list, or an array [B, H, W, 3]) of images of
        one shape after resizing, stylized together with shared style targets; `result()`
        then returns a batch. `style` is one image or several, mixed with
        config.style_blend; `init`, an image (or batch) of any size, replaces config.init as
        the start (resized bicubically to fit).

        `content_mask` (white: stylize, black: keep the photo) and `style_masks` (one per
        style: where it goes) are optional masks, see nst_tf.masks.
        """
        self.config = config or Config()
        styles = _as_list(style)
        contents = _contents(content, self.config.size)
        self.batched = _is_batch(content)
        check_masks(len(styles), style_masks, self.config.style_blend)
        if self.batched and (
            content_mask is not None or style_masks or self.config.preserve_colors == "histogram"
        ):
            raise ConfigError(
                "masks and preserve_colors=histogram apply to one content image, not a batch"
            )
        blend = self.config.normalized_style_blend(len(styles))
        self.objective = Objective(self.config, extractor)
        self.content = np.stack(contents) if self.batched else contents[0]
        self.styles = [_prepare(s, self.config.style_size) for s in styles]
        if self.config.preserve_colors == "histogram":
            self.styles = [match_colors(s, self.content) for s in self.styles]
        height, width = contents[0].shape[:2]
        self.tiles = None
        if self.config.tile_size and max(height, width) > self.config.tile_size:
            if content_mask is not None or style_masks:
                raise ConfigError("masks cannot be used with tiles: raise tile_size or set it to 0")
            self.tiles = TiledObjective(self.objective, self.config.tile_size)
        self.targets: Targets = (self.tiles or self.objective).targets(
            np.stack(contents),
            [s[None] for s in self.styles],
            blend,
            None if content_mask is None else load_mask(content_mask, height, width),
            [load_mask(m, height, width) for m in style_masks],
        )
        if init is None:
            start = np.stack([initial_image(self.config, c) for c in contents])
        else:
            start = resize(init, height, width, method="bicubic").numpy()
            start = start if start.ndim == 4 else start[None]
        self.image = tf.Variable(start, name="image")
        self.optimizer = make_optimizer(self.config)
        self.state = tf.nest.map_structure(
            lambda t: tf.Variable(t, trainable=False), self.optimizer.init(self.image)
        )
        self.steps_taken = tf.Variable(0, dtype=tf.int64, trainable=False, name="steps_taken")
        self._apply_update = tf.function(
            self._optimizer_step,
            jit_compile=use_xla_update(self.config, int(np.prod(start.shape[:3]))),
        )
        if self.tiles:
            self._update_compiled = tf.function(self._update)
            self.step = self._tiled_step
        else:
            self.step = tf.function(self._step, jit_compile=use_xla(self.config))
        self.loss_terms = tf.function(lambda: self.objective.terms(self.image, self.targets))

    def _step(self) -> dict[str, tf.Tensor]:
        """Evaluate the loss at the current image, then take one optimizer step if finite."""
        terms, grad = self.objective.terms_and_gradient(self.image, self.targets)
        self._update(terms, grad)
        return terms

    def _tiled_step(self) -> dict[str, tf.Tensor]:
        """`_step` for large images: the loss and gradient tile by tile (nst_tf.tiles)."""
        terms, grad = self.tiles.terms_and_gradient(self.image, self.targets)
        self._update_compiled(terms, grad)
        return terms

    def _update(self, terms: dict[str, tf.Tensor], grad: tf.Tensor) -> None:
        """One optimizer step from the current image, if the loss and gradient are finite."""
        finite = tf.reduce_all(
            [tf.reduce_all(tf.math.is_finite(t)) for t in (*terms.values(), grad)]
        )

        def update():
            self._apply_update(grad)
            return tf.constant(True)

        tf.cond(finite, update, lambda: tf.constant(False))

    def _optimizer_step(self, grad: tf.Tensor) -> None:
        """One optimizer step of the image and state variables along `grad`."""
        update_variables(self.optimizer, self.image, grad, self.state)
        self.steps_taken.assign_add(1)

    def run(self, steps: int | None = None, callback: Callback | None = None) -> np.ndarray:
        """Step until `steps` updates in all (default config.steps), calling callback(step, terms).

        Steps already taken (say, restored from a checkpoint) count towards `steps`. Returns
        the stylized image, [H, W, 3] float32 in [0, 255]. Raises NumericError, naming the
        term, if the loss or its gradient stops being finite.
        """
        total = steps or self.config.steps
        while (done := int(self.steps_taken)) < total:
            terms = {name: float(value) for name, value in self.step().items()}
            if int(self.steps_taken) == done:
                raise NumericError(_numeric_message(terms, done + 1))
            if callback is not None:
                callback(done + 1, terms)
        return self.result()

    def result(self) -> np.ndarray:
        """The current image, [H, W, 3] float32 in [0, 255] ([B, H, W, 3] for a batch), with
        the content's colours put back when config.preserve_colors is "luminance"."""
        images = self.image.numpy()
        if self.config.preserve_colors == "luminance":
            contents = self.content if self.batched else self.content[None]
            images = np.stack([keep_luminance_only(i, c) for i, c in zip(images, contents)])
        return images if self.batched else images[0]

    # -- checkpoints: everything needed to continue to the same result ----------------------

    def _checkpoint(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(
            image=self.image, state=dict(self.state._asdict()), steps_taken=self.steps_taken
        )

    def save(self, directory: str, **extra) -> None:
        """Write a checkpoint (image, optimizer state, steps taken, config) into `directory`.

        The files of the new checkpoint are written first and the pointer to them replaced
        atomically after, so an interruption at any moment leaves a complete checkpoint.
        """
        os.makedirs(directory, exist_ok=True)
        prefix = f"ckpt-{int(self.steps_taken)}-{os.getpid()}"
        self._checkpoint().write(os.path.join(directory, prefix))
        pointer = {
            "format": CHECKPOINT_FORMAT,
            "prefix": prefix,
            "config": _comparable(self.config),
            **extra,
        }
        old = _read_pointer(directory)
        tmp = os.path.join(directory, f".{CHECKPOINT_FILE}.tmp")
        with open(tmp, "w") as f:
            json.dump(pointer, f)
        os.replace(tmp, os.path.join(directory, CHECKPOINT_FILE))
        if old and old["prefix"] != prefix:
            for name in os.listdir(directory):
                if name.startswith(old["prefix"] + "."):
                    os.unlink(os.path.join(directory, name))

    def restore(self, directory: str) -> None:
        """Continue from a checkpoint written by `save`; the settings must match but for steps."""
        pointer = _read_pointer(directory)
        if pointer is None:
            raise ConfigError(f"{directory}: no checkpoint to resume from")
        if pointer.get("format") != CHECKPOINT_FORMAT:
            raise ConfigError(
                f"{directory}: the checkpoint was written by another version of nst_tf, "
                "whose saved state this one cannot read; start afresh"
            )
        ours = _comparable(self.config)
        if pointer["config"] != ours:
            changed = sorted(k for k in ours if pointer["config"].get(k) != ours[k])
            raise ConfigError(
                f"{directory}: the checkpoint was made with other settings ({', '.join(changed)})"
            )
        self._checkpoint().read(os.path.join(directory, pointer["prefix"])).assert_consumed()


class Pyramid:
    """Coarse to fine (config.scales): a StyleTransfer per scale, with targets recomputed at
    each scale, each seeded with the previous scale's result upsampled (bicubic).

    With one scale it is just a StyleTransfer. Steps are counted across scales: the
    callback sees 1 ... total_steps.
    """

    def __init__(
        self,
        content: Image,
        style: Image | Sequence[Image],
        config: Config | None = None,
        extractor: keras.Model | None = None,
        content_mask: Mask | None = None,
        style_masks: Sequence[Mask] = (),
    ):
        self.config = config or Config()
        # Read and decode files once, at the finest scale's sizes; coarser scales shrink these.
        styles = _as_list(style)
        check_masks(len(styles), style_masks, self.config.style_blend)
        contents = _contents(content, self.config.size)
        self.content = np.stack(contents) if _is_batch(content) else contents[0]
        self.styles = [_prepare(s, self.config.style_size) for s in styles]
        height, width = contents[0].shape[:2]
        self.content_mask = None if content_mask is None else load_mask(content_mask, height, width)
        self.style_masks = [load_mask(m, height, width) for m in style_masks]
        self.scales = self.config.scales
        self.total_steps = sum(steps for _, steps in self.scales)
        self.extractor = extractor or Objective(self.config).extractor
        self.level = 0
        self.transfer = self._scale(0)

    def _scale(self, level: int, init: np.ndarray | None = None) -> StyleTransfer:
        size, steps = self.scales[level]
        config = self.config.replace(size=size, steps=steps)
        if level:
            config = config.replace(init="content", init_noise=0.0)  # `init` takes over
        return StyleTransfer(
            self.content, self.styles, config, self.extractor, init,
            self.content_mask, self.style_masks,
        )  # fmt: skip

    @property
    def steps_taken(self) -> int:
        """Steps taken in all scales so far."""
        return self._steps_before(self.level) + int(self.transfer.steps_taken)

    def _steps_before(self, level: int) -> int:
        """Steps of all the scales coarser than `level`."""
        return sum(steps for _, steps in self.scales[:level])

    def run(self, callback: Callback | None = None) -> np.ndarray:
        """Run every remaining scale; returns the finest scale's result."""
        while True:
            offset = self._steps_before(self.level)
            self.transfer.run(
                callback=callback and (lambda step, terms, at=offset: callback(at + step, terms))
            )
            if self.level == len(self.scales) - 1:
                return self.result()
            self.level += 1
            self.transfer = self._scale(self.level, self.transfer.image.numpy())

    def result(self) -> np.ndarray:
        """The current scale's image, as StyleTransfer.result."""
        return self.transfer.result()

    def save(self, directory: str) -> None:
        """Checkpoint the current scale (see StyleTransfer.save) and which scale it is."""
        self.transfer.save(directory, level=self.level)

    def restore(self, directory: str) -> None:
        """Continue at the scale and step a checkpoint written by `save` was made at."""
        pointer = _read_pointer(directory)
        level = pointer.get("level", 0) if pointer else 0
        if not 0 <= level < len(self.scales):
            raise ConfigError(f"{directory}: the checkpoint was made with other scales")
        if level != self.level:
            self.level, self.transfer = level, self._scale(level)
        self.transfer.restore(directory)


CHECKPOINT_FILE = "checkpoint.json"
# The layout and meaning of the saved state; a change to it makes older checkpoints
# unusable, and restore says so rather than resuming wrongly. 2: the L-BFGS history became a
# ring; 3: the losses became relative errors, so an older history's curvature pairs are in
# other units.
CHECKPOINT_FORMAT = 3


def _read_pointer(directory: str) -> dict | None:
    try:
        with open(os.path.join(directory, CHECKPOINT_FILE)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def _comparable(config: Config) -> dict:
    """The settings a checkpoint must agree on: all but the number of steps."""
    fields = dataclasses.asdict(config)
    del fields["steps"]
    return json.loads(json.dumps(fields))  # tuples as lists, as they come back from JSON


def _numeric_message(terms: dict[str, float], step: int) -> str:
    bad = next(
        (k for k in ("content", "style", "tv", "total") if not math.isfinite(terms[k])), None
    )
    what = f"the {bad} loss became {terms[bad]}" if bad else "the gradient became NaN or infinite"
    return (
        f"{what} at step {step}; the image is the last finite one. "
        f"Try again with settings that keep it finite: {_REMEDIES[bad or 'gradient']}."
    )


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
    float32 in [0, 255].

    Paths and arrays alike are resized: the content so its longest side is `config.size`,
    the styles to `config.style_size`. Above 256 px it runs coarse to fine (config.scales).
    Masks, optional, are as in StyleTransfer. `extractor`, optional, is a feature network
    from nst_tf.features.build_extractor to reuse (built from the config if not given).
    """
    pyramid = Pyramid(content, style, config, extractor, content_mask, style_masks)
    return pyramid.run(callback=callback)


def use_xla(config: Config) -> bool:
    """Whether the step is compiled with XLA: jit "on", or "auto" with a GPU or TPU present
    (on CPU XLA made the step slower; BENCHMARKS.md)."""
    return config.jit == "on" or (config.jit == "auto" and on_accelerator())


XLA_UPDATE_PIXELS = 256 * 256


def use_xla_update(config: Config, pixels: int) -> bool:
    """Whether the optimizer update is compiled with XLA: with the step, or with jit "auto"
    on CPU from XLA_UPDATE_PIXELS pixels up. Fusing the update's passes over the L-BFGS
    history makes it faster (BENCHMARKS.md, precision suite); on smaller images the saving
    is too small to repay the one-off compile."""
    return use_xla(config) or (config.jit == "auto" and pixels >= XLA_UPDATE_PIXELS)


def initial_image(config: Config, content: np.ndarray) -> np.ndarray:
    """The starting image: the content, seeded uniform noise, flat grey, or an image file,
    with a fraction config.init_noise of the same seeded noise blended in."""
    height, width = content.shape[:2]
    noise = np.random.default_rng(config.seed).uniform(0.0, 255.0, content.shape)
    if config.init == "content":
        start = content
    elif config.init == "noise":
        start = noise
    elif config.init == "gray":
        start = np.full(content.shape, 127.5)
    else:
        start = resize(load_image(config.init), height, width).numpy()
    mixed = (1.0 - config.init_noise) * start + config.init_noise * noise
    return mixed.astype(np.float32)


def _as_list(style: Image | Sequence[Image]) -> list[Image]:
    return [style] if isinstance(style, str | np.ndarray) else list(style)


def _is_batch(content: Image | Sequence[Image]) -> bool:
    return isinstance(content, list | tuple) or getattr(content, "ndim", 0) == 4


def _contents(content: Image | Sequence[Image], size: int) -> list[np.ndarray]:
    """The content image(s), prepared; a batch must share one shape after resizing."""
    images = [_prepare(c, size) for c in (content if _is_batch(content) else [content])]
    shapes = sorted({f"{i.shape[1]}x{i.shape[0]}" for i in images})
    if len(shapes) > 1:
        raise ConfigError(
            f"batched content images must have one shape at size {size}, got "
            f"{' and '.join(shapes[:2])}: stylize them separately or crop them alike"
        )
    return images


def _prepare(image: Image, size: int) -> np.ndarray:
    """A path or array as RGB float32 [H, W, 3] in [0, 255] with longest side `size`."""
    if isinstance(image, str):
        return load_image(image, size)
    return resize_longest(np.asarray(image, dtype=np.float32), size).numpy()
