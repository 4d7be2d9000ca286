"""The command's progress line: step, loss terms, speed and ETA."""

from __future__ import annotations

import sys
import time


class Progress:
    """Step, loss terms, speed and ETA: one live line on a terminal, else every 5%.

    `scales` are the run's (size, steps), coarse to fine. A step's cost is taken to grow
    with its pixel count, so the ETA after the cheap coarse steps allows for the dear fine
    ones: time so far over work done, times the work left.
    """

    def __init__(self, scales: list[tuple[int, int]], first: int = 0, stream=sys.stderr):
        self.scales = scales
        self.total = sum(steps for _, steps in scales)
        self.first = first  # steps already taken before this run (resumed)
        self.stream = stream
        self.live = stream.isatty()
        self.every = max(1, self.total // 20)
        self.start = time.monotonic()

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

    def update(self, step: int, terms: dict[str, float]) -> None:
        if not self.live and step % self.every and step != self.total:
            return
        elapsed = time.monotonic() - self.start
        per_step = elapsed / (step - self.first)
        losses = " ".join(f"{k} {terms[k]:.4g}" for k in ("total", "content", "style", "tv"))
        line = (
            f"step {step}/{self.total}  {losses}  {per_step:.2f} s/step  "
            f"ETA {_clock(self.eta(step, elapsed))}"
        )
        self.stream.write(f"\r{line}\033[K" if self.live else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
