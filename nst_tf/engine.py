"""One scale of a run: the image variable, the optimizer's state and a guarded step.

A Stage is given its objective (plain or tiled: the same interface), targets and starting
image; nst_tf.transfer makes one per scale and moves from coarse to fine.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from nst_tf.config import Config
from nst_tf.objective import Objective, Targets, use_xla
from nst_tf.optimize import Average, finite, make_optimizer, update_variables
from nst_tf.tiles import TiledObjective


class NumericError(RuntimeError):
    """A loss term or the gradient became NaN or infinite; the image keeps its last finite value."""


# What to change, in Config's terms, when a term goes non-finite.
REMEDIES = {
    "content": "lower content_weight",
    "style": "lower style_weight",
    "tv": "lower tv_weight",
    "temporal": "lower temporal_weight",
    "total": "lower the loss weights",
    "gradient": "lower learning_rate or use optimizer=adam",
}

XLA_UPDATE_PIXELS = 256 * 256


def use_xla_update(config: Config, pixels: int, tiled: bool = False) -> bool:
    """Whether the optimizer update is compiled with XLA: with the loss, or with jit "auto"
    on CPU from XLA_UPDATE_PIXELS pixels up, for an image not computed in tiles. Fusing the
    update's passes over the L-BFGS history makes it faster (BENCHMARKS.md, precision
    suite); on smaller images the saving is too small to repay the one-off compile. A tiled
    image is one whose memory matters more than the update's speed, and XLA on CPU holds
    about fourteen image-sized float32 temporaries at once for the L-BFGS update, where
    TensorFlow's own kernels hold about two (BENCHMARKS.md, large suite)."""
    return use_xla(config) or (config.jit == "auto" and pixels >= XLA_UPDATE_PIXELS and not tiled)


class Stage:
    """One scale: targets computed once, an image variable, and `step`.

    `step()` evaluates the loss and gradient at the image (Objective.evaluate, compiled)
    and gives them to the optimizer (compiled) if they are finite, which sets the next image
    to evaluate; otherwise nothing changes. `steps_taken` counts the evaluations used (the
    run's budget), `accepted_steps` the optimizer's steps (fewer, when its line search
    rejects a trial); `result()` is the optimizer's result (for L-BFGS the last accepted
    image), or with config.average the moving average of its results (optimize.Average).
    `loss_terms()` evaluates the objective at the result without changing anything.
    """

    def __init__(
        self,
        config: Config,
        objective: Objective | TiledObjective,
        targets: Targets,
        start: tf.Tensor,
        content: tf.Tensor,
        styles: list[tf.Tensor],
    ):
        self.config = config
        self.objective = objective
        self.targets = targets
        self.content = content  # [B, H, W, 3]: this scale's content
        self.styles = styles  # [h, w, 3] each: this scale's styles
        self.image = tf.Variable(start, name="image")
        self.optimizer = make_optimizer(config)
        self.state = tf.nest.map_structure(
            lambda t: tf.Variable(t, trainable=False), self.optimizer.init(self.image)
        )
        self.steps_taken = tf.Variable(0, dtype=tf.int64, trainable=False, name="steps_taken")
        self.average = None
        if config.average:
            self.average = Average(*(tf.Variable(t, trainable=False)
                                     for t in Average.start(start, config.average)))  # fmt: skip
        pixels = int(np.prod(start.shape[:3]))
        tiled = isinstance(objective, TiledObjective)
        if not tiled:
            objective.trace_any_size(self.image, targets)
        self._update = tf.function(
            self._guarded_update,
            jit_compile=use_xla_update(config, pixels, tiled),
            autograph=False,
        )

    def restart(
        self, start: tf.Tensor, targets: Targets, content: tf.Tensor, styles: list[tf.Tensor]
    ) -> None:
        """Begin again from `start` towards `targets`, for `content` and `styles`, all of
        the shapes this stage was made with: the next frame of a clip, without tracing or
        compiling the step again."""
        self.targets, self.content, self.styles = targets, content, styles
        self.image.assign(start)
        fresh = self.optimizer.init(self.image)
        for variable, value in zip(tf.nest.flatten(self.state), tf.nest.flatten(fresh)):
            variable.assign(value)
        if self.average is not None:
            for variable, value in zip(self.average, Average.start(start, self.config.average)):
                variable.assign(value)
        self.steps_taken.assign(0)

    def step(self) -> dict[str, tf.Tensor]:
        """One loss evaluation and, if finite, one update; returns the terms at the image
        evaluated."""
        terms, loss, grad = self.objective.evaluate(
            self.image.value(), self.targets, None, self.steps_taken.value()
        )
        self._update(terms, loss, grad)
        return terms

    @property
    def accepted_steps(self) -> int:
        """The optimizer's steps so far (the fewest of any image of a batch)."""
        return int(tf.reduce_min(self.optimizer.steps(self.state)))

    def loss_terms(self) -> dict[str, tf.Tensor]:
        """The loss terms of `result()`."""
        return self.objective.terms(self.result(), self.targets)

    def result(self) -> tf.Tensor:
        """What this scale has made: the optimizer's result, or the moving average of its
        results (config.average)."""
        if self.average is None:
            return self.optimizer.result(self.image, self.state)
        return self.average.value()

    def _guarded_update(self, terms: dict[str, tf.Tensor], loss: tf.Tensor, grad: tf.Tensor):
        def update():
            update_variables(self.optimizer, self.image, grad, loss, self.state)
            if self.average is not None:
                result = self.optimizer.result(self.image, self.state)
                added = self.average.add(result, self.config.average)
                for variable, value in zip(self.average, added):
                    variable.assign(value)
            self.steps_taken.assign_add(1)
            return tf.constant(True)

        tf.cond(finite(terms, grad), update, lambda: tf.constant(False))

    def variables(self) -> tf.train.Checkpoint:
        """Everything that changes as it runs, for nst_tf.checkpoint."""
        average = {} if self.average is None else {"average": dict(self.average._asdict())}
        return tf.train.Checkpoint(
            image=self.image,
            state=dict(self.state._asdict()),
            steps_taken=self.steps_taken,
            **average,
        )


def numeric_message(terms: dict[str, float], step: int) -> str:
    """What went wrong at `step`, naming the first non-finite term, and what to change."""
    bad = next((k for k in REMEDIES if k in terms and not math.isfinite(terms[k])), None)
    what = f"the {bad} loss became {terms[bad]}" if bad else "the gradient became NaN or infinite"
    return (
        f"{what} at step {step}; the image is the last finite one. "
        f"Try again with settings that keep it finite: {REMEDIES[bad or 'gradient']}."
    )
