"""Helpers shared by the CLI areas that talk to the platform: client, errors, output."""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from tinyforge.client import TinyForgeClient

F = TypeVar("F", bound=Callable[..., Any])

JSON_OPTION = typer.Option(False, "--json", help="Machine-readable JSON output.")


def get_client() -> TinyForgeClient:
    """A client for the platform in client.json / TINYFORGE_ADDRESS + TINYFORGE_API_KEY."""
    from tinyforge.client import TinyForgeClient

    return TinyForgeClient.from_config()


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def handles_api_errors(fn: F) -> F:
    """Turn API/config errors into one line on stderr and a non-zero exit (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from tinyforge.client import ApiError, ConfigError

        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            field = f" (field: {exc.field})" if exc.field else ""
            fail(f"{exc.code}: {exc.message}{field}")
        except ConfigError as exc:
            fail(str(exc), code=2)

    return wrapper  # type: ignore[return-value]


def _enum_prefix(enum_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_name).upper() + "_"


def _whole_numbers(value: Any) -> Any:
    """``value`` with integral floats as ints (a Struct stores every number as a double, so a
    job's ``{"samples": 4}`` would print as 4.0)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def message_to_dict(msg: Message) -> dict[str, Any]:
    """A proto message as plain JSON types: ints stay ints, enums become short lower-case names
    ('admin', 'running'), timestamps ISO-8601 strings (None when unset)."""
    from google.protobuf.json_format import MessageToDict

    out: dict[str, Any] = {}
    for fd in msg.DESCRIPTOR.fields:
        value = getattr(msg, fd.name)
        if fd.message_type is not None:
            full = fd.message_type.full_name
            if full == "google.protobuf.Struct":
                out[fd.name] = _whole_numbers(MessageToDict(value))
            elif full == "google.protobuf.Timestamp":
                out[fd.name] = (
                    value.ToDatetime(tzinfo=UTC).isoformat() if msg.HasField(fd.name) else None
                )
            elif fd.message_type.GetOptions().map_entry:  # map<K, V>: iterating gives keys
                vfd = fd.message_type.fields_by_name["value"]
                out[fd.name] = {k: message_to_dict(v) if vfd.message_type is not None else v
                                for k, v in value.items()}
            elif fd.is_repeated:
                out[fd.name] = [message_to_dict(v) for v in value]
            else:
                out[fd.name] = message_to_dict(value) if msg.HasField(fd.name) else None
        elif fd.enum_type is not None:
            prefix = _enum_prefix(fd.enum_type.name)
            vals = value if fd.is_repeated else [value]
            names = []
            for v in vals:
                ev = fd.enum_type.values_by_number.get(v)
                names.append(ev.name.removeprefix(prefix).lower() if ev else v)
            out[fd.name] = names if fd.is_repeated else names[0]
        elif fd.is_repeated:
            out[fd.name] = list(value)
        else:
            out[fd.name] = value
    return out


def print_json(value: Any) -> None:
    """Print JSON (messages converted with :func:`message_to_dict`)."""
    from google.protobuf.message import Message

    def conv(v: Any) -> Any:
        if isinstance(v, Message):
            return message_to_dict(v)
        if isinstance(v, list | tuple):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    json.dump(conv(value), sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*["" if v is None else str(v) for v in r])
    Console().print(table)


def print_fields(msg: Message) -> None:
    """One 'field: value' line per field of a message."""
    for k, v in message_to_dict(msg).items():
        typer.echo(f"{k}: {json.dumps(v) if isinstance(v, dict | list) else v}")
