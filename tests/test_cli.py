"""The nst-tf command end to end, as a user runs it: in a subprocess where the process
matters (start-up output, signals, resume), else through the same entry point in this
process."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from tests.conftest import CONTENT_PATH, STYLE_PATH

pytestmark = pytest.mark.slow  # whole commands

FAST = ["--weights=random", "--size=48", "--steps=4"]


def nst_tf(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), ".."))
    return subprocess.run(
        [sys.executable, "-m", "nst_tf", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
    )  # fmt: skip


def nst_tf_here(*args) -> subprocess.CompletedProcess:
    """The command run in this process, as `nst_tf` runs it in another: its exit status and
    what it wrote to standard error. A new process costs a TensorFlow start-up (seconds),
    which the tables of inputs below would pay once per row; the start-up and signals are
    tested in real processes."""
    from absl import flags

    from nst_tf import cli

    flags.FLAGS.unparse_flags()  # the previous row's flags back to their defaults
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stderr = io.StringIO()
    code = 0
    try:
        with (
            mock.patch.object(sys, "argv", ["nst-tf", *args]),
            mock.patch.object(sys, "stderr", stderr),
            _absl_log_to(stderr),
        ):
            cli.run()
    except SystemExit as e:
        code = e.code or 0
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return subprocess.CompletedProcess(["nst-tf", *args], code, "", stderr.getvalue())


@contextlib.contextmanager
def _absl_log_to(stream):
    """absl's log handler writes to the stream it was made with; point it at `stream`."""
    from absl import logging

    handler = logging.get_absl_handler().python_handler
    previous = handler.stream
    handler.stream = stream
    try:
        yield
    finally:
        handler.stream = previous


def test_end_to_end_writes_output_and_intermediate_saves(tmp_path):
    out = tmp_path / "out.jpg"
    result = nst_tf_here(
        f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", f"--output={out}",
        *FAST, "--save_every=2", "--optimizer=adam",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with Image.open(out) as img:
        assert img.format == "JPEG"
        assert img.size == (48, 32)  # the 451x300 content, longest side 48
    assert (tmp_path / "out_0002.jpg").exists()
    assert sorted(os.listdir(tmp_path)) == ["out.jpg", "out_0002.jpg"]  # no temp files left
    assert "eval 4/4" in result.stderr


def test_hed_weights_from_the_command(tmp_path):
    """--weights=hed alone picks VGG16 (network auto) and paints."""
    out = tmp_path / "out.png"
    result = nst_tf_here(
        f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", f"--output={out}",
        "--weights=hed", "--size=48", "--steps=3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert out.exists() and "eval 3/3" in result.stderr


def test_no_tensorflow_start_up_noise_unless_asked(tmp_path):
    """Without --verbosity, standard error holds the command's own lines only: no oneDNN,
    CUDA or absl start-up notices from TensorFlow's native libraries; with it, they are
    there (which ones depends on the CPU: oneDNN's notice only where TensorFlow turns
    oneDNN on, the CPU-feature and CUDA lines elsewhere)."""
    args = [f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", f"--output={tmp_path}/o.png"]
    quiet = nst_tf(*args, *FAST)
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stderr.splitlines()
    assert all(line.startswith(("nst-tf: ", "eval ")) for line in lines), quiet.stderr
    loud = nst_tf(*args, *FAST, "--verbosity=1")
    notices = [
        line for line in loud.stderr.splitlines() if not line.startswith(("nst-tf: ", "eval "))
    ]
    assert loud.returncode == 0 and notices, loud.stderr


def test_flagfile_and_webp_output(tmp_path):
    out = tmp_path / "result.webp"
    flagfile = tmp_path / "run.flags"
    flagfile.write_text(
        "\n".join([f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", *FAST, "--steps=1"])
    )
    result = nst_tf_here(f"--flagfile={flagfile}", f"--output={out}")
    assert result.returncode == 0, result.stderr
    with Image.open(out) as img:
        assert img.format == "WEBP"


def make_inputs(tmp: Path) -> dict[str, Path]:
    """One file per awkward input of the table in docs/cli.md, written into `tmp`."""
    photo = Image.open(CONTENT_PATH)  # 451 x 300, RGB JPEG
    files = {}

    def save(name, image, **kwargs):
        files[name] = tmp / name
        image.save(files[name], **kwargs)

    (tmp / "notes.jpg").write_text("this is not an image\n")
    files["notes.jpg"] = tmp / "notes.jpg"
    (tmp / "empty.png").write_bytes(b"")
    files["empty.png"] = tmp / "empty.png"
    for name, fmt in (("truncated.png", "PNG"), ("truncated.jpg", "JPEG")):
        save(name, photo, format=fmt)
        files[name].write_bytes(files[name].read_bytes()[:3000])
    save("tiny.png", photo.resize((12, 8)))
    save("square.png", photo.resize((40, 40)))
    save("bomb.png", Image.new("1", (12000, 12000)))  # 30 KB that decodes to 144 megapixels
    frames = [photo.resize((60, 40)), photo.resize((60, 40)).rotate(180)]
    save("animated.gif", frames[0], save_all=True, append_images=frames[1:], duration=100)
    save("cmyk.jpg", photo.convert("CMYK"))
    save("palette.png", photo.convert("P"))
    deep = (np.asarray(photo.convert("L"), np.uint16) * 257).astype(np.uint16)
    save("deep.png", Image.fromarray(deep))
    rgba = photo.convert("RGBA")
    rgba.putalpha(128)
    save("alpha.png", rgba)
    save("grey.jpg", photo.convert("L"))
    exif = photo.getexif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: a portrait
    save("rotated.jpg", photo, exif=exif)
    (tmp / "dir").mkdir()
    files["dir"] = tmp / "dir"
    return files


# One row per line of the table in docs/cli.md: flags, expected message, exit status.
# {name_ext} is a file from make_inputs (dot as underscore); {tmp} the temp directory.
BAD_INPUTS = [
    ("missing file", ["--content=/no/such/photo.jpg"], "no such file", 2),
    ("directory as style", ["--style={dir}"], "is a directory", 2),
    ("content directory without images", ["--content={dir}"], "no image files", 2),
    ("batch of two shapes", ["--content={square_png},{palette_png}"], "must have one shape", 2),
    ("empty file", ["--style={empty_png}"], "not a readable image", 2),
    ("truncated png", ["--style={truncated_png}"], "not a readable image", 2),
    ("truncated jpeg", ["--content={truncated_jpg}"], "not a readable image", 2),
    ("text file named .jpg", ["--content={notes_jpg}"], "not a readable image", 2),
    ("image under 16 px", ["--style={tiny_png}"], "each side must be at least 16", 2),
    ("decompression bomb", ["--content={bomb_png}"], "over the limit of 100000000", 2),
    (
        "over --max_input_pixels",
        ["--max_input_pixels=10000"],
        "over the limit of 10000 (--max_input_pixels)",
        2,
    ),
    ("unknown layer", ["--style_layers=block1_conv1,block9_conv9"], "unknown VGG19 layer", 2),
    (
        "VGG19 layer on VGG16",
        ["--network=vgg16", "--content_layers=block4_conv4"],
        "unknown VGG16 layer 'block4_conv4'; valid names are block1_conv1, block1_conv2",
        2,
    ),
    ("HED weights on VGG19", ["--weights=hed", "--network=vgg19"], "use --network=vgg16", 2),
    ("negative weight", ["--style_weight=-1"], "style_weight must be", 2),
    ("NaN weight", ["--tv_weight=nan"], "tv_weight must be", 2),
    ("zero steps", ["--steps=0"], "steps must be at least 1", 2),
    ("layer weights count", ["--style_layer_weights=1,2"], "2 style layer weights", 2),
    ("bad flag value", ["--steps=many"], "steps", 2),
    ("unknown optimizer", ["--optimizer=sgd"], "optimizer", 2),
    ("missing output directory", ["--output=/no/such/dir/out.png"], "does not exist", 2),
    ("unsupported extension", ["--output={tmp}/out.gif"], "unsupported output extension", 2),
    ("resume without checkpoint", ["--resume"], "no checkpoint to resume from", 2),
    ("mask aspect ratio", ["--content_mask={square_png}"], "needs the content's aspect ratio", 2),
    ("style masks count", ["--style_masks={square_png},{square_png}"], "2 style masks given", 2),
    ("blend with masks", ["--style_blend=1", "--style_masks={palette_png}"], "exclude each", 2),
    ("weights not VGG19", ["--weights={notes_jpg}"], "not a Keras VGG19", 1),
    ("devices not a device", ["--devices=two"], "devices must be auto, a number of GPUs", 2),
    ("more GPUs than there are", ["--devices=4"], "this machine has 0 GPU(s)", 2),
]


def run_with(tmp_path, flags, command=nst_tf_here):
    files = make_inputs(tmp_path)
    out = tmp_path / "out.png"
    fill = {"tmp": tmp_path, **{name.replace(".", "_"): p for name, p in files.items()}}
    args = [f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", f"--output={out}", *FAST]
    args += [flag.format(**fill) for flag in flags]
    return command(*args), out  # later flags override earlier ones


@pytest.mark.parametrize("name,flags,message,code", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gives_one_clear_line_and_no_output(tmp_path, name, flags, message, code):
    result, out = run_with(tmp_path, flags)
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("nst-tf: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".nst_tf-")]


# Inputs that must work, and the output size (width, height) they must give at --size=48.
GOOD_INPUTS = [
    ("animated gif, first frame", "animated.gif", (48, 32)),
    ("cmyk jpeg", "cmyk.jpg", (48, 32)),
    ("palette png", "palette.png", (48, 32)),
    ("16-bit png", "deep.png", (48, 32)),
    ("alpha png", "alpha.png", (48, 32)),
    ("greyscale jpeg", "grey.jpg", (48, 32)),
    ("exif-rotated jpeg", "rotated.jpg", (32, 48)),
]


@pytest.mark.parametrize("name,file,size", GOOD_INPUTS, ids=[g[0] for g in GOOD_INPUTS])
def test_awkward_images_work_and_are_upright(tmp_path, name, file, size):
    key = file.replace(".", "_")
    result, out = run_with(tmp_path, [f"--content={{{key}}}", f"--style={{{key}}}", "--steps=1"])
    assert result.returncode == 0, result.stderr
    with Image.open(out) as img:
        assert img.size == size


def unwritable_directory(tmp_path) -> str | None:
    """A directory this process cannot write to: a locked one, or for root a read-only one."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        return str(locked)
    for candidate in ("/proc/sys", "/sys/kernel"):
        if os.path.isdir(candidate) and not os.access(candidate, os.W_OK):
            return candidate
    return None


def test_unwritable_output_directory(tmp_path):
    directory = unwritable_directory(tmp_path)
    if directory is None:
        pytest.skip("no directory here is unwritable to this user")
    out = f"--output={directory}/o.png"
    result = nst_tf_here(f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", out, *FAST)
    assert result.returncode == 2, result.stderr
    assert "is not writable" in result.stderr and "Traceback" not in result.stderr


def test_non_finite_loss_stops_and_keeps_the_last_finite_image(tmp_path):
    out = tmp_path / "out.png"
    result = nst_tf_here(
        f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", f"--output={out}", *FAST,
        "--style_weight=1e39",  # inf in float32: the relative style loss itself stays < 1
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "the style loss became inf at step 1" in result.stderr
    assert "--style_weight" in result.stderr and "Traceback" not in result.stderr
    with Image.open(out) as img:  # the last finite image: the content, untouched
        expected = np.asarray(Image.open(CONTENT_PATH).resize((48, 32), Image.LANCZOS), float)
        assert np.abs(np.asarray(img, float) - expected).mean() < 3


def interrupted_run(args, signum, after_step=None, after_line=None):
    """Start the command, send `signum` once it reports step `after_step` (or prints a line
    starting with `after_line`), return its exit status and standard error."""
    after_line = after_line or f"eval {after_step}/"
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), ".."))
    process = subprocess.Popen(
        [sys.executable, "-m", "nst_tf", *args], stderr=subprocess.PIPE, text=True, env=env
    )
    lines = []
    for line in process.stderr:
        lines.append(line)
        if line.startswith(after_line):
            process.send_signal(signum)
            break
    lines += process.stderr.read().splitlines()
    return process.wait(timeout=300), "\n".join(lines)


@pytest.mark.parametrize(
    "signum,code,schedule,after",
    [
        (signal.SIGINT, 130, ["--steps=12"], 5),
        # 3 scales (24, 34, 48 px) of 32, 4 and 4 steps: step 34 is inside the second.
        (signal.SIGTERM, 143, ["--steps=32", "--multiscale=on", "--min_size=24"], 34),
    ],
    ids=["SIGINT", "SIGTERM, multi-scale"],
)
def test_interrupt_then_resume_gives_the_same_bytes(tmp_path, signum, code, schedule, after):
    common = [f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", *FAST, *schedule, "--seed=3"]
    whole = tmp_path / "whole.png"
    assert nst_tf_here(*common, f"--output={whole}").returncode == 0  # only the interrupted

    out = tmp_path / "resumed.png"
    status, log = interrupted_run([*common, f"--output={out}"], signum, after_step=after)
    assert status == code, log
    assert "add --resume to continue" in log and "Traceback" not in log
    assert out.exists()  # the current image, complete
    assert os.path.isfile(tmp_path / "resumed.png.checkpoint" / "checkpoint.json")

    result = nst_tf_here(*common, f"--output={out}", "--resume")  # run needs its own process
    assert result.returncode == 0, result.stderr
    assert "from step" in result.stderr
    assert out.read_bytes() == whole.read_bytes()
    assert not (tmp_path / "resumed.png.checkpoint").exists()  # finished: removed


def test_periodic_checkpoints_and_a_settings_mismatch(tmp_path):
    common = [f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", *FAST, "--steps=6"]
    out = tmp_path / "out.png"
    status, log = interrupted_run(
        [*common, f"--output={out}", "--checkpoint_every=2"], signal.SIGINT, after_step=3
    )
    assert status == 130, log
    checkpoint = tmp_path / "out.png.checkpoint"
    pointer = json.loads((checkpoint / "checkpoint.json").read_text())
    files = sorted(os.listdir(checkpoint))
    # One checkpoint is left, the newest: older periodic ones were replaced.
    assert files == ["checkpoint.json"] + sorted(
        f"{pointer['prefix']}.{suffix}" for suffix in ("data-00000-of-00001", "index")
    )
    result = nst_tf_here(*common, f"--output={out}", "--resume", "--style_weight=1")
    assert result.returncode == 2
    assert "the checkpoint was made with other settings (--style_weight)" in result.stderr


def test_controls_from_the_command_and_preset_overrides(tmp_path):
    out = tmp_path / "out.png"
    result = nst_tf_here(
        f"--content={CONTENT_PATH}", f"--style={STYLE_PATH},{CONTENT_PATH}", f"--output={out}",
        "--preset=fast", "--weights=random", "--size=48", "--steps=2", "--style_blend=0.7,0.3",
        "--style_scale=0.5", "--preserve_colors=luminance", "--init_noise=0.1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2 lbfgs steps" in result.stderr  # fast's optimizer, our --steps
    with Image.open(out) as img:
        assert img.size == (48, 32)  # our --size, not fast's 256
    bad = nst_tf_here(
        f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", f"--output={out}", *FAST,
        "--style_blend=1,2",
    )  # fmt: skip
    assert bad.returncode == 2 and "2 style blend weights given for 1 style images" in bad.stderr


def test_tensorboard_log_and_contact_sheet(tmp_path):
    import tensorflow as tf

    out, logdir, sheet = tmp_path / "out.png", tmp_path / "logs", tmp_path / "sheet.png"
    result = nst_tf_here(
        f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", f"--output={out}", *FAST,
        "--save_every=2", f"--logdir={logdir}", f"--contact_sheet={sheet}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    tags = {}
    for event_file in logdir.iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    for term in ("total", "content", "style", "tv"):
        assert sorted(tags[f"loss/{term}"]) == [1, 2, 3, 4]
    assert sorted(tags["image"]) == [2, 4]
    with Image.open(sheet) as img:  # two frames of 48 x 32, side by side, labels below
        assert img.size == (96, 32 + 14)


def test_a_directory_of_contents_is_stylized_in_one_batch(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    with Image.open(CONTENT_PATH) as photo:
        photo.save(photos / "a.jpg")
        photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(photos / "b.png")
    (photos / "notes.txt").write_text("not an image, skipped\n")
    out = tmp_path / "out.png"
    result = nst_tf_here(
        f"--content={photos}", f"--style={STYLE_PATH}", f"--output={out}", *FAST,
        "--save_every=2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".png")
    assert written == ["out_a.png", "out_a_0002.png", "out_b.png", "out_b_0002.png"]
    a, b = (np.asarray(Image.open(tmp_path / f"out_{n}.png"), np.float32) for n in "ab")
    assert a.shape == b.shape == (32, 48, 3)
    # Mirrored inputs, nearly mirrored results: each output belongs to its own input.
    assert np.abs(a - b[:, ::-1]).mean() < 0.5 * np.abs(a - b).mean()


def test_two_cpu_devices_paint_what_one_paints(tmp_path):
    """--devices=cpu:2 splits the CPU in the command's own process and spreads the tiles of
    a tiled run over the two; the picture is one device's, within rounding
    (tests/test_devices.py has the numbers)."""
    args = [f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", "--weights=random",
            "--size=96", "--steps=3", "--tile_size=32", "--precision=float32"]  # fmt: skip
    images = []
    for spec in ("cpu:1", "cpu:2"):
        out = tmp_path / f"{spec.replace(':', '')}.png"
        result = nst_tf(*args, f"--output={out}", f"--devices={spec}")
        assert result.returncode == 0, result.stderr
        assert ("Tiles spread over 2 devices" in result.stderr) == (spec == "cpu:2")
        images.append(np.asarray(Image.open(out), np.float32))
    assert np.abs(images[0] - images[1]).max() <= 1


def test_eta_weights_each_step_by_its_pixels():
    """Coarse steps are cheap: after the 128 px scale, the ETA expects the 256 px steps to
    take four times as long each, not as long."""
    from nst_tf.progress import Progress

    progress = Progress([(128, 100), (256, 100)], stream=open(os.devnull, "w"))
    assert progress.eta(100, elapsed=10.0) == pytest.approx(40.0)
    assert progress.eta(150, elapsed=30.0) == pytest.approx(20.0)
    resumed = Progress([(128, 100), (256, 100)], first=100, stream=open(os.devnull, "w"))
    assert resumed.eta(150, elapsed=20.0) == pytest.approx(20.0)
