"""The benchmark tooling: BENCHMARKS.md keeps one current section per suite, and a suite runs
from the command with its own flags."""

import os
import re
import subprocess
import sys

import pytest

SCRIPTS = os.path.join(os.path.dirname(__file__), "..", "scripts")
sys.path.insert(0, SCRIPTS)

from benchmarks.record import record, section  # noqa: E402

PAGE = """# Benchmarks

Intro.

## Current results

### Step time

Date: 2026-11-20
Machine: old
Command: `python scripts/benchmark.py --suite=step`
| old step table |

### Batch

Date: 2026-11-21
Machine: old
Command: `python scripts/benchmark.py --suite=batch`
| old batch table |
![sheet](docs/batch.jpg)

## What is measured

Methods.
"""


def test_record_replaces_the_current_section_and_keeps_the_rest(tmp_path):
    page, history = tmp_path / "BENCHMARKS.md", tmp_path / "history.md"
    page.write_text(PAGE)
    history.write_text("# Benchmark history\n")
    new = section("Batch", "2026-12-01", "new", "python scripts/benchmark.py", "| new |\n")
    record("Batch", new, str(page), str(history))
    text = page.read_text()
    assert "| new |" in text and "| old batch table |" not in text
    assert "| old step table |" in text  # the other suite's section untouched
    assert text.index("### Step time") < text.index("### Batch") < text.index("## What is")
    assert text.endswith("## What is measured\n\nMethods.\n")
    assert text.count("### Batch") == 1
    kept = history.read_text()
    assert "### Batch, 2026-12-01\n\nMachine: new\n" in kept and "Date:" not in kept


def test_record_adds_a_new_suite_after_the_others_and_rewrites_links_for_docs(tmp_path):
    page, history = tmp_path / "BENCHMARKS.md", tmp_path / "history.md"
    page.write_text(PAGE)
    history.write_text("")
    new = section("Serving", "2026-12-01", "m", "c", "![plot](docs/p.svg) see [x](README.md)")
    record("Serving", new, str(page), str(history))
    text = page.read_text()
    assert text.index("### Batch") < text.index("### Serving") < text.index("## What is")
    assert "| old batch table |" in text
    assert "![plot](p.svg) see [x](../README.md)" in history.read_text()


@pytest.mark.slow
def test_a_suite_runs_from_the_command(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(SCRIPTS, "benchmark.py"), "--suite=batch",
         "--batch_size_px=32", "--batch_count=2", "--repeats=1",
         "--quickstart_settings=--init=recolored --steps=200"],  # another suite's, unused
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # (under scripts/as_avx2.py the heading says so)
    assert re.match(r"### Batch against one image at a time(, as .*)?\n\nDate: ", result.stdout)
    assert "| batch of 2 |" in result.stdout
    # the command as a shell reruns it: the setting with a space is quoted
    assert "--repeats=1 '--quickstart_settings=--init=recolored --steps=200'`" in result.stdout


def test_settled_is_the_first_snapshot_near_the_last_at_every_depth():
    from benchmarks.time_to_quality import SLACK, Trace, settled

    from nst_tf.quality import DEPTHS

    def measures(value, block5=None, edges=0.8):
        return {**dict.fromkeys(DEPTHS, value), "block5": block5 or value, "edges": edges}

    trace = Trace("defaults", seconds=[0, 1, 2, 3, 4], steps=[0, 10, 20, 30, 40])
    trace.measures = [
        measures(1.0),
        measures(0.5, block5=0.9),  # the shallow blocks there, block 5 not
        measures(0.5 + SLACK / 2, edges=0.8 - 2 * SLACK),  # every depth there, edges not
        measures(0.5 + SLACK / 2),
        measures(0.5),
    ]
    trace.scheduled = 2
    assert settled(trace) == 3
    trace.scheduled = 4  # stopped at its schedule: nothing to have converged to
    assert settled(trace) is None
