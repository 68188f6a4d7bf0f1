"""The ``kserve`` deployment format: the served model directory + an ``InferenceService``.

The zip holds (under one top folder, like every format) the model directory the predictor
:class:`tinyforge.serving.predictor.ImpulseModel` loads — ``impulse.json``, ``labels.json``,
``model_int8.tflite``, ``model_float32.tflite`` (when the bundle has one),
``tinyforge-model.json`` — plus ``README.md`` and ``inferenceservice.yaml``.

The ``InferenceService`` (``serving.kserve.io/v1beta1``, built with the kserve SDK and
serialised by ``ApiClient().sanitize_for_serialization``: camelCase keys, no nulls) names the
chart's ``ServingRuntime`` (model format ``tinyforge-impulse``) and the storage URI
``s3://BUCKET/projects/{project_id}/builds/{build_id}/model/``: the builder uploads the files
of :func:`model_files` there, KServe's storage initializer copies them to ``/mnt/models`` and
the runtime runs ``tinyforge serve /mnt/models``.

Options (each also read from the chart's ConfigMap variables, then defaults):
``project_id``, ``build_id``, ``bucket`` (``TINYFORGE_S3_BUCKET``, ``tinyforge``),
``storage_uri`` (overrides the computed one), ``isvc_name`` (default: the bundle name as a
DNS label), ``namespace`` (``TINYFORGE_KSERVE_NAMESPACE``), ``runtime``
(``TINYFORGE_KSERVE_RUNTIME``, ``tinyforge-impulse``), ``service_account``
(``TINYFORGE_KSERVE_SERVICE_ACCOUNT``), ``deployment_mode``
(``TINYFORGE_KSERVE_DEPLOYMENT_MODE``, ``RawDeployment``), ``model_type`` (``int8`` |
``float32``: the model the server answers with by default), ``verify_windows``.

Registered in :data:`tinyforge.deploy.registry.FORMATS` (``build_artifact("kserve", ...)``),
which calls :func:`stage_kserve`. With test windows in the bundle, the staged directory is
loaded as the server loads it and must predict every window as the platform's int8 model.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tinyforge.errors import FailedPrecondition, InvalidArgument
from tinyforge.serving.model_dir import load_model_source, model_dir_files

FORMAT = "kserve"
MODEL_FORMAT = "tinyforge-impulse"  # the chart's ServingRuntime supportedModelFormats name
DEFAULT_RUNTIME = "tinyforge-impulse"
ISVC_FILE = "inferenceservice.yaml"
README_FILE = "README.md"
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# option -> the chart ConfigMap variable that supplies it in the cluster
_ENV = {"bucket": "TINYFORGE_S3_BUCKET", "namespace": "TINYFORGE_KSERVE_NAMESPACE",
        "runtime": "TINYFORGE_KSERVE_RUNTIME",
        "service_account": "TINYFORGE_KSERVE_SERVICE_ACCOUNT",
        "deployment_mode": "TINYFORGE_KSERVE_DEPLOYMENT_MODE"}
_DEFAULTS = {"bucket": "tinyforge", "runtime": DEFAULT_RUNTIME,
             "deployment_mode": "RawDeployment", "model_type": "int8"}


def _opt(options: Mapping[str, str], key: str) -> str:
    if options.get(key):
        return str(options[key])
    env = _ENV.get(key)
    if env and os.environ.get(env):
        return os.environ[env]
    return _DEFAULTS.get(key, "")


def dns_name(name: str) -> str:
    """A bundle/project name as a Kubernetes DNS-1123 label (lowercase, '-', ≤ 45 chars:
    KServe appends suffixes such as ``-predictor`` to it)."""
    s = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    s = re.sub(r"-{2,}", "-", s)[:45].strip("-")
    if not s or not s[0].isalpha():
        s = ("m-" + s).strip("-")
    return s


def storage_uri(options: Mapping[str, str]) -> str:
    """``s3://BUCKET/projects/{project_id}/builds/{build_id}/model/`` (or ``storage_uri``)."""
    if options.get("storage_uri"):
        uri = str(options["storage_uri"])
        if not re.match(r"^(s3|gs|https?|pvc|hdfs|oci)://\S+$", uri):
            raise InvalidArgument(f"storage_uri {uri!r} must be a URI such as s3://bucket/path/",
                                  field="options.storage_uri")
        return uri
    bucket = _opt(options, "bucket")
    ids = {}
    for key in ("project_id", "build_id"):
        v = str(options.get(key, "")) or key.upper()  # placeholder for local builds
        if not _ID.match(v):
            raise InvalidArgument(f"{key} {v!r} must be 1-64 letters, digits, '-' or '_'",
                                  field=f"options.{key}")
        ids[key] = v
    if not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket):
        raise InvalidArgument(f"bucket {bucket!r} is not a valid S3 bucket name",
                              field="options.bucket")
    return f"s3://{bucket}/projects/{ids['project_id']}/builds/{ids['build_id']}/model/"


def inference_service(name: str, options: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``InferenceService`` for a kserve build, as a plain dict (see module doc).

    Built with the kserve SDK's ``V1beta1InferenceService`` and serialised with
    ``ApiClient().sanitize_for_serialization`` (kubernetes < 37, see ENVIRONMENT.md).
    """
    from kubernetes.client import ApiClient, V1ObjectMeta

    from tinyforge.serving.kserve_compat import import_kserve

    k = import_kserve()
    options = dict(options or {})
    isvc_name = str(options.get("isvc_name") or dns_name(name))
    if not _DNS_LABEL.match(isvc_name) or len(isvc_name) > 45:
        raise InvalidArgument(f"isvc_name {isvc_name!r} must be a DNS label (lowercase letters, "
                              "digits, '-', starting with a letter) of at most 45 characters",
                              field="options.isvc_name")
    model_type = _opt(options, "model_type")
    if model_type not in ("int8", "float32"):
        raise InvalidArgument(f"model_type {model_type!r} must be int8 or float32",
                              field="options.model_type")
    labels = {"app.kubernetes.io/managed-by": "tinyforge",
              "tinyforge.io/object-store-client": "true"}  # the chart's MinIO NetworkPolicy
    for key in ("project_id", "build_id"):
        if options.get(key) and _ID.match(str(options[key])):
            labels[f"tinyforge.io/{key.replace('_', '-')}"] = str(options[key])
    namespace = _opt(options, "namespace") or None
    sa = _opt(options, "service_account") or None
    model = k.V1beta1ModelSpec(
        model_format=k.V1beta1ModelFormat(name=MODEL_FORMAT, version="1"),
        runtime=_opt(options, "runtime"),
        storage_uri=storage_uri(options),
        # appended to the runtime's args by KServe: the server's default model
        args=[f"--model-type={model_type}"] if model_type != "int8" else None,
        name=None,
    )
    isvc = k.V1beta1InferenceService(
        api_version="serving.kserve.io/v1beta1",
        kind="InferenceService",
        metadata=V1ObjectMeta(
            name=isvc_name, namespace=namespace, labels=labels,
            annotations={"serving.kserve.io/deploymentMode": _opt(options, "deployment_mode")}),
        spec=k.V1beta1InferenceServiceSpec(
            predictor=k.V1beta1PredictorSpec(model=model, service_account_name=sa,
                                             labels={"tinyforge.io/object-store-client": "true"})),
    )
    return ApiClient().sanitize_for_serialization(isvc)


def model_files(bundle: Any) -> dict[str, bytes]:
    """The model directory of ``bundle`` (a DeployBundle): file name -> bytes, as served.

    The models are loaded as the server loads them first: InvalidArgument when the model's
    input size is not the impulse's feature count or its outputs not the labels.
    """
    from tinyforge.serving.model_dir import ModelFiles
    from tinyforge.serving.runtime import ImpulseRuntime

    rt = ImpulseRuntime(ModelFiles(bundle.impulse, tuple(bundle.labels), bundle.model_int8,
                                   bundle.model_float32, None, bundle.name))
    return model_dir_files(bundle.impulse, bundle.labels, bundle.model_int8,
                           bundle.model_float32, name=bundle.name,
                           feature_count=rt.feature_count)


def _readme(name: str, isvc: dict[str, Any], files: list[str]) -> str:
    uri = isvc["spec"]["predictor"]["model"]["storageUri"]
    isvc_name = isvc["metadata"]["name"]
    return f"""# {name}: KServe deployment (TinyForge)

A KServe model server for this impulse: the server runs the DSP blocks and the int8 (default)
or float32 model, so clients send raw sensor windows or whole sample files.

Files: {", ".join(files)}.

## Run locally

    tinyforge serve THIS.zip --http-port 8080 --grpc-port 8081 --name impulse

It listens on 127.0.0.1 (use `--host 0.0.0.0` to accept other machines).

- v1: `POST /v1/models/impulse:predict`, `Content-Type: application/json`,
  `{{"instances": [WINDOW, ...]}}` where WINDOW is `[T][axes]` numbers (or flat), or a base64
  string of a WAV / CSV / Edge Impulse JSON file, or `{{"b64": "...", "content_type": "text/csv"}}`.
- v2 (open inference protocol), REST `POST /v2/models/impulse/infer` or gRPC `ModelInfer`:
  one input tensor, FP32 `[N, T*axes]` / `[N, T, axes]` / `[T, axes]`, or BYTES `[N]` of sample
  files. Outputs `scores` `[W, labels]`, `label`, `source`, `start_ms` (one row per window);
  parameters `labels`, `model_type`, `dsp_time_us`, `inference_time_us`.
- Request parameter `{{"model_type": "float32"}}` selects the float model.
- Readiness: `GET /v2/health/ready`, `GET /v2/models/impulse/ready`.

## Run in the cluster

Upload the model files (everything here but this README and the YAML) to

    {uri}

then `kubectl apply -f {ISVC_FILE}` (InferenceService `{isvc_name}`; it uses the Helm chart's
ServingRuntime `{isvc["spec"]["predictor"]["model"]["runtime"]}`). The TinyForge builder does
both for builds it runs.
"""


def verify_stage(bundle: Any, stage: Path, options: Mapping[str, str],
                 log: Callable[[str], None]) -> dict[str, float | int | str]:
    """Load the staged model directory as ``tinyforge serve`` does and classify the bundle's
    test windows (at most ``options['verify_windows']``); every prediction must equal the
    platform's int8 prediction (FailedPrecondition naming the first differing window)."""
    import numpy as np

    from tinyforge.serving.runtime import MAX_WINDOWS, ImpulseRuntime

    if bundle.test_windows is None:
        return {"verified_on": "not verified (bundle has no test windows)"}
    x = np.asarray(bundle.test_windows, dtype=np.float32)
    raw = options.get("verify_windows")
    try:
        n = len(x) if raw is None else int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise InvalidArgument(f"verify_windows {raw!r} must be an integer >= 1",
                              field="options.verify_windows")
    x = x[:n]
    if bundle.platform_int8_predictions is not None:
        platform = [int(p) for p in bundle.platform_int8_predictions[: len(x)]]
    else:
        from tinyforge.deploy.reference import platform_predictions

        log("kserve: bundle has no platform predictions: computing them (Python DSP + LiteRT)")
        platform = list(platform_predictions(bundle.impulse, bundle.model_int8, x))
    rt = ImpulseRuntime(load_model_source(stage))
    served = []
    for i in range(0, len(x), MAX_WINDOWS):
        served += [int(v) for v in np.argmax(rt.classify(x[i:i + MAX_WINDOWS],
                                                         model_type="int8").scores, axis=1)]
    diff = [k for k, (a, b) in enumerate(zip(served, platform, strict=True)) if a != b]
    if diff:
        k = diff[0]
        raise FailedPrecondition(
            f"kserve predictor verification failed: test sample {k} was classified as "
            f"{bundle.labels[served[k]]!r} by the packaged predictor but "
            f"{bundle.labels[platform[k]]!r} by the platform's int8 model ({len(diff)} of "
            f"{len(x)} windows differ)", field="verification")
    metrics: dict[str, float | int | str] = {
        "compared": len(x), "verified_on": "kserve predictor runtime (LiteRT int8, in-process)"}
    if bundle.test_labels is not None:
        truth = [bundle.labels.index(t) for t in bundle.test_labels[: len(x)]]
        metrics["on_target_accuracy"] = float(np.mean(np.equal(truth, served)))
        metrics["platform_accuracy"] = float(np.mean(np.equal(truth, platform)))
    log(f"kserve: packaged predictor verified on {len(x)} test windows")
    return metrics


def stage_kserve(bundle: Any, stage: Path, options: Mapping[str, str],
                 log: Callable[[str], None] = lambda _m: None) -> dict[str, float | int | str]:
    """Write the kserve deployment into directory ``stage`` (the zip's top folder), verify the
    packaged predictor on the bundle's test windows; return the build metrics."""
    t0 = time.monotonic()
    files = model_files(bundle)
    isvc = inference_service(bundle.name, options)
    stage.mkdir(parents=True, exist_ok=True)
    for fname, data in files.items():
        (stage / fname).write_bytes(data)
    (stage / ISVC_FILE).write_text(yaml.safe_dump(isvc, sort_keys=False))
    names = sorted([*files, ISVC_FILE, README_FILE])
    (stage / README_FILE).write_text(_readme(bundle.name, isvc, names))
    log(f"kserve: model directory ({', '.join(sorted(files))}) + {ISVC_FILE} for "
        f"{isvc['spec']['predictor']['model']['storageUri']}")
    metrics: dict[str, float | int | str] = {
        "flash_bytes": sum(len(v) for k, v in files.items() if k.endswith(".tflite")),
        "model_int8_bytes": len(bundle.model_int8),
        "storage_uri": isvc["spec"]["predictor"]["model"]["storageUri"],
        "inference_service": isvc["metadata"]["name"],
    }
    metrics.update(verify_stage(bundle, stage, options, log))
    metrics["stage_seconds"] = round(time.monotonic() - t0, 3)
    return metrics
