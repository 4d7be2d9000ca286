"""quickstart: wall time and peak memory of the README's quick-start command, as a user runs
it, with each precision asked for."""

from __future__ import annotations

import os
import sys
import tempfile

from absl import flags

from benchmarks.timing import ROOT, peak_rss_gib

TITLE = "The README's quick start"
flags.DEFINE_integer("quickstart_runs", 1, "quickstart: runs of the command per precision.")
flags.DEFINE_list("quickstart_precisions", ["auto", "float32"], "quickstart: --precision values.")
FLAGS = flags.FLAGS


# The README's quick start, run as a user runs it.
QUICKSTART = (
    "--content=nst_tf/samples/astronaut.jpg",
    "--style=nst_tf/samples/woman-with-hat-matisse.jpg",
)


def run(repeats: int) -> str:
    del repeats  # minutes apiece: --quickstart_runs says how many
    lines = [
        "| precision | runs | wall time (s), fastest to slowest | peak RSS (GiB) |",
        "|---|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for precision in FLAGS.quickstart_precisions:
            runs = []
            for run in range(FLAGS.quickstart_runs):
                print(f"quickstart: --precision={precision}, run {run + 1} ...", file=sys.stderr)
                rss, seconds, _ = peak_rss_gib(
                    *(flag.replace("=", f"={ROOT}/", 1) for flag in QUICKSTART),
                    f"--output={os.path.join(tmp, 'out.png')}", f"--precision={precision}",
                )  # fmt: skip
                runs.append((seconds, rss))
            times = sorted(seconds for seconds, _ in runs)
            span = f"{times[0]:.0f}" if len(times) == 1 else f"{times[0]:.0f} to {times[-1]:.0f}"
            peak = max(rss for _, rss in runs)
            lines.append(f"| {precision} | {len(runs)} | {span} | {peak:.2f} |")
    return (
        "The README's quick-start command (default settings: 512 px, coarse to fine from "
        "256 px, 100 L-BFGS steps at 512 px; `--weights=auto`, here the HED VGG16), a whole "
        "process from start to the written file, `--quickstart_runs` times with each "
        "precision (`auto`: bfloat16 on a CPU with AVX-512 BF16 or AMX).\n\n" + "\n".join(lines)
    )
