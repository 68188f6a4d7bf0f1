"""Ingest tests run against the real in-process gRPC server of tests/api/conftest.py plus the
EI-compatible HTTP server on an ephemeral port over the same platform."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests

from services.ingest.http_api import IngestHttpServer
from services.ingest.servicer import sample_store
from tests.api.conftest import platform, tenant  # noqa: F401  (fixtures)
from tinyforge.data.samples import SampleStore
from tinyforge.store.models import Sample
from tinyforge.v1 import ingest_service_pb2 as ipb
from tinyforge.v1 import ingest_service_pb2_grpc

DATASETS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets").resolve()


def dataset(name: str) -> Path:
    """A shared real dataset, or skip with a clear message when absent."""
    path = DATASETS / name
    if not path.is_dir():
        pytest.skip(f"real dataset {name!r} not found at {path} (../shared/datasets absent)")
    return path


@pytest.fixture(scope="session")
def http_server(platform: Any) -> Iterator[IngestHttpServer]:  # noqa: F811
    server = IngestHttpServer(platform.ctx, sample_store(platform.ctx), host="127.0.0.1",
                              port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def store(platform: Any) -> SampleStore:  # noqa: F811
    return sample_store(platform.ctx)


@dataclass
class Ingest:
    """gRPC stub + HTTP helpers bound to one key."""

    stub: Any
    key: str  # the tenant's org admin key (gRPC)
    url: str
    http_key: str  # a member key scoped to the tenant's project (HTTP)

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        return (("x-api-key", self.key),)

    def upload(self, project_id: int, data: bytes, **opts: Any) -> ipb.Sample:
        req = ipb.UploadSampleRequest(project_id=project_id, data=data,
                                      options=ipb.UploadOptions(**opts))
        return self.stub.UploadSample(req, metadata=self.md, timeout=60).sample

    def list(self, project_id: int, **kw: Any) -> list[ipb.Sample]:
        out, token = [], ""
        while True:
            resp = self.stub.ListSamples(ipb.ListSamplesRequest(
                project_id=project_id, page_size=1000, page_token=token, **kw),
                metadata=self.md, timeout=60)
            out.extend(resp.samples)
            token = resp.next_page_token
            if not token:
                return out

    def summary(self, project_id: int) -> ipb.DatasetSummaryResponse:
        return self.stub.DatasetSummary(ipb.DatasetSummaryRequest(project_id=project_id),
                                        metadata=self.md, timeout=60)

    def post_files(self, category: str, files: list[tuple[str, bytes, str]],
                   headers: dict[str, str] | None = None,
                   extra_parts: list[tuple[str, bytes]] | None = None) -> requests.Response:
        parts = [("data", (name, data, ctype)) for name, data, ctype in files]
        parts += [("data", (name, data, "application/json")) for name, data in extra_parts or []]
        return requests.post(f"{self.url}/api/{category}/files", files=parts,
                             headers={"x-api-key": self.http_key, **(headers or {})}, timeout=60)

    def post_data(self, category: str, body: bytes,
                  headers: dict[str, str] | None = None) -> requests.Response:
        return requests.post(f"{self.url}/api/{category}/data", data=body,
                             headers={"x-api-key": self.http_key, **(headers or {})},
                             timeout=60)


@pytest.fixture
def ingest(platform: Any, tenant: Any, http_server: IngestHttpServer) -> Iterator[Ingest]:  # noqa: F811
    channel = grpc.insecure_channel(platform.address)
    yield Ingest(ingest_service_pb2_grpc.IngestServiceStub(channel), tenant.admin_key,
                 http_server.url, tenant.key("member", project_id=tenant.project_id))
    channel.close()


def stored(platform: Any, project_id: int) -> tuple[int, list[str]]:  # noqa: F811
    """(rows of any state, object keys) of a project: what 'nothing stored' is checked on."""
    with platform.ctx.db.session() as s:
        rows = s.query(Sample).filter(Sample.project_id == project_id).count()
    keys = [o.key for o in platform.ctx.objects.list(f"projects/{project_id}/")]
    return rows, keys


def envelope(values: list[list[float]], *, interval_ms: float = 10.0,
             sensors: list[dict[str, str]] | None = None, **payload: Any) -> bytes:
    """An unsigned EI acquisition JSON written by hand (independent of our encoder)."""
    n = len(values[0]) if values and isinstance(values[0], list) else 1
    sensors = sensors or [{"name": f"a{i}", "units": "m/s2"} for i in range(n)]
    return json.dumps({"protected": {"ver": "v1", "alg": "none"}, "signature": "0" * 64,
                       "payload": {"device_type": "TEST", "interval_ms": interval_ms,
                                   "sensors": sensors, "values": values, **payload}}).encode()
