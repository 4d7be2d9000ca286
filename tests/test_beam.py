"""Photo collections on Apache Beam (nst_tf.beam, nst-tf-beam), on the local runner."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.conftest import CONTENT_PATH, EXPORT_SIZE, EXPORT_STEPS, SAMPLES, STYLE_PATH, run_module

pytestmark = pytest.mark.slow  # pipelines and whole runs

beam = pytest.importorskip("apache_beam", reason="the beam extra is not installed")
FLAGS = ["--weights=random", "--size=48", "--steps=4", "--precision=float32"]
PHOTOS = ("chelsea.jpg", "coffee.jpg", "rocket.jpg")


@pytest.fixture
def photos(tmp_path):
    """Three photos and a file that is not one."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS:
        shutil.copy(os.path.join(SAMPLES, name), folder / name)
    (folder / "notes.jpg").write_text("not an image\n")
    return folder


def test_a_folder_is_painted_a_bad_file_recorded_and_a_rerun_does_nothing(tmp_path, photos):
    from nst_tf.beam import Painting, metrics, pipeline
    from nst_tf.config import Config
    from tests.test_cli import nst_tf_here

    out = tmp_path / "out"
    config = Config(size=48, steps=4, weights="random", precision="float32")
    painting = Painting(config, (STYLE_PATH,), str(out))

    def run():
        with beam.Pipeline() as root:
            pipeline(root, str(photos / "*.jpg"), painting)
        return metrics(root.result)

    done, failed, seconds = run()
    assert (done, failed) == (3, 1) and seconds > 0
    assert sorted(os.listdir(out)) == ["chelsea.png", "coffee.png", "failures.jsonl", "rocket.png"]
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert failures == [
        {"input": str(photos / "notes.jpg"),
         "error": f"{photos / 'notes.jpg'}: not a readable image (no image format Pillow reads)"}
    ]  # fmt: skip

    # What nst-tf writes for the same settings, byte for byte: the same code paints both.
    for name in PHOTOS:
        own = tmp_path / f"own_{name}.png"
        command = nst_tf_here(
            f"--content={photos / name}", f"--style={STYLE_PATH}", f"--output={own}", *FLAGS
        )
        assert command.returncode == 0, command.stderr
        assert (out / name.replace(".jpg", ".png")).read_bytes() == own.read_bytes()

    written = {p: os.stat(out / p).st_mtime_ns for p in os.listdir(out) if p.endswith(".png")}
    done, failed, _ = run()
    assert (done, failed) == (0, 1)  # only the bad file is tried again
    assert written == {p: os.stat(out / p).st_mtime_ns for p in written}


def test_the_command_paints_with_an_exported_model(tmp_path, photos, export_path):
    """nst-tf-beam --model_dir: the SavedModel's stylize signature paints what nst-tf-beam
    paints from the export's flags, within a grey level (served and Python loops round
    alike but not identically). The export is the session's (conftest.export_path)."""
    (photos / "notes.jpg").unlink()
    common = [f"--input={photos}/c*.jpg", f"--style={STYLE_PATH}"]
    served = run_module(
        "nst_tf.beam_cli", *common, f"--output_dir={tmp_path / 'served'}",
        f"--model_dir={export_path}", "--direct_num_workers=1",
    )  # fmt: skip
    assert served.returncode == 0, served.stderr
    assert "Painted 2 photos" in served.stderr and "0 failed" in served.stderr
    exported = [f"--size={EXPORT_SIZE}", f"--steps={EXPORT_STEPS}"]
    ran = run_module(
        "nst_tf.beam_cli", *common, f"--output_dir={tmp_path / 'ran'}", *FLAGS, *exported
    )
    assert ran.returncode == 0, ran.stderr
    for name in ("chelsea.png", "coffee.png"):
        a, b = (np.asarray(Image.open(tmp_path / d / name), np.float32) for d in ("served", "ran"))
        assert a.shape == b.shape
        assert np.abs(a - b).mean() < 0.05 and np.abs(a - b).max() <= 2


def test_bad_flags_are_one_line(tmp_path):
    result = run_module(
        "nst_tf.beam_cli", f"--input={CONTENT_PATH}", "--style=/no/such.jpg",
        f"--output_dir={tmp_path}", *FLAGS,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == "nst-tf-beam: error: /no/such.jpg: no such file"
    assert os.listdir(tmp_path) == []
