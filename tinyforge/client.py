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
    """Typed access to every TinyForge API method with one API key.

    Embedded mode serves everything on one address. In the cluster every service is its own
    Deployment: ``service_addresses`` (or ``TINYFORGE_<SERVICE>_ADDRESS`` variables, e.g.
    ``TINYFORGE_INGEST_ADDRESS``) route a service's calls elsewhere; unset ones use ``address``.
    """

    def __init__(
        self,
        address: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        tracer_provider: trace.TracerProvider | None = None,
        default_project_id: int = 0,
        service_addresses: dict[str, str] | None = None,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.default_project_id = default_project_id
        self._metadata = (("x-api-key", api_key),)
        self._tracer_provider = tracer_provider
        self._service_addresses = dict(service_addresses or {})
        self._raw_channels: dict[str, grpc.Channel] = {}
        self._channels: dict[str, Any] = {}
        self.channel = self._channel(address)
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

    def _channel(self, address: str) -> Any:
        if address not in self._channels:
            raw = grpc.insecure_channel(address)
            self._raw_channels[address] = raw
            self._channels[address] = instrument_channel(raw, self._tracer_provider)
        return self._channels[address]

    def channel_for(self, service: str) -> Any:
        """The channel of ``service`` (api, ingest, dsp, train, builder)."""
        env = os.environ.get(f"TINYFORGE_{service.upper()}_ADDRESS", "")
        return self._channel(self._service_addresses.get(service) or env or self.address)

    def close(self) -> None:
        for raw in self._raw_channels.values():
            raw.close()

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

    # ------------------------------------------------------------------ data acquisition
    STREAM_THRESHOLD = 4 << 20  # files larger than this go through UploadStream
    STREAM_CHUNK = 2 << 20

    @property
    def ingest(self) -> Any:
        """The IngestService stub (created on first use)."""
        stub = self.__dict__.get("_ingest_stub")
        if stub is None:
            from tinyforge.v1 import ingest_service_pb2_grpc

            stub = ingest_service_pb2_grpc.IngestServiceStub(self.channel_for("ingest"))
            self.__dict__["_ingest_stub"] = stub
        return stub

    @staticmethod
    def upload_options(**kw: Any) -> Any:
        """UploadOptions from keyword arguments: category ('training'|'testing'|'anomaly'|
        'split'), label, filename, content_type, metadata (dict), bounding_boxes (list of EI
        box dicts), structured_labels (list of {startIndex, endIndex, label}),
        structured_labels_unit ('index'|'ms'), disallow_duplicates, add_date_id, device_name,
        device_type, upload_source, frequency_hz."""
        from tinyforge.v1 import ingest_service_pb2 as ipb

        cat = kw.pop("category", None) or "training"
        categories = {"training": ipb.SAMPLE_CATEGORY_TRAINING,
                      "testing": ipb.SAMPLE_CATEGORY_TESTING,
                      "anomaly": ipb.SAMPLE_CATEGORY_ANOMALY, "split": ipb.SAMPLE_CATEGORY_SPLIT}
        if cat not in categories:
            raise ApiError("INVALID_ARGUMENT", f"unknown category {cat!r}; expected one of "
                           f"{', '.join(categories)}", "category")
        boxes = [ipb.BoundingBox(**b) for b in kw.pop("bounding_boxes", None) or []]
        ranges = [ipb.LabelRange(start=r["startIndex"], end=r["endIndex"], label=r["label"])
                  for r in kw.pop("structured_labels", None) or []]
        unit = {"index": ipb.RANGE_UNIT_SAMPLE_INDEX, "ms": ipb.RANGE_UNIT_MILLISECONDS}[
            kw.pop("structured_labels_unit", "index")]
        kw = {k: v for k, v in kw.items() if v is not None}
        return ipb.UploadOptions(category=categories[cat], bounding_boxes=boxes,
                                 structured_labels=ranges, structured_labels_unit=unit, **kw)

    def upload_sample(self, data: bytes, filename: str, *, project_id: int | None = None,
                      **options: Any) -> Any:
        """Upload one file held in memory (see :meth:`upload_options`); returns the Sample."""
        from tinyforge.v1 import ingest_service_pb2 as ipb

        req = ipb.UploadSampleRequest(project_id=self._project(project_id), data=data,
                                      options=self.upload_options(filename=filename, **options))
        return self.call(self.ingest.UploadSample, req).sample

    def upload_stream(self, chunks: Iterator[bytes], filename: str, *,
                      project_id: int | None = None, size_bytes: int = 0,
                      **options: Any) -> Any:
        """Upload a large file from an iterator of byte chunks (client-streaming).

        The messages are serialized by :mod:`tinyforge.data.stream_wire` (one copy of each
        chunk instead of protobuf's two)."""
        from tinyforge.data.stream_wire import encode_chunk, encode_header
        from tinyforge.v1 import ingest_service_pb2 as ipb

        header = ipb.UploadStreamHeader(project_id=self._project(project_id),
                                        options=self.upload_options(filename=filename, **options),
                                        size_bytes=size_bytes)

        def messages() -> Iterator[bytes]:
            yield encode_header(header)
            for chunk in chunks:
                yield encode_chunk(chunk)

        # The method with no request serializer: the messages above are already serialized.
        upload = self.channel_for("ingest").stream_unary(
            "/tinyforge.v1.IngestService/UploadStream",
            response_deserializer=ipb.UploadSampleResponse.FromString)
        try:
            return upload(messages(), metadata=self._metadata).sample
        except grpc.RpcError as err:
            raise ApiError.from_rpc_error(err) from None

    def upload_file(self, path: Path, *, project_id: int | None = None,
                    filename: str | None = None, **options: Any) -> Any:
        """Upload a file from disk (streamed when larger than 4 MiB); returns the Sample."""
        path = Path(path)
        size = path.stat().st_size
        name = filename or path.name
        if size <= self.STREAM_THRESHOLD:
            return self.upload_sample(path.read_bytes(), name, project_id=project_id, **options)
        with open(path, "rb") as f:
            chunks = iter(lambda: f.read(self.STREAM_CHUNK), b"")
            return self.upload_stream(chunks, name, project_id=project_id, size_bytes=size,
                                      **options)

    def list_samples(self, project_id: int | None = None, *, category: str = "",
                     label: str | None = None, metadata: dict[str, str] | None = None,
                     device: str = "", search: str = "", enabled: bool | None = None,
                     limit: int = 0) -> list[Any]:
        """Samples of a project, oldest first, filtered (all pages, or the first ``limit``)."""
        from tinyforge.v1 import ingest_service_pb2 as ipb

        cats = {"": 0, "training": ipb.SAMPLE_CATEGORY_TRAINING,
                "testing": ipb.SAMPLE_CATEGORY_TESTING, "anomaly": ipb.SAMPLE_CATEGORY_ANOMALY}
        if category not in cats:
            raise ApiError("INVALID_ARGUMENT", f"unknown category {category!r}", "category")
        kw: dict[str, Any] = {}
        if label is not None:
            kw["label"] = label
        if enabled is not None:
            kw["enabled"] = enabled
        out: list[Any] = []
        for s in self._pages(lambda t: self.call(self.ingest.ListSamples, ipb.ListSamplesRequest(
                project_id=self._project(project_id), category=cats[category],
                metadata=metadata or {}, device=device, search=search, page_size=1000,
                page_token=t, **kw)), "samples"):
            out.append(s)
            if limit and len(out) >= limit:
                break
        return out

    def get_sample(self, sample_id: int, project_id: int | None = None) -> Any:
        from tinyforge.v1 import ingest_service_pb2 as ipb

        return self.call(self.ingest.GetSample, ipb.GetSampleRequest(
            project_id=self._project(project_id), sample_id=sample_id)).sample

    def download_sample(self, sample_id: int, project_id: int | None = None, *,
                        canonical: bool = False) -> tuple[Any, bytes]:
        """(Sample, its original bytes) — or its canonical ``.npz`` with ``canonical``."""
        from tinyforge.v1 import ingest_service_pb2 as ipb

        sample, parts = None, []
        for msg in self.stream(self.ingest.DownloadSample, ipb.DownloadSampleRequest(
                project_id=self._project(project_id), sample_id=sample_id, canonical=canonical)):
            if msg.HasField("sample"):
                sample = msg.sample
            parts.append(msg.chunk)
        return sample, b"".join(parts)

    def update_sample(self, sample_id: int, project_id: int | None = None, *,
                      label: str | None = None, metadata: dict[str, str] | None = None,
                      bounding_boxes: list[dict[str, Any]] | None = None,
                      enabled: bool | None = None, filename: str | None = None) -> Any:
        """Change a sample's label ("" = unlabeled), metadata, boxes, enabled flag or name."""
        from tinyforge.v1 import ingest_service_pb2 as ipb

        req = ipb.UpdateSampleRequest(project_id=self._project(project_id), sample_id=sample_id)
        if label is not None:
            req.label = label
        if metadata is not None:
            req.set_metadata = True
            req.metadata.update(metadata)
        if bounding_boxes is not None:
            req.set_bounding_boxes = True
            req.bounding_boxes.extend(ipb.BoundingBox(**b) for b in bounding_boxes)
        if enabled is not None:
            req.enabled = enabled
        if filename is not None:
            req.filename = filename
        return self.call(self.ingest.UpdateSample, req).sample

    def move_samples(self, sample_ids: list[int], category: str,
                     project_id: int | None = None) -> int:
        from tinyforge.v1 import ingest_service_pb2 as ipb

        cats = {"training": ipb.SAMPLE_CATEGORY_TRAINING, "testing": ipb.SAMPLE_CATEGORY_TESTING,
                "anomaly": ipb.SAMPLE_CATEGORY_ANOMALY}
        return self.call(self.ingest.MoveSamples, ipb.MoveSamplesRequest(
            project_id=self._project(project_id), sample_ids=sample_ids,
            category=cats.get(category, 0))).moved

    def delete_samples(self, sample_ids: list[int], project_id: int | None = None) -> int:
        from tinyforge.v1 import ingest_service_pb2 as ipb

        return self.call(self.ingest.DeleteSamples, ipb.DeleteSamplesRequest(
            project_id=self._project(project_id), sample_ids=sample_ids)).deleted

    def rebalance_split(self, project_id: int | None = None, test_fraction: float = 0.2) -> Any:
        from tinyforge.v1 import ingest_service_pb2 as ipb

        return self.call(self.ingest.RebalanceSplit, ipb.RebalanceSplitRequest(
            project_id=self._project(project_id), test_fraction=test_fraction))

    def dataset_summary(self, project_id: int | None = None) -> Any:
        from tinyforge.v1 import ingest_service_pb2 as ipb

        return self.call(self.ingest.DatasetSummary,
                         ipb.DatasetSummaryRequest(project_id=self._project(project_id)))

    def list_devices(self, project_id: int | None = None) -> list[Any]:
        from tinyforge.v1 import ingest_service_pb2 as ipb

        return list(self.call(self.ingest.ListDevices, ipb.ListDevicesRequest(
            project_id=self._project(project_id))).devices)

    # ------------------------------------------------------------------ impulses and DSP
    @property
    def impulses(self) -> Any:
        """The ImpulseService stub (created on first use)."""
        stub = self.__dict__.get("_impulse_stub")
        if stub is None:
            from tinyforge.v1 import impulse_service_pb2_grpc

            stub = impulse_service_pb2_grpc.ImpulseServiceStub(self.channel_for("dsp"))
            self.__dict__["_impulse_stub"] = stub
        return stub

    @property
    def dsp(self) -> Any:
        """The DspService stub (created on first use)."""
        stub = self.__dict__.get("_dsp_stub")
        if stub is None:
            from tinyforge.v1 import dsp_service_pb2_grpc

            stub = dsp_service_pb2_grpc.DspServiceStub(self.channel_for("dsp"))
            self.__dict__["_dsp_stub"] = stub
        return stub

    @staticmethod
    def _definition(definition: str | dict[str, Any]) -> str:
        return definition if isinstance(definition, str) else json.dumps(definition)

    def create_impulse(self, name: str, definition: str | dict[str, Any], *,
                       project_id: int | None = None) -> Any:
        """Create an impulse (definition: the impulse JSON, or a dict); returns version 1
        (an ``ImpulseVersion`` message)."""
        from tinyforge.v1 import impulse_service_pb2 as ipb

        return self.call(self.impulses.CreateImpulse, ipb.CreateImpulseRequest(
            project_id=self._project(project_id), name=name,
            definition_json=self._definition(definition))).impulse

    def get_impulse(self, impulse_id: int, version: int = 0, *,
                    project_id: int | None = None) -> Any:
        """One version of an impulse (0 = latest)."""
        from tinyforge.v1 import impulse_service_pb2 as ipb

        return self.call(self.impulses.GetImpulse, ipb.GetImpulseRequest(
            project_id=self._project(project_id), impulse_id=impulse_id,
            version=version)).impulse

    def list_impulses(self, project_id: int | None = None) -> list[Any]:
        """Latest version of every impulse of the project."""
        from tinyforge.v1 import impulse_service_pb2 as ipb

        return list(self.call(self.impulses.ListImpulses, ipb.ListImpulsesRequest(
            project_id=self._project(project_id))).impulses)

    def list_impulse_versions(self, impulse_id: int, *,
                              project_id: int | None = None) -> list[Any]:
        from tinyforge.v1 import impulse_service_pb2 as ipb

        return list(self.call(self.impulses.ListImpulseVersions, ipb.ListImpulseVersionsRequest(
            project_id=self._project(project_id), impulse_id=impulse_id)).versions)

    def update_impulse(self, impulse_id: int, definition: str | dict[str, Any] | None = None, *,
                       name: str | None = None, expected_version: int = 0,
                       project_id: int | None = None) -> Any:
        """Store a new version; returns the response (``impulse``, ``created``)."""
        from tinyforge.v1 import impulse_service_pb2 as ipb

        req = ipb.UpdateImpulseRequest(
            project_id=self._project(project_id), impulse_id=impulse_id,
            definition_json=self._definition(definition) if definition is not None else "",
            expected_version=expected_version)
        if name is not None:
            req.name = name
        return self.call(self.impulses.UpdateImpulse, req)

    def diff_impulse(self, impulse_id: int, version_a: int, version_b: int = 0, *,
                     project_id: int | None = None) -> list[Any]:
        """Changed fields from version a to version b (0 = latest)."""
        from tinyforge.v1 import impulse_service_pb2 as ipb

        return list(self.call(self.impulses.DiffImpulseVersions, ipb.DiffImpulseVersionsRequest(
            project_id=self._project(project_id), impulse_id=impulse_id, version_a=version_a,
            version_b=version_b)).changes)

    def list_dsp_blocks(self) -> list[Any]:
        """Schemas of the built-in processing blocks."""
        from tinyforge.v1 import dsp_service_pb2 as dpb

        return list(self.call(self.dsp.ListBlocks, dpb.ListBlocksRequest()).blocks)

    def run_block(self, block: str, window: Any = None, *, frequency_hz: float = 0.0,
                  axis_names: list[str] | None = None, axes: list[str] | None = None,
                  params: dict[str, Any] | None = None, impulse_id: int = 0, version: int = 0,
                  sample_id: int = 0, window_index: int = 0,
                  project_id: int | None = None) -> Any:
        """One window through a block: a numpy-like ``window`` ([T, axes] or [H, W, C]) with
        a block type, or window ``window_index`` of sample ``sample_id`` cut by impulse
        ``impulse_id`` with ``block`` a processing block name of it."""
        import numpy as np

        from tinyforge.v1 import dsp_service_pb2 as dpb

        req = dpb.RunBlockRequest(project_id=self._project(project_id), block=block,
                                  params_json=json.dumps(params) if params is not None else "",
                                  axes=axes or [])
        if window is not None:
            arr = np.asarray(window, dtype=np.float32)
            req.window.CopyFrom(dpb.RawWindow(values=arr.ravel().tolist(), shape=arr.shape,
                                              axis_names=axis_names or [],
                                              frequency_hz=frequency_hz))
        else:
            req.sample.CopyFrom(dpb.SampleWindow(impulse_id=impulse_id, version=version,
                                                 sample_id=sample_id, window_index=window_index))
        return self.call(self.dsp.RunBlock, req)

    def generate_features(self, impulse_id: int, version: int = 0, *,
                          project_id: int | None = None) -> Any:
        """Start the feature-generation job; returns (``job_id``, ``version``)."""
        from tinyforge.v1 import dsp_service_pb2 as dpb

        return self.call(self.dsp.GenerateFeatures, dpb.GenerateFeaturesRequest(
            project_id=self._project(project_id), impulse_id=impulse_id, version=version))

    def get_features(self, impulse_id: int, version: int = 0, *,
                     project_id: int | None = None) -> Any:
        from tinyforge.v1 import dsp_service_pb2 as dpb

        return self.call(self.dsp.GetFeatures, dpb.GetFeaturesRequest(
            project_id=self._project(project_id), impulse_id=impulse_id, version=version))

    def feature_explorer(self, impulse_id: int, version: int = 0, *, block: str = "",
                         method: str = "pca", max_points: int = 0, png: bool = False,
                         project_id: int | None = None) -> Any:
        """2-D projection (``pca`` | ``tsne``) of generated features; PNG with ``png``."""
        from tinyforge.v1 import dsp_service_pb2 as dpb

        methods = {"pca": dpb.PROJECTION_METHOD_PCA, "tsne": dpb.PROJECTION_METHOD_TSNE}
        if method not in methods:
            raise ApiError("INVALID_ARGUMENT", f"method must be pca or tsne, got {method!r}",
                           "method")
        return self.call(self.dsp.FeatureExplorer, dpb.FeatureExplorerRequest(
            project_id=self._project(project_id), impulse_id=impulse_id, version=version,
            block=block, method=methods[method], max_points=max_points, include_png=png),
            timeout=max(self.timeout, 300.0))

    def autotune_block(self, impulse_id: int, block: str, version: int = 0, *,
                       max_windows: int = 0, project_id: int | None = None) -> Any:
        from tinyforge.v1 import dsp_service_pb2 as dpb

        return self.call(self.dsp.AutotuneBlock, dpb.AutotuneBlockRequest(
            project_id=self._project(project_id), impulse_id=impulse_id, version=version,
            block=block, max_windows=max_windows), timeout=max(self.timeout, 300.0))

    # ------------------------------------------------------------------ training and models
    @property
    def train(self) -> Any:
        """The TrainService stub (created on first use)."""
        stub = self.__dict__.get("_train_stub")
        if stub is None:
            from tinyforge.v1 import train_service_pb2_grpc

            stub = train_service_pb2_grpc.TrainServiceStub(self.channel_for("train"))
            self.__dict__["_train_stub"] = stub
        return stub

    def start_training(self, impulse_id: int, version: int = 0, *, learn_block: str = "",
                       epochs: int | None = None, learning_rate: float | None = None,
                       batch_size: int | None = None, seed: int | None = None,
                       early_stopping: bool | None = None, patience: int | None = None,
                       validation_fraction: float | None = None,
                       params: dict[str, Any] | None = None,
                       project_id: int | None = None) -> Any:
        """Start a training job for a learning block of an impulse version (0 = latest);
        unset hyper-parameters take the defaults. Returns (``job_id``, ``version``,
        ``learn_block``); the job result names the model (``model_id``)."""
        from tinyforge.v1 import train_service_pb2 as tpb

        opts = {k: v for k, v in dict(
            epochs=epochs, learning_rate=learning_rate, batch_size=batch_size, seed=seed,
            early_stopping=early_stopping, patience=patience,
            validation_fraction=validation_fraction).items() if v is not None}
        return self.call(self.train.StartTraining, tpb.StartTrainingRequest(
            project_id=self._project(project_id), impulse_id=impulse_id, version=version,
            learn_block=learn_block, options=tpb.TrainingOptions(**opts),
            params_json=json.dumps(params) if params is not None else ""))

    def get_model(self, model_id: int, *, project_id: int | None = None) -> Any:
        """A trained model (``Model`` message: impulse version, dataset hash, code version,
        metrics, files)."""
        from tinyforge.v1 import train_service_pb2 as tpb

        return self.call(self.train.GetModel, tpb.GetModelRequest(
            project_id=self._project(project_id), model_id=model_id)).model

    def list_models(self, impulse_id: int = 0, *, project_id: int | None = None) -> list[Any]:
        """Ready models of the project (of one impulse when given), newest first."""
        from tinyforge.v1 import train_service_pb2 as tpb

        return list(self.call(self.train.ListModels, tpb.ListModelsRequest(
            project_id=self._project(project_id), impulse_id=impulse_id)).models)

    def test_model(self, model_id: int, *, threshold: float | None = None,
                   anomaly_labels: list[str] | None = None,
                   project_id: int | None = None) -> Any:
        """Start a model-test job over the testing category; returns (``job_id``)."""
        from tinyforge.v1 import train_service_pb2 as tpb

        req = tpb.TestModelRequest(project_id=self._project(project_id), model_id=model_id,
                                   anomaly_labels=anomaly_labels or [])
        if threshold is not None:
            req.threshold = threshold
        return self.call(self.train.TestModel, req)

    def get_test_result(self, model_id: int, test_id: int = 0, *,
                        include_results: bool = False, project_id: int | None = None) -> Any:
        """A test run of a model (0 = the latest): metrics per form, per-sample results."""
        from tinyforge.v1 import train_service_pb2 as tpb

        return self.call(self.train.GetTestResult, tpb.GetTestResultRequest(
            project_id=self._project(project_id), model_id=model_id, test_id=test_id,
            include_results=include_results)).result

    def download_model_file(self, model_id: int, file: str, *,
                            project_id: int | None = None) -> bytes:
        """The bytes of one model file (``model_int8.tflite``, ``tests/<id>/<png>``, ...),
        checked against the sha256 the server sends."""
        import hashlib

        from tinyforge.v1 import train_service_pb2 as tpb

        parts, sha = [], ""
        for msg in self.stream(self.train.DownloadModelFile, tpb.DownloadModelFileRequest(
                project_id=self._project(project_id), model_id=model_id, file=file)):
            if msg.sha256:
                sha = msg.sha256
            parts.append(msg.chunk)
        data = b"".join(parts)
        if sha and hashlib.sha256(data).hexdigest() != sha:
            raise ApiError("DATA_LOSS", f"{file}: downloaded bytes do not match sha256 {sha}",
                           "file")
        return data

    def classify(self, model_id: int, data: bytes | None = None, *, filename: str = "",
                 sample_id: int = 0, frequency_hz: float = 0.0, use_float: bool = False,
                 project_id: int | None = None) -> Any:
        """Classify a file's bytes (any ingest format) or a stored sample with a model."""
        from tinyforge.v1 import train_service_pb2 as tpb

        req = tpb.ClassifyRequest(project_id=self._project(project_id), model_id=model_id,
                                  filename=filename, frequency_hz=frequency_hz,
                                  use_float=use_float)
        if data is not None:
            req.data = data
        elif sample_id:
            req.sample_id = sample_id
        return self.call(self.train.Classify, req, timeout=max(self.timeout, 120.0))

    # ------------------------------------------------------------------ custom blocks
    @property
    def blocks(self) -> Any:
        """The BlockService stub (created on first use)."""
        stub = self.__dict__.get("_block_stub")
        if stub is None:
            from tinyforge.v1 import block_service_pb2_grpc

            stub = block_service_pb2_grpc.BlockServiceStub(self.channel_for("api"))
            self.__dict__["_block_stub"] = stub
        return stub

    def register_block(self, parameters_json: str | dict[str, Any], *, name: str = "",
                       image: str = "", image_digest: str = "", source_archive: bytes = b"",
                       org_id: int = 0) -> Any:
        """Register a new version of a custom block in the organization (0 = the key's);
        returns the ``CustomBlock`` message (``name``, ``version``, ``reference``, schema)."""
        from tinyforge.v1 import block_service_pb2 as bpb

        doc = parameters_json if isinstance(parameters_json, str) else json.dumps(parameters_json)
        return self.call(self.blocks.RegisterBlock, bpb.RegisterBlockRequest(
            org_id=org_id, name=name, parameters_json=doc, image=image,
            image_digest=image_digest, source_archive=source_archive),
            timeout=max(self.timeout, 120.0)).block

    def register_block_dir(self, directory: Path, *, name: str = "", image: str = "",
                           image_digest: str = "", include_source: bool | None = None,
                           org_id: int = 0) -> Any:
        """Register the block in ``directory`` (its parameters.json; its source archive when it
        declares ``info.localCommand`` or ``include_source``), with an optional image."""
        from tinyforge.blocks.manifest import load_manifest
        from tinyforge.blocks.registry_store import pack_block_source

        manifest = load_manifest(Path(directory))
        if include_source is None:
            include_source = manifest.local_command is not None
        source = pack_block_source(Path(directory)) if include_source else b""
        return self.register_block(json.dumps(manifest.to_json()), name=name, image=image,
                                   image_digest=image_digest, source_archive=source,
                                   org_id=org_id)

    def get_block(self, name: str, version: int = 0, *, org_id: int = 0) -> Any:
        """One version (0 = latest) of a registered block."""
        from tinyforge.v1 import block_service_pb2 as bpb

        return self.call(self.blocks.GetBlock, bpb.GetBlockRequest(
            org_id=org_id, name=name, version=version)).block

    def list_registered_blocks(self, block_type: str = "", *, org_id: int = 0) -> list[Any]:
        """Latest version of every registered block of the organization (optionally one type)."""
        from tinyforge.v1 import block_service_pb2 as bpb

        return list(self.call(self.blocks.ListRegisteredBlocks, bpb.ListRegisteredBlocksRequest(
            org_id=org_id, type=block_type)).blocks)

    def list_block_versions(self, name: str, *, org_id: int = 0) -> list[Any]:
        """Every version of a registered block, oldest first."""
        from tinyforge.v1 import block_service_pb2 as bpb

        return list(self.call(self.blocks.ListBlockVersions, bpb.ListBlockVersionsRequest(
            org_id=org_id, name=name)).versions)

    def delete_block(self, name: str, version: int = 0, *, org_id: int = 0) -> int:
        """Delete one version (or, with 0, every version) of a block; returns how many."""
        from tinyforge.v1 import block_service_pb2 as bpb

        return self.call(self.blocks.DeleteBlock, bpb.DeleteBlockRequest(
            org_id=org_id, name=name, version=version)).deleted_versions

    # ------------------------------------------------------------------ pipelines
    @property
    def pipelines(self) -> Any:
        """The PipelineService stub (created on first use; served by the api service)."""
        stub = self.__dict__.get("_pipeline_stub")
        if stub is None:
            from tinyforge.v1 import pipeline_service_pb2_grpc

            stub = pipeline_service_pb2_grpc.PipelineServiceStub(self.channel_for("api"))
            self.__dict__["_pipeline_stub"] = stub
        return stub

    def list_pipelines(self) -> list[Any]:
        """Every pipeline (name, description, parameters with defaults / required, steps)."""
        from tinyforge.v1 import pipeline_service_pb2 as ppb

        return list(self.call(self.pipelines.ListPipelines, ppb.ListPipelinesRequest()).pipelines)

    def run_pipeline(self, name: str, parameters: dict[str, Any] | None = None, *,
                     project_id: int | None = None) -> common_pb2.Job:
        """Start a job running pipeline ``name`` on the project with ``parameters`` (the others
        take their defaults); returns the job (follow it with :meth:`watch_job`)."""
        from tinyforge.v1 import pipeline_service_pb2 as ppb

        return self.call(self.pipelines.RunPipeline, ppb.RunPipelineRequest(
            project_id=self._project(project_id), name=name,
            parameters={str(k): str(v) for k, v in (parameters or {}).items()})).job

    # ------------------------------------------------------------------ deployment builds
    @property
    def builder(self) -> Any:
        """The BuilderService stub (created on first use)."""
        stub = self.__dict__.get("_builder_stub")
        if stub is None:
            from tinyforge.v1 import builder_service_pb2_grpc

            stub = builder_service_pb2_grpc.BuilderServiceStub(self.channel_for("builder"))
            self.__dict__["_builder_stub"] = stub
        return stub

    def list_targets(self) -> list[Any]:
        """The deployment target catalog (architecture, clock, RAM, flash, toolchain)."""
        from tinyforge.v1 import builder_service_pb2 as upb

        return list(self.call(self.builder.ListTargets, upb.ListTargetsRequest()).targets)

    def list_formats(self) -> list[Any]:
        """The deployment formats and the targets each builds for."""
        from tinyforge.v1 import builder_service_pb2 as upb

        return list(self.call(self.builder.ListFormats, upb.ListFormatsRequest()).formats)

    def start_build(self, format: str, target: str, *, model_id: int = 0,  # noqa: A002
                    use_float: bool = False, options: dict[str, str] | None = None,
                    parameters: dict[str, str] | None = None, timeout_s: float = 0.0,
                    project_id: int | None = None) -> Any:
        """Start a deployment build job of a model (0 = the newest); returns (``build_id``,
        ``job_id``, ``model_id``). ``use_float`` ships the float32 model (tflite, kserve);
        ``parameters`` are a custom deploy block's (``custom:NAME`` formats);
        ``timeout_s`` 0 = the server's default (600 s)."""
        from tinyforge.v1 import builder_service_pb2 as upb

        return self.call(self.builder.StartBuild, upb.StartBuildRequest(
            project_id=self._project(project_id), model_id=model_id, format=format,
            target=target,
            precision=upb.PRECISION_FLOAT32 if use_float else upb.PRECISION_INT8,
            options={str(k): str(v) for k, v in (options or {}).items()},
            parameters={str(k): str(v) for k, v in (parameters or {}).items()},
            timeout_s=timeout_s))

    def get_build(self, build_id: int, *, project_id: int | None = None) -> Any:
        """One build: state, error, metrics (RAM, flash, instructions, on-target accuracy)."""
        from tinyforge.v1 import builder_service_pb2 as upb

        return self.call(self.builder.GetBuild, upb.GetBuildRequest(
            project_id=self._project(project_id), build_id=build_id)).build

    def list_builds(self, *, model_id: int = 0, state: str = "", limit: int = 0,
                    project_id: int | None = None) -> list[Any]:
        """Builds of the project, newest first (one model's / in one state when given:
        ``pending``, ``running``, ``ready``, ``failed``)."""
        from tinyforge.v1 import builder_service_pb2 as upb

        states = {"": upb.BUILD_STATE_UNSPECIFIED, "pending": upb.BUILD_STATE_PENDING,
                  "running": upb.BUILD_STATE_RUNNING, "ready": upb.BUILD_STATE_READY,
                  "failed": upb.BUILD_STATE_FAILED}
        if state not in states:
            raise ApiError("INVALID_ARGUMENT", f"state {state!r} must be one of "
                           f"{', '.join(s for s in states if s)}", "state")
        return list(self.call(self.builder.ListBuilds, upb.ListBuildsRequest(
            project_id=self._project(project_id), model_id=model_id, state=states[state],
            limit=limit)).builds)

    def download_artifact(self, build_id: int, dest: Path, *,
                          project_id: int | None = None) -> tuple[Path, int, str]:
        """Stream a ready build's zip into ``dest`` (a file, or a directory to put it in
        under the server's file name), checked against its sha256; written as ``.part`` then
        renamed, so a failed download leaves nothing. Returns (path, size, sha256)."""
        import hashlib

        from tinyforge.v1 import builder_service_pb2 as upb

        h = hashlib.sha256()
        size, sha, path, tmp = 0, "", Path(dest), None
        fh = None
        try:
            for msg in self.stream(self.builder.DownloadArtifact, upb.DownloadArtifactRequest(
                    project_id=self._project(project_id), build_id=build_id)):
                if fh is None:
                    sha = msg.sha256
                    if path.is_dir():
                        path = path / (msg.filename or f"build-{build_id}.zip")
                    tmp = path.with_name(path.name + ".part")
                    fh = open(tmp, "wb")  # noqa: SIM115  (closed in finally)
                fh.write(msg.chunk)
                h.update(msg.chunk)
                size += len(msg.chunk)
            if fh is None:
                raise ApiError("DATA_LOSS", f"build {build_id}: empty download", "build_id")
            fh.close()
            if sha and h.hexdigest() != sha:
                raise ApiError("DATA_LOSS", f"build {build_id}: downloaded bytes do not match "
                               f"sha256 {sha}", "build_id")
            assert tmp is not None
            tmp.replace(path)
            return path, size, h.hexdigest()
        finally:
            if fh is not None and not fh.closed:
                fh.close()
            if tmp is not None and tmp.exists():
                tmp.unlink()
