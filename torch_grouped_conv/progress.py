"""Saying that a long stage has started, on stderr.

On a terminal: a rich spinner with the stage's name and the seconds it has
been running, gone when the stage ends. Otherwise (a log, a pipe): one line
`NAME …` when a stage in `ANNOUNCED` starts (an IREE compile of a network
takes tens of seconds), nothing for the others, so error output stays one
line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

ANNOUNCED = ("compile",)


class StageProgress:
    """`started(name)` / `done(name)` around each stage (the verify job's hooks), or `stage(name)`."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self._live: Progress | None = None

    def started(self, name: str) -> None:
        self.done(name)
        if not self.console.is_terminal:
            if name in ANNOUNCED:
                self.console.print(f"{name} …")
            return
        self._live = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                              console=self.console, transient=True)
        self._live.add_task(f"{name} …", total=None)
        self._live.start()

    def done(self, name: str = "") -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.started(name)
        try:
            yield
        finally:
            self.done(name)
