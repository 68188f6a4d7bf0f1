"""The local runner's S3 artifacts (over a real local object store) and podSpecPatch."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hera.workflows import (
    DAG,
    Container,
    NoneArchiveStrategy,
    Parameter,
    RawArtifact,
    RetryStrategy,
    S3Artifact,
    TarArchiveStrategy,
    WorkflowTemplate,
)

from tinyforge.store.objects import LocalObjectStore
from tinyforge.workflows.artifacts import ArtifactError, ObjectStoreArtifacts
from tinyforge.workflows.executors import LocalProcessExecutor
from tinyforge.workflows.runner import LocalRunner

# Copies every file under argv[1] to argv[2] upper-cased, and lists what it saw.
COPY_UPPER = """
import pathlib, sys
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
files = [src] if src.is_file() else sorted(p for p in src.rglob('*') if p.is_file())
for p in files:
    rel = p.name if src.is_file() else p.relative_to(src).as_posix()
    (dst / rel).parent.mkdir(parents=True, exist_ok=True)
    (dst / rel).write_text(p.read_text().upper())
    print('saw', rel)
"""


@pytest.fixture
def objects(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects", fsync=False)


def _copy_workflow(*, out_archive: Any = None, patch: str | None = None) -> WorkflowTemplate:
    with WorkflowTemplate(
        name="artifacts-copy",
        entrypoint="main",
        arguments=[Parameter(name="src", value="data/in"), Parameter(name="dst", value="data/out")],
    ) as wt:
        copy = Container(
            name="copy",
            image="tinyforge/platform",
            command=[sys.executable, "-c", COPY_UPPER],
            args=["/work/in", "/work/out"],
            inputs=[
                Parameter(name="src"),
                Parameter(name="dst"),
                S3Artifact(name="in", path="/work/in", key="{{inputs.parameters.src}}"),
            ],
            outputs=[
                S3Artifact(
                    name="out",
                    path="/work/out",
                    key="{{inputs.parameters.dst}}",
                    archive=out_archive or NoneArchiveStrategy(),
                )
            ],
            pod_spec_patch=patch,
        )
        with DAG(name="main"):
            copy(
                name="copy",
                arguments={
                    "src": "{{workflow.parameters.src}}",
                    "dst": "{{workflow.parameters.dst}}",
                },
            )
    return wt


def test_prefix_in_and_directory_out_through_the_object_store(
    objects: LocalObjectStore, tmp_path: Path
) -> None:
    objects.put_bytes("data/in/a.txt", b"alpha")
    objects.put_bytes("data/in/sub/b.txt", b"beta")
    objects.put_bytes("data/income.txt", b"not under data/in/")
    lines: list[str] = []
    runner = LocalRunner(artifacts=ObjectStoreArtifacts(objects), work_dir=tmp_path / "w")
    (tmp_path / "w").mkdir()
    run = runner.run(_copy_workflow(), log=lines.append)
    assert run.phase == "Succeeded", run.message + "\n".join(lines)
    assert sorted(i.key for i in objects.list("data/out/")) == [
        "data/out/a.txt",
        "data/out/sub/b.txt",
    ]
    assert objects.get_bytes("data/out/a.txt") == b"ALPHA"
    assert objects.get_bytes("data/out/sub/b.txt") == b"BETA"
    assert "[copy] saw sub/b.txt" in lines
    assert "[copy] output artifact out: 2 file(s) to data/out" in lines
    assert list((tmp_path / "w").iterdir()) == []  # node directories are removed after the run


def test_single_object_key_is_downloaded_as_a_file(objects: LocalObjectStore) -> None:
    objects.put_bytes("one/file.txt", b"single")
    runner = LocalRunner(artifacts=ObjectStoreArtifacts(objects))
    run = runner.run(_copy_workflow(), {"src": "one/file.txt", "dst": "res"})
    assert run.phase == "Succeeded", run.message
    # the artifact path itself is the file, as Argo does for a key holding one object
    assert objects.get_bytes("res/in") == b"SINGLE"


def test_missing_input_fails_the_node_naming_the_key(objects: LocalObjectStore) -> None:
    runner = LocalRunner(artifacts=ObjectStoreArtifacts(objects))
    run = runner.run(_copy_workflow(), {"src": "nothing/here"})
    assert run.phase == "Failed"
    node = run.node("copy")
    assert node.phase == "Error" and node.attempts == 0
    assert "input artifact 'in'" in node.message and "nothing/here" in node.message


def test_unsupported_artifacts_fail_with_a_reason(objects: LocalObjectStore) -> None:
    runner = LocalRunner(artifacts=ObjectStoreArtifacts(objects))
    objects.put_bytes("data/in/a.txt", b"a")
    tar = runner.run(_copy_workflow(out_archive=TarArchiveStrategy()))
    assert tar.phase == "Failed"
    assert "tar archives are not supported" in tar.node("copy").message

    no_store = LocalRunner().run(_copy_workflow())
    assert "has no artifact store" in no_store.node("copy").message

    with WorkflowTemplate(name="raw", entrypoint="main") as wt:
        Container(
            name="main",
            image="tinyforge/platform",
            command=[sys.executable, "-c", "pass"],
            inputs=[RawArtifact(name="r", path="/tmp/r", data="hello")],
        )
    raw = runner.run(wt)
    assert raw.phase == "Failed"
    assert "S3 artifacts located by key only" in raw.root.message


def test_output_file_with_a_name_keys_cannot_hold_fails_naming_it(
    objects: LocalObjectStore,
) -> None:
    objects.put_bytes("data/in/bad name.txt".replace(" ", "_"), b"x")
    with WorkflowTemplate(name="w", entrypoint="main") as wt:
        Container(
            name="main",
            image="tinyforge/platform",
            command=[sys.executable, "-c", "import sys, pathlib; "
                     "(pathlib.Path(sys.argv[1]) / 'a b.txt').write_text('x')"],
            args=["/out"],
            outputs=[S3Artifact(name="o", path="/out", key="res", archive=NoneArchiveStrategy())],
        )  # fmt: skip
    run = LocalRunner(artifacts=ObjectStoreArtifacts(objects)).run(wt)
    assert run.phase == "Failed"
    assert run.root.phase == "Error"
    assert "output artifact 'o'" in run.root.message and "'a b.txt'" in run.root.message
    assert list(objects.list("res/")) == []


def test_pod_spec_patch_replaces_args_and_deadline(objects: LocalObjectStore) -> None:
    objects.put_bytes("data/in/a.txt", b"patched")
    wt = _copy_workflow(patch="{{workflow.parameters.patch}}")
    wt.arguments.append(Parameter(name="patch", value="{}"))
    runner = LocalRunner(artifacts=ObjectStoreArtifacts(objects))
    # The patch's args replace the template's (here: swap in another output sub-folder).
    patch = {"containers": [{"name": "main", "args": ["/work/in", "/work/out/x"]}]}
    run = runner.run(wt, {"patch": json.dumps(patch)})
    assert run.phase == "Succeeded", run.message
    assert objects.get_bytes("data/out/x/a.txt") == b"PATCHED"

    slow = {
        "containers": [{"name": "main", "command": [sys.executable, "-c",
                                                    "import time; time.sleep(30)"]}],
        "activeDeadlineSeconds": 1,
    }  # fmt: skip
    t0 = time.monotonic()
    run = runner.run(wt, {"patch": json.dumps(slow), "dst": "data/slow"})
    assert run.phase == "Failed"
    assert "deadline of 1 s" in run.node("copy").message
    assert time.monotonic() - t0 < 20
    bad = runner.run(wt, {"patch": "{not json"})
    assert "podSpecPatch" in bad.node("copy").message


class _Recording:
    """Records what a step executor is handed, then runs the step on the host."""

    mounts_natively = True

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], dict[str, Path]]] = []

    def run(self, command: list[str], **kw: Any) -> Any:
        self.calls.append((list(command), dict(kw["mounts"])))
        return LocalProcessExecutor().run([sys.executable, "-c", "pass"], **kw)


def test_mounting_executors_get_container_paths_and_mounts(
    objects: LocalObjectStore, tmp_path: Path
) -> None:
    objects.put_bytes("data/in/a.txt", b"a")
    rec = _Recording()
    run = LocalRunner(
        artifacts=ObjectStoreArtifacts(objects),
        executor_for_image=lambda _i: rec,
        work_dir=tmp_path,
    ).run(_copy_workflow())
    assert run.phase == "Succeeded", run.message
    ((argv, mounts),) = rec.calls
    assert argv[-2:] == ["/work/in", "/work/out"]  # unchanged: the executor mounts them
    assert set(mounts) == {"/work/in", "/work/out"}
    assert mounts["/work/in"].name == "in" and mounts["/work/in"].is_relative_to(tmp_path)


def test_object_store_artifacts_roundtrip(objects: LocalObjectStore, tmp_path: Path) -> None:
    store = ObjectStoreArtifacts(objects)
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "x.bin").write_bytes(b"\x00\x01")
    (src / "y.txt").write_text("y")
    assert store.store(src, "k/") == 2
    assert store.fetch("k", tmp_path / "back") == 2
    assert (tmp_path / "back" / "d" / "x.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(ArtifactError, match="none under 'nope/'"):
        store.fetch("nope", tmp_path / "none")


def test_a_retried_step_uploads_only_its_last_attempts_output(
    objects: LocalObjectStore, tmp_path: Path
) -> None:
    counter = tmp_path / "attempts"
    script = (
        "import pathlib, sys\n"
        f"c = pathlib.Path({str(counter)!r}); n = int(c.read_text()) if c.exists() else 0\n"
        "c.write_text(str(n + 1)); out = pathlib.Path(sys.argv[1])\n"
        "(out / ('partial.txt' if n == 0 else 'final.txt')).write_text(str(n))\n"
        "sys.exit(1 if n == 0 else 0)\n"
    )
    with WorkflowTemplate(name="retry", entrypoint="main") as wt:
        Container(
            name="main",
            image="tinyforge/platform",
            command=[sys.executable, "-c", script],
            args=["/out"],
            outputs=[S3Artifact(name="o", path="/out", key="res", archive=NoneArchiveStrategy())],
            retry_strategy=RetryStrategy(limit="1"),
        )
    run = LocalRunner(artifacts=ObjectStoreArtifacts(objects)).run(wt)
    assert run.phase == "Succeeded", run.message
    assert run.root.attempts == 2
    assert [i.key for i in objects.list("res/")] == ["res/final.txt"]
