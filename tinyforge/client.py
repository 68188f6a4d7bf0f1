"""Python SDK: a thin, typed client over the TinyForge gRPC API.

    from tinyforge.client import TinyForgeClient
    with TinyForgeClient.from_config() as tf:        # reads .tinyforge/client.json / env
        project = tf.create_project("gestures")
        for p in tf.list_projects():
            print(p.id, p.name)

Methods return the API's protobuf messages (``tinyforge.v1.common_pb2.Project`` ...). Failed
calls raise :class:`ApiError` with the gRPC status name, the message and the field at fault.
The API key travels as ``x-api-key`` metadata; every call is traced with OpenTelemetry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from opentelemetry import trace

from tinyforge.config import Settings
from tinyforge.telemetry import instrument_channel
from tinyforge.v1 import (
    api_key_service_pb2,
    api_key_service_pb2_grpc,
    common_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    member_service_pb2,
    member_service_pb2_grpc,
    organization_service_pb2,
    organization_service_pb2_grpc,
    project_service_pb2,
    project_service_pb2_grpc,
)

DEFAULT_ADDRESS = "127.0.0.1:4800"
_FINISHED = {
    common_pb2.JOB_STATUS_SUCCEEDED,
    common_pb2.JOB_STATUS_FAILED,
    common_pb2.JOB_STATUS_CANCELLED,
}
ROLES = {
    "admin": common_pb2.ROLE_ADMIN,
    "member": common_pb2.ROLE_MEMBER,
    "guest": common_pb2.ROLE_GUEST,
}
LABELING_METHODS = {
    "single_label": common_pb2.LABELING_METHOD_SINGLE_LABEL,
    "object_detection": common_pb2.LABELING_METHOD_OBJECT_DETECTION,
    "structured_labels": common_pb2.LABELING_METHOD_STRUCTURED_LABELS,
}


class ApiError(Exception):
    """A failed API call: ``code`` is the gRPC status name (e.g. 'NOT_FOUND')."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError) -> ApiError:
        """Decode status, message and the google.rpc details (field at fault)."""
        # grpc.RpcError raised by stubs is also a grpc.Call with code/details/trailers.
        code = err.code().name if hasattr(err, "code") and err.code() else "UNKNOWN"
        message = err.details() if hasattr(err, "details") else str(err)
        field = None
        trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
        for key, value in trailers or ():
            if key != "grpc-status-details-bin":
                continue
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info) and info.metadata.get("field"):
                    field = info.metadata["field"]
        return cls(code, message or "", field)


class ConfigError(Exception):
    """No address / API key could be found for the client."""


@dataclass(frozen=True)
class ClientConfig:
    """Where the platform listens and which key to use (from client.json and env)."""

    address: str
    api_key: str
    project_id: int = 0
    org_id: int = 0
    path: Path | None = None
    extra: dict[str, Any] | None = None


def default_config_path() -> Path:
    """``$TINYFORGE_DATA_DIR/client.json`` (default ``./.tinyforge/client.json``)."""
    return Settings.from_env().client_config_path


def load_client_config(path: Path | None = None) -> ClientConfig:
    """Read client.json (written by ``tinyforge up``); TINYFORGE_ADDRESS / TINYFORGE_API_KEY /
    TINYFORGE_PROJECT_ID override it. ConfigError when no API key is known."""
    path = path or default_config_path()
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
    address = os.environ.get("TINYFORGE_ADDRESS") or data.get("address") or DEFAULT_ADDRESS
    api_key = os.environ.get("TINYFORGE_API_KEY") or data.get("api_key") or ""
    if not api_key:
        raise ConfigError(
            f"no API key: set TINYFORGE_API_KEY or start the platform with `tinyforge up` "
            f"(which writes {path})"
        )
    project_id = int(os.environ.get("TINYFORGE_PROJECT_ID") or data.get("project_id") or 0)
    return ClientConfig(
        address=address,
        api_key=api_key,
        project_id=project_id,
        org_id=int(data.get("org_id") or 0),
        path=path if path.is_file() else None,
        extra=data,
    )


class TinyForgeClient:
    """Typed access to every TinyForge API method (one channel, one API key)."""

    def __init__(
        self,
        address: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        tracer_provider: trace.TracerProvider | None = None,
        default_project_id: int = 0,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.default_project_id = default_project_id
        self._metadata = (("x-api-key", api_key),)
        self._raw_channel = grpc.insecure_channel(address)
        self.channel = instrument_channel(self._raw_channel, tracer_provider)
        self.organizations = organization_service_pb2_grpc.OrganizationServiceStub(self.channel)
        self.projects = project_service_pb2_grpc.ProjectServiceStub(self.channel)
        self.api_keys = api_key_service_pb2_grpc.ApiKeyServiceStub(self.channel)
        self.members = member_service_pb2_grpc.MemberServiceStub(self.channel)
        self.jobs = job_service_pb2_grpc.JobServiceStub(self.channel)

    @classmethod
    def from_config(cls, path: Path | None = None, **kwargs: Any) -> TinyForgeClient:
        """A client for the platform named in client.json / the environment."""
        cfg = load_client_config(path)
        return cls(cfg.address, cfg.api_key, default_project_id=cfg.project_id, **kwargs)

    def close(self) -> None:
        self._raw_channel.close()

    def __enter__(self) -> TinyForgeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing
    def call(self, method: Callable[..., Any], request: Any, timeout: float | None = None) -> Any:
        """Invoke a unary stub method with the API key; grpc errors become ApiError."""
        try:
            return method(request, metadata=self._metadata, timeout=timeout or self.timeout)
        except grpc.RpcError as err:
            raise ApiError.from_rpc_error(err) from None

    def stream(self, method: Callable[..., Any], request: Any) -> Iterator[Any]:
        """Invoke a server-streaming stub method; grpc errors become ApiError."""
        try:
            yield from method(request, metadata=self._metadata)
        except grpc.RpcError as err:
            raise ApiError.from_rpc_error(err) from None

    def _project(self, project_id: int | None) -> int:
        return project_id or self.default_project_id

    @staticmethod
    def _pages(fetch: Callable[[str], Any], field: str) -> Iterator[Any]:
        token = ""
        while True:
            resp = fetch(token)
            yield from getattr(resp, field)
            token = resp.next_page_token
            if not token:
                return

    # ------------------------------------------------------------------ organizations
    def create_organization(self, name: str) -> organization_service_pb2.CreateOrganizationResponse:
        """Create an organization; the response holds its admin key secret (shown once)."""
        return self.call(
            self.organizations.CreateOrganization,
            organization_service_pb2.CreateOrganizationRequest(name=name),
        )

    def get_organization(self, org_id: int = 0) -> common_pb2.Organization:
        return self.call(
            self.organizations.GetOrganization,
            organization_service_pb2.GetOrganizationRequest(org_id=org_id),
        ).organization

    def list_organizations(self) -> list[common_pb2.Organization]:
        return list(
            self._pages(
                lambda t: self.call(
                    self.organizations.ListOrganizations,
                    organization_service_pb2.ListOrganizationsRequest(page_token=t),
                ),
                "organizations",
            )
        )

    # ------------------------------------------------------------------ projects
    def create_project(
        self,
        name: str,
        *,
        org_id: int = 0,
        description: str = "",
        labeling_method: str = "single_label",
        allow_unsigned_data: bool | None = None,
    ) -> common_pb2.Project:
        req = project_service_pb2.CreateProjectRequest(
            org_id=org_id,
            name=name,
            description=description,
            labeling_method=LABELING_METHODS.get(labeling_method, -1),
        )
        if allow_unsigned_data is not None:
            req.allow_unsigned_data = allow_unsigned_data
        return self.call(self.projects.CreateProject, req).project

    def get_project(self, project_id: int | None = None) -> common_pb2.Project:
        return self.call(
            self.projects.GetProject,
            project_service_pb2.GetProjectRequest(project_id=self._project(project_id)),
        ).project

    def list_projects(self, org_id: int = 0) -> list[common_pb2.Project]:
        return list(
            self._pages(
                lambda t: self.call(
                    self.projects.ListProjects,
                    project_service_pb2.ListProjectsRequest(org_id=org_id, page_token=t),
                ),
                "projects",
            )
        )

    def update_project(
        self,
        project_id: int | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        labeling_method: str | None = None,
        allow_unsigned_data: bool | None = None,
    ) -> common_pb2.Project:
        """Change the given settings; None keeps a setting as it is."""
        req = project_service_pb2.UpdateProjectRequest(project_id=self._project(project_id))
        if name is not None:
            req.name = name
        if description is not None:
            req.description = description
        if labeling_method is not None:
            req.labeling_method = LABELING_METHODS.get(labeling_method, -1)
        if allow_unsigned_data is not None:
            req.allow_unsigned_data = allow_unsigned_data
        return self.call(self.projects.UpdateProject, req).project

    def delete_project(self, project_id: int) -> None:
        self.call(
            self.projects.DeleteProject,
            project_service_pb2.DeleteProjectRequest(project_id=project_id),
        )

    def get_hmac_key(self, project_id: int | None = None) -> str:
        return self.call(
            self.projects.GetProjectHmacKey,
            project_service_pb2.GetProjectHmacKeyRequest(project_id=self._project(project_id)),
        ).hmac_key

    def rotate_hmac_key(self, project_id: int | None = None) -> str:
        return self.call(
            self.projects.RotateProjectHmacKey,
            project_service_pb2.RotateProjectHmacKeyRequest(project_id=self._project(project_id)),
        ).hmac_key

    # ------------------------------------------------------------------ API keys
    def create_api_key(
        self,
        *,
        project_id: int = 0,
        org_id: int = 0,
        role: str | None = None,
        name: str = "",
        user_id: int = 0,
    ) -> api_key_service_pb2.CreateApiKeyResponse:
        """Create a key for one project (``project_id``) or the organization; secret shown once."""
        return self.call(
            self.api_keys.CreateApiKey,
            api_key_service_pb2.CreateApiKeyRequest(
                project_id=project_id,
                org_id=org_id,
                role=ROLES[role] if role else common_pb2.ROLE_UNSPECIFIED,
                name=name,
                user_id=user_id,
            ),
        )

    def list_api_keys(
        self, *, project_id: int = 0, org_id: int = 0, include_revoked: bool = False
    ) -> list[common_pb2.ApiKey]:
        return list(
            self._pages(
                lambda t: self.call(
                    self.api_keys.ListApiKeys,
                    api_key_service_pb2.ListApiKeysRequest(
                        project_id=project_id,
                        org_id=org_id,
                        include_revoked=include_revoked,
                        page_token=t,
                    ),
                ),
                "api_keys",
            )
        )

    def revoke_api_key(self, api_key_id: int) -> common_pb2.ApiKey:
        return self.call(
            self.api_keys.RevokeApiKey,
            api_key_service_pb2.RevokeApiKeyRequest(api_key_id=api_key_id),
        ).api_key

    # ------------------------------------------------------------------ members
    def add_member(
        self, email: str, role: str, *, name: str = "", org_id: int = 0
    ) -> common_pb2.Member:
        return self.call(
            self.members.AddMember,
            member_service_pb2.AddMemberRequest(
                org_id=org_id, email=email, name=name, role=ROLES.get(role, -1)
            ),
        ).member

    def remove_member(self, user_id: int, *, org_id: int = 0) -> None:
        self.call(
            self.members.RemoveMember,
            member_service_pb2.RemoveMemberRequest(org_id=org_id, user_id=user_id),
        )

    def list_members(self, org_id: int = 0) -> list[common_pb2.Member]:
        return list(
            self._pages(
                lambda t: self.call(
                    self.members.ListMembers,
                    member_service_pb2.ListMembersRequest(org_id=org_id, page_token=t),
                ),
                "members",
            )
        )

    # ------------------------------------------------------------------ jobs
    def get_job(self, job_id: int) -> common_pb2.Job:
        return self.call(self.jobs.GetJob, job_service_pb2.GetJobRequest(job_id=job_id)).job

    def list_jobs(self, project_id: int | None = None, *, limit: int = 0) -> list[common_pb2.Job]:
        """Jobs of a project, newest first (all of them, or the newest ``limit``)."""
        out: list[common_pb2.Job] = []
        for job in self._pages(
            lambda t: self.call(
                self.jobs.ListJobs,
                job_service_pb2.ListJobsRequest(project_id=self._project(project_id), page_token=t),
            ),
            "jobs",
        ):
            out.append(job)
            if limit and len(out) >= limit:
                break
        return out

    def cancel_job(self, job_id: int) -> common_pb2.Job:
        return self.call(self.jobs.CancelJob, job_service_pb2.CancelJobRequest(job_id=job_id)).job

    def watch_job(
        self, job_id: int, log_offset: int = 0
    ) -> Iterator[job_service_pb2.WatchJobResponse]:
        """Job snapshots and log lines until the job finishes (resumable from a log offset)."""
        return self.stream(
            self.jobs.WatchJob,
            job_service_pb2.WatchJobRequest(job_id=job_id, log_offset=log_offset),
        )

    def wait_job(self, job_id: int) -> common_pb2.Job:
        """Follow a job until it finished; returns its final state."""
        last = None
        for event in self.watch_job(job_id):
            if event.HasField("job"):
                last = event.job
        if last is None or last.status not in _FINISHED:
            return self.get_job(job_id)
        return last
