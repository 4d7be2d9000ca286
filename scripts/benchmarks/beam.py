"""beam: photos per minute of nst-tf-beam on the local runner, with 1 and 2 worker processes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from absl import flags

from benchmarks.timing import SAMPLES

TITLE = "Photo collections on Apache Beam"
flags.DEFINE_integer("beam_photos", 8, "beam: photos in the collection (copies of the samples).")
flags.DEFINE_integer("beam_size", 256, "beam: --size of each painting.")
flags.DEFINE_list("beam_workers", ["1", "2"], "beam: --direct_num_workers of each run.")
FLAGS = flags.FLAGS
PHOTOS = ("chelsea.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg")


def run(repeats: int) -> str:
    del repeats  # one run per worker count: minutes apiece
    lines = [
        "| worker processes | photos | wall time (s) | photos per minute | s per photo (metric) |",
        "|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        photos = os.path.join(tmp, "photos")
        os.makedirs(photos)
        for i in range(FLAGS.beam_photos):
            name = PHOTOS[i % len(PHOTOS)]
            shutil.copy(os.path.join(SAMPLES, name), os.path.join(photos, f"{i:03d}_{name}"))
        for workers in (int(w) for w in FLAGS.beam_workers):
            print(f"beam: {workers} worker(s) ...", file=sys.stderr)
            start = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "nst_tf.beam_cli", f"--input={photos}/*.jpg",
                 f"--style={os.path.join(SAMPLES, 'the_scream.jpg')}",
                 f"--output_dir={os.path.join(tmp, f'out{workers}')}", "--weights=random",
                 f"--size={FLAGS.beam_size}", f"--direct_num_workers={workers}",
                 "--direct_running_mode=multi_processing"],
                capture_output=True, text=True,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            if result.returncode:
                raise RuntimeError(f"nst-tf-beam failed:\n{result.stderr}")
            per_photo = re.search(r"\(([0-9.]+) s per photo\)", result.stderr)
            lines.append(
                f"| {workers} | {FLAGS.beam_photos} | {seconds:.0f} | "
                f"{60 * FLAGS.beam_photos / seconds:.1f} | "
                f"{per_photo.group(1) if per_photo else '-'} |"
            )
    return (
        f"`nst-tf-beam` on the DirectRunner in multi-processing mode, {FLAGS.beam_photos} photos "
        f"(the bundled samples) at {FLAGS.beam_size} px with the other settings at their "
        "defaults, random weights; wall time of the whole command, start-up included. Each "
        "worker process builds its own model and uses every core, so on a machine with few "
        "cores more workers share them rather than add to them.\n\n" + "\n".join(lines)
    )
