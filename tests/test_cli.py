"""The nst-tf command end to end, in a subprocess, as a user runs it."""

import os
import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import CONTENT_PATH, STYLE_PATH

FAST = ["--weights=random", "--size=48", "--steps=4"]


def nst_tf(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), ".."))
    return subprocess.run(
        [sys.executable, "-m", "nst_tf", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
    )  # fmt: skip


def test_end_to_end_writes_output_and_intermediate_saves(tmp_path):
    out = tmp_path / "out.jpg"
    result = nst_tf(
        f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", f"--output={out}",
        *FAST, "--save_every=2", "--optimizer=adam",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with Image.open(out) as img:
        assert img.format == "JPEG"
        assert img.size == (48, 32)  # the 451x300 content, longest side 48
    assert (tmp_path / "out_0002.jpg").exists()
    assert sorted(os.listdir(tmp_path)) == ["out.jpg", "out_0002.jpg"]  # no temp files left
    assert "step 4/4" in result.stderr


def test_flagfile_and_webp_output(tmp_path):
    out = tmp_path / "result.webp"
    flagfile = tmp_path / "run.flags"
    flagfile.write_text(
        "\n".join([f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", *FAST, "--steps=1"])
    )
    result = nst_tf(f"--flagfile={flagfile}", f"--output={out}")
    assert result.returncode == 0, result.stderr
    with Image.open(out) as img:
        assert img.format == "WEBP"


@pytest.fixture
def bad_files(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image\n")
    truncated = tmp_path / "truncated.png"
    Image.open(CONTENT_PATH).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    return {"text": text, "truncated": truncated, "empty": empty}


BAD_INPUTS = [
    # (name, extra flags, expected message fragment, exit code)
    ("missing content", ["--content=/no/such/photo.jpg"], "no such file", 2),
    ("text file named .jpg", ["--content={text}"], "not a readable image", 2),
    ("truncated png", ["--style={truncated}"], "not a readable image", 2),
    ("empty file", ["--style={empty}"], "not a readable image", 2),
    ("directory", ["--content={tmp}"], "is a directory", 2),
    ("unknown layer", ["--style_layers=block1_conv1,block9_conv9"], "unknown VGG19 layer", 2),
    ("negative weight", ["--style_weight=-1"], "style_weight must be", 2),
    ("nan weight", ["--tv_weight=nan"], "tv_weight must be", 2),
    ("zero steps", ["--steps=0"], "steps must be at least 1", 2),
    ("layer weights count", ["--style_layer_weights=1,2"], "2 style layer weights", 2),
    ("bad flag value", ["--steps=many"], "steps", 2),
    ("unknown optimizer", ["--optimizer=sgd"], "optimizer", 2),
    ("missing output dir", ["--output=/no/such/dir/out.png"], "does not exist", 2),
    ("bad extension", ["--output={tmp}/out.gif"], "unsupported output extension", 2),
    ("weights not vgg19", ["--weights={text}"], "not a Keras VGG19", 1),
]


@pytest.mark.parametrize("name,flags,message,code", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gives_one_clear_line_and_no_output(
    tmp_path, bad_files, name, flags, message, code
):
    out = tmp_path / "out.png"
    fill = {"tmp": tmp_path, **bad_files}
    args = [f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", f"--output={out}", *FAST]
    args += [flag.format(**fill) for flag in flags]  # later flags override earlier ones
    result = nst_tf(*args)
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("nst-tf: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".nst_tf-")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only directory")
def test_unwritable_output_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    out = f"--output={locked}/o.png"
    result = nst_tf(f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}", out, *FAST)
    assert result.returncode == 2 and "not writable" in result.stderr
