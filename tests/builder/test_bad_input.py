"""Bad build requests through the API. Refused at StartBuild (nothing recorded): unknown
format / target (the message names the valid ones), a target the format does not build for,
unknown model, another project's model, bad precision / options / time limit. Failing as a
job (the reason in WatchJob, the build ``failed``, no artifact object): model too big for the
target's RAM, toolchain missing, time limit passed."""

from __future__ import annotations

import pytest

from tests.builder.conftest import build_and_wait
from tests.dsp_service.conftest import FAILED
from tinyforge.client import ApiError
from tinyforge.deploy.registry import FORMATS, TARGETS
from tinyforge.v1 import builder_service_pb2 as bpb
from tinyforge.v1.common_pb2 import JOB_STATUS_CANCELLED as CANCELLED


def _refused(client, fmt, target, **kw) -> ApiError:
    with pytest.raises(ApiError) as e:
        client.start_build(fmt, target, **kw)
    return e.value


def _nothing_stored(platform, trained, build) -> None:
    """The build failed cleanly: no object under its folder, no artifact to download."""
    assert build.state == bpb.BUILD_STATE_FAILED and build.artifact_size == 0
    prefix = f"projects/{trained.project_id}/builds/{build.id}/"
    assert list(platform.ctx.objects.list(prefix)) == []
    with pytest.raises(ApiError) as e:
        trained.client.download_artifact(build.id, platform.ctx.settings.data_dir)
    assert e.value.code == "FAILED_PRECONDITION" and build.error in e.value.message


def test_requests_refused_before_any_job(trained) -> None:
    client, mid = trained.client, trained.model_id
    builds_before = len(client.list_builds())
    jobs_before = len(client.list_jobs())

    e = _refused(client, "zip-of-wishes", "linux-x86_64", model_id=mid)
    assert e.code == "INVALID_ARGUMENT" and e.field == "format"
    assert all(name in e.message for name in FORMATS)
    e = _refused(client, "c-library", "pdp-11", model_id=mid)
    assert e.code == "INVALID_ARGUMENT" and e.field == "target"
    assert all(name in e.message for name in TARGETS)
    e = _refused(client, "cortex-m-firmware", "esp32-c3", model_id=mid)
    assert e.code == "INVALID_ARGUMENT" and "valid targets for it: cortex-m4f-80mhz" in e.message
    e = _refused(client, "c-library", "linux-x86_64", model_id=10**9)
    assert e.code == "NOT_FOUND" and e.field == "model_id"
    # the model exists, but in another project of the same organization
    other = trained.tenant.new_project()
    e = _refused(client, "c-library", "linux-x86_64", model_id=mid, project_id=other)
    assert e.code == "NOT_FOUND" and f"model {mid} does not exist in project {other}" in e.message
    # a project without any model: "the newest model" does not exist either
    e = _refused(client, "c-library", "linux-x86_64", project_id=other)
    assert e.code == "NOT_FOUND" and "no trained model" in e.message
    e = _refused(client, "c-library", "linux-x86_64", model_id=mid, use_float=True)
    assert e.code == "INVALID_ARGUMENT" and e.field == "precision" and "kserve" in e.message
    e = _refused(client, "c-library", "linux-x86_64", model_id=mid, timeout_s=-1)
    assert e.code == "INVALID_ARGUMENT" and e.field == "timeout_s"
    e = _refused(client, "kserve", "linux-x86_64", model_id=mid, options={"build_id": "7"})
    assert e.code == "INVALID_ARGUMENT" and e.field == "options.build_id"
    e = _refused(client, "c-library", "linux-x86_64", model_id=mid,
                 options={"ram_limit_bytes": "1000"})
    assert e.code == "INVALID_ARGUMENT" and "microcontroller" in e.message
    e = _refused(client, "c-library", "cortex-m4f-80mhz", model_id=mid,
                 options={"ram_limit_bytes": str(10 << 20)})
    assert e.code == "INVALID_ARGUMENT" and "1..262144" in e.message
    e = _refused(client, "c-library", "linux-x86_64", model_id=mid, options={"Bad Name": "1"})
    assert e.code == "INVALID_ARGUMENT" and e.field == "options"

    assert len(client.list_builds()) == builds_before
    assert len(client.list_jobs()) == jobs_before
    for call in (lambda: client.get_build(10**9),
                 lambda: client.download_artifact(10**9, trained.tenant.platform.ctx.settings
                                                  .data_dir)):
        with pytest.raises(ApiError) as e2:
            call()
        assert e2.value.code == "NOT_FOUND" and e2.value.field == "build_id"


def test_model_too_big_for_the_targets_ram(platform, trained) -> None:
    # the application keeps all but 256 B of the Cortex-M4F's RAM for itself
    job, build, _ = build_and_wait(trained.client, "c-library", "cortex-m4f-80mhz",
                                   model_id=trained.model_id,
                                   options={"ram_limit_bytes": "256"})
    assert job.status == FAILED
    assert job.error.startswith("ResourceExhausted: ")
    assert "cortex-m4f-80mhz" in job.error and "256 B available" in job.error
    needed = int(job.error.split("RAM ")[1].split(" B needed")[0])
    assert needed > 256
    assert build.error == job.error
    _nothing_stored(platform, trained, build)


def test_toolchain_missing_names_the_package(platform, trained, tmp_path, monkeypatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("TINYFORGE_BUILD_PATH", str(empty))  # the build's PATH
    job, build, lines = build_and_wait(trained.client, "cortex-m-firmware", "cortex-m4f-80mhz",
                                       model_id=trained.model_id)
    assert job.status == FAILED
    assert job.error.startswith("FailedPrecondition: ")
    assert "arm-none-eabi-gcc" in job.error and "gcc-arm-none-eabi" in job.error
    assert "make install" in job.error
    _nothing_stored(platform, trained, build)


def test_build_timeout(platform, trained) -> None:
    job, build, _ = build_and_wait(trained.client, "cortex-m-firmware", "cortex-m4f-80mhz",
                                   model_id=trained.model_id, timeout_s=0.5)
    assert job.status == FAILED
    assert job.error.startswith("DeadlineExceeded: ") and "time limit of 0.5 s" in job.error
    assert build.timeout_s == 0.5
    _nothing_stored(platform, trained, build)


def test_cancel_a_running_build(platform, trained) -> None:
    client = trained.client
    resp = client.start_build("cortex-m-firmware", "cortex-m4f-80mhz", model_id=trained.model_id)
    final = None
    for event in client.watch_job(resp.job_id):
        # cancel once the toolchain runs (the child build process is under way)
        if event.HasField("log") and event.log.line.startswith("$ ") and final is None:
            client.cancel_job(resp.job_id)
            final = "requested"
        elif event.HasField("job"):
            last = event.job
    assert final == "requested"
    assert last.status == CANCELLED, last.error
    build = client.get_build(resp.build_id)
    assert "Cancelled" in build.error
    _nothing_stored(platform, trained, build)
