"""Settings from ``TINYFORGE_*`` environment variables, with embedded defaults.

Embedded mode (a laptop or CI machine) needs no variable at all: a data directory under
``./.tinyforge``, a SQLite database in it and a local-directory object store. Cluster mode sets
``TINYFORGE_DATABASE_URL`` (PostgreSQL) and ``TINYFORGE_OBJECT_STORE=minio`` plus the S3 settings,
and ``TINYFORGE_WORKFLOW_ENGINE=argo`` plus the ``TINYFORGE_ARGO_*`` settings so pipeline jobs
run as Argo Workflows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tinyforge.errors import InvalidArgument

#: How pipeline jobs run: "inprocess" = the library called in the job manager's thread (the
#: embedded default); "local" = the pipeline's Hera definition walked by the local runner, each
#: step a local process; "argo" = submitted to the Argo Server as a Workflow and watched.
WORKFLOW_ENGINES = ("inprocess", "local", "argo")


def _env(name: str, default: str) -> str:
    return os.environ.get(f"TINYFORGE_{name}", default)


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(f"TINYFORGE_{name}")
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Resolved platform settings. Build with :meth:`from_env`; tests build them directly."""

    data_dir: Path
    database_url: str
    object_store: str = "local"  # "local" | "minio"
    s3_endpoint: str = ""  # host:port, no scheme
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "tinyforge"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 4800
    ingestion_port: int = 4810  # the port Edge Impulse's CLI expects for a local ingestion host
    max_upload_bytes: int = 100 * 1024 * 1024
    job_workers: int = 2
    workflow_engine: str = "inprocess"  # one of WORKFLOW_ENGINES
    argo_server: str = ""  # Argo Server base URL, e.g. https://argo-server.argo.svc:2746
    argo_namespace: str = "default"  # namespace workflows (and their templates) live in
    argo_token: str = ""  # bearer token for the Argo Server ("" = none: server auth mode)
    argo_token_file: str = ""  # file holding the token, re-read on each use (rotating tokens)
    argo_verify_tls: bool = True
    argo_poll_interval: float = 2.0  # seconds between status/log polls of a running workflow
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.workflow_engine not in WORKFLOW_ENGINES:
            raise InvalidArgument(
                f"TINYFORGE_WORKFLOW_ENGINE must be one of {', '.join(WORKFLOW_ENGINES)}, "
                f"got {self.workflow_engine!r}",
                field="TINYFORGE_WORKFLOW_ENGINE",
            )
        if self.workflow_engine == "argo" and not self.argo_server.startswith(
            ("http://", "https://")
        ):
            raise InvalidArgument(
                "TINYFORGE_ARGO_SERVER must be an http:// or https:// URL when "
                f"TINYFORGE_WORKFLOW_ENGINE=argo, got {self.argo_server!r}",
                field="TINYFORGE_ARGO_SERVER",
            )
        if not self.argo_poll_interval > 0:
            raise InvalidArgument(
                f"TINYFORGE_ARGO_POLL_INTERVAL must be > 0 seconds, got {self.argo_poll_interval}",
                field="TINYFORGE_ARGO_POLL_INTERVAL",
            )

    @property
    def objects_dir(self) -> Path:
        """Root of the local-directory object store."""
        return self.data_dir / "objects"

    @property
    def client_config_path(self) -> Path:
        """File where ``tinyforge up`` saves the admin API key and address for the CLI."""
        return self.data_dir / "client.json"

    @classmethod
    def from_env(cls) -> Settings:
        """Read every ``TINYFORGE_*`` variable, falling back to the embedded defaults."""
        data_dir = Path(_env("DATA_DIR", str(Path.cwd() / ".tinyforge"))).expanduser().resolve()
        return cls(
            data_dir=data_dir,
            database_url=_env("DATABASE_URL", f"sqlite:///{data_dir / 'tinyforge.db'}"),
            object_store=_env("OBJECT_STORE", "local"),
            s3_endpoint=_env("S3_ENDPOINT", ""),
            s3_access_key=_env("S3_ACCESS_KEY", ""),
            s3_secret_key=_env("S3_SECRET_KEY", ""),
            s3_bucket=_env("S3_BUCKET", "tinyforge"),
            s3_secure=_env_bool("S3_SECURE", False),
            s3_region=_env("S3_REGION", "us-east-1"),
            grpc_host=_env("GRPC_HOST", "127.0.0.1"),
            grpc_port=int(_env("GRPC_PORT", "4800")),
            ingestion_port=int(_env("INGESTION_PORT", "4810")),
            max_upload_bytes=int(_env("MAX_UPLOAD_BYTES", str(100 * 1024 * 1024))),
            job_workers=int(_env("JOB_WORKERS", "2")),
            workflow_engine=_env("WORKFLOW_ENGINE", "inprocess").strip().lower(),
            argo_server=_env("ARGO_SERVER", ""),
            argo_namespace=_env("ARGO_NAMESPACE", "default"),
            argo_token=_env("ARGO_TOKEN", ""),
            argo_token_file=_env("ARGO_TOKEN_FILE", ""),
            argo_verify_tls=_env_bool("ARGO_VERIFY_TLS", True),
            argo_poll_interval=float(_env("ARGO_POLL_INTERVAL", "2")),
        )
