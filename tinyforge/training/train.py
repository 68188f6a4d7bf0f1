"""Train one learning block of a stored impulse version and store the model (the job body).

Steps of :func:`train_model`:

1. the impulse version and its learning block; the block's params and the hyper-parameters
   are validated first (bad ones fail before any data is read);
2. the input blocks' features (:mod:`.dataset`): training-category windows, labelled ones for
   classification/regression; NaN/Inf named by sample; a sample-level stratified split;
3. ``LearnBlock.train`` with an ``on_epoch`` callback that streams each epoch's metrics to the
   job log and progress and stops at a cancel request;
4. float32 + full-int8 TFLite (representative data = training features), both evaluated on the
   validation windows (accuracy of each, difference in points);
5. the files stored as described in :mod:`.store`, all-or-nothing.

A learning block of type ``custom:NAME[@VERSION]`` is a registered custom learn block
(:mod:`tinyforge.learn.custom`): step 3 runs the block on the same split (its log lines stream
to the job log), step 4 takes the TFLite forms it gave (converted from its ``saved_model/`` by
the platform, or its ``model.tflite`` as it is) and the model record says which form is
missing, if any. A block that fails, times out or writes no usable model fails the job with
its log tail; nothing is stored. In the training pipelines the custom block runs as a step of
its own before this one (``block_step``, :mod:`tinyforge.training.learn_step`): step 3 then
reads the model it wrote instead of running it, on the same split.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from tinyforge.blocks.registered import is_custom
from tinyforge.errors import Cancelled, FailedPrecondition, InvalidArgument, NotFound
from tinyforge.impulse import Impulse
from tinyforge.impulse_store import get_impulse
from tinyforge.jobs.reporter import QuietReporter, Reporter
from tinyforge.learn.base import TrainContext, TrainedModel
from tinyforge.learn.checks import TrainOptions
from tinyforge.learn.custom import CustomLearnBlock, StagedOutput, custom_models
from tinyforge.learn.registry import get_block
from tinyforge.store.db import Database
from tinyforge.store.models import Model
from tinyforge.store.objects import ObjectStore
from tinyforge.training import dataset as ds
from tinyforge.training.forms import evaluate_forms
from tinyforge.training.store import (
    CURVES_FILE,
    FLOAT32_FILE,
    INT8_FILE,
    LEARN_DIR,
    METADATA_FILE,
    PENDING,
    READY,
    content_type,
    model_prefix,
)
from tinyforge.training.version import code_version


@dataclass(frozen=True)
class TrainRequest:
    """What to train: impulse version (0 = latest), learning block ("" = first), block params
    overriding the impulse's (None = the impulse's), hyper-parameters."""

    impulse_id: int
    version: int = 0
    learn_block: str = ""
    params: dict[str, Any] | None = None
    options: TrainOptions = TrainOptions()

    def to_json(self) -> dict[str, Any]:
        return {"impulse_id": self.impulse_id, "version": self.version,
                "learn_block": self.learn_block, "params": self.params,
                "options": self.options.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainRequest:
        try:
            return cls(impulse_id=int(d["impulse_id"]), version=int(d.get("version", 0)),
                       learn_block=str(d.get("learn_block", "")), params=d.get("params"),
                       options=TrainOptions(**(d.get("options") or {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"bad training job params: {exc}", field="params") from None


@dataclass
class Plan:
    """A validated training request resolved against the stored impulse."""

    impulse_id: int
    version: int
    impulse: Any
    learn: Any  # LearningBlockDef
    block: Any  # LearnBlock
    params: dict[str, Any]
    options: TrainOptions


def plan_training(db: Database, project_id: int, req: TrainRequest,
                  objects: ObjectStore | None = None, *, block_step: bool = False,
                  block_type: str | None = None) -> Plan:
    """Resolve and validate a request (cheap: no data read). Raises InvalidArgument for bad
    hyper-parameters or block params (with ``objects``, also those that depend on the
    feature layout), FailedPrecondition / NotFound for the impulse state, including features
    missing for the version (naming the versions that have them).

    A custom learn block must be runnable: in this process (podman or its local command), or
    with ``block_step`` as a pipeline step of its own (an image, or a local command the local
    runner may run; see :func:`tinyforge.blocks.step.block_step_image`). ``block_type``
    (``custom:NAME@V``) pins the version of the impulse's custom block ``custom:NAME[@V]``
    (what an earlier step resolved)."""
    with db.session() as s:
        stored = get_impulse(s, project_id, req.impulse_id, req.version)
    impulse = stored.impulse
    lb = ds.learning_block(impulse, req.learn_block, stored.impulse_id, stored.version)
    btype = lb.type if block_type is None else _pinned_type(lb.name, lb.type, block_type)
    try:
        block = (_custom_block(db, objects, project_id, btype) if is_custom(btype)
                 else get_block(ds.block_type_name(btype)))
    except (NotFound, InvalidArgument) as exc:  # an unknown (or no longer registered) type
        raise FailedPrecondition(f"learning block {lb.name!r} has type {lb.type!r}: "
                                 f"{getattr(exc, 'message', exc)}", field="learn_block") from None
    options = req.options.validate()
    raw = lb.params if req.params is None else req.params
    if not isinstance(raw, dict):
        raise InvalidArgument("learning block params must be a JSON object", field="params")
    # built-in blocks name ``params.<key>``, custom ones their schema's ``parameters.<key>``
    params = block.validate(raw, field_prefix=getattr(block, "params_field", "params."))
    if isinstance(block, CustomLearnBlock):
        try:  # fail now, not in the job, when the block cannot run
            if block_step:
                from tinyforge.blocks.step import block_step_image

                block_step_image(block.registered)
            else:
                block.engine()
        except FailedPrecondition as exc:
            raise FailedPrecondition(exc.message, field="learn_block") from None
    ds.check_features_present(db, stored.impulse_id, stored.version, lb.inputs)
    if objects is not None:  # params that depend on the feature layout (e.g. architecture)
        shape, kind = ds.feature_layout(objects, project_id, stored.impulse_id,
                                        stored.version, lb.inputs)
        try:
            block._check_params(TrainContext(shape, kind, params, options))
        except InvalidArgument as exc:
            raise InvalidArgument(exc.message, field=f"params.{exc.field}") from None
    return Plan(stored.impulse_id, stored.version, impulse, lb, block, params, options)


def _pinned_type(name: str, impulse_type: str, pinned: str) -> str:
    """``pinned`` when it pins the impulse's custom block ``impulse_type``; else
    FailedPrecondition (the impulse changed between the pipeline's steps)."""
    from tinyforge.blocks.registered import parse_custom_ref

    if is_custom(impulse_type) and is_custom(pinned):
        (have, hv), (want, wv) = (parse_custom_ref(impulse_type, "learn_block"),
                                  parse_custom_ref(pinned, "learn_block"))
        if have == want and hv in (0, wv):
            return pinned
    raise FailedPrecondition(f"learning block {name!r} has type {impulse_type!r}; this run "
                             f"was prepared for {pinned!r}", field="learn_block")


def _custom_block(db: Database, objects: ObjectStore | None, project_id: int,
                  block_type: str) -> CustomLearnBlock:
    """The registered learn block ``custom:NAME[@VERSION]`` of the project's organization."""
    from tinyforge.blocks.custom_dsp import project_resolver

    return project_resolver(db, objects, project_id).learn_block(block_type)


def _cancel_flag(rep: Reporter) -> Any:
    """``() -> bool``: whether the job was asked to stop (for a block run's process)."""
    def cancelled() -> bool:
        try:
            rep.check_cancelled()
        except Cancelled:
            return True
        return False

    return cancelled


def _fmt_metrics(m: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in m.items() if k != "epoch")


def _npy_free_targets(labels: list[str | None], idx: np.ndarray, task: str) -> np.ndarray:
    vals = [labels[i] for i in idx.tolist()]
    if task != "regression":
        return np.array(vals, dtype=str)
    out = np.empty(len(vals), np.float32)
    for j, v in enumerate(vals):
        try:
            out[j] = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidArgument(f"regression needs numeric labels; window label {v!r} is not a "
                                  "number", field="labels") from None
    return out


@dataclass
class TrainingData:
    """The windows a training run uses: the block's features, the sample-level split (indices
    ``tr``/``va`` into ``X``), the targets of each side and the dataset hash."""

    feats: ds.BlockFeatures
    X: np.ndarray
    sids: np.ndarray
    widx: np.ndarray
    tr: np.ndarray
    va: np.ndarray
    x_tr: np.ndarray
    y_tr: np.ndarray | None
    x_va: np.ndarray | None
    y_va: np.ndarray | None
    dhash: str


def prepare_training_data(db: Database, objects: ObjectStore, project_id: int, plan: Plan,
                          block: Any, rep: Reporter) -> TrainingData:
    """Load ``plan``'s features and split them (steps 2 of the module docstring); deterministic
    for a dataset and options, so every step of a pipeline sees the same split."""
    opts = plan.options
    rep.progress(0.01, "loading features")
    feats = ds.load_block_features(db, objects, project_id, plan.impulse_id, plan.version,
                                   plan.impulse, plan.learn)
    train_mask = feats.mask("training")
    if block.task != "anomaly":
        train_mask &= np.array([lab is not None for lab in feats.labels], dtype=bool)
    idx = np.flatnonzero(train_mask)
    if idx.size == 0:
        raise FailedPrecondition(
            f"no labelled training windows: the features of impulse {plan.impulse_id} v"
            f"{plan.version} hold {len(feats.X)} window(s), none of them in the training "
            "category" + ("" if block.task == "anomaly" else " with a label")
            + ": upload training data or move samples to training", field="dataset")
    X, sids, widx = feats.X[idx], feats.sample_ids[idx], feats.window_index[idx]
    ds.check_finite(X, sids, widx, "training")
    labels = [feats.labels[i] for i in idx.tolist()]
    if block.task == "classification":
        classes = sorted({lab for lab in labels if lab is not None})
        if len(classes) < 2:
            raise InvalidArgument(
                f"the training set has only one class ({classes[0]!r}, {len(idx)} windows from "
                f"{len(set(sids.tolist()))} samples); a classifier needs at least 2 classes",
                field="labels")
    tr, va = ds.split_by_sample(sids, labels if block.task == "classification"
                                else [None] * len(labels), opts.validation_fraction, opts.seed,
                                ds.sample_hashes(db, project_id, sids))
    if block.task == "classification" and va.size:
        # a label seen only in validation samples cannot be scored: keep those windows out
        known = {labels[i] for i in tr.tolist()}
        keep = np.array([labels[i] in known for i in va.tolist()], dtype=bool)
        if not keep.all():
            rep.log(f"validation: {int((~keep).sum())} window(s) with labels absent from the "
                    "training split left out")
        va = va[keep]
    y_all = None if block.task == "anomaly" else _npy_free_targets(
        labels, np.arange(len(labels)), block.task)
    x_tr, x_va = X[tr], (X[va] if va.size else None)
    y_tr = None if y_all is None else y_all[tr]
    y_va = None if (y_all is None or not va.size) else y_all[va]
    dhash = ds.dataset_hash(db, project_id, sids)
    rep.log(f"training {plan.learn.name!r} ({block.name}) on impulse {plan.impulse_id} "
            f"v{plan.version}: {len(tr)} training / {len(va)} validation windows from "
            f"{len(set(sids.tolist()))} samples, features {list(feats.feature_shape)} "
            f"({feats.feature_kind}) from {', '.join(plan.learn.inputs)}")
    rep.log(f"dataset {dhash[:16]}…, code {code_version()}, options {opts.to_json()}")
    return TrainingData(feats, X, sids, widx, tr, va, x_tr, y_tr, x_va, y_va, dhash)


def fit_block(block: Any, plan: Plan, data: TrainingData, rep: Reporter) -> TrainedModel:
    """``block.train`` on ``data`` (step 3), epochs streamed to ``rep``, stoppable by a cancel."""
    opts, feats, tr = plan.options, data.feats, data.tr

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        rep.check_cancelled()
        text = f"epoch {epoch}/{opts.epochs}: {_fmt_metrics(metrics)}"
        rep.log(text)
        rep.progress(0.05 + 0.75 * epoch / opts.epochs, text[:200])

    rep.progress(0.05, "training")
    return block.train(
        data.x_tr, data.y_tr, data.x_va, data.y_va, feature_shape=feats.feature_shape,
        feature_kind=feats.feature_kind, params=plan.params, seed=opts.seed, epochs=opts.epochs,
        learning_rate=opts.learning_rate, batch_size=opts.batch_size,
        early_stopping=opts.early_stopping, patience=opts.patience,
        validation_fraction=opts.validation_fraction, on_epoch=on_epoch,
        sample_keys=[f"{s}:{w}" for s, w in zip(data.sids[tr].tolist(),
                                                 data.widx[tr].tolist(), strict=True)])


@dataclass(frozen=True)
class BlockStep:
    """A custom learn block that ran as a pipeline step of its own: the version it ran
    (``custom:NAME@V``) and the object key its output was stored under."""

    block_type: str
    out_key: str


def train_model(db: Database, objects: ObjectStore, project_id: int, req: TrainRequest, *,
                reporter: Reporter | None = None, job_id: int | None = None,
                created_by_key_id: int | None = None,
                block_step: BlockStep | None = None) -> dict[str, Any]:
    """Train, quantize, evaluate and store a model; returns a JSON-able summary with
    ``model_id`` (see the module docstring). Domain errors name what to fix. With
    ``block_step`` the custom learn block is not run here: the model it wrote in its own
    step is imported (checked, converted and stored exactly as a run here would be)."""
    rep: Reporter = reporter or QuietReporter()
    plan = plan_training(db, project_id, req, objects, block_step=block_step is not None,
                         block_type=block_step.block_type if block_step else None)
    block, opts = plan.block, plan.options
    if isinstance(block, CustomLearnBlock):  # the block's own output goes to the job log
        block = block.bound(log=rep.log, cancelled=_cancel_flag(rep))
        if block_step is not None:
            block = block.executed_by(StagedOutput(objects, block_step.out_key))
    data = prepare_training_data(db, objects, project_id, plan, block, rep)
    feats, tr, va, x_tr, x_va, y_va, dhash = (data.feats, data.tr, data.va, data.x_tr,
                                              data.x_va, data.y_va, data.dhash)
    trained = fit_block(block, plan, data, rep)
    rep.log(f"trained in {trained.train_seconds:.2f} s")
    rep.check_cancelled()
    custom = custom_models(trained)
    if custom is not None:
        converted: Any = custom
        for note in custom.notes:
            rep.log(f"note: {note}")
    else:
        rep.progress(0.82, "converting to TFLite (float32, int8)")
        converted = _convert(trained, x_tr, opts.seed, rep)
    rep.check_cancelled()
    rep.progress(0.88, "evaluating on the validation set")
    metrics = _validation_metrics(trained, converted, x_va, y_va, rep)
    metrics["train_windows"] = int(len(tr))
    metrics["validation_windows"] = int(len(va))
    metrics["train_seconds"] = trained.train_seconds
    rep.progress(0.93, "storing the model")
    model_id = _store(db, objects, project_id, plan, trained, converted, metrics, dhash,
                      feats, job_id, created_by_key_id, rep)
    summary = {"model_id": model_id, "impulse_id": plan.impulse_id,
               "impulse_version": plan.version, "block_type": block.name, "task": block.task,
               "dataset_hash": dhash, "code_version": code_version(),
               "train_windows": int(len(tr)), "validation_windows": int(len(va))}
    for form in ("float", "int8"):
        acc = metrics.get("validation", {}).get(form, {}).get("accuracy")
        if acc is not None:
            summary[f"{form}_accuracy"] = acc
    if converted is not None:
        summary.update(converted.sizes())
    if custom is not None and custom.missing:
        summary["missing_forms"] = custom.missing
    rep.log(f"model {model_id} ready: " + ", ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()
        if k.endswith(("accuracy", "bytes"))))
    return summary


def _convert(trained: TrainedModel, x_tr: np.ndarray, seed: int, rep: Reporter) -> Any:
    from tinyforge.quantize.convert import quantize_trained

    if not block_has_network(trained):
        rep.log(f"{trained.block}: no neural-network form, no TFLite files")
        return None
    conv = quantize_trained(trained, x_tr, seed=seed)
    rep.log(f"TFLite: float32 {len(conv.float32)} bytes in {conv.float32_seconds:.2f} s, "
            f"int8 {len(conv.int8)} bytes in {conv.int8_seconds:.2f} s")
    return conv


def block_has_network(trained: TrainedModel) -> bool:
    """True when the trained model converts to TFLite."""
    return trained.is_keras or trained.export_keras() is not None


def _validation_metrics(trained: TrainedModel, converted: Any, x_va: np.ndarray | None,
                        y_va: np.ndarray | None, rep: Reporter) -> dict[str, Any]:
    out: dict[str, Any] = {"history_last": trained.history[-1] if trained.history else {},
                           "extra": trained.extra}
    if converted is not None:
        from tinyforge.quantize.compare import compare_float_int8

        out["quantization"] = {**converted.sizes(), "float32_seconds": converted.float32_seconds,
                               "int8_seconds": converted.int8_seconds}
        both = converted.float32 is not None and converted.int8 is not None
        if x_va is not None and trained.task != "anomaly" and both:
            q = compare_float_int8(trained, converted, x_va, y_va)
            out["quantization"] = q.to_json()
            for w in q.warnings:
                rep.log(f"warning: {w}")
    if x_va is None or trained.task == "anomaly":
        return out
    report = evaluate_forms(
        trained, x_va, y_va, float32=converted.float32 if converted else None,
        int8=converted.int8 if converted else None, threshold=0.0, with_plots=False)
    out["validation"] = {k: _drop_big(v) for k, v in report.forms.items()}
    out["validation"]["accuracy_difference"] = report.accuracy_difference
    forms = report.forms
    parts = [f"{form} {forms[form]['accuracy']:.4f}" for form in ("float", "int8")
             if "accuracy" in forms.get(form, {})]
    if parts:
        line = "validation accuracy: " + ", ".join(parts)
        if report.accuracy_difference is not None:
            line += f" ({report.accuracy_difference:+.2f} points)"
        rep.log(line)
    return out


def _drop_big(form: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in form.items() if k != "per_output"}


def _store(db: Database, objects: ObjectStore, project_id: int, plan: Plan,
           trained: TrainedModel, converted: Any, metrics: dict[str, Any], dhash: str,
           feats: ds.BlockFeatures, job_id: int | None, created_by_key_id: int | None,
           rep: Reporter) -> int:
    """Write every file, the manifest last, then make the row ready; undo all on failure."""
    import tempfile
    from pathlib import Path

    from tinyforge.evaluation.plots import training_curves_png

    with db.session() as s:
        row = Model(project_id=project_id, impulse_id=plan.impulse_id,
                    impulse_version=plan.version, state=PENDING, learn_block=plan.learn.name,
                    block_type=plan.block.name, task=plan.block.task, job_id=job_id,
                    created_by_key_id=created_by_key_id)
        s.add(row)
        s.flush()
        model_id = row.id
    prefix = model_prefix(project_id, model_id)
    try:
        objects.delete_prefix(prefix)  # nothing may be there; a reused id must start clean
        payload: dict[str, bytes] = {}
        if converted is not None:  # a custom block's model may lack one form
            if converted.int8 is not None:
                payload[INT8_FILE] = converted.int8
            if converted.float32 is not None:
                payload[FLOAT32_FILE] = converted.float32
        with tempfile.TemporaryDirectory(prefix="tinyforge-train-") as tmp:
            saved = trained.save(Path(tmp) / "learn")
            for f in sorted(saved.iterdir()):
                payload[LEARN_DIR + f.name] = f.read_bytes()
        if not trained.is_keras and hasattr(trained.model, "export"):
            payload[LEARN_DIR + "export.json"] = json.dumps(trained.model.export()).encode()
        if trained.history:
            payload[CURVES_FILE] = training_curves_png(
                trained.history, f"Model {model_id}: {plan.learn.name} ({plan.block.name})")
        files: dict[str, dict[str, Any]] = {}
        for name, data in payload.items():
            rep.check_cancelled()
            info = objects.put_bytes(prefix + name, data, content_type=content_type(name))
            files[name] = {"key": info.key, "size": info.size, "sha256": info.sha256,
                           "content_type": content_type(name)}
        meta = {
            "format": 1, "model_id": model_id, "project_id": project_id,
            "impulse_id": plan.impulse_id, "impulse_version": plan.version,
            "impulse": _pinned_impulse(db, objects, project_id, plan.impulse),
            "learn_block": plan.learn.name,
            "block_type": plan.block.name, "task": plan.block.task,
            "labels": list(trained.labels), "input_blocks": list(plan.learn.inputs),
            "feature_shape": list(feats.feature_shape), "feature_kind": feats.feature_kind,
            "feature_manifests": {b: {"generation": m.get("generation"),
                                      "dataset_hash": m.get("dataset_hash"),
                                      "block_hash": m.get("block_hash")}
                                  for b, m in feats.manifests.items()},
            "quantization": _quant_params(converted), "dataset_hash": dhash,
            "missing_forms": list(getattr(converted, "missing", [])),
            "code_version": code_version(), "options": plan.options.to_json(),
            "params": plan.params, "metrics": metrics, "files": files, "job_id": job_id,
            "created_at": datetime.now(UTC).isoformat(),
        }
        text = json.dumps(meta, indent=1, default=_json_default).encode()
        rep.check_cancelled()
        objects.put_bytes(prefix + METADATA_FILE, text, content_type="application/json")
        with db.session() as s:
            row = s.get(Model, model_id)
            row.state = READY
            row.input_blocks = list(plan.learn.inputs)
            row.labels = list(trained.labels)
            row.feature_shape = list(feats.feature_shape)
            row.feature_kind = feats.feature_kind
            row.dataset_hash = dhash
            row.code_version = code_version()
            row.params = json.loads(json.dumps(plan.params, default=_json_default))
            row.options = plan.options.to_json()
            row.metrics = json.loads(json.dumps(metrics, default=_json_default))
            row.files = {**files, METADATA_FILE: {
                "key": prefix + METADATA_FILE, "size": len(text),
                "sha256": hashlib.sha256(text).hexdigest(),
                "content_type": "application/json"}}
    except BaseException:
        objects.delete_prefix(prefix)
        with db.session() as s:
            row = s.get(Model, model_id)
            if row is not None:
                s.delete(row)
        raise
    return model_id


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON-serialisable: {type(v).__name__}")


def _quant_params(converted: Any) -> dict[str, Any]:
    """Scale / zero point of the int8 model's input and output (for deployment code)."""
    if converted is None:
        return {}
    from tinyforge.quantize.runner import TFLiteModel

    if converted.int8 is None:  # a custom block's float-only model: nothing quantized
        m = TFLiteModel(converted.float32)
        return {"input_shape": list(m.input_shape), **converted.sizes()}
    m = TFLiteModel(converted.int8)
    (iscale, izp), (oscale, ozp) = m._in["quantization"], m._out["quantization"]
    return {"input_scale": float(iscale), "input_zero_point": int(izp),
            "output_scale": float(oscale), "output_zero_point": int(ozp),
            "input_shape": list(m.input_shape), **converted.sizes()}


def _pinned_impulse(db: Database, objects: ObjectStore, project_id: int,
                    impulse: Impulse) -> dict[str, Any]:
    """The impulse a model records: custom DSP blocks pinned to the version that made its
    features (``custom:NAME@V``)."""
    doc = impulse.to_dict()
    if not any(is_custom(b.get("block")) for b in doc.get("processing", [])):
        return doc
    from tinyforge.blocks.custom_dsp import pin_custom_blocks, project_resolver

    return pin_custom_blocks(doc, project_resolver(db, objects, project_id))
