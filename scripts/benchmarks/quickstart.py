"""quickstart: wall time and peak memory of the README's quick-start command, as a user runs
it, with each precision asked for; with --quickstart_settings, the same command with other
settings beside it, and the measures of each picture (nst_tf.quality at every depth), so
that a faster schedule is judged by the picture it gives as well as by its time."""

from __future__ import annotations

import os
import sys
import tempfile

from absl import flags

from benchmarks.timing import MEASURES, ROOT, peak_rss_gib

TITLE = "The README's quick start"
flags.DEFINE_integer("quickstart_runs", 1, "quickstart: runs of the command per precision.")
flags.DEFINE_list("quickstart_precisions", ["auto", "float32"], "quickstart: --precision values.")
flags.DEFINE_multi_string(
    "quickstart_settings", [],
    "quickstart: further nst-tf flags, space-separated, each a run beside the defaults' "
    "(e.g. '--steps=40 --init=fast'); with any, every picture is measured.",
)  # fmt: skip
FLAGS = flags.FLAGS


# The README's quick start, run as a user runs it.
QUICKSTART = (
    "--content=nst_tf/samples/astronaut.jpg",
    "--style=nst_tf/samples/woman-with-hat-matisse.jpg",
)


def run(repeats: int) -> str:
    del repeats  # minutes apiece: --quickstart_runs says how many
    settings = ["", *FLAGS.quickstart_settings]
    measured = len(settings) > 1
    lines = [
        "| precision | settings | runs | wall time (s), fastest to slowest | peak RSS (GiB) |"
        + "".join(f" {m} |" for m in MEASURES if measured),
        "|---|---|---:|---:|---:|" + "---:|" * (len(MEASURES) if measured else 0),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for precision in FLAGS.quickstart_precisions:
            for setting in settings:
                runs = []
                for run in range(FLAGS.quickstart_runs):
                    print(f"quickstart: --precision={precision} {setting}, run {run + 1} ...",
                          file=sys.stderr)  # fmt: skip
                    rss, seconds, _ = peak_rss_gib(
                        *(flag.replace("=", f"={ROOT}/", 1) for flag in QUICKSTART),
                        f"--output={os.path.join(tmp, 'out.png')}", f"--precision={precision}",
                        *setting.split(),
                    )  # fmt: skip
                    runs.append((seconds, rss))
                times = sorted(seconds for seconds, _ in runs)
                fastest, slowest = f"{times[0]:.0f}", f"{times[-1]:.0f}"
                span = fastest if fastest == slowest else f"{fastest} to {slowest}"
                peak = max(rss for _, rss in runs)
                name = setting or "the defaults"
                row = f"| {precision} | {name} | {len(runs)} | {span} | {peak:.2f} |"
                if measured:
                    picture = _measure(os.path.join(tmp, "out.png"))
                    row += "".join(f" {picture[m]:.2f} |" for m in MEASURES)
                lines.append(row)
    return (
        "The README's quick-start command (default settings: 512 px, coarse to fine from "
        "256 px, 160, 20 and 20 L-BFGS steps at 256, 362 and 512 px; `--weights=auto`, here "
        "the HED VGG16), a whole process from start to the written file, `--quickstart_runs` "
        "times with each precision (`auto`: bfloat16 on a CPU with AVX-512 BF16 or AMX)"
        + (
            ", and with each of `--quickstart_settings` beside the defaults. The measures are "
            "those of the last run's picture (nst_tf.quality, with the HED judge; block1 to "
            "block5: the style distance at each depth, 1 the photo, 0 the painting; colours: "
            "the way from the photo's colours to the painting's; edges: the photo's outlines "
            "kept; light: the photo's light layout kept), taken after the timed run."
            if measured
            else "."
        )
        + "\n\n"
        + "\n".join(lines)
    )


def _measure(path: str) -> dict:
    """nst_tf.quality's measures of the quick start's picture at `path`, at 512 px."""
    from nst_tf import quality
    from nst_tf.images import load_image

    photo, painting = (load_image(os.path.join(ROOT, f.split("=", 1)[1]), 512) for f in QUICKSTART)
    return quality.measure(photo, painting, load_image(path, 512))
