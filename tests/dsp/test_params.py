"""Parameter schemas and validation errors."""

import json

import numpy as np
import pytest

from tinyforge.dsp import registry
from tinyforge.errors import InvalidArgument, NotFound

AUDIO = np.zeros((8000, 1), np.float32)
ACC = np.zeros((260, 3), np.float32)


def test_registry_lists_every_block_with_a_schema():
    names = registry.block_names()
    for expected in ("raw", "flatten", "spectral_analysis", "spectrogram", "mfe", "mfcc", "image"):
        assert expected in names
    schemas = json.loads(registry.schemas_json())
    assert [s["info"]["name"] for s in schemas] == names
    for s in schemas:
        assert s["type"] == "dsp" and s["info"]["implementationVersion"] >= 1
        assert s["info"]["outputType"] in ("flat", "spectrogram", "image")
        for item in s["parameters"]:
            assert {"param", "name", "type", "value", "help"} <= item.keys()
            # the declared default passes its own validation
            block = registry.get_block(s["info"]["name"])
            assert block.validate({item["param"]: item["value"]})[item["param"]] == item["value"]


def test_unknown_block_is_not_found():
    with pytest.raises(NotFound, match="mfcc"):
        registry.get_block("nope")


@pytest.mark.parametrize(
    "block, params, field, text",
    [
        ("mfcc", {"num_filters": 1}, "num_filters", "2..512"),
        ("mfcc", {"fft_length": 200}, "fft_length", "power of two"),
        ("mfcc", {"frame_length": "abc"}, "frame_length", "float"),
        ("mfcc", {"num_cepstral": True}, "num_cepstral", "int"),
        ("mfcc", {"bogus": 1}, "bogus", "valid parameters"),
        ("mfe", {"noise_floor_db": 5}, "noise_floor_db", "-200..0"),
        ("spectral_analysis", {"filter_type": "band"}, "filter_type", "'low', 'high', 'none'"),
        ("spectral_analysis", {"wavelet": "db99"}, "wavelet", "one of"),
        ("flatten", {"rms": "maybe"}, "rms", "true or false"),
        ("image", {"channels": "CMYK"}, "channels", "'RGB', 'Grayscale'"),
    ],
)
def test_bad_parameter_names_field_and_range(block, params, field, text):
    with pytest.raises(InvalidArgument) as e:
        registry.get_block(block).validate(params)
    assert e.value.field == field
    assert text in e.value.message


def test_edge_impulse_hyphenated_keys_and_string_choices_are_accepted():
    p = registry.get_block("spectral_analysis").validate(
        {"filter-type": "low", "input-decimation-ratio": "3", "scale-axes": "2"}
    )
    assert p["filter_type"] == "low" and p["input_decimation_ratio"] == 3 and p["scale_axes"] == 2


def test_defaults_are_filled():
    p = registry.get_block("mfe").validate({})
    assert p["num_filters"] == 40 and p["frame_stride"] == 0.01 and p["noise_floor_db"] == -52


@pytest.mark.parametrize(
    "block, signal, fs, params, field, text",
    [
        # frame count over the block's limit (1 s at 1 ms stride = 981 frames)
        ("mfe", AUDIO, 8000, {"frame_stride": 0.001}, "frame_stride", "limit of 500"),
        ("mfcc", AUDIO[:100], 8000, {}, "frame_length", "longer than the window"),
        ("mfcc", AUDIO, 8000, {"high_frequency": 5000}, "high_frequency", "half the sampling"),
        ("mfcc", AUDIO, 8000, {"num_filters": 128, "fft_length": 64}, "num_filters", "covers no"),
        ("mfcc", AUDIO, 8000, {"win_size": 100}, "win_size", "odd"),
        ("mfcc", AUDIO, 8000, {"num_cepstral": 40}, "num_cepstral", "at most num_filters"),
        ("spectrogram", AUDIO, 8000, {"frame_length": 0.0004}, "frame_length", "4 samples"),
        # sampling rate too low for the cut-off
        ("spectral_analysis", ACC, 26, {"filter_type": "low", "filter_cutoff": 15},
         "filter_cutoff", "Nyquist"),
        ("spectral_analysis", ACC, 26, {"filter_type": "low", "filter_cutoff": 3,
                                        "input_decimation_ratio": 10},
         "input_decimation_ratio", "too low"),
        ("spectral_analysis", ACC[:64], 26, {"analysis_type": "Wavelet", "wavelet_level": 2},
         "wavelet_level", "at least 128 samples"),
        ("spectral_analysis", ACC, 26, {"filter_order": 5, "filter_type": "low"},
         "filter_order", "even"),
        ("flatten", ACC, 26, {s: False for s in ("average", "minimum", "maximum", "rms",
                                                  "stdev", "skewness", "kurtosis")},
         "average", "at least one"),
    ],
)  # fmt: skip
def test_signal_dependent_errors(block, signal, fs, params, field, text):
    with pytest.raises(InvalidArgument) as e:
        registry.get_block(block).features(signal, fs, params)
    assert e.value.field == field
    assert text in e.value.message


def test_single_axis_blocks_reject_several_axes():
    for name in ("mfcc", "mfe", "spectrogram", "mfcc_mlperf_kws"):
        with pytest.raises(InvalidArgument, match="single axis") as e:
            registry.get_block(name).features(np.zeros((16000, 2), np.float32), 16000)
        assert e.value.field == "axes"


def test_image_channel_count_is_checked():
    block = registry.get_block("image")
    with pytest.raises(InvalidArgument, match="3-channel") as e:
        block.features(np.zeros((8, 8, 1)), 0, {"channels": "RGB"})
    assert e.value.field == "channels"
    with pytest.raises(InvalidArgument, match="image window"):
        block.features(np.zeros((8, 8)), 0)


def test_nan_and_bad_sampling_rate_are_rejected():
    block = registry.get_block("flatten")
    bad = ACC.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InvalidArgument, match="NaN"):
        block.features(bad, 26)
    with pytest.raises(InvalidArgument) as e:
        block.features(ACC, 0)
    assert e.value.field == "frequency_hz"
