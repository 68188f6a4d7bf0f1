"""Windowing of time series (+ labels) and image preparation."""

import numpy as np
import pytest
from PIL import Image

from tinyforge.data.windowing import prepare_image, sample_frequency, window_label, window_sample
from tinyforge.errors import InvalidArgument
from tinyforge.impulse import ImageInput, TimeSeriesInput


def ramp(n, axes=2):
    return np.stack([np.arange(n) + 1000 * a for a in range(axes)], 1).astype(np.float32)


def test_windows_start_every_stride_and_fit():
    inp = TimeSeriesInput(window_size_ms=1000, window_stride_ms=250, frequency_hz=100,
                          axes=["x", "y"])  # fmt: skip
    w = window_sample(ramp(350), 10.0, inp, label="walk")
    # starts 0, 25, ..., 250 (the last window ends at 350)
    assert len(w) == 11 and w.data.shape == (11, 100, 2) and w.data.dtype == np.float32
    np.testing.assert_allclose(w.start_ms, np.arange(11) * 250)
    np.testing.assert_array_equal(w.data[3, :, 1], np.arange(75, 175) + 1000)
    assert w.labels == ["walk"] * 11


def test_short_sample_is_padded_or_dropped():
    inp = TimeSeriesInput(1000, 500, 100, ["x", "y"], zero_pad=True)
    w = window_sample(ramp(40), 10.0, inp, label="a")
    assert w.data.shape == (1, 100, 2)
    np.testing.assert_array_equal(w.data[0, :40], ramp(40))
    assert np.all(w.data[0, 40:] == 0)
    inp.zero_pad = False
    assert len(window_sample(ramp(40), 10.0, inp, label="a")) == 0


def test_axes_are_selected_by_name():
    inp = TimeSeriesInput(100, 100, 100, ["z", "x"])
    x = ramp(10, 3)
    w = window_sample(x, 10.0, inp, sample_axes=["x", "y", "z"])
    np.testing.assert_array_equal(w.data[0], x[:, [2, 0]])
    with pytest.raises(InvalidArgument, match="'z' is not in the sample") as e:
        window_sample(x[:, :2], 10.0, inp, sample_axes=["x", "y"])
    assert e.value.field == "axes"


def test_resampling_to_the_impulse_frequency():
    inp = TimeSeriesInput(1000, 1000, 50, ["x"])
    t = np.arange(200) / 100
    x = np.sin(2 * np.pi * 2 * t).astype(np.float32)[:, None]  # 100 Hz sample
    w = window_sample(x, 10.0, inp)
    assert w.data.shape == (2, 50, 1)
    expect = np.sin(2 * np.pi * 2 * np.arange(50) / 50)
    np.testing.assert_allclose(w.data[0, 5:45, 0], expect[5:45], atol=0.05)


def test_structured_labels_majority_overlap():
    inp = TimeSeriesInput(1000, 500, 100, ["x"])
    labels = [(0, 1200, "idle"), (1200, 2100, "wave"), (2100, 2300, "idle")]
    w = window_sample(np.zeros((300, 1)), 10.0, inp, label="fallback", structured_labels=labels)
    # windows [0,1000) [500,1500) [1000,2000) [1500,2500) [2000,3000)
    assert w.labels == ["idle", "idle", "wave", "wave", "idle"]
    # no interval touches [5000, 6000): the sample label is used
    assert window_label(5000, 6000, "fallback", [
        __import__("tinyforge.data.windowing", fromlist=["x"]).StructuredLabel(0, 10, "a")
    ]) == "fallback"
    with pytest.raises(InvalidArgument):
        window_sample(np.zeros((300, 1)), 10.0, inp, structured_labels=[(5, 1, "bad")])


def test_bad_samples_are_rejected():
    inp = TimeSeriesInput(1000, 500, 100, ["x"])
    with pytest.raises(InvalidArgument):
        window_sample(np.zeros((0, 1)), 10.0, inp)
    with pytest.raises(InvalidArgument):
        window_sample(np.full((10, 1), np.inf), 10.0, inp)
    with pytest.raises(InvalidArgument):
        window_sample(np.zeros((10, 2)), 10.0, inp)
    assert sample_frequency(0.0625) == 16000 and sample_frequency(1000 / 26) == 26


def test_image_resize_modes():
    # 40 wide x 20 high; left half red, right half blue
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20, 0] = 255
    arr[:, 20:, 2] = 255
    sq = prepare_image(arr, ImageInput(10, 10, "squash"))
    assert sq.shape == (10, 10, 3) and sq[5, 1, 0] > 200 and sq[5, 8, 2] > 200
    short = prepare_image(arr, ImageInput(10, 10, "fit-short"))  # 20x10 scaled, centre crop
    assert short[5, 0, 0] > 200 and short[5, 9, 2] > 200
    long_ = prepare_image(arr, ImageInput(10, 10, "fit-long"))  # 10x5 scaled, black bars
    assert np.all(long_[0] == 0) and np.all(long_[-1] == 0) and long_[5, 1, 0] > 200
    crop = prepare_image(Image.fromarray(arr), ImageInput(10, 10, "crop"))  # centre, no scale
    np.testing.assert_array_equal(crop, arr[5:15, 15:25].astype(np.float32))
    gray = prepare_image(arr, ImageInput(8, 6, "squash", "grayscale"))
    assert gray.shape == (6, 8, 1) and gray.dtype == np.float32
    with pytest.raises(InvalidArgument):
        prepare_image(np.zeros((4, 4, 2)), ImageInput(8, 8))
