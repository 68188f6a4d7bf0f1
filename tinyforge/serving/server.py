"""Run an :class:`~tinyforge.serving.predictor.ImpulseModel` in a KServe ``ModelServer``
(REST v1 + v2 on ``http_port``, gRPC v2 on ``grpc_port``) bound to a chosen host.

kserve 0.21's ``ModelServer`` has no host option: its REST server hard-codes ``0.0.0.0`` and
its gRPC server ``[::]``. :class:`HostModelServer` keeps everything else of
``ModelServer.start`` (model registration, dataplane, event loop, signal handling) and swaps in
a REST server whose uvicorn config gets our host and a gRPC server that listens on
``host:port``. Locally the default is ``127.0.0.1``; in a cluster the ServingRuntime passes
``--host 0.0.0.0`` so the pod's port is reachable.
"""

from __future__ import annotations

import asyncio
import ipaddress
from concurrent import futures
from pathlib import Path

from tinyforge.serving.kserve_compat import import_kserve

kserve = import_kserve()
from grpc import aio  # noqa: E402
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING  # noqa: E402
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc  # noqa: E402
from kserve.protocol.grpc.interceptors import (  # noqa: E402
    ExceptionToStatusInterceptor,
    LoggingInterceptor,
)
from kserve.protocol.grpc.server import GRPCServer  # noqa: E402
from kserve.protocol.grpc.servicer import InferenceServicer  # noqa: E402
from kserve.protocol.rest.server import RESTServer  # noqa: E402

from tinyforge.serving.predictor import ImpulseModel  # noqa: E402

DEFAULT_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8080
DEFAULT_GRPC_PORT = 8081


def _grpc_address(host: str, port: int) -> str:
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass  # a host name
    return f"{host}:{port}"


class _HostGRPCServer(GRPCServer):
    """kserve's gRPC server (same servicer, interceptors, options) on ``host:port``."""

    def __init__(self, host: str, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._host = host

    async def start(self, max_workers: int) -> None:
        servicer = InferenceServicer(self._data_plane, self._model_repository_extension)
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(LoggingInterceptor(), ExceptionToStatusInterceptor()),
            options=[("grpc.max_send_message_length",
                      self._kwargs.get("grpc_max_send_message_length")),
                     ("grpc.max_receive_message_length",
                      self._kwargs.get("grpc_max_receive_message_length"))],
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer,
                                                                            self._server)
        addr = _grpc_address(self._host, self._port)
        if self._server.add_insecure_port(addr) == 0:
            raise OSError(f"gRPC server cannot listen on {addr}")
        await self._server.start()
        await self._server.wait_for_termination()


class HostModelServer(kserve.ModelServer):
    """``kserve.ModelServer`` listening on ``host`` (single REST worker)."""

    def __init__(self, host: str = DEFAULT_HOST, **kwargs) -> None:
        super().__init__(workers=1, **kwargs)
        self.host = host

    def start(self, models: list) -> None:  # mirrors ModelServer.start, workers == 1
        from kserve import model_server as ms

        self._register_and_check_atleast_one_model_is_ready(models)
        self._rest_server = RESTServer(
            FASTAPI_APP_IMPORT_STRING, self.dataplane, self.model_repository_extension,
            self.http_port, access_log_format=self.access_log_format, workers=1,
            grace_period=self.grace_period, event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
        )
        self._rest_server.config.host = self.host  # uvicorn binds config.host at startup
        self.servers.append(self._rest_server.start())
        if self.enable_grpc:
            self._grpc_server = _HostGRPCServer(
                self.host, self.grpc_port, self.dataplane, self.model_repository_extension,
                kwargs=vars(ms.args), grace_period=self.grace_period)
            self.servers.append(self._grpc_server.start(self.max_threads))
        self.setup_event_loop()
        self.register_signal_handler()
        asyncio.run(self._serve())


def serve(model_path: str | Path, *, name: str = "impulse", host: str = DEFAULT_HOST,
          http_port: int = DEFAULT_HTTP_PORT, grpc_port: int = DEFAULT_GRPC_PORT,
          model_type: str | None = None, enable_grpc: bool = True) -> None:
    """Load the impulse at ``model_path`` (directory or artifact zip) and serve it until
    SIGINT/SIGTERM. Raises TinyForgeError (or kserve's InvalidInput) if it cannot load."""
    model = ImpulseModel(name, model_path, model_type=model_type)
    model.load()
    server = HostModelServer(host=host, http_port=http_port, grpc_port=grpc_port,
                             enable_grpc=enable_grpc, grace_period=2)
    server.start([model])
