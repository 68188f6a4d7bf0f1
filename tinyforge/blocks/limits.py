"""Resource limits of a block run: memory, CPU, processes, wall time, network.

A block may state what it needs in ``parameters.json`` under ``info.resources``::

    "info": {"name": ..., "resources": {"memoryMb": 512, "cpus": 1.5, "pids": 256,
                                        "timeoutSeconds": 600, "network": false}}

The platform's own limits (the caller's ``BlockLimits``) override the block's request field by
field. Containers get all of them; a block run as a local command gets only the time limit
(there is no cgroup around a plain process).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from tinyforge.errors import InvalidArgument

#: Valid ranges, also quoted in error messages.
MEMORY_MB_RANGE = (16, 256 * 1024)
CPUS_RANGE = (0.1, 256.0)
PIDS_RANGE = (8, 65536)
TIMEOUT_S_RANGE = (1, 7 * 24 * 3600)


@dataclass(frozen=True)
class BlockLimits:
    """Limits for one block run. ``None`` fields fall back to the defaults below."""

    memory_mb: int | None = None  # MiB, swap disabled
    cpus: float | None = None  # fractional cores
    pids: int | None = None
    timeout_s: float | None = None  # seconds of wall time
    network: bool | None = None  # True: the container gets the default network

    def merged(self, override: BlockLimits | None) -> BlockLimits:
        """These limits with every non-None field of ``override`` taking precedence."""
        if override is None:
            return self
        return replace(
            self,
            **{
                f.name: getattr(override, f.name)
                for f in fields(self)
                if getattr(override, f.name) is not None
            },
        )

    def resolved(self) -> BlockLimits:
        """Every field set: missing ones take :data:`DEFAULT_LIMITS`' values; ranges checked."""
        out = DEFAULT_LIMITS.merged(self)
        _check_range("memory_mb", out.memory_mb, MEMORY_MB_RANGE, "MiB")
        _check_range("cpus", out.cpus, CPUS_RANGE, "cores")
        _check_range("pids", out.pids, PIDS_RANGE, "processes")
        _check_range("timeout_s", out.timeout_s, TIMEOUT_S_RANGE, "s")
        return out


DEFAULT_LIMITS = BlockLimits(memory_mb=2048, cpus=1.0, pids=512, timeout_s=3600.0, network=False)


def _check_range(name: str, value: Any, bounds: tuple[float, float], unit: str) -> None:
    lo, hi = bounds
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not lo <= value <= hi
    ):
        raise InvalidArgument(
            f"limit {name} = {value!r} is invalid: expected {lo:g}..{hi:g} {unit}",
            field=f"limits.{name}",
        )


_RESOURCE_KEYS = {
    "memoryMb": ("memory_mb", MEMORY_MB_RANGE, "MiB", int),
    "cpus": ("cpus", CPUS_RANGE, "cores", float),
    "pids": ("pids", PIDS_RANGE, "processes", int),
    "timeoutSeconds": ("timeout_s", TIMEOUT_S_RANGE, "s", float),
}


def limits_from_info(info: dict[str, Any]) -> BlockLimits:
    """The limits a block requests in ``info.resources`` (absent fields stay None).

    Raises InvalidArgument naming ``info.resources.<key>`` and its valid range.
    """
    res = info.get("resources")
    if res is None:
        return BlockLimits()
    if not isinstance(res, dict):
        raise InvalidArgument("info.resources must be an object", field="info.resources")
    values: dict[str, Any] = {}
    for key, raw in res.items():
        where = f"info.resources.{key}"
        if key == "network":
            if not isinstance(raw, bool):
                raise InvalidArgument("network must be true or false", field=where)
            values["network"] = raw
            continue
        if key not in _RESOURCE_KEYS:
            raise InvalidArgument(
                f"unknown resource {key!r}; known: {', '.join([*_RESOURCE_KEYS, 'network'])}",
                field=where,
            )
        attr, (lo, hi), unit, kind = _RESOURCE_KEYS[key]
        if (
            isinstance(raw, bool)
            or not isinstance(raw, int | float)
            or not math.isfinite(raw)
            or not lo <= raw <= hi
            or (kind is int and raw != int(raw))
        ):
            raise InvalidArgument(
                f"{key} = {raw!r} is invalid: expected {kind.__name__} {lo:g}..{hi:g} {unit}",
                field=where,
            )
        values[attr] = kind(raw)
    return BlockLimits(**values)
