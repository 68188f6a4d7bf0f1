"""The API service: organizations, projects, API keys, members and jobs.

``register(server, ctx)`` adds all of them to a server; ``python -m services.api`` serves them
alone (cluster mode), ``tinyforge up`` serves them next to the other services (embedded).
"""

from __future__ import annotations

import grpc

from tinyforge.context import PlatformContext


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    """Add every servicer of this service to ``server``; returns the full service names."""
    from services.api import api_keys, jobs, members, organizations, projects

    names: list[str] = []
    for module in (organizations, projects, api_keys, members, jobs):
        names.extend(module.register(server, ctx))
    return names
