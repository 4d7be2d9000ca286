"""SqueezeNet 1.1 (Iandola et al. 2016) as a feature network: its layers, an extractor of
them, and its trained weights read from the two files people have.

1.2 M parameters against VGG19's 20 M: a 3x3 stride-2 convolution (conv1), then eight fire
modules (a 1x1 "squeeze" convolution feeding a 1x1 and a 3x3 "expand" convolution, whose
outputs are joined), with 3x3 stride-2 max pooling after conv1, fire3 and fire5.

Padding: the trained networks pool and stride with "valid" windows, whose count depends on
whether a side is odd or even. Here each stride-2 window layer first pads one zero row and
column at the bottom and right: a layer at stride s has floor(H / s) positions and position
i starts at input pixel s * i, on every image and on every tile of one (nst_tf.tiles), as
VGG's layers do. The activations equal the trained network's at every position it has; an
even side adds one position at its end.

The weight files, read into {layer: [kernel, bias]} with Keras's kernel layout [h, w, in,
out]:
- keras-squeezenet's ImageNet weights (rcmalli/keras-squeezenet, an HDF5 file written by
  Keras's save_weights: a group per layer named conv1, fire2/squeeze1x1, fire2/expand1x1,
  ..., with its weights' names in the group's weight_names attribute). It was trained on
  Caffe-style input: BGR, ImageNet means subtracted.
- the CS231n SqueezeNet (Stanford's CS231n assignment 3, TensorFlow 2: squeezenet.ckpt,
  a TF2 checkpoint of a Keras model whose `net` holds the convolution and the fire modules,
  each with squeeze, expand1x1 and expand3x3). It takes RGB in [0, 1], normalised with
  the ImageNet mean and standard deviation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import h5py
import keras
import numpy as np
import tensorflow as tf

# (name, squeeze filters, expand filters each of 1x1 and 3x3), in order.
FIRES = (
    ("fire2", 16, 64), ("fire3", 16, 64), ("fire4", 32, 128), ("fire5", 32, 128),
    ("fire6", 48, 192), ("fire7", 48, 192), ("fire8", 64, 256), ("fire9", 64, 256),
)  # fmt: skip
POOL_AFTER = {"conv1": "pool1", "fire3": "pool3", "fire5": "pool5"}
CONV1_FILTERS = 64
PARTS = ("squeeze1x1", "expand1x1", "expand3x3")  # a fire module's convolutions, in order
# What each file's network was trained on.
CAFFE, IMAGENET = "caffe", "imagenet"  # BGR less the means; RGB / 255 normalised

Weights = dict[str, list[np.ndarray]]  # layer name: [kernel [h, w, in, out], bias [out]]


def kernel_shapes() -> dict[str, tuple[int, int, int, int]]:
    """Every convolution's kernel shape, in order: conv1, then fireN_squeeze1x1,
    fireN_expand1x1, fireN_expand3x3 for each fire module."""
    shapes = {"conv1": (3, 3, 3, CONV1_FILTERS)}
    channels = CONV1_FILTERS
    for name, squeeze, expand in FIRES:
        shapes[f"{name}_squeeze1x1"] = (1, 1, channels, squeeze)
        shapes[f"{name}_expand1x1"] = (1, 1, squeeze, expand)
        shapes[f"{name}_expand3x3"] = (3, 3, squeeze, expand)
        channels = 2 * expand
    return shapes


def random_weights(seed: int = 0) -> Weights:
    """Seeded He-normal kernels and zero biases, as nst_tf.features gives VGG."""
    rng = np.random.default_rng(seed)
    return {
        name: [rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[:3])), shape).astype(np.float32),
               np.zeros(shape[-1], np.float32)]
        for name, shape in kernel_shapes().items()
    }  # fmt: skip


def extractor(
    weights: Weights,
    layers: Sequence[str],
    preprocess: keras.layers.Layer,
    conv: Callable[..., keras.layers.Layer] = keras.layers.Conv2D,
    pooling: str = "max",
    precision: str = "float32",
) -> keras.Model:
    """A model mapping images [B, H, W, 3] (RGB, [0, 255]) to {layer: activations} for
    `layers`, through `preprocess` and the network cut after the deepest of them. `conv`
    makes the convolutions (nst_tf.features passes its own); `pooling` is "max" as
    trained, or "avg"; the network computes under the Keras dtype policy `precision` and
    the activations come out float32 (nst_tf.features.Conv2D keeps its weights in the
    compute dtype)."""
    policy = keras.DTypePolicy(precision)
    order = _module_order()
    deepest = max(order.index(_module(name)) for name in layers)
    image = keras.Input((None, None, 3), name="image")
    x = preprocess(image)
    outputs = {}

    def keep(name, value):
        if name in layers:
            outputs[name] = keras.layers.Activation("linear", dtype="float32",
                                                    name=f"{name}_float32")(value)  # fmt: skip
        return value

    def convolution(name, value, padding="same", strides=1):
        kernel, bias = weights[name]
        layer = conv(kernel.shape[-1], kernel.shape[:2], strides=strides, padding=padding,
                     activation="relu", name=name, dtype=policy)  # fmt: skip
        layer.build((None, None, None, kernel.shape[2]))
        layer.set_weights([kernel, bias])
        return keep(name, layer(value))

    def padded(name, value):  # one zero row and column at the bottom and right
        return keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_pad", dtype=policy)(value)

    for module in order[: deepest + 1]:
        if module == "conv1":
            x = convolution("conv1", padded("conv1", x), "valid", strides=2)
        elif module.startswith("pool"):
            window = (
                keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
            )
            x = keep(module, window(3, 2, name=module, dtype=policy)(padded(module, x)))
        else:
            squeezed = convolution(f"{module}_squeeze1x1", x)
            joined = [convolution(f"{module}_{part}", squeezed) for part in PARTS[1:]]
            x = keep(module, keras.layers.Concatenate(name=module, dtype=policy)(joined))
    return keras.Model(image, outputs, name="squeezenet_features")


def _module_order() -> list[str]:
    order = ["conv1", "pool1"]
    for name, _, _ in FIRES:
        order.append(name)
        if name in POOL_AFTER:
            order.append(POOL_AFTER[name])
    return order


def _module(layer: str) -> str:
    """The module a layer belongs to: fire3 for fire3_expand1x1."""
    return layer.split("_")[0]


def read_keras_h5(path: str) -> Weights:
    """keras-squeezenet's weights file: each convolution's group (fire2/squeeze1x1 for our
    fire2_squeeze1x1), its datasets in the order of its weight_names attribute (kernel,
    bias). ValueError, naming the first thing that is not as expected."""
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            weights = {}
            for name in kernel_shapes():
                group_name = name.replace("_", "/")
                if group_name not in root:
                    raise ValueError(f"it has no layer {group_name}")
                group = root[group_name]
                names = [n.decode() if isinstance(n, bytes) else n
                         for n in group.attrs.get("weight_names", [])]  # fmt: skip
                if len(names) != 2:
                    raise ValueError(f"layer {group_name} has {len(names)} weights, not 2")
                weights[name] = [np.asarray(group[n][()], np.float32) for n in names]
    except OSError as e:
        raise ValueError(f"not an HDF5 file ({e})") from None
    return _checked(weights)


CHECKPOINT_PARTS = ("squeeze", "expand1x1", "expand3x3")  # the CS231n Fire's attributes
# A key of the CS231n checkpoint: net/layer_with_weights-<i>[/<part>]/kernel or bias.
CHECKPOINT_KEY = re.compile(
    r"^net/layer(?:_with_weights)?-(\d+)/(?:(squeeze|expand1x1|expand3x3)/)?(kernel|bias)/"
    r"\.ATTRIBUTES/VARIABLE_VALUE$"
)


def read_cs231n_checkpoint(path: str) -> Weights:
    """The CS231n SqueezeNet's TF2 checkpoint (the prefix, squeezenet.ckpt): the variables
    of `net`'s layers in their order, a fire module's as its squeeze, expand1x1 and
    expand3x3, and the classifier's last, left out. ValueError, naming the first thing that
    is not as expected."""
    try:
        reader = tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError) as e:
        raise ValueError(f"not a TensorFlow checkpoint ({str(e).splitlines()[0]})") from None
    found: dict[tuple[int, int], list] = {}
    for key in reader.get_variable_to_shape_map():
        match = CHECKPOINT_KEY.match(key)
        if match:
            layer, part, kind = match.groups()
            index = (int(layer), CHECKPOINT_PARTS.index(part) if part else 0)
            found.setdefault(index, [None, None])[kind == "bias"] = reader.get_tensor(key)
    names = list(kernel_shapes())
    if len(found) < len(names):
        raise ValueError(f"it has {len(found)} convolutions of net, not {len(names)} or more")
    ordered = [found[index] for index in sorted(found)][: len(names)]
    return _checked(dict(zip(names, ordered)))


def _checked(weights: Weights) -> Weights:
    for name, shape in kernel_shapes().items():
        kernel, bias = weights[name]
        if kernel is None or bias is None or kernel.shape != shape or bias.shape != shape[-1:]:
            got = None if kernel is None else kernel.shape
            raise ValueError(f"its {name} kernel is {got}, where SqueezeNet 1.1's is {shape}")
    return weights
