"""Pipelines as Hera (Argo Workflows) definitions: the single source of truth.

:data:`PIPELINES` maps each pipeline's name to the function building its WorkflowTemplate. The
cluster gets them rendered to YAML (``make workflows`` → the Helm chart's
``files/workflowtemplates/``); embedded mode runs the very same objects with the local runner
(:mod:`tinyforge.workflows.runner`).

``PIPELINES`` is built on first access: importing Hera takes seconds, and services import
:mod:`hera_workflows.jobs` even when pipeline jobs run in-process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hera.workflows import WorkflowTemplate

    PIPELINES: dict[str, Callable[[], WorkflowTemplate]]


def _pipelines() -> dict[str, Callable[[], Any]]:
    from hera_workflows.features import NAME as FEATURES
    from hera_workflows.features import generate_features_template
    from hera_workflows.training import RETRAIN, retrain_template

    return {
        FEATURES: generate_features_template,
        RETRAIN: retrain_template,
    }


def __getattr__(name: str) -> Any:
    if name == "PIPELINES":
        value = _pipelines()
        globals()["PIPELINES"] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
