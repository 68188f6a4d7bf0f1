"""CSV time series → canonical series.

Layout: one row per sample, one column per axis, comma separated (``;`` or tab are detected
when the first line has no comma). Cells are trimmed, so space-padded files (e.g. the STM32
HAR set: ``-276,   -85,  -309``) parse.

- **Header**: the first row is a header when any of its cells is not a number. Headerless
  files get axis names ``axis0..axisN`` and need ``frequency_hz`` from the caller.
- **Timestamp column** (header name, case-insensitive): ``timestamp``, ``timestamp_ms``,
  ``time_ms``, ``ms``, ``time (ms)`` are milliseconds; ``seconds``, ``sec``, ``time_s``,
  ``seconds_elapsed``, ``time (s)`` are seconds; bare ``time`` / ``t`` are seconds when the
  median step is below 1 and milliseconds otherwise. The interval is
  (last − first) / (T − 1); timestamps must be finite and strictly increasing. A timestamp
  column wins over ``frequency_hz``.
- **Label column**: a column named ``label`` holds a text label per row; runs of equal labels
  become structured labels (multi-label samples).
- Units are taken from a ``name (unit)`` header when present, else empty.
"""

from __future__ import annotations

import csv
import io
import math
import re

import numpy as np

from tinyforge.data.canonical import StructuredLabel, TimeSeries
from tinyforge.data.labels import validate_label
from tinyforge.errors import InvalidArgument

_MS_NAMES = {"timestamp", "timestamp_ms", "timestamp (ms)", "time_ms", "time (ms)", "ms",
             "millis", "milliseconds", "t_ms"}
_S_NAMES = {"seconds", "second", "sec", "secs", "s", "time_s", "time (s)", "timestamp_s",
            "seconds_elapsed", "elapsed", "elapsed_s", "t_s"}
_AMBIGUOUS = {"time", "t"}
_LABEL_NAMES = {"label"}
_UNIT_RE = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")
MAX_COLUMNS = 1024


def _bad(msg: str, field: str = "data") -> InvalidArgument:
    return InvalidArgument(f"invalid CSV: {msg}", field=field)


def _to_float(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _rows(text: str) -> list[list[str]]:
    first = text.split("\n", 1)[0]
    delim = "," if "," in first else (";" if ";" in first else ("\t" if "\t" in first else ","))
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
        rows = [[c.strip() for c in row] for row in reader]
    except csv.Error as e:
        raise _bad(str(e)) from e
    return [r for r in rows if any(r)]  # blank lines (e.g. a trailing newline) are skipped


def parse_csv(data: bytes, *, frequency_hz: float | None = None
              ) -> tuple[TimeSeries, tuple[StructuredLabel, ...]]:
    """Parse CSV bytes into a series and the structured labels of its ``label`` column."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _bad(f"not valid UTF-8 text: {e}") from e
    if "\0" in text:
        raise _bad("contains NUL bytes (binary data, not CSV)")
    rows = _rows(text)
    if not rows:
        raise _bad("no rows")
    width = len(rows[0])
    if width > MAX_COLUMNS:
        raise _bad(f"{width} columns, more than {MAX_COLUMNS}")
    has_header = any(_to_float(c) is None for c in rows[0])
    header = rows[0] if has_header else [f"axis{i}" for i in range(width)]
    body = rows[1:] if has_header else rows
    if not body:
        raise _bad("no data rows after the header")
    for i, row in enumerate(body):
        if len(row) != width:
            line = i + (2 if has_header else 1)
            raise _bad(f"row {line} has {len(row)} columns, expected {width}")

    names: list[str] = []
    units: list[str] = []
    for h in header:
        m = _UNIT_RE.match(h)
        names.append(m.group(1) if m else h)
        units.append(m.group(2) if m else "")
    lower = [h.strip().lower() for h in header]
    lower_names = [n.strip().lower() for n in names]
    ts_cols = [i for i, h in enumerate(lower)
               if h in _MS_NAMES | _S_NAMES | _AMBIGUOUS
               or lower_names[i] in _MS_NAMES | _S_NAMES | _AMBIGUOUS]
    if len(ts_cols) > 1:
        raise _bad(f"more than one timestamp column: {[header[i] for i in ts_cols]}",
                   field="columns")
    label_cols = [i for i, n in enumerate(lower_names) if n in _LABEL_NAMES]
    if len(label_cols) > 1:
        raise _bad("more than one label column", field="columns")
    skip = set(ts_cols) | set(label_cols)
    axis_cols = [i for i in range(width) if i not in skip]
    if not axis_cols:
        raise _bad("no value columns besides timestamp/label", field="columns")
    for i in axis_cols:
        if not names[i]:
            raise _bad(f"column {i + 1} has an empty header", field="columns")

    numeric_cols = axis_cols + ts_cols
    mat = np.empty((len(body), len(numeric_cols)), dtype=np.float64)
    for r, row in enumerate(body):
        for k, c in enumerate(numeric_cols):
            v = _to_float(row[c])
            line = r + (2 if has_header else 1)
            if v is None:
                raise _bad(f"row {line}, column {header[c]!r}: {row[c]!r} is not a number")
            if not math.isfinite(v):
                raise _bad(f"row {line}, column {header[c]!r}: {row[c]!r} is not finite")
            mat[r, k] = v
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked below
        values = mat[:, :len(axis_cols)].astype(np.float32)
    if not np.isfinite(values).all():
        raise _bad("a value overflows float32")

    if ts_cols:
        interval_ms = _interval_from_timestamps(mat[:, -1], lower_names[ts_cols[0]],
                                                lower[ts_cols[0]], frequency_hz)
    elif frequency_hz is not None:
        interval_ms = _interval_from_frequency(frequency_hz)
    else:
        raise InvalidArgument(
            "CSV has no timestamp column; give the sampling frequency (frequency_hz)",
            field="frequency_hz")

    series = TimeSeries(values=np.ascontiguousarray(values), interval_ms=interval_ms,
                        axes=tuple(names[i] for i in axis_cols),
                        units=tuple(units[i] for i in axis_cols))
    labels: tuple[StructuredLabel, ...] = ()
    if label_cols:
        labels = _runs([row[label_cols[0]] for row in body])
    return series, labels


def _interval_from_frequency(frequency_hz: float) -> float:
    if not (isinstance(frequency_hz, int | float) and math.isfinite(frequency_hz)
            and frequency_hz > 0):
        raise InvalidArgument(f"frequency_hz must be a finite number > 0, got {frequency_hz!r}",
                              field="frequency_hz")
    return 1000.0 / float(frequency_hz)


def _interval_from_timestamps(ts: np.ndarray, name: str, full: str,
                              frequency_hz: float | None) -> float:
    if len(ts) < 2:
        if frequency_hz is not None:
            return _interval_from_frequency(frequency_hz)
        raise InvalidArgument("one row cannot give an interval from timestamps; give "
                              "frequency_hz", field="frequency_hz")
    steps = np.diff(ts)
    if not (steps > 0).all():
        i = int(np.argmax(steps <= 0))
        raise _bad(f"timestamps must be strictly increasing (row {i + 2} → {i + 3})",
                   field="timestamp")
    if name in _MS_NAMES or full in _MS_NAMES:
        scale = 1.0
    elif name in _S_NAMES or full in _S_NAMES:
        scale = 1000.0
    else:
        scale = 1000.0 if float(np.median(steps)) < 1.0 else 1.0
    interval = float(ts[-1] - ts[0]) / (len(ts) - 1) * scale
    if not (math.isfinite(interval) and interval > 0):
        raise _bad(f"interval from timestamps is {interval} ms, must be > 0", field="timestamp")
    return interval


def _runs(labels: list[str]) -> tuple[StructuredLabel, ...]:
    out: list[StructuredLabel] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            out.append(StructuredLabel(start, i - 1, validate_label(labels[start])))
            start = i
    return tuple(out)
