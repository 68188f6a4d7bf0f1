"""CLI commands for data acquisition: ``upload``, ``dataset import|ls|summary|export``,
``devices ls``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import typer

from tinyforge.cli.common import (
    JSON_OPTION,
    fail,
    get_client,
    handles_api_errors,
    message_to_dict,
    print_json,
    print_table,
)

dataset_app = typer.Typer(help="The dataset of a project: import, list, summary, export.",
                          no_args_is_help=True)
devices_app = typer.Typer(help="Devices that sent data.", no_args_is_help=True)

PROJECT_OPTION = typer.Option(0, "--project-id", help="Project (0 = the one in client.json).")
WORKERS_OPTION = typer.Option(4, "--workers", min=1, max=32, help="Parallel uploads.")
UPLOADABLE = {".json", ".cbor", ".csv", ".wav", ".jpg", ".jpeg", ".png"}


def _expand(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file()
                              and f.suffix.lower() in UPLOADABLE))
        elif p.is_file():
            out.append(p)
        else:
            fail(f"{p} does not exist")
    return out


def _run_uploads(jobs: list[tuple[str, Callable[[], Any]]], workers: int,
                 json_out: bool) -> tuple[list[Any], list[tuple[str, str]]]:
    """Run upload callables in parallel with a progress bar; (samples, [(name, error)])."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from tinyforge.client import ApiError

    done: list[Any] = []
    errors: list[tuple[str, str]] = []
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), disable=json_out, transient=False) as progress:
        task = progress.add_task("uploading", total=len(jobs))
        with ThreadPoolExecutor(workers) as pool:
            futures = {pool.submit(fn): name for name, fn in jobs}
            for fut in as_completed(futures):
                try:
                    done.append(fut.result())
                except ApiError as exc:
                    errors.append((futures[fut], f"{exc.code}: {exc.message}"))
                except OSError as exc:
                    errors.append((futures[fut], str(exc)))
                progress.advance(task)
    return done, errors


def _report(done: list[Any], errors: list[tuple[str, str]], json_out: bool) -> None:
    if json_out:
        print_json({"uploaded": [message_to_dict(s) for s in sorted(done, key=lambda s: s.id)],
                    "failed": [{"file": n, "error": e} for n, e in errors]})
    else:
        by_cat: dict[str, int] = {}
        for s in done:
            cat = message_to_dict(s)["category"]
            by_cat[cat] = by_cat.get(cat, 0) + 1
        split = ", ".join(f"{n} {c}" for c, n in sorted(by_cat.items()))
        typer.echo(f"uploaded {len(done)} samples" + (f" ({split})" if split else "")
                   + f", {len(errors)} failed")
        for name, err in errors:
            typer.echo(f"  failed: {name}: {err}", err=True)
    if errors:
        raise typer.Exit(1)


@handles_api_errors
def upload(
    paths: list[Path] = typer.Argument(..., help="Files or folders to upload."),
    category: str = typer.Option("split", "--category",
                                 help="training | testing | anomaly | split (by content hash)."),
    label: str = typer.Option(None, "--label", help="Label of every file (default: none)."),
    project_id: int = PROJECT_OPTION,
    disallow_duplicates: bool = typer.Option(False, "--disallow-duplicates",
                                             help="Refuse files already in the project."),
    frequency_hz: float = typer.Option(None, "--frequency", help="Hz of CSVs without time."),
    workers: int = WORKERS_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Upload files (EI JSON/CBOR, CSV, WAV, JPEG, PNG) with a progress bar and a summary."""
    client = get_client()
    files = _expand(paths)
    jobs = [(str(f), lambda f=f: client.upload_file(
        f, project_id=project_id or None, category=category, label=label,
        disallow_duplicates=disallow_duplicates, frequency_hz=frequency_hz,
        upload_source="cli")) for f in files]
    _report(*_run_uploads(jobs, workers, json_out), json_out)


@dataset_app.command("import")
@handles_api_errors
def dataset_import(
    directory: Path = typer.Argument(..., help="Dataset folder."),
    fmt: str = typer.Option("folders", "--format",
                            help="folders (one sub-folder per label) | yolo | coco | har | fsdd"),
    annotations: Path = typer.Option(None, "--annotations",
                                     help="COCO: the instances JSON (default: the only .json)."),
    category: str = typer.Option("split", "--category",
                                 help="Category when the dataset has no split of its own."),
    project_id: int = PROJECT_OPTION,
    workers: int = WORKERS_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Import a dataset folder: labels from sub-folders, or YOLO/COCO boxes."""
    from tinyforge.data import importers
    from tinyforge.errors import TinyForgeError

    try:
        if fmt == "folders":
            items = list(importers.import_label_folders(directory))
        elif fmt == "yolo":
            items = list(importers.import_yolo(directory))
        elif fmt == "coco":
            ann = annotations
            if ann is None:
                found = sorted(directory.glob("*.json"))
                if len(found) != 1:
                    fail(f"found {len(found)} .json files in {directory}; name one with "
                         "--annotations")
                ann = found[0]
            items = list(importers.import_coco(ann, directory))
        elif fmt == "har":
            items = list(importers.import_har_stm32(directory))
        elif fmt == "fsdd":
            items = list(importers.import_fsdd(directory))
        else:
            fail(f"unknown --format {fmt!r}; use folders, yolo, coco, har or fsdd")
    except TinyForgeError as exc:
        fail(f"{exc.code}: {exc.message}")
    client = get_client()
    jobs = [(str(it.path), lambda it=it: client.upload_file(
        it.path, project_id=project_id or None,
        category=str(it.category) if it.category else category, label=it.label,
        bounding_boxes=[b.to_ei() for b in it.bounding_boxes], metadata=it.metadata or None,
        frequency_hz=it.frequency_hz, upload_source="cli-import")) for it in items]
    _report(*_run_uploads(jobs, workers, json_out), json_out)


@dataset_app.command("ls")
@handles_api_errors
def dataset_ls(
    category: str = typer.Option("", "--category", help="training | testing | anomaly."),
    label: str = typer.Option(None, "--label", help="Only this label."),
    search: str = typer.Option("", "--search", help="Substring of the file name."),
    device: str = typer.Option("", "--device", help="Device name or type."),
    limit: int = typer.Option(0, "--limit", help="At most N samples (0 = all)."),
    project_id: int = PROJECT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """List samples, oldest first."""
    rows = get_client().list_samples(project_id or None, category=category, label=label,
                                     search=search, device=device, limit=limit)
    if json_out:
        print_json(rows)
        return
    table = []
    for s in rows:
        d = message_to_dict(s)
        size = f"{s.width}x{s.height}" if s.kind == "image" else f"{s.duration_ms:.0f} ms"
        table.append((s.id, s.filename, d["category"], s.label, s.kind, size, s.device_name))
    print_table("samples", ["id", "file", "category", "label", "kind", "size/duration",
                            "device"], table)


@dataset_app.command("summary")
@handles_api_errors
def dataset_summary(project_id: int = PROJECT_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Counts and total duration per category and label."""
    s = get_client().dataset_summary(project_id or None)
    if json_out:
        print_json(s)
        return
    rows = [(message_to_dict(e)["category"], e.label or "(unlabeled)", e.count,
             f"{e.duration_ms / 1000:.1f}") for e in s.labels]
    rows += [(message_to_dict(e)["category"], "(all)", e.count, f"{e.duration_ms / 1000:.1f}")
             for e in s.categories]
    print_table(f"dataset: {s.total_count} samples, {s.total_duration_ms / 1000:.1f} s",
                ["category", "label", "samples", "seconds"], rows)


@dataset_app.command("export")
@handles_api_errors
def dataset_export(
    out: Path = typer.Argument(..., help="Folder to write (created; must be empty)."),
    category: str = typer.Option("", "--category", help="Only training | testing | anomaly."),
    project_id: int = PROJECT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Export the original files as ``OUT/<category>/<label>/<id>.<name>`` plus
    ``OUT/manifest.json`` (one entry per sample: path, label, boxes, metadata, sha256)."""
    import hashlib

    if out.exists() and any(out.iterdir()):
        fail(f"{out} is not empty")
    client = get_client()
    rows = client.list_samples(project_id or None, category=category)
    entries = []
    for s in rows:
        d = message_to_dict(s)
        rel = Path(d["category"]) / (s.label or "_unlabeled") / f"{s.id}.{s.filename}"
        _, data = client.download_sample(s.id, project_id or None)
        if hashlib.sha256(data).hexdigest() != s.sha256:
            fail(f"sample {s.id}: downloaded bytes do not match its sha256")
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
        entries.append({"path": str(rel), "id": s.id, "filename": s.filename,
                        "category": d["category"], "label": s.label or None,
                        "sha256": s.sha256, "kind": s.kind, "format": s.format,
                        "metadata": dict(s.metadata), "bounding_boxes": d["bounding_boxes"],
                        "structured_labels": d["structured_labels"]})
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"version": 1, "project_id": project_id or client.default_project_id,
                "samples": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if json_out:
        print_json({"exported": len(entries), "path": str(out)})
    else:
        typer.echo(f"exported {len(entries)} samples to {out}")


@devices_app.command("ls")
@handles_api_errors
def devices_ls(project_id: int = PROJECT_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Devices that sent data: name, type, first/last seen, samples."""
    rows = get_client().list_devices(project_id or None)
    if json_out:
        print_json(rows)
        return
    table = []
    for d in rows:
        m = message_to_dict(d)
        table.append((d.id, d.name, d.device_type, m["first_seen"], m["last_seen"],
                      d.sample_count))
    print_table("devices", ["id", "name", "type", "first seen", "last seen", "samples"], table)


def register(app: typer.Typer) -> None:
    app.command("upload")(upload)
    app.add_typer(dataset_app, name="dataset")
    app.add_typer(devices_app, name="devices")
