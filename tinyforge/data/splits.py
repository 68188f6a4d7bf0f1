"""Deterministic train/test assignment by content hash (category ``split``).

A sample goes to testing when the first 64 bits of its content sha256, read as a fraction of
2^64, fall below ``test_fraction``. The choice depends only on the sample's own bytes, so it
is stable as the dataset grows and identical on every machine; over many samples it gives
the requested ratio (~80/20 by default).
"""

from __future__ import annotations

from tinyforge.errors import InvalidArgument

DEFAULT_TEST_FRACTION = 0.2


def split_for_hash(sha256_hex: str, test_fraction: float = DEFAULT_TEST_FRACTION) -> str:
    """Return ``"testing"`` or ``"training"`` for a sample with this content sha256 (hex)."""
    if not 0.0 <= test_fraction <= 1.0:
        raise InvalidArgument(f"test_fraction must be in [0, 1], got {test_fraction}",
                              field="test_fraction")
    try:
        head = int(sha256_hex[:16], 16)
    except ValueError:
        raise InvalidArgument(f"not a sha256 hex digest: {sha256_hex!r}",
                              field="sha256") from None
    if len(sha256_hex) != 64:
        raise InvalidArgument(f"not a sha256 hex digest: {sha256_hex!r}", field="sha256")
    return "testing" if head / 2.0**64 < test_fraction else "training"
