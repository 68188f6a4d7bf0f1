"""Domain error → gRPC status, in one place.

The status carries google.rpc details in the ``grpc-status-details-bin`` trailer (the standard
rich-error encoding): ``ErrorInfo`` (reason = status name, metadata.field = the field at fault)
and, for INVALID_ARGUMENT, a ``BadRequest`` with one field violation.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from tinyforge.errors import TinyForgeError

DETAILS_KEY = "grpc-status-details-bin"


def status_code(exc: TinyForgeError) -> grpc.StatusCode:
    """The gRPC status code of a domain error (INTERNAL for unknown codes)."""
    return getattr(grpc.StatusCode, exc.code, grpc.StatusCode.INTERNAL)


def status_details(exc: TinyForgeError) -> bytes:
    """Serialized google.rpc.Status for the trailer."""
    code = status_code(exc)
    status = status_pb2.Status(code=code.value[0], message=exc.message)
    info = error_details_pb2.ErrorInfo(reason=code.name, domain="tinyforge")
    if exc.field:
        info.metadata["field"] = exc.field
    packed = any_pb2.Any()
    packed.Pack(info)
    status.details.append(packed)
    if exc.field and code == grpc.StatusCode.INVALID_ARGUMENT:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=exc.field, description=exc.message
                )
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad)
        status.details.append(packed)
    return status.SerializeToString()


def abort_with(context: grpc.ServicerContext, exc: TinyForgeError) -> None:
    """End the call with the status of ``exc`` (raises, like ``context.abort``)."""
    context.set_trailing_metadata(((DETAILS_KEY, status_details(exc)),))
    context.abort(status_code(exc), exc.message)
