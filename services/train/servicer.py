"""TrainService: start training / test jobs, read models and test results, download model
files, classify samples live."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import grpc

from services.common import convert
from services.common.auth import audit_note, current_principal
from services.common.convert import parse_params
from services.train.jobs import TEST_MODEL, TRAIN_MODEL
from tinyforge.context import PlatformContext
from tinyforge.data.samples import SampleStore
from tinyforge.errors import InvalidArgument, NotFound
from tinyforge.learn.checks import TrainOptions
from tinyforge.store.models import Model, ModelTestRun
from tinyforge.training import store as mstore
from tinyforge.training.classify import ClassifyResult, LoadedModel, load_model
from tinyforge.training.train import TrainRequest, plan_training
from tinyforge.v1 import train_service_pb2 as pb
from tinyforge.v1 import train_service_pb2_grpc as pb_grpc

CHUNK = 1 << 20
MAX_CACHED_MODELS = 8
MAX_CLASSIFY_BYTES = 32 << 20


def options_from_pb(o: pb.TrainingOptions) -> TrainOptions:
    """API options → TrainOptions (unset fields keep the defaults; not yet validated)."""
    d = TrainOptions()
    return TrainOptions(
        epochs=o.epochs if o.HasField("epochs") else d.epochs,
        learning_rate=o.learning_rate if o.HasField("learning_rate") else d.learning_rate,
        batch_size=o.batch_size if o.HasField("batch_size") else d.batch_size,
        seed=o.seed if o.HasField("seed") else d.seed,
        early_stopping=o.early_stopping if o.HasField("early_stopping") else d.early_stopping,
        patience=o.patience if o.HasField("patience") else d.patience,
        validation_fraction=(o.validation_fraction if o.HasField("validation_fraction")
                             else d.validation_fraction))


def model_to_pb(row: Model) -> pb.Model:
    m = row.metrics or {}
    val = m.get("validation", {})
    q = m.get("quantization", {})
    msg = pb.Model(
        id=row.id, project_id=row.project_id, impulse_id=row.impulse_id,
        impulse_version=row.impulse_version, learn_block=row.learn_block,
        block_type=row.block_type, task=row.task, labels=list(row.labels or []),
        input_blocks=list(row.input_blocks or []),
        feature_shape=[int(d) for d in row.feature_shape or []], feature_kind=row.feature_kind,
        dataset_hash=row.dataset_hash, code_version=row.code_version,
        params_json=json.dumps(row.params or {}, sort_keys=True),
        options_json=json.dumps(row.options or {}, sort_keys=True),
        metrics_json=json.dumps(m, sort_keys=True),
        files=[pb.ModelFile(name=k, size=v["size"], sha256=v["sha256"],
                            content_type=v.get("content_type", ""))
               for k, v in sorted((row.files or {}).items())],
        job_id=row.job_id or 0, create_time=convert.ts(row.created_at),
        int8_bytes=int(q.get("int8_bytes", 0)), float32_bytes=int(q.get("float32_bytes", 0)))
    for form in ("float", "int8"):
        acc = val.get(form, {}).get("accuracy")
        if acc is not None:
            setattr(msg, f"{form}_accuracy", float(acc))
    return msg


def _form_pb(name: str, f: dict[str, Any]) -> pb.FormMetrics:
    msg = pb.FormMetrics(form=name, accuracy=float(f.get("accuracy", 0.0)),
                         uncertain=int(f.get("uncertain", 0)))
    if "confusion_matrix" in f:
        cm = f["confusion_matrix"]
        msg.confusion.CopyFrom(pb.ConfusionMatrix(
            labels=f["labels"], columns=f["confusion_columns"],
            counts=[int(v) for row in cm for v in row]))
        msg.per_class.extend(pb.ClassMetrics(label=lab, precision=v["precision"],
                                             recall=v["recall"], f1=v["f1"],
                                             support=v["support"])
                             for lab, v in f["per_class"].items())
    if "roc_auc" in f:
        msg.roc_auc = float(f["roc_auc"])
    return msg


class TrainServicer(pb_grpc.TrainServiceServicer):
    def __init__(self, ctx: PlatformContext) -> None:
        self.ctx = ctx
        self._models: OrderedDict[tuple[int, int], LoadedModel] = OrderedDict()
        self._models_lock = threading.Lock()

    # -- training -------------------------------------------------------------------------------
    def StartTraining(self, request, context):  # noqa: ANN001, ANN201, N802
        req = TrainRequest(impulse_id=request.impulse_id, version=request.version,
                           learn_block=request.learn_block,
                           params=parse_params(request.params_json),
                           options=options_from_pb(request.options))
        # engines local/argo run a custom learn block as a pipeline step of its own
        plan = plan_training(self.ctx.db, request.project_id, req, self.ctx.objects,
                             block_step=self.ctx.settings.workflow_engine != "inprocess")
        # the job trains exactly the resolved version / block
        resolved = TrainRequest(impulse_id=plan.impulse_id, version=plan.version,
                                learn_block=plan.learn.name, params=req.params,
                                options=plan.options)
        key_id = current_principal().key_id
        with self.ctx.db.session() as s:
            job_id = self.ctx.jobs.create(
                s, request.project_id, TRAIN_MODEL,
                {"request": resolved.to_json(), "created_by_key_id": key_id},
                created_by_key_id=key_id).id
        self.ctx.jobs.enqueue(job_id)
        audit_note(f"training job {job_id}: impulse {plan.impulse_id} v{plan.version} block "
                   f"{plan.learn.name!r}")
        return pb.StartTrainingResponse(job_id=job_id, version=plan.version,
                                        learn_block=plan.learn.name)

    def GetModel(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            row = mstore.get_model_row(s, request.project_id, request.model_id)
        return pb.GetModelResponse(model=model_to_pb(row))

    def ListModels(self, request, context):  # noqa: ANN001, ANN201, N802
        if request.impulse_id < 0:
            raise InvalidArgument("impulse_id must be >= 0 (0 = all)", field="impulse_id")
        with self.ctx.db.session() as s:
            rows = mstore.list_model_rows(s, request.project_id, request.impulse_id)
        return pb.ListModelsResponse(models=[model_to_pb(r) for r in rows])

    # -- testing --------------------------------------------------------------------------------
    def TestModel(self, request, context):  # noqa: ANN001, ANN201, N802
        threshold = request.threshold if request.HasField("threshold") else 0.6
        if not 0.0 <= threshold <= 1.0:
            raise InvalidArgument(f"threshold must be in 0..1, got {threshold}",
                                  field="threshold")
        key_id = current_principal().key_id
        with self.ctx.db.session() as s:
            mstore.get_model_row(s, request.project_id, request.model_id)
            job_id = self.ctx.jobs.create(
                s, request.project_id, TEST_MODEL,
                {"model_id": request.model_id, "threshold": threshold,
                 "anomaly_labels": list(request.anomaly_labels)},
                created_by_key_id=key_id).id
        self.ctx.jobs.enqueue(job_id)
        audit_note(f"test job {job_id} for model {request.model_id}")
        return pb.TestModelResponse(job_id=job_id)

    def GetTestResult(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.ctx.db.session() as s:
            row = mstore.get_test_row(s, request.project_id, request.model_id, request.test_id)
        return pb.GetTestResultResponse(result=self._test_to_pb(row, request.include_results))

    def _test_to_pb(self, row: ModelTestRun, include_results: bool) -> pb.TestResult:
        sm = row.summary or {}
        msg = pb.TestResult(
            test_id=row.id, model_id=row.model_id, task=sm.get("task", ""),
            threshold=row.threshold, windows=int(sm.get("windows", 0)),
            forms=[_form_pb(k, v) for k, v in sm.get("forms", {}).items()],
            plots=sorted(k for k in (row.files or {}) if k.endswith(".png")),
            summary_json=json.dumps(sm, sort_keys=True), job_id=row.job_id or 0,
            create_time=convert.ts(row.created_at))
        if sm.get("accuracy_difference") is not None:
            msg.accuracy_difference = float(sm["accuracy_difference"])
        info = (row.files or {}).get("results.json")
        if info is not None:
            results = json.loads(self.ctx.objects.get_bytes(info["key"]))
            for p in results.get("samples", []):
                f, q = p.get("float") or {}, p.get("int8") or {}
                # confidence / correct of the float form; of int8 when that is the only form
                # (a custom block's int8-only model)
                main = f if isinstance(f, dict) and f else q
                msg.samples.append(pb.SampleResult(
                    sample_id=p["sample_id"], label=str(p.get("label", "")),
                    windows=p["windows"],
                    predicted_float=str(f.get("predicted", "")) if isinstance(f, dict) else "",
                    predicted_int8=str(q.get("predicted", "")),
                    confidence=float(main.get("confidence", 0.0)),
                    correct=bool(main.get("correct", False)),
                    anomaly_score=float(p.get("mean_score", 0.0))))
            if include_results:
                msg.results_json = json.dumps(results)
        return msg

    # -- files ----------------------------------------------------------------------------------
    def DownloadModelFile(self, request, context):  # noqa: ANN001, ANN201, N802
        name = request.file.strip()
        if not name:
            raise InvalidArgument("file is required (a ModelFile name, or "
                                  "tests/<test_id>/<file>)", field="file")
        with self.ctx.db.session() as s:
            row = mstore.get_model_row(s, request.project_id, request.model_id)
            files = dict(row.files or {})
            if name.startswith("tests/"):
                parts = name.split("/")
                if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) <= 0:
                    raise InvalidArgument(f"test file {name!r} must look like "
                                          "tests/<test_id>/<file>", field="file")
                test = mstore.get_test_row(s, request.project_id, request.model_id,
                                           int(parts[1]))
                files = {f"tests/{test.id}/{k}": v for k, v in (test.files or {}).items()}
        info = files.get(name)
        if info is None:
            raise NotFound(f"model {request.model_id} has no file {name!r} (files: "
                           f"{', '.join(sorted(files))})", field="file")
        first = True
        for chunk in self.ctx.objects.iter_chunks(info["key"], CHUNK):
            if first:
                yield pb.DownloadModelFileResponse(chunk=chunk, size=info["size"],
                                                   sha256=info["sha256"],
                                                   content_type=info.get("content_type", ""))
                first = False
            else:
                yield pb.DownloadModelFileResponse(chunk=chunk)
        if first:  # an empty file still sends its header
            yield pb.DownloadModelFileResponse(size=0, sha256=info["sha256"],
                                               content_type=info.get("content_type", ""))

    # -- live classification --------------------------------------------------------------------
    def _loaded(self, project_id: int, model_id: int) -> LoadedModel:
        with self.ctx.db.session() as s:
            mstore.get_model_row(s, project_id, model_id)
        key = (project_id, model_id)
        with self._models_lock:
            lm = self._models.get(key)
            if lm is not None:
                self._models.move_to_end(key)
                return lm
        lm = load_model(self.ctx.objects, project_id, model_id, db=self.ctx.db)
        with self._models_lock:
            self._models[key] = lm
            while len(self._models) > MAX_CACHED_MODELS:
                self._models.popitem(last=False)
        return lm

    def Classify(self, request, context):  # noqa: ANN001, ANN201, N802
        source = request.WhichOneof("source")
        if source is None:
            raise InvalidArgument("give the sample as data (file bytes) or sample_id",
                                  field="source")
        if request.frequency_hz < 0:
            raise InvalidArgument("frequency_hz must be >= 0", field="frequency_hz")
        lm = self._loaded(request.project_id, request.model_id)
        if source == "data":
            if len(request.data) > MAX_CLASSIFY_BYTES:
                raise InvalidArgument(f"data is {len(request.data)} bytes, at most "
                                      f"{MAX_CLASSIFY_BYTES}", field="data")
            res = lm.classify_bytes(request.data, request.filename or None,
                                    frequency_hz=request.frequency_hz or None,
                                    use_float=request.use_float)
        else:
            from tinyforge.features.generate import load_windows, sample_ref

            row = SampleStore(self.ctx.db, self.ctx.objects).get(request.project_id,
                                                                 request.sample_id)
            windows, starts = load_windows(self.ctx.objects, sample_ref(row), lm.impulse)
            res = lm.classify_windows(windows, starts, use_float=request.use_float)
        return _classify_pb(request.model_id, res)


def _classify_pb(model_id: int, r: ClassifyResult) -> pb.ClassifyResponse:
    msg = pb.ClassifyResponse(
        model_id=model_id, task=r.task, form=r.form, labels=r.labels, scores=r.scores,
        label=r.label, confidence=r.confidence, dsp_ms=r.dsp_ms, inference_ms=r.inference_ms,
        feature_count=r.feature_count,
        windows=[pb.WindowScores(start_ms=w.start_ms, scores=w.scores) for w in r.windows])
    if r.anomaly_score is not None:
        msg.anomaly_score = r.anomaly_score
    if r.anomalous is not None:
        msg.anomalous = r.anomalous
    return msg


def register(server: grpc.Server, ctx: PlatformContext) -> list[str]:
    pb_grpc.add_TrainServiceServicer_to_server(TrainServicer(ctx), server)
    return [pb.DESCRIPTOR.services_by_name["TrainService"].full_name]
