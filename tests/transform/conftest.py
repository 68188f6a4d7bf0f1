"""Fixtures for transformation tests: the real platform of tests/api, blocks registered in a
tenant's organization, and CSV samples made from the STM32 HAR recordings (26 Hz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.api.conftest import platform, tenant  # noqa: F401  (fixtures)
from tests.blocks.conftest import (  # noqa: F401  (fixtures)
    EXAMPLE_BLOCKS,
    base_image,
    oci_registry,
    podman_ready,
)

RESAMPLE = EXAMPLE_BLOCKS / "resample-csv"
HAR_HZ = 26.0


def register(running, org_id: int, block_dir: Path, name: str, *, image: str = "") -> str:
    """Register ``block_dir`` (its source archive; ``image`` optional) in org ``org_id``;
    returns NAME@VERSION."""
    from tinyforge.blocks.registry_store import pack_block_source, register_block

    with running.ctx.db.session() as s:
        reg = register_block(
            s,
            running.ctx.objects,
            org_id,
            manifest=(block_dir / "parameters.json").read_text(),
            name=name,
            image=image,
            source_archive=pack_block_source(block_dir),
        )
    return f"{reg.name}@{reg.version}"


def har_csv(
    shared: Path, activity: str, index: int, seconds: float = 4.0
) -> tuple[bytes, np.ndarray]:
    """A CSV with a ``timestamp`` (ms) column made from one HAR recording: the first
    ``seconds`` of ``activity``'s ``index``-th file. Returns (bytes, float rows [T, 4])."""
    files = sorted((shared / "har_stm32_accel" / activity).glob("*.csv"))
    if len(files) <= index:
        pytest.skip(f"../shared/datasets/har_stm32_accel/{activity} has no file {index}")
    a = np.loadtxt(files[index], delimiter=",", dtype=np.float64)[: int(seconds * HAR_HZ)]
    t = np.arange(len(a)) * 1000.0 / HAR_HZ
    rows = np.column_stack([t, a])
    text = "timestamp,accX,accY,accZ\n" + "".join(
        ",".join(repr(float(v)) for v in r) + "\n" for r in rows
    )
    return text.encode(), rows


@pytest.fixture
def har(shared_datasets: Path) -> Path:
    if not (shared_datasets / "har_stm32_accel").is_dir():
        pytest.skip("../shared/datasets/har_stm32_accel is not present")
    return shared_datasets
