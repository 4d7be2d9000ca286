"""BENCHMARKS.md keeps one current section per suite, and docs/benchmarks-history.md every
result ever recorded, oldest first: `record` puts a new result in place of the suite's
current one and appends it to the history."""

from __future__ import annotations

import os
import re

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
BENCHMARKS = os.path.join(ROOT, "BENCHMARKS.md")
HISTORY = os.path.join(ROOT, "docs", "benchmarks-history.md")
CURRENT = "## Current results"


def section(title: str, date: str, machine: str, command: str, report: str) -> str:
    """A current section: heading, date, machine, command and the suite's report."""
    return (
        f"### {title}\n\nDate: {date}\nMachine: {machine}\nCommand: `{command}`\n{report.strip()}\n"
    )


def record(title: str, new: str, benchmarks: str = BENCHMARKS, history: str = HISTORY) -> None:
    """Put `new` (a section) in BENCHMARKS.md's current results in place of the section of
    the same title, or after the last one, and append it to the history."""
    with open(benchmarks) as f:
        text = f.read()
    start = text.index(CURRENT) + len(CURRENT)
    end = text.find("\n## ", start)
    end = len(text) if end < 0 else end + 1
    sections = re.split(r"(?m)^(?=### )", text[start:end])
    head, sections = sections[0], sections[1:]
    titles = [s.splitlines()[0].removeprefix("### ").strip() for s in sections]
    if title in titles:
        sections[titles.index(title)] = new.rstrip("\n") + "\n\n"
    else:
        if sections:
            sections[-1] = sections[-1].rstrip("\n") + "\n\n"
        sections.append(new.rstrip("\n") + "\n\n")
    with open(benchmarks, "w") as f:
        f.write(text[:start] + head + "".join(sections) + text[end:])
    _append_to_history(new, history)


def _append_to_history(new: str, history: str) -> None:
    """The section as the history keeps it: its date in the heading, links from docs/."""
    lines = new.rstrip("\n").splitlines()
    date = next((line[len("Date: ") :] for line in lines if line.startswith("Date: ")), "")
    body = [line for line in lines[1:] if not line.startswith("Date: ")]
    heading = lines[0] + (f", {date}" if date else "")
    text = "\n".join([heading, *body])
    text = re.sub(r"\]\(docs/", "](", text)
    text = re.sub(r"\]\((?!https?:|#|\.\./)([^)/]+\.md)\)", r"](../\1)", text)
    with open(history, "a") as f:
        f.write(f"\n{text}\n")
