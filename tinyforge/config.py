"""Settings from ``TINYFORGE_*`` environment variables, with embedded defaults.

Embedded mode (a laptop or CI machine) needs no variable at all: a data directory under
``./.tinyforge``, a SQLite database in it and a local-directory object store. Cluster mode sets
``TINYFORGE_DATABASE_URL`` (PostgreSQL) and ``TINYFORGE_OBJECT_STORE=minio`` plus the S3 settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


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
    extra: dict[str, str] = field(default_factory=dict)

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
        )
