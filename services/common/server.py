"""Assemble a gRPC server from service registrars: auth, telemetry, health, reflection.

A *registrar* is a function ``register(server, ctx) -> list of full service names`` that adds
servicers to ``server``; every service package exposes one as ``services.<name>.register``.
The same registrars serve one service per process (cluster) or all in one (embedded).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace

from services.common.auth import AuthInterceptor
from services.common.runtime import tune_malloc_for_large_messages
from tinyforge.context import PlatformContext
from tinyforge.errors import FailedPrecondition

log = logging.getLogger(__name__)

Registrar = Callable[[grpc.Server, PlatformContext], Sequence[str]]


def load_registrars(modules: Sequence[str]) -> list[Registrar]:
    """``["services.api", ...]`` → their ``register`` functions."""
    return [importlib.import_module(m).register for m in modules]


class PlatformServer:
    """One grpc.Server with the given services, health checking and reflection."""

    def __init__(
        self,
        ctx: PlatformContext,
        registrars: Sequence[Registrar],
        *,
        host: str | None = None,
        port: int | None = None,
        max_workers: int = 32,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.ctx = ctx
        host = ctx.settings.grpc_host if host is None else host
        port = ctx.settings.grpc_port if port is None else port
        max_message = ctx.settings.max_upload_bytes + (1 << 20)
        tune_malloc_for_large_messages()  # streamed uploads: reuse warm pages per chunk
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tf-grpc"),
            # One interceptor: tracing, auth, error mapping and audit (services.common.auth).
            interceptors=[AuthInterceptor(ctx, tracer_provider=tracer_provider)],
            options=[
                ("grpc.max_receive_message_length", max_message),
                ("grpc.max_send_message_length", max_message),
                ("grpc.so_reuseport", 0),
            ],
        )
        self.service_names: list[str] = []
        for register in registrars:
            self.service_names.extend(register(self.server, ctx))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        try:
            self.port = self.server.add_insecure_port(f"{host}:{port}")
        except RuntimeError as exc:
            msg = f"cannot listen on {host}:{port}: {exc}"
            raise FailedPrecondition(msg, field="port") from exc
        if self.port == 0:
            raise FailedPrecondition(f"cannot listen on {host}:{port} (in use?)", field="port")
        self.host = host

    @property
    def address(self) -> str:
        """host:port clients connect to."""
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Start serving and report every service SERVING."""
        self.server.start()
        for name in self.service_names:
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info("serving %s on %s", ", ".join(self.service_names), self.address)

    def stop(self, grace: float = 5.0) -> None:
        """Report NOT_SERVING, finish in-flight calls within ``grace`` seconds, stop."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
