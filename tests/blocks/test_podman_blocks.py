"""Blocks as real podman containers (busybox base, so each run takes about a second).

Isolation (no network, read-only input), limits (time, memory) and failures (non-zero exit, no
output, missing image) are observed on actual containers; the container never outlives its run
and nothing is published on failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.blocks.conftest import make_block
from tinyforge.blocks.errors import (
    BlockFailed,
    BlockImageNotFound,
    BlockOutOfMemory,
    BlockTimedOut,
)
from tinyforge.blocks.limits import BlockLimits
from tinyforge.blocks.run import run_block

pytestmark = pytest.mark.podman

SCRIPT = r"""#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in
    --in-directory) IN=$2; shift 2 ;;
    --out-directory) OUT=$2; shift 2 ;;
    --mode) MODE=$2; shift 2 ;;
    *) echo "unexpected argument $1" >&2; exit 2 ;;
  esac
done
case "$MODE" in
  ok) cp -r "$IN"/. "$OUT"/; ls /sys/class/net > "$OUT/net.txt"; echo "copied" ;;
  fail)
    echo partial > "$OUT/partial.txt"; echo "reading $IN"
    echo "fatal: bad header" >&2; exit 4 ;;
  silent) echo "nothing to do" ;;
  sleep) echo "sleeping"; sleep 120 ;;
  oom) echo "allocating"; x=$(head -c 200000000 /dev/zero | tr '\0' a); echo "survived" ;;
  write-input)
    if echo x > "$IN/evil.txt" 2>/dev/null; then r=input-writable; else r=input-read-only; fi
    echo "$r" > "$OUT/result.txt" ;;
esac
"""

DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY main.sh /main.sh
ENTRYPOINT ["/bin/sh", "/main.sh"]
"""

MODES = ["ok", "fail", "silent", "sleep", "oom", "write-input"]


@pytest.fixture(scope="module")
def shell_block(tmp_path_factory: pytest.TempPathFactory, busybox_image: str) -> Path:
    """A transform block image whose behaviour is chosen by its ``mode`` parameter."""
    from tinyforge.blocks.images import build_block_image

    root = make_block(
        tmp_path_factory.mktemp("shell") / "block",
        "raise SystemExit('container only')",
        name="TinyForge test shell block",
        params=[{"param": "mode", "name": "Mode", "type": "select", "value": "ok", "valid": MODES}],
        dockerfile=DOCKERFILE,
    )
    (root / "main.sh").write_text(SCRIPT)
    build_block_image(root, base_image=busybox_image)
    return root


def _input(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    (d / "a.csv").write_text("1,2,3\n")
    (d / "sub" / "b.csv").write_text("4,5,6\n")
    return d


def _containers() -> list[str]:
    from tinyforge.workflows.podman import podman

    out = podman("ps", "-a", "--format", "{{.Names}}").stdout.decode().split()
    return [n for n in out if n.startswith("tinyforge-")]


def _nothing_published(tmp_path: Path) -> bool:
    return not (tmp_path / "out").exists() and not [
        p for p in tmp_path.iterdir() if ".partial-" in p.name
    ]


def test_container_gets_input_read_only_output_writable_no_network(
    shell_block: Path, tmp_path: Path
) -> None:
    src = _input(tmp_path)
    res = run_block(shell_block, src, tmp_path / "out", engine="podman")
    assert res.engine == "podman" and res.image.startswith("localhost/tinyforge-blocks/")
    assert (tmp_path / "out" / "sub" / "b.csv").read_text() == "4,5,6\n"
    assert (tmp_path / "out" / "net.txt").read_text().split() == ["lo"]  # --network=none
    res = run_block(
        shell_block, src, tmp_path / "out2", params={"mode": "write-input"}, engine="podman"
    )
    assert (tmp_path / "out2" / "result.txt").read_text().strip() == "input-read-only"
    assert not (src / "evil.txt").exists()
    assert _containers() == []


def test_container_nonzero_exit_reports_log_tail(shell_block: Path, tmp_path: Path) -> None:
    with pytest.raises(BlockFailed) as exc:
        run_block(shell_block, _input(tmp_path), tmp_path / "out", params={"mode": "fail"})
    assert "exited with code 4" in exc.value.message
    assert exc.value.log_tail == ["reading /block/in", "fatal: bad header"]
    assert _nothing_published(tmp_path) and _containers() == []


def test_container_without_output_fails(shell_block: Path, tmp_path: Path) -> None:
    with pytest.raises(BlockFailed, match="wrote no output") as exc:
        run_block(shell_block, _input(tmp_path), tmp_path / "out", params={"mode": "silent"})
    assert exc.value.log_tail == ["nothing to do"]
    assert _nothing_published(tmp_path)


def test_container_time_limit_kills_and_removes_it(shell_block: Path, tmp_path: Path) -> None:
    with pytest.raises(BlockTimedOut, match="time limit of 2 s") as exc:
        run_block(
            shell_block, _input(tmp_path), tmp_path / "out",
            params={"mode": "sleep"}, limits=BlockLimits(timeout_s=2),
        )  # fmt: skip
    assert exc.value.log_tail == ["sleeping"]
    assert _nothing_published(tmp_path) and _containers() == []


def test_container_memory_limit_is_reported(shell_block: Path, tmp_path: Path) -> None:
    with pytest.raises(BlockOutOfMemory) as exc:
        run_block(
            shell_block, _input(tmp_path), tmp_path / "out",
            params={"mode": "oom"}, limits=BlockLimits(memory_mb=32),
        )  # fmt: skip
    assert "exceeded its memory limit of 32 MiB" in exc.value.message
    assert exc.value.log_tail[0] == "allocating" and "survived" not in exc.value.log_tail
    assert _nothing_published(tmp_path) and _containers() == []
    # The same block copying files within the same limit is not reported as OOM.
    src = tmp_path / "in"
    res = run_block(shell_block, src, tmp_path / "out", limits=BlockLimits(memory_mb=32))
    assert res.limits.memory_mb == 32 and "a.csv" in res.files


def test_missing_image_is_a_clear_not_found(
    shell_block: Path, tmp_path: Path, busybox_image: str
) -> None:
    src = _input(tmp_path)
    # An image reference with no registry and not in local storage.
    with pytest.raises(BlockImageNotFound, match="not in local storage"):
        run_block("localhost/tinyforge-blocks/never-built:1", src, tmp_path / "out")
    # A registry reference nobody serves: the pull fails, named in the message.
    with pytest.raises(BlockImageNotFound, match="pulling it failed"):
        run_block("127.0.0.1:9/tinyforge-blocks/nothing:1", src, tmp_path / "out")
    # A block directory whose image was never built, run with the podman engine.
    unbuilt = make_block(tmp_path / "unbuilt", "print()", name="TinyForge never built block")
    with pytest.raises(BlockImageNotFound, match="never-built-block:latest"):
        run_block(unbuilt, src, tmp_path / "out", engine="podman")
    assert _nothing_published(tmp_path)


def test_cancelling_a_container_run_kills_and_removes_it(shell_block: Path, tmp_path: Path) -> None:
    import threading

    from tinyforge.blocks.errors import BlockCancelled

    started = threading.Event()
    with pytest.raises(BlockCancelled):
        run_block(
            shell_block, _input(tmp_path), tmp_path / "out", params={"mode": "sleep"},
            log=lambda line: line == "sleeping" and started.set(), cancelled=started.is_set,
        )  # fmt: skip
    assert _nothing_published(tmp_path) and _containers() == []
