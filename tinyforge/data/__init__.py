"""tinyforge.data: uploads → one canonical form, labels, importers (see DESIGN.md §1–3).

Entry point (``tinyforge.data.formats``)::

    parse_upload(data: bytes, filename: str | None = None, content_type: str | None = None, *,
                 hmac_key: str | None = None, allow_unsigned: bool = False,
                 frequency_hz: float | None = None,
                 max_bytes: int | None = DEFAULT_MAX_BYTES,      # 100 MB
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> ParsedSample

Recognises EI acquisition JSON / CBOR (HS256 verified with ``hmac_key``; ``alg: none`` only
with ``allow_unsigned``), CSV (header, timestamp and ``label`` columns; headerless with
``frequency_hz``), WAV (PCM 8/16/24/32, float 32/64, any channel count) and JPEG / PNG
(``detect_format`` gives the order). Raises only ``InvalidArgument`` (field named) or
``ResourceExhausted`` (``max_bytes`` / ``max_pixels``).

``ParsedSample`` (``tinyforge.data.canonical``): ``kind`` (time_series | audio | image),
``format`` (ei-json | ei-cbor | csv | wav | jpeg | png), ``content_type`` (to store the
original bytes under), ``series: TimeSeries | None`` (``values`` float32 [T, axes],
``interval_ms``, ``axes``, ``units``, ``frequency_hz``, ``duration_ms``), ``image: ImageInfo |
None`` (width, height, mode, format), ``device_name``, ``device_type``, ``signed``,
``structured_labels`` (from a CSV label column), ``duration_ms``, ``canonical_bytes()``.

Storage: keep the upload byte for byte (``content_sha256(data)`` for de-duplication) and,
for series, ``canonical_bytes()`` (an ``.npz`` with ``values`` + JSON ``meta``; read back
with ``TimeSeries.from_bytes``). Images stay as their file; ``images.image_pixels`` decodes.

Labels (``tinyforge.data.labels``): ``validate_label``, ``validate_category`` / ``Category``,
``validate_filename`` / ``sanitize_filename``, ``validate_metadata`` / ``parse_metadata_header``
(x-metadata), ``parse_bounding_boxes_header`` (x-bounding-boxes), ``parse_bounding_boxes`` +
``check_boxes_in_image``, ``parse_bounding_boxes_file`` (bounding_boxes.labels),
``parse_structured_labels_file`` (structured_labels.labels) / ``parse_label_ranges`` +
``resolve_structured_labels`` (ms or sample indices → ``StructuredLabel``).
Splits (``tinyforge.data.splits``): ``split_for_hash(sha256)`` → training | testing (~80/20).
Envelopes for clients and tests: ``acquisition.make_envelope`` (signs like EI's tools).
Importers (``tinyforge.data.importers``): ``import_label_folders``, ``import_yolo``,
``import_coco``, ``import_har_stm32``, ``import_fsdd`` → ``ImportItem``; ``load_item`` parses one.
``windowing`` (windows over series for the DSP stage) is maintained with the DSP blocks.
"""
