"""Impulse definition: validation errors, JSON round trip, diff, per-block content hash."""

import copy

import pytest

from tinyforge.errors import InvalidArgument
from tinyforge.impulse import (
    ImageInput,
    Impulse,
    LearningBlockDef,
    ProcessingBlockDef,
    TimeSeriesInput,
    block_hash,
    diff,
)  # fmt: skip


def accel_impulse() -> Impulse:
    return Impulse(
        input=TimeSeriesInput(window_size_ms=2000, window_stride_ms=500, frequency_hz=26,
                              axes=["x", "y", "z"]),
        processing=[
            ProcessingBlockDef("spectral", "spectral_analysis",
                               {"filter_type": "low", "filter_cutoff": 3}),
            ProcessingBlockDef("stats", "flatten", {}, axes=["x"]),
        ],
        learning=[LearningBlockDef("nn", "classifier", {"epochs": 30},
                                   inputs=["spectral", "stats"])],
    )  # fmt: skip


def audio_impulse() -> Impulse:
    return Impulse(
        input=TimeSeriesInput(1000, 500, 16000, ["audio"]),
        processing=[ProcessingBlockDef("mfcc", "mfcc", {"num_cepstral": 13})],
        learning=[LearningBlockDef("nn", "classifier", {}, ["mfcc"])],
    )


def test_valid_impulses_pass():
    accel_impulse().validate()
    audio_impulse().validate()
    Impulse(ImageInput(96, 96, "fit-short", "grayscale"),
            [ProcessingBlockDef("img", "image", {"channels": "Grayscale"})]).validate()


def mutate(fn):
    imp = accel_impulse()
    fn(imp)
    return imp


@pytest.mark.parametrize(
    "change, field, text",
    [
        (lambda i: setattr(i.input, "frequency_hz", 0), "input.frequency_hz", "0.001.."),
        (lambda i: setattr(i.input, "window_size_ms", -5), "input.window_size_ms", ".."),
        (lambda i: setattr(i.input, "axes", []), "input.axes", "non-empty"),
        (lambda i: setattr(i.processing[0], "block", "fft9"), "processing[0].block", "valid"),
        (lambda i: setattr(i.processing[1], "axes", ["w"]), "processing[1].axes", "not an input"),
        (lambda i: setattr(i.processing[1], "name", "spectral"), "processing[1].name",
         "duplicate"),
        (lambda i: i.processing[0].params.update(filter_cutoff=20), "processing[0].params."
         "filter_cutoff", "Nyquist"),
        (lambda i: i.processing[0].params.update(fft_length=100), "processing[0].params."
         "fft_length", "power of two"),
        (lambda i: setattr(i.learning[0], "inputs", ["nope"]), "learning[0].inputs", "not a"),
        (lambda i: setattr(i, "processing", []), "processing", "at least one"),
        (lambda i: setattr(i.processing[0], "block", "image"), "processing[0].block", "image"),
    ],
)  # fmt: skip
def test_validation_errors_name_the_field(change, field, text):
    with pytest.raises(InvalidArgument) as e:
        mutate(change).validate()
    assert e.value.field == field
    assert text in e.value.message


def test_frame_limit_and_axis_checks_use_the_input_window():
    imp = audio_impulse()
    imp.input.window_size_ms = 10000  # 10 s at 20 ms stride = 500 frames (ok), 1 ms: too many
    imp.validate()
    imp.processing[0].params["frame_stride"] = 0.001
    with pytest.raises(InvalidArgument, match="limit of 500"):
        imp.validate()
    stereo = audio_impulse()
    stereo.input.axes = ["left", "right"]
    with pytest.raises(InvalidArgument, match="single axis"):
        stereo.validate()


def test_image_input_checks():
    with pytest.raises(InvalidArgument) as e:
        Impulse(ImageInput(96, 96, "stretch"), [ProcessingBlockDef("i", "image")]).validate()
    assert e.value.field == "input.resize_mode"
    with pytest.raises(InvalidArgument, match="3-channel"):
        Impulse(ImageInput(96, 96, color="grayscale"),
                [ProcessingBlockDef("i", "image", {"channels": "RGB"})]).validate()


def test_json_round_trip_and_bad_json():
    for imp in (accel_impulse(), audio_impulse(), Impulse(ImageInput(32, 32),
                                                          [ProcessingBlockDef("i", "image")])):
        again = Impulse.from_json(imp.to_json())
        assert again == imp and again.to_json() == imp.to_json()
    with pytest.raises(InvalidArgument, match="JSON"):
        Impulse.from_json("{nope")
    with pytest.raises(InvalidArgument) as e:
        Impulse.from_dict({"input": {"type": "video"}})
    assert e.value.field == "input.type"
    with pytest.raises(InvalidArgument) as e:
        Impulse.from_dict({"input": {"type": "image", "width": 1, "height": 1},
                           "processing": [{"name": "a", "kind": "b"}]})
    assert e.value.field == "processing[0]"


def test_diff_lists_changed_fields():
    a = accel_impulse()
    b = copy.deepcopy(a)
    assert diff(a, b) == []
    b.input.window_stride_ms = 250
    b.processing[0].params["filter_cutoff"] = 4
    b.processing.append(ProcessingBlockDef("raw", "raw"))
    del b.learning[0].params["epochs"]
    changes = {c.path: (c.old, c.new) for c in diff(a, b)}
    assert changes["input.window_stride_ms"] == (500, 250)
    assert changes["processing.spectral.params.filter_cutoff"] == (3, 4)
    assert changes["processing.raw"][0] is None and changes["processing.raw"][1]["block"] == "raw"
    assert changes["learning.nn.params.epochs"] == (30, None)
    assert len(changes) == 4


def test_diff_reports_reordering():
    a = accel_impulse()
    b = copy.deepcopy(a)
    b.processing.reverse()
    assert [c.path for c in diff(a, b)] == ["processing.order"]


def test_block_hash_tracks_only_what_shapes_the_features():
    a = accel_impulse()
    h = block_hash(a, "spectral")
    same = copy.deepcopy(a)
    same.learning[0].params["epochs"] = 99  # learning params do not change features
    same.processing[1].params["rms"] = False  # nor another block's params
    same.processing[0].params["fft_length"] = 16  # spelling out the default
    assert block_hash(same, "spectral") == h
    for change in (lambda i: i.processing[0].params.update(filter_cutoff=4),
                   lambda i: setattr(i.input, "window_size_ms", 3000),
                   lambda i: setattr(i.processing[0], "axes", ["x", "y"])):  # fmt: skip
        other = copy.deepcopy(a)
        change(other)
        assert block_hash(other, "spectral") != h
    assert len(h) == 64
