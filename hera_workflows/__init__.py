"""Pipelines as Hera (Argo Workflows) definitions: the single source of truth."""
