"""The pieces of a custom deploy block build that need no platform: the metadata written for
the block, the C library unpacked for it, the stored block options and the artifact naming.

The whole flow (register, StartBuild ``custom:NAME``, download, compile) runs through the API
in ``tests/builder/test_custom_deploy_block.py``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tinyforge.deploy import custom_block
from tinyforge.errors import FailedPrecondition, InvalidArgument


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def test_unpack_library_strips_the_top_folder_and_lists_include_dirs(tmp_path) -> None:
    z = _zip(tmp_path / "lib.zip", {
        "motion-c-library/main.c": b"int main(void){return 0;}",
        "motion-c-library/sample.h": b"",
        "motion-c-library/model/model.c": b"",
        "motion-c-library/model/model.h": b"",
        "motion-c-library/tinyforge-sdk/dsp/tf_dsp.h": b"",
        "motion-c-library/Makefile": b"all:",
    })
    info = custom_block.unpack_library(z, tmp_path / "out" / "c-library")
    root = tmp_path / "out" / "c-library"
    assert (root / "model" / "model.c").is_file() and (root / "Makefile").read_text() == "all:"
    assert info["sources"] == ["main.c", "model/model.c"]
    assert info["headers"] == ["model/model.h", "sample.h", "tinyforge-sdk/dsp/tf_dsp.h"]
    assert info["includeDirs"] == [".", "model", "tinyforge-sdk/dsp"]


def test_unpack_library_never_writes_outside_its_folder(tmp_path) -> None:
    z = _zip(tmp_path / "evil.zip", {"top/../../escaped.c": b"x"})
    with pytest.raises(FailedPrecondition) as e:
        custom_block.unpack_library(z, tmp_path / "a" / "lib")
    assert e.value.field == "library"
    assert not (tmp_path / "escaped.c").exists() and not (tmp_path / "a" / "escaped.c").exists()


def test_block_options_round_trip_and_reserved_keys() -> None:
    plan = custom_block.DeployBlockPlan("zipper", 4, {"library-name": "x", "level": "3"})
    assert plan.reference == "custom:zipper@4"
    opts = {"test_windows": "5", **custom_block.block_options(plan)}
    rest, version, params = custom_block.split_options(opts)
    assert rest == {"test_windows": "5"} and version == 4 and params == plan.parameters
    assert custom_block.split_options({"test_windows": "5"}) == ({"test_windows": "5"}, 0, {})
    from tinyforge.deploy.builds import RESERVED_OPTIONS, check_options

    assert {custom_block.VERSION_OPTION, custom_block.PARAMS_OPTION} <= set(RESERVED_OPTIONS)
    with pytest.raises(InvalidArgument) as e:
        check_options("custom:zipper", "linux-x86_64", "int8", {"block_parameters": "{}"})
    assert e.value.field == "options.block_parameters"


def test_format_references() -> None:
    assert custom_block.is_custom_format("custom:zipper")
    assert not custom_block.is_custom_format("c-library")
    assert custom_block.parse_format("custom:zipper@12") == ("zipper", 12)
    assert custom_block.parse_format("custom:zipper") == ("zipper", 0)
    for bad in ("custom:", "custom:Zipper", "custom:zip per", "custom:zipper@0",
                "custom:" + "a" * 30):
        with pytest.raises(InvalidArgument) as e:
            custom_block.parse_format(bad)
        assert e.value.field == "format"


def test_artifact_naming() -> None:
    assert custom_block.artifact_suffix("gestures-v3.zip") == ".zip"
    assert custom_block.artifact_suffix("firmware.BIN") == ".bin"
    assert custom_block.artifact_suffix("weird.name with space") == ""
    assert custom_block.artifact_suffix("noext") == ""
    assert custom_block.artifact_content_type("a.zip") == "application/zip"
    assert custom_block.artifact_content_type("a.json") == "application/json"
    assert custom_block.artifact_content_type("a.unknownext") == "application/octet-stream"


def test_metadata_describes_the_bundle(synthetic_bundle) -> None:
    from ai_edge_litert.interpreter import Interpreter

    b = synthetic_bundle
    files = {"int8": "model/model_int8.tflite"}
    if b.model_float32 is not None:
        files["float32"] = "model/model_float32.tflite"
    meta = custom_block.deployment_metadata(
        b, project={"id": 3, "name": "motion"}, build={"id": 9}, model={"id": 2},
        deploy_counter=4, model_files=files,
        library={"directory": "c-library"}, folders={"input": "/in"}, arena_bytes=1234)
    inp = b.impulse.input
    assert meta["classes"] == list(b.labels) and meta["deployCounter"] == 4
    assert meta["frequency"] == inp.frequency_hz and meta["axesCount"] == len(inp.axes)
    assert meta["samplesPerInference"] == round(inp.window_size_ms * inp.frequency_hz / 1000)
    assert meta["project"] == {"id": 3, "name": "motion"}
    assert [d["name"] for d in meta["impulse"]["dspBlocks"]] == [
        p.name for p in b.impulse.processing]
    # the DSP output sizes add up to what the network takes
    n_features = sum(d["outputFeatures"] for d in meta["impulse"]["dspBlocks"])
    by_type = {m["dataType"]: m for m in meta["tfliteModels"]}
    assert by_type["int8"]["inputFrameSize"] == n_features
    assert by_type["int8"]["arenaSize"] == 1234 and by_type["int8"]["modelPath"] == files["int8"]
    it = Interpreter(model_content=b.model_int8)
    want = it.get_input_details()[0]
    got = by_type["int8"]["details"]["inputs"][0]
    assert got["dtype"] == "int8" and got["shape"] == [int(v) for v in want["shape"]]
    assert got["scale"] == pytest.approx(want["quantization"][0])
    assert got["zeroPoint"] == want["quantization"][1]
    assert by_type["int8"]["outputSize"] == len(b.labels)
    if "float32" in by_type:
        f = by_type["float32"]
        assert f["arenaSize"] is None and "scale" not in f["details"]["inputs"][0]
        assert f["details"]["inputs"][0]["dtype"] == "float32"
