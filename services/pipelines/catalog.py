"""What the pipelines of :data:`hera_workflows.PIPELINES` look like to API clients, and the
checks a run request passes before any job exists.

Everything is read from the compiled WorkflowTemplates (``spec.arguments.parameters``, the
``workflows.argoproj.io/description`` annotation, the entrypoint's tasks), so a pipeline added to
``PIPELINE_MODULES`` is listed and runnable without a change here.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tinyforge.errors import InvalidArgument

#: Parameters the platform sets on every run: the job tracking it, the request's project, and
#: (where a pipeline declares it) the caller's API key, credited with what the run creates.
RESERVED = ("job-id", "project-id", "created-by-key-id")
CREATED_BY = "created-by-key-id"
DESCRIPTION_ANNOTATION = "workflows.argoproj.io/description"


@dataclass(frozen=True)
class ParameterInfo:
    """One workflow parameter: ``default`` None = required."""

    name: str
    default: str | None
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is None

    @property
    def reserved(self) -> bool:
        return self.name in RESERVED


@dataclass(frozen=True)
class PipelineInfo:
    """A pipeline as listed: name, description, parameters (declaration order), step tasks."""

    name: str
    description: str
    parameters: tuple[ParameterInfo, ...]
    steps: tuple[str, ...]

    def parameter(self, name: str) -> ParameterInfo | None:
        return next((p for p in self.parameters if p.name == name), None)


def _steps(spec: dict[str, Any]) -> tuple[str, ...]:
    """Task (or step) names of the entrypoint template, in declaration order."""
    templates = {t["name"]: t for t in spec.get("templates", [])}
    entry = templates.get(spec.get("entrypoint", ""), {})
    if "dag" in entry:
        return tuple(t["name"] for t in entry["dag"].get("tasks", []))
    if "steps" in entry:
        return tuple(s["name"] for group in entry["steps"] for s in group)
    return (entry["name"],) if entry else ()


def describe(name: str, doc: Mapping[str, Any], fallback: str = "") -> PipelineInfo:
    """A compiled WorkflowTemplate (``to_dict()``) → :class:`PipelineInfo` (``fallback`` is
    the description when the template has no description annotation)."""
    spec = doc.get("spec", {})
    params = []
    for p in spec.get("arguments", {}).get("parameters", []):
        default = p.get("value", p.get("default"))
        params.append(
            ParameterInfo(
                name=p["name"],
                default=None if default is None else str(default),
                description=str(p.get("description", "")),
            )
        )
    annotations = doc.get("metadata", {}).get("annotations") or {}
    return PipelineInfo(
        name=name,
        description=str(annotations.get(DESCRIPTION_ANNOTATION, "") or fallback),
        parameters=tuple(params),
        steps=_steps(spec),
    )


_lock = threading.Lock()
_cache: dict[str, PipelineInfo] = {}


def pipelines() -> dict[str, PipelineInfo]:
    """Every registered pipeline by name (each compiled once per process)."""
    from hera_workflows import PIPELINES

    with _lock:
        for name, build in PIPELINES.items():
            if name not in _cache:
                doc = (build.__doc__ or "").strip()  # the builder's summary line
                _cache[name] = describe(name, build().to_dict(), doc.splitlines()[0] if doc else "")
        return {n: _cache[n] for n in sorted(PIPELINES)}


def check_run(
    name: str, parameters: Mapping[str, str], *, key_id: int | None = None
) -> dict[str, str]:
    """Validate a run request; returns the parameters to pass: the given ones, plus
    ``created-by-key-id`` = ``key_id`` when the pipeline declares it.

    InvalidArgument naming the unknown pipeline, a reserved or unknown parameter, or the
    required parameters left out.
    """
    known = pipelines()
    if name not in known:
        raise InvalidArgument(
            f"no pipeline named {name!r}; pipelines: {', '.join(known) or '(none)'}", field="name"
        )
    info = known[name]
    for key in sorted(parameters):
        p = info.parameter(key)
        if p is not None and p.reserved:
            raise InvalidArgument(
                f"parameter {key!r} is set by the platform (the run's job, project and "
                "caller); leave it out",
                field=f"parameters.{key}",
            )
        if p is None:
            settable = [q.name for q in info.parameters if not q.reserved]
            raise InvalidArgument(
                f"pipeline {name!r} has no parameter {key!r}; its parameters: "
                f"{', '.join(settable) or '(none)'}",
                field=f"parameters.{key}",
            )
    missing = [
        p.name
        for p in info.parameters
        if p.required and not p.reserved and p.name not in parameters
    ]
    if missing:
        raise InvalidArgument(
            f"pipeline {name!r} needs parameter{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}",
            field=f"parameters.{missing[0]}",
        )
    out = {str(k): str(v) for k, v in parameters.items()}
    if info.parameter(CREATED_BY) is not None:
        out[CREATED_BY] = str(key_id or 0)
    return out
