"""Block resource limits (info.resources), registry address rules, and the container setup."""

from __future__ import annotations

import pytest

from tinyforge.blocks.limits import DEFAULT_LIMITS, BlockLimits, limits_from_info
from tinyforge.blocks.manifest import parse_manifest
from tinyforge.errors import InvalidArgument
from tinyforge.workflows.podman import (
    CONTAINERS_CONF_TEXT,
    containers_conf,
    is_loopback_registry,
    registry_host,
)


def test_block_resources_merge_with_caller_limits_and_defaults() -> None:
    req = limits_from_info({"resources": {"memoryMb": 512, "cpus": 1.5, "network": True}})
    assert req == BlockLimits(memory_mb=512, cpus=1.5, network=True)
    eff = req.merged(BlockLimits(memory_mb=128, timeout_s=10)).resolved()
    assert eff == BlockLimits(memory_mb=128, cpus=1.5, pids=DEFAULT_LIMITS.pids, timeout_s=10,
                              network=True)  # fmt: skip
    assert BlockLimits().resolved() == DEFAULT_LIMITS


@pytest.mark.parametrize(
    ("resources", "field", "text"),
    [
        ({"memoryMb": 8}, "info.resources.memoryMb", "16..262144"),
        ({"memoryMb": 100.5}, "info.resources.memoryMb", "int"),
        ({"cpus": "two"}, "info.resources.cpus", "0.1..256"),
        ({"timeoutSeconds": 0}, "info.resources.timeoutSeconds", "1..604800"),
        ({"network": "yes"}, "info.resources.network", "true or false"),
        ({"gpus": 1}, "info.resources.gpus", "unknown resource"),
    ],
)
def test_bad_resources_are_rejected_when_parameters_json_loads(
    resources: dict, field: str, text: str
) -> None:
    doc = {"type": "dsp", "info": {"name": "x", "resources": resources}, "parameters": []}
    with pytest.raises(InvalidArgument) as exc:
        parse_manifest(doc)
    assert exc.value.field == field and text in exc.value.message


def test_caller_limits_are_range_checked() -> None:
    with pytest.raises(InvalidArgument) as exc:
        BlockLimits(cpus=0).resolved()
    assert exc.value.field == "limits.cpus" and "0.1..256 cores" in exc.value.message


def test_registry_rules() -> None:
    assert registry_host("127.0.0.1:5000/tinyforge-blocks/x:1") == "127.0.0.1:5000"
    assert registry_host("localhost/tinyforge-blocks/x:1") == "localhost"
    assert registry_host("tinyforge-blocks/x:1") is None
    for host in ("127.0.0.1:5000", "localhost:5000", "[::1]:5000", "127.3.2.1"):
        assert is_loopback_registry(host), host
    for host in ("registry.example.com:5000", "10.0.0.1:5000", "[2001:db8::1]:443"):
        assert not is_loopback_registry(host), host


def test_containers_conf_is_written_once_and_repaired(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TINYFORGE_CACHE_DIR", str(tmp_path))
    path = containers_conf()
    assert path.read_text() == CONTAINERS_CONF_TEXT and 'runtime = "runc"' in path.read_text()
    mtime = path.stat().st_mtime_ns
    assert containers_conf() == path and path.stat().st_mtime_ns == mtime
    path.write_text('[engine]\nruntime = "crun"\n')
    assert containers_conf().read_text() == CONTAINERS_CONF_TEXT


@pytest.mark.podman
def test_busybox_base_setup_is_idempotent(podman_ready: None) -> None:
    from tinyforge.blocks.containers import ensure_busybox_image
    from tinyforge.workflows.podman import image_exists, podman

    ref = "localhost/tinyforge-test/busybox-idempotent:1"
    podman("rmi", "--force", ref, check=False)
    try:
        assert ensure_busybox_image(ref) == ref and image_exists(ref)
        image_id = podman("image", "inspect", "--format", "{{.Id}}", ref).stdout
        assert ensure_busybox_image(ref) == ref
        assert podman("image", "inspect", "--format", "{{.Id}}", ref).stdout == image_id
        out = podman("run", "--rm", "--network=none", ref, "sh", "-c", "echo $((6*7))")
        assert out.stdout.decode().strip() == "42"
    finally:
        podman("rmi", "--force", ref, check=False)
