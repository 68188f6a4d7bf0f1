"""Local runner: executes the same Hera/Argo workflow definitions the cluster runs.

Embedded mode has no Argo controller, so this module walks the compiled workflow (the dict
``WorkflowTemplate.to_dict()`` gives, i.e. exactly what Argo would receive) and reproduces the
Argo semantics TinyForge pipelines use:

- templates: ``container``, ``script``, ``dag`` and ``steps`` (nested to any depth);
- inputs with defaults, ``{{inputs.parameters.*}}``, ``{{workflow.parameters.*}}``,
  ``{{tasks|steps.NAME.outputs.parameters.*}}``, ``.outputs.result``, ``{{item}}``/``{{item.k}}``;
- DAG ``dependencies``/``depends`` (with task results), ``when`` conditions, fan-out with
  ``withParam``/``withItems`` (aggregated outputs are JSON lists, as in Argo), fail-fast;
- ``retryStrategy.limit`` and an ``expression`` comparing ``asInt(lastRetry.exitCode)`` with a
  number (e.g. "don't retry exit code 2"), ``activeDeadlineSeconds``, ``onExit`` with
  ``{{workflow.status}}``;
- outputs parameters ``valueFrom.path`` (mapped into a per-node directory) and ``default``;
- S3 artifacts located by key only (``s3: {key}``, outputs with ``archive: {none: {}}``) on
  container/script templates, through the runner's :class:`~tinyforge.workflows.artifacts.
  ArtifactStore` (the platform's object store): inputs are downloaded into the node directory,
  outputs collected from a directory created for them, and both are handed to the executor as
  ``mounts`` (container path -> host path). Executors that do not mount (local processes) get
  those container paths in the argv replaced by the host paths;
- ``podSpecPatch``: the ``main`` container's ``command``/``args`` and the pod's
  ``activeDeadlineSeconds`` in the (substituted) patch replace the template's.

Leaf steps run through a :class:`~tinyforge.workflows.executors.StepExecutor` chosen by image,
with a bounded number running at once. Anything the runner does not implement (other artifact
kinds, ``template.resource``, unknown variables) fails the node with a message saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tinyforge.workflows.artifacts import ArtifactError, ArtifactStore
from tinyforge.workflows.executors import (
    LocalProcessExecutor,
    StepCancelled,
    StepExecutor,
    StepTimedOut,
)
from tinyforge.workflows.expressions import (
    ExpressionError,
    depends_targets,
    evaluate_depends,
    evaluate_when,
    substitute,
)

SUCCEEDED, FAILED, ERROR, SKIPPED, OMITTED = "Succeeded", "Failed", "Error", "Skipped", "Omitted"
#: Environment variable a step reads to find where its output-parameter paths are rooted.
OUTPUT_ROOT_ENV = "TINYFORGE_OUTPUT_ROOT"


@dataclass
class NodeResult:
    """Outcome of one node (a template invocation, possibly with children)."""

    name: str
    template: str
    phase: str
    message: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    result: str | None = None  # stdout of a script template (Argo's outputs.result)
    attempts: int = 0
    log_tail: list[str] = field(default_factory=list)
    children: list[NodeResult] = field(default_factory=list)

    def walk(self) -> list[NodeResult]:
        """This node and all its descendants, depth first."""
        out = [self]
        for c in self.children:
            out.extend(c.walk())
        return out


@dataclass
class WorkflowRun:
    """Outcome of a whole workflow run."""

    phase: str
    message: str
    root: NodeResult
    exit_handler: NodeResult | None = None

    def node(self, name: str) -> NodeResult:
        """Find a node by its short name (e.g. ``"train"``) or full path."""
        for n in self.root.walk() + (self.exit_handler.walk() if self.exit_handler else []):
            if n.name == name or n.name.rsplit(".", 1)[-1] == name:
                return n
        raise KeyError(name)


class LocalRunner:
    """Runs Argo workflow definitions as local processes.

    ``executor_for_image`` picks how a leaf step runs (default: a local process for any image);
    ``max_parallel`` bounds the leaf steps running at once; ``artifacts`` is where S3
    artifacts live (without it, a template using artifacts fails its node).
    """

    def __init__(
        self,
        *,
        max_parallel: int = 2,
        executor_for_image: Callable[[str], StepExecutor] | None = None,
        work_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        if max_parallel < 1:
            raise ValueError("max_parallel must be >= 1")
        self._slots = threading.BoundedSemaphore(max_parallel)
        self._max_parallel = max_parallel
        default = LocalProcessExecutor()
        self._executor_for_image = executor_for_image or (lambda _image: default)
        self._work_dir = work_dir
        self._env = dict(env or {})
        self._artifacts = artifacts

    # -- public -------------------------------------------------------------------------------

    def run(
        self,
        workflow: Any,
        parameters: Mapping[str, str] | None = None,
        *,
        log: Callable[[str], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> WorkflowRun:
        """Run ``workflow`` (a Hera Workflow/WorkflowTemplate or its dict) to completion.

        ``parameters`` override the workflow's ``spec.arguments.parameters``. ``log`` receives
        every output line prefixed with the node name; ``cancelled`` is polled, and when it
        returns True the running steps are stopped and the run ends Failed("cancelled").
        """
        wf = workflow.to_dict() if hasattr(workflow, "to_dict") else dict(workflow)
        spec = wf.get("spec", {})
        templates = {t["name"]: t for t in spec.get("templates", [])}
        wf_params = {
            p["name"]: str(p.get("value", p.get("default", "")))
            for p in spec.get("arguments", {}).get("parameters", [])
        }
        for k, v in (parameters or {}).items():
            if k not in wf_params:
                raise ValueError(f"workflow has no parameter {k!r} (has: {sorted(wf_params)})")
            wf_params[k] = str(v)
        name = wf.get("metadata", {}).get("name") or wf.get("metadata", {}).get(
            "generateName", "wf"
        )
        tmp = Path(tempfile.mkdtemp(prefix="tinyforge-run-", dir=self._work_dir))
        run = _Run(
            runner=self,
            templates=templates,
            workflow_scope={
                "workflow.name": name.rstrip("-"),
                **{f"workflow.parameters.{k}": v for k, v in wf_params.items()},
            },
            log=log or (lambda _line: None),
            cancelled=cancelled or (lambda: False),
            root_dir=tmp,
        )
        try:
            entry = spec.get("entrypoint")
            if entry not in templates:
                raise ValueError(f"entrypoint {entry!r} is not a template of the workflow")
            root = run.execute(entry, {}, name.rstrip("-"))
            phase = SUCCEEDED if root.phase == SUCCEEDED else FAILED
            message = root.message
            exit_node = None
            if spec.get("onExit"):
                run.workflow_scope["workflow.status"] = phase
                run.exit_phase = True
                exit_node = run.execute(spec["onExit"], {}, f"{root.name}.onExit")
                if exit_node.phase != SUCCEEDED and phase == SUCCEEDED:
                    phase, message = FAILED, f"exit handler failed: {exit_node.message}"
            return WorkflowRun(phase=phase, message=message, root=root, exit_handler=exit_node)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class _Run:
    """State of one workflow run; executes templates recursively."""

    def __init__(
        self,
        *,
        runner: LocalRunner,
        templates: dict[str, dict[str, Any]],
        workflow_scope: dict[str, str],
        log: Callable[[str], None],
        cancelled: Callable[[], bool],
        root_dir: Path,
    ) -> None:
        self.runner = runner
        self.templates = templates
        self.workflow_scope = workflow_scope
        self._log = log
        self._cancelled = cancelled
        self.root_dir = root_dir
        self.exit_phase = False  # the exit handler runs even after a cancel
        self._counter = 0
        self._lock = threading.Lock()

    def log(self, line: str) -> None:
        with self._lock:
            self._log(line)

    def cancelled(self) -> bool:
        return (not self.exit_phase) and self._cancelled()

    def _node_dir(self) -> Path:
        with self._lock:
            self._counter += 1
            n = self._counter
        d = self.root_dir / f"node-{n}"
        d.mkdir(parents=True)
        return d

    # -- template dispatch ----------------------------------------------------------------------

    def execute(self, template_name: str, args: Mapping[str, str], node_name: str) -> NodeResult:
        tpl = self.templates.get(template_name)
        if tpl is None:
            return NodeResult(
                node_name, template_name, ERROR, f"no template named {template_name!r}"
            )
        if self.cancelled():
            return NodeResult(node_name, template_name, FAILED, "cancelled")
        try:
            inputs = self._bind_inputs(tpl, args)
        except ExpressionError as exc:
            return NodeResult(node_name, template_name, ERROR, str(exc))
        scope = {
            **self.workflow_scope,
            **{f"inputs.parameters.{k}": v for k, v in inputs.items()},
        }
        uses_artifacts = tpl.get("inputs", {}).get("artifacts") or tpl.get("outputs", {}).get(
            "artifacts"
        )
        if uses_artifacts and ("dag" in tpl or "steps" in tpl):
            return NodeResult(
                node_name,
                template_name,
                ERROR,
                f"template {template_name!r} passes artifacts between tasks; the local runner "
                "supports S3 artifacts (by key) on container and script templates only",
            )
        if "dag" in tpl:
            return self._run_dag(tpl, scope, node_name)
        if "steps" in tpl:
            return self._run_steps(tpl, scope, node_name)
        if "container" in tpl or "script" in tpl:
            return self._run_leaf(tpl, scope, node_name)
        kinds = sorted(k for k in tpl if k not in {"name", "inputs", "outputs", "metadata"})
        return NodeResult(
            node_name,
            template_name,
            ERROR,
            f"template {template_name!r} kind {kinds} is not supported by the local runner",
        )

    def _bind_inputs(self, tpl: dict[str, Any], args: Mapping[str, str]) -> dict[str, str]:
        bound: dict[str, str] = {}
        for p in tpl.get("inputs", {}).get("parameters", []):
            name = p["name"]
            if name in args:
                bound[name] = args[name]
            elif "value" in p:
                bound[name] = substitute(str(p["value"]), self.workflow_scope)
            elif "default" in p:
                bound[name] = substitute(str(p["default"]), self.workflow_scope)
            else:
                raise ExpressionError(
                    f"template {tpl['name']!r} needs input parameter {name!r}, none given"
                )
        return bound

    # -- leaf steps -----------------------------------------------------------------------------

    def _run_leaf(self, tpl: dict[str, Any], scope: dict[str, str], node_name: str) -> NodeResult:
        name = tpl["name"]
        is_script = "script" in tpl
        body = tpl["script"] if is_script else tpl["container"]
        node_dir = self._node_dir()
        out_paths = {
            p["name"]: p["valueFrom"]["path"]
            for p in tpl.get("outputs", {}).get("parameters", [])
            if "path" in p.get("valueFrom", {})
        }
        # Absolute output paths of the container are re-rooted into this node's directory.
        path_map = {path: str(node_dir / path.lstrip("/")) for path in out_paths.values()}
        try:
            image = substitute(str(body.get("image", "")), scope)
            patch = _pod_spec_patch(tpl, scope)
            main = patch.get("main", {})
            command = main["command"] if "command" in main else body.get("command", [])
            args = main["args"] if "args" in main else body.get("args", [])
            # A patch is substituted once as a whole (as Argo does), not again per argument.
            argv = [a if "command" in main else substitute(str(a), scope) for a in command]
            argv += [a if "args" in main else substitute(str(a), scope) for a in args]
            if is_script:
                src = node_dir / "script"
                src.write_text(substitute(body.get("source", ""), scope))
                argv = argv or ["python"]
                argv.append(str(src))
            env = {
                e["name"]: substitute(str(e["value"]), scope)
                for e in body.get("env", [])
                if "value" in e  # secret/configmap refs come from the local environment
            }
            in_arts, out_arts = self._artifact_plan(tpl, scope, node_dir)
        except ExpressionError as exc:
            return NodeResult(node_name, name, ERROR, str(exc))
        argv = [_replace_paths(a, path_map) for a in argv]
        for local in path_map.values():
            Path(local).parent.mkdir(parents=True, exist_ok=True)
        env.update(self.runner._env)
        env[OUTPUT_ROOT_ENV] = str(node_dir)
        retry = tpl.get("retryStrategy") or {}
        attempts_allowed = 1 + int(retry.get("limit", 0) or 0)
        try:
            retry_if = _retry_condition(retry.get("expression"))
        except ExpressionError as exc:
            return NodeResult(node_name, name, ERROR, str(exc))
        deadline = patch.get("activeDeadlineSeconds", tpl.get("activeDeadlineSeconds"))
        timeout_s = float(deadline) if deadline is not None else None
        try:
            executor = self.runner._executor_for_image(image)
        except Exception as exc:  # e.g. the block registry could not be read
            return NodeResult(node_name, name, ERROR, f"no executor for image {image!r}: {exc}")
        short = node_name.split(".", 1)[-1]
        mounts: dict[str, Path] = {}
        for art in in_arts:
            try:
                n = self._store().fetch(art.key, art.host)
            except ArtifactError as exc:
                return NodeResult(node_name, name, ERROR, f"input artifact {art.name!r}: {exc}")
            self.log(f"[{short}] input artifact {art.name}: {n} file(s) from {art.key}")
            mounts[art.path] = art.host
        for art in out_arts:
            art.host.mkdir(parents=True)
            art.host.chmod(0o777)  # a block image may run as a non-root user
            mounts[art.path] = art.host
        if mounts and not _mounts_natively(executor):
            argv = [_replace_mount_paths(a, mounts) for a in argv]
        result = NodeResult(node_name, name, FAILED)
        for attempt in range(1, attempts_allowed + 1):
            result.attempts = attempt
            if attempt > 1:
                self.log(f"[{short}] retry {attempt - 1}/{attempts_allowed - 1}")
                for art in out_arts:  # a retry starts from an empty output, as a new pod would
                    shutil.rmtree(art.host, ignore_errors=True)
                    art.host.mkdir(parents=True)
                    art.host.chmod(0o777)
            try:
                with self.runner._slots:
                    if self.cancelled():
                        raise StepCancelled("run cancelled")
                    proc = executor.run(
                        argv,
                        image=image,
                        env=env,
                        workdir=node_dir,
                        mounts=dict(mounts),
                        timeout_s=timeout_s,
                        log=lambda line, s=short: self.log(f"[{s}] {line}"),
                        cancelled=self.cancelled,
                    )
            except StepCancelled:
                result.phase, result.message = FAILED, "cancelled"
                return result
            except StepTimedOut as exc:
                result.phase, result.message = FAILED, str(exc)
                continue
            except OSError as exc:  # command not found, image executor unavailable
                result.phase, result.message = ERROR, f"cannot start step: {exc}"
                return result
            result.log_tail = proc.tail
            if proc.exit_code == 0:
                result.phase, result.message = SUCCEEDED, ""
                if is_script:
                    result.result = proc.stdout.strip()
                break
            tail = "\n".join(proc.tail[-10:])
            result.phase = FAILED
            # a container executor tells an OOM kill apart (Argo says "OOMKilled" likewise)
            oom = " (OOMKilled: over its memory limit)" if getattr(proc, "oom_killed", False) \
                else ""
            result.message = f"exit code {proc.exit_code}{oom}" + (
                f"; last output:\n{tail}" if tail else ""
            )
            if not retry_if(proc.exit_code):
                break
        if result.phase != SUCCEEDED:
            return result
        for art in out_arts:
            try:
                n = self._store().store(art.host, art.key)
            except ArtifactError as exc:
                result.phase = ERROR
                result.message = f"output artifact {art.name!r}: {exc}"
                return result
            self.log(f"[{short}] output artifact {art.name}: {n} file(s) to {art.key}")
        for p in tpl.get("outputs", {}).get("parameters", []):
            vf = p.get("valueFrom", {})
            if "path" in vf:
                local = Path(path_map[vf["path"]])
                if local.exists():
                    result.outputs[p["name"]] = local.read_text().strip()
                elif "default" in vf:
                    result.outputs[p["name"]] = str(vf["default"])
                else:
                    result.phase = ERROR
                    result.message = f"output parameter {p['name']!r}: {vf['path']} was not written"
            elif "default" in vf:
                result.outputs[p["name"]] = str(vf["default"])
        return result

    def _store(self) -> ArtifactStore:
        store = self.runner._artifacts
        assert store is not None  # checked by _artifact_plan
        return store

    def _artifact_plan(
        self, tpl: dict[str, Any], scope: dict[str, str], node_dir: Path
    ) -> tuple[list[_Artifact], list[_Artifact]]:
        """The template's S3 artifacts with keys substituted and host paths in ``node_dir``;
        ExpressionError for anything the runner cannot do."""
        plan: tuple[list[_Artifact], list[_Artifact]] = ([], [])
        for side, out in (("inputs", plan[0]), ("outputs", plan[1])):
            for i, art in enumerate(tpl.get(side, {}).get("artifacts", [])):
                name = art.get("name", str(i))
                where = f"{side[:-1]} artifact {name!r} of template {tpl['name']!r}"
                unsupported = sorted(
                    k for k in art
                    if k not in {"name", "path", "s3", "archive", "mode"}
                )  # fmt: skip
                key = (art.get("s3") or {}).get("key")
                if unsupported or not key:
                    raise ExpressionError(
                        f"{where}: the local runner supports S3 artifacts located by key only "
                        f"(s3: {{key: ...}}); got {sorted(art)}"
                    )
                if self.runner._artifacts is None:
                    raise ExpressionError(f"{where}: this runner has no artifact store")
                if side == "outputs" and art.get("archive") != {"none": {}}:
                    raise ExpressionError(
                        f"{where}: the local runner stores output artifacts as plain files "
                        "(archive: {none: {}}); tar archives are not supported"
                    )
                path = str(art.get("path", ""))
                if not path.startswith("/"):
                    raise ExpressionError(f"{where}: path {path!r} must be absolute")
                # the host path keeps the container path's last name (a block may use it)
                host = node_dir / "artifacts" / side / str(i) / (Path(path).name or "root")
                out.append(_Artifact(name, path.rstrip("/") or "/", substitute(key, scope), host))
        return plan

    # -- DAG ------------------------------------------------------------------------------------

    def _run_dag(self, tpl: dict[str, Any], scope: dict[str, str], node_name: str) -> NodeResult:
        tasks = {t["name"]: t for t in tpl["dag"].get("tasks", [])}
        fail_fast = tpl["dag"].get("failFast", True)
        deps: dict[str, list[str]] = {}
        for name, t in tasks.items():
            if "depends" in t:
                deps[name] = depends_targets(t["depends"])
            else:
                deps[name] = list(t.get("dependencies", []))
            unknown = [d for d in deps[name] if d not in tasks]
            if unknown:
                return NodeResult(
                    node_name, tpl["name"], ERROR, f"task {name!r} depends on unknown {unknown}"
                )
        # Failures that a later task reacts to (depends on X.Failed etc.) don't fail the DAG.
        handled = {
            d
            for t in tasks.values()
            for d in depends_targets(t.get("depends", ""))
            if any(f"{d}.{r}" in t.get("depends", "") for r in ("Failed", "Errored", "Completed"))
        }
        results: dict[str, NodeResult] = {}
        phases: dict[str, str] = {}
        task_scope = dict(scope)
        pending = set(tasks)
        running: dict[Future[NodeResult], str] = {}
        stop_scheduling = False
        with ThreadPoolExecutor(max_workers=max(len(tasks), 1)) as pool:
            while pending or running:
                # Settle every task whose dependencies are final; omitting one can make another
                # ready, so repeat until a pass changes nothing.
                changed = True
                while changed:
                    changed = False
                    for name in sorted(pending):
                        if any(d not in phases for d in deps[name]):
                            continue
                        changed = True
                        pending.discard(name)
                        t = tasks[name]
                        child = f"{node_name}.{name}"
                        if stop_scheduling:
                            phases[name] = OMITTED
                            results[name] = NodeResult(
                                child, t.get("template", ""), OMITTED, "fail-fast"
                            )
                            continue
                        if "depends" in t:
                            ok = evaluate_depends(t["depends"], phases)
                        else:
                            ok = all(phases[d] in {SUCCEEDED, SKIPPED} for d in deps[name])
                        if not ok:
                            phases[name] = OMITTED
                            results[name] = NodeResult(
                                child, t.get("template", ""), OMITTED, "depends not met"
                            )
                            continue
                        running[pool.submit(self._run_task, t, task_scope, child, "tasks")] = name
                if not running:
                    if pending:  # unreachable tasks: a cycle
                        return NodeResult(
                            node_name,
                            tpl["name"],
                            ERROR,
                            f"dependency cycle among {sorted(pending)}",
                        )
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    name = running.pop(fut)
                    res = fut.result()
                    results[name], phases[name] = res, res.phase
                    _export_outputs(task_scope, "tasks", name, res)
                    if res.phase in {FAILED, ERROR} and fail_fast and name not in handled:
                        stop_scheduling = True
        node = NodeResult(node_name, tpl["name"], SUCCEEDED, children=list(results.values()))
        failed = [n for n, r in results.items() if r.phase in {FAILED, ERROR} and n not in handled]
        if failed:
            first = results[failed[0]]
            node.phase = FAILED
            node.message = f"task {failed[0]!r} {first.phase.lower()}: {first.message}"
        elif any(r.message == "cancelled" for r in results.values()):
            node.phase, node.message = FAILED, "cancelled"
        return node

    # -- steps ----------------------------------------------------------------------------------

    def _run_steps(self, tpl: dict[str, Any], scope: dict[str, str], node_name: str) -> NodeResult:
        step_scope = dict(scope)
        node = NodeResult(node_name, tpl["name"], SUCCEEDED)
        for i, group in enumerate(tpl["steps"]):
            with ThreadPoolExecutor(max_workers=max(len(group), 1)) as pool:
                futs = {
                    s["name"]: pool.submit(
                        self._run_task, s, step_scope, f"{node_name}[{i}].{s['name']}", "steps"
                    )
                    for s in group
                }
                for name, fut in futs.items():
                    res = fut.result()
                    node.children.append(res)
                    _export_outputs(step_scope, "steps", name, res)
            bad = [c for c in node.children if c.phase in {FAILED, ERROR}]
            if bad:
                node.phase = FAILED
                node.message = f"step {bad[0].name!r} {bad[0].phase.lower()}: {bad[0].message}"
                return node
        return node

    # -- one task/step, with when + fan-out -------------------------------------------------------

    def _run_task(
        self, task: dict[str, Any], scope: dict[str, str], node_name: str, kind: str
    ) -> NodeResult:
        template = task.get("template", "")
        try:
            if "when" in task and not evaluate_when(substitute(task["when"], scope)):
                return NodeResult(node_name, template, SKIPPED, f"when {task['when']!r} is false")
            items = _fan_out_items(task, scope)
        except (ExpressionError, ValueError) as exc:
            return NodeResult(node_name, template, ERROR, str(exc))
        if items is None:
            return self._invoke(task, scope, node_name)
        parent = NodeResult(node_name, template, SUCCEEDED)
        labels = []
        with ThreadPoolExecutor(max_workers=max(min(len(items), 32), 1)) as pool:
            futs = []
            for i, item in enumerate(items):
                item_scope = {**scope, **_item_scope(item)}
                label = item if isinstance(item, str) else json.dumps(item, sort_keys=True)
                labels.append(f"({i}:{label})")
                futs.append(pool.submit(self._invoke, task, item_scope, f"{node_name}{labels[-1]}"))
            parent.children = [f.result() for f in futs]
        bad = [i for i, c in enumerate(parent.children) if c.phase in {FAILED, ERROR}]
        if bad:
            # name the failing item (its start: items can be long), as Argo's node name does
            first = labels[bad[0]] if len(labels[bad[0]]) <= 160 else labels[bad[0]][:157] + "..."
            parent.phase = FAILED
            parent.message = (
                f"{len(bad)} of {len(items)} fanned-out steps failed; first {first}: "
                f"{parent.children[bad[0]].message}"
            )
        # Aggregate outputs the way Argo does: a JSON list of each child's value.
        names = {k for c in parent.children for k in c.outputs}
        parent.outputs = {k: json.dumps([c.outputs.get(k) for c in parent.children]) for k in names}
        return parent

    def _invoke(self, task: dict[str, Any], scope: dict[str, str], node_name: str) -> NodeResult:
        try:
            args = {
                p["name"]: substitute(str(p.get("value", "")), scope)
                for p in task.get("arguments", {}).get("parameters", [])
            }
        except ExpressionError as exc:
            return NodeResult(node_name, task.get("template", ""), ERROR, str(exc))
        return self.execute(task.get("template", ""), args, node_name)


@dataclass(frozen=True)
class _Artifact:
    """One S3 artifact of a leaf node: container path, object key, host path."""

    name: str
    path: str
    key: str
    host: Path


def _pod_spec_patch(tpl: dict[str, Any], scope: Mapping[str, str]) -> dict[str, Any]:
    """What the local runner applies of ``tpl.podSpecPatch`` (substituted): ``{"main":
    {"command"?, "args"?}, "activeDeadlineSeconds"?}``; ExpressionError if it is malformed."""
    raw = tpl.get("podSpecPatch")
    if not raw:
        return {}
    text = substitute(str(raw), scope)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ExpressionError(f"podSpecPatch is not valid JSON/YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ExpressionError(f"podSpecPatch must be an object, got {text[:200]!r}")
    out: dict[str, Any] = {}
    for c in doc.get("containers") or []:
        if not isinstance(c, dict) or c.get("name") != "main":
            continue
        main: dict[str, Any] = {}
        for k in ("command", "args"):
            if k in c:
                if not isinstance(c[k], list) or not all(isinstance(a, str) for a in c[k]):
                    raise ExpressionError(f"podSpecPatch containers[main].{k} must be strings")
                main[k] = list(c[k])
        out["main"] = main
    if "activeDeadlineSeconds" in doc:
        deadline = doc["activeDeadlineSeconds"]
        if isinstance(deadline, bool) or not isinstance(deadline, int | float) or deadline <= 0:
            raise ExpressionError(f"podSpecPatch activeDeadlineSeconds {deadline!r} is invalid")
        out["activeDeadlineSeconds"] = deadline
    return out


def _mounts_natively(executor: StepExecutor) -> bool:
    """Whether ``executor`` mounts the runner's ``mounts`` at their container paths (podman),
    rather than running on the host where the argv must name the host paths."""
    from tinyforge.workflows.podman import PodmanExecutor

    return isinstance(executor, PodmanExecutor) or bool(getattr(executor, "mounts_natively", False))


def _replace_mount_paths(arg: str, mounts: Mapping[str, Path]) -> str:
    """``arg`` with every container path of ``mounts`` (as a whole path or a leading part of
    one) replaced by its host path; longest container path first."""
    for ctr in sorted(mounts, key=len, reverse=True):
        arg = re.sub(re.escape(ctr) + r"(?=/|$|[^A-Za-z0-9._-])", str(mounts[ctr]), arg)
    return arg


_RETRY_EXPR = re.compile(r"^\s*asInt\(lastRetry\.exitCode\)\s*(==|!=|<=|>=|<|>)\s*(-?\d+)\s*$")


def _retry_condition(expression: str | None) -> Callable[[int], bool]:
    """``retryStrategy.expression`` as a predicate on the last exit code (True = retry)."""
    if not expression:
        return lambda _code: True
    m = _RETRY_EXPR.match(expression)
    if not m:
        raise ExpressionError(
            f"retry expression {expression!r} is not supported by the local runner "
            "(supported: asInt(lastRetry.exitCode) <op> <integer>)"
        )
    op, value = m.group(1), int(m.group(2))
    compare = {
        "==": lambda a: a == value,
        "!=": lambda a: a != value,
        "<": lambda a: a < value,
        ">": lambda a: a > value,
        "<=": lambda a: a <= value,
        ">=": lambda a: a >= value,
    }[op]
    return compare


def _replace_paths(arg: str, path_map: Mapping[str, str]) -> str:
    for src, dst in path_map.items():
        arg = arg.replace(src, dst)
    return arg


def _export_outputs(scope: dict[str, str], kind: str, name: str, res: NodeResult) -> None:
    """Make a finished node's outputs visible as ``{{kind.name.outputs...}}``."""
    for k, v in res.outputs.items():
        scope[f"{kind}.{name}.outputs.parameters.{k}"] = v
    if res.result is not None:
        scope[f"{kind}.{name}.outputs.result"] = res.result
    scope[f"{kind}.{name}.status"] = res.phase


def _fan_out_items(task: dict[str, Any], scope: Mapping[str, str]) -> list[Any] | None:
    if "withItems" in task:
        return list(task["withItems"])
    if "withParam" in task:
        raw = substitute(task["withParam"], scope)
        try:
            items = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"withParam of task {task['name']!r} is not a JSON list: {raw[:200]!r}"
            ) from exc
        if not isinstance(items, list):
            raise ValueError(
                f"withParam of task {task['name']!r} is not a JSON list: {raw[:200]!r}"
            )
        return items
    return None


def _item_scope(item: Any) -> dict[str, str]:
    if isinstance(item, dict):
        scope = {f"item.{k}": v if isinstance(v, str) else json.dumps(v) for k, v in item.items()}
        scope["item"] = json.dumps(item, sort_keys=True)
        return scope
    return {"item": item if isinstance(item, str) else json.dumps(item)}
