"""The one progress display of ``course grade``: it never freezes, and it is plain text where no terminal is.

On a terminal (stderr is a TTY with a width) a tqdm bar shows the stage, the steps done, the
elapsed time and an ETA, and a ticker thread redraws it every second with the elapsed time of
each submission still running, so a long cell never looks like a hang. Anywhere else (a pipe, a
log file, CI) it prints plain lines: one per step, and one every :attr:`Progress.heartbeat`
seconds while submissions run.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

from tqdm.auto import tqdm

SHOWN_RUNNING = 3  # students named in the running list; the rest are counted


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes:02d}:{seconds:02d}"


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal with a width (a bar can be drawn on it)."""
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):
        return False


class Progress:
    """Steps of one lesson's run (see the module docstring); a context manager."""

    def __init__(self, lesson: str, total: int, stream: TextIO | None = None, *, interval: float = 1.0,
                 heartbeat: float = 10.0, terminal: bool | None = None) -> None:
        self.lesson, self.total, self.stream = lesson, total, stream or sys.stderr
        self.interval, self.heartbeat = interval, heartbeat
        self.terminal = is_terminal(self.stream) if terminal is None else terminal
        self.stage_name, self.done = "prepare", 0
        self.running: dict[str, float] = {}
        self.redraws = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._last_line = 0.0
        self._bar: tqdm | None = None
        self._ticker: threading.Thread | None = None

    # --- what the pipeline tells it -----------------------------------------------------------

    def stage(self, name: str) -> None:
        with self._lock:
            self.stage_name = name
        self._show()

    def update(self, steps: int = 1) -> None:
        with self._lock:
            self.done += steps
            if self._bar is not None:
                self._bar.update(steps)
        self._show()

    def started(self, student: str) -> None:
        with self._lock:
            self.running[student] = time.monotonic()

    def finished(self, student: str) -> None:
        with self._lock:
            self.running.pop(student, None)

    # --- drawing ------------------------------------------------------------------------------

    def running_text(self) -> str:
        now = time.monotonic()
        with self._lock:
            running = sorted(self.running.items(), key=lambda item: item[1])
        named = ", ".join(f"{student} {_clock(now - since)}" for student, since in running[:SHOWN_RUNNING])
        more = f" +{len(running) - SHOWN_RUNNING} more" if len(running) > SHOWN_RUNNING else ""
        return f"running: {named}{more}" if running else ""

    def line(self) -> str:
        """One plain progress line."""
        text = (f"{self.lesson}: {self.stage_name} {self.done}/{self.total} "
                f"[{_clock(time.monotonic() - self._started)}]")
        running = self.running_text()
        return f"{text} {running}" if running else text

    def _show(self, tick: bool = False) -> None:
        if self.total == 0:
            return
        if self._bar is not None:
            with self._lock:
                self._bar.set_description_str(f"{self.lesson}: {self.stage_name}", refresh=False)
            self._bar.set_postfix_str(self.running_text(), refresh=True)
            self.redraws += 1
            return
        now = time.monotonic()
        if tick and (not self.running or now - self._last_line < self.heartbeat):
            return
        self._last_line = now
        print(self.line(), file=self.stream, flush=True)
        self.redraws += 1

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._show(tick=True)

    def __enter__(self) -> Progress:
        if self.terminal and self.total:
            self._bar = tqdm(total=self.total, desc=f"{self.lesson}: {self.stage_name}", unit="step",
                             file=self.stream, bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                                          "[{elapsed}<{remaining}] {postfix}")
        if self.total:
            self._ticker = threading.Thread(target=self._tick, name="course-grade-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._bar is not None:
            self._bar.close()
