"""The canonical ``.npz`` written without numpy's zip machinery is a standard archive that
``numpy.load`` and ``zipfile`` read, with the same arrays ``np.savez`` would store."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from tinyforge.data.canonical import TimeSeries


@pytest.mark.parametrize("shape", [(1, 1), (20, 3), (7, 2), (1000, 6), (3, 40)])
def test_npz_matches_numpy(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    values = rng.standard_normal(shape).astype(np.float32)
    axes = tuple(f"ax{i}" for i in range(shape[1]))
    units = tuple("µ" * (i % 3) or "m/s2" for i in range(shape[1]))  # non-ASCII too
    ts = TimeSeries(values=values, interval_ms=12.5, axes=axes, units=units)
    blob = ts.to_bytes()
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        assert z.testzip() is None  # CRCs check out
        assert sorted(z.namelist()) == ["meta.npy", "values.npy"]
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        got_values, got_meta = npz["values"], str(npz["meta"])
    ref = io.BytesIO()  # what numpy itself writes for the same content
    np.savez(ref, values=values, meta=np.array(got_meta))
    with np.load(io.BytesIO(ref.getvalue()), allow_pickle=False) as npz:
        assert got_values.dtype == npz["values"].dtype and got_values.shape == shape
        assert np.array_equal(got_values, npz["values"])
        assert npz["meta"].dtype == np.load(io.BytesIO(blob))["meta"].dtype
    meta = json.loads(got_meta)
    assert meta["axes"] == list(axes) and meta["units"] == list(units)
    assert meta["interval_ms"] == 12.5
    back = TimeSeries.from_bytes(blob)
    assert np.array_equal(back.values, values) and back.axes == axes and back.units == units


def test_npz_of_a_non_contiguous_array() -> None:
    base = np.arange(60, dtype=np.float32).reshape(10, 6)
    ts = TimeSeries(values=base[:, ::2], interval_ms=1.0, axes=("a", "b", "c"),
                    units=("u", "u", "u"))
    assert np.array_equal(TimeSeries.from_bytes(ts.to_bytes()).values, base[:, ::2])
