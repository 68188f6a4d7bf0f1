"""The Helm chart renders, and what it renders is valid and wired as the platform expects.

Core objects are checked with kubernetes-validate --strict (offline OpenAPI schemas of a
current Kubernetes), Argo/KServe custom resources with their official CRD schemas in strict
mode; bad values must be rejected by values.schema.json at template time.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.serve import SERVICE_MODULES
from tests.chart.chartlib import (
    CHART,
    KUBE_VERSION,
    UNSCHEMATIZED,
    VALUES_DIR,
    crd_errors,
    is_core,
    render,
    run_helm,
)

SCENARIOS = {"default": (), "external": ("external.yaml",), "ha": ("ha.yaml",)}
ALL_SERVICES = ["api", "ingest", "dsp", "train", "tuner", "builder"]


def scenario(name: str):
    """Rendered chart of a named scenario; the render must have succeeded."""
    r = render(SCENARIOS[name])
    assert r.returncode == 0, r.stderr
    return r


def container_env(deploy: dict[str, Any]) -> dict[str, Any]:
    """name -> env entry of a Deployment's first container."""
    c = deploy["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in c.get("env", [])}


@pytest.mark.parametrize("name", SCENARIOS)
def test_helm_lint(name: str) -> None:
    args = ["lint", "--strict", str(CHART)]
    for v in SCENARIOS[name]:
        args += ["-f", str(VALUES_DIR / v)]
    proc = run_helm(args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("name", SCENARIOS)
def test_core_objects_are_valid_kubernetes(name: str) -> None:
    import kubernetes_validate

    docs = [d for d in scenario(name).docs if is_core(d)]
    assert len(docs) >= 10
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")


@pytest.mark.parametrize("name", SCENARIOS)
def test_custom_resources_match_official_crds(name: str, crd_schemas: None) -> None:
    crs = [d for d in scenario(name).docs if not is_core(d)]
    for doc in crs:
        if (doc["apiVersion"], doc["kind"]) in UNSCHEMATIZED:
            continue
        assert crd_errors(doc) == [], f"{doc['kind']}/{doc['metadata']['name']}"
    # The chart always ships the impulse ServingRuntime, so there is something to check.
    assert any(d["kind"] == "ServingRuntime" for d in crs)


def test_strict_crd_validation_catches_a_typo(crd_schemas: None) -> None:
    runtime = scenario("default").one("ServingRuntime", "-impulse")
    bad = yaml.safe_load(yaml.safe_dump(runtime))
    bad["spec"]["supportedModelFormat"] = bad["spec"].pop("supportedModelFormats")
    assert any("supportedModelFormat" in e for e in crd_errors(bad))


def test_serving_runtime_args_are_a_real_serve_command_line() -> None:
    """The impulse ServingRuntime runs `tinyforge serve` on the model directory KServe mounts,
    on every interface (it listens on 127.0.0.1 by default) and on the declared port; the args
    are parsed by the real CLI, so a renamed option fails here."""
    import typer

    from tinyforge.cli.main import app

    container = scenario("default").one("ServingRuntime", "-impulse")["spec"]["containers"][0]
    args = container["args"]
    assert args[:2] == ["tinyforge", "serve"]
    serve = typer.main.get_command(app).get_command(None, "serve")
    params = serve.make_context("serve", [a.replace("{{.Name}}", "kws") for a in args[2:]]).params
    assert str(params["model"]) == "/mnt/models"
    assert params["name"] == "kws"
    assert params["host"] == "0.0.0.0"
    assert params["http_port"] in [p["containerPort"] for p in container["ports"]]


def test_http_route_targets_the_ingest_http_port() -> None:
    r = scenario("ha")
    route = r.one("HTTPRoute", "-ingestion")
    assert route["spec"]["parentRefs"] == [
        {"name": "public", "namespace": "gateways", "sectionName": "https"}
    ]
    backend = route["spec"]["rules"][0]["backendRefs"][0]
    svc = r.one("Service", "-ingest")
    assert backend["name"] == svc["metadata"]["name"]
    assert backend["port"] in [p["port"] for p in svc["spec"]["ports"] if p["name"] == "http"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_services_pdbs_and_policies_select_their_pods(name: str) -> None:
    r = scenario(name)
    deploys = {d["metadata"]["name"]: d for d in r.find("Deployment")}
    assert deploys
    for dname, deploy in deploys.items():
        pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
        sel = deploy["spec"]["selector"]["matchLabels"]
        assert sel.items() <= pod_labels.items()
        svc = r.one("Service", dname.rsplit("-", 1)[1])
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        ports = {
            p["name"]: p["containerPort"]
            for p in deploy["spec"]["template"]["spec"]["containers"][0]["ports"]
        }
        for sp in svc["spec"]["ports"]:
            assert sp["targetPort"] in ports
        pdb = r.one("PodDisruptionBudget", dname.rsplit("-", 1)[1])
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        pol = r.one("NetworkPolicy", "-" + dname.rsplit("-", 1)[1])
        assert pol["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
        assert {p["port"] for p in pol["spec"]["ingress"][0]["ports"]} == set(ports.values())


def test_default_runs_landed_services_with_grpc_probes_and_locked_down_pods() -> None:
    r = scenario("default")
    deploys = r.find("Deployment")
    # every service that has landed runs by default; the tuner has no service yet
    landed = ["api", "builder", "dsp", "ingest", "train"]
    assert [d["metadata"]["name"] for d in deploys] == [f"tf-tinyforge-{n}" for n in landed]
    assert set(landed) <= set(SERVICE_MODULES)
    ingest = r.one("Deployment", "-ingest")["spec"]["template"]["spec"]["containers"][0]
    assert ingest["command"] + ingest["args"] == [
        "tinyforge",
        "service",
        "run",
        "ingest",
        "--port",
        "4800",
    ]
    assert {"name": "http", "containerPort": 4810, "protocol": "TCP"} in ingest["ports"]
    pod = deploys[0]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["command"] + c["args"] == ["tinyforge", "service", "run", "api", "--port", "4800"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["grpc"]["port"] == 4800
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/var/lib/tinyforge", "/tmp"}
    assert c["resources"]["limits"] and c["resources"]["requests"]
    # In-chart data stores with persistent volumes, credentials from generated Secrets.
    for store in ("-minio", "-postgresql"):
        sts = r.one("StatefulSet", store)
        assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
        secret = r.one("Secret", store)
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert sts["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_predictors_get_the_minio_credentials(crd_schemas: None) -> None:
    """KServe's storage initializer can read MinIO, and an InferenceService as the builder
    would create it (runtime + service account from the chart) is valid for the CRD."""
    r = scenario("default")
    minio = r.one("Secret", "-minio")["stringData"]
    s3 = r.one("Secret", "-kserve-s3")
    assert s3["stringData"] == {
        "AWS_ACCESS_KEY_ID": minio["rootUser"],
        "AWS_SECRET_ACCESS_KEY": minio["rootPassword"],
    }
    assert s3["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"] == (
        "tf-tinyforge-minio.tinyforge.svc:9000"
    )
    sa = r.one("ServiceAccount", "-predictor")
    assert sa["secrets"] == [{"name": s3["metadata"]["name"]}]
    cm = r.one("ConfigMap", "-config")["data"]
    assert cm["TINYFORGE_KSERVE_SERVICE_ACCOUNT"] == sa["metadata"]["name"]
    runtime = r.one("ServingRuntime", "-impulse")
    fmt = runtime["spec"]["supportedModelFormats"][0]["name"]
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "kws",
            "namespace": cm["TINYFORGE_KSERVE_NAMESPACE"],
            "labels": {"tinyforge.io/object-store-client": "true"},
            "annotations": {
                "serving.kserve.io/deploymentMode": cm["TINYFORGE_KSERVE_DEPLOYMENT_MODE"]
            },
        },
        "spec": {
            "predictor": {
                "serviceAccountName": cm["TINYFORGE_KSERVE_SERVICE_ACCOUNT"],
                "model": {
                    "modelFormat": {"name": fmt},
                    "runtime": cm["TINYFORGE_KSERVE_RUNTIME"],
                    "storageUri": f"s3://{cm['TINYFORGE_S3_BUCKET']}/projects/1/builds/7/",
                },
            }
        },
    }
    assert cm["TINYFORGE_KSERVE_RUNTIME"] == runtime["metadata"]["name"]
    assert crd_errors(isvc) == []


def test_rbac_grants_exactly_what_the_services_need() -> None:
    r = scenario("default")
    role = r.one("Role", "tf-tinyforge")
    got = {
        (g, res, tuple(sorted(rule["verbs"])))
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for res in rule["resources"]
    }
    assert got == {
        (
            "argoproj.io",
            "workflows",
            ("create", "delete", "get", "list", "patch", "update", "watch"),
        ),
        ("argoproj.io", "workflowtemplates", ("get", "list")),
        (
            "serving.kserve.io",
            "inferenceservices",
            ("create", "delete", "get", "list", "patch", "update", "watch"),
        ),
        ("", "pods", ("create", "delete", "get", "list", "watch")),
        ("", "pods/log", ("get",)),
    }
    binding = r.one("RoleBinding", "tf-tinyforge")
    sa = r.one("ServiceAccount", "tf-tinyforge")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "tinyforge"}
    ]
    deploy = r.one("Deployment", "-api")
    assert deploy["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    executor = r.one("Role", "-workflow")
    assert executor["rules"] == [
        {
            "apiGroups": ["argoproj.io"],
            "resources": ["workflowtaskresults"],
            "verbs": ["create", "patch"],
        }
    ]


def test_rbac_follows_argo_and_kserve_namespaces() -> None:
    r = scenario("ha")
    roles = {d["metadata"]["namespace"]: d for d in r.find("Role", "tf-tinyforge")}
    assert set(roles) == {"tinyforge", "tinyforge-jobs", "tinyforge-serving"}
    groups = {
        ns: {g for rule in role["rules"] for g in rule["apiGroups"]} for ns, role in roles.items()
    }
    assert groups == {
        "tinyforge": {""},
        "tinyforge-jobs": {"argoproj.io", ""},  # "": step logs through the Argo Server
        "tinyforge-serving": {"serving.kserve.io"},
    }
    for b in r.find("RoleBinding", "tf-tinyforge"):
        assert b["subjects"][0]["namespace"] == "tinyforge"
    assert r.one("ServiceAccount", "-workflow")["metadata"]["namespace"] == "tinyforge-jobs"


def test_settings_resolve_for_the_platform() -> None:
    """The rendered env, fed to tinyforge.config, gives a cluster-mode configuration."""
    from tinyforge.config import Settings

    r = scenario("default")
    cm = r.one("ConfigMap", "-config")["data"]
    deploy = r.one("Deployment", "-api")
    env = dict(cm)
    for name, entry in container_env(deploy).items():
        env[name] = entry.get("value", f"<{name} from secret>")
    mp = pytest.MonkeyPatch()
    try:
        for k, v in env.items():
            mp.setenv(k, v)
        s = Settings.from_env()
    finally:
        mp.undo()
    assert s.grpc_host == "0.0.0.0" and s.grpc_port == 4800
    assert s.object_store == "minio"
    assert s.s3_endpoint == "tf-tinyforge-minio:9000"
    assert r.one("Service", "-minio")["spec"]["ports"][0]["port"] == 9000
    assert s.database_url.startswith("postgresql+psycopg://tinyforge:")
    assert "@tf-tinyforge-postgresql:5432/tinyforge" in s.database_url
    assert env["TINYFORGE_DB_PASSWORD"].startswith("<")  # from the Secret, never inline
    assert s.data_dir == Path("/var/lib/tinyforge")
    assert cm["TINYFORGE_API_ADDRESS"] == "tf-tinyforge-api:4800"
    assert cm["OTEL_SDK_DISABLED"] == "true"


def test_external_stores_render_no_minio_or_postgresql() -> None:
    r = scenario("external")
    assert r.find("StatefulSet") == []
    assert not [s for s in r.find("Secret") if s["metadata"]["name"].startswith("tf-")]
    cm = r.one("ConfigMap", "-config")["data"]
    assert cm["TINYFORGE_S3_ENDPOINT"] == "s3.eu-central-1.amazonaws.com"
    assert cm["TINYFORGE_S3_SECURE"] == "true"
    assert cm["TINYFORGE_S3_REGION"] == "eu-central-1"
    assert cm["TINYFORGE_S3_BUCKET"] == "acme-tinyforge"
    env = container_env(r.one("Deployment", "-api"))
    assert env["TINYFORGE_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "tinyforge-db",
        "key": "sqlalchemy-url",
    }
    assert env["TINYFORGE_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "tinyforge-s3"
    policies = [p["metadata"]["name"] for p in r.find("NetworkPolicy")]
    assert policies == [f"tf-tinyforge-{n}" for n in ["api", "builder", "dsp", "ingest", "train"]]


def test_ha_replicas_ingress_and_otel() -> None:
    r = scenario("ha")
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in r.find("Deployment")}
    assert replicas == {
        "tf-tinyforge-api": 3,
        "tf-tinyforge-ingest": 3,
        "tf-tinyforge-dsp": 2,
        "tf-tinyforge-train": 2,
        "tf-tinyforge-tuner": 2,
        "tf-tinyforge-builder": 2,
    }
    ing = r.one("Ingress", "-ingestion")
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "tf-tinyforge-ingest", "port": {"name": "http"}}
    ingest = r.one("Deployment", "-ingest")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "http", "containerPort": 4810, "protocol": "TCP"} in ingest["ports"]
    cm = r.one("ConfigMap", "-config")["data"]
    assert cm["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability.svc:4317"
    assert cm["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
    assert cm["OTEL_SDK_DISABLED"] == "false"
    env = container_env(r.one("Deployment", "-train"))
    assert env["OTEL_SERVICE_NAME"]["value"] == "tinyforge-train"
    assert "deployment.environment=production" in env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
    pol = r.one("NetworkPolicy", "-api")
    assert len(pol["spec"]["ingress"][0]["from"]) == 2
    image = r.one("Deployment", "-api")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.example.com/tinyforge/platform:0.1.0"


@pytest.mark.parametrize(
    ("sets", "field"),
    [
        (("services.api.replicas=-1",), "/services/api/replicas"),
        (("services.api.replicas=three",), "/services/api/replicas"),
        (("services.api.replica=2",), "replica"),
        (("services.injest.enabled=true",), "injest"),
        (("grpcPort=70000",), "/grpcPort"),
        (("objectStore.mode=s3",), "/objectStore/mode"),
        (("objectStore.mode=external",), "/objectStore/external/endpoint"),
        (("database.mode=external",), "/database/external/existingSecret"),
        (("services.train.resources.limits.cpu=0.5m5",), "/services/train/resources/limits/cpu"),
        (("otel.protocol=udp",), "/otel/protocol"),
        (("unknownTopLevel=1",), "unknownTopLevel"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(sets: tuple[str, ...], field: str) -> None:
    r = render((), sets)
    assert r.returncode != 0
    assert field in r.stderr, r.stderr


def test_ingress_without_ingest_service_fails_clearly() -> None:
    r = render((), ("ingress.enabled=true", "services.ingest.enabled=false"))
    assert r.returncode != 0
    assert "services.ingest.enabled" in r.stderr


@pytest.mark.parametrize("service", ALL_SERVICES)
def test_each_service_can_be_enabled_alone(service: str) -> None:
    off = [f"services.{s}.enabled=false" for s in ALL_SERVICES if s != service]
    r = render((), (*off, f"services.{service}.enabled=true"))
    assert r.returncode == 0, r.stderr
    assert [d["metadata"]["name"] for d in r.find("Deployment")] == [f"tf-tinyforge-{service}"]


def test_services_list_matches_values_and_schema() -> None:
    """Adding a service = a values.yaml entry + the schema property; both must agree."""
    import json

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert sorted(values["services"]) == sorted(schema["properties"]["services"]["properties"])
    assert sorted(values["services"]) == sorted(ALL_SERVICES)


def _hera_workflow_template_yaml() -> str:
    """A small WorkflowTemplate built with Hera, as hera_workflows/ will render them."""
    from hera.workflows import Container, Parameter, Steps, WorkflowTemplate
    from hera.workflows.models import Metadata

    with WorkflowTemplate(
        name="tinyforge-features",
        entrypoint="main",
        arguments=[Parameter(name="project"), Parameter(name="impulse-version", value="1")],
        pod_metadata=Metadata(labels={"tinyforge.io/object-store-client": "true"}),
    ) as wt:
        gen = Container(
            name="generate",
            image="localhost/tinyforge/platform:0.1.0",
            command=["tinyforge", "step", "features"],
            args=["--project", "{{workflow.parameters.project}}"],
        )
        with Steps(name="main"):
            gen()
    return wt.to_yaml()


def test_shipped_workflow_templates_are_rendered_and_valid(
    tmp_path: Path, crd_schemas: None
) -> None:
    chart = tmp_path / "tinyforge"
    shutil.copytree(CHART, chart)
    wt_dir = chart / "files" / "workflowtemplates"
    (wt_dir / "features.yaml").write_text(_hera_workflow_template_yaml())
    r = render((), (), str(chart))
    assert r.returncode == 0, r.stderr
    wts = r.find("WorkflowTemplate", "tinyforge-features")  # beside the shipped pipelines
    assert [w["metadata"]["name"] for w in wts] == ["tinyforge-features"]
    assert crd_errors(wts[0]) == []
    # Disabled: nothing shipped.
    off = render((), ("workflowTemplates.enabled=false",), str(chart))
    assert off.find("WorkflowTemplate") == []
    # A broken rendered template is caught by the strict CRD check.
    (wt_dir / "features.yaml").write_text(
        _hera_workflow_template_yaml().replace("entrypoint:", "entrypiont:")
    )
    bad = render((), (), str(chart), release="tf-broken")  # new cache key: the file changed
    broken = bad.one("WorkflowTemplate", "tinyforge-features")
    assert any("entrypiont" in e for e in crd_errors(broken))


def test_notes_tell_how_to_get_the_first_api_key() -> None:
    proc = run_helm(["install", "tf", str(CHART), "--dry-run=client", "--namespace", "tinyforge"])
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "kubectl -n tinyforge exec deploy/tf-tinyforge-api -- tinyforge bootstrap" in notes
    assert textwrap.dedent("rollout status deploy/tf-tinyforge-api") in notes
