"""Tracing: client and server spans of a real call share one trace, carried into its job."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.common.auth import current_target
from services.common.convert import job as job_pb
from services.common.server import PlatformServer, load_registrars
from services.embedded import SERVICES
from tests.api.conftest import RunningPlatform, make_settings, stop_platform
from tinyforge.auth import POLICY, Rule, Scope
from tinyforge.context import PlatformContext
from tinyforge.jobs import register_job_kind
from tinyforge.store.models import Role
from tinyforge.v1 import job_service_pb2, project_service_pb2

START_JOB = "/tinyforge.v1.TelemetryProbe/StartJob"


def _probe_job(job: Any, params: dict[str, Any]) -> dict[str, Any]:
    job.log("probe ran")
    return {}


register_job_kind("telemetry_probe", _probe_job, replace=True)


def _probe_registrar(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    """A servicer that starts a job, as every long-running method of later services does."""

    def start_job(request: Any, context: grpc.ServicerContext) -> Any:
        job_id = ctx.jobs.submit(current_target().project_id or 0, "telemetry_probe")
        return job_service_pb2.GetJobResponse(job=job_pb(ctx.jobs.wait(job_id, timeout=30)))

    handler = grpc.method_handlers_generic_handler(
        "tinyforge.v1.TelemetryProbe",
        {
            "StartJob": grpc.unary_unary_rpc_method_handler(
                start_job,
                request_deserializer=project_service_pb2.GetProjectRequest.FromString,
                response_serializer=job_service_pb2.GetJobResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    return []


@pytest.fixture
def traced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setitem(POLICY, START_JOB, Rule(Role.MEMBER, Scope.PROJECT, "project_id"))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    ctx = PlatformContext.create(make_settings(tmp_path), tracer_provider=provider)
    server = PlatformServer(
        ctx, [*load_registrars(SERVICES), _probe_registrar], host="127.0.0.1", port=0
    )
    server.start()
    p = RunningPlatform(ctx, server)
    yield p, exporter, provider
    stop_platform(p)


def test_call_spans_share_a_trace_that_the_job_carries(traced) -> None:
    platform, exporter, provider = traced
    tenant = platform.new_tenant()
    client = tenant.client(tracer_provider=provider)

    assert client.get_project(tenant.project_id).id == tenant.project_id
    spans = exporter.get_finished_spans()
    name = "/tinyforge.v1.ProjectService/GetProject"
    server = [s for s in spans if s.kind == SpanKind.SERVER and s.name == name]
    client_spans = [s for s in spans if s.kind == SpanKind.CLIENT and s.name == name]
    assert len(server) == 1 and len(client_spans) == 1
    assert server[0].context.trace_id == client_spans[0].context.trace_id
    assert server[0].parent is not None
    assert server[0].parent.span_id == client_spans[0].context.span_id
    assert server[0].attributes["rpc.system"] == "grpc"
    assert server[0].attributes["rpc.service"] == "tinyforge.v1.ProjectService"
    assert server[0].attributes["rpc.method"] == "GetProject"
    assert server[0].attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
    assert server[0].status.status_code == StatusCode.UNSET

    exporter.clear()
    start = client.channel.unary_unary(
        START_JOB,
        request_serializer=project_service_pb2.GetProjectRequest.SerializeToString,
        response_deserializer=job_service_pb2.GetJobResponse.FromString,
    )
    job = start(
        project_service_pb2.GetProjectRequest(project_id=tenant.project_id),
        metadata=(("x-api-key", tenant.admin_key),),
        timeout=30,
    ).job
    spans = exporter.get_finished_spans()
    server_span = next(s for s in spans if s.kind == SpanKind.SERVER and s.name == START_JOB)
    client_span = next(s for s in spans if s.kind == SpanKind.CLIENT and s.name == START_JOB)
    trace_hex = f"{server_span.context.trace_id:032x}"
    assert client_span.context.trace_id == server_span.context.trace_id
    # the job row carries the trace context of the call that created it ...
    assert job.traceparent.split("-")[1] == trace_hex
    assert job.traceparent.split("-")[2] == f"{server_span.context.span_id:016x}"
    # ... and its execution span continues that trace
    job_span = next(s for s in spans if s.name == "job telemetry_probe")
    assert job_span.context.trace_id == server_span.context.trace_id
    assert job_span.parent.span_id == server_span.context.span_id
    assert job_span.attributes["tinyforge.job.id"] == job.id


def test_denied_calls_are_traced_with_their_status(traced) -> None:
    platform, exporter, provider = traced
    tenant = platform.new_tenant()
    client = tenant.client(tenant.key("guest"), tracer_provider=provider)
    with pytest.raises(Exception, match="PERMISSION_DENIED"):
        client.get_hmac_key(tenant.project_id)
    server = next(s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert server.status.status_code == StatusCode.ERROR
    assert "PERMISSION_DENIED" in server.status.description


def test_streaming_calls_are_traced(traced) -> None:
    """Server-streaming methods get their span too, ended when the stream ends."""
    platform, exporter, provider = traced
    tenant = platform.new_tenant()
    client = tenant.client(tracer_provider=provider)
    data = b"a,b\n1,2\n3,4\n"
    sample = client.upload_sample(data, "s.csv", project_id=tenant.project_id, label="x",
                                  frequency_hz=10)
    exporter.clear()
    assert client.download_sample(sample.id, tenant.project_id)[1] == data
    name = "/tinyforge.v1.IngestService/DownloadSample"
    (server,) = [s for s in exporter.get_finished_spans()
                 if s.kind == SpanKind.SERVER and s.name == name]
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
    exporter.clear()
    with pytest.raises(Exception, match="NOT_FOUND"):
        client.download_sample(sample.id + 1000, tenant.project_id)
    (server,) = [s for s in exporter.get_finished_spans()
                 if s.kind == SpanKind.SERVER and s.name == name]
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]


def _configured_exporter(env: dict[str, str]) -> str:
    code = (
        "from tinyforge.telemetry import configure_telemetry\n"
        "p = configure_telemetry('probe')\n"
        "procs = p._active_span_processor._span_processors if p else ()\n"
        "print([type(x.span_exporter).__name__ for x in procs] if p else 'disabled')\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def test_exporter_follows_the_otel_environment() -> None:
    assert _configured_exporter({}) == "[]"
    assert _configured_exporter({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}) == (
        "['OTLPSpanExporter']"
    )
    assert _configured_exporter({"OTEL_TRACES_EXPORTER": "console"}) == "['ConsoleSpanExporter']"
    assert _configured_exporter({"OTEL_SDK_DISABLED": "true"}) == "disabled"


def test_methods_without_a_policy_rule_are_denied(traced, monkeypatch) -> None:
    platform, _exporter, _provider = traced
    monkeypatch.delitem(POLICY, START_JOB)
    tenant = platform.new_tenant()
    start = tenant.client().channel.unary_unary(
        START_JOB,
        request_serializer=project_service_pb2.GetProjectRequest.SerializeToString,
        response_deserializer=job_service_pb2.GetJobResponse.FromString,
    )
    with pytest.raises(grpc.RpcError) as err:
        start(
            project_service_pb2.GetProjectRequest(project_id=tenant.project_id),
            metadata=(("x-api-key", tenant.admin_key),),
            timeout=10,
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "no authorization rule" in err.value.details()
