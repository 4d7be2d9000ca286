"""The style-transfer objective: targets computed once, then loss(image) and its gradient.

The interactive loop, the exported serving loop and the benchmarks all call this one object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import keras
import tensorflow as tf

from nst_tf import losses
from nst_tf.config import Config
from nst_tf.features import build_extractor


class Targets(NamedTuple):
    """What the image is pulled towards: content activations and style Gram matrices."""

    content: tuple[tf.Tensor, ...]  # one per content layer, [B, h, w, c]
    style: tuple[tf.Tensor, ...]  # one per style layer, [B, c, c]


class LossWeights(NamedTuple):
    """Multipliers of the three loss terms (floats or scalar tensors)."""

    content: float | tf.Tensor
    style: float | tf.Tensor
    tv: float | tf.Tensor


class Objective:
    """content_weight * content + style_weight * style + tv_weight * total variation."""

    def __init__(self, config: Config, extractor: keras.Model | None = None):
        self.config = config
        self.extractor = extractor or build_extractor(
            config.content_layers + config.style_layers,
            weights=config.weights,
            pooling=config.pooling,
            seed=config.seed,
        )
        self.weights = LossWeights(config.content_weight, config.style_weight, config.tv_weight)
        self._layer_weights = config.normalized_style_layer_weights

    def targets(
        self,
        content: tf.Tensor,
        styles: Sequence[tf.Tensor],
        blend: Sequence[float] | None = None,
    ) -> Targets:
        """Content activations and blended style Grams for images [1, H, W, 3] in [0, 255].

        Each style image may have its own size; its Gram matrices are mixed with the `blend`
        weights (equal by default), which is what matching several paintings at once means.
        """
        blend = blend or [1.0 / len(styles)] * len(styles)
        content_features = self.extractor(content)
        grams = [0.0] * len(self.config.style_layers)
        for style, weight in zip(styles, blend):
            features = self.extractor(style)
            for i, name in enumerate(self.config.style_layers):
                grams[i] += weight * losses.gram(features[name])
        return Targets(
            content=tuple(content_features[name] for name in self.config.content_layers),
            style=tuple(grams),
        )

    def terms(
        self, image: tf.Tensor, targets: Targets, weights: LossWeights | None = None
    ) -> dict[str, tf.Tensor]:
        """The weighted loss terms of `image` and their sum: {total, content, style, tv}."""
        w = weights or self.weights
        features = self.extractor(image)
        content = tf.add_n(
            [
                losses.content_loss(features[name], target)
                for name, target in zip(self.config.content_layers, targets.content)
            ]
        ) / len(self.config.content_layers)
        style = tf.add_n(
            [
                layer_weight * losses.style_loss(losses.gram(features[name]), target)
                for name, target, layer_weight in zip(
                    self.config.style_layers, targets.style, self._layer_weights
                )
            ]
        )
        terms = {
            "content": w.content * content,
            "style": w.style * style,
            "tv": w.tv * losses.total_variation(image),
        }
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms

    def terms_and_gradient(
        self, image: tf.Tensor, targets: Targets, weights: LossWeights | None = None
    ) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        """The loss terms and d(total)/d(image)."""
        with tf.GradientTape() as tape:
            tape.watch(image)
            terms = self.terms(image, targets, weights)
        return terms, tape.gradient(terms["total"], image)
