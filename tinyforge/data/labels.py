"""Labels and sample metadata: validation, and the Edge Impulse label formats.

- Single label: 1–256 characters after trimming, no control characters.
- Bounding boxes: ``{label, x, y, width, height}`` in pixels, (x, y) the top-left corner,
  checked to lie inside the image when its size is known.
- Structured labels (multi-label time series): ``{startIndex, endIndex, label}`` ranges, both
  ends inclusive, sorted, without gaps or overlaps (EI's rule). Canonical ranges are in
  samples; EI's ``structured_labels.labels`` file documents its numbers as milliseconds, so
  :func:`resolve_structured_labels` converts with the sample's interval (``unit="ms"``) or
  takes them as sample indices (``unit="index"``).
- Metadata: string → string, at most 64 keys, keys ≤ 128 and values ≤ 1024 characters.
- File names: no path separators, no ``..``, no control characters, ≤ 255 UTF-8 bytes.
- Categories: training, testing, anomaly, split.

EI wire formats parsed here: the ``x-bounding-boxes`` header (a JSON list of boxes), the
``x-metadata`` header (a JSON object), the ``bounding_boxes.labels`` file
(``{"version": 1, "type": "bounding-box-labels", "boundingBoxes": {file: [box, ...]}}``) and
the ``structured_labels.labels`` file
(``{"version": 1, "type": "structured-labels", "structuredLabels": {file: [range, ...]}}``).
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from tinyforge.data.canonical import StructuredLabel
from tinyforge.errors import InvalidArgument

MAX_LABEL_LEN = 256
MAX_FILENAME_BYTES = 255
MAX_METADATA_KEYS = 64
MAX_METADATA_KEY_LEN = 128
MAX_METADATA_VALUE_LEN = 1024
MAX_BOXES = 1000
MAX_STRUCTURED_LABELS = 10_000
MAX_LABEL_FILE_BYTES = 16 * 1024 * 1024
BOX_TOLERANCE_PX = 1.0  # annotation tools round; a box may poke out by up to this much


class Category(StrEnum):
    TRAINING = "training"
    TESTING = "testing"
    ANOMALY = "anomaly"
    SPLIT = "split"  # assign training/testing by content hash (tinyforge.data.splits)


def validate_category(value: str) -> Category:
    """Return the Category, or raise InvalidArgument(field="category")."""
    try:
        return Category(value)
    except ValueError:
        raise InvalidArgument(
            f"unknown category {value!r}; expected one of "
            f"{', '.join(c.value for c in Category)}", field="category") from None


def _has_control(s: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") for ch in s)


def validate_label(value: Any, field: str = "label") -> str:
    """A label: a string, 1–256 characters once trimmed, without control characters."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string, got {type(value).__name__}",
                              field=field)
    label = value.strip()
    if not label:
        raise InvalidArgument(f"{field} is empty", field=field)
    if len(label) > MAX_LABEL_LEN:
        raise InvalidArgument(f"{field} is {len(label)} characters, the limit is "
                              f"{MAX_LABEL_LEN}", field=field)
    if _has_control(label):
        raise InvalidArgument(f"{field} contains control characters", field=field)
    return label


def validate_filename(name: Any, field: str = "filename") -> str:
    """Accept a bare file name: no ``/`` or ``\\``, no ``..``, no control characters,
    not empty, at most 255 UTF-8 bytes. Returns it unchanged."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"{field} is empty", field=field)
    if "/" in name or "\\" in name:
        raise InvalidArgument(f"{field} {name!r} contains a path separator", field=field)
    if ".." in name or name == ".":
        raise InvalidArgument(f"{field} {name!r} contains '..'", field=field)
    if _has_control(name):
        raise InvalidArgument(f"{field} contains control characters", field=field)
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument(f"{field} is not valid Unicode", field=field) from None
    if size > MAX_FILENAME_BYTES:
        raise InvalidArgument(f"{field} is {size} bytes, the limit is {MAX_FILENAME_BYTES}",
                              field=field)
    return name


def sanitize_filename(name: str, default: str = "sample") -> str:
    """Make a safe bare file name from anything (e.g. a client path): keep the last path
    component, replace control characters and ``..`` runs, trim to 255 bytes."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join("_" if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") else ch
                   for ch in base)
    while ".." in base:
        base = base.replace("..", ".")
    base = base.strip().strip(".") or default
    raw = base.encode("utf-8")
    if len(raw) > MAX_FILENAME_BYTES:
        base = raw[:MAX_FILENAME_BYTES].decode("utf-8", errors="ignore")
    return base


# -- bounding boxes --------------------------------------------------------------------------

@dataclass(frozen=True)
class BoundingBox:
    """A box in pixels: top-left corner (x, y), width and height (> 0)."""

    label: str
    x: float
    y: float
    width: float
    height: float

    def to_ei(self) -> dict[str, Any]:
        return {"label": self.label, "x": self.x, "y": self.y, "width": self.width,
                "height": self.height}


def _num(v: Any, field: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise InvalidArgument(f"{field} must be a number", field=field)
    try:
        f = float(v)
    except OverflowError:
        raise InvalidArgument(f"{field} is out of range", field=field) from None
    if not math.isfinite(f):
        raise InvalidArgument(f"{field} must be finite", field=field)
    return f


def parse_bounding_boxes(obj: Any, field: str = "bounding_boxes") -> list[BoundingBox]:
    """Parse EI's list of ``{label, x, y, width, height}`` objects (no image-size check)."""
    if not isinstance(obj, list):
        raise InvalidArgument(f"{field} must be a list of boxes", field=field)
    if len(obj) > MAX_BOXES:
        raise InvalidArgument(f"{field} has {len(obj)} boxes, the limit is {MAX_BOXES}",
                              field=field)
    boxes = []
    for i, b in enumerate(obj):
        f = f"{field}[{i}]"
        if not isinstance(b, dict):
            raise InvalidArgument(f"{f} must be an object {{label, x, y, width, height}}",
                                  field=field)
        missing = [k for k in ("label", "x", "y", "width", "height") if k not in b]
        if missing:
            raise InvalidArgument(f"{f} is missing {', '.join(missing)}", field=field)
        box = BoundingBox(label=validate_label(b["label"], f"{f}.label"),
                          x=_num(b["x"], f"{f}.x"), y=_num(b["y"], f"{f}.y"),
                          width=_num(b["width"], f"{f}.width"),
                          height=_num(b["height"], f"{f}.height"))
        if box.width <= 0 or box.height <= 0:
            raise InvalidArgument(f"{f} has width {box.width} and height {box.height}; both "
                                  "must be > 0", field=field)
        boxes.append(box)
    return boxes


def check_boxes_in_image(boxes: list[BoundingBox], width: int, height: int, *,
                         field: str = "bounding_boxes",
                         tolerance_px: float = BOX_TOLERANCE_PX) -> list[BoundingBox]:
    """Refuse boxes outside the ``width`` × ``height`` image (beyond ``tolerance_px``); clip
    the ones within tolerance to the image and return the list."""
    out = []
    for i, b in enumerate(boxes):
        if (b.x < -tolerance_px or b.y < -tolerance_px
                or b.x + b.width > width + tolerance_px
                or b.y + b.height > height + tolerance_px):
            raise InvalidArgument(
                f"{field}[{i}] ({b.x}, {b.y}, {b.width}x{b.height}) lies outside the "
                f"{width}x{height} image", field=field)
        x0, y0 = max(b.x, 0.0), max(b.y, 0.0)
        x1, y1 = min(b.x + b.width, float(width)), min(b.y + b.height, float(height))
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            raise InvalidArgument(f"{field}[{i}] has no area inside the image", field=field)
        out.append(BoundingBox(b.label, x0, y0, x1 - x0, y1 - y0))
    return out


def _json(text: str | bytes, field: str) -> Any:
    if isinstance(text, bytes):
        if len(text) > MAX_LABEL_FILE_BYTES:
            raise InvalidArgument(f"{field} is larger than {MAX_LABEL_FILE_BYTES} bytes",
                                  field=field)
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise InvalidArgument(f"{field} is not UTF-8: {e}", field=field) from e
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise InvalidArgument(f"{field} is not valid JSON: {e}", field=field) from e


def parse_bounding_boxes_header(value: str) -> list[BoundingBox]:
    """The ``x-bounding-boxes`` header: a JSON list of boxes."""
    return parse_bounding_boxes(_json(value, "x-bounding-boxes"), "x-bounding-boxes")


def _label_file(data: str | bytes, field: str, kind: str, key: str) -> dict[str, Any]:
    obj = _json(data, field)
    if not isinstance(obj, dict):
        raise InvalidArgument(f"{field} must be a JSON object", field=field)
    if obj.get("version") != 1:
        raise InvalidArgument(f"{field}: version must be 1, got {obj.get('version')!r}",
                              field=field)
    if obj.get("type") != kind:
        raise InvalidArgument(f"{field}: type must be {kind!r}, got {obj.get('type')!r}",
                              field=field)
    entries = obj.get(key)
    if not isinstance(entries, dict):
        raise InvalidArgument(f"{field}: {key} must be an object keyed by file name",
                              field=field)
    return entries


def parse_bounding_boxes_file(data: str | bytes) -> dict[str, list[BoundingBox]]:
    """A ``bounding_boxes.labels`` file → {file name: boxes}."""
    field = "bounding_boxes.labels"
    entries = _label_file(data, field, "bounding-box-labels", "boundingBoxes")
    return {name: parse_bounding_boxes(boxes, f"{field}[{name!r}]")
            for name, boxes in entries.items()}


# -- structured labels -----------------------------------------------------------------------

@dataclass(frozen=True)
class LabelRange:
    """A structured-label range as written by the client (unit decided by the caller)."""

    start: float
    end: float
    label: str


def parse_label_ranges(obj: Any, field: str = "structured_labels") -> list[LabelRange]:
    """Parse a list of ``{startIndex, endIndex, label}``; checks start ≤ end, sorted,
    no overlap and no gap (next start = previous end + 1)."""
    if not isinstance(obj, list) or not obj:
        raise InvalidArgument(f"{field} must be a non-empty list", field=field)
    if len(obj) > MAX_STRUCTURED_LABELS:
        raise InvalidArgument(f"{field} has more than {MAX_STRUCTURED_LABELS} ranges",
                              field=field)
    out: list[LabelRange] = []
    for i, r in enumerate(obj):
        f = f"{field}[{i}]"
        if not isinstance(r, dict) or not {"startIndex", "endIndex", "label"} <= r.keys():
            raise InvalidArgument(f"{f} must be {{startIndex, endIndex, label}}", field=field)
        start, end = _num(r["startIndex"], f"{f}.startIndex"), _num(r["endIndex"],
                                                                    f"{f}.endIndex")
        if start < 0 or end < start:
            raise InvalidArgument(f"{f}: need 0 <= startIndex <= endIndex, got {start}..{end}",
                                  field=field)
        if out and start != out[-1].end + 1:
            prev = out[-1].end
            what = "overlaps" if start <= prev else "leaves a gap after"
            raise InvalidArgument(f"{f} starts at {start}, which {what} the previous range "
                                  f"ending at {prev} (expected {prev + 1})", field=field)
        out.append(LabelRange(start, end, validate_label(r["label"], f"{f}.label")))
    return out


def parse_structured_labels_file(data: str | bytes) -> dict[str, list[LabelRange]]:
    """A ``structured_labels.labels`` file → {file name: ranges (as written)}."""
    field = "structured_labels.labels"
    entries = _label_file(data, field, "structured-labels", "structuredLabels")
    return {name: parse_label_ranges(r, f"{field}[{name!r}]") for name, r in entries.items()}


def resolve_structured_labels(ranges: list[LabelRange], *, length: int, interval_ms: float,
                              unit: Literal["ms", "index"] = "ms",
                              field: str = "structured_labels") -> list[StructuredLabel]:
    """Turn ranges into sample-index labels for a series of ``length`` samples.

    ``unit="index"``: the numbers are sample indices, used as they are. ``unit="ms"``: each
    range starts at sample ceil(start / interval) and runs to the next range's start − 1
    (the last one to floor(end / interval)), so the result stays gap-free. The last range
    may not end beyond the sample (beyond a one-sample rounding slack for ms).
    """
    if length < 1:
        raise InvalidArgument("structured labels need a sample with at least 1 value",
                              field=field)
    if unit == "index":
        starts = [int(r.start) for r in ranges]
        ends = [int(r.end) for r in ranges]
        if any(r.start != int(r.start) or r.end != int(r.end) for r in ranges):
            raise InvalidArgument(f"{field}: sample indices must be integers", field=field)
        last_end = ends[-1]
    else:
        starts = [math.ceil(r.start / interval_ms - 1e-9) for r in ranges]
        last_end = math.floor(ranges[-1].end / interval_ms + 1e-9)
        if last_end == length:  # an end written as the duration itself
            last_end = length - 1
        ends = [s - 1 for s in starts[1:]] + [last_end]
    if last_end >= length:
        raise InvalidArgument(f"{field}: last range ends at sample {last_end}, the sample has "
                              f"{length} values", field=field)
    out = []
    for s, e, r in zip(starts, ends, ranges, strict=True):
        if e < s:
            raise InvalidArgument(f"{field}: range {r.label!r} {r.start}..{r.end} {unit} is "
                                  "shorter than one sample", field=field)
        out.append(StructuredLabel(s, e, r.label))
    return out


# -- metadata --------------------------------------------------------------------------------

def validate_metadata(obj: Any, field: str = "metadata") -> dict[str, str]:
    """String → string map (numbers and booleans are turned into strings, as JSON clients
    send them); at most 64 keys, keys 1–128 and values ≤ 1024 characters, no control
    characters in keys."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise InvalidArgument(f"{field} must be an object of string values", field=field)
    if len(obj) > MAX_METADATA_KEYS:
        raise InvalidArgument(f"{field} has {len(obj)} keys, the limit is "
                              f"{MAX_METADATA_KEYS}", field=field)
    out: dict[str, str] = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not k.strip():
            raise InvalidArgument(f"{field} keys must be non-empty strings", field=field)
        if len(k) > MAX_METADATA_KEY_LEN or _has_control(k):
            raise InvalidArgument(f"{field} key {k[:40]!r} is longer than "
                                  f"{MAX_METADATA_KEY_LEN} characters or has control "
                                  "characters", field=field)
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, int | float) and not (isinstance(v, float) and not math.isfinite(v)):
            v = str(v)
        if not isinstance(v, str):
            raise InvalidArgument(f"{field}[{k!r}] must be a string, got {type(v).__name__}",
                                  field=field)
        if len(v) > MAX_METADATA_VALUE_LEN:
            raise InvalidArgument(f"{field}[{k!r}] is {len(v)} characters, the limit is "
                                  f"{MAX_METADATA_VALUE_LEN}", field=field)
        out[k] = v
    return out


def parse_metadata_header(value: str) -> dict[str, str]:
    """The ``x-metadata`` header: a JSON object of string values."""
    return validate_metadata(_json(value, "x-metadata"), "x-metadata")
