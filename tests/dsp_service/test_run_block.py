"""ListBlocks and RunBlock through the gRPC API: features, plot data with known answers, and
precise errors for every kind of bad input."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import scipy.signal
from PIL import Image

from tinyforge.client import ApiError
from tinyforge.dsp.mfcc import mfcc


def test_list_blocks(client) -> None:
    blocks = {b.name: b for b in client.list_dsp_blocks()}
    assert {"raw", "flatten", "spectral_analysis", "spectrogram", "mfe", "mfcc",
            "image"} <= set(blocks)
    sch = json.loads(blocks["mfcc"].schema_json)
    assert sch["type"] == "dsp" and blocks["mfcc"].output_type == "spectrogram"
    nc = next(p for p in sch["parameters"] if p["param"] == "num_cepstral")
    assert nc["type"] == "int" and nc["value"] == 13 and nc["min"] == 1
    assert blocks["image"].input == "image" and blocks["mfcc"].single_axis


def plot(resp, name: str):
    return next(p for p in resp.plots if p.name == name)


def test_spectral_fft_bins_and_filter_response(client) -> None:
    fs, f0 = 100.0, 12.5
    t = np.arange(200) / fs
    window = np.stack([np.sin(2 * np.pi * f0 * t), 0.1 * np.cos(2 * np.pi * 3 * t)], axis=1)
    resp = client.run_block("spectral_analysis", window, frequency_hz=fs,
                            axis_names=["x", "y"],
                            params={"fft_length": 64, "filter_type": "low",
                                    "filter_cutoff": 30, "filter_order": 4})
    assert resp.output_type == "flat" and len(resp.features) == resp.shape[0]
    fft = plot(resp, "fft")
    x = np.array(fft.x)
    np.testing.assert_allclose(x, np.fft.rfftfreq(64, 1 / fs))
    spec_x = np.array(next(s.y for s in fft.series if s.name == "x"))
    assert abs(x[int(np.argmax(spec_x))] - f0) <= fs / 64  # the sine's bin
    spec_y = np.array(next(s.y for s in fft.series if s.name == "y"))
    assert abs(x[int(np.argmax(spec_y))] - 3.0) <= fs / 64
    resp_plot = plot(resp, "filter_response")
    freqs = np.array(resp_plot.x)
    gain = np.array(resp_plot.series[0].y)
    # -3 dB at the cut-off, flat in the pass band, falling above (checked against scipy)
    assert abs(np.interp(30.0, freqs, gain) + 3.0) < 0.3
    assert abs(gain[1]) < 0.1 and gain[-10] < -20
    ref = scipy.signal.butter(4, 30, btype="low", fs=fs, output="sos")
    _, h = scipy.signal.sosfreqz(ref, worN=freqs, fs=fs)
    np.testing.assert_allclose(gain[:-1], 20 * np.log10(np.abs(h[:-1])), atol=0.05)
    assert json.loads(resp.params_json)["filter_order"] == 4
    sig = plot(resp, "signal")
    np.testing.assert_allclose(sig.series[0].y, window[:, 0], atol=1e-6)


def test_mfcc_window_and_spectrogram_png(client) -> None:
    rng = np.random.default_rng(0)
    audio = (rng.normal(0, 1000, 8000)).astype(np.float32)[:, None]
    resp = client.run_block("mfcc", audio, frequency_hz=8000)
    # default frames: 20 ms every 20 ms = 160 samples -> 8000 // 160 = 50 frames
    assert resp.output_type == "spectrogram" and list(resp.shape) == [50, 13]
    np.testing.assert_allclose(np.array(resp.features).reshape(50, 13),
                               mfcc(audio, 8000), rtol=1e-5, atol=1e-5)
    img = plot(resp, "features")
    assert Image.open(io.BytesIO(img.png)).format == "PNG"
    assert list(img.matrix_shape) == [50, 13]


def test_run_block_on_a_stored_sample(client) -> None:
    from tests.dsp_service.conftest import make_synthetic, ts_impulse

    ds = make_synthetic(client, client.default_project_id, per_class=1, n=100)
    imp = client.create_impulse("run", ts_impulse())
    sid = next(iter(ds.samples))
    resp = client.run_block("stats", impulse_id=imp.impulse_id, sample_id=sid, window_index=2)
    values = ds.samples[sid][1][50:100].astype(np.float32)
    from tinyforge.dsp.flatten import flatten

    np.testing.assert_allclose(resp.features, flatten(values, 50.0), rtol=1e-4, atol=1e-4)
    with pytest.raises(ApiError) as e:
        client.run_block("stats", impulse_id=imp.impulse_id, sample_id=sid, window_index=3)
    assert e.value.code == "INVALID_ARGUMENT" and "0..2" in e.value.message
    with pytest.raises(ApiError) as e:
        client.run_block("nope", impulse_id=imp.impulse_id, sample_id=sid)
    assert e.value.code == "NOT_FOUND" and e.value.field == "block"


def _err(client, *args, **kw) -> ApiError:
    with pytest.raises(ApiError) as e:
        client.run_block(*args, **kw)
    assert e.value.code == "INVALID_ARGUMENT", e.value
    return e.value


def test_bad_input_gets_precise_errors(client) -> None:
    motion = np.zeros((52, 3), np.float32)
    # out of range and wrong type: names the parameter and the valid range
    e = _err(client, "spectral_analysis", motion, frequency_hz=26, params={"fft_length": 100})
    assert e.field == "params.fft_length" and "power of two" in e.message and "4..8192" in e.message
    e = _err(client, "spectral_analysis", motion, frequency_hz=26, params={"do_log": "maybe"})
    assert e.field == "params.do_log" and "true or false" in e.message
    # sampling rate too low for the cut-off
    e = _err(client, "spectral_analysis", motion, frequency_hz=26,
             params={"filter_type": "high", "filter_cutoff": 15})
    assert e.field == "params.filter_cutoff" and "13 Hz" in e.message
    # axis not in the sample
    e = _err(client, "flatten", motion, frequency_hz=26, axis_names=["x", "y", "z"],
             axes=["x", "w"])
    assert e.field == "axes" and "'w'" in e.message and "x, y, z" in e.message
    # frame count over the block's limit
    audio = np.zeros((16000 * 6, 1), np.float32)
    e = _err(client, "mfe", audio, frequency_hz=16000, params={"frame_stride": 0.01})
    assert e.field == "params.frame_stride" and "500" in e.message
    # a window too short for one frame
    e = _err(client, "mfcc", np.zeros((100, 1)), frequency_hz=8000)
    assert e.field == "params.frame_length" and "longer than the window" in e.message
    # audio blocks take one axis
    e = _err(client, "mfcc", np.zeros((8000, 2)), frequency_hz=8000)
    assert "single axis" in e.message
    # image of the wrong channel count
    e = _err(client, "image", np.zeros((8, 8, 1)), params={"channels": "RGB"})
    assert e.field == "params.channels" and "3-channel" in e.message
    e = _err(client, "image", np.zeros((8, 8)))
    assert e.field == "window.shape"
    # shape/value mismatch, bad JSON params, unknown block
    from tinyforge.v1 import dsp_service_pb2 as dpb

    req = dpb.RunBlockRequest(project_id=client.default_project_id, block="raw",
                              window=dpb.RawWindow(values=[1, 2, 3], shape=[2, 2],
                                                   frequency_hz=10))
    with pytest.raises(ApiError) as ex:
        client.call(client.dsp.RunBlock, req)
    assert ex.value.field == "window.values" and "needs 4" in ex.value.message
    req = dpb.RunBlockRequest(project_id=client.default_project_id, block="raw",
                              params_json="[1]",
                              window=dpb.RawWindow(values=[1, 2], shape=[2, 1], frequency_hz=10))
    with pytest.raises(ApiError) as ex:
        client.call(client.dsp.RunBlock, req)
    assert ex.value.field == "params_json"
    with pytest.raises(ApiError) as ex:
        client.run_block("fourier", motion, frequency_hz=26)
    assert ex.value.code == "NOT_FOUND" and "mfcc" in ex.value.message
    e = _err(client, "raw", np.array([[np.nan]]), frequency_hz=26)
    assert "NaN" in e.message
