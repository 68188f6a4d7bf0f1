"""Sample rows and options ↔ IngestService messages."""

from __future__ import annotations

from typing import Any

from services.common.convert import ts
from tinyforge.data.labels import LabelRange
from tinyforge.data.samples import UploadOptions
from tinyforge.errors import InvalidArgument
from tinyforge.store import models
from tinyforge.v1 import ingest_service_pb2 as pb

CATEGORY_TO_PB = {
    "training": pb.SAMPLE_CATEGORY_TRAINING,
    "testing": pb.SAMPLE_CATEGORY_TESTING,
    "anomaly": pb.SAMPLE_CATEGORY_ANOMALY,
    "split": pb.SAMPLE_CATEGORY_SPLIT,
}
CATEGORY_FROM_PB = {v: k for k, v in CATEGORY_TO_PB.items()}


def category_from_pb(value: int, *, default: str | None = None, allow_split: bool = True) -> str:
    """API SampleCategory → 'training' | 'testing' | 'anomaly' | 'split'."""
    if value == pb.SAMPLE_CATEGORY_UNSPECIFIED and default is not None:
        return default
    name = CATEGORY_FROM_PB.get(value)
    if name is None or (name == "split" and not allow_split):
        allowed = "TRAINING, TESTING, ANOMALY" + (" or SPLIT" if allow_split else "")
        raise InvalidArgument(f"category {value} is not valid; use {allowed}", field="category")
    return name


def unit_from_pb(value: int) -> str:
    if value == pb.RANGE_UNIT_MILLISECONDS:
        return "ms"
    if value in (pb.RANGE_UNIT_UNSPECIFIED, pb.RANGE_UNIT_SAMPLE_INDEX):
        return "index"
    raise InvalidArgument(f"structured_labels_unit {value} is not valid",
                          field="structured_labels_unit")


def boxes_from_pb(boxes: Any) -> list[dict[str, Any]]:
    return [{"label": b.label, "x": b.x, "y": b.y, "width": b.width, "height": b.height}
            for b in boxes]


def ranges_from_pb(ranges: Any) -> list[LabelRange]:
    from tinyforge.data.labels import parse_label_ranges

    return parse_label_ranges(
        [{"startIndex": r.start, "endIndex": r.end, "label": r.label} for r in ranges],
        "structured_labels")


def options_from_pb(o: pb.UploadOptions) -> UploadOptions:
    """UploadOptions message → domain options (checked later by the domain)."""
    return UploadOptions(
        category=category_from_pb(o.category, default="training"),
        label=o.label if o.label else None,
        filename=o.filename or "sample",
        content_type=o.content_type or None,
        metadata=dict(o.metadata),
        bounding_boxes=boxes_from_pb(o.bounding_boxes),
        structured_labels=ranges_from_pb(o.structured_labels) if o.structured_labels else [],
        structured_unit=unit_from_pb(o.structured_labels_unit),  # type: ignore[arg-type]
        disallow_duplicates=o.disallow_duplicates,
        add_date_id=o.add_date_id,
        device_name=o.device_name,
        device_type=o.device_type,
        upload_source=o.upload_source or "grpc",
        frequency_hz=o.frequency_hz or None,
    )


def sample(r: models.Sample) -> pb.Sample:
    """A stored sample → API message."""
    return pb.Sample(
        id=r.id,
        project_id=r.project_id,
        category=CATEGORY_TO_PB.get(r.category, pb.SAMPLE_CATEGORY_UNSPECIFIED),
        label=r.label or "",
        filename=r.filename,
        kind=r.kind,
        format=r.format,
        content_type=r.content_type,
        sha256=r.sha256,
        size_bytes=r.size_bytes,
        interval_ms=r.interval_ms,
        length=r.length,
        duration_ms=r.duration_ms,
        axes=[pb.SensorAxis(name=a["name"], units=a["units"]) for a in r.axes or []],
        width=r.width,
        height=r.height,
        device_name=r.device_name,
        device_type=r.device_type,
        signed=r.signed,
        enabled=r.enabled,
        metadata=r.sample_metadata or {},
        bounding_boxes=[pb.BoundingBox(**b) for b in r.bounding_boxes or []],
        structured_labels=[pb.LabelRange(start=s["startIndex"], end=s["endIndex"],
                                         label=s["label"]) for s in r.structured_labels or []],
        upload_source=r.upload_source,
        has_canonical=bool(r.canonical_key),
        create_time=ts(r.created_at),
        update_time=ts(r.updated_at),
    )


def device(d: models.Device) -> pb.Device:
    return pb.Device(id=d.id, name=d.name, device_type=d.device_type,
                     first_seen=ts(d.first_seen), last_seen=ts(d.last_seen),
                     sample_count=d.sample_count)
