"""Model testing over the testing category (the TestModel job body).

:func:`test_model` makes sure the features of the model's impulse version cover the current
dataset (generating them, incrementally, when they are missing or older than the data), runs
the model's float and int8 forms over the testing windows (classification / regression) or
the testing + anomaly windows (anomaly blocks: windows of the ``anomaly`` category and of the
``anomaly_labels`` count as anomalous), and stores a test run: per-window and per-sample
results, summary, PNG plots — all-or-nothing like the model itself (:mod:`.store`).

Per-sample results average a sample's window scores (classification) and apply the same
confidence threshold ("uncertain" below it), as a device classifying the whole recording would.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from tinyforge.errors import FailedPrecondition, InvalidArgument, TinyForgeError
from tinyforge.evaluation.testing import DEFAULT_THRESHOLD
from tinyforge.features.generate import _dataset_hash, dataset_samples, generate_features
from tinyforge.features.store import read_manifest
from tinyforge.impulse import Impulse
from tinyforge.jobs.reporter import QuietReporter, Reporter
from tinyforge.store.db import Database
from tinyforge.store.models import ModelTestRun
from tinyforge.store.objects import ObjectStore
from tinyforge.training import dataset as ds
from tinyforge.training.forms import evaluate_forms, missing_forms
from tinyforge.training.store import (
    PENDING,
    READY,
    get_model_row,
    load_model_files,
    test_prefix,
)
from tinyforge.training.train import _json_default

SUMMARY_FILE = "summary.json"
RESULTS_FILE = "results.json"


class _Scaled:
    """A reporter mapping a sub-task's progress 0..1 onto ``lo..hi`` of the job."""

    def __init__(self, rep: Reporter, lo: float, hi: float) -> None:
        self.rep, self.lo, self.hi = rep, lo, hi

    def log(self, line: str) -> None:
        self.rep.log(line)

    def progress(self, fraction: float, message: str = "") -> None:
        self.rep.progress(self.lo + (self.hi - self.lo) * fraction, message)

    def check_cancelled(self) -> None:
        self.rep.check_cancelled()


def ensure_features(db: Database, objects: ObjectStore, project_id: int, impulse_id: int,
                    version: int, blocks: list[str], rep: Reporter) -> bool:
    """Generate the features of an impulse version when missing or made from an older
    dataset (incremental: unchanged samples come from the cache). True when generated."""
    current = _dataset_hash(dataset_samples(db, objects, project_id))
    reason = ""
    for b in blocks:
        try:
            m = read_manifest(objects, project_id, impulse_id, version, b)
        except FailedPrecondition:
            reason = f"no features of block {b!r} for impulse {impulse_id} v{version}"
            break
        if m.get("dataset_hash") != current:
            reason = "the dataset changed since the features were generated"
            break
    if not reason:
        return False
    rep.log(f"{reason}: generating features of impulse {impulse_id} v{version}")
    generate_features(db, objects, project_id, impulse_id, version,
                      reporter=_Scaled(rep, 0.02, 0.4))
    return True


def test_model(db: Database, objects: ObjectStore, project_id: int, model_id: int, *,
               threshold: float = DEFAULT_THRESHOLD, anomaly_labels: list[str] | None = None,
               reporter: Reporter | None = None, job_id: int | None = None) -> dict[str, Any]:
    """Test a model on the testing category and store the run; returns its summary (with
    ``test_id``). FailedPrecondition: no testing data, labels the model was not trained on."""
    rep: Reporter = reporter or QuietReporter()
    if not (isinstance(threshold, int | float) and 0.0 <= threshold <= 1.0):
        raise InvalidArgument(f"threshold must be in 0..1, got {threshold!r}", field="threshold")
    with db.session() as s:
        row = get_model_row(s, project_id, model_id)
        impulse_id, version, inputs = row.impulse_id, row.impulse_version, list(row.input_blocks)
        task, learn_block = row.task, row.learn_block
    rep.progress(0.01, "checking features")
    ensure_features(db, objects, project_id, impulse_id, version, inputs, rep)
    mf = load_model_files(objects, project_id, model_id)
    impulse = Impulse.from_dict(mf.metadata["impulse"])
    lb = ds.learning_block(impulse, learn_block, impulse_id, version)
    feats = ds.load_block_features(db, objects, project_id, impulse_id, version, impulse, lb)
    rep.progress(0.45, "running the model on the testing data")
    if task == "anomaly":
        sel = np.flatnonzero(feats.mask("testing", "anomaly"))
    else:
        sel = np.flatnonzero(feats.mask("testing")
                             & np.array([lab is not None for lab in feats.labels], dtype=bool))
    if sel.size == 0:
        raise FailedPrecondition(
            "no testing data: the project has no labelled windows in the testing category"
            + (" (or anomaly category)" if task == "anomaly" else "")
            + "; upload testing data or move samples to testing", field="dataset")
    X, sids, widx = feats.X[sel], feats.sample_ids[sel], feats.window_index[sel]
    ds.check_finite(X, sids, widx, "testing")
    labels = [feats.labels[i] for i in sel.tolist()]
    if task == "classification":
        known = set(mf.labels)
        unknown: dict[str, set[int]] = {}
        for lab, sid in zip(labels, sids.tolist(), strict=True):
            if lab not in known:
                unknown.setdefault(lab, set()).add(int(sid))  # type: ignore[arg-type]
        if unknown:
            parts = [f"{lab!r} (samples {', '.join(map(str, sorted(ids)[:5]))}"
                     f"{', ...' if len(ids) > 5 else ''})" for lab, ids in sorted(unknown.items())]
            raise FailedPrecondition(
                f"the testing set has label(s) the model was not trained on: {'; '.join(parts)}"
                f"; model {model_id} knows {', '.join(mf.labels)}: train again with these "
                "labels or move those samples out of testing", field="labels")
        y: Any = np.array(labels, dtype=str)
    elif task == "regression":
        try:
            y = np.array([float(v) for v in labels], np.float32)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidArgument("regression testing needs numeric labels", field="labels") \
                from None
    else:
        extra = set(anomaly_labels or [])
        is_anom = (feats.category[sel] == "anomaly") | np.isin(np.array(labels, dtype=object),
                                                              list(extra))
        y = is_anom
    trained = mf.trained()
    ids = [f"{s}:{w}" for s, w in zip(sids.tolist(), widx.tolist(), strict=True)]
    try:
        report = evaluate_forms(trained, X, y, float32=mf.float32, int8=mf.int8,
                                threshold=float(threshold), sample_ids=ids, with_plots=True)
    except TinyForgeError as exc:
        raise type(exc)(f"testing model {model_id}: {exc.message}", field=exc.field) from None
    rep.progress(0.85, "storing the test results")
    per_sample = _per_sample(report, sids, task, mf.labels, float(threshold))
    summary = {
        "model_id": model_id, "task": task, "threshold": float(threshold),
        "windows": int(len(sel)), "samples": len(per_sample),
        "forms": report.forms,
        "accuracy_difference": report.accuracy_difference,
        "sample_accuracy": _sample_accuracy(per_sample, task),
        "dataset_hash": ds.dataset_hash(db, project_id, sids),
    }
    missing = missing_forms(mf.metadata)
    if missing:  # a custom block's model with one TFLite form: say which one is not tested
        summary["missing_forms"] = missing
        rep.log(f"model {model_id} has no {' / '.join(missing)} form: tested "
                f"{', '.join(report.forms)} only")
    for form in ("float", "int8"):
        f = report.forms.get(form, {})
        if "accuracy" in f:
            summary[f"{form}_accuracy"] = f["accuracy"]
        if "roc_auc" in f:
            summary[f"{form}_roc_auc"] = f["roc_auc"]
    results = {"windows": report.samples, "samples": per_sample}
    plots = {name: png for name, png in report.plots.items() if name != "training_curves"}
    test_id = _store(db, objects, project_id, model_id, summary, results, plots,
                     float(threshold), job_id)
    summary["test_id"] = test_id
    line = ", ".join(f"{k} {v:.4f}" for k, v in summary.items()
                     if k.endswith(("_accuracy", "_roc_auc")) and isinstance(v, float))
    rep.log(f"test run {test_id} of model {model_id}: {len(sel)} windows from "
            f"{len(per_sample)} samples; {line}")
    return {k: v for k, v in summary.items() if k != "forms"} | {"test_id": test_id}


def _per_sample(report: Any, sids: np.ndarray, task: str, labels: list[str],
                threshold: float) -> list[dict[str, Any]]:
    """Window results grouped by sample (see the module docstring)."""
    groups: dict[int, list[int]] = {}
    for i, sid in enumerate(sids.tolist()):
        groups.setdefault(int(sid), []).append(i)
    out = []
    for sid, rows in groups.items():
        win = [report.samples[i] for i in rows]
        item: dict[str, Any] = {"sample_id": sid, "windows": len(rows)}
        if task == "classification":
            item["label"] = win[0]["label"]
            for form in ("float", "int8"):
                if form not in win[0]:
                    continue
                mean = np.mean([w[form]["scores"] for w in win], axis=0)
                top = int(mean.argmax())
                pred = labels[top] if mean[top] >= threshold else "uncertain"
                correct_w = sum(w[form]["predicted"] == w["label"] for w in win)
                item[form] = {"predicted": pred, "confidence": float(mean[top]),
                              "scores": [float(v) for v in mean],
                              "windows_correct": int(correct_w),
                              "correct": pred == item["label"]}
        elif task == "anomaly":
            scores = [w["score"] for w in win]
            item.update(anomalous=bool(win[0]["anomalous"]), mean_score=float(np.mean(scores)),
                        max_score=float(np.max(scores)),
                        windows_flagged=int(sum(w["flagged"] for w in win)))
        else:
            item["target"] = win[0]["target"]
            form = "float" if "float" in win[0] else "int8"  # int8-only custom models
            item[form] = np.mean([w[form] for w in win], axis=0).tolist()
        out.append(item)
    return out


def _sample_accuracy(per_sample: list[dict[str, Any]], task: str) -> dict[str, float]:
    if task != "classification" or not per_sample:
        return {}
    return {form: float(np.mean([p[form]["correct"] for p in per_sample]))
            for form in ("float", "int8") if form in per_sample[0]}


def _store(db: Database, objects: ObjectStore, project_id: int, model_id: int,
           summary: dict[str, Any], results: dict[str, Any], plots: dict[str, bytes],
           threshold: float, job_id: int | None) -> int:
    with db.session() as s:
        row = ModelTestRun(project_id=project_id, model_id=model_id, state=PENDING,
                           threshold=threshold, job_id=job_id,
                           dataset_hash=summary["dataset_hash"])
        s.add(row)
        s.flush()
        test_id = row.id
    prefix = test_prefix(project_id, model_id, test_id)
    try:
        objects.delete_prefix(prefix)
        files: dict[str, Any] = {}
        payload = {f"{name}.png": png for name, png in plots.items()}
        payload[RESULTS_FILE] = json.dumps(results, default=_json_default).encode()
        for name, data in payload.items():
            ctype = "image/png" if name.endswith(".png") else "application/json"
            info = objects.put_bytes(prefix + name, data, content_type=ctype)
            files[name] = {"key": info.key, "size": info.size, "sha256": info.sha256,
                           "content_type": ctype}
        clean = json.loads(json.dumps({**summary, "test_id": test_id, "files": files},
                                      default=_json_default))
        info = objects.put_bytes(prefix + SUMMARY_FILE, json.dumps(clean, indent=1).encode(),
                                 content_type="application/json")
        files[SUMMARY_FILE] = {"key": info.key, "size": info.size, "sha256": info.sha256,
                               "content_type": "application/json"}
        with db.session() as s:
            row = s.get(ModelTestRun, test_id)
            row.summary = {k: v for k, v in clean.items() if k != "files"}
            row.files = files
            row.state = READY
    except BaseException:
        objects.delete_prefix(prefix)
        with db.session() as s:
            row = s.get(ModelTestRun, test_id)
            if row is not None:
                s.delete(row)
        raise
    return test_id
