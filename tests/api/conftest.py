"""A real TinyForge gRPC server on an ephemeral loopback port, for service and CLI tests.

Fixtures:
- ``platform`` (session): the running server (every embedded service) over a tmp data dir
  (SQLite + local object store). ``platform.address``; ``platform.ctx`` (PlatformContext).
- ``tenant`` (function): a fresh organization with a project and an admin key, isolated from
  every other test; ``tenant.key("member")``, ``tenant.key("guest", project_id=...)``,
  ``tenant.client(secret)``.

Later services' tests reuse these: import them in their conftest
(``from tests.api.conftest import platform, tenant  # noqa: F401``).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.common.server import PlatformServer, load_registrars
from services.embedded import SERVICES
from tinyforge.accounts import apikeys, members, orgs, projects
from tinyforge.client import TinyForgeClient
from tinyforge.config import Settings
from tinyforge.context import PlatformContext
from tinyforge.store.models import ApiKey, Role

_counter = itertools.count()


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Embedded settings rooted at ``data_dir`` (SQLite, local objects, ephemeral port)."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": f"sqlite:///{data_dir / 'tinyforge.db'}",
        "grpc_port": 0,
        "job_workers": 2,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class RunningPlatform:
    """A started PlatformServer and helpers to create tenants and keys directly in its DB."""

    ctx: PlatformContext
    server: PlatformServer
    clients: list[TinyForgeClient] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.server.address

    def client(self, secret: str, **kwargs: object) -> TinyForgeClient:
        """An SDK client using ``secret`` (closed at the end of the session)."""
        c = TinyForgeClient(self.address, secret, **kwargs)  # type: ignore[arg-type]
        self.clients.append(c)
        return c

    def new_tenant(self) -> Tenant:
        """A fresh organization + project + admin user and org-admin key."""
        n = next(_counter)
        tag = uuid.uuid4().hex[:8]
        with self.ctx.db.session() as s:
            org = orgs.create_org(s, f"org-{n}-{tag}")
            project = projects.create_project(s, org.id, f"project-{n}")
            admin = members.add_member(s, org.id, f"admin-{n}-{tag}@example.com", Role.ADMIN)
            _key, secret = apikeys.create_api_key(
                s, org_id=org.id, role=Role.ADMIN, user_id=admin.user_id, name="admin"
            )
        return Tenant(self, org.id, project.id, admin.user_id, secret)


@dataclass
class Tenant:
    """One organization of the running platform, with its first project and admin key."""

    platform: RunningPlatform
    org_id: int
    project_id: int
    admin_user_id: int
    admin_key: str

    def key(
        self,
        role: str,
        *,
        project_id: int | None = None,
        revoked: bool = False,
    ) -> str:
        """A new key of ``role`` for a new member user of the same role, scoped to
        ``project_id`` or the whole organization (``revoked``: already revoked)."""
        n = next(_counter)
        with self.platform.ctx.db.session() as s:
            m = members.add_member(
                s,
                self.org_id,
                f"user-{n}-{uuid.uuid4().hex[:6]}@example.com",
                Role(role),
            )
            key, secret = apikeys.create_api_key(
                s, org_id=self.org_id, project_id=project_id, role=Role(role), user_id=m.user_id
            )
            if revoked:
                s.get(ApiKey, key.id).revoked_at = datetime.now(UTC)  # type: ignore[union-attr]
        return secret

    def new_project(self, name: str | None = None) -> int:
        with self.platform.ctx.db.session() as s:
            return projects.create_project(
                s, self.org_id, name or f"p-{next(_counter)}-{uuid.uuid4().hex[:6]}"
            ).id

    def client(self, secret: str | None = None, **kwargs: object) -> TinyForgeClient:
        return self.platform.client(secret or self.admin_key, **kwargs)


def start_platform(data_dir: Path, **settings_overrides: object) -> RunningPlatform:
    """Start a platform over ``data_dir``; stop it with :func:`stop_platform`."""
    ctx = PlatformContext.create(make_settings(data_dir, **settings_overrides))
    server = PlatformServer(ctx, load_registrars(SERVICES), host="127.0.0.1", port=0)
    server.start()
    return RunningPlatform(ctx, server)


def stop_platform(p: RunningPlatform) -> None:
    for c in p.clients:
        c.close()
    p.server.stop(grace=1.0)
    p.ctx.close()


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    p = start_platform(tmp_path_factory.mktemp("platform"))
    yield p
    stop_platform(p)


@pytest.fixture
def tenant(platform: RunningPlatform) -> Tenant:
    return platform.new_tenant()
