"""The docs cannot rot: the README's Python examples run, its links resolve, and every flag
the docs name is a flag of the program it belongs to."""

import glob
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
README = os.path.join(ROOT, "README.md")
# The pages a user reads; docs/benchmarks-history.md keeps old commands as they were run.
PAGES = [README, *(p for p in glob.glob(os.path.join(ROOT, "docs", "*.md")) if "history" not in p)]
# Our programs, each asked for --helpfull.
PROGRAMS = [
    ["-m", "nst_tf"],
    ["-m", "nst_tf.export_cli"],
    ["-m", "nst_tf.beam_cli"],
    *(
        [os.path.join(ROOT, "scripts", name)]
        for name in ("serving_client.py", "gallery.py", "benchmark.py", "imagenet_vgg19.py")
    ),
]
# Flags of other programs the docs show, by program.
OTHERS = {
    "docker run": {"rm", "mount", "gpus"},
    "tensorflow_model_server": {"model_config_file", "rest_api_timeout_in_ms", "enable_batching"},
    "saved_model_cli": {"dir", "all"},
    "ruff format": {"check"},
    "pip download": {"no"},  # --no-deps
}
FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9_]*)")
HELP_FLAG = re.compile(r"--(?:\[no\])?([a-z][a-z0-9_]*)")  # absl's help: --[no]name for a bool


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def python_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", read(README), re.S)


def test_the_readme_is_short_and_shows_each_way_of_use():
    text = read(README)
    assert len(text.splitlines()) <= 250
    assert "pytest -n 2" in text and "nst-tf --content=" in text and "nst-tf-export" in text
    assert len(python_examples()) >= 1


@pytest.mark.parametrize("page", PAGES, ids=os.path.basename)
def test_every_link_resolves_to_a_file(page):
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", read(page))
    local = [link for link in links if "://" not in link]
    missing = [
        link for link in local if not os.path.exists(os.path.join(os.path.dirname(page), link))
    ]
    assert not missing, missing


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(python_examples())))
def test_each_python_example_of_the_readme_runs(index, tmp_path, monkeypatch):
    """Run from a folder whose nst_tf/samples is the repository's, so the example's relative
    paths hold and what it writes lands in the temporary folder."""
    os.makedirs(tmp_path / "nst_tf")
    os.symlink(os.path.join(ROOT, "nst_tf", "samples"), tmp_path / "nst_tf" / "samples")
    monkeypatch.chdir(tmp_path)
    source = python_examples()[index]
    assert 'weights="random"' in source  # the small test weights: quick and offline
    exec(compile(source, f"README.md example {index + 1}", "exec"), {"__name__": "__example__"})


def helpfull(program: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *program, "--helpfull"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )


def beam_options() -> set[str]:
    """Apache Beam's pipeline options, which nst-tf-beam passes on to Beam."""
    pytest.importorskip("apache_beam")
    from apache_beam.options.pipeline_options import PipelineOptions

    return set(PipelineOptions([]).get_all_options())


@pytest.mark.slow
def test_every_flag_the_docs_name_exists():
    running = [helpfull(program) for program in PROGRAMS]  # side by side: a start-up each
    known = set(beam_options()).union(*OTHERS.values())
    for process in running:
        output, _ = process.communicate(timeout=600)
        known |= set(HELP_FLAG.findall(output))
    named = {(flag, os.path.basename(page)) for page in PAGES for flag in FLAG.findall(read(page))}
    unknown = sorted(f"--{flag} ({page})" for flag, page in named if flag not in known)
    assert "style_weight" in known and "export_dir" in known  # the programs answered
    assert not unknown, unknown
