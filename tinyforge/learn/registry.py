"""Registry of the built-in learning blocks: list them, get one by name, schemas as JSON.

Importing this module does not import TensorFlow (blocks import it when they train).
"""

from __future__ import annotations

import json
from typing import Any

from tinyforge.errors import NotFound
from tinyforge.learn import anomaly_gmm, anomaly_kmeans, classical, classifier, regression
from tinyforge.learn.base import LearnBlock

_BLOCKS: dict[str, LearnBlock] = {
    b.name: b
    for b in (classifier.BLOCK, regression.BLOCK, anomaly_kmeans.BLOCK, anomaly_gmm.BLOCK,
              classical.BLOCK)
}  # fmt: skip


def list_blocks() -> list[LearnBlock]:
    """All built-in learning blocks, in a stable order."""
    return list(_BLOCKS.values())


def block_names() -> list[str]:
    return list(_BLOCKS)


def get_block(name: str) -> LearnBlock:
    """The block called ``name``; NotFound naming the valid names otherwise."""
    try:
        return _BLOCKS[name]
    except KeyError:
        raise NotFound(
            f"learning block {name!r} does not exist; valid blocks: {', '.join(_BLOCKS)}",
            field="block",
        ) from None


def schemas() -> list[dict[str, Any]]:
    """``parameters.json``-style schema of every block."""
    return [b.schema() for b in _BLOCKS.values()]


def schemas_json() -> str:
    """:func:`schemas` serialised as JSON (for the API)."""
    return json.dumps(schemas(), sort_keys=True)
