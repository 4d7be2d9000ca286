"""The optimisation loop: a tf.Variable image updated by a tf.function-compiled step.

`StyleTransfer(content, style, config).run()` is the whole loop; `step()` is one iteration
(one loss-and-gradient evaluation and one update) for callers who drive the loop themselves.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from nst_tf.config import Config
from nst_tf.images import load_image, resize, resize_longest
from nst_tf.objective import Objective, Targets
from nst_tf.optimize import make_optimizer

Image = str | np.ndarray  # a file path, or an RGB array [H, W, 3] in [0, 255]
Callback = Callable[[int, dict[str, float]], None]


class StyleTransfer:
    """One stylization: targets computed once, an image variable, a compiled step.

    Embeddable: `step()` is a tf.function; `image` is the tf.Variable it updates;
    `loss_terms()` evaluates the objective at the current image without changing it.
    """

    def __init__(
        self,
        content: Image,
        style: Image,
        config: Config | None = None,
        extractor: keras.Model | None = None,
    ):
        self.config = config or Config()
        self.objective = Objective(self.config, extractor)
        content_image = _prepare(content, self.config.size)
        style_image = _prepare(style, self.config.size)
        self.targets: Targets = self.objective.targets(content_image[None], style_image[None])
        self.image = tf.Variable(initial_image(self.config, content_image)[None], name="image")
        self.optimizer = make_optimizer(self.config)
        self.state = tf.nest.map_structure(
            lambda t: tf.Variable(t, trainable=False), self.optimizer.init(self.image)
        )
        self.step = tf.function(self._step)
        self.loss_terms = tf.function(lambda: self.objective.terms(self.image, self.targets))

    def _step(self) -> dict[str, tf.Tensor]:
        """Evaluate the loss at the current image, then take one optimizer step."""
        terms, grad = self.objective.terms_and_gradient(self.image, self.targets)
        state = tf.nest.map_structure(lambda v: v.read_value(), self.state)
        new_image, new_state = self.optimizer.update(self.image.read_value(), grad, state)
        self.image.assign(new_image)
        tf.nest.map_structure(lambda v, t: v.assign(t), self.state, new_state)
        return terms

    def run(self, steps: int | None = None, callback: Callback | None = None) -> np.ndarray:
        """Take `steps` steps (default: config.steps), calling callback(step, terms) after each.

        Returns the stylized image, [H, W, 3] float32 in [0, 255].
        """
        for i in range(1, (steps or self.config.steps) + 1):
            terms = self.step()
            if callback is not None:
                callback(i, {name: float(value) for name, value in terms.items()})
        return self.result()

    def result(self) -> np.ndarray:
        """The current image, [H, W, 3] float32 in [0, 255]."""
        return self.image.numpy()[0]


def stylize(
    content: Image,
    style: Image,
    config: Config | None = None,
    callback: Callback | None = None,
) -> np.ndarray:
    """Paint `content` in the style of `style`; returns [H, W, 3] float32 in [0, 255].

    Paths and arrays alike are resized so the longest side is `config.size`.
    """
    return StyleTransfer(content, style, config).run(callback=callback)


def initial_image(config: Config, content: np.ndarray) -> np.ndarray:
    """The starting image: the content, seeded uniform noise, flat grey, or an image file."""
    height, width = content.shape[:2]
    if config.init == "content":
        return content
    if config.init == "noise":
        rng = np.random.default_rng(config.seed)
        return rng.uniform(0.0, 255.0, content.shape).astype(np.float32)
    if config.init == "gray":
        return np.full(content.shape, 127.5, np.float32)
    return resize(load_image(config.init), height, width)


def _prepare(image: Image, size: int) -> np.ndarray:
    """A path or array as RGB float32 [H, W, 3] in [0, 255] with longest side `size`."""
    if isinstance(image, str):
        return load_image(image, size)
    return resize_longest(np.asarray(image, dtype=np.float32), size)
