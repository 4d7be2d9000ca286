#!/usr/bin/env python3
"""Benchmarks of nst_tf, printed as Markdown tables, and recorded in BENCHMARKS.md on request.

    python scripts/benchmark.py --suite=step,serving
    python scripts/benchmark.py --suite=quickstart --quickstart_runs=3 --record

The suites are the modules of scripts/benchmarks/ (its docstring lists them and their flags).
With --record, each suite's report replaces its current section in BENCHMARKS.md, and the
section it replaces moves to docs/benchmarks-history.md.

Timings use random weights: the arithmetic is the same as with the ImageNet weights.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from types import ModuleType

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import as_avx2  # noqa: E402  (scripts/as_avx2.py, beside this file)
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402
from benchmarks import (  # noqa: E402  (scripts/benchmarks/, beside this file)
    batch,
    beam,
    breakdown,
    conv,
    devices,
    fast,
    history,
    large,
    multiscale,
    overhead,
    phases,
    precision,
    quickstart,
    serving,
    step,
    time_to_quality,
    video,
    warm_start,
)
from benchmarks.record import record, section  # noqa: E402

from nst_tf.features import cpu_flags  # noqa: E402

SUITES: dict[str, ModuleType] = {
    "quickstart": quickstart,
    "step": step,
    "overhead": overhead,
    "breakdown": breakdown,
    "phases": phases,
    "conv": conv,
    "precision": precision,
    "batch": batch,
    "large": large,
    "serving": serving,
    "multiscale": multiscale,
    "time_to_quality": time_to_quality,
    "history": history,
    "beam": beam,
    "devices": devices,
    "video": video,
    "fast": fast,
    "warm_start": warm_start,
}

flags.DEFINE_list("suite", ["step"], f"Suites to run, in order: {', '.join(SUITES)}.")
flags.DEFINE_integer("repeats", 10, "Timed rounds (after the warm-up rounds).")
flags.DEFINE_bool(
    "record",
    False,
    "Put each report in BENCHMARKS.md in place of the suite's current one, which moves to "
    "docs/benchmarks-history.md.",
)
FLAGS = flags.FLAGS


def title(suite: ModuleType) -> str:
    """The suite's heading: its TITLE, the variant its flags chose, if any, and whether it
    runs under scripts/as_avx2.py."""
    variant = suite.variant() if hasattr(suite, "variant") else ""
    name = f"{suite.TITLE}: {variant}" if variant else suite.TITLE
    return f"{name}, as an AVX2-only CPU" if as_avx2.active() else name


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    shown = " as scripts/as_avx2.py shows it" if as_avx2.active() else ""
    return (
        f"{cpu} ({vector_extensions()}{shown}), {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}"
    )


def vector_extensions() -> str:
    """The CPU's widest vector arithmetic: machines named alike ("AMD EPYC") differ in it,
    and with it in speed and in the precision `auto` picks."""
    cpu = cpu_flags()
    for flag, name in (
        ("amx_bf16", "AMX"),
        ("avx512_bf16", "AVX-512 BF16"),
        ("avx512f", "AVX-512"),
        ("avx2", "AVX2"),
    ):
        if flag in cpu:
            return name
    return "no AVX2"


# Environment variables that change what TensorFlow runs, named in a result's command.
RUNTIME_SETTINGS = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA")


def main(argv):
    del argv
    unknown = set(FLAGS.suite) - set(SUITES)
    if unknown:
        raise app.UsageError(
            f"unknown suite {', '.join(sorted(unknown))}; choose from {', '.join(SUITES)}"
        )
    # quoted as a shell needs it: a setting with spaces stays one argument when rerun
    settings = [f"{name}={shlex.quote(os.environ[name])} " for name in RUNTIME_SETTINGS
                if name in os.environ]  # fmt: skip
    wrapper = "python scripts/as_avx2.py " if as_avx2.active() else ""
    arguments = shlex.join(sys.argv[1:])
    command = f"{''.join(settings)}{wrapper}python scripts/benchmark.py {arguments}"
    # The large suite first: its child processes need the memory that the other suites
    # leave held by this process.
    for name in sorted(FLAGS.suite, key=lambda name: name != "large"):
        suite = SUITES[name]
        report = suite.run(FLAGS.repeats)
        result = section(title(suite), time.strftime("%Y-%m-%d"), machine(), command, report)
        print(result)
        if FLAGS.record:
            record(title(suite), result)


if __name__ == "__main__":
    app.run(main)
