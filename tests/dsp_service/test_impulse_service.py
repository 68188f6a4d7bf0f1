"""ImpulseService through the gRPC API: versions, diff, and precise errors for bad impulses."""

from __future__ import annotations

import copy
import json

import pytest

from tests.dsp_service.conftest import ts_impulse
from tinyforge.client import ApiError


def test_create_get_list_update_versions_and_diff(client, tenant) -> None:
    definition = ts_impulse()
    v1 = client.create_impulse("motion", definition)
    assert (v1.version, v1.latest_version, v1.name) == (1, 1, "motion")
    stored = json.loads(v1.definition_json)
    assert stored["processing"][0]["params"] == {"fft_length": 32}
    assert stored["input"]["frequency_hz"] == 50

    # an unchanged definition makes no version
    same = client.update_impulse(v1.impulse_id, definition)
    assert not same.created and same.impulse.version == 1

    changed = copy.deepcopy(definition)
    changed["processing"][0]["params"]["fft_length"] = 64
    changed["input"]["window_stride_ms"] = 250
    up = client.update_impulse(v1.impulse_id, changed, expected_version=1)
    assert up.created and up.impulse.version == 2 and up.impulse.latest_version == 2

    # old version still readable, latest is v2
    assert json.loads(client.get_impulse(v1.impulse_id, 1).definition_json) == stored
    latest = client.get_impulse(v1.impulse_id)
    assert latest.version == 2
    assert json.loads(latest.definition_json)["processing"][0]["params"]["fft_length"] == 64
    assert [v.version for v in client.list_impulse_versions(v1.impulse_id)] == [1, 2]
    listed = client.list_impulses()
    assert [(i.impulse_id, i.version) for i in listed] == [(v1.impulse_id, 2)]

    changes = {c.path: (json.loads(c.old_json), json.loads(c.new_json))
               for c in client.diff_impulse(v1.impulse_id, 1, 2)}
    assert changes == {"processing.spectral.params.fft_length": (32, 64),
                       "input.window_stride_ms": (500, 250)}
    assert client.diff_impulse(v1.impulse_id, 2, 0) == []

    # optimistic lock: an edit made against version 1 is refused now
    with pytest.raises(ApiError) as e:
        client.update_impulse(v1.impulse_id, definition, expected_version=1)
    assert e.value.code == "FAILED_PRECONDITION" and "version 2" in e.value.message

    # rename only
    renamed = client.update_impulse(v1.impulse_id, name="motion-2")
    assert renamed.impulse.name == "motion-2" and not renamed.created


def test_not_found_and_duplicates(client, tenant) -> None:
    imp = client.create_impulse("a", ts_impulse())
    with pytest.raises(ApiError) as e:
        client.create_impulse("a", ts_impulse())
    assert e.value.code == "ALREADY_EXISTS" and e.value.field == "name"
    with pytest.raises(ApiError) as e:
        client.get_impulse(imp.impulse_id, 7)
    assert e.value.code == "NOT_FOUND" and "1..1" in e.value.message
    with pytest.raises(ApiError) as e:
        client.get_impulse(10**9)
    assert e.value.code == "NOT_FOUND" and e.value.field == "impulse_id"
    # an impulse of another project of the same org is not reachable through this project
    other = tenant.new_project()
    with pytest.raises(ApiError) as e:
        client.get_impulse(imp.impulse_id, project_id=other)
    assert e.value.code == "NOT_FOUND"


def _bad(client, definition, field: str, *words: str) -> None:
    with pytest.raises(ApiError) as e:
        client.create_impulse("bad", definition)
    assert e.value.code == "INVALID_ARGUMENT", e.value
    assert e.value.field == field, e.value
    for w in words:
        assert w in e.value.message, e.value.message


def test_bad_impulses_get_precise_errors(client) -> None:
    # parameter out of range: names the parameter and its valid range
    d = ts_impulse(fft_length=3)
    _bad(client, d, "processing[0].params.fft_length", "fft_length", "4..8192")
    # wrong type
    d = ts_impulse()
    d["processing"][0]["params"]["fft_length"] = "lots"
    _bad(client, d, "processing[0].params.fft_length", "'lots'", "int")
    # unknown parameter
    d = ts_impulse()
    d["processing"][1]["params"] = {"bogus": 1}
    _bad(client, d, "processing[1].params.bogus", "bogus")
    # sampling rate too low for the filter cut-off (Nyquist of 26 Hz data is 13 Hz)
    d = ts_impulse(fs=26)
    d["processing"][0]["params"].update(filter_type="low", filter_cutoff=20)
    _bad(client, d, "processing[0].params.filter_cutoff", "20 Hz", "Nyquist", "13 Hz")
    # frame count over the block's limit: 10 s at 8 kHz with a 10 ms stride = 999 frames
    audio = {"input": {"type": "time-series", "window_size_ms": 10000, "window_stride_ms": 10000,
                       "frequency_hz": 8000, "axes": ["audio"]},
             "processing": [{"name": "mfcc", "block": "mfcc",
                             "params": {"frame_stride": 0.01, "frame_length": 0.02}}]}
    _bad(client, audio, "processing[0].params.frame_stride", "500")
    # an axis the input block does not have
    d = ts_impulse()
    d["processing"][0]["axes"] = ["ax", "gyro"]
    _bad(client, d, "processing[0].axes", "'gyro'")
    # image of the wrong channel count: grayscale input into an RGB image block
    img = {"input": {"type": "image", "width": 32, "height": 32, "color": "grayscale"},
           "processing": [{"name": "img", "block": "image", "params": {"channels": "RGB"}}]}
    _bad(client, img, "processing[0].params.channels", "3-channel", "1 channel")
    # unknown block, malformed JSON
    d = ts_impulse()
    d["processing"][1]["block"] = "fourier"
    _bad(client, d, "processing[1].block", "fourier")
    with pytest.raises(ApiError) as e:
        client.create_impulse("bad", "{not json")
    assert e.value.code == "INVALID_ARGUMENT" and e.value.field == "impulse"
    assert client.list_impulses() == []  # nothing was stored
