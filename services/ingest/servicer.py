"""IngestService: uploads (unary and streamed), dataset queries and edits, devices.

The servicer validates and authorizes (through the interceptor and, for the client-streaming
UploadStream, its header message) and delegates to :class:`tinyforge.data.samples.SampleStore`,
which the EI-compatible HTTP API uses too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from services.common.auth import audit_note, authorize_request
from services.ingest import convert
from tinyforge.context import PlatformContext
from tinyforge.data.samples import SampleStore
from tinyforge.data.stream_wire import parse_stream_part
from tinyforge.errors import Cancelled, InvalidArgument
from tinyforge.v1 import ingest_service_pb2 as pb
from tinyforge.v1 import ingest_service_pb2_grpc as pb_grpc

DOWNLOAD_CHUNK = 1 << 20


def sample_store(ctx: PlatformContext) -> SampleStore:
    """The SampleStore of a running platform (one per context)."""
    store = getattr(ctx, "_tinyforge_sample_store", None)
    if store is None:
        store = SampleStore(ctx.db, ctx.objects, max_upload_bytes=ctx.settings.max_upload_bytes)
        ctx._tinyforge_sample_store = store  # type: ignore[attr-defined]
    return store


class IngestServicer(pb_grpc.IngestServiceServicer):
    def __init__(self, ctx: PlatformContext) -> None:
        self.ctx = ctx

    @property
    def store(self) -> SampleStore:
        return sample_store(self.ctx)

    def UploadSample(self, request, context):  # noqa: ANN001, ANN201, N802
        opts = convert.options_from_pb(request.options)
        row = self.store.ingest_bytes(request.project_id, request.data, opts)
        audit_note(f"uploaded sample {row.id} ({row.size_bytes} bytes)")
        return pb.UploadSampleResponse(sample=convert.sample(row))

    def UploadStream(self, request_iterator, context):  # noqa: ANN001, ANN201, N802
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidArgument("the first UploadStream message must be the header",
                                  field="header")
        header = first.header
        authorize_request(self.ctx, header)
        opts = convert.options_from_pb(header.options)
        expected = header.size_bytes

        def chunks() -> Iterator[bytes]:
            total = 0
            for msg in request_iterator:
                if msg.WhichOneof("part") != "chunk":
                    raise InvalidArgument("only chunks may follow the header", field="header")
                chunk = msg.chunk  # one access: each one copies the bytes out of the message
                total += len(chunk)
                yield chunk
            if not context.is_active():
                raise Cancelled("the client went away during the upload")
            if expected and total != expected:
                raise InvalidArgument(f"received {total} bytes, the header announced "
                                      f"{expected}", field="size_bytes")

        row = self.store.ingest_stream(header.project_id, chunks(), opts, size_hint=expected)
        audit_note(f"uploaded sample {row.id} ({row.size_bytes} bytes, streamed)")
        return pb.UploadSampleResponse(sample=convert.sample(row))

    def ListSamples(self, request, context):  # noqa: ANN001, ANN201, N802
        rows, token, total = self.store.list(
            request.project_id,
            category=(convert.category_from_pb(request.category, allow_split=False)
                      if request.category else ""),
            label=request.label if request.HasField("label") else None,
            metadata=dict(request.metadata),
            device=request.device,
            search=request.search,
            enabled=request.enabled if request.HasField("enabled") else None,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListSamplesResponse(samples=[convert.sample(r) for r in rows],
                                      next_page_token=token, total_count=total)

    def GetSample(self, request, context):  # noqa: ANN001, ANN201, N802
        return pb.GetSampleResponse(
            sample=convert.sample(self.store.get(request.project_id, request.sample_id)))

    def DownloadSample(self, request, context):  # noqa: ANN001, ANN201, N802
        row, chunks = self.store.download(request.project_id, request.sample_id,
                                          canonical=request.canonical,
                                          chunk_size=DOWNLOAD_CHUNK)
        yield pb.DownloadSampleResponse(sample=convert.sample(row))
        for chunk in chunks:
            yield pb.DownloadSampleResponse(chunk=chunk)

    def UpdateSample(self, request, context):  # noqa: ANN001, ANN201, N802
        label: str | None = None
        clear = False
        if request.HasField("label"):
            clear = request.label == ""
            label = request.label or None
        kw: dict[str, Any] = {}
        if request.set_metadata:
            kw["metadata"] = dict(request.metadata)
        if request.set_bounding_boxes:
            kw["bounding_boxes"] = convert.boxes_from_pb(request.bounding_boxes)
        if request.set_structured_labels:
            kw["structured_labels"] = (convert.ranges_from_pb(request.structured_labels)
                                       if request.structured_labels else [])
            kw["structured_unit"] = convert.unit_from_pb(request.structured_labels_unit)
        row = self.store.update(
            request.project_id, request.sample_id, label=label, clear_label=clear,
            enabled=request.enabled if request.HasField("enabled") else None,
            filename=request.filename if request.HasField("filename") else None, **kw)
        audit_note(f"updated sample {row.id}")
        return pb.UpdateSampleResponse(sample=convert.sample(row))

    def MoveSamples(self, request, context):  # noqa: ANN001, ANN201, N802
        category = convert.category_from_pb(request.category, allow_split=False)
        n = self.store.move(request.project_id, list(request.sample_ids), category)
        audit_note(f"moved {n} samples to {category}")
        return pb.MoveSamplesResponse(moved=n)

    def DeleteSamples(self, request, context):  # noqa: ANN001, ANN201, N802
        n = self.store.delete(request.project_id, list(request.sample_ids))
        audit_note(f"deleted {n} samples")
        return pb.DeleteSamplesResponse(deleted=n)

    def RebalanceSplit(self, request, context):  # noqa: ANN001, ANN201, N802
        fraction = request.test_fraction or 0.2
        if not 0.0 < fraction < 1.0:
            raise InvalidArgument(f"test_fraction must be in (0, 1), got {fraction}",
                                  field="test_fraction")
        moved, train, test = self.store.rebalance(request.project_id, fraction)
        audit_note(f"rebalanced: {moved} moved")
        return pb.RebalanceSplitResponse(moved=moved, training=train, testing=test)

    def DatasetSummary(self, request, context):  # noqa: ANN001, ANN201, N802
        s = self.store.summary(request.project_id)
        cat = convert.CATEGORY_TO_PB
        return pb.DatasetSummaryResponse(
            total_count=s["total_count"],
            total_duration_ms=s["total_duration_ms"],
            categories=[pb.LabelCount(category=cat[c["category"]], count=c["count"],
                                      duration_ms=c["duration_ms"]) for c in s["categories"]],
            labels=[pb.LabelCount(category=cat[e["category"]], label=e["label"],
                                  count=e["count"], duration_ms=e["duration_ms"])
                    for e in s["labels"]],
        )

    def ListDevices(self, request, context):  # noqa: ANN001, ANN201, N802
        return pb.ListDevicesResponse(
            devices=[convert.device(d) for d in self.store.devices(request.project_id)])


class _Capture:
    """Stands in for the server to catch the generated method handlers (to give
    UploadStream the zero-copy deserializer of :mod:`tinyforge.data.stream_wire`)."""

    handlers: dict[str, Any]

    def add_generic_rpc_handlers(self, _handlers: Any) -> None:
        pass

    def add_registered_method_handlers(self, _name: str, handlers: dict[str, Any]) -> None:
        self.handlers = handlers


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    name = pb.DESCRIPTOR.services_by_name["IngestService"].full_name
    cap = _Capture()
    pb_grpc.add_IngestServiceServicer_to_server(IngestServicer(ctx), cap)
    if not hasattr(cap, "handlers"):  # stubs from an older grpcio-tools: plain registration
        pb_grpc.add_IngestServiceServicer_to_server(IngestServicer(ctx), server)
        return [name]
    handlers = dict(cap.handlers)
    stream = handlers["UploadStream"]
    # Chunks reach the servicer as views of the received bytes, not protobuf copies.
    handlers["UploadStream"] = grpc.stream_unary_rpc_method_handler(
        stream.stream_unary, request_deserializer=parse_stream_part,
        response_serializer=stream.response_serializer)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
    server.add_registered_method_handlers(name, handlers)
    return [name]
