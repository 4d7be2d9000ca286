"""The command's progress lines: step, loss terms, speed and ETA; frames of a clip."""

from __future__ import annotations

import sys
import time

TERMS = ("total", "content", "style", "tv", "temporal")  # in the order shown


class _Line:
    """A progress line on `stream` (default: sys.stderr as it is at construction): rewritten
    in place on a terminal, else a new line each time."""

    def __init__(self, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.live = self.stream.isatty()

    def show(self, line: str) -> None:
        self.stream.write(f"\r{line}\033[K" if self.live else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")


class Progress(_Line):
    """Evaluations, accepted steps, loss terms, speed and ETA: one live line on a terminal,
    else every 5%.

    `scales` are the run's (size, steps), coarse to fine, a step being one evaluation of
    the loss (the run's budget, and what its time goes on). The terms shown are those of
    the last image the optimizer accepted; a trial its line search rejects counts as an
    evaluation, not a step. An evaluation's cost is taken to grow with its pixel count, so
    the ETA after the cheap coarse ones allows for the dear fine ones: time so far over work
    done, times the work left.
    """

    def __init__(self, scales: list[tuple[int, int]], first: int = 0, stream=None):
        self.scales = scales
        self.total = sum(steps for _, steps in scales)
        super().__init__(stream)
        self.first = first  # steps already taken before this run (resumed)
        self.every = max(1, self.total // 20)
        self.start = time.monotonic()
        self.accepted = 0  # steps accepted in this run
        self.terms: dict[str, float] | None = None  # at the last accepted image

    def work(self, step: int) -> int:
        """The cost of steps 1 ... step, in pixels processed."""
        done = 0
        for size, steps in self.scales:
            taken = min(step, steps)
            done, step = done + taken * size * size, step - taken
        return done

    def eta(self, step: int, elapsed: float) -> float:
        """Seconds left after `step`, at the pace of the steps taken since `first`."""
        pace = elapsed / max(self.work(step) - self.work(self.first), 1)
        return pace * (self.work(self.total) - self.work(step))

    def update(self, step: int, terms: dict[str, float], accepted: bool = True) -> None:
        """After evaluation `step` (1 ... total), its terms, and whether it was accepted."""
        if accepted:
            self.accepted += 1
            self.terms = terms
        if not self.live and step % self.every and step != self.total:
            return
        elapsed = time.monotonic() - self.start
        per_step = elapsed / (step - self.first)
        shown = self.terms or terms
        losses = " ".join(f"{k} {shown[k]:.4g}" for k in TERMS if k in shown)
        line = (
            f"eval {step}/{self.total} ({self.accepted} accepted)  {losses}  "
            f"{per_step:.2f} s/eval  ETA {_clock(self.eta(step, elapsed))}"
        )
        self.show(line)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class FrameProgress(_Line):
    """A clip's progress: frames done, seconds per frame and the time left; one live line on
    a terminal, else a line per frame. The first frame, painted coarse to fine, costs more
    than the others, so the pace is that of the frames after it once there are some."""

    def __init__(self, total: int, first: int = 0, stream=None):
        super().__init__(stream)
        self.total = total
        self.done = first  # frames already on disk before this run (resumed)
        self.times: list[float] = []  # seconds of each frame after the clip's first
        self.last = time.monotonic()

    def update(self, frame: int) -> None:
        """After frame `frame` (1 ... total) is on disk."""
        now, self.done = time.monotonic(), frame
        seconds, self.last = now - self.last, now
        if frame > 1:
            self.times.append(seconds)
        pace = sum(self.times) / len(self.times) if self.times else seconds
        line = (
            f"frame {frame}/{self.total}  {seconds:.1f} s  {pace:.1f} s/frame  "
            f"ETA {_clock(pace * (self.total - frame))}"
        )
        self.show(line)
