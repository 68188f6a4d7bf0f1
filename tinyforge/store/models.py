"""SQLAlchemy 2.x models of the metadata database.

One table per concept. Later stages (samples, impulses, models, builds, blocks) add their own
models in this module so ``Base.metadata`` knows every table. Ids are integers, as in Edge
Impulse's API (its clients expect numeric project and sample ids).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    configure_mappers,
    mapped_column,
    relationship,
)

from tinyforge.store.sqltypes import UTCDateTime


def utcnow() -> datetime:
    """Timezone-aware 'now' used for every timestamp column."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every TinyForge table."""

    type_annotation_map = {dict[str, Any]: JSON}


_B = TypeVar("_B", bound=Base)


def detached_row(cls: type[_B], **values: Any) -> _B:
    """An instance of the mapped class ``cls`` whose attributes are ``values``, built without
    the constructor's per-attribute change events (a Sample costs ~50 µs through its
    constructor, ~3 µs here). For handing back a row that Core statements wrote: it belongs
    to no session and must never be added to one (it has no pending changes to flush)."""
    mapper = cls.__mapper__
    if not mapper.configured:  # relationships resolved (the constructor would do it)
        configure_mappers()
    obj = mapper.class_manager.new_instance()
    obj.__dict__.update(values)
    return obj


class Role(enum.StrEnum):
    """A user's (or API key's) role in an organization, most to least privileged."""

    ADMIN = "admin"
    MEMBER = "member"
    GUEST = "guest"


class JobStatus(enum.StrEnum):
    """Lifecycle of a long-running job."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    # The database cascades the delete (ON DELETE CASCADE); passive_deletes stops the ORM from
    # first nulling projects.org_id (NOT NULL) when an organization is deleted via the session.
    projects: Mapped[list[Project]] = relationship(
        back_populates="organization", cascade="all, delete-orphan", passive_deletes=True
    )


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("org_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    # "single_label" | "bounding_boxes" | "object_detection" | "structured_labels"
    labeling_method: Mapped[str] = mapped_column(String(32), default="single_label")
    # Key that verifies HS256-signed acquisition envelopes (hex); generated per project.
    hmac_key: Mapped[str] = mapped_column(String(128), default="")
    allow_unsigned_data: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow
    )

    organization: Mapped[Organization] = relationship(back_populates="projects")


class ApiKey(Base):
    """An API key, stored as the sha256 of the secret; the secret is shown once at creation.

    Scope: ``project_id`` set → that project only; else ``org_id`` → the whole organization.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    prefix: Mapped[str] = mapped_column(String(32), index=True)  # shown in listings
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Job(Base):
    """A long-running operation (feature generation, training, build...)."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=16), default=JobStatus.PENDING
    )
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1
    message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # W3C trace context of the call that created the job, carried into its steps.
    trace_context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Refreshed by the worker running the job; a RUNNING job whose heartbeat stops is failed by
    # any live job manager (several service processes may share one database in the cluster).
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class JobLog(Base):
    __tablename__ = "job_logs"
    __table_args__ = (Index("ix_job_logs_job_seq", "job_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    line: Mapped[str] = mapped_column(Text)


class AuditLog(Base):
    """One row per mutating API call: who, what, when, and how it ended."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    api_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    org_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    project_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    method: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(32))  # gRPC status code name
    detail: Mapped[str] = mapped_column(Text, default="")


class Sample(Base):
    """One ingested sample: the original upload (object ``raw_key``, kept byte for byte), its
    canonical form for the DSP stage (``canonical_key``, None for images) and its labels.

    ``state`` is ``pending`` while the objects are being written (invisible to every listing)
    and ``ready`` once the upload is complete; a crash leaves a pending row that
    :func:`tinyforge.data.samples.cleanup_stale_uploads` removes with its objects.
    """

    __tablename__ = "samples"
    __table_args__ = (
        Index("ix_samples_project_sha", "project_id", "sha256"),
        Index("ix_samples_project_cat_label", "project_id", "category", "label"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    # training | testing | anomaly
    category: Mapped[str] = mapped_column(String(16), default="training")
    label: Mapped[str | None] = mapped_column(String(256), nullable=True)
    filename: Mapped[str] = mapped_column(String(255), default="")
    kind: Mapped[str] = mapped_column(String(16), default="")  # time_series | audio | image
    format: Mapped[str] = mapped_column(String(16), default="")  # ei-json | csv | wav | ...
    content_type: Mapped[str] = mapped_column(String(128), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    raw_key: Mapped[str] = mapped_column(String(512), default="")
    canonical_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    interval_ms: Mapped[float] = mapped_column(Float, default=0.0)
    length: Mapped[int] = mapped_column(Integer, default=0)  # samples per axis (T)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    axes: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"name", "units"}, ...]
    width: Mapped[int] = mapped_column(Integer, default=0)  # images, pixels
    height: Mapped[int] = mapped_column(Integer, default=0)
    device_name: Mapped[str] = mapped_column(String(256), default="")
    device_type: Mapped[str] = mapped_column(String(256), default="")
    upload_source: Mapped[str] = mapped_column(String(128), default="")
    signed: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sample_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    bounding_boxes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    structured_labels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Device(Base):
    """A device that sent data to a project (filled from uploads)."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(256))
    device_type: Mapped[str] = mapped_column(String(256), default="")
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sample_count: Mapped[int] = mapped_column(Integer, default=0)


class Impulse(Base):
    """A named impulse of a project; its definitions live in :class:`ImpulseVersion` rows.

    ``latest_version`` is the highest version number; every change adds a version, old versions
    stay readable (models record the version they were trained from).
    """

    __tablename__ = "impulses"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ImpulseVersion(Base):
    """One immutable version of an impulse: its canonical JSON definition
    (:meth:`tinyforge.impulse.Impulse.to_json`)."""

    __tablename__ = "impulse_versions"
    __table_args__ = (UniqueConstraint("impulse_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    impulse_id: Mapped[int] = mapped_column(
        ForeignKey("impulses.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[str] = mapped_column(Text)
    created_by_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FeatureSet(Base):
    """The published features of one processing block of one impulse version.

    Points at the manifest object (the only way readers find the feature files); replaced in
    place when features are generated again for the same impulse version.
    """

    __tablename__ = "feature_sets"
    __table_args__ = (UniqueConstraint("impulse_id", "version", "block"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    impulse_id: Mapped[int] = mapped_column(ForeignKey("impulses.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    block: Mapped[str] = mapped_column(String(64))
    block_hash: Mapped[str] = mapped_column(String(64))
    manifest_key: Mapped[str] = mapped_column(String(512))
    windows: Mapped[int] = mapped_column(Integer, default=0)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    feature_shape: Mapped[list[Any]] = mapped_column(JSON, default=list)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Model(Base):
    """A trained model: one learning block of one impulse version, trained on one dataset.

    ``state`` is ``pending`` while its files are being stored (invisible to every listing and
    lookup) and ``ready`` once all of them are in place; a failed training run deletes the
    row and its objects. The object layout under ``files`` is documented in
    :mod:`tinyforge.training.store`.
    """

    __tablename__ = "models"
    __table_args__ = (Index("ix_models_project_state", "project_id", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    impulse_id: Mapped[int] = mapped_column(ForeignKey("impulses.id", ondelete="CASCADE"))
    impulse_version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    learn_block: Mapped[str] = mapped_column(String(64))  # name in the impulse
    block_type: Mapped[str] = mapped_column(String(64))  # registered learning block
    task: Mapped[str] = mapped_column(String(16), default="classification")
    input_blocks: Mapped[list[Any]] = mapped_column(JSON, default=list)
    labels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    feature_shape: Mapped[list[Any]] = mapped_column(JSON, default=list)
    feature_kind: Mapped[str] = mapped_column(String(16), default="flat")
    # sha256 over (sample sha256, label, category) of the samples the features came from
    dataset_hash: Mapped[str] = mapped_column(String(64), default="")
    code_version: Mapped[str] = mapped_column(String(128), default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # file name -> {"key", "size", "sha256", "content_type"}
    files: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ModelTestRun(Base):
    """One run of a model over the testing category; same pending/ready rule as Model."""

    __tablename__ = "model_test_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(16), default="pending")
    threshold: Mapped[float] = mapped_column(Float, default=0.6)
    dataset_hash: Mapped[str] = mapped_column(String(64), default="")
    # summary: per form accuracy / confusion / per-class, accuracy difference, ROC-AUC
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    files: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Block(Base):
    """A custom block registered with an organization (every project of the org may use it).

    ``name`` is the org-unique registry name (lower-case slug, what impulses reference as
    ``custom:NAME``); each registration adds a :class:`BlockVersion`, the highest being
    ``latest_version``.
    """

    __tablename__ = "blocks"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))  # transform | dsp | learn | deploy
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class BlockVersion(Base):
    """One immutable registration of a block: image reference (+ digest), its validated
    ``parameters.json`` (canonical JSON) and, for blocks with a local command, the object key
    and sha256 of its source archive."""

    __tablename__ = "block_versions"
    __table_args__ = (UniqueConstraint("block_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    block_id: Mapped[int] = mapped_column(ForeignKey("blocks.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    image: Mapped[str] = mapped_column(String(512), default="")
    image_digest: Mapped[str] = mapped_column(String(80), default="")
    manifest: Mapped[str] = mapped_column(Text)
    source_key: Mapped[str] = mapped_column(String(512), default="")
    source_sha256: Mapped[str] = mapped_column(String(64), default="")
    created_by_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Build(Base):
    """One deployment build of a trained model: format + target + options, run as a job.

    ``state``: ``pending`` -> ``running`` -> ``ready`` | ``failed``. A build becomes ``ready``
    only after its artifact (``artifact_key``: ``projects/P/builds/B/artifact.zip``) is stored;
    a failed build keeps no object and records ``error``. ``metrics``: RAM / flash / arena
    bytes, DSP and NN instructions per inference, on-target vs platform int8 accuracy, ...
    (see :func:`tinyforge.deploy.registry.build_artifact`).
    """

    __tablename__ = "builds"
    __table_args__ = (Index("ix_builds_project_state", "project_id", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    impulse_id: Mapped[int] = mapped_column(Integer, default=0)
    impulse_version: Mapped[int] = mapped_column(Integer, default=0)
    format: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(64))
    precision: Mapped[str] = mapped_column(String(16), default="int8")  # int8 | float32
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timeout_s: Mapped[float] = mapped_column(Float, default=600.0)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)  # names inside the zip
    artifact_key: Mapped[str] = mapped_column(String(512), default="")
    artifact_size: Mapped[int] = mapped_column(Integer, default=0)
    artifact_sha256: Mapped[str] = mapped_column(String(64), default="")
    model_prefix: Mapped[str] = mapped_column(String(512), default="")  # kserve model dir
    error: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
