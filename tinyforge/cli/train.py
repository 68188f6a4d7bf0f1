"""CLI commands for training and models: ``train``, ``test``, ``classify`` and
``models ls|show|download``."""

from __future__ import annotations

import json
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

models_app = typer.Typer(help="Trained models: list, show, download files.",
                         no_args_is_help=True)
PROJECT_OPTION = typer.Option(0, "--project-id", help="Project (0 = the one in client.json).")
MODEL_OPTION = typer.Option(0, "--model", "-m", help="Model id (0 = the newest model).")


def _pid(project_id: int) -> int | None:
    return project_id or None


def _pick_impulse(client: Any, impulse_id: int, project_id: int | None) -> int:
    if impulse_id:
        return impulse_id
    rows = client.list_impulses(project_id)
    if len(rows) != 1:
        names = ", ".join(f"{r.impulse_id} ({r.name})" for r in rows) or "none"
        fail(f"the project has {len(rows)} impulses ({names}): choose one with --impulse ID")
    return rows[0].impulse_id


def _pick_model(client: Any, model_id: int, project_id: int | None) -> int:
    if model_id:
        return model_id
    rows = client.list_models(project_id=project_id)
    if not rows:
        fail("the project has no trained model yet: run `tinyforge train` first")
    return rows[0].id


def _model_dict(m: Any) -> dict[str, Any]:
    d = message_to_dict(m)
    for k in ("params_json", "options_json", "metrics_json"):
        d[k.removesuffix("_json")] = json.loads(d.pop(k) or "{}")
    d["float_accuracy"] = m.float_accuracy if m.HasField("float_accuracy") else None
    d["int8_accuracy"] = m.int8_accuracy if m.HasField("int8_accuracy") else None
    return d


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _summary(m: Any) -> None:
    d = _model_dict(m)
    typer.echo(f"model {m.id}: {m.learn_block} ({m.block_type}, {m.task}) from impulse "
               f"{m.impulse_id} v{m.impulse_version}")
    typer.echo(f"  labels:        {', '.join(m.labels) or '-'}")
    typer.echo(f"  features:      {'x'.join(map(str, m.feature_shape))} ({m.feature_kind}) "
               f"from {', '.join(m.input_blocks)}")
    typer.echo(f"  validation:    float {_pct(d['float_accuracy'])}, int8 "
               f"{_pct(d['int8_accuracy'])}")
    if m.int8_bytes or m.float32_bytes:
        sizes = [f"{form} {n} bytes" for form, n in (("int8", m.int8_bytes),
                                                      ("float32", m.float32_bytes)) if n]
        typer.echo(f"  size:          {', '.join(sizes)}")
    custom = (d.get("metrics", {}).get("extra") or {}).get("custom_block")
    if custom:  # a registered custom learn block: which version ran, which forms it gave
        typer.echo(f"  custom block:  {custom['name']} v{custom['version']} "
                   f"({custom['engine']}), forms {', '.join(custom['forms']) or '-'}"
                   + (f", missing {', '.join(custom['missing'])}" if custom["missing"] else ""))
        for note in custom.get("notes", []):
            typer.echo(f"  note:          {note}")
    typer.echo(f"  dataset hash:  {m.dataset_hash}")
    typer.echo(f"  code version:  {m.code_version}")
    typer.echo(f"  files:         {', '.join(f.name for f in m.files)}")


@handles_api_errors
def train_cmd(
    impulse_id: int = typer.Option(0, "--impulse", "-i",
                                   help="Impulse (default: the project's only impulse)."),
    version: int = typer.Option(0, "--version", "-v", help="Impulse version (0 = latest)."),
    learn_block: str = typer.Option("", "--block", "-b",
                                    help="Learning block name (default: the first)."),
    epochs: int = typer.Option(None, "--epochs", help="Training epochs (default 30)."),
    learning_rate: float = typer.Option(None, "--learning-rate", help="Default 0.005."),
    batch_size: int = typer.Option(None, "--batch-size", help="Default 32."),
    seed: int = typer.Option(None, "--seed", help="Random seed (default 0)."),
    early_stopping: bool = typer.Option(None, "--early-stopping/--no-early-stopping",
                                        help="Stop when validation loss stops improving."),
    validation_fraction: float = typer.Option(None, "--validation-fraction",
                                              help="Share of training samples for validation "
                                                   "(default 0.2)."),
    params: str = typer.Option(None, "--params", help="Learning block params (JSON) "
                                                      "overriding the impulse's."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the job: progress and "
                                                             "metrics per epoch."),
    project_id: int = PROJECT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Train a learning block of an impulse on its generated features (a job).

    Shows each epoch's metrics live; at the end, the model with its validation accuracy
    (float32 and int8). Exit code 1 when the job fails (its reason is printed).
    """
    from tinyforge.cli.jobs import jobs_watch

    client = get_client()
    pid = _pid(project_id)
    parsed = None
    if params is not None:
        try:
            parsed = json.loads(params)
        except ValueError as exc:
            fail(f"--params is not valid JSON: {exc}")
    iid = _pick_impulse(client, impulse_id, pid)
    resp = client.start_training(
        iid, version, learn_block=learn_block, epochs=epochs, learning_rate=learning_rate,
        batch_size=batch_size, seed=seed, early_stopping=early_stopping,
        validation_fraction=validation_fraction, params=parsed, project_id=pid)
    if not wait:
        if json_out:
            print_json({"job_id": resp.job_id, "version": resp.version,
                        "learn_block": resp.learn_block})
        else:
            typer.echo(f"job {resp.job_id}: training {resp.learn_block!r} of impulse {iid} "
                       f"v{resp.version}")
        return
    if not json_out:
        typer.echo(f"job {resp.job_id}: training {resp.learn_block!r} of impulse {iid} "
                   f"v{resp.version}")
        jobs_watch(resp.job_id, from_offset=0, json_out=False)
    else:
        job = client.wait_job(resp.job_id)
        if message_to_dict(job)["status"] != "succeeded":
            print_json({"job_id": resp.job_id, "error": job.error})
            raise typer.Exit(1)
    from google.protobuf.json_format import MessageToDict

    result = MessageToDict(client.get_job(resp.job_id).result)
    model = client.get_model(int(result["model_id"]), project_id=pid)
    if json_out:
        print_json(_model_dict(model))
    else:
        _summary(model)


@handles_api_errors
def test_cmd(
    model_id: int = MODEL_OPTION,
    threshold: float = typer.Option(None, "--threshold",
                                    help="Minimum confidence (default 0.6); below = uncertain."),
    png: Path = typer.Option(None, "--png", help="Write the plots (PNG) into this directory."),
    anomaly_label: list[str] = typer.Option([], "--anomaly-label",
                                            help="Anomaly models: labels that are anomalous."),
    project_id: int = PROJECT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Test a model on the testing data (a job): accuracy of float32 and int8, confusion
    matrix, per-class metrics; --png saves the plots."""
    from tinyforge.cli.jobs import jobs_watch

    client = get_client()
    pid = _pid(project_id)
    mid = _pick_model(client, model_id, pid)
    resp = client.test_model(mid, threshold=threshold, anomaly_labels=anomaly_label or None,
                             project_id=pid)
    if json_out:
        job = client.wait_job(resp.job_id)
        if message_to_dict(job)["status"] != "succeeded":
            print_json({"job_id": resp.job_id, "error": job.error})
            raise typer.Exit(1)
    else:
        typer.echo(f"job {resp.job_id}: testing model {mid}")
        jobs_watch(resp.job_id, from_offset=0, json_out=False)
    tr = client.get_test_result(mid, project_id=pid)
    written = []
    if png is not None:
        png.mkdir(parents=True, exist_ok=True)
        for name in tr.plots:
            data = client.download_model_file(mid, f"tests/{tr.test_id}/{name}", project_id=pid)
            path = png / f"model{mid}_test{tr.test_id}_{name}"
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)
            written.append(str(path))
    if json_out:
        d = message_to_dict(tr)
        d["summary"] = json.loads(d.pop("summary_json") or "{}")
        d.pop("results_json", None)
        d["png_files"] = written
        print_json(d)
        return
    for f in tr.forms:
        line = f"{f.form:>5}: accuracy {f.accuracy * 100:.1f}%"
        if f.HasField("roc_auc"):
            line += f", ROC-AUC {f.roc_auc:.3f}"
        if f.uncertain:
            line += f", {f.uncertain} uncertain"
        typer.echo(line)
    if tr.HasField("accuracy_difference"):
        typer.echo(f"int8 - float: {tr.accuracy_difference:+.2f} points "
                   f"(threshold {tr.threshold:g}, {tr.windows} windows)")
    for f in tr.forms:
        if f.per_class:
            print_table(f"per class ({f.form})", ["label", "precision", "recall", "f1",
                                                  "support"],
                        [(c.label, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}",
                          c.support) for c in f.per_class])
            break
    for p in written:
        typer.echo(f"wrote {p}")


@handles_api_errors
def classify_cmd(
    file: Path = typer.Argument(..., help="A sample file (EI JSON/CBOR, CSV, WAV, PNG/JPEG)."),
    model_id: int = MODEL_OPTION,
    use_float: bool = typer.Option(False, "--float", help="Run the float32 model, not int8."),
    frequency_hz: float = typer.Option(0.0, "--frequency",
                                       help="Sampling rate of a CSV without timestamps."),
    project_id: int = PROJECT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Classify a file with a model: the impulse's DSP then the model, scores per window."""
    client = get_client()
    pid = _pid(project_id)
    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc}")
    mid = _pick_model(client, model_id, pid)
    r = client.classify(mid, data, filename=file.name, frequency_hz=frequency_hz,
                        use_float=use_float, project_id=pid)
    if json_out:
        print_json(r)
        return
    if r.task == "classification":
        typer.echo(f"{r.label} ({r.confidence * 100:.1f}%) — model {mid} ({r.form}), "
                   f"{len(r.windows)} window(s)")
        typer.echo("  " + ", ".join(f"{lab} {s:.3f}" for lab, s in zip(r.labels, r.scores,
                                                                        strict=True)))
    elif r.HasField("anomaly_score"):
        flag = "" if not r.HasField("anomalous") else (" ANOMALOUS" if r.anomalous
                                                        else " normal")
        typer.echo(f"anomaly score {r.anomaly_score:.3f}{flag} — model {mid}, "
                   f"{len(r.windows)} window(s)")
    else:
        typer.echo(f"outputs {', '.join(f'{s:.4f}' for s in r.scores)} — model {mid}")
    typer.echo(f"  timing: DSP {r.dsp_ms:.2f} ms, inference {r.inference_ms:.2f} ms "
               f"({r.feature_count} features per window)")


@models_app.command("ls")
@handles_api_errors
def models_ls(impulse_id: int = typer.Option(0, "--impulse", "-i", help="Only this impulse."),
              project_id: int = PROJECT_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Trained models of the project, newest first."""
    rows = get_client().list_models(impulse_id, project_id=_pid(project_id))
    if json_out:
        print_json([_model_dict(r) for r in rows])
        return
    print_table("models", ["id", "impulse", "block", "type", "float", "int8", "int8 bytes"],
                [(r.id, f"{r.impulse_id} v{r.impulse_version}", r.learn_block, r.block_type,
                  _pct(r.float_accuracy if r.HasField("float_accuracy") else None),
                  _pct(r.int8_accuracy if r.HasField("int8_accuracy") else None),
                  r.int8_bytes or "-") for r in rows])


@models_app.command("show")
@handles_api_errors
def models_show(model_id: int, project_id: int = PROJECT_OPTION,
                json_out: bool = JSON_OPTION) -> None:
    """One model: impulse version, labels, validation accuracy, dataset hash, files."""
    m = get_client().get_model(model_id, project_id=_pid(project_id))
    if json_out:
        print_json(_model_dict(m))
    else:
        _summary(m)


@models_app.command("download")
@handles_api_errors
def models_download(
    model_id: int,
    file: list[str] = typer.Option([], "--file", "-f",
                                   help="File name (repeatable; default: every file)."),
    out: Path = typer.Option(Path("."), "--out", "-o", help="Directory to write into."),
    project_id: int = PROJECT_OPTION,
) -> None:
    """Download model files (int8 / float32 .tflite, Keras model, metadata, plots)."""
    client = get_client()
    pid = _pid(project_id)
    names = file or [f.name for f in client.get_model(model_id, project_id=pid).files]
    for name in names:
        data = client.download_model_file(model_id, name, project_id=pid)
        path = out / f"model-{model_id}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        typer.echo(f"wrote {path} ({len(data)} bytes)")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("train")(train_cmd)
    app.command("test")(test_cmd)
    app.command("classify")(classify_cmd)
    app.add_typer(models_app, name="models")
