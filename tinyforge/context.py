"""PlatformContext: everything a service or step needs, built once from Settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry import trace

from tinyforge.config import Settings
from tinyforge.jobs import JobManager
from tinyforge.store.db import Database

if TYPE_CHECKING:
    from tinyforge.store.objects import ObjectStore


@dataclass
class PlatformContext:
    """Settings + metadata DB + object store + job manager of one running platform process."""

    settings: Settings
    db: Database
    jobs: JobManager
    tracer_provider: trace.TracerProvider | None = None
    _objects: ObjectStore | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls,
        settings: Settings,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        start_jobs: bool = True,
    ) -> PlatformContext:
        """Open the DB (creating the data dir and tables) and start the job workers."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.database_url)
        jobs = JobManager(db, settings.job_workers, tracer_provider=tracer_provider)
        ctx = cls(settings=settings, db=db, jobs=jobs, tracer_provider=tracer_provider)
        jobs.platform = ctx
        if start_jobs:
            jobs.start()
        return ctx

    @property
    def objects(self) -> ObjectStore:
        """The object store, created on first use (local directory or MinIO per settings)."""
        if self._objects is None:
            from tinyforge.store.objects import make_object_store

            self._objects = make_object_store(self.settings)
        return self._objects

    def close(self) -> None:
        """Stop the job workers and release DB connections."""
        self.jobs.stop()
        self.db.dispose()
