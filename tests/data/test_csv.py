"""CSV time series: headers, timestamp columns, label columns, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tinyforge.data.canonical import SourceFormat, StructuredLabel
from tinyforge.data.formats import parse_upload
from tinyforge.errors import InvalidArgument


def parse(text: str, **kw):
    return parse_upload(text.encode(), "s.csv", "text/csv", **kw)


def test_timestamp_ms_header():
    p = parse("timestamp,accX,accY,accZ\n0,1,2,3\n10,4,5,6\n20,7,8,9\n")
    assert p.format is SourceFormat.CSV
    assert p.series.interval_ms == 10 and p.series.axes == ("accX", "accY", "accZ")
    np.testing.assert_array_equal(p.series.values, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])


def test_seconds_column_and_units_in_header():
    p = parse("seconds_elapsed,temp (Cel)\n0.00,20.5\n0.25,20.6\n0.50,20.7\n")
    assert p.series.interval_ms == 250 and p.series.axes == ("temp",)
    assert p.series.units == ("Cel",)


@pytest.mark.parametrize("rows, interval", [
    ("0,1\n0.02,2\n0.04,3", 20.0),    # bare "time", sub-1 steps: seconds
    ("0,1\n20,2\n40,3", 20.0),        # bare "time", steps ≥ 1: milliseconds
])
def test_ambiguous_time_column(rows, interval):
    assert parse("time,x\n" + rows).series.interval_ms == pytest.approx(interval)


def test_absolute_epoch_timestamps():
    p = parse("timestamp,x\n1700000000000,1\n1700000000016,2\n1700000000032,3\n")
    assert p.series.interval_ms == 16


def test_headerless_needs_frequency():
    text = " -276,   -85,  -309\n -100,   10,  20\n"
    with pytest.raises(InvalidArgument) as e:
        parse(text)
    assert e.value.field == "frequency_hz"
    p = parse(text, frequency_hz=26)
    assert p.series.values.shape == (2, 3) and p.series.values[0, 0] == -276
    assert p.series.interval_ms == pytest.approx(1000 / 26)


def test_semicolon_delimiter_and_crlf_and_bom():
    p = parse_upload("\ufefftimestamp;a;b\r\n0;1;2\r\n5;3;4\r\n".encode(), "s.csv", None)
    assert p.series.axes == ("a", "b") and p.series.interval_ms == 5


def test_label_column_becomes_structured_labels():
    text = "timestamp,x,label\n0,1,idle\n10,2,idle\n20,3,wave\n30,4,wave\n40,5,idle\n"
    p = parse(text)
    assert p.series.axes == ("x",)
    assert p.structured_labels == (StructuredLabel(0, 1, "idle"), StructuredLabel(2, 3, "wave"),
                                   StructuredLabel(4, 4, "idle"))


@pytest.mark.parametrize("text, message", [
    ("timestamp,x,y\n0,1,2\n10,3\n", "row 3 has 2 columns, expected 3"),
    ("timestamp,x,y\n0,1,2\n10,3,4,5\n", "row 3 has 4 columns"),
    ("timestamp,x\n0,1\n10,abc\n", "row 3, column 'x': 'abc' is not a number"),
    ("timestamp,x\n0,1\n10,\n", "row 3, column 'x': '' is not a number"),
    ("timestamp,x\n0,1\n10,nan\n", "not finite"),
    ("timestamp,x\n0,1\n10,inf\n", "not finite"),
    ("timestamp,x\n0,1\n10,1e39\n", "overflows float32"),
    ("timestamp,x\n0,1\n0,2\n", "strictly increasing"),
    ("timestamp,x\n10,1\n5,2\n", "strictly increasing"),
    ("timestamp,time,x\n0,0,1\n", "more than one timestamp column"),
    ("timestamp\n0\n10\n", "no value columns"),
    ("a,b\n", "no data rows"),
    ("", "empty"),
])
def test_bad_csv(text, message):
    with pytest.raises(InvalidArgument, match=message):
        parse(text, frequency_hz=10)


def test_binary_garbage_as_csv():
    with pytest.raises(InvalidArgument):
        parse_upload(b"\x00\x01\x02,\xff\xfe", "s.csv", None, frequency_hz=10)
    with pytest.raises(InvalidArgument, match="UTF-8"):
        parse_upload(b"a,b\n\xff,1\n", "s.csv", None, frequency_hz=10)


@pytest.mark.parametrize("freq", [0, -1, float("nan"), float("inf")])
def test_bad_frequency(freq):
    with pytest.raises(InvalidArgument) as e:
        parse("1,2\n3,4\n", frequency_hz=freq)
    assert e.value.field == "frequency_hz"
