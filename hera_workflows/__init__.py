"""Pipelines as Hera (Argo Workflows) definitions: the single source of truth.

:data:`PIPELINES` maps each pipeline's name to the function building its WorkflowTemplate. The
cluster gets them rendered to YAML (``make workflows`` → the Helm chart's
``files/workflowtemplates/``); embedded mode runs the very same objects with the local runner
(:mod:`tinyforge.workflows.runner`).
"""

from __future__ import annotations

from collections.abc import Callable

from hera.workflows import WorkflowTemplate

from hera_workflows.features import NAME as FEATURES
from hera_workflows.features import generate_features_template

PIPELINES: dict[str, Callable[[], WorkflowTemplate]] = {
    FEATURES: generate_features_template,
}
