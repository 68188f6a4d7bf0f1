"""Registry of the built-in processing blocks: list them, get one by name, schemas as JSON."""

from __future__ import annotations

from tinyforge.catalog import Catalog
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

_CATALOG: Catalog[ProcessingBlock] = Catalog(
    "processing block",
    (
        raw.BLOCK, flatten.BLOCK, spectral_analysis.BLOCK, spectrogram.BLOCK, mfe.BLOCK,
        mfcc.BLOCK, image.BLOCK, mlperf_kws.BLOCK,
    ),
)  # fmt: skip

list_blocks = _CATALOG.list
block_names = _CATALOG.names
get_block = _CATALOG.get
schemas = _CATALOG.schemas
schemas_json = _CATALOG.schemas_json
