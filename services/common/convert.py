"""Metadata rows → API messages (and API enums ↔ domain enums)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from tinyforge.errors import InvalidArgument
from tinyforge.store import models
from tinyforge.v1 import common_pb2 as pb

_ROLE_TO_PB = {
    models.Role.ADMIN: pb.ROLE_ADMIN,
    models.Role.MEMBER: pb.ROLE_MEMBER,
    models.Role.GUEST: pb.ROLE_GUEST,
}
_ROLE_FROM_PB = {v: k for k, v in _ROLE_TO_PB.items()}
_LABELING_TO_PB = {
    "single_label": pb.LABELING_METHOD_SINGLE_LABEL,
    "object_detection": pb.LABELING_METHOD_OBJECT_DETECTION,
    "structured_labels": pb.LABELING_METHOD_STRUCTURED_LABELS,
}
_LABELING_FROM_PB = {v: k for k, v in _LABELING_TO_PB.items()}
_STATUS_TO_PB = {
    models.JobStatus.PENDING: pb.JOB_STATUS_PENDING,
    models.JobStatus.RUNNING: pb.JOB_STATUS_RUNNING,
    models.JobStatus.SUCCEEDED: pb.JOB_STATUS_SUCCEEDED,
    models.JobStatus.FAILED: pb.JOB_STATUS_FAILED,
    models.JobStatus.CANCELLED: pb.JOB_STATUS_CANCELLED,
}
_STATUS_FROM_PB = {v: k for k, v in _STATUS_TO_PB.items()}


def role_from_pb(value: int, field: str = "role", *, required: bool = True) -> models.Role | None:
    """API Role → domain Role; UNSPECIFIED is None (or InvalidArgument when ``required``)."""
    if value in _ROLE_FROM_PB:
        return _ROLE_FROM_PB[value]
    if value == pb.ROLE_UNSPECIFIED and not required:
        return None
    raise InvalidArgument(f"{field} must be ROLE_ADMIN, ROLE_MEMBER or ROLE_GUEST", field=field)


def labeling_from_pb(value: int, *, default: str | None = "single_label") -> str | None:
    """API LabelingMethod → domain string; UNSPECIFIED → ``default``."""
    if value == pb.LABELING_METHOD_UNSPECIFIED:
        return default
    if value not in _LABELING_FROM_PB:
        raise InvalidArgument(
            f"labeling_method {value} is not a known value", field="labeling_method"
        )
    return _LABELING_FROM_PB[value]


def status_from_pb(value: int) -> models.JobStatus | None:
    """API JobStatus → domain JobStatus; UNSPECIFIED → None."""
    if value == pb.JOB_STATUS_UNSPECIFIED:
        return None
    if value not in _STATUS_FROM_PB:
        raise InvalidArgument(f"status {value} is not a known job status", field="status")
    return _STATUS_FROM_PB[value]


def ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """datetime (naive = UTC, as SQLite returns them) → Timestamp; None stays None."""
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def struct(value: dict[str, Any] | None) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value or {})
    return out


def organization(org: models.Organization) -> pb.Organization:
    return pb.Organization(id=org.id, name=org.name, create_time=ts(org.created_at))


def project(p: models.Project) -> pb.Project:
    return pb.Project(
        id=p.id,
        org_id=p.org_id,
        name=p.name,
        description=p.description,
        labeling_method=_LABELING_TO_PB.get(p.labeling_method, pb.LABELING_METHOD_UNSPECIFIED),
        allow_unsigned_data=p.allow_unsigned_data,
        create_time=ts(p.created_at),
        update_time=ts(p.updated_at),
    )


def api_key(k: models.ApiKey) -> pb.ApiKey:
    return pb.ApiKey(
        id=k.id,
        name=k.name,
        prefix=k.prefix,
        org_id=k.org_id,
        project_id=k.project_id or 0,
        role=_ROLE_TO_PB[k.role],
        user_id=k.user_id or 0,
        create_time=ts(k.created_at),
        revoke_time=ts(k.revoked_at),
        last_use_time=ts(k.last_used_at),
    )


def member(m: models.Membership, user: models.User) -> pb.Member:
    return pb.Member(
        user_id=user.id,
        email=user.email,
        name=user.name,
        role=_ROLE_TO_PB[m.role],
        org_id=m.org_id,
        create_time=ts(m.created_at),
    )


def job(j: models.Job, log_line_count: int = 0) -> pb.Job:
    return pb.Job(
        id=j.id,
        project_id=j.project_id,
        kind=j.kind,
        status=_STATUS_TO_PB[j.status],
        progress=j.progress,
        message=j.message,
        error=j.error,
        params=struct(j.params),
        result=struct(j.result),
        traceparent=(j.trace_context or {}).get("traceparent", ""),
        cancel_requested=j.cancel_requested,
        create_time=ts(j.created_at),
        start_time=ts(j.started_at),
        finish_time=ts(j.finished_at),
        log_line_count=log_line_count,
    )


def parse_params(text: str, field: str = "params_json") -> dict[str, Any] | None:
    """Block params from JSON text ("" = None); InvalidArgument unless a JSON object."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"{field} is not valid JSON: {exc}", field=field) from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field} must be a JSON object", field=field)
    return value
