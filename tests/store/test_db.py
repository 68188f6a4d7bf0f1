"""Metadata database tests, run on SQLite and on a real PostgreSQL server (``db_url``)."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tinyforge.store.db import Database, make_engine
from tinyforge.store.models import (
    ApiKey,
    AuditLog,
    Base,
    Job,
    JobLog,
    JobStatus,
    Membership,
    Organization,
    Project,
    Role,
    User,
)

IST = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def _count(db: Database, model: type[Base]) -> int:
    with db.session() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def _org_with_everything(db: Database, name: str = "acme") -> dict[str, int]:
    """An org with a member, two projects, org- and project-scoped keys, a job with logs."""
    with db.session() as s:
        org = Organization(name=name)
        user = User(email=f"ann@{name}.example", name="Ann")
        s.add_all([org, user])
        s.flush()
        s.add(Membership(org_id=org.id, user_id=user.id, role=Role.ADMIN))
        p1 = Project(org_id=org.id, name="kws")
        p2 = Project(org_id=org.id, name="vision")
        s.add_all([p1, p2])
        s.flush()
        s.add(ApiKey(prefix="tf_o", key_hash=f"{name}-org", org_id=org.id, role=Role.MEMBER,
                     user_id=user.id))  # fmt: skip
        s.add(ApiKey(prefix="tf_p", key_hash=f"{name}-proj", org_id=org.id, project_id=p1.id,
                     role=Role.GUEST))  # fmt: skip
        job = Job(project_id=p1.id, kind="train")
        s.add(job)
        s.flush()
        s.add_all([JobLog(job_id=job.id, line=f"epoch {i}") for i in range(3)])
        return {"org": org.id, "user": user.id, "p1": p1.id, "p2": p2.id, "job": job.id}


# --------------------------------------------------------------------------- every model


def _mapped_classes() -> list[type]:
    return sorted((m.class_ for m in Base.registry.mappers), key=lambda c: c.__name__)


_SAMPLE_JSON = {"a": [1, 2.5, "ü✓", None, True], "nested": {"k": "v", "empty": []}}


def _sample_value(col: sa.Column, n: int) -> Any:
    t = col.type.impl if isinstance(col.type, sa.types.TypeDecorator) else col.type
    if isinstance(t, sa.Enum):  # before String: Enum subclasses it
        members = list(t.enum_class) if t.enum_class else t.enums
        return members[-1]
    if isinstance(t, sa.Boolean):
        return True
    if isinstance(t, sa.Integer):
        return 1000 + n
    if isinstance(t, sa.Float):
        return 0.25 + n
    if isinstance(t, sa.DateTime):
        value = datetime(2024, 2, 29, 23, 59, 58, 123456)
        return value.replace(tzinfo=IST) if t.timezone else value
    if isinstance(t, sa.JSON):
        return {**_SAMPLE_JSON, "n": n}
    if isinstance(t, (sa.String, sa.Text)):
        return f"v{n}-ü✓"[: t.length or 64]
    if isinstance(t, sa.LargeBinary):
        return bytes([0, 255, n % 256]) * 10
    if isinstance(t, sa.Uuid):
        return uuid.UUID(int=n + 1)
    if isinstance(t, sa.Numeric):  # after Float and Integer
        return Decimal(n) + Decimal("0.25")
    raise AssertionError(f"no sample value for column {col} of type {t!r}: extend _sample_value")


def _build(s: sa.orm.Session, cls: type, seq: Iterator[int]) -> Any:
    """A row of ``cls`` with every column set (parents created for foreign keys)."""
    mapper = sa.inspect(cls)
    kwargs = {}
    for col in mapper.columns:
        attr = mapper.get_property_by_column(col).key
        if col.primary_key and isinstance(col.type, sa.Integer):
            continue
        if col.foreign_keys:
            target = next(iter(col.foreign_keys)).column
            parent_cls = next(c for c in _mapped_classes() if c.__table__ is target.table)
            parent = _build(s, parent_cls, seq)
            s.flush()
            kwargs[attr] = getattr(parent, mapper_key(parent_cls, target))
        else:
            kwargs[attr] = _sample_value(col, next(seq))
    obj = cls(**kwargs)
    s.add(obj)
    return obj


def mapper_key(cls: type, col: sa.Column) -> str:
    return sa.inspect(cls).get_property_by_column(col).key


def test_every_model_roundtrips(db: Database) -> None:
    """Every mapped class (including ones added later) with every column set: written in one
    transaction, read back equal in another. One database for all models keeps it quick."""
    assert set(Base.metadata.tables) <= set(sa.inspect(db.engine).get_table_names())
    seq = itertools.count()
    written = []
    with db.session() as s:
        for model in _mapped_classes():
            obj = _build(s, model, seq)
            s.flush()
            values = {a.key: getattr(obj, a.key) for a in sa.inspect(model).column_attrs}
            written.append((model, sa.inspect(obj).identity, values))
    with db.session() as s:
        for model, pk, values in written:
            back = s.get(model, pk)
            assert back is not None, f"{model.__name__} {pk} not found"
            for key, value in values.items():
                got = getattr(back, key)
                assert got == value, f"{model.__name__}.{key}: wrote {value!r}, read {got!r}"
                if isinstance(value, datetime) and value.tzinfo is not None:
                    assert got.tzinfo is not None, f"{model.__name__}.{key} came back naive"


# --------------------------------------------------------------------------- constraints


def test_org_name_unique(db: Database) -> None:
    with db.session() as s:
        s.add(Organization(name="acme"))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(Organization(name="acme"))
    assert _count(db, Organization) == 1


def test_project_name_unique_per_org_only(db: Database) -> None:
    with db.session() as s:
        a, b = Organization(name="a"), Organization(name="b")
        s.add_all([a, b])
        s.flush()
        ids = a.id, b.id
        s.add_all([Project(org_id=a.id, name="kws"), Project(org_id=b.id, name="kws")])
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(Project(org_id=ids[0], name="kws"))
    with db.session() as s:
        rows = s.execute(sa.select(Project.org_id, Project.name).order_by(Project.org_id)).all()
    assert [tuple(r) for r in rows] == [(ids[0], "kws"), (ids[1], "kws")]


def test_api_key_hash_unique_and_membership_unique(db: Database) -> None:
    ids = _org_with_everything(db)
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(ApiKey(prefix="x", key_hash="acme-org", org_id=ids["org"], role=Role.ADMIN))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(Membership(org_id=ids["org"], user_id=ids["user"], role=Role.GUEST))
    assert _count(db, ApiKey) == 2 and _count(db, Membership) == 1


def test_foreign_keys_enforced(db: Database) -> None:
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(Project(org_id=424242, name="orphan"))
    assert _count(db, Project) == 0


# --------------------------------------------------------------------------- cascades


@pytest.mark.parametrize("how", ["sql", "orm"])
def test_deleting_org_cascades(db: Database, how: str) -> None:
    ids = _org_with_everything(db, "acme")
    other = _org_with_everything(db, "globex")
    with db.session() as s:
        if how == "sql":
            s.execute(sa.delete(Organization).where(Organization.id == ids["org"]))
        else:
            s.delete(s.get(Organization, ids["org"]))
    with db.session() as s:
        assert s.scalars(sa.select(Organization.name)).all() == ["globex"]
        assert set(s.scalars(sa.select(Project.org_id))) == {other["org"]}
        assert set(s.scalars(sa.select(ApiKey.org_id))) == {other["org"]}
        assert set(s.scalars(sa.select(Membership.org_id))) == {other["org"]}
        assert set(s.scalars(sa.select(Job.id))) == {other["job"]}
        assert set(s.scalars(sa.select(JobLog.job_id))) == {other["job"]}
        assert _count(db, User) == 2  # users belong to no org: they stay


def test_deleting_project_cascades_to_its_keys_and_jobs(db: Database) -> None:
    ids = _org_with_everything(db)
    with db.session() as s:
        s.delete(s.get(Project, ids["p1"]))
    with db.session() as s:
        assert s.scalars(sa.select(ApiKey.key_hash)).all() == ["acme-org"]  # org key stays
        assert _count(db, Job) == 0 and _count(db, JobLog) == 0
        assert s.scalars(sa.select(Project.name)).all() == ["vision"]


def test_deleting_user_nulls_key_owner_and_drops_membership(db: Database) -> None:
    ids = _org_with_everything(db)
    with db.session() as s:
        s.execute(sa.delete(User).where(User.id == ids["user"]))
    with db.session() as s:
        assert s.scalars(sa.select(ApiKey.user_id)).all() == [None, None]
        assert _count(db, Membership) == 0


# --------------------------------------------------------------------------- types


def test_enum_roundtrip(db: Database) -> None:
    ids = _org_with_everything(db)
    with db.session() as s:
        for i, status in enumerate(JobStatus):
            s.add(Job(project_id=ids["p2"], kind=f"k{i}", status=status))
        for role in Role:
            s.add(ApiKey(prefix="r", key_hash=f"h-{role.value}", org_id=ids["org"], role=role))
    with db.session() as s:
        got = s.scalars(sa.select(Job.status).where(Job.project_id == ids["p2"]).order_by(Job.id))
        assert list(got) == list(JobStatus)
        roles = s.scalars(sa.select(ApiKey.role).where(ApiKey.prefix == "r").order_by(ApiKey.id))
        assert list(roles) == list(Role)
        assert all(isinstance(r, Role) for r in roles)
        # and the default
        assert s.get(Job, ids["job"]).status is JobStatus.PENDING


def test_json_columns_roundtrip(db: Database) -> None:
    ids = _org_with_everything(db)
    params = {
        "window_ms": 1000, "scale": 0.5, "labels": ["yes", "no", "ünknown"], "none": None,
        "deep": {"a": {"b": [1, [2, 3], {"c": True}]}}, "big": 2**53,
    }  # fmt: skip
    with db.session() as s:
        job = s.get(Job, ids["job"])
        assert job.params == {} and job.result == {}  # default
        job.params = params
        job.result = {"accuracy": 0.9375}
    with db.session() as s:
        job = s.get(Job, ids["job"])
        assert job.params == params and job.result == {"accuracy": 0.9375}


def test_timestamps_are_timezone_aware(db: Database) -> None:
    before = datetime.now(UTC)
    ids = _org_with_everything(db)
    when = datetime(2025, 6, 1, 12, 0, 0, 500000, tzinfo=IST)
    with db.session() as s:
        key = s.scalars(sa.select(ApiKey).where(ApiKey.key_hash == "acme-org")).one()
        key.revoked_at = when
    after = datetime.now(UTC)
    with db.session() as s:
        org = s.get(Organization, ids["org"])
        assert org.created_at.tzinfo is not None
        assert before - timedelta(seconds=1) <= org.created_at <= after + timedelta(seconds=1)
        key = s.scalars(sa.select(ApiKey).where(ApiKey.key_hash == "acme-org")).one()
        assert key.revoked_at == when and key.revoked_at.utcoffset() is not None
        # ordering and comparison in SQL use the instant, not the wall-clock text
        later = s.scalars(
            sa.select(ApiKey.key_hash).where(ApiKey.revoked_at > datetime(2025, 6, 1, 6, 29,
                                                                          tzinfo=UTC))
        ).all()  # fmt: skip
        assert later == ["acme-org"]
        earlier = s.scalars(
            sa.select(ApiKey.key_hash).where(ApiKey.revoked_at > datetime(2025, 6, 1, 6, 31,
                                                                          tzinfo=UTC))
        ).all()  # fmt: skip
        assert earlier == []


# --------------------------------------------------------------------------- transactions


def test_session_rolls_back_on_exception(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as s:
        org = Organization(name="doomed")
        s.add(org)
        s.flush()
        s.add(Project(org_id=org.id, name="p"))
        s.flush()
        raise RuntimeError("boom")
    assert _count(db, Organization) == 0 and _count(db, Project) == 0
    with db.session() as s:  # the database is usable afterwards
        s.add(Organization(name="doomed"))
    assert _count(db, Organization) == 1


def test_failed_constraint_rolls_back_whole_transaction(db: Database) -> None:
    with db.session() as s:
        s.add(Organization(name="taken"))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(Organization(name="fresh"))
        s.flush()
        s.add(Organization(name="taken"))
    with db.session() as s:
        assert s.scalars(sa.select(Organization.name)).all() == ["taken"]


def test_concurrent_inserts_from_threads(db: Database) -> None:
    ids = _org_with_everything(db)
    n_threads, per_thread = 8, 50
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with db.session() as s:
                    s.add(AuditLog(method=f"/t{t}/{i}", status="OK", org_id=ids["org"]))
                    s.add(JobLog(job_id=ids["job"], line=f"{t}:{i}"))
        except BaseException as e:  # surfaced below with the thread's exception
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with db.session() as s:
        methods = s.scalars(sa.select(AuditLog.method)).all()
        lines = s.scalars(sa.select(JobLog.line).where(JobLog.line.like("%:%"))).all()
    expected = {f"/t{t}/{i}" for t in range(n_threads) for i in range(per_thread)}
    assert len(methods) == n_threads * per_thread and set(methods) == expected
    assert len(lines) == n_threads * per_thread


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u@localhost/db", "psycopg"),
        ("postgres://u@localhost/db", "psycopg"),
        ("postgresql+psycopg://u@localhost/db", "psycopg"),
        ("sqlite:///:memory:", "pysqlite"),
    ],
)
def test_engine_url_schemes(url: str, driver: str) -> None:
    engine = make_engine(url)  # no connection is made
    assert engine.dialect.driver == driver
    engine.dispose()


# --------------------------------------------------------------------------- group commit


def test_group_committer_commits_each_callers_write_and_isolates_failures(
    tmp_path: Any,
) -> None:
    """32 threads x 25 writes through Database.write/writer.insert: every successful write is
    committed exactly once, a failing operation fails only its caller (nothing of it is
    stored), and writes really share commits (fewer commits than operations)."""
    database = Database(f"sqlite:///{tmp_path / 'gc.sqlite'}")
    try:
        with database.session() as s:
            org = Organization(name="gc")
            s.add(org)
            s.flush()
            org_id = org.id
        stmt = sa.insert(AuditLog)
        failures: list[BaseException] = []
        ids: list[tuple[int, str]] = []
        lock = threading.Lock()

        def worker(t: int) -> None:
            for i in range(25):
                if i == 7:  # an operation that writes, then fails: must leave nothing
                    def bad(conn: sa.Connection, t: int = t) -> None:
                        conn.execute(stmt, {"method": f"bad-{t}", "status": "X",
                                            "org_id": org_id, "detail": ""})
                        raise ValueError(f"boom {t}")
                    try:
                        database.write(bad)
                    except ValueError as exc:
                        with lock:
                            failures.append(exc)
                    continue
                new_id = database.writer.insert(
                    stmt, {"method": f"m-{t}-{i}", "status": "OK", "org_id": org_id,
                           "detail": ""}, returning_id=True)
                with lock:
                    ids.append((new_id, f"m-{t}-{i}"))

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(32)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(failures) == 32
        with database.session() as s:
            rows = dict(s.execute(sa.select(AuditLog.id, AuditLog.method)).all())
        assert not [m for m in rows.values() if m.startswith("bad-")]
        assert len(rows) == 32 * 24
        # each caller got the id of its own row
        assert dict(ids) == rows
        assert len(set(rows.values())) == 32 * 24
        assert database.writer.ops == 32 * 25
        # (the failing operations force their batches to be re-run one by one, so this only
        # holds for a batched run; with 32 concurrent writers there always is one)
        assert database.writer.batches < database.writer.ops
    finally:
        database.dispose()
