"""``tinyforge blocks``: scaffolds run as made, errors are one clear line, ls lists a registry."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tinyforge.blocks.manifest import load_manifest
from tinyforge.cli.main import app


def _invoke(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def test_blocks_help_lists_commands() -> None:
    code, out, _ = _invoke("blocks", "--help")
    assert code == 0
    for cmd in ("init", "build", "push", "ls", "run-local", "setup", "registry", "register",
                "show", "versions", "delete"):
        assert cmd in out
    code, out, _ = _invoke("blocks", "ls", "--help")
    assert "BlockService" in " ".join(out.split())


def test_init_transform_scaffold_runs_locally(tmp_path: Path) -> None:
    code, out, err = _invoke("blocks", "init", "--type", "transform", str(tmp_path / "my-cleaner"))
    assert code == 0, err
    block = tmp_path / "my-cleaner"
    assert sorted(p.name for p in block.iterdir()) == [
        "Dockerfile", "README.md", "main.py", "parameters.json",
    ]  # fmt: skip
    m = load_manifest(block)
    assert m.type == "transform" and m.name == "My cleaner"
    assert (
        "ARG BASE_IMAGE=localhost/tinyforge/block-base:bookworm"
        in (block / "Dockerfile").read_text()
    )
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "s.csv").write_text("1,2\n")
    code, out, err = _invoke(
        "blocks", "run-local", str(block), "--engine", "local", "--type", "transform",
        "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--param", "suffix=.x",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["files"] == ["s.csv.x"]
    assert (tmp_path / "out" / "s.csv.x").read_text() == "1,2\n"
    assert "transformed 1 files" in err  # the block's log is streamed to stderr


def test_init_dsp_and_deploy_scaffolds_run_locally(tmp_path: Path) -> None:
    assert _invoke("blocks", "init", "-t", "dsp", str(tmp_path / "dsp"))[0] == 0
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "X.npy", x)
    code, _, err = _invoke(
        "blocks", "run-local", str(tmp_path / "dsp"), "--in", str(tmp_path / "X.npy"),
        "--out", str(tmp_path / "f"), "-p", "scale=2", "--engine", "local",
    )  # fmt: skip
    assert code == 0, err
    f = np.load(tmp_path / "f" / "features.npy")
    np.testing.assert_allclose(f, np.stack([x.mean(1), x.std(1)], axis=1) * 2, rtol=1e-6)

    assert _invoke("blocks", "init", "-t", "deploy", str(tmp_path / "dep"))[0] == 0
    src = tmp_path / "dep-in"
    src.mkdir()
    (src / "deployment-metadata.json").write_text('{"project": {"name": "demo"}}')
    (src / "model.tflite").write_bytes(b"\0\0\0\0TFL3")
    code, _, err = _invoke(
        "blocks", "run-local", str(tmp_path / "dep"), "--in", str(src),
        "--out", str(tmp_path / "art"), "--engine", "local",
    )  # fmt: skip
    assert code == 0, err
    with zipfile.ZipFile(tmp_path / "art" / "deployment.zip") as zf:
        assert sorted(zf.namelist()) == ["deployment-metadata.json", "model.tflite"]


def test_cli_errors_are_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    code, _, err = _invoke("blocks", "init", "-t", "dsp", str(tmp_path / "taken"))
    assert code == 1 and "already exists and is not empty" in err and "Traceback" not in err
    assert _invoke("blocks", "init", "-t", "dsp", str(tmp_path / "d"))[0] == 0
    np.save(tmp_path / "X.npy", np.zeros((2, 3)))
    base = ["blocks", "run-local", str(tmp_path / "d"), "--in", str(tmp_path / "X.npy")]
    code, _, err = _invoke(*base, "--out", str(tmp_path / "o"), "--type", "learn")
    assert code == 1 and "is a dsp block, not learn" in err
    code, _, err = _invoke(*base, "--out", str(tmp_path / "o"), "-p", "scale")
    assert code == 1 and "is not KEY=VALUE" in err
    code, _, err = _invoke(
        *base, "--out", str(tmp_path / "o"), "-p", "scale=-1", "--engine", "local"
    )
    assert code == 1 and "error [parameters.scale]" in err and "0..1000" in err
    assert not (tmp_path / "o").exists()
    code, _, err = _invoke("blocks", "ls", "--registry", "not a host")
    assert code == 1 and "HOST[:PORT]" in err


def test_ls_lists_an_empty_registry(oci_registry) -> None:
    code, out, err = _invoke("blocks", "ls", "--registry", oci_registry.address)
    assert code == 0, err
    assert out.strip() == f"(no repositories in {oci_registry.address})"


@pytest.mark.parametrize("btype", ["learn"])
def test_learn_scaffold_declares_the_tensorflow_base(tmp_path: Path, btype: str) -> None:
    assert _invoke("blocks", "init", "-t", btype, str(tmp_path / "b"))[0] == 0
    text = (tmp_path / "b" / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=localhost/tinyforge/block-base-tf:bookworm" in text
    assert load_manifest(tmp_path / "b").local_command == ("python3", "main.py")
