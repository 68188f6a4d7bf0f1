"""A named, ordered set of built-in blocks (DSP, learning) with lookup and schemas."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Generic, Protocol, TypeVar


class _Block(Protocol):
    name: str

    def schema(self) -> dict[str, Any]: ...


B = TypeVar("B", bound=_Block)


class Catalog(Generic[B]):
    """Blocks by name, in declaration order; ``kind`` names them in errors."""

    def __init__(self, kind: str, blocks: Iterable[B]) -> None:
        self.kind = kind
        self._blocks: dict[str, B] = {b.name: b for b in blocks}

    def list(self) -> list[B]:
        """All blocks, in a stable order."""
        return list(self._blocks.values())

    def names(self) -> list[str]:
        return list(self._blocks)

    def get(self, name: str) -> B:
        """The block called ``name``; NotFound naming the valid names otherwise."""
        from tinyforge.errors import NotFound

        try:
            return self._blocks[name]
        except KeyError:
            raise NotFound(
                f"{self.kind} {name!r} does not exist; valid blocks: {', '.join(self._blocks)}",
                field="block",
            ) from None

    def schemas(self) -> list[dict[str, Any]]:
        """``parameters.json``-style schema of every block."""
        return [b.schema() for b in self._blocks.values()]

    def schemas_json(self) -> str:
        """:meth:`schemas` serialised as JSON (for the API)."""
        return json.dumps(self.schemas(), sort_keys=True)
