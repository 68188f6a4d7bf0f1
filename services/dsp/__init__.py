"""The dsp service: ImpulseService (stored, versioned impulses) and DspService (processing
blocks, RunBlock, the feature-generation job, the feature explorer, autotune).

A thin gRPC layer over :mod:`tinyforge.impulse_store` and :mod:`tinyforge.features`
(DESIGN.md §1). ``register(server, ctx)`` adds both servicers and binds the platform context
for the ``dsp.generate_features`` job kind.
"""

from __future__ import annotations

import grpc

from tinyforge.context import PlatformContext


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    """Add the ImpulseService and DspService servicers; returns their full service names."""
    from services.dsp import dsp, impulses, jobs

    jobs.bind(ctx)
    return impulses.register(server, ctx) + dsp.register(server, ctx)
