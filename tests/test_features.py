"""The VGG19 feature extractor: layers, truncation, preprocessing, weight sources."""

import h5py
import keras
import numpy as np
import pytest

from nst_tf import features
from nst_tf.features import WeightsError, build_extractor, load_vgg19


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
    small = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
    path = tmp_path / "other.h5"
    _write_legacy_h5(small, path)
    with pytest.raises(WeightsError, match="not a Keras VGG19 notop weights file"):
        load_vgg19(str(path))
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(WeightsError, match="not a Keras VGG19"):
        load_vgg19(str(text))


def test_auto_falls_back_to_random_with_a_loud_warning(monkeypatch, caplog):
    def unavailable():
        raise WeightsError("offline")

    monkeypatch.setattr(features, "_imagenet_vgg19", unavailable)
    with caplog.at_level("WARNING"):
        model = load_vgg19("auto", seed=3)
    np.testing.assert_array_equal(
        model.get_layer("block1_conv1").kernel.numpy(),
        load_vgg19("random", seed=3).get_layer("block1_conv1").kernel.numpy(),
    )
    assert "RANDOMLY INITIALISED VGG19" in caplog.text
    assert features.IMAGENET_FILE in caplog.text


def test_imagenet_is_strict_and_says_where_the_file_goes(monkeypatch):
    def offline_vgg19(**kwargs):
        assert kwargs["weights"] == "imagenet"
        raise Exception("URL fetch failure: Name or service not known")

    monkeypatch.setattr(keras.applications, "VGG19", offline_vgg19)
    with pytest.raises(WeightsError, match="could not load the ImageNet VGG19 weights") as e:
        load_vgg19("imagenet")
    assert features._cache_path() in str(e.value)
