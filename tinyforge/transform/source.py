"""What a transformation job works on, and the object keys it uses.

A job is asked for with string parameters (the pipeline's, see ``hera_workflows/transform.py``):

- ``block``: ``NAME`` or ``NAME@VERSION`` of a transform block registered in the project's
  organization (``custom:`` in front is accepted too);
- ``source``: ``dataset`` (every sample of the project), ``dataset:CATEGORY`` or
  ``dataset:CATEGORY/LABEL`` (CATEGORY training | testing | anomaly | all; the samples'
  original files), or ``prefix:KEY`` (every object under the folder KEY, which must lie inside
  ``projects/{project_id}/files/``);
- ``parameters``: a JSON object of the block's parameters (checked against its schema);
- ``category``: where the results go: training | testing | anomaly | split (default split);
- ``label``: the results' label; empty = the name of the folder an output file is in (none
  for files at the top level);
- ``frequency``: sampling rate (Hz) for output CSVs without a time column; empty = none.

Dataset samples are staged under ``projects/{p}/transform/{job}/in/LABEL/FILENAME`` (top level
when unlabeled). Labels and file names may hold characters object keys do not allow, so those
segments are encoded (:func:`encode_segment`) and decoded again when the outputs are ingested.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tinyforge.data.labels import validate_label
from tinyforge.errors import InvalidArgument, TinyForgeError
from tinyforge.store.objects import validate_key, validate_prefix

#: Where results may go (``split`` = by content hash, as uploads).
CATEGORIES = ("training", "testing", "anomaly", "split")
#: Dataset filters: a stored category, or all of them.
SOURCE_CATEGORIES = ("training", "testing", "anomaly", "all")
_BLOCK_RE = re.compile(
    r"^(?:custom:)?(?P<name>[a-z0-9][a-z0-9._-]{0,63})(?:@(?P<v>[1-9][0-9]{0,8}))?$"
)
# Characters kept as they are in an encoded key segment ('=' is the escape character).
_PLAIN = re.compile(r"[A-Za-z0-9._\-+@,]")
_ESCAPE = re.compile(r"(?:=[0-9A-F]{2})+")


@dataclass(frozen=True)
class Source:
    """The input of a transformation: samples of the project or objects under a folder."""

    kind: str  # "dataset" | "prefix"
    text: str
    category: str = ""  # dataset: stored category to take ("" = every category)
    label: str | None = None  # dataset: label to take (None = every label)
    prefix: str = ""  # prefix: the folder key, ending with "/"

    @property
    def encoded_names(self) -> bool:
        """Whether staged (and so output) folder and file names are :func:`encode_segment`-ed."""
        return self.kind == "dataset"


@dataclass(frozen=True)
class TransformRequest:
    """A transformation job's parameters, checked."""

    block: str
    version: int  # 0 = latest
    source: Source
    params: dict[str, Any] = field(default_factory=dict)
    category: str = "split"
    label: str | None = None
    frequency_hz: float | None = None


def files_prefix(project_id: int) -> str:
    """The folder a ``prefix:`` source must lie in."""
    return f"projects/{project_id}/files/"


def staging_prefix(project_id: int, job_id: int) -> str:
    """The folder holding a job's staged input and the block's output (removed at the end)."""
    return f"projects/{project_id}/transform/{job_id}/"


def in_key(project_id: int, job_id: int) -> str:
    """Key (folder, no trailing slash: an Argo S3 artifact key) of the staged input."""
    return staging_prefix(project_id, job_id) + "in"


def out_key(project_id: int, job_id: int) -> str:
    """Key (folder, no trailing slash) the block's output directory is uploaded to."""
    return staging_prefix(project_id, job_id) + "out"


def encode_segment(name: str) -> str:
    """``name`` as an object-key segment: characters keys do not allow (and ``=``, and a
    leading ``.``) become ``=XX`` per UTF-8 byte. Inverse: :func:`decode_segment`."""
    out = []
    for i, ch in enumerate(name):
        if _PLAIN.fullmatch(ch) and not (i == 0 and ch == "."):
            out.append(ch)
        else:
            out.append("".join(f"={b:02X}" for b in ch.encode()))
    return "".join(out)


def decode_segment(segment: str) -> str:
    """Undo :func:`encode_segment` (invalid UTF-8 escapes are replaced, never raised)."""
    return _ESCAPE.sub(
        lambda m: bytes.fromhex(m.group(0).replace("=", "")).decode(errors="replace"), segment
    )


def parse_source(text: str, project_id: int) -> Source:
    """Parse ``source`` (see the module docstring); InvalidArgument(field=source) naming what
    is valid."""
    text = (text or "").strip()
    kind, _sep, rest = text.partition(":")
    if kind == "dataset":
        cat, _s, label = rest.partition("/")
        cat = cat or "all"
        if cat not in SOURCE_CATEGORIES:
            raise InvalidArgument(
                f"source {text!r}: category {cat!r} is not one of {', '.join(SOURCE_CATEGORIES)}"
                " (expected dataset[:CATEGORY[/LABEL]])",
                field="source",
            )
        lab = validate_label(label, field="source") if label else None
        return Source("dataset", text, category="" if cat == "all" else cat, label=lab)
    if kind == "prefix":
        folder = files_prefix(project_id)
        prefix = rest.strip()
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        try:
            validate_prefix(prefix, require_folder=True)
            validate_key(prefix.rstrip("/"))
        except InvalidArgument as exc:
            raise InvalidArgument(f"source {text!r}: {exc.message}", field="source") from None
        if not prefix.startswith(folder):
            raise InvalidArgument(
                f"source {text!r}: a prefix must lie inside this project's files folder "
                f"{folder!r} (e.g. prefix:{folder}raw/)",
                field="source",
            )
        return Source("prefix", text, prefix=prefix)
    raise InvalidArgument(
        f"source {text!r} is not dataset[:CATEGORY[/LABEL]] or prefix:KEY", field="source"
    )


def _text(parameters: Mapping[str, Any], key: str) -> str:
    value = parameters.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{key} must be a string, got {type(value).__name__}", field=key)
    return value.strip()


def parse_request(project_id: int, parameters: Mapping[str, Any]) -> TransformRequest:
    """Check a job's parameters (strings, as a pipeline passes them; ``parameters`` may also be
    a dict). Raises InvalidArgument naming the parameter."""
    known = {"block", "source", "parameters", "category", "label", "frequency"}
    unknown = sorted(set(parameters) - known - {"job-id", "project-id"})
    if unknown:
        raise InvalidArgument(
            f"unknown parameters {unknown}; a transformation takes {sorted(known)}",
            field=unknown[0],
        )
    block = _text(parameters, "block")
    m = _BLOCK_RE.match(block)
    if m is None:
        raise InvalidArgument(
            f"block {block!r} is not NAME or NAME@VERSION of a registered transform block",
            field="block",
        )
    raw = parameters.get("parameters")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        params: Any = {}
    elif isinstance(raw, str):
        try:
            params = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(
                f"parameters is not valid JSON: {exc}", field="parameters"
            ) from None
    else:
        params = raw
    if not isinstance(params, dict):
        raise InvalidArgument("parameters must be a JSON object", field="parameters")
    # parameters.json names may use '-' (as the block's flags do); the schema's keys use '_'
    params = {str(k).replace("-", "_"): v for k, v in params.items()}
    category = _text(parameters, "category") or "split"
    if category not in CATEGORIES:
        raise InvalidArgument(
            f"category {category!r} is not one of {', '.join(CATEGORIES)}", field="category"
        )
    label_text = _text(parameters, "label")
    label = validate_label(label_text) if label_text else None
    freq_text = _text(parameters, "frequency")
    frequency = None
    if freq_text:
        try:
            frequency = float(freq_text)
        except ValueError:
            frequency = math.nan
        if not math.isfinite(frequency) or not 0 < frequency <= 1e6:
            raise InvalidArgument(
                f"frequency {freq_text!r} must be a number of Hz in (0, 1e6]", field="frequency"
            )
    return TransformRequest(
        block=m.group("name"),
        version=int(m.group("v") or 0),
        source=parse_source(_text(parameters, "source"), project_id),
        params=params,
        category=category,
        label=label,
        frequency_hz=frequency,
    )


# -- objects that TinyForge may not have written ---------------------------------------------
# Argo uploads a block's output, and a user may put files under files/, straight into the
# bucket: those objects lack the sha256 metadata ObjectStore reads verify, so MinIO is read
# through its client here.


def list_keys(objects: Any, prefix: str) -> list[str]:
    """Every key under the folder ``prefix`` (ending with ``/``), sorted."""
    from tinyforge.store.objects import MinioObjectStore

    if isinstance(objects, MinioObjectStore):
        return sorted(objects._names(prefix))
    return [info.key for info in objects.list(prefix)]


def read_bytes(objects: Any, key: str) -> bytes:
    """The whole object ``key`` (NotFound when missing)."""
    from tinyforge.store.objects import MinioObjectStore

    if isinstance(objects, MinioObjectStore):
        with objects._errors(key):
            resp = objects._client.get_object(objects.bucket, key)
        try:
            return bytes(resp.read())
        finally:
            resp.close()
            resp.release_conn()
    return bytes(objects.get_bytes(key))


def describe(exc: BaseException) -> str:
    """A one-line reason for an error (domain errors: their message)."""
    return exc.message if isinstance(exc, TinyForgeError) else f"{type(exc).__name__}: {exc}"
