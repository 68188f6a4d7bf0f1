"""Container health check: ask the local gRPC server's grpc.health.v1 service.

Exit 0 when the server answers SERVING, 1 otherwise (unreachable, NOT_SERVING, timeout), so
it works as a Dockerfile HEALTHCHECK and as an exec probe. Port: argv[1], else
TINYFORGE_GRPC_PORT, else 4800; an optional argv[2] names the service to check ("" = whole server).
"""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main() -> int:
    port = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TINYFORGE_GRPC_PORT", "4800")
    service = sys.argv[2] if len(sys.argv) > 2 else ""
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=3.0)
    except grpc.RpcError as exc:
        print(f"unhealthy: {exc.code().name} from 127.0.0.1:{port}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(status)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
