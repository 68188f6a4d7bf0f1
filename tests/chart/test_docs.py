"""docs/install-cluster.md carries a values reference generated from the chart's schema."""

from __future__ import annotations

import subprocess
import sys

import yaml

from tests.chart.chartlib import CHART, REPO

DOC = REPO / "docs" / "install-cluster.md"


def test_values_reference_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen-values-doc.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr + " (run `make chart-docs`)"


def _leaf_paths(node: object, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        return [p for k, v in node.items() for p in _leaf_paths(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def test_every_top_level_value_is_documented() -> None:
    """Each values.yaml key appears in the reference (services collapsed to <name>)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    doc = DOC.read_text()
    missing = []
    for path in _leaf_paths(values):
        parts = path.split(".")
        if parts[0] == "services":
            parts[1] = "<name>"
        # Compact objects (resources, probes, security contexts) are one row.
        candidates = [".".join(parts[:n]) for n in range(len(parts), 0, -1)]
        if not any(f"| `{c}` |" in doc for c in candidates):
            missing.append(path)
    assert missing == []
