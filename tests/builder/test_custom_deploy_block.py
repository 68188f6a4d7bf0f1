"""Registered custom deploy blocks as build formats, end to end through the API.

The example block ``blocks/c-library-zip`` is registered through BlockService (local command
from its stored source, so no container engine is needed), listed by ListFormats with its
parameters, and built with StartBuild format ``custom:c-library-zip``: the downloaded artifact
is the block's zip with its custom layout, holding the project's model files and the generated
C library, which compiles with gcc and classifies the sample window as the platform does.
An inspection block (written here) returns its whole input, so the deployment-metadata.json
the platform prepares is checked against the project, the impulse and the model files.
Failures (non-zero exit, no file, two files, time limit, bad parameters, unknown block) end
the job FAILED with the block's log tail and store nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.blocks.conftest import EXAMPLE_BLOCKS, make_block, podman_ready  # noqa: F401
from tests.dsp_service.conftest import FAILED, SUCCEEDED, run_job
from tinyforge.client import ApiError
from tinyforge.training.store import load_model_files
from tinyforge.v1 import builder_service_pb2 as bpb

TARGET = "linux-x86_64"
FEW = {"test_windows": "5"}  # the C library is verified on a few windows (speed)

INSPECT = """
import argparse, hashlib, json, os, sys
ap = argparse.ArgumentParser()
for a in ("--metadata", "--in-directory", "--out-directory", "--level", "--mode"):
    ap.add_argument(a, required=True)
a = ap.parse_args()
files = {}
for root, _dirs, names in os.walk(a.in_directory):
    for n in names:
        p = os.path.join(root, n)
        files[os.path.relpath(p, a.in_directory)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
doc = {"argv": sys.argv[1:], "metadata": json.load(open(a.metadata)), "files": files}
print("inspected", len(files), "files")
json.dump(doc, open(os.path.join(a.out_directory, "inspect.json"), "w"))
"""
INSPECT_PARAMS = [
    {"param": "level", "name": "Level", "type": "int", "value": 3, "min": 1, "max": 9,
     "help": "An int parameter."},
    {"param": "mode", "name": "Mode", "type": "select", "value": "fast",
     "valid": ["fast", "small"], "help": "A select parameter."},
]


def _start(client, fmt: str, *, parameters=None, options=None, project_id=None):
    return client.start_build(fmt, TARGET, options=dict(FEW if options is None else options),
                              parameters=dict(parameters or {}), project_id=project_id)


def _build(client, fmt: str, **kw):
    resp = _start(client, fmt, **kw)
    job, lines, _ = run_job(client, resp.job_id)
    return job, client.get_build(resp.build_id), lines


def _register(client, directory: Path, name: str):
    return client.register_block_dir(directory, name=name)


def _nothing_stored(platform, trained, build) -> None:
    assert build.state == bpb.BUILD_STATE_FAILED and build.artifact_size == 0
    prefix = f"projects/{trained.project_id}/builds/{build.id}/"
    assert list(platform.ctx.objects.list(prefix)) == []
    with pytest.raises(ApiError) as e:
        trained.client.download_artifact(build.id, platform.ctx.settings.data_dir)
    assert e.value.code == "FAILED_PRECONDITION"


def test_c_library_zip_block_builds_a_compilable_custom_layout(platform, trained,
                                                                 tmp_path) -> None:
    client = trained.client
    reg = _register(client, EXAMPLE_BLOCKS / "c-library-zip", "c-library-zip")
    assert reg.type == "deploy" and reg.has_local_command

    # ListFormats: the org's deploy block next to the built-ins, with its parameters
    formats = {f.name: f for f in client.list_formats()}
    assert "c-library" in formats and not formats["c-library"].HasField("custom_block")
    f = formats["custom:c-library-zip"]
    assert f.custom_block.version == 1 and TARGET in f.targets
    assert {p.param for p in f.custom_block.parameters} == {"archive_prefix", "library_name"}
    # another organization does not see it
    other = platform.new_tenant().client()
    assert "custom:c-library-zip" not in {f.name for f in other.list_formats()}

    job, build, lines = _build(client, "custom:c-library-zip",
                               parameters={"library-name": "gesture_lib"})
    assert job.status == SUCCEEDED, job.error
    assert build.state == bpb.BUILD_STATE_READY and not build.error
    assert build.block_reference == "custom:c-library-zip@1"
    assert dict(build.parameters) == {"library-name": "gesture_lib"}
    assert dict(build.options) == FEW  # the reserved block options are not shown as options
    assert any("wrote" in ln and ".zip" in ln for ln in lines)  # the block's own output
    counter = len([b for b in client.list_builds() if b.id <= build.id])
    project = client.get_project(trained.project_id)
    stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in project.name)
    prefix = f"{stem.strip('-')}-v{counter}"
    assert list(build.files) == [f"{prefix}.zip"]

    path, size, sha = client.download_artifact(build.id, tmp_path)
    data = path.read_bytes()
    assert path.name == f"build-{build.id}-{prefix}.zip"
    assert size == build.artifact_size == len(data)
    assert sha == build.artifact_sha256 == hashlib.sha256(data).hexdigest()
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "x")
    root = tmp_path / "x" / prefix
    assert all(n.startswith(prefix + "/") for n in names)
    rel = {n[len(prefix) + 1:] for n in names}
    assert {"CMakeLists.txt", "tinyforge.json", "model/model_int8.tflite"} <= rel
    assert {"include/sample.h", "include/model/model.h", "src/main.c", "src/model/model.c"} <= rel
    assert "add_library(gesture_lib STATIC" in (root / "CMakeLists.txt").read_text()
    # the model files are the project's trained model, byte for byte
    mf = load_model_files(platform.ctx.objects, trained.project_id, trained.model_id)
    assert (root / "model" / "model_int8.tflite").read_bytes() == mf.int8
    if mf.float32 is not None:
        assert (root / "model" / "model_float32.tflite").read_bytes() == mf.float32
    manifest = json.loads((root / "tinyforge.json").read_text())
    assert manifest["classes"] == trained.labels and manifest["project"] == project.name
    assert manifest["deployCounter"] == counter
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest

    # the custom layout compiles with the include dirs its CMakeLists.txt declares
    cmake = (root / "CMakeLists.txt").read_text()
    declared = re.search(r"target_include_directories\(gesture_lib PUBLIC ([^)]*)\)", cmake)
    assert declared is not None, cmake
    incs = [str(root / d) for d in declared.group(1).split()]
    srcs = sorted(str(p) for p in (root / "src").rglob("*.c"))
    exe = tmp_path / "example"
    subprocess.run(["gcc", "-std=c99", "-O2", "-ffp-contract=off", *(f"-I{d}" for d in incs),
                    *srcs, "-lm", "-o", str(exe)], check=True, capture_output=True)
    out = json.loads(subprocess.run([str(exe)], check=True, capture_output=True,
                                    text=True).stdout)
    # sample.h is the first test window: the first window of the first testing sample
    scores = trained.client.classify(trained.model_id, sample_id=trained.testing[0]).windows[0]
    assert out["index"] == int(np.argmax(scores.scores))
    assert out["prediction"] == trained.labels[out["index"]]


def test_deployment_metadata_matches_the_project(platform, trained, tmp_path) -> None:
    client = trained.client
    block = make_block(tmp_path / "inspect", INSPECT, btype="deploy", params=INSPECT_PARAMS,
                       name="Inspect input")
    _register(client, block, "inspect")
    job, build, lines = _build(client, "custom:inspect", parameters={"level": "7"})
    assert job.status == SUCCEEDED, job.error
    assert list(build.files) == ["inspect.json"]
    path, _, _ = client.download_artifact(build.id, tmp_path)
    assert path.name == f"build-{build.id}-inspect.json"
    doc = json.loads(path.read_text())

    # the contract's arguments, the parameters validated and defaults filled in
    argv = doc["argv"]
    assert argv[argv.index("--level") + 1] == "7" and argv[argv.index("--mode") + 1] == "fast"
    meta = doc["metadata"]
    in_dir = argv[argv.index("--in-directory") + 1]
    assert argv[argv.index("--metadata") + 1] == f"{in_dir}/deployment-metadata.json"
    assert meta["folders"]["input"] == in_dir

    model = client.get_model(trained.model_id)
    project = client.get_project(trained.project_id)
    impulse = json.loads(client.get_impulse(model.impulse_id, model.impulse_version)
                         .definition_json)
    assert meta["version"] == 1
    assert meta["project"] == {"id": trained.project_id, "name": project.name}
    assert meta["classes"] == trained.labels
    assert meta["deployCounter"] == len([b for b in client.list_builds() if b.id <= build.id])
    assert meta["build"]["id"] == build.id and meta["build"]["target"] == TARGET
    assert meta["build"]["block"] == "custom:inspect@1"
    assert meta["build"]["parameters"] == {"level": 7, "mode": "fast"}
    assert meta["model"]["id"] == trained.model_id
    inp = impulse["input"]
    assert meta["impulse"]["inputBlocks"][0]["window_size_ms"] == inp["window_size_ms"]
    assert meta["frequency"] == inp["frequency_hz"] and meta["axesCount"] == len(inp["axes"])
    assert meta["samplesPerInference"] == round(inp["window_size_ms"] * inp["frequency_hz"]
                                                / 1000)
    dsp = meta["impulse"]["dspBlocks"]
    assert [(b["name"], b["type"]) for b in dsp] == [
        (b["name"], b["block"]) for b in impulse["processing"]]
    for got, want in zip(dsp, impulse["processing"], strict=True):
        assert all(got["params"][k] == v for k, v in want["params"].items())
    assert [b["name"] for b in meta["impulse"]["learnBlocks"]] == [
        b["name"] for b in impulse["learning"]]

    # model files: the stored model's bytes; shapes and quantization as LiteRT reads them
    from ai_edge_litert.interpreter import Interpreter

    mf = load_model_files(platform.ctx.objects, trained.project_id, trained.model_id)
    by_type = {m["dataType"]: m for m in meta["tfliteModels"]}
    assert set(by_type) == ({"int8", "float32"} if mf.float32 is not None else {"int8"})
    for kind, blob in (("int8", mf.int8), ("float32", mf.float32)):
        if blob is None:
            continue
        m = by_type[kind]
        assert doc["files"][m["modelPath"]] == hashlib.sha256(blob).hexdigest()
        it = Interpreter(model_content=blob)
        i, o = it.get_input_details()[0], it.get_output_details()[0]
        mi, mo = m["details"]["inputs"][0], m["details"]["outputs"][0]
        assert mi["shape"] == list(i["shape"]) and mo["shape"] == list(o["shape"])
        assert m["inputFrameSize"] == int(np.prod(i["shape"]))
        assert mo["shape"][-1] == len(trained.labels)
        if kind == "int8":
            assert (mi["scale"], mi["zeroPoint"]) == (pytest.approx(i["quantization"][0]),
                                                      i["quantization"][1])
            assert (mo["scale"], mo["zeroPoint"]) == (pytest.approx(o["quantization"][0]),
                                                      o["quantization"][1])
            assert m["arenaSize"] == json.loads(build.metrics_json)["arena_bytes"] > 0

    # the C library, as the c-library format builds it, under c-library/
    lib = meta["library"]
    assert lib["directory"] == "c-library"
    for rel in lib["sources"] + lib["headers"]:
        assert f"c-library/{rel}" in doc["files"]
    assert "model/model.c" in lib["sources"] and "model" in lib["includeDirs"]


def test_block_failures_fail_the_job_and_store_nothing(platform, trained, tmp_path) -> None:
    client = trained.client
    cases = {
        "crash": ("import sys\nprint('loading the toolchain')\n"
                  "print('boom: no linker script for this board', file=sys.stderr)\n"
                  "sys.exit(3)\n", {}, "exited with code 3", "boom: no linker script"),
        "silent": ("print('did nothing')\n", {}, "wrote no output", "did nothing"),
        "twofiles": ("import sys, pathlib\n"
                     "o = pathlib.Path(sys.argv[sys.argv.index('--out-directory') + 1])\n"
                     "(o / 'a.zip').write_text('a'); (o / 'b.zip').write_text('b')\n"
                     "print('wrote two')\n", {}, "exactly one artifact file", "wrote two"),
        "slow": ("import time\nprint('starting slow work', flush=True)\ntime.sleep(120)\n",
                 {"timeoutSeconds": 1}, "time limit", "starting slow work"),
    }
    for name, (script, resources, why, tail) in cases.items():
        block = make_block(tmp_path / name, script, btype="deploy", resources=resources or None,
                           name=f"Fail {name}")
        _register(client, block, f"fail-{name}")
        job, build, lines = _build(client, f"custom:fail-{name}")
        assert job.status == FAILED, name
        assert why in job.error and tail in job.error, (name, job.error)
        assert why in build.error and tail in build.error, (name, build.error)
        assert any(tail in ln for ln in lines), name  # streamed into the job log too
        _nothing_stored(platform, trained, build)


def test_bad_requests_are_refused_before_any_job(trained, tmp_path) -> None:
    client = trained.client
    block = make_block(tmp_path / "inspect", INSPECT, btype="deploy", params=INSPECT_PARAMS,
                       name="Inspect input")
    _register(client, block, "inspect-refusals")
    dsp = make_block(tmp_path / "dsp", "print('x')\n", btype="dsp", name="Some dsp")
    _register(client, dsp, "some-dsp")
    builds_before = len(client.list_builds())

    def refused(fmt: str, **kw) -> ApiError:
        with pytest.raises(ApiError) as e:
            _start(client, fmt, **kw)
        return e.value

    e = refused("custom:inspect-refusals", parameters={"level": "12"})
    assert e.code == "INVALID_ARGUMENT" and e.field == "parameters.level" and "1..9" in e.message
    e = refused("custom:inspect-refusals", parameters={"mode": "huge"})
    assert e.code == "INVALID_ARGUMENT" and e.field == "parameters.mode"
    e = refused("custom:inspect-refusals", parameters={"colour": "red"})
    assert e.code == "INVALID_ARGUMENT" and e.field == "parameters.colour"
    e = refused("custom:inspect-refusals", options={"block_version": "1"})
    assert e.code == "INVALID_ARGUMENT" and e.field == "options.block_version"
    e = refused("custom:inspect-refusals@7")
    assert e.code == "NOT_FOUND" and e.field == "format"
    e = refused("custom:no-such-block")
    assert e.code == "NOT_FOUND" and e.field == "format" and "no-such-block" in e.message
    e = refused("custom:some-dsp")
    assert e.code == "INVALID_ARGUMENT" and e.field == "format" and "dsp block" in e.message
    e = refused("custom:Bad Name")
    assert e.code == "INVALID_ARGUMENT" and e.field == "format"
    e = refused("c-library", parameters={"level": "3"})
    assert e.code == "INVALID_ARGUMENT" and e.field == "parameters"
    # another organization's block is invisible
    other = trained.tenant.platform.new_tenant()
    oc = other.client(default_project_id=other.project_id)
    _register(oc, block, "theirs")
    e = refused("custom:theirs")
    assert e.code == "NOT_FOUND" and e.field == "format"
    assert len(client.list_builds()) == builds_before


def test_version_is_pinned_when_the_build_starts(platform, trained, tmp_path) -> None:
    client = trained.client
    block = make_block(tmp_path / "pin", INSPECT, btype="deploy", params=INSPECT_PARAMS,
                       name="Pinned")
    _register(client, block, "pinned")
    resp = _start(client, "custom:pinned")
    # a newer version registered while the first build is queued does not change it
    _register(client, block, "pinned")
    job, _, _ = run_job(client, resp.job_id)
    assert job.status == SUCCEEDED, job.error
    assert client.get_build(resp.build_id).block_reference == "custom:pinned@1"
    job, build, _ = _build(client, "custom:pinned")
    assert job.status == SUCCEEDED and build.block_reference == "custom:pinned@2"
    # the pinned version deleted while its build is pending: the build (run here directly,
    # the job body, so the order is certain) fails naming it and stores nothing
    from tinyforge.deploy import builds
    from tinyforge.errors import NotFound

    ctx = platform.ctx
    with ctx.db.session() as s:
        plan = builds.plan_build(s, trained.project_id, model_id=0, fmt="custom:pinned@1",
                                 target=TARGET, options=FEW)
        build_id = builds.create_build(s, trained.project_id, plan).id
    client.delete_block("pinned", 1)
    with pytest.raises(NotFound) as e:
        builds.run_build(ctx.db, ctx.objects, trained.project_id, build_id)
    assert e.value.field == "format" and "version 1" in e.value.message
    build = client.get_build(build_id)
    assert "pinned" in build.error and "version 1" in build.error
    _nothing_stored(platform, trained, build)


def test_cli_lists_and_builds_a_custom_block(platform, trained, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from tinyforge.cli.main import app

    block = make_block(tmp_path / "inspect", INSPECT, btype="deploy", params=INSPECT_PARAMS,
                       name="Inspect via CLI")
    _register(trained.client, block, "inspect-cli")
    env = {"TINYFORGE_ADDRESS": platform.address, "TINYFORGE_API_KEY": trained.tenant.admin_key,
           "TINYFORGE_PROJECT_ID": str(trained.project_id),
           "TINYFORGE_DATA_DIR": str(tmp_path), "COLUMNS": "250"}

    def cli(*args: str):
        return CliRunner().invoke(app, list(args), env=env)

    res = cli("build", "formats")
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.stdout.splitlines() if "custom:inspect-cli" in ln)
    assert "level=3 (int 1..9)" in line and "mode='fast'" in line
    formats = {f["name"]: f for f in json.loads(cli("build", "formats", "--json").stdout)}
    assert formats["custom:inspect-cli"]["custom_block"]["reference"] == "custom:inspect-cli@1"

    res = cli("build", "-f", "custom:inspect-cli", "-t", TARGET, "-P", "level=12")
    assert res.exit_code == 1 and "INVALID_ARGUMENT" in res.output
    assert "parameters.level" in res.output

    out = tmp_path / "dl"
    out.mkdir()
    res = cli("build", "-f", "custom:inspect-cli", "-t", TARGET, "-P", "level=5", "-P",
              "mode=small", "-O", "test_windows=5", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert "deploy block" in res.stdout and "custom:inspect-cli@1" in res.stdout
    saved = list(out.iterdir())
    assert len(saved) == 1 and saved[0].name.endswith("-inspect.json")
    argv = json.loads(saved[0].read_text())["argv"]
    assert argv[argv.index("--level") + 1] == "5" and argv[argv.index("--mode") + 1] == "small"

    # local commands disabled on the platform: the block cannot run, the job says why
    monkeypatch.setenv("TINYFORGE_BLOCKS_LOCAL_COMMANDS", "0")
    res = cli("build", "-f", "custom:inspect-cli", "-t", TARGET, "-O", "test_windows=5")
    assert res.exit_code == 1 and "local commands are disabled" in res.output


@pytest.mark.podman
@pytest.mark.usefixtures("podman_ready")
def test_c_library_zip_runs_as_a_container(platform, trained, tmp_path) -> None:
    """With an image and no source, the block runs under podman (input mounted read-only, a
    fresh output mount, no network) and its one file is the artifact."""
    from tinyforge.blocks.images import build_block_image

    ref = build_block_image(EXAMPLE_BLOCKS / "c-library-zip", tag="deploy-test")
    client = trained.client
    client.register_block_dir(EXAMPLE_BLOCKS / "c-library-zip", name="zip-image", image=ref,
                              include_source=False)
    job, build, lines = _build(client, "custom:zip-image", parameters={"archive-prefix": "pkg"})
    assert job.status == SUCCEEDED, job.error
    metrics = json.loads(build.metrics_json)
    assert metrics["block_engine"] == "podman" and metrics["block"] == "custom:zip-image@1"
    assert list(build.files) == ["pkg.zip"]
    path, _, _ = client.download_artifact(build.id, tmp_path)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("pkg/tinyforge.json"))
    assert {"pkg/CMakeLists.txt", "pkg/src/model/model.c", "pkg/model/model_int8.tflite"} <= names
    assert manifest["classes"] == trained.labels
