"""Render every pipeline to YAML for the Helm chart: ``python -m hera_workflows.render``.

Writes one ``<name>.yaml`` per pipeline into ``charts/tinyforge/files/workflowtemplates/`` (or
``--out DIR``); ``--check`` exits 1 when a committed file differs from a fresh rendering.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from hera_workflows import PIPELINES

DEFAULT_OUT = (
    Path(__file__).resolve().parents[1] / "charts" / "tinyforge" / "files" / "workflowtemplates"
)


def render_all() -> dict[str, str]:
    """Pipeline name → its WorkflowTemplate as YAML text."""
    return {
        name: yaml.safe_dump(build().to_dict(), sort_keys=True, default_flow_style=False)
        for name, build in sorted(PIPELINES.items())
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hera_workflows.render")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render_all().items():
        path = args.out / f"{name}.yaml"
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print("stale (run `make workflows`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
