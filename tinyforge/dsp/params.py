"""Parameter schemas for processing blocks, in the style of Edge Impulse's ``parameters.json``.

A block declares a tuple of :class:`ParamSpec`; :func:`validate_params` turns a user's dict into
a complete, type-coerced dict (defaults filled in) or raises
:class:`~tinyforge.errors.InvalidArgument` naming the parameter and its valid range.

Parameter keys are snake_case. Edge Impulse spells some keys with hyphens (``filter-type``);
those are accepted too, so parameters copied from an Edge Impulse project load unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tinyforge.errors import InvalidArgument

PARAM_TYPES = ("int", "float", "boolean", "select", "string")


@dataclass(frozen=True)
class ParamSpec:
    """One block parameter: key, label, type, default, valid range or choices, help text."""

    param: str
    name: str
    type: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    valid: tuple[Any, ...] = field(default_factory=tuple)
    #: for ``int`` params: value must be a power of two
    power_of_two: bool = False

    def range_text(self) -> str:
        """Human-readable valid range, used in error messages and help."""
        if self.type == "select":
            return "one of " + ", ".join(repr(v) for v in self.valid)
        if self.type == "boolean":
            return "true or false"
        parts = []
        if self.minimum is not None and self.maximum is not None:
            parts.append(f"{self.minimum:g}..{self.maximum:g}")
        elif self.minimum is not None:
            parts.append(f">= {self.minimum:g}")
        elif self.maximum is not None:
            parts.append(f"<= {self.maximum:g}")
        if self.power_of_two:
            parts.append("a power of two")
        return (self.type + " " + ", ".join(parts)).strip()

    def to_json(self) -> dict[str, Any]:
        """The ``parameters.json`` item for this parameter."""
        item: dict[str, Any] = {
            "param": self.param,
            "name": self.name,
            "type": self.type,
            "value": self.default,
            "help": self.help,
        }
        if self.valid:
            item["valid"] = list(self.valid)
        if self.minimum is not None:
            item["min"] = self.minimum
        if self.maximum is not None:
            item["max"] = self.maximum
        if self.power_of_two:
            item["powerOfTwo"] = True
        return item

    def coerce(self, value: Any, field_prefix: str = "") -> Any:
        """Check one value against this spec; return it in canonical Python type."""
        fname = field_prefix + self.param
        bad = InvalidArgument(
            f"parameter {self.param!r} = {value!r} is invalid: expected {self.range_text()}",
            field=fname,
        )
        if self.type == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise bad
        if self.type == "select":
            # Edge Impulse stores numeric choices as strings ("1", "3", ...): compare as text too.
            for choice in self.valid:
                if value == choice or str(value) == str(choice):
                    return choice
            raise bad
        if self.type == "string":
            if not isinstance(value, str):
                raise bad
            return value
        if isinstance(value, bool):
            raise bad
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise bad from None
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise bad
        if self.type == "int":
            if float(value) != int(value):
                raise bad
            value = int(value)
        else:
            value = float(value)
        if self.minimum is not None and value < self.minimum:
            raise bad
        if self.maximum is not None and value > self.maximum:
            raise bad
        if self.power_of_two and (value < 1 or value & (value - 1)):
            raise bad
        return value


def normalise_key(key: str) -> str:
    """Edge Impulse hyphenated keys → our snake_case keys."""
    return key.replace("-", "_")


def validate_params(
    specs: tuple[ParamSpec, ...], params: dict[str, Any] | None, field_prefix: str = ""
) -> dict[str, Any]:
    """Validate ``params`` against ``specs``; fill defaults; reject unknown keys.

    ``field_prefix`` is prepended to the parameter name in errors
    (e.g. ``"processing[0].params."``).
    """
    params = dict(params or {})
    if not isinstance(params, dict):
        raise InvalidArgument("block parameters must be an object", field=field_prefix.rstrip("."))
    by_key = {s.param: s for s in specs}
    out: dict[str, Any] = {}
    for raw_key, value in params.items():
        key = normalise_key(str(raw_key))
        if key not in by_key:
            raise InvalidArgument(
                f"unknown parameter {raw_key!r}; valid parameters: {', '.join(sorted(by_key))}",
                field=field_prefix + str(raw_key),
            )
        out[key] = by_key[key].coerce(value, field_prefix)
    for spec in specs:
        out.setdefault(spec.param, spec.default)
    return out
