"""Database engine and sessions: SQLite file by default, PostgreSQL via a URL.

Schema creation is ``Base.metadata.create_all`` for now; Alembic migrations come once the
schema settles (DESIGN.md §3).

Hot write paths (sample ingest, audit rows) go through :class:`GroupCommitter`
(``Database.writer``): one writer thread per process runs the queued write operations of
many callers in one transaction and commits once. Each caller blocks until *its* operation
is committed (or failed), so the per-call guarantee is unchanged; what is shared is the
commit and the write lock (SQLite has one writer at a time: threads that each open a write
transaction contend for it and sleep in SQLite's busy handler).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Insert, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from tinyforge.store.models import Base

log = logging.getLogger(__name__)
T = TypeVar("T")
WriteOp = Callable[[Connection], Any]


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` with settings that suit concurrent service threads."""
    if url.startswith("sqlite"):
        engine = create_engine(
            # No pre-ping: a file database cannot drop a connection, and the ping was an extra
            # round trip on every checkout (every request).
            url, connect_args={"check_same_thread": False, "timeout": 30}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")  # SQLite ignores FKs unless asked
            cur.execute("PRAGMA journal_mode=WAL")  # readers don't block the writer
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # Plain PostgreSQL URLs would select psycopg2, which is not installed: use psycopg 3.
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            url = "postgresql+psycopg://" + url[len(scheme) :]
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def init_db(engine: Engine) -> None:
    """Create every table that does not exist yet."""
    Base.metadata.create_all(engine)


class Database:
    """An engine plus a session factory; the one handle services and steps pass around."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        init_db(self.engine)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self._writer: GroupCommitter | None = None
        self._writer_lock = threading.Lock()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A Core connection for a few reads (no ORM session: cheaper on hot paths). Its
        transaction ends when the block does, so the next read sees the latest commits."""
        with self.engine.connect() as conn:
            yield conn

    @property
    def writer(self) -> GroupCommitter:
        """The process's group committer for this database (started on first use)."""
        w = self._writer
        if w is None or w.pid != os.getpid():  # a forked child has no writer thread
            with self._writer_lock:
                w = self._writer
                if w is None or w.pid != os.getpid():
                    w = self._writer = GroupCommitter(self.engine)
        return w

    def write(self, op: Callable[[Connection], T]) -> T:
        """Run ``op(connection)`` in a group-committed transaction and return its result once
        it is committed; its exception (and nothing of its writes) if it failed."""
        return self.writer.run(op)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any exception."""
        s = self._factory()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.engine.dispose()


_STOP = object()
_RETURNING: dict[Any, Any] = {}


class DriverStatement:
    """A Core statement compiled once, run straight on the DBAPI cursor.

    SQLAlchemy's per-execution work (execution context, parameter processing, result
    wrapping) costs more than SQLite's own work for the one-row statements of the ingest hot
    path. This runs the statement SQLAlchemy compiled, with the values converted by the very
    bind processors (and Python-side column defaults) SQLAlchemy would apply, so the stored
    representation is identical. Only for dialects with positional parameters (SQLite);
    :func:`driver_statement` returns None elsewhere and callers use ``conn.execute``.
    """

    __slots__ = ("defaults", "names", "procs", "sql")

    def __init__(self, stmt: Any, dialect: Any, column_keys: list[str] | None) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=column_keys)
        self.sql: str = compiled.string
        self.names: list[str] = list(compiled.positiontup or [])
        procs = compiled._bind_processors
        self.procs = [procs.get(n) for n in self.names]
        self.defaults: list[tuple[str, Any]] = []
        for col in (*compiled.insert_prefetch, *compiled.update_prefetch):
            d = col.default if col in compiled.insert_prefetch else col.onupdate
            if d is None or not (d.is_scalar or d.is_callable):
                raise ValueError(f"column {col.key} has a default that runs in SQL")
            self.defaults.append((col.key, d))

    def row(self, params: dict[str, Any]) -> tuple[Any, ...]:
        """``params`` (column keys / bind names → Python values) as the driver's tuple."""
        if self.defaults:
            params = dict(params)
            for key, d in self.defaults:
                if key not in params:
                    params[key] = d.arg(None) if d.is_callable else d.arg
        return tuple(p(params[n]) if p is not None else params[n]
                     for n, p in zip(self.names, self.procs, strict=True))


_DRIVER: dict[tuple[Any, ...], DriverStatement | None] = {}


def driver_statement(conn: Connection, stmt: Any,
                     keys: Any = None) -> tuple[DriverStatement, Any] | None:
    """(compiled statement, DBAPI cursor) to run ``stmt`` on ``conn``'s own transaction
    without SQLAlchemy's per-execution layer; None where that does not apply (not SQLite).
    ``keys``: for INSERTs, the column keys the rows give (the others get their defaults)."""
    dialect = conn.dialect
    if dialect.name != "sqlite":
        return None
    ck = (id(stmt), stmt, tuple(keys) if keys is not None else None)
    ds = _DRIVER.get(ck)
    if ds is None and ck not in _DRIVER:
        try:
            ds = DriverStatement(stmt, dialect, list(keys) if keys is not None else None)
        except (ValueError, AttributeError, TypeError):
            ds = None
        _DRIVER[ck] = ds
    if ds is None:
        return None
    return ds, conn.connection.cursor()


def _returning(stmt: Insert) -> Any:
    """``stmt ... RETURNING <primary key>`` in parameter order, built once per statement."""
    r = _RETURNING.get(stmt)
    if r is None:
        pk = list(stmt.table.primary_key.columns)[0]  # type: ignore[attr-defined]
        r = _RETURNING[stmt] = stmt.returning(pk, sort_by_parameter_order=True)
    return r


class BatchOp:
    """A write operation that the group committer may run together with the other queued
    operations of its class and ``group_key`` (``run_group``: one multi-row statement
    instead of one statement each). Called alone (``op(conn)``) after a failed batch, so
    ``run_group`` may simply raise when anything is unusual (a duplicate, a missing row):
    each operation is then re-run on its own and only the culprit fails."""

    group_key: Any = None

    def __call__(self, conn: Connection) -> Any:
        raise NotImplementedError

    def rolled_back(self) -> None:
        """Undo what the operation did outside the database (objects it wrote) after the
        transaction it ran in was rolled back. Called by the writer thread before it runs
        anything else, so nothing can reuse what was rolled back (ids) in between."""

    @classmethod
    def run_group(cls, conn: Connection, ops: list[Any]) -> list[Any]:
        """Run ``ops`` (same class and group key) in the open transaction; their results."""
        return [op(conn) for op in ops]


class _InsertOp(BatchOp):
    """A one-row insert queued on the group committer (grouped with its batch-mates)."""

    __slots__ = ("group_key", "params", "returning_id", "stmt")

    def __init__(self, stmt: Insert, params: dict[str, Any], returning_id: bool) -> None:
        self.stmt, self.params, self.returning_id = stmt, params, returning_id
        self.group_key = (stmt, returning_id)

    def __call__(self, conn: Connection) -> Any:  # alone (after a failed batch)
        res = conn.execute(self.stmt, self.params)
        return int(res.inserted_primary_key[0]) if self.returning_id else None

    @classmethod
    def run_group(cls, conn: Connection, ops: list[Any]) -> list[Any]:
        return insert_rows(conn, ops[0].stmt, [op.params for op in ops],
                           returning_id=ops[0].returning_id)


def insert_rows(conn: Connection, stmt: Insert, rows: list[dict[str, Any]], *,
                returning_id: bool = False) -> list[Any]:
    """Insert ``rows`` with ``stmt`` (a prebuilt ``insert(table)``) in the open transaction,
    as one multi-row statement; their new primary keys in order with ``returning_id``, else
    Nones."""
    keys = list(rows[0])
    drv = driver_statement(conn, stmt, keys) if all(list(r) == keys for r in rows) else None
    if drv is not None:  # SQLite: straight on the cursor of this transaction
        ds, cur = drv
        try:
            if not returning_id:
                cur.executemany(ds.sql, [ds.row(r) for r in rows])
                return [None] * len(rows)
            ids = []
            for r in rows:
                cur.execute(ds.sql, ds.row(r))
                ids.append(int(cur.lastrowid))
            return ids
        finally:
            cur.close()
    if not returning_id:
        conn.execute(stmt, rows)
        return [None] * len(rows)
    ids = conn.execute(_returning(stmt), rows).scalars().all()
    if len(ids) != len(rows):
        raise RuntimeError("multi-row insert returned a wrong number of ids")
    return [int(i) for i in ids]


def _rolled_back(op: Any) -> None:
    """Tell a BatchOp its transaction was rolled back (its own failure is only logged)."""
    if isinstance(op, BatchOp):
        try:
            op.rolled_back()
        except Exception:
            log.exception("undoing a rolled-back database operation failed")


class GroupCommitter:
    """A writer thread that commits the queued write operations of many threads together.

    An operation is ``op(connection) -> result`` made of Core statements on the given
    connection; it must touch nothing but the database (it may be run a second time after
    a rollback), unless it is a :class:`BatchOp` that undoes its other effects in
    ``rolled_back``, which the writer thread calls after every rollback of it. The thread
    takes every operation waiting in the queue (up to ``max_batch``), runs them in one
    transaction and commits once. If any of them raises or the commit fails, the batch is
    rolled back and each operation is re-run in a transaction of its own, so one caller's
    failure (a duplicate, a vanished row) never undoes or fails another caller's write. A
    caller's :meth:`run` returns only after its operation is committed.
    """

    def __init__(self, engine: Engine, *, max_batch: int = 256) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        # The writer thread's own connection, kept between batches (a pool checkout per
        # batch costs, and SQLite keeps its page cache warm on a connection that is the
        # only writer); dropped after any failure and reopened on the next batch.
        self._conn: Connection | None = None
        self.pid = os.getpid()
        self._thread = threading.Thread(target=self._loop, name="tf-db-writer", daemon=True)
        self._thread.start()
        self.batches = 0  # commits so far (for tests and benchmarks)
        self.ops = 0

    def submit(self, op: Callable[[Connection], T]) -> Future[T]:
        """Queue ``op``; the future resolves after the commit that includes it."""
        fut: Future[T] = Future()
        if threading.current_thread() is self._thread:  # would wait on itself forever
            raise RuntimeError("a group-commit operation cannot queue another one")
        if self._closed:
            raise RuntimeError("the database writer is closed")
        self._queue.put((op, fut))
        return fut

    def insert(self, stmt: Insert, params: dict[str, Any], *, returning_id: bool = False) -> Any:
        """Insert one row with ``stmt`` (a prebuilt ``insert(table)``) and wait until it is
        committed; returns the new primary key with ``returning_id``. The inserts of a batch
        that use the same statement run as one multi-row statement (executemany / RETURNING
        in parameter order) instead of one statement each."""
        return self.submit(_InsertOp(stmt, params, returning_id)).result()  # type: ignore[arg-type]

    def insert_nowait(self, stmt: Insert, params: dict[str, Any]) -> Future[None]:
        """Queue a one-row insert like :meth:`insert` without waiting for its commit; the
        future resolves once it is committed (or failed)."""
        return self.submit(_InsertOp(stmt, params, False))  # type: ignore[arg-type]

    def run(self, op: Callable[[Connection], T]) -> T:
        """Queue ``op`` and wait until it is committed; returns its result or raises its
        exception."""
        return self.submit(op).result()

    def close(self) -> None:
        """Finish the queued operations and stop the thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join(timeout=30)

    # -- the writer thread
    def _loop(self) -> None:
        try:
            self._serve()
        finally:
            self._drop_connection()

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.exception("closing the database writer's connection failed")

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            batch = [(op, fut) for op, fut in batch if fut.set_running_or_notify_cancel()]
            if batch:
                try:
                    self._commit(batch)
                except BaseException as exc:  # never leave a caller waiting forever
                    log.exception("database writer failed")
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
            if stop:
                return

    def _commit(self, batch: list[tuple[WriteOp, Future[Any]]]) -> None:
        # Callers are independent (each waits for its previous write before queueing the
        # next), so the order inside a batch is free: grouped inserts first.
        results: list[Any] = [None] * len(batch)
        groups: dict[tuple[Any, Any], list[int]] = {}
        for i, (op, _) in enumerate(batch):
            if isinstance(op, BatchOp):
                groups.setdefault((type(op), op.group_key), []).append(i)
        try:
            if self._conn is None:
                self._conn = self.engine.connect()
            conn = self._conn
            with conn.begin():
                for (kind, _key), idx in groups.items():
                    out = kind.run_group(conn, [batch[i][0] for i in idx])  # type: ignore[misc]
                    for i, res in zip(idx, out, strict=True):
                        results[i] = res
                for i, (op, _) in enumerate(batch):
                    if not isinstance(op, BatchOp):
                        results[i] = op(conn)
        except BaseException:
            # Someone's operation failed (or the commit did): nothing of the batch was
            # committed. Re-run each alone so only the failing ones fail.
            self._drop_connection()
            for op, _ in batch:
                _rolled_back(op)
            for op, fut in batch:
                try:
                    with self.engine.begin() as conn:
                        res = op(conn)
                except BaseException as exc:  # handed to the caller
                    _rolled_back(op)
                    fut.set_exception(exc)
                else:
                    fut.set_result(res)
            self.batches += len(batch)
            self.ops += len(batch)
            return
        self.batches += 1
        self.ops += len(batch)
        for (_, fut), res in zip(batch, results, strict=True):
            fut.set_result(res)
