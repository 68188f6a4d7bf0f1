"""Domain errors raised by the tinyforge library.

Services translate them to gRPC status codes (and HTTP codes for the Edge-Impulse-compatible
ingestion API) in one place, so library code never imports grpc. Every error names the field or
the object it is about, so a user can fix the request from the message alone.
"""

from __future__ import annotations


class TinyForgeError(Exception):
    """Base class. ``code`` is the gRPC status name the service layer maps it to."""

    code = "INTERNAL"
    http_status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field  # the request field at fault, when there is one


class InvalidArgument(TinyForgeError):
    """The request is malformed: bad value, wrong shape, corrupt file, unknown label."""

    code = "INVALID_ARGUMENT"
    http_status = 400


class NotFound(TinyForgeError):
    code = "NOT_FOUND"
    http_status = 404


class AlreadyExists(TinyForgeError):
    code = "ALREADY_EXISTS"
    http_status = 409


class FailedPrecondition(TinyForgeError):
    """The request is valid but the system is not in a state to serve it (e.g. no features yet)."""

    code = "FAILED_PRECONDITION"
    http_status = 409


class Unauthenticated(TinyForgeError):
    code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDenied(TinyForgeError):
    code = "PERMISSION_DENIED"
    http_status = 403


class ResourceExhausted(TinyForgeError):
    """Too large (payload over the limit, model over the target's RAM/flash)."""

    code = "RESOURCE_EXHAUSTED"
    http_status = 413


class Cancelled(TinyForgeError):
    """A job noticed that its cancellation was requested."""

    code = "CANCELLED"
    http_status = 499


class DeadlineExceeded(TinyForgeError):
    code = "DEADLINE_EXCEEDED"
    http_status = 504
