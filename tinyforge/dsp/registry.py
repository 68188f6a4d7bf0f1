"""Registry of the built-in processing blocks: list them, get one by name, schemas as JSON."""

from __future__ import annotations

import json
from typing import Any

from tinyforge.dsp import (
    flatten,
    image,
    mfcc,
    mfe,
    mlperf_kws,
    raw,
    spectral_analysis,
    spectrogram,
)  # fmt: skip
from tinyforge.dsp.base import ProcessingBlock
from tinyforge.errors import NotFound

_BLOCKS: dict[str, ProcessingBlock] = {
    b.name: b
    for b in (
        raw.BLOCK, flatten.BLOCK, spectral_analysis.BLOCK, spectrogram.BLOCK, mfe.BLOCK,
        mfcc.BLOCK, image.BLOCK, mlperf_kws.BLOCK,
    )
}  # fmt: skip


def list_blocks() -> list[ProcessingBlock]:
    """All built-in blocks, in a stable order."""
    return list(_BLOCKS.values())


def block_names() -> list[str]:
    return list(_BLOCKS)


def get_block(name: str) -> ProcessingBlock:
    """The block called ``name``; NotFound naming the valid names otherwise."""
    try:
        return _BLOCKS[name]
    except KeyError:
        raise NotFound(
            f"processing block {name!r} does not exist; valid blocks: {', '.join(_BLOCKS)}",
            field="block",
        ) from None


def schemas() -> list[dict[str, Any]]:
    """``parameters.json``-style schema of every block."""
    return [b.schema() for b in _BLOCKS.values()]


def schemas_json() -> str:
    """:func:`schemas` serialised as JSON (for the API's ListBlocks)."""
    return json.dumps(schemas(), sort_keys=True)
