"""VGG19 feature extractor: RGB [0, 255] in, the requested layers' activations out, in one call.

The network is Keras's VGG19 (include_top=False) cut after the deepest requested layer, with
the caffe preprocessing (RGB -> BGR, ImageNet mean subtracted) as its first layer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import numpy as np
from absl import logging

from nst_tf.config import VGG19_LAYERS

IMAGENET_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + IMAGENET_FILE
# Keras's VGG19 "caffe" preprocessing: BGR channel order, these per-channel means removed.
BGR_MEAN = (103.939, 116.779, 123.68)


class WeightsError(RuntimeError):
    """The requested VGG19 weights cannot be loaded; the message says what to do."""


@keras.saving.register_keras_serializable(package="nst_tf")
class CaffePreprocess(keras.layers.Layer):
    """RGB [0, 255] -> the BGR mean-subtracted input the ImageNet VGG19 weights expect."""

    def call(self, rgb):
        bgr = keras.ops.flip(rgb, axis=-1)
        return bgr - keras.ops.convert_to_tensor(BGR_MEAN, dtype=bgr.dtype)


def build_extractor(
    layers: Sequence[str],
    weights: str = "auto",
    pooling: str = "max",
    seed: int = 0,
    precision: str = "float32",
) -> keras.Model:
    """A model mapping images [B, H, W, 3] (RGB, [0, 255]) to {layer name: activations}.

    weights: "auto" (ImageNet if Keras can load it, else seeded random with a warning),
    "imagenet" (strict), "random" (seeded He-normal), or a path to Keras's notop .h5 file.
    pooling: "max" as trained, or "avg" (Gatys et al. report smoother results).
    precision: "float32", or a Keras mixed policy ("mixed_bfloat16", "mixed_float16") under
    which the network computes in 16 bits with float32 weights; the activations it returns
    are always float32, so losses and Gram matrices are accumulated in float32.
    """
    wanted = list(dict.fromkeys(layers))
    deepest = max(VGG19_LAYERS.index(name) for name in wanted)
    vgg = load_vgg19(weights, seed)
    image = keras.Input((None, None, 3), name="image")
    x = CaffePreprocess(name="caffe_preprocess")(image)  # float32: the means need the bits
    outputs = {}
    for layer in vgg.layers[1 : deepest + 2]:  # skip the InputLayer
        if pooling == "avg" and isinstance(layer, keras.layers.MaxPooling2D):
            layer = keras.layers.AveragePooling2D(2, name=layer.name)
        layer.dtype_policy = keras.DTypePolicy(precision)
        x = layer(x)
        if layer.name in wanted:
            outputs[layer.name] = keras.layers.Activation(
                "linear", dtype="float32", name=f"{layer.name}_float32"
            )(x)
    return keras.Model(image, outputs, name="vgg19_features")


def load_vgg19(weights: str = "auto", seed: int = 0) -> keras.Model:
    """Keras's VGG19 without its classifier, with the weights `build_extractor` describes."""
    if weights == "random":
        return _random_vgg19(seed)
    if weights == "imagenet":
        return _imagenet_vgg19()
    if weights == "auto":
        try:
            return _imagenet_vgg19()
        except WeightsError as e:
            logging.warning(
                "\n%s\nWARNING: THE IMAGENET VGG19 WEIGHTS ARE NOT AVAILABLE, SO THIS RUN USES A "
                "RANDOMLY INITIALISED VGG19 (SEED %d). THE RESULT WILL LOOK POOR: TEXTURE "
                "NOISE, NOT A PAINTING.\nTo use the real weights, download %s to %s, or pass "
                "--weights=/path/to/%s.\n%s",
                "=" * 78, seed, IMAGENET_URL, _cache_path(), IMAGENET_FILE, "=" * 78,
            )  # fmt: skip
            logging.debug("ImageNet weights failed to load: %s", e)
            return _random_vgg19(seed)
    return _file_vgg19(weights)


def _imagenet_vgg19() -> keras.Model:
    try:
        return keras.applications.VGG19(include_top=False, weights="imagenet")
    except Exception as e:  # Keras raises plain Exception for a failed download
        raise WeightsError(
            f"could not load the ImageNet VGG19 weights ({str(e).strip()[:200]}); download "
            f"{IMAGENET_URL} to {_cache_path()} or pass --weights=PATH"
        ) from None


def _file_vgg19(path: str) -> keras.Model:
    model = keras.applications.VGG19(include_top=False, weights=None)
    try:
        model.load_weights(path)
    except Exception as e:  # h5py, shape and layer-count errors all mean "not this file"
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise WeightsError(
            f"{path}: not a Keras VGG19 notop weights file like {IMAGENET_FILE} ({reason})"
        ) from None
    return model


def _random_vgg19(seed: int) -> keras.Model:
    """VGG19 with seeded He-normal kernels and zero biases.

    He-normal keeps the activation scale through the ReLU stack, so deep layers carry signal
    as trained ones do (Keras's default Glorot init shrinks them layer by layer).
    """
    model = keras.applications.VGG19(include_top=False, weights=None)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            fan_in = np.prod(kernel.shape[:3])
            kernel = rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel.shape).astype(np.float32)
            layer.set_weights([kernel, np.zeros_like(bias)])
    return model


def _cache_path() -> str:
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(keras_home, "models", IMAGENET_FILE)
