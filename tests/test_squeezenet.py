"""SqueezeNet 1.1: its weights from both published layouts, its forward pass against NumPy
and against the trained networks' own padding, and the served model and tiles on it."""

import h5py
import numpy as np
import pytest
import tensorflow as tf

from nst_tf import squeezenet
from nst_tf.config import STYLE_DEPTH, Config, ConfigError
from nst_tf.features import WeightsError, build_extractor
from nst_tf.objective import Objective
from nst_tf.tiles import TiledObjective, plan
from tests.conftest import CONTENT_PATH, STYLE_PATH, assert_same_gradient

LAYERS = ["conv1", "pool1", "fire2", "fire3", "fire4", "fire5", "fire9"]


def write_keras_h5(path, weights):
    """A file as keras-squeezenet's save_weights wrote it: a group per layer (every layer,
    weights or not), each naming its weights in `weight_names`."""
    layers = ["input_1", "conv1", "relu_conv1", "pool1"]
    for name, _, _ in squeezenet.FIRES:
        for part in ("squeeze1x1", "relu_squeeze1x1", "expand1x1", "relu_expand1x1",
                     "expand3x3", "relu_expand3x3", "concat"):  # fmt: skip
            layers.append(f"{name}/{part}")
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in layers]
        f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.1.6"
        for layer in layers:
            group = f.create_group(layer)
            ours = layer.replace("/", "_")
            if ours not in weights:
                group.attrs["weight_names"] = []
                continue
            names = [f"{layer}/kernel:0", f"{layer}/bias:0"]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name, value in zip(names, weights[ours]):
                group.create_dataset(name, data=value)


def write_cs231n_checkpoint(prefix, weights, numbering="layer_with_weights"):
    """A TF2 checkpoint laid out as the CS231n SqueezeNet's: net's layers with weights
    numbered in order (or, with numbering "layer", every layer numbered, pools included),
    a fire module's convolutions as its squeeze, expand1x1 and expand3x3, then the
    classifier's 1x1 convolution."""

    def conv(kernel, bias):
        module = tf.Module()
        module.kernel, module.bias = tf.Variable(kernel), tf.Variable(bias)
        return module

    net = tf.Module()
    modules = [conv(*weights["conv1"])]
    for name, _, _ in squeezenet.FIRES:
        fire = tf.Module()
        fire.squeeze = conv(*weights[f"{name}_squeeze1x1"])
        fire.expand1x1 = conv(*weights[f"{name}_expand1x1"])
        fire.expand3x3 = conv(*weights[f"{name}_expand3x3"])
        modules.append(fire)
    modules.append(conv(np.ones((1, 1, 512, 1000), np.float32), np.zeros(1000, np.float32)))
    # Every layer numbered: the pools are 1, 4 and 7, the classifier's pooling last.
    indices = [0, 2, 3, 5, 6, 8, 9, 10, 11, 12] if numbering == "layer" else range(10)
    for index, module in zip(indices, modules):
        setattr(net, f"{numbering}-{index}", module)
    tf.train.Checkpoint(net=net).write(prefix)


@pytest.fixture(scope="module")
def weights():
    return squeezenet.random_weights(seed=5)


def extractor_weights(extractor) -> dict:
    return {layer.name: layer.get_weights() for layer in extractor.layers if layer.get_weights()}


@pytest.mark.parametrize(
    "layout", ["keras h5", "cs231n checkpoint", "cs231n, every layer numbered"]
)
def test_both_layouts_load_with_exactly_their_weights(tmp_path, weights, layout):
    if layout == "keras h5":
        path = str(tmp_path / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5")
        write_keras_h5(path, weights)
        preprocess = "caffe_preprocess"
    else:
        path = str(tmp_path / "squeezenet.ckpt")
        write_cs231n_checkpoint(
            path, weights, "layer" if "every" in layout else "layer_with_weights"
        )
        preprocess = "imagenet_preprocess"
    extractor = build_extractor(["fire9"], weights=path, network="squeezenet")
    loaded = extractor_weights(extractor)
    assert sorted(loaded) == sorted(weights)
    for name, (kernel, bias) in weights.items():
        np.testing.assert_array_equal(loaded[name][0], kernel)
        np.testing.assert_array_equal(loaded[name][1], bias)
    assert preprocess in [layer.name for layer in extractor.layers]


def test_a_file_of_another_layout_is_refused_in_one_sentence(tmp_path, weights):
    vgg = tmp_path / "vgg16.h5"
    with h5py.File(vgg, "w") as f:
        f.create_group("block1_conv1")
    broken = dict(weights, fire4_expand3x3=[np.zeros((1, 1, 32, 128), np.float32),
                                            np.zeros(128, np.float32)])  # fmt: skip
    wrong_shape = str(tmp_path / "wrong.h5")
    write_keras_h5(wrong_shape, broken)
    text = tmp_path / "notes.h5"
    text.write_text("not weights")
    cases = {
        str(vgg): "it has no layer conv1",
        wrong_shape: "its fire4_expand3x3 kernel is (1, 1, 32, 128), where SqueezeNet 1.1's is "
        "(3, 3, 32, 128)",
        str(text): "not an HDF5 file",
    }
    for path, reason in cases.items():
        with pytest.raises(WeightsError) as error:
            build_extractor(["conv1"], weights=path, network="squeezenet")
        message = str(error.value)
        assert "\n" not in message and reason in message, message
        assert "keras-squeezenet's" in message and "squeezenet.ckpt" in message


def test_auto_says_no_trained_squeezenet_is_bundled_and_where_to_get_one():
    with pytest.raises(WeightsError, match="no trained SqueezeNet comes with nst_tf or Keras"):
        build_extractor(["conv1"], weights="auto", network="squeezenet")
    with pytest.raises(ConfigError, match="use network=vgg16"):
        Config(network="squeezenet", weights="hed")


def test_defaults_and_layer_names_are_the_networks():
    config = Config(network="squeezenet", weights="random")
    assert config.content_layers == ("fire2",)
    assert config.style_layers == ("conv1", "fire3", "fire4", "fire5")
    deep = 10.0 ** -(1.0 - STYLE_DEPTH)  # fire4 and fire5 weigh as block 3 (config.block)
    assert config.normalized_style_layer_weights == pytest.approx(
        np.array([1, 1, deep, deep]) / (2 + 2 * deep)
    )
    assert config.replace(network="vgg19").content_layers == ("block4_conv2",)
    with pytest.raises(
        ConfigError, match="unknown SQUEEZENET layer 'block4_conv2'; valid names are conv1, pool1"
    ):
        Config(network="squeezenet", content_layers=("block4_conv2",))


def _numpy_conv(x, kernel, bias, stride=1, pad=(0, 0)):
    """A ReLU convolution in float64, zero-padded `pad` (top/left, bottom/right) rows and
    columns, stride `stride`."""
    x = np.pad(x, ((pad[0], pad[1]), (pad[0], pad[1]), (0, 0)))
    k = kernel.shape[0]
    h, w = (x.shape[0] - k) // stride + 1, (x.shape[1] - k) // stride + 1
    out = np.zeros((h, w, kernel.shape[3]))
    for i in range(k):
        for j in range(k):
            window = x[i : i + stride * h : stride, j : j + stride * w : stride]
            out += window @ kernel[i, j].astype(np.float64)
    return np.maximum(out + bias, 0.0)


def test_a_fire_module_matches_numpy(weights, tmp_path):
    path = str(tmp_path / "w.h5")
    write_keras_h5(path, weights)
    extractor = build_extractor(["pool1", "fire2"], weights=path, network="squeezenet")
    image = np.random.default_rng(0).uniform(0, 255, (1, 23, 30, 3)).astype(np.float32)
    out = extractor(image)
    x = out["pool1"][0].numpy().astype(np.float64)
    squeezed = _numpy_conv(x, *weights["fire2_squeeze1x1"])
    want = np.concatenate(
        [_numpy_conv(squeezed, *weights["fire2_expand1x1"]),
         _numpy_conv(squeezed, *weights["fire2_expand3x3"], pad=(1, 1))], axis=-1,
    )  # fmt: skip
    np.testing.assert_allclose(out["fire2"][0], want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("size", [(45, 61), (44, 60)], ids=["odd sides", "even sides"])
def test_conv1_and_pool1_are_the_trained_networks_valid_windows(weights, tmp_path, size):
    """The trained networks' valid padding, position for position; even sides add one
    position at the end (the module docstring)."""
    path = str(tmp_path / "w.h5")
    write_keras_h5(path, weights)
    extractor = build_extractor(["conv1", "pool1"], weights=path, network="squeezenet")
    image = np.random.default_rng(1).uniform(0, 255, (1, *size, 3)).astype(np.float32)
    out = extractor(image)
    bgr = image[0, ..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)
    conv1 = _numpy_conv(bgr.astype(np.float64), *weights["conv1"], stride=2)
    assert out["conv1"].shape[1:3] == (size[0] // 2, size[1] // 2)
    np.testing.assert_allclose(out["conv1"][0, : conv1.shape[0], : conv1.shape[1]], conv1,
                               rtol=1e-4, atol=1e-3)  # fmt: skip
    pooled = tf.nn.max_pool2d(out["conv1"], 3, 2, "VALID")[0]
    np.testing.assert_array_equal(out["pool1"][0, : pooled.shape[0], : pooled.shape[1]], pooled)


def test_tiles_give_the_whole_images_loss_and_gradient():
    from nst_tf.images import load_image

    layers = {"content_layers": ("fire5",), "style_layers": ("conv1", "fire3", "fire9")}
    config = Config(size=96, weights="random", precision="float32", network="squeezenet", **layers)
    content, style = load_image(CONTENT_PATH, 96), load_image(STYLE_PATH, 96)
    objective = Objective(config)
    targets = objective.targets(content[None], [style[None]])
    noise = np.random.default_rng(0).normal(0, 30, content.shape)
    image = tf.constant(np.clip(content + noise, 0, 255)[None], tf.float32)
    terms, grad = objective.terms_and_gradient(image, targets)
    tiled = TiledObjective(objective, 32)
    assert len(plan(*image.shape[1:3], 32, tiled.halo)) == 6
    tiled_terms, tiled_grad = tiled.terms_and_gradient(image, targets)
    for name in terms:
        assert float(tiled_terms[name]) == pytest.approx(float(terms[name]), rel=1e-5), name
    assert_same_gradient(tiled_grad, grad)


@pytest.mark.slow
def test_the_served_model_paints_with_squeezenet(tmp_path, weights, content, style):
    from nst_tf.export import SessionModel, export_saved_model
    from nst_tf.inputs import prepare
    from nst_tf.transfer import StyleTransfer

    path = str(tmp_path / "squeezenet.h5")
    write_keras_h5(path, weights)
    config = Config(size=64, steps=2, network="squeezenet", weights=path, precision="float32")
    served = SessionModel(export_saved_model(config, str(tmp_path / "models")))
    try:
        out = served.run("stylize", content=content[None], style=style[None], num_steps=2)
    finally:
        served.close()
    local = StyleTransfer(prepare(config, content, style)).run()
    np.testing.assert_allclose(out["image"][0], local, atol=0.05)
    assert np.isfinite(out["total"]) and out["style"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["keras h5", "cs231n checkpoint"])
def test_the_command_runs_with_either_layout(tmp_path, weights, layout):
    from tests.test_cli import nst_tf_here

    if layout == "keras h5":
        path = str(tmp_path / "squeezenet.h5")
        write_keras_h5(path, weights)
    else:
        path = str(tmp_path / "squeezenet.ckpt")
        write_cs231n_checkpoint(path, weights)
    out = tmp_path / "out.png"
    result = nst_tf_here(
        f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", f"--output={out}",
        "--network=squeezenet", f"--weights={path}", "--size=48", "--steps=4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert out.exists()
    missing = nst_tf_here(f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}",
                          f"--output={tmp_path / 'o.png'}", "--network=squeezenet")  # fmt: skip
    assert missing.returncode == 1 and "no trained SqueezeNet" in missing.stderr
