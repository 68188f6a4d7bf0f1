"""BuilderService end to end through the API on a model trained through the API (HAR or the
synthetic fallback): c-library for the host and cortex-m-firmware for the Cortex-M4F, each
verified on the target with the platform's int8 accuracy; the artifact streams as a zip that
builds / runs as a user would; kserve stores the served model directory."""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile

import numpy as np

from tests.builder.conftest import build_and_wait
from tests.deploy.helpers import run_firmware, unpack
from tests.dsp_service.conftest import SUCCEEDED
from tinyforge.serving.model_dir import load_model_source
from tinyforge.serving.runtime import ImpulseRuntime
from tinyforge.v1 import builder_service_pb2 as bpb

ALL = {"test_windows": "2000"}  # verify every testing window


def _platform_predictions(trained) -> tuple[list[int], list[int]]:
    """(predicted class, true class) of every testing window, in sample-id then window order,
    from the live Classify API (the platform's int8 path, independent of the builder)."""
    preds, truth = [], []
    labels = trained.labels
    for sid in trained.testing:
        res = trained.client.classify(trained.model_id, sample_id=sid)
        assert res.form == "int8"
        label = trained.client.get_sample(sid).label
        for w in res.windows:
            preds.append(int(np.argmax(w.scores)))
            truth.append(labels.index(label))
    return preds, truth


def test_c_library_and_firmware_match_the_platform(trained, tmp_path) -> None:
    client = trained.client
    preds, truth = _platform_predictions(trained)
    platform_acc = float(np.mean(np.equal(preds, truth)))

    # -- c-library for the host: verified natively, downloaded, built with make ------------
    job, build, lines = build_and_wait(client, "c-library", "linux-x86_64",
                                       model_id=trained.model_id, options=ALL)
    assert job.status == SUCCEEDED, job.error
    assert build.state == bpb.BUILD_STATE_READY and not build.error
    assert build.model_id == trained.model_id and build.job_id == job.id
    assert build.compared_windows == len(preds)
    assert build.on_target_accuracy == build.platform_accuracy == platform_acc
    assert any(ln.startswith("$ ") and "gcc" in ln for ln in lines)  # toolchain in the log
    zpath, size, sha = client.download_artifact(build.id, tmp_path)
    data = zpath.read_bytes()
    assert size == build.artifact_size == len(data)
    assert sha == build.artifact_sha256 == hashlib.sha256(data).hexdigest()
    assert sorted(zipfile.ZipFile(zpath).namelist()) == sorted(build.files)
    root = unpack(zpath, tmp_path / "c")
    subprocess.run(["make", "-s", "-j2"], cwd=root, check=True, capture_output=True)
    out = json.loads(subprocess.run([str(root / "example")], capture_output=True, text=True,
                                    check=True).stdout)
    assert out["index"] == preds[0]  # sample.h holds test window 0

    # -- cortex-m-firmware for the Cortex-M4F: QEMU mps2-an386 ------------------------------
    job, fw, _ = build_and_wait(client, "cortex-m-firmware", "cortex-m4f-80mhz",
                                model_id=trained.model_id, options=ALL)
    assert job.status == SUCCEEDED, job.error
    assert fw.verified_on == "qemu-mps2-an386"
    assert fw.on_target_accuracy == fw.platform_accuracy == platform_acc
    assert fw.dsp_instructions > 0 and fw.nn_instructions > 0
    assert 0 < fw.ram_bytes <= 256 * 1024 and 0 < fw.flash_bytes <= 1024 * 1024
    assert fw.arena_bytes > 0
    root = unpack(client.download_artifact(fw.id, tmp_path / "fw.zip")[0], tmp_path / "fw")
    # the shipped image, run independently under QEMU, gives the platform's predictions
    assert run_firmware(root / "firmware.elf", "qemu-mps2-an386") == preds

    listed = client.list_builds(model_id=trained.model_id, state="ready")
    assert [b.id for b in listed][:2] == [fw.id, build.id]


def test_kserve_uploads_the_model_directory(platform, trained, tmp_path) -> None:
    client = trained.client
    job, build, _ = build_and_wait(client, "kserve", "linux-x86_64",
                                   model_id=trained.model_id)
    assert job.status == SUCCEEDED, job.error
    prefix = f"projects/{trained.project_id}/builds/{build.id}/model/"
    assert build.model_prefix == prefix
    objects = platform.ctx.objects
    stored = {o.key[len(prefix):]: o for o in objects.list(prefix)}
    assert {"impulse.json", "labels.json", "model_int8.tflite"} <= set(stored)
    # the stored model directory is the zip's, byte for byte (minus README and YAML)
    root = unpack(client.download_artifact(build.id, tmp_path)[0], tmp_path / "k")
    shipped = {p.name for p in root.iterdir()} - {"README.md", "inferenceservice.yaml"}
    assert shipped == set(stored)
    for name in shipped:
        assert objects.get_bytes(prefix + name) == (root / name).read_bytes()
    assert json.loads((root / "labels.json").read_text()) == trained.labels
    isvc = (root / "inferenceservice.yaml").read_text()
    assert f"s3://tinyforge/{prefix}" in isvc
    # the stored directory, loaded as KServe's runtime loads /mnt/models, scores a testing
    # sample as the platform's Classify does
    mnt = tmp_path / "mnt-models"
    mnt.mkdir()
    for name in stored:
        objects.download_to(prefix + name, mnt / name)
    rt = ImpulseRuntime(load_model_source(mnt))
    sample, data = client.download_sample(trained.testing[0])
    windows, _ = rt.windows_from_file(data, filename=sample.filename)
    served = rt.classify(windows, model_type="int8").scores
    live = client.classify(trained.model_id, sample_id=trained.testing[0])
    np.testing.assert_allclose(served, [w.scores for w in live.windows], atol=1e-6)
