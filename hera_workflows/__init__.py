"""Pipelines as Hera (Argo Workflows) definitions: the single source of truth.

Each module listed in :data:`PIPELINE_MODULES` declares ``TEMPLATES`` (pipeline name → the
function building its WorkflowTemplate) and ``RESULTS`` (pipeline name → the ``(task, output
parameter)`` holding its job's JSON result). :data:`PIPELINES` and :data:`RESULTS` collect them.
The cluster gets them rendered to YAML (``make workflows`` → the Helm chart's
``files/workflowtemplates/``); embedded mode runs the very same objects with the local runner
(:mod:`tinyforge.workflows.runner`).

Both are built on first access: importing Hera takes seconds, and services import
:mod:`hera_workflows.jobs` even when pipeline jobs run in-process.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hera.workflows import WorkflowTemplate

    PIPELINES: dict[str, Callable[[], WorkflowTemplate]]
    RESULTS: dict[str, tuple[str, str]]

#: Modules defining pipelines (each with ``TEMPLATES`` and ``RESULTS``). Later stages add theirs.
PIPELINE_MODULES = [
    "hera_workflows.features",
    "hera_workflows.training",
    "hera_workflows.build",
    "hera_workflows.transform",
]


def _collect(attr: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mod in PIPELINE_MODULES:
        out.update(getattr(importlib.import_module(mod), attr))
    return out


def __getattr__(name: str) -> Any:
    if name in ("PIPELINES", "RESULTS"):
        value = _collect("TEMPLATES" if name == "PIPELINES" else "RESULTS")
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
