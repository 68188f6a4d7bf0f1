"""Settings ↔ environment: how a step process finds the platform it works for.

Step processes (local runner subprocesses or cluster pods) build their database and object
store from ``TINYFORGE_*`` variables, exactly like services. The local runner passes the
running platform's settings down with :func:`settings_env`.
"""

from __future__ import annotations

from tinyforge.config import Settings
from tinyforge.context import PlatformContext


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``TINYFORGE_*`` variables that reproduce ``settings`` in a child process."""
    return {
        "TINYFORGE_DATA_DIR": str(settings.data_dir),
        "TINYFORGE_DATABASE_URL": settings.database_url,
        "TINYFORGE_OBJECT_STORE": settings.object_store,
        "TINYFORGE_S3_ENDPOINT": settings.s3_endpoint,
        "TINYFORGE_S3_ACCESS_KEY": settings.s3_access_key,
        "TINYFORGE_S3_SECRET_KEY": settings.s3_secret_key,
        "TINYFORGE_S3_BUCKET": settings.s3_bucket,
        "TINYFORGE_S3_SECURE": "true" if settings.s3_secure else "false",
        "TINYFORGE_S3_REGION": settings.s3_region,
    }


def step_platform() -> PlatformContext:
    """DB + object store for a step process (no job workers: steps are not job managers)."""
    return PlatformContext.create(Settings.from_env(), start_jobs=False)
