"""The custom-block contract: ``parameters.json`` parsed and validated (DESIGN.md §5).

A block directory holds ``parameters.json``::

    {"version": 1, "type": "transform" | "dsp" | "learn" | "deploy",
     "info": {"name": ..., "description": ..., ...},
     "parameters": [{"param": "cutoff", "name": "Cut-off", "type": "float", "value": 3, ...}]}

It is kept close to Edge Impulse's files so existing blocks port unchanged: ``type:
"machine-learning"`` means ``learn``; parameters may be a flat list or EI's
``[{"group": ..., "items": [...]}]``; ``value`` and ``default`` both give the default; select
choices may be plain values or ``{"label", "value"}`` objects; ``min``/``minimum`` and
``max``/``maximum`` are both read. TinyForge adds ``info.localCommand`` (argv list) so a block
can run as a plain process during development, without a container engine.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyforge.blocks.limits import limits_from_info
from tinyforge.dsp.params import ParamSpec, validate_params
from tinyforge.errors import InvalidArgument

BLOCK_TYPES = ("transform", "dsp", "learn", "deploy")
_TYPE_ALIASES = {"machine-learning": "learn", "transformation": "transform"}
# EI parameter types we accept, mapped to our ParamSpec types.
_PARAM_TYPES = {
    "int": "int",
    "float": "float",
    "boolean": "boolean",
    "select": "select",
    "string": "string",
    "secret": "string",
    "dataset": "string",
    "bucket": "string",
}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()-]{0,127}$")
MAX_MANIFEST_BYTES = 256 * 1024


@dataclass(frozen=True)
class BlockManifest:
    """A validated ``parameters.json``."""

    version: int
    type: str
    name: str
    description: str
    info: dict[str, Any]
    parameters: tuple[ParamSpec, ...]
    local_command: tuple[str, ...] | None

    def validate_values(self, values: dict[str, Any] | None) -> dict[str, Any]:
        """Check user-given parameter values against the schema; defaults filled in."""
        return validate_params(self.parameters, values, field_prefix="parameters.")

    def cli_args(self, values: dict[str, Any] | None) -> list[str]:
        """The ``--param value`` arguments a block receives (EI's convention), validated."""
        resolved = self.validate_values(values)
        args: list[str] = []
        for spec in self.parameters:
            value = resolved[spec.param]
            if isinstance(value, bool):
                value = "true" if value else "false"
            args += [f"--{spec.param.replace('_', '-')}", str(value)]
        return args

    def to_json(self) -> dict[str, Any]:
        """Canonical JSON form (what the API returns and stores)."""
        info = dict(self.info)
        if self.local_command is not None:
            info["localCommand"] = list(self.local_command)
        return {
            "version": self.version,
            "type": self.type,
            "info": info,
            "parameters": [p.to_json() for p in self.parameters],
        }


def load_manifest(path: Path) -> BlockManifest:
    """Read and validate ``parameters.json`` at ``path`` (a file or a block directory)."""
    if path.is_dir():
        path = path / "parameters.json"
    if not path.is_file():
        raise InvalidArgument(f"{path} does not exist: a block needs parameters.json", field="path")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise InvalidArgument(
            f"parameters.json is over {MAX_MANIFEST_BYTES} bytes", field="parameters.json"
        )
    return parse_manifest(path.read_bytes())


def parse_manifest(raw: bytes | str | dict[str, Any]) -> BlockManifest:
    """Validate a ``parameters.json`` document; every error names the offending field."""
    if isinstance(raw, bytes | str):
        if len(raw) > MAX_MANIFEST_BYTES:
            raise InvalidArgument(
                f"parameters.json is over {MAX_MANIFEST_BYTES} bytes", field="parameters.json"
            )
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidArgument(
                f"parameters.json is not valid JSON: {exc}", field="parameters.json"
            ) from None
    else:
        doc = raw
    if not isinstance(doc, dict):
        raise InvalidArgument("parameters.json must be a JSON object", field="parameters.json")
    version = doc.get("version", 1)
    if version != 1:
        raise InvalidArgument(f"unsupported version {version!r}; supported: 1", field="version")
    btype = doc.get("type")
    btype = _TYPE_ALIASES.get(btype, btype) if isinstance(btype, str) else btype
    if btype not in BLOCK_TYPES:
        raise InvalidArgument(
            f"type {doc.get('type')!r} is not one of {', '.join(BLOCK_TYPES)}", field="type"
        )
    info = doc.get("info")
    if not isinstance(info, dict):
        raise InvalidArgument("info must be an object with at least a name", field="info")
    name = info.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidArgument(
            "info.name must be 1-128 characters of letters, digits, space and ._()-",
            field="info.name",
        )
    description = info.get("description", "")
    if not isinstance(description, str):
        raise InvalidArgument("info.description must be a string", field="info.description")
    local = info.get("localCommand")
    if local is not None and (
        not isinstance(local, list) or not local or not all(isinstance(a, str) for a in local)
    ):
        raise InvalidArgument(
            "info.localCommand must be a non-empty list of strings", field="info.localCommand"
        )
    limits_from_info(info)  # info.resources (memoryMb, cpus, ...) checked here, read at run time
    params = _parse_parameters(doc.get("parameters", []))
    return BlockManifest(
        version=1,
        type=btype,
        name=name,
        description=description,
        info={k: v for k, v in info.items() if k != "localCommand"},
        parameters=params,
        local_command=tuple(local) if local else None,
    )


def _flatten_groups(items: Any) -> list[tuple[str, Any]]:
    if not isinstance(items, list):
        raise InvalidArgument("parameters must be a list", field="parameters")
    flat: list[tuple[str, Any]] = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and "group" in item and "items" in item:
            if not isinstance(item["items"], list):
                raise InvalidArgument("group items must be a list", field=f"parameters[{i}].items")
            flat += [(f"parameters[{i}].items[{j}]", x) for j, x in enumerate(item["items"])]
        else:
            flat.append((f"parameters[{i}]", item))
    return flat


def _parse_parameters(items: Any) -> tuple[ParamSpec, ...]:
    specs: list[ParamSpec] = []
    seen: set[str] = set()
    for where, item in _flatten_groups(items):
        if not isinstance(item, dict):
            raise InvalidArgument("each parameter must be an object", field=where)
        label = item.get("name")
        key = item.get("param") or (
            re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") if isinstance(label, str) else None
        )
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,63}", key):
            raise InvalidArgument(
                "param must be 1-64 characters: a letter, then letters, digits, _ or -",
                field=f"{where}.param",
            )
        key = key.replace("-", "_")
        if key in seen:
            raise InvalidArgument(f"duplicate parameter {key!r}", field=f"{where}.param")
        seen.add(key)
        ptype = _PARAM_TYPES.get(item.get("type", ""))
        if ptype is None:
            raise InvalidArgument(
                f"type {item.get('type')!r} is not one of {', '.join(_PARAM_TYPES)}",
                field=f"{where}.type",
            )
        valid: tuple[Any, ...] = ()
        if ptype == "select":
            raw_valid = item.get("valid")
            if not isinstance(raw_valid, list) or not raw_valid:
                raise InvalidArgument(
                    "a select needs a non-empty 'valid' list", field=f"{where}.valid"
                )
            valid = tuple(v.get("value") if isinstance(v, dict) else v for v in raw_valid)
        minimum = item.get("min", item.get("minimum"))
        maximum = item.get("max", item.get("maximum"))
        for bound, fname in ((minimum, "min"), (maximum, "max")):
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int | float)
            ):
                raise InvalidArgument(f"{fname} must be a number", field=f"{where}.{fname}")
        default = item.get("value", item.get("default"))
        spec = ParamSpec(
            param=key,
            name=label if isinstance(label, str) else key,
            type=ptype,
            default=default,
            help=str(item.get("help", "")),
            minimum=minimum,
            maximum=maximum,
            valid=valid,
        )
        if default is None:
            raise InvalidArgument(f"parameter {key!r} has no default value", field=f"{where}.value")
        # The default itself must satisfy the schema, or every run without it would fail.
        try:
            spec.coerce(default)
        except InvalidArgument as exc:
            raise InvalidArgument(f"default of {exc.message}", field=f"{where}.value") from None
        specs.append(spec)
    return tuple(specs)
