"""Very large images: the loss and its exact gradient, computed tile by tile.

Memory for a step grows with the image: at 4096x4096 the activations VGG19 keeps for the
backward pass outgrow 24 GiB. Here the image is cut into square cores of `tile_size`
pixels, each run through the network with a halo of `halo` pixels around it: at least the
receptive radius of the deepest layer used, so the activations over the core are exactly
those of the whole image. Core corners lie on a 16-pixel grid, so pooling windows fall
where they fall for the whole image.

The style loss needs statistics of the whole image, its Gram matrices (and for
style_loss gaussian_w2 its means): sums over positions, so a step takes two passes. The
first, without a gradient, sums each core's share of them. Then dL/dG (and dL/dmean) is
known, and the second pass differentiates, tile by tile, the core's part of <dL/dG, G> (plus
<dL/dmean, mean>) plus its content loss and total variation: their gradients add up to the
gradient of the whole loss. The sliced loss sorts the whole image's activations, which
tiles cannot hold, and is refused. There are no seams to hide: the result is the whole
image's gradient, up to float rounding. Every loss term is computed tile by tile, so the
memory beyond one tile's network is the run's image-sized vectors and the optimizer update's.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from nst_tf import losses
from nst_tf.config import ConfigError
from nst_tf.objective import (
    Evaluation,
    LossWeights,
    Objective,
    Targets,
    content_roughness,
    evaluation,
    moment_targets,
    style_distance,
    summed,
    temporal_term,
    weighted,
)

ALIGN = 16  # the deepest layers' stride (VGG's block5, SqueezeNet's fire6 on): cores on this grid


class Tile(NamedTuple):
    """Rows [y0, y1) and columns [x0, x1) of a core, and of the core with its halo."""

    core: tuple[int, int, int, int]  # y0, y1, x0, x1
    extent: tuple[int, int, int, int]


def plan(height: int, width: int, tile_size: int, halo: int) -> list[Tile]:
    """Cores of tile_size (a multiple of ALIGN) covering the image, each with its halo."""
    tiles = []
    for y0 in range(0, height, tile_size):
        for x0 in range(0, width, tile_size):
            y1, x1 = min(y0 + tile_size, height), min(x0 + tile_size, width)
            extent = (max(0, y0 - halo), min(height, y1 + halo),
                      max(0, x0 - halo), min(width, x1 + halo))  # fmt: skip
            tiles.append(Tile((y0, y1, x0, x1), extent))
    return tiles


def layer_geometry(extractor: keras.Model) -> tuple[dict[str, int], int]:
    """Each output layer's stride (pixels per activation) and the receptive radius, in
    pixels, of the deepest one, rounded up to ALIGN."""
    strides, stride, field = {}, 1, 1
    for layer in extractor.layers:  # in order; a fire module's branches both count
        window = None
        if isinstance(layer, keras.layers.Conv2D):
            window = layer.kernel_size[0]
        elif isinstance(layer, keras.layers.MaxPooling2D | keras.layers.AveragePooling2D):
            window = layer.pool_size[0]
        if window is not None:
            field += (window - 1) * stride
            stride *= layer.strides[0]
        strides[layer.name] = stride
    names = extractor.output.keys() if isinstance(extractor.output, dict) else []
    return {name: strides[name] for name in names}, ALIGN * math.ceil(field / 2 / ALIGN)


def for_image(objective: Objective, height: int, width: int, masked: bool = False, strategy=None):
    """The objective for an image of this size: `objective` itself, or a TiledObjective on it
    (its tiles spread over `strategy`'s replicas) when the longest side exceeds
    config.tile_size (0: never)."""
    tile_size = objective.config.tile_size
    if tile_size and max(height, width) > tile_size:
        return TiledObjective(objective, tile_size, masked, strategy)
    return objective


class TiledObjective:
    """Objective's interface (targets, terms, terms_and_gradient) for images too large for
    one pass, with the same results (tests/test_tiles.py compares them). Its methods run
    tile by tile from Python: call them eagerly, not inside a tf.function.

    With a tf.distribute `strategy`, each pass over the tiles runs on every replica, each
    taking every n-th tile, and an all-reduce adds the replicas' sums: the same sums, added
    in another order (tests/test_devices.py)."""

    def __init__(self, objective: Objective, tile_size: int, masked: bool = False, strategy=None):
        if tile_size % ALIGN:
            raise ConfigError(f"tile_size must be a multiple of {ALIGN}, got {tile_size}")
        if masked:
            raise ConfigError("masks cannot be used with tiles: raise tile_size or set it to 0")
        if objective.config.style_loss == "sliced_w2":
            raise ConfigError(
                "style_loss=sliced_w2 cannot be used with tiles, as it sorts each layer's "
                "activations of the whole image: raise tile_size or use style_loss=gaussian_w2"
            )
        self.objective = objective
        self.config = objective.config
        self.weights = objective.weights
        self.tile_size = tile_size
        self.strategy = strategy
        self.strides, self.halo = layer_geometry(objective.extractor)
        self._features = tf.function(objective.extractor, autograph=False)
        self._tile_gradient = tf.function(self._tile_surrogate_gradient, autograph=False)

    def targets(self, content, styles, blend=None, content_mask=None, style_masks=()) -> Targets:
        """Objective.targets, each image run tile by tile (masks are refused on construction)."""
        blend = blend or self.config.normalized_style_blend(len(styles))
        content = tf.convert_to_tensor(content)
        c = self.config
        features = {name: None for name in c.content_layers}
        for tile, tile_features in self._tiles(content):
            for name in c.content_layers:
                core = self._core(tile_features[name], tile, name).numpy()
                if features[name] is None:
                    s = self.strides[name]
                    shape = (
                        core.shape[0],
                        content.shape[1] // s,
                        content.shape[2] // s,
                        core.shape[3],
                    )
                    features[name] = np.zeros(shape, np.float32)
                y0, y1, x0, x1 = (v // self.strides[name] for v in tile.core)
                features[name][:, y0:y1, x0:x1] = core
        means, grams = [0.0] * len(c.style_layers), [0.0] * len(c.style_layers)
        for style, weight in zip(styles, blend):  # the moments of the styles' mixture
            for i, (mean, gram) in enumerate(self._accumulate(style, with_mean=True)[0]):
                means[i] += weight * mean
                grams[i] += weight * gram
        return moment_targets(
            c,
            [tf.constant(features[name]) for name in c.content_layers],
            means,
            grams,
            content_roughness(content),
        )

    def _tiles(self, image):
        """Each tile of `image` with the activations of its extent."""
        for tile in plan(*image.shape[1:3], self.tile_size, self.halo):
            yield tile, _call_traced(self._features, _crop(image, tile.extent))

    def _accumulate(
        self, image: tf.Tensor, targets: Targets | None = None, with_mean: bool | None = None
    ) -> tuple[list, tf.Tensor, tf.Tensor]:
        """The whole image's statistics at each style layer, (mean or None, Gram matrix) as
        losses.moments (the mean when `with_mean`, by default when the style loss needs it),
        summed core by core; with `targets`, also its content loss (unweighted, averaged over
        the layers) and its total variation (unweighted)."""
        c = self.config
        if with_mean is None:
            with_mean = c.style_loss != "gram"
        size = tuple(image.shape[1:3])
        content_targets = targets.content if targets is not None else ()
        scales = [losses.content_scale(target) for target in content_targets]

        def sums(tiles: list[Tile]):
            """The tiles' shares: (mean or 0, Gram) per style layer, content, tv."""
            statistics = [(0.0, 0.0)] * len(c.style_layers)
            content, tv = 0.0, 0.0
            for tile in tiles:
                features = _call_traced(self._features, _crop(image, tile.extent))
                for i, name in enumerate(c.style_layers):
                    mean, gram = self._moments_share(features[name], tile, name, size, with_mean)
                    total_mean, total_gram = statistics[i]
                    mean = 0.0 if mean is None else mean
                    statistics[i] = (total_mean + mean, total_gram + gram)
                for name, target, scale in zip(c.content_layers, content_targets, scales):
                    core = self._core(features[name], tile, name)
                    content += self._content_sum(
                        core, self._target_core(target, tile, name), scale, name, size
                    )
                if targets is not None:
                    tv += _tv_share(_crop(image, tile.extent), tile, size, targets.content_tv)
            return tf.nest.map_structure(
                lambda v: tf.convert_to_tensor(v, tf.float32), (statistics, content, tv)
            )

        statistics, content, tv = self._spread(sums, plan(*size, self.tile_size, self.halo))
        statistics = [(mean if with_mean else None, gram) for mean, gram in statistics]
        return statistics, content / len(c.content_layers), tv

    def _spread(self, work, tiles: list[Tile]):
        """work(tiles): sums over tiles (a structure of tensors). With a strategy, each
        replica does work(its tiles: every n-th one) on its device and an all-reduce adds
        the results; a replica left without tiles does the first one, times 0."""
        if self.strategy is None:
            return work(tiles)
        replicas = self.strategy.num_replicas_in_sync

        def replica():
            i = int(tf.distribute.get_replica_context().replica_id_in_sync_group)
            if i >= len(tiles):
                return tf.nest.map_structure(lambda v: 0.0 * v, work(tiles[:1]))
            return work(tiles[i::replicas])

        per_replica = self.strategy.run(replica)
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def _style(self, statistics, targets: Targets) -> tuple[tf.Tensor, list]:
        """The style loss of each image [B] from the whole images' statistics, and the
        gradient of their sum by each (d/dmean or None, d/dGram) per style layer."""
        style, gradients = 0.0, []
        for layer, (mean, gram) in enumerate(statistics):
            weight = self.objective.layer_weights[layer]
            watched = [gram] if mean is None else [mean, gram]
            with tf.GradientTape() as tape:
                tape.watch(watched)
                loss = weight * style_distance(self.config, mean, gram, targets, layer)
                summed = tf.reduce_sum(loss)
            style += loss
            gradient = tape.gradient(summed, watched)
            gradients.append((None, *gradient) if mean is None else tuple(gradient))
        return style, gradients

    def terms(
        self, image: tf.Tensor, targets: Targets, weights: LossWeights | None = None, step=0
    ) -> dict[str, tf.Tensor]:
        """Objective.terms, tile by tile (`step` seeds nothing here: sliced_w2 is refused)."""
        image = tf.convert_to_tensor(image)
        statistics, content, tv = self._accumulate(image, targets)
        style, _ = self._style(statistics, targets)
        w = weights or self.weights
        return summed(weighted(content, style, tv, w, temporal_term(image, targets)))

    def terms_and_gradient(self, image, targets, weights=None, step=0):
        """The loss terms and the gradient of `evaluate`."""
        terms, _, gradient = self.evaluate(image, targets, weights, step)
        return terms, gradient

    def evaluate(
        self, image: tf.Tensor, targets: Targets, weights: LossWeights | None = None, step=0
    ) -> Evaluation:
        """Objective.evaluate, in two passes over the tiles."""
        w = weights or self.weights
        image = tf.convert_to_tensor(image)
        height, width = size = tuple(image.shape[1:3])
        # Pass 1: style statistics, content loss and total variation of the whole image,
        # core by core.
        statistics, content, tv = self._accumulate(image, targets)
        style, upstream = self._style(statistics, targets)
        # d loss / d (mean, Gram) per style layer, weights included
        upstream = [tuple(None if g is None else w.style * g for g in u) for u in upstream]
        scale = self.objective.gradient_scale(image)
        # Pass 2: each tile's share of the gradient, added where the tile lies.
        content_targets = tuple(targets.content)
        content_scales = tuple(losses.content_scale(target) for target in content_targets)

        def gradient_of(tiles: list[Tile]) -> tf.Tensor:
            gradient = np.zeros(image.shape, np.float32)
            for tile in tiles:
                y0, y1, x0, x1 = tile.extent
                gradient[:, y0:y1, x0:x1] += _call_traced(
                    self._tile_gradient,
                    _crop(image, tile.extent),
                    tuple(
                        self._target_core(t, tile, n)
                        for n, t in zip(self.config.content_layers, content_targets)
                    ),
                    content_scales,
                    tuple(upstream),
                    targets.content_tv,
                    tf.constant(w.content, tf.float32),
                    tf.constant(w.tv, tf.float32),
                    tf.constant(scale, tf.float32),
                    tile,
                    size,
                ).numpy()
            return tf.constant(gradient)

        gradient = self._spread(gradient_of, plan(height, width, self.tile_size, self.halo))
        # The temporal term compares pixels, not features: it is taken on the whole image.
        with tf.GradientTape() as tape:
            tape.watch(image)
            temporal = temporal_term(image, targets)
            summed_temporal = None if temporal is None else tf.reduce_sum(temporal)
        if temporal is not None:
            gradient += w.temporal * tape.gradient(summed_temporal, image)
        return evaluation(weighted(content, style, tv, w, temporal), gradient)

    def _tile_surrogate_gradient(
        self, crop, content_targets, scales, upstream, content_tv, content_weight, tv_weight,
        loss_scale, tile, size,
    ):  # fmt: skip
        """Gradient of the tile's part of the loss: its content loss and total variation, and
        <dL/dG, its share of the Gram matrices> (plus <dL/dmean, its share of the means>)
        with the upstream gradients held fixed; scaled by `loss_scale` while the network
        differentiates (see Objective.gradient_scale)."""
        c = self.config
        with tf.GradientTape() as tape:
            tape.watch(crop)
            features = self.objective.extractor(crop)
            part = tv_weight * tf.reduce_sum(_tv_share(crop, tile, size, content_tv))
            for name, target, scale in zip(c.content_layers, content_targets, scales):
                core = self._core(features[name], tile, name)
                weight = content_weight / len(c.content_layers)
                part += weight * tf.reduce_sum(self._content_sum(core, target, scale, name, size))
            for name, (dmean, dgram) in zip(c.style_layers, upstream):
                mean, gram = self._moments_share(
                    features[name], tile, name, size, dmean is not None
                )
                part += tf.reduce_sum(dgram * gram)
                if dmean is not None:
                    part += tf.reduce_sum(dmean * mean)
            scaled = part * loss_scale
        return tape.gradient(scaled, crop) / loss_scale

    def _core(self, features: tf.Tensor, tile: Tile, name: str) -> tf.Tensor:
        """The activations over the tile's core, from the activations of its extent."""
        s = self.strides[name]
        y0, y1, x0, x1 = tile.core
        ey0, _, ex0, _ = tile.extent
        return features[:, y0 // s - ey0 // s : y1 // s - ey0 // s,
                        x0 // s - ex0 // s : x1 // s - ex0 // s]  # fmt: skip

    def _target_core(self, target: tf.Tensor, tile: Tile, name: str) -> tf.Tensor:
        s = self.strides[name]
        y0, y1, x0, x1 = tile.core
        return target[:, y0 // s : y1 // s, x0 // s : x1 // s]

    def _positions(self, name: str, size: tuple[int, int]) -> int:
        """Positions of the whole image's activations at layer `name`."""
        s = self.strides[name]
        return (size[0] // s) * (size[1] // s)

    def _moments_share(self, features, tile: Tile, name: str, size: tuple[int, int], with_mean):
        """The core's part of the whole image's mean (None unless `with_mean`) and Gram matrix
        at layer `name`: its own times its share of the positions (0 for an edge core
        holding no whole activation)."""
        core = self._core(features, tile, name)
        positions = core.shape[1] * core.shape[2]
        if not positions:
            return (0.0 if with_mean else None), 0.0
        share = positions / self._positions(name, size)
        mean, gram = losses.moments(core, None, self.objective.products, with_mean)
        return (None if mean is None else mean * share), gram * share

    def _content_sum(self, core, target, scale, name: str, size: tuple[int, int]) -> tf.Tensor:
        """The core's part of each image's content loss [B]: its squared differences over
        the size of the whole layer and each image's `scale` (as losses.content_error)."""
        values = self._positions(name, size) * core.shape[-1]
        squared = tf.reduce_sum(tf.math.squared_difference(core, target), axis=[1, 2, 3])
        return squared / values / scale


def _tv_share(crop: tf.Tensor, tile: Tile, size: tuple[int, int], reference) -> tf.Tensor:
    """The core's part of each image's losses.total_variation [B] (without a mask): the
    squared differences from each core pixel to the next one down and to the right, within
    the image, over the whole image's counts of such pairs and each image's `reference`
    roughness. The crop is
    the tile's extent, whose halo holds the pixels one past the core."""
    height, width = size
    y0, y1, x0, x1 = tile.core
    ey0, _, ex0, _ = tile.extent
    channels = crop.shape[-1]
    down = crop[:, y0 - ey0 : min(y1 + 1, height) - ey0, x0 - ex0 : x1 - ex0]
    right = crop[:, y0 - ey0 : y1 - ey0, x0 - ex0 : min(x1 + 1, width) - ex0]
    vertical = tf.reduce_sum(tf.square(down[:, 1:] - down[:, :-1]), axis=[1, 2, 3])
    horizontal = tf.reduce_sum(tf.square(right[:, :, 1:] - right[:, :, :-1]), axis=[1, 2, 3])
    roughness = vertical / ((height - 1) * width * channels) + horizontal / (
        height * (width - 1) * channels
    )
    return roughness / reference


def _call_traced(function, *args):
    """function(*args), any new trace made first by get_concrete_function. Each tile shape
    (and each tile, for the gradient) needs a trace of its own; traced by the call itself,
    the fifth in a row sets off TF's warning about frequent retracing."""
    function.get_concrete_function(*args)
    return function(*args)


def _crop(image: tf.Tensor, extent: tuple[int, int, int, int]) -> tf.Tensor:
    y0, y1, x0, x1 = extent
    return tf.convert_to_tensor(image[:, y0:y1, x0:x1])
