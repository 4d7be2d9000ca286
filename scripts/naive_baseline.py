"""The naive baseline `benchmark.py` compares against, written the way the Keras example
"Neural style transfer" (keras.io/examples/generative/neural_style_transfer) and many
tutorials write it.

Every step the content, style and generated images are concatenated into one batch and run
through the whole VGG19 (to block5_pool, every layer an output); the style Gram matrices and
content features of the two fixed images are recomputed each time; a Keras optimizer (SGD
with the example's decaying rate) updates a tf.Variable. Same arithmetic per image as ours,
three images a step instead of one. Under a mixed precision policy the network computes in
16 bits and the losses in float32, as ours do.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from nst_tf.features import BGR_MEAN, load_network

STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
CONTENT_LAYER = "block5_conv2"
CONTENT_WEIGHT, STYLE_WEIGHT, TV_WEIGHT = 2.5e-8, 1e-6, 1e-6


def _preprocess(rgb: np.ndarray) -> tf.Tensor:
    return tf.constant((rgb[..., ::-1] - np.array(BGR_MEAN, np.float32))[None], tf.float32)


def _gram(x: tf.Tensor) -> tf.Tensor:
    features = tf.reshape(tf.transpose(x, (2, 0, 1)), (tf.shape(x)[2], -1))
    return tf.matmul(features, tf.transpose(features))


class NaiveStyleTransfer:
    """`step()` runs one step of the baseline; `image` is the variable it updates."""

    def __init__(
        self,
        content: np.ndarray,
        style: np.ndarray,
        weights: str = "random",
        network: str = "vgg19",
        precision: str = "float32",
    ):
        # A Keras mixed policy as a user sets it: globally, while the network is built.
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(precision)
        try:
            model = load_network(network, weights)
        finally:
            keras.config.set_dtype_policy(previous)
        self.extractor = keras.Model(
            model.inputs, {layer.name: layer.output for layer in model.layers}
        )
        self.content, self.style = _preprocess(content), _preprocess(style)
        self.image = tf.Variable(self.content)
        self.optimizer = keras.optimizers.SGD(
            keras.optimizers.schedules.ExponentialDecay(100.0, decay_steps=100, decay_rate=0.96)
        )
        self.step = tf.function(self._step)

    def _loss(self) -> tf.Tensor:
        height, width = self.image.shape[1:3]
        batch = tf.concat([self.content, self.style, self.image], axis=0)
        features = {k: tf.cast(v, tf.float32) for k, v in self.extractor(batch).items()}
        layer = features[CONTENT_LAYER]
        loss = CONTENT_WEIGHT * tf.reduce_sum(tf.square(layer[2] - layer[0]))
        for name in STYLE_LAYERS:
            layer = features[name]
            channels, size = layer.shape[-1], height * width
            difference = _gram(layer[1]) - _gram(layer[2])
            style = tf.reduce_sum(tf.square(difference)) / (4.0 * channels**2 * size**2)
            loss += STYLE_WEIGHT / len(STYLE_LAYERS) * style
        dy = tf.square(self.image[:, :-1, :-1] - self.image[:, 1:, :-1])
        dx = tf.square(self.image[:, :-1, :-1] - self.image[:, :-1, 1:])
        return loss + TV_WEIGHT * tf.reduce_sum(tf.pow(dy + dx, 1.25))

    def result(self) -> np.ndarray:
        """The image as RGB [H, W, 3] in [0, 255]."""
        bgr = self.image[0].numpy() + np.array(BGR_MEAN, np.float32)
        return np.clip(bgr[..., ::-1], 0.0, 255.0)

    def _step(self) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = self._loss()
        self.optimizer.apply_gradients([(tape.gradient(loss, self.image), self.image)])
        return loss
