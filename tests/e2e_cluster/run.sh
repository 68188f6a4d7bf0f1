#!/usr/bin/env bash
# TinyForge end to end on a throw-away kind cluster: `make kind-e2e`.
#
# Needs: Docker, kind, internet (images for kind, Argo, cert-manager, KServe), and `make install`
# done (the tinyforge CLI, helm and kubectl in .venv/bin). Never runs on the build machines
# (no container engine/cluster there); tests/e2e_cluster/test_kind_e2e.py wraps it.
#
# Steps:
#   1. kind cluster; platform image built with docker and loaded into kind
#   2. cert-manager, Argo Workflows, KServe (RawDeployment mode)
#   3. the TinyForge chart, all services on
#   4. a scripted project: create project + API key, ingest a small synthetic accelerometer
#      data set over the Edge-Impulse-compatible HTTP API, design an impulse, generate features,
#      train, build a C library (and compile it), deploy an InferenceService and query it.
#
# Env: CLUSTER (kind cluster name), KEEP_CLUSTER=1 (do not delete it at the end),
#      ARGO_VERSION, KSERVE_VERSION, CERT_MANAGER_VERSION, TIMEOUT (kubectl waits).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"

CLUSTER="${CLUSTER:-tinyforge-e2e}"
NS=tinyforge
RELEASE=tf
FULL="$RELEASE-tinyforge"
ARGO_VERSION="${ARGO_VERSION:-v3.7.18}"
KSERVE_VERSION="${KSERVE_VERSION:-v0.15.2}"
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.16.2}"
TIMEOUT="${TIMEOUT:-600s}"
WORK="$(mktemp -d /tmp/tinyforge-e2e.XXXXXX)"
PIDS=()

log() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "FAIL: $*" >&2; exit 1; }

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    echo "--- diagnostics (exit $rc) ---" >&2
    kubectl -n "$NS" get pods,svc,workflows,inferenceservices 2>&1 | sed 's/^/  /' >&2 || true
    kubectl -n "$NS" logs "deploy/$FULL-api" --tail=50 2>&1 | sed 's/^/  api: /' >&2 || true
  fi
  if [ "${KEEP_CLUSTER:-0}" != 1 ]; then kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Wait until `curl` of URL succeeds (a port-forward is up), at most ~60 s.
wait_http() {
  for _ in $(seq 60); do curl -s -o /dev/null "$1" && return 0; sleep 1; done
  die "nothing answers at $1"
}

# kubectl port-forward in the background; remembered for cleanup.
forward() {
  kubectl -n "${3:-$NS}" port-forward "$1" "$2" >"$WORK/pf-${2%%:*}.log" 2>&1 &
  PIDS+=($!)
}

log "prerequisites"
for tool in docker kind kubectl helm tinyforge curl python3; do
  command -v "$tool" >/dev/null || die "$tool not found (docker + kind from your OS; the rest: make install)"
done
docker info >/dev/null 2>&1 || die "docker daemon not reachable"

log "1. kind cluster $CLUSTER + platform image"
kind get clusters 2>/dev/null | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
kubectl config use-context "kind-$CLUSTER"
VERSION="$(python3 -c 'import tomllib;print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')"
IMAGE="localhost/tinyforge/platform:$VERSION"
ENGINE=docker BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm IMAGES=platform bash images/build.sh
kind load docker-image "$IMAGE" --name "$CLUSTER"

log "2a. cert-manager $CERT_MANAGER_VERSION (KServe webhooks)"
kubectl apply -f "https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml"
kubectl -n cert-manager wait --for=condition=Available deploy --all --timeout="$TIMEOUT"

log "2b. Argo Workflows $ARGO_VERSION"
kubectl create namespace argo --dry-run=client -o yaml | kubectl apply -f -
# Server-side apply: the CRDs are too large for the last-applied annotation.
kubectl apply -n argo --server-side -f "https://github.com/argoproj/argo-workflows/releases/download/$ARGO_VERSION/install.yaml"
kubectl -n argo wait --for=condition=Available deploy/workflow-controller deploy/argo-server --timeout="$TIMEOUT"

log "2c. KServe $KSERVE_VERSION (RawDeployment)"
helm upgrade --install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd --version "$KSERVE_VERSION" \
  -n kserve --create-namespace --wait
helm upgrade --install kserve oci://ghcr.io/kserve/charts/kserve --version "$KSERVE_VERSION" \
  -n kserve --set kserve.controller.deploymentMode=RawDeployment --wait --timeout "$TIMEOUT"

log "3. TinyForge chart"
helm upgrade --install "$RELEASE" charts/tinyforge -n "$NS" --create-namespace \
  --set image.pullPolicy=Never \
  --set services.ingest.enabled=true --set services.dsp.enabled=true \
  --set services.train.enabled=true --set services.tuner.enabled=true \
  --set services.builder.enabled=true \
  --set objectStore.minio.persistence.size=2Gi --set database.postgresql.persistence.size=1Gi \
  --wait --timeout "$TIMEOUT"
helm test "$RELEASE" -n "$NS" 2>/dev/null || true   # no chart tests yet; kept for when they land
kubectl -n "$NS" get pods

log "3b. first API key (tinyforge bootstrap)"
ADMIN_KEY="$(kubectl -n "$NS" exec "deploy/$FULL-api" -- tinyforge bootstrap --json \
  | python3 -c 'import json,sys;print(json.load(sys.stdin)["api_key"])')"
[ -n "$ADMIN_KEY" ] || die "bootstrap printed no API key"

# The CLI talks to the api service; other services are reached through the same per-service
# address variables the chart gives the pods (TINYFORGE_<SERVICE>_ADDRESS).
port=4800
for svc in api ingest dsp train tuner builder; do
  forward "svc/$FULL-$svc" "$port:4800"
  export "TINYFORGE_${svc^^}_ADDRESS=127.0.0.1:$port"
  port=$((port + 1))
done
forward "svc/$FULL-ingest" "4810:4810"
export TINYFORGE_ADDRESS="$TINYFORGE_API_ADDRESS" TINYFORGE_API_KEY="$ADMIN_KEY"
export TINYFORGE_DATA_DIR="$WORK/client"
wait_http "http://127.0.0.1:4810/"

log "4a. project + project API key"
PROJECT_ID="$(tinyforge project create e2e-motion --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')"
export TINYFORGE_PROJECT_ID="$PROJECT_ID"
PROJECT_KEY="$(tinyforge apikey create --project-id "$PROJECT_ID" --role member --json \
  | python3 -c 'import json,sys;print(json.load(sys.stdin)["secret"])')"
echo "project $PROJECT_ID"

log "4b. ingest a small data set over the Edge-Impulse HTTP API"
# 2 classes x 12 samples of 2 s, 3-axis accelerometer at 100 Hz: 'wave' (a 2 Hz sine + noise)
# and 'idle' (noise only). Each sample is an EI data-acquisition JSON document (alg none).
python3 - "$WORK/data" <<'PY'
import json, math, random, sys, time
from pathlib import Path
out = Path(sys.argv[1]); out.mkdir(parents=True)
rng = random.Random(7)
for label in ("wave", "idle"):
    for i in range(12):
        values = []
        for t in range(200):
            s = math.sin(2 * math.pi * 2.0 * t / 100) * 9.0 if label == "wave" else 0.0
            values.append([round(s + rng.gauss(0, 0.5), 3), round(rng.gauss(0, 0.5), 3),
                           round(9.81 + rng.gauss(0, 0.3), 3)])
        doc = {"protected": {"ver": "v1", "alg": "none", "iat": int(time.time())},
               "signature": "0" * 64,
               "payload": {"device_name": "e2e-01", "device_type": "KIND_E2E", "interval_ms": 10,
                           "sensors": [{"name": "accX", "units": "m/s2"},
                                       {"name": "accY", "units": "m/s2"},
                                       {"name": "accZ", "units": "m/s2"}],
                           "values": values}}
        (out / f"{label}.{i:02d}.json").write_text(json.dumps(doc))
PY
uploaded=0
for f in "$WORK"/data/*.json; do
  name="$(basename "$f")"; label="${name%%.*}"
  code="$(curl -s -o "$WORK/upload.out" -w '%{http_code}' -X POST \
    -H "x-api-key: $PROJECT_KEY" -H "x-file-name: $name" -H "x-label: $label" \
    -H "Content-Type: application/json" --data-binary "@$f" \
    "http://127.0.0.1:4810/api/split/data")"
  [ "$code" = 200 ] || die "upload of $name answered $code: $(cat "$WORK/upload.out")"
  uploaded=$((uploaded + 1))
done
echo "uploaded $uploaded samples"
tinyforge dataset summary --json | tee "$WORK/summary.json"
python3 - "$WORK/summary.json" "$uploaded" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
total = int(summary["total_count"])
assert total == int(sys.argv[2]), f"dataset has {total} samples, uploaded {sys.argv[2]}"
PY

log "4c. impulse + features (an Argo workflow when the dsp service runs the argo engine)"
IMPULSE_ID="$(tinyforge impulse create e2e --json --definition '{
  "input": {"type": "time-series", "window_size_ms": 2000, "window_stride_ms": 500,
            "frequency_hz": 100, "axes": ["accX", "accY", "accZ"]},
  "processing": [{"name": "spectral", "block": "spectral_analysis"}],
  "learning": [{"name": "nn", "type": "classifier", "inputs": ["spectral"]}]}' \
  | python3 -c 'import json,sys;print(json.load(sys.stdin)["impulse_id"])')"
tinyforge features generate "$IMPULSE_ID"
kubectl -n "$NS" get workflows || true

log "4d. train"
tinyforge train --impulse "$IMPULSE_ID" --epochs 30 --json | tee "$WORK/train.json"
python3 - "$WORK/train.json" <<'PY'
import json, sys
model = json.load(open(sys.argv[1]))
acc = model["int8_accuracy"] if model.get("int8_accuracy") is not None else model["float_accuracy"]
assert acc >= 0.8, f"validation accuracy {acc} < 0.8 on an easy two-class set"
print("model", model["id"], "accuracy", acc)
PY

log "4e. build a C library (verified on the builder) and compile it here"
tinyforge build --format c-library --target linux-x86_64 -o "$WORK/lib.zip"
mkdir -p "$WORK/lib" && python3 -m zipfile -e "$WORK/lib.zip" "$WORK/lib"
make -C "$WORK/lib" >/dev/null && echo "C library compiled"

log "4f. deploy an InferenceService and query it"
# The kserve build uploads the model directory to MinIO and ships the InferenceService for it.
tinyforge build --format kserve --target linux-x86_64 -o "$WORK/kserve.zip"
mkdir -p "$WORK/kserve" && python3 -m zipfile -e "$WORK/kserve.zip" "$WORK/kserve"
MODEL="$(python3 -c 'import sys,yaml;print(yaml.safe_load(open(sys.argv[1]))["metadata"]["name"])' \
  "$WORK/kserve/inferenceservice.yaml")"
kubectl -n "$NS" apply -f "$WORK/kserve/inferenceservice.yaml"
kubectl -n "$NS" wait --for=condition=Ready "inferenceservice/$MODEL" --timeout="$TIMEOUT"
forward "svc/$MODEL-predictor" "8080:80"
wait_http "http://127.0.0.1:8080/v2/health/ready"
python3 - "$WORK/data/wave.00.json" "$MODEL" <<'PY' > "$WORK/infer.json"
import json, sys
sample = json.load(open(sys.argv[1]))["payload"]["values"]
flat = [v for row in sample for v in row]
print(json.dumps({"inputs": [{"name": "input", "shape": [1, len(flat)], "datatype": "FP32",
                              "data": flat}]}))
PY
curl -sf -H "Content-Type: application/json" --data-binary "@$WORK/infer.json" \
  "http://127.0.0.1:8080/v2/models/$MODEL/infer" | tee "$WORK/answer.json"
python3 - "$WORK/answer.json" <<'PY'
import json, sys
answer = json.load(open(sys.argv[1]))
outputs = {o["name"]: o["data"] for o in answer["outputs"]}
scores = outputs.get("scores") or next(iter(outputs.values()))
assert len(scores) == 2, f"expected one score per class, got {scores}"
print("\nclass scores", scores)
PY

log "4g. pipelines: retrain as one Argo workflow (features -> train -> test -> build)"
tinyforge pipeline ls
tinyforge pipeline run tinyforge-retrain --project "$PROJECT_ID" -p impulse-id="$IMPULSE_ID" \
  -p build-format=c-library -p build-target=linux-x86_64
kubectl -n "$NS" get workflows

log "4h. a custom transform block as its own Argo step (image built here, loaded into kind)"
# The block's Dockerfile builds FROM the block base (Debian + python3 + numpy); on a Docker host
# that base is python:3.11-slim-bookworm with numpy.
printf 'FROM docker.io/library/python:3.11-slim-bookworm\nRUN pip install --no-cache-dir numpy\n' \
  | docker build -t localhost/tinyforge/block-base:bookworm -
BLOCK_IMAGE="localhost/tinyforge-blocks/resample-csv:e2e"
docker build -t "$BLOCK_IMAGE" blocks/resample-csv
kind load docker-image "$BLOCK_IMAGE" --name "$CLUSTER"
tinyforge blocks register blocks/resample-csv --name resample-csv --image "$BLOCK_IMAGE" --no-source
python3 - "$WORK/csv" <<'PY'
import math, pathlib, sys
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
for i in range(3):  # 2 s at 100 Hz, a time column in ms
    rows = ["timestamp,accX,accY,accZ"] + [
        f"{t * 10},{math.sin(t / 7 + i):.4f},{math.cos(t / 5):.4f},{0.1 * i:.4f}" for t in range(200)]
    (out / f"raw.{i}.csv").write_text("\n".join(rows) + "\n")
PY
tinyforge upload --category training --label csv-raw "$WORK"/csv/*.csv
tinyforge pipeline run tinyforge-transform --project "$PROJECT_ID" -p block=resample-csv \
  -p source=dataset:training/csv-raw -p parameters='{"target-frequency": 50}' \
  -p label=csv-50hz --json | tee "$WORK/transform.json"
kubectl -n "$NS" get pods -l workflows.argoproj.io/workflow -o jsonpath='{..image}' \
  | tr ' ' '\n' | grep -qx "$BLOCK_IMAGE" || die "no workflow pod ran the block image"
tinyforge dataset summary --json | tee "$WORK/summary2.json"
python3 - "$WORK/summary2.json" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
assert "csv-50hz" in json.dumps(summary), "the transformed samples were not ingested"
PY

log "PASSED: kind end to end"
