"""What long-running library functions report to: logs, progress, cancellation.

Library code (feature generation, training, testing, builds) takes a :class:`Reporter`; a
:class:`tinyforge.jobs.JobContext` is one (job log, progress, cancel flag), a pipeline step
passes a :class:`tinyforge.workflows.steps.StepReporter`, and direct callers get
:class:`QuietReporter` by default.
"""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """Receives a long operation's log lines and progress, and may cancel it."""

    def log(self, line: str) -> None: ...
    def progress(self, fraction: float, message: str = "") -> None: ...
    def check_cancelled(self) -> None: ...


class QuietReporter:
    """Reports nowhere and never cancels (library calls outside a job)."""

    def log(self, line: str) -> None:
        pass

    def progress(self, fraction: float, message: str = "") -> None:
        pass

    def check_cancelled(self) -> None:
        pass
