"""Why a block run failed: domain errors that carry the block's last log lines.

Each class derives from the matching :mod:`tinyforge.errors` class, so services map them to
gRPC codes like any other domain error, and each message ends with the block's log tail so the
user sees what the block said without digging for logs.
"""

from __future__ import annotations

from collections.abc import Sequence

from tinyforge.errors import (
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    NotFound,
    ResourceExhausted,
    TinyForgeError,
)

#: How many of the block's last output lines a failure message quotes.
TAIL_LINES = 20


class BlockRunError(TinyForgeError):
    """Mixin: a block run failed; ``log_tail`` holds the block's last output lines."""

    log_tail: list[str]

    def __init__(
        self, message: str, *, log_tail: Sequence[str] = (), field: str | None = None
    ) -> None:
        tail = [line for line in log_tail if line.strip()][-TAIL_LINES:]
        full = message + ("\n--- last block output ---\n" + "\n".join(tail) if tail else "")
        super().__init__(full, field=field)
        self.summary = message
        self.log_tail = list(tail)


class BlockFailed(BlockRunError, FailedPrecondition):
    """The block exited non-zero, or exited 0 without writing the output its type requires."""


class BlockTimedOut(BlockRunError, DeadlineExceeded):
    """The block ran past its time limit and was stopped."""


class BlockOutOfMemory(BlockRunError, ResourceExhausted):
    """The block was OOM-killed for exceeding its memory limit."""


class BlockImageNotFound(BlockRunError, NotFound):
    """The block's image is neither in local storage nor pullable from its registry."""


class BlockCancelled(BlockRunError, Cancelled):
    """The run was cancelled; the block was stopped."""
