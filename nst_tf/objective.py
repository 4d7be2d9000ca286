"""The style-transfer objective: targets computed once, then loss(image) and its gradient.

The interactive loop, the exported serving loop and the benchmarks all call this one
interface; nst_tf.tiles.TiledObjective is the same interface for images computed in tiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import keras
import tensorflow as tf

from nst_tf import losses, masks
from nst_tf.config import Config
from nst_tf.features import build_extractor, computes_in_bfloat16, on_accelerator

# Random directions sliced_w2 projects each style layer on per step.
SLICED_DIRECTIONS = 32


class Targets(NamedTuple):
    """What the image is pulled towards: content activations and style Gram matrices, the
    content's roughness (the total variation's unit), and with masks, where each style
    applies. With style_loss gaussian_w2 also the style's means and the square roots of its
    covariances; with sliced_w2 the style's activations, as weighted samples. For a video
    frame, the previous painted frame carried onto it (the temporal term)."""

    content: tuple[tf.Tensor, ...]  # one per content layer, [B, h, w, c]
    style: tuple[tf.Tensor, ...]  # one per style layer, [1, c, c], or [R, c, c] with regions
    content_tv: tf.Tensor  # [B]: each content image's roughness, at least ROUGHNESS_FLOOR
    regions: tuple[tf.Tensor, ...] = ()  # one per style layer, [R, h, w, 1] in [0, 1]
    styled: tf.Tensor | None = None  # [1, H, W, 1]: where any style applies (weights the TV)
    temporal: tf.Tensor | None = None  # video: the previous painted frame warped, [B, H, W, 3]
    temporal_mask: tf.Tensor | None = None  # [B, H, W, 1] in [0, 1]: where that warp holds
    style_mean: tuple[tf.Tensor, ...] = ()  # gaussian_w2: per style layer, [1 or R, c]
    style_root: tuple[tf.Tensor, ...] = ()  # gaussian_w2: Cholesky roots, [1 or R, c, c]
    style_samples: tuple[tf.Tensor, ...] = ()  # sliced_w2: every style's activations, [M, c]
    style_weights: tuple[tf.Tensor, ...] = ()  # sliced_w2: their weights, [1 or R, M]


class Units(NamedTuple):
    """What each relative loss term divides by, for one content image: the terms of
    recipes written in absolute units (other tools' weights) are these times ours, so their
    weights translate into ours by multiplying with them (scripts/benchmarks/time_to_quality.py)."""

    content: tuple[float, ...]  # per content layer: mean square of the content's activations
    style: tuple[float, ...]  # per style layer: squared norm of the style's Gram matrix
    channels: tuple[int, ...]  # per style layer: its channel count C (Gram matrices are C x C)
    tv: float  # the content's roughness


def units(targets: Targets) -> Units:
    """The Units of `targets` of one content image without masks."""
    return Units(
        content=tuple(float(losses.content_scale(t)[0]) for t in targets.content),
        style=tuple(float(tf.reduce_sum(tf.square(g))) for g in targets.style),
        channels=tuple(int(g.shape[-1]) for g in targets.style),
        tv=float(targets.content_tv[0]),
    )


class LossWeights(NamedTuple):
    """Multipliers of the loss terms (floats or scalar tensors)."""

    content: float | tf.Tensor
    style: float | tf.Tensor
    tv: float | tf.Tensor
    temporal: float | tf.Tensor = 0.0


def weighted(
    content: tf.Tensor,
    style: tf.Tensor,
    tv: tf.Tensor,
    weights: LossWeights,
    temporal: tf.Tensor | None = None,
) -> dict[str, tf.Tensor]:
    """The loss terms times their weights, and their sum: {content, style, tv, total}, and
    temporal with a temporal term (a video frame's)."""
    terms = {"content": weights.content * content, "style": weights.style * style,
             "tv": weights.tv * tv}  # fmt: skip
    if temporal is not None:
        terms["temporal"] = weights.temporal * temporal
    terms["total"] = tf.add_n(list(terms.values()))
    return terms


def temporal_term(image: tf.Tensor, targets: Targets) -> tf.Tensor | None:
    """The temporal loss of each image [B] (losses.temporal_error in units of the content's
    roughness), or None without a temporal target."""
    if targets.temporal is None:
        return None
    error = losses.temporal_error(image, targets.temporal, targets.temporal_mask)
    return error / targets.content_tv


class Evaluation(NamedTuple):
    """One evaluation of the objective at an image [B, H, W, 3]."""

    terms: dict[str, tf.Tensor]  # the weighted terms and their total, summed over the batch
    losses: tf.Tensor  # [B]: each image's total (what each image's line search compares)
    gradient: tf.Tensor  # d(total) / d(image)


def summed(per_image: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Each image's weighted terms [B] (from `weighted`) summed over the batch."""
    return {name: tf.reduce_sum(value) for name, value in per_image.items()}


def evaluation(per_image: dict[str, tf.Tensor], gradient: tf.Tensor) -> Evaluation:
    """The Evaluation of each image's weighted terms [B] (from `weighted`) and the gradient."""
    return Evaluation(summed(per_image), per_image["total"], gradient)


def gram_products(config: Config) -> str:
    """The dtype of the Gram matrices' products (losses.gram): bfloat16 for the Gram loss
    when the network computes in bfloat16, else float32 (float16's range is too small for
    them). gaussian_w2 takes the second moment less the mean's outer product, and a Gram
    matrix rounded to bfloat16's 8 bits leaves that covariance with negative eigenvalues of
    about a hundredth of its mean one: the distance of the style to itself would be below
    zero."""
    bfloat16 = computes_in_bfloat16(config.precision) and config.style_loss == "gram"
    return "bfloat16" if bfloat16 else "float32"


def use_xla(config: Config) -> bool:
    """Whether the loss and gradient are compiled with XLA: jit "on", or "auto" with a GPU
    or TPU present (on CPU XLA made the step slower; BENCHMARKS.md)."""
    return config.jit == "on" or (config.jit == "auto" and on_accelerator())


class Objective:
    """content_weight * content + style_weight * style + tv_weight * total variation, plus
    temporal_weight * temporal for a video frame (targets with a temporal target).

    `terms` and `evaluate` are tf.functions, XLA-compiled when `use_xla` says so; inside
    another tf.function (the exported graphs) they are inlined as calls.
    """

    def __init__(self, config: Config, extractor: keras.Model | None = None):
        self.config = config
        self.extractor = extractor or build_extractor(
            config.content_layers + config.style_layers,
            weights=config.weights,
            pooling=config.pooling,
            seed=config.seed,
            precision=config.precision,
            network=config.network_name,
        )
        self.weights = LossWeights(
            config.content_weight, config.style_weight, config.tv_weight, config.temporal_weight
        )
        self.layer_weights = config.normalized_style_layer_weights
        self.products = gram_products(config)
        jit = use_xla(config)
        self.terms = tf.function(self._terms, jit_compile=jit, autograph=False)
        self.evaluate = tf.function(self._evaluate, jit_compile=jit, autograph=False)

    def trace_any_size(self, image: tf.Tensor, targets: Targets) -> None:
        """Trace `evaluate` for images like `image` [B, H, W, 3] and targets like `targets`
        of any height and width, so that calls at every size (every scale of a run) run
        that one graph: tf.function calls a trace whose signature covers the call's, where
        a new size would be traced and its graph optimised anew (about 1.6 s on a 2-core
        CPU, eight steps at 256 px). Call `evaluate` with tensors, not variables, for this
        trace to serve it: a variable argument's trace keeps the variable's shape."""
        self.evaluate.get_concrete_function(
            any_size(image), tf.nest.map_structure(any_size, targets), None,
            tf.TensorSpec([], tf.int64),
        )  # fmt: skip

    def targets(
        self,
        content: tf.Tensor,
        styles: Sequence[tf.Tensor],
        blend: Sequence[float] | None = None,
        content_mask: tf.Tensor | None = None,
        style_masks: Sequence[tf.Tensor] = (),
    ) -> Targets:
        """Content activations and style Grams for images [1, H, W, 3] in [0, 255], and the
        content's roughness.

        Each style image may have its own size. Without style masks its Gram matrices are
        mixed with the `blend` weights (by default config.style_blend's, else equal), which
        is what matching several paintings at once means; with them, style i is matched
        inside style_masks[i] alone.
        A content mask limits the style (and the smoothing) to where it is white. Masks
        are [H, W] in [0, 1], the content's size.
        """
        blend = blend or self.config.normalized_style_blend(len(styles))
        content_features = self.extractor(content)
        per_style = [self.extractor(style) for style in styles]
        layers = self.config.style_layers
        # With style masks, one target per style, each in its own region; without, the
        # moments of the mixture of the styles' features.
        mix = None if style_masks else blend
        means, grams = [], []
        for name in layers:
            mean, gram = zip(*(losses.moments(f[name], products=self.products) for f in per_style))
            means.append(_combined(mean, mix))
            grams.append(_combined(gram, mix))
        areas = tf.stack(style_masks) if style_masks else None
        if content_mask is not None:
            areas = content_mask[None] if areas is None else areas * content_mask
        targets = moment_targets(
            self.config,
            [content_features[name] for name in self.config.content_layers],
            means,
            grams,
            content_roughness(content),
        )
        if self.config.style_loss == "sliced_w2":
            samples = [[tf.reshape(f[n], [-1, f[n].shape[-1]]) for f in per_style] for n in layers]
            targets = targets._replace(
                style_samples=tuple(tf.concat(s, axis=0) for s in samples),
                style_weights=tuple(_sample_weights(s, mix) for s in samples),
            )
        if areas is None:
            return targets
        areas = tf.cast(areas, tf.float32)[..., None]
        return targets._replace(
            regions=tuple(masks.at_layer(areas, content_features[n]) for n in layers),
            styled=tf.minimum(tf.reduce_sum(areas, axis=0, keepdims=True), 1.0),
        )

    def _terms(
        self,
        image: tf.Tensor,
        targets: Targets,
        weights: LossWeights | None = None,
        step: tf.Tensor | int = 0,
    ) -> dict[str, tf.Tensor]:
        """The weighted loss terms of `image` and their sum: {total, content, style, tv},
        summed over a batch. `step` (a tensor in a loop, so each value is not a new trace)
        seeds sliced_w2's directions."""
        return summed(self._image_terms(image, targets, weights, step))

    def _image_terms(self, image, targets, weights=None, step=0) -> dict[str, tf.Tensor]:
        """`terms` of each image of the batch, [B] each."""
        features = self.extractor(image)
        content = tf.add_n(
            [
                losses.content_error(features[name], target)
                for name, target in zip(self.config.content_layers, targets.content)
            ]
        ) / len(self.config.content_layers)
        style = tf.add_n(
            [
                layer_weight * self._style_loss(features[name], targets, i, step)
                for i, (name, layer_weight) in enumerate(
                    zip(self.config.style_layers, self.layer_weights)
                )
            ]
        )
        tv = losses.roughness(image, targets.styled) / targets.content_tv
        return weighted(content, style, tv, weights or self.weights, temporal_term(image, targets))

    def _style_loss(self, features: tf.Tensor, targets: Targets, layer: int, step) -> tf.Tensor:
        regions = targets.regions[layer] if targets.regions else None
        if self.config.style_loss == "sliced_w2":
            directions = losses.random_directions(
                features.shape[-1], SLICED_DIRECTIONS, self._seed(step, layer)
            )
            per_item = losses.sliced_w2(
                features, directions, targets.style_samples[layer], targets.style_weights[layer],
                regions,
            )  # fmt: skip
            return losses.region_sum(per_item, regions)
        mean, second = losses.moments(
            features, regions, self.products, with_mean=self.config.style_loss != "gram"
        )
        return losses.region_sum(style_distance(self.config, mean, second, targets, layer), regions)

    def _seed(self, step: tf.Tensor | int, layer: int) -> tf.Tensor:
        """The stateless seed of sliced_w2's directions at `step` and style layer `layer`."""
        seed = tf.stack([tf.constant(self.config.seed, tf.int32), tf.cast(step, tf.int32)])
        return tf.random.experimental.stateless_fold_in(seed, layer)

    def _evaluate(
        self,
        image: tf.Tensor,
        targets: Targets,
        weights: LossWeights | None = None,
        step: tf.Tensor | int = 0,
    ) -> Evaluation:
        """The loss terms, each image's loss and d(total)/d(image), the loss scaled by
        `gradient_scale` while differentiating."""
        scale = self.gradient_scale(image)
        with tf.GradientTape() as tape:
            tape.watch(image)
            per_image = self._image_terms(image, targets, weights, step)
            scaled = tf.reduce_sum(per_image["total"]) * scale
        return evaluation(per_image, tape.gradient(scaled, image) / scale)

    def terms_and_gradient(self, image, targets, weights=None, step=0):
        """The loss terms and the gradient of `evaluate`."""
        terms, _, gradient = self.evaluate(image, targets, weights, step)
        return terms, gradient

    def gradient_scale(self, image: tf.Tensor) -> tf.Tensor | float:
        """What the loss is multiplied by before differentiating, and the gradient divided
        by after: under mixed_float16 `loss_scale`, so small gradients do not underflow in
        the network's float16 backward pass; else 1."""
        return loss_scale(image) if self.config.precision == "mixed_float16" else 1.0


def any_size(value):
    """The TensorSpec of a tensor with an image's or a feature map's height and width
    ([B, H, W, C]) left open; any other value as it is."""
    if tf.is_tensor(value) and value.shape.rank == 4:
        return tf.TensorSpec([value.shape[0], None, None, value.shape[3]], value.dtype)
    return value


def moment_targets(
    config: Config,
    content: Sequence[tf.Tensor],
    means: Sequence[tf.Tensor],
    grams: Sequence[tf.Tensor],
    content_tv: tf.Tensor,
) -> Targets:
    """Targets from the content activations, the style's moments at each style layer and the
    content's roughness; for gaussian_w2 with the means and the covariances' square roots."""
    targets = Targets(content=tuple(content), style=tuple(grams), content_tv=content_tv)
    if config.style_loss != "gaussian_w2":
        return targets
    return targets._replace(
        style_mean=tuple(means), style_root=tuple(map(losses.covariance_root, means, grams))
    )


def style_distance(
    config: Config, mean: tf.Tensor | None, second: tf.Tensor, targets: Targets, layer: int
) -> tf.Tensor:
    """config.style_loss of an image's (or region's) statistics at style layer `layer`, the
    mean [N, C] (None for gram) and the Gram matrix [N, C, C], against the targets': [N]."""
    if config.style_loss == "gram":
        return losses.gram_distance(second, targets.style[layer])
    return losses.gaussian_w2(
        mean, second, targets.style_mean[layer], targets.style[layer], targets.style_root[layer]
    )


def _sample_weights(samples: Sequence[tf.Tensor], blend: Sequence[float] | None) -> tf.Tensor:
    """The weights of each style's samples [M_i, c] concatenated: with `blend`, one row [1, M],
    each style's blend weight spread over its samples (the mixture's distribution); with
    None, one row per style (region), its own samples alone."""
    counts = [tf.shape(s)[0] for s in samples]
    if blend is None:
        rows = [[tf.fill([n], 1.0 / tf.cast(n, tf.float32)) if i == j else tf.zeros([n])
                 for j, n in enumerate(counts)] for i in range(len(samples))]  # fmt: skip
        return tf.stack([tf.concat(row, axis=0) for row in rows])
    parts = [tf.fill([n], w / tf.cast(n, tf.float32)) for w, n in zip(blend, counts)]
    return tf.concat(parts, axis=0)[None]


def _combined(parts: Sequence[tf.Tensor], blend: Sequence[float] | None) -> tf.Tensor:
    """One statistic from each style's: their weighted sum with `blend` (for moments, the
    mixture's), or with None all of them stacked, one per region."""
    if blend is None:
        return tf.concat(parts, axis=0)
    return tf.add_n([w * part for w, part in zip(blend, parts)])


# The total variation is measured in units of the content's roughness; a flat content image
# (roughness 0) counts as rough as one grey level squared instead.
ROUGHNESS_FLOOR = 1.0


def content_roughness(content: tf.Tensor) -> tf.Tensor:
    """Each content image's roughness [B], the unit of the total-variation term."""
    return tf.maximum(losses.roughness(tf.convert_to_tensor(content, tf.float32)), ROUGHNESS_FLOOR)


def loss_scale(image: tf.Tensor) -> tf.Tensor:
    """A power of two proportional to the pixel count, at least 1: H*W / 256^2.

    The losses are means over positions, so the gradient reaching each activation shrinks as
    1 / (H*W); scaling by H*W / 256^2 keeps it at its size at 256 px, where float16 holds it
    (float16 gradients there are within a few percent of float32 ones; tests/test_precision).
    """
    shape = tf.shape(image)
    pixels = tf.cast(shape[1] * shape[2], tf.float32)
    return tf.pow(2.0, tf.maximum(0.0, tf.round(tf.math.log(pixels / 256.0**2) / tf.math.log(2.0))))
