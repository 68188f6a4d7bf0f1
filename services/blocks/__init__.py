"""The block service: the organization-scoped registry of custom blocks (BlockService).

A thin gRPC layer over :mod:`tinyforge.blocks.registry_store`; ``register(server, ctx)`` adds
the servicer. Using registered DSP blocks in impulses goes through the dsp service (which
resolves ``custom:NAME`` references against the same registry).
"""

from __future__ import annotations

import grpc

from tinyforge.context import PlatformContext


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    """Add the BlockService servicer; returns its full service name."""
    from services.blocks import registry

    return registry.register(server, ctx)
