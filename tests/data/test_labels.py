"""Labels, bounding boxes, structured labels, metadata, file names, categories, splits."""

from __future__ import annotations

import hashlib
import json

import pytest

from tinyforge.data.canonical import StructuredLabel
from tinyforge.data.labels import (
    BoundingBox,
    Category,
    LabelRange,
    check_boxes_in_image,
    parse_bounding_boxes_file,
    parse_bounding_boxes_header,
    parse_label_ranges,
    parse_metadata_header,
    parse_structured_labels_file,
    resolve_structured_labels,
    sanitize_filename,
    validate_category,
    validate_filename,
    validate_label,
    validate_metadata,
)
from tinyforge.data.splits import split_for_hash
from tinyforge.errors import InvalidArgument


def test_label_rules():
    assert validate_label("  wave ") == "wave"
    assert validate_label("x" * 256) == "x" * 256
    assert validate_label("café ☕") == "café ☕"
    for bad in ("x" * 257, "", "   ", "a\nb", "a\x00b", "a\u2028b", 5, None):
        with pytest.raises(InvalidArgument) as e:
            validate_label(bad)
        assert e.value.field == "label"


def test_categories():
    assert validate_category("split") is Category.SPLIT
    assert [c.value for c in Category] == ["training", "testing", "anomaly", "split"]
    with pytest.raises(InvalidArgument, match="unknown category 'validation'") as e:
        validate_category("validation")
    assert e.value.field == "category"


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b.wav", "a\\b.wav", "..", ".", "x..y",
                                  "", "  ", "a\x00.wav", "a\n.wav", "é" * 128])
def test_bad_file_names(name):
    with pytest.raises(InvalidArgument) as e:
        validate_filename(name)
    assert e.value.field == "filename"


def test_good_file_names_and_sanitising():
    assert validate_filename("idle.01.wav") == "idle.01.wav"
    assert validate_filename("e" * 255) == "e" * 255
    assert sanitize_filename("C:\\data\\walk.csv") == "walk.csv"
    assert sanitize_filename("/tmp/../x\x00y.json") == "x_y.json"
    assert sanitize_filename("..") == "sample"
    for name in ("../../a..b", "/", "a/" * 300 + "b" * 400, "x\ny"):
        validate_filename(sanitize_filename(name))  # always valid


def test_bounding_boxes_header_as_sent_by_the_sdk():
    header = json.dumps([{"label": "jan", "x": 119, "y": 64, "width": 206, "height": 291}])
    assert parse_bounding_boxes_header(header) == [BoundingBox("jan", 119, 64, 206, 291)]


@pytest.mark.parametrize("boxes, message", [
    ('{"label": "a"}', "must be a list"),
    ('[{"label": "a", "x": 1, "y": 1, "width": 2}]', "missing height"),
    ('[{"label": "a", "x": 1, "y": 1, "width": 0, "height": 2}]', "must be > 0"),
    ('[{"label": "a", "x": "1", "y": 1, "width": 2, "height": 2}]', r"x must be a number"),
    ('[{"label": "", "x": 1, "y": 1, "width": 2, "height": 2}]', "label is empty"),
    ("[{", "not valid JSON"),
])
def test_bad_bounding_boxes(boxes, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_bounding_boxes_header(boxes)


def test_boxes_inside_image():
    boxes = [BoundingBox("a", 0, 0, 10, 10), BoundingBox("b", 90.5, 0, 10, 5)]
    out = check_boxes_in_image(boxes, 100, 50)  # b pokes out by 0.5 px: clipped
    assert out[1] == BoundingBox("b", 90.5, 0, 9.5, 5)
    with pytest.raises(InvalidArgument, match="outside the 100x50 image"):
        check_boxes_in_image([BoundingBox("c", 95, 10, 10, 10)], 100, 50)
    with pytest.raises(InvalidArgument, match="outside"):
        check_boxes_in_image([BoundingBox("c", -5, 10, 10, 10)], 100, 50)


def test_bounding_boxes_labels_file():
    text = json.dumps({"version": 1, "type": "bounding-box-labels", "boundingBoxes": {
        "a.jpg": [{"label": "cube", "x": 1, "y": 2, "width": 3, "height": 4}], "b.jpg": []}})
    assert parse_bounding_boxes_file(text.encode()) == {
        "a.jpg": [BoundingBox("cube", 1, 2, 3, 4)], "b.jpg": []}
    with pytest.raises(InvalidArgument, match="type must be 'bounding-box-labels'"):
        parse_bounding_boxes_file(json.dumps({"version": 1, "type": "x", "boundingBoxes": {}}))


STRUCTURED = {"version": 1, "type": "structured-labels", "structuredLabels": {
    "sample.3.json": [{"startIndex": 0, "endIndex": 300, "label": "first_label"},
                      {"startIndex": 301, "endIndex": 621, "label": "second_label"}]}}


def test_structured_labels_file_and_ms_resolution():
    ranges = parse_structured_labels_file(json.dumps(STRUCTURED))["sample.3.json"]
    assert ranges == [LabelRange(0, 300, "first_label"), LabelRange(301, 621, "second_label")]
    # 16 ms interval, 39 samples (624 ms): ceil(301/16)=19 starts the second range
    out = resolve_structured_labels(ranges, length=39, interval_ms=16)
    assert out == [StructuredLabel(0, 18, "first_label"), StructuredLabel(19, 38,
                                                                          "second_label")]
    # at 1 kHz the ms numbers are the sample indices
    assert resolve_structured_labels(ranges, length=622, interval_ms=1) == [
        StructuredLabel(0, 300, "first_label"), StructuredLabel(301, 621, "second_label")]
    with pytest.raises(InvalidArgument, match="ends at sample 621"):
        resolve_structured_labels(ranges, length=600, interval_ms=1)


def test_structured_labels_as_indices():
    ranges = parse_label_ranges([{"startIndex": 0, "endIndex": 4, "label": "a"},
                                 {"startIndex": 5, "endIndex": 9, "label": "b"}])
    out = resolve_structured_labels(ranges, length=10, interval_ms=20, unit="index")
    assert out == [StructuredLabel(0, 4, "a"), StructuredLabel(5, 9, "b")]
    assert [s.ms_range(20) for s in out] == [(0, 100), (100, 200)]


@pytest.mark.parametrize("ranges, message", [
    ([{"startIndex": 0, "endIndex": 5, "label": "a"},
      {"startIndex": 5, "endIndex": 9, "label": "b"}], "overlaps"),
    ([{"startIndex": 0, "endIndex": 4, "label": "a"},
      {"startIndex": 7, "endIndex": 9, "label": "b"}], "leaves a gap"),
    ([{"startIndex": 5, "endIndex": 2, "label": "a"}], "startIndex <= endIndex"),
    ([{"startIndex": 0, "endIndex": 2}], "startIndex, endIndex, label"),
    ([], "non-empty"),
])
def test_bad_structured_labels(ranges, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_label_ranges(ranges)


def test_metadata():
    assert parse_metadata_header('{"site": "lab", "n": 3, "ok": true}') == {
        "site": "lab", "n": "3", "ok": "true"}
    assert validate_metadata(None) == {}
    for bad in ('["a"]', '{"a": {"b": 1}}', '{"a": null}', '{"": "x"}',
                json.dumps({"k": "v" * 1025}), json.dumps({"k" * 129: "v"}),
                json.dumps({f"k{i}": "v" for i in range(65)}), '{"a\\nb": "x"}'):
        with pytest.raises(InvalidArgument) as e:
            parse_metadata_header(bad)
        assert e.value.field == "x-metadata"


def test_split_by_hash_is_deterministic_and_near_80_20():
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(5000)]
    first = [split_for_hash(d) for d in digests]
    assert first == [split_for_hash(d) for d in digests]
    share = first.count("testing") / len(first)
    assert 0.18 < share < 0.22
    # adding samples never moves existing ones
    assert [split_for_hash(d) for d in digests[:100]] == first[:100]
    with pytest.raises(InvalidArgument):
        split_for_hash("nothex")
