"""`tinyforge upload`, `dataset import|ls|summary|export`, `devices ls` against a real server."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.ingest.conftest import envelope
from tinyforge.cli.main import app

runner = CliRunner()


@pytest.fixture
def cli(platform, tenant, tmp_path: Path):  # noqa: ANN001, ANN201
    def run(*args: str) -> Any:
        env = {"TINYFORGE_ADDRESS": platform.address, "TINYFORGE_API_KEY": tenant.admin_key,
               "TINYFORGE_PROJECT_ID": str(tenant.project_id),
               "TINYFORGE_DATA_DIR": str(tmp_path / "cfg")}
        return runner.invoke(app, list(args), env=env)

    return run


def test_upload_ls_summary_export_devices(cli, tenant, tmp_path: Path) -> None:
    files = {}
    for i in range(4):
        p = tmp_path / f"w{i}.json"
        p.write_bytes(envelope([[i, 1], [2, i]], device_name="board-7"))
        files[p.name] = p.read_bytes()
    r = cli("upload", "--category", "training", "--label", "wave",
            *[str(tmp_path / n) for n in files])
    assert r.exit_code == 0, r.output
    assert "uploaded 4 samples (4 training), 0 failed" in r.output
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"{not json")
    r = cli("upload", str(bad), "--json")
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out["uploaded"] == [] and "JSON" in out["failed"][0]["error"]
    r = cli("dataset", "ls", "--json")
    rows = json.loads(r.stdout)
    assert sorted(x["filename"] for x in rows) == sorted(files)
    assert {x["label"] for x in rows} == {"wave"}
    r = cli("dataset", "summary", "--json")
    summary = json.loads(r.stdout)
    assert summary["total_count"] == 4 and summary["labels"][0]["count"] == 4
    assert cli("dataset", "summary").exit_code == 0
    export = tmp_path / "export"
    r = cli("dataset", "export", str(export))
    assert r.exit_code == 0, r.output
    manifest = json.loads((export / "manifest.json").read_text())
    assert len(manifest["samples"]) == 4
    for e in manifest["samples"]:
        data = (export / e["path"]).read_bytes()
        assert data == files[e["filename"]]
        assert hashlib.sha256(data).hexdigest() == e["sha256"]
        assert e["path"].startswith("training/wave/")
    r = cli("devices", "ls", "--json")
    devs = json.loads(r.stdout)
    assert [(d["name"], d["sample_count"]) for d in devs] == [("board-7", 4)]


def test_dataset_import_label_folders_and_yolo(cli, tenant, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for label in ("up", "down"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            (root / label / f"{i}.json").write_bytes(envelope([[i, len(label)]]))
    r = cli("dataset", "import", str(root), "--category", "testing")
    assert r.exit_code == 0, r.output
    r = cli("dataset", "ls", "--json", "--category", "testing")
    assert sorted(x["label"] for x in json.loads(r.stdout)) == ["down"] * 3 + ["up"] * 3
    # YOLO: an image plus a normalised box file and the class list
    yolo = tmp_path / "yolo"
    (yolo / "images").mkdir(parents=True)
    (yolo / "labels").mkdir()
    buf = io.BytesIO()
    Image.new("RGB", (200, 100)).save(buf, "PNG")
    (yolo / "images" / "a.png").write_bytes(buf.getvalue())
    (yolo / "labels" / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n")
    (yolo / "classes.txt").write_text("cat\ndog\n")
    r = cli("dataset", "import", str(yolo), "--format", "yolo", "--json")
    assert r.exit_code == 0, r.output
    sample = json.loads(r.stdout)["uploaded"][0]
    box = sample["bounding_boxes"][0]
    assert box["label"] == "dog"
    assert (box["x"], box["y"], box["width"], box["height"]) == pytest.approx((80, 30, 40, 40))
