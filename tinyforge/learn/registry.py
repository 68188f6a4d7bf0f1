"""Registry of the built-in learning blocks: list them, get one by name, schemas as JSON.

Importing this module does not import TensorFlow (blocks import it when they train).
"""

from __future__ import annotations

from tinyforge.catalog import Catalog
from tinyforge.learn import anomaly_gmm, anomaly_kmeans, classical, classifier, regression
from tinyforge.learn.base import LearnBlock

_CATALOG: Catalog[LearnBlock] = Catalog(
    "learning block",
    (classifier.BLOCK, regression.BLOCK, anomaly_kmeans.BLOCK, anomaly_gmm.BLOCK,
     classical.BLOCK),
)  # fmt: skip

list_blocks = _CATALOG.list
block_names = _CATALOG.names
get_block = _CATALOG.get
schemas = _CATALOG.schemas
schemas_json = _CATALOG.schemas_json
