"""CLI commands for impulse design and features: ``impulse create|show|list|versions|update|
diff|blocks`` and ``features generate|show|explore|autotune``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from tinyforge.cli.common import (
    JSON_OPTION,
    fail,
    get_client,
    handles_api_errors,
    message_to_dict,
    print_json,
    print_table,
)

impulse_app = typer.Typer(help="Impulses: design, versions, diff; the DSP blocks.",
                          no_args_is_help=True)
features_app = typer.Typer(help="Features of an impulse: generate (a job), inspect, explore, "
                                "autotune.", no_args_is_help=True)

PROJECT_OPTION = typer.Option(0, "--project-id", help="Project (0 = the one in client.json).")
VERSION_OPTION = typer.Option(0, "--version", "-v", help="Impulse version (0 = latest).")


def _read_definition(file: Path | None, definition: str | None) -> str:
    if (file is None) == (definition is None):
        fail("give the impulse as --file PATH (- for stdin) or --definition JSON")
    if definition is not None:
        text = definition
    elif str(file) == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(file).read_text()  # type: ignore[arg-type]
        except OSError as exc:
            fail(f"cannot read {file}: {exc}")
    try:
        json.loads(text)
    except ValueError as exc:
        fail(f"the impulse is not valid JSON: {exc}")
    return text


def _impulse_dict(msg: Any) -> dict[str, Any]:
    d = message_to_dict(msg)
    d["definition"] = json.loads(d.pop("definition_json") or "{}")
    return d


def _show(msg: Any, json_out: bool) -> None:
    d = _impulse_dict(msg)
    if json_out:
        print_json(d)
        return
    typer.echo(f"impulse {d['impulse_id']} {d['name']!r}: version {d['version']} of "
               f"{d['latest_version']} ({d['create_time']})")
    typer.echo(json.dumps(d["definition"], indent=2, sort_keys=True))


@impulse_app.command("create")
@handles_api_errors
def impulse_create(
    name: str = typer.Argument(..., help="Impulse name (unique in the project)."),
    file: Path = typer.Option(None, "--file", "-f", help="Impulse JSON file (- = stdin)."),
    definition: str = typer.Option(None, "--definition", help="Impulse JSON inline."),
    project_id: int = PROJECT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Create an impulse from its JSON definition (input, processing, learning blocks)."""
    text = _read_definition(file, definition)
    _show(get_client().create_impulse(name, text, project_id=project_id or None), json_out)


@impulse_app.command("show")
@handles_api_errors
def impulse_show(impulse_id: int, version: int = VERSION_OPTION,
                 project_id: int = PROJECT_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Show one version of an impulse."""
    _show(get_client().get_impulse(impulse_id, version, project_id=project_id or None),
          json_out)


@impulse_app.command("list")
@handles_api_errors
def impulse_list(project_id: int = PROJECT_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Impulses of a project (latest versions)."""
    rows = get_client().list_impulses(project_id or None)
    if json_out:
        print_json([_impulse_dict(r) for r in rows])
        return
    table = []
    for r in rows:
        d = _impulse_dict(r)
        blocks = ", ".join(f"{b['name']}:{b['block']}" for b in d["definition"]["processing"])
        table.append((r.impulse_id, r.name, r.latest_version, d["definition"]["input"]["type"],
                      blocks))
    print_table("impulses", ["id", "name", "version", "input", "processing"], table)


@impulse_app.command("versions")
@handles_api_errors
def impulse_versions(impulse_id: int, project_id: int = PROJECT_OPTION,
                     json_out: bool = JSON_OPTION) -> None:
    """Every version of an impulse."""
    rows = get_client().list_impulse_versions(impulse_id, project_id=project_id or None)
    if json_out:
        print_json([_impulse_dict(r) for r in rows])
        return
    print_table(f"impulse {impulse_id}", ["version", "created"],
                [(r.version, message_to_dict(r)["create_time"]) for r in rows])


@impulse_app.command("update")
@handles_api_errors
def impulse_update(
    impulse_id: int,
    file: Path = typer.Option(None, "--file", "-f", help="Impulse JSON file (- = stdin)."),
    definition: str = typer.Option(None, "--definition", help="Impulse JSON inline."),
    expected_version: int = typer.Option(0, "--expected-version",
                                         help="Refuse unless this is still the latest."),
    project_id: int = PROJECT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Store a new version of an impulse (none when nothing changed)."""
    text = _read_definition(file, definition)
    resp = get_client().update_impulse(impulse_id, text, expected_version=expected_version,
                                       project_id=project_id or None)
    if json_out:
        print_json({"created": resp.created, "impulse": _impulse_dict(resp.impulse)})
        return
    what = "new version" if resp.created else "unchanged, still version"
    typer.echo(f"impulse {impulse_id}: {what} {resp.impulse.version}")


@impulse_app.command("diff")
@handles_api_errors
def impulse_diff(impulse_id: int, version_a: int, version_b: int = typer.Argument(0),
                 project_id: int = PROJECT_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Fields that changed from VERSION_A to VERSION_B (0 = latest)."""
    changes = get_client().diff_impulse(impulse_id, version_a, version_b,
                                        project_id=project_id or None)
    rows = [{"path": c.path, "old": json.loads(c.old_json), "new": json.loads(c.new_json)}
            for c in changes]
    if json_out:
        print_json(rows)
        return
    if not rows:
        typer.echo("no differences")
    for r in rows:
        typer.echo(f"{r['path']}: {json.dumps(r['old'])} -> {json.dumps(r['new'])}")


@impulse_app.command("blocks")
@handles_api_errors
def impulse_blocks(json_out: bool = JSON_OPTION) -> None:
    """The built-in processing (DSP) blocks and their parameters."""
    blocks = get_client().list_dsp_blocks()
    if json_out:
        print_json([json.loads(b.schema_json) for b in blocks])
        return
    table = []
    for b in blocks:
        params = [p["param"] for p in json.loads(b.schema_json)["parameters"]]
        table.append((b.name, b.input, b.output_type, b.implementation_version,
                      ", ".join(params)))
    print_table("processing blocks", ["name", "input", "output", "impl", "parameters"], table)


# -- features ---------------------------------------------------------------------------------
@features_app.command("generate")
@handles_api_errors
def features_generate(
    impulse_id: int,
    version: int = VERSION_OPTION,
    project_id: int = PROJECT_OPTION,
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the job (progress bar)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Generate the features of an impulse version over the project's data (a job).

    Incremental: only samples whose content or block parameters changed are processed.
    Exit code 1 when the job fails (its reason is printed).
    """
    from tinyforge.cli.jobs import jobs_watch

    client = get_client()
    resp = client.generate_features(impulse_id, version, project_id=project_id or None)
    if not wait:
        if json_out:
            print_json({"job_id": resp.job_id, "version": resp.version})
        else:
            typer.echo(f"job {resp.job_id}: features of impulse {impulse_id} v{resp.version}")
        return
    if not json_out:
        typer.echo(f"job {resp.job_id}: generating features of impulse {impulse_id} "
                   f"v{resp.version}")
    jobs_watch(resp.job_id, from_offset=0, json_out=json_out)


@features_app.command("show")
@handles_api_errors
def features_show(impulse_id: int, version: int = VERSION_OPTION,
                  project_id: int = PROJECT_OPTION, json_out: bool = JSON_OPTION) -> None:
    """What was generated for an impulse version, per processing block."""
    resp = get_client().get_features(impulse_id, version, project_id=project_id or None)
    if json_out:
        print_json(list(resp.blocks))
        return
    if not resp.blocks:
        typer.echo(f"no features generated for impulse {impulse_id} v{resp.version}")
        return
    print_table(f"features of impulse {impulse_id} v{resp.version}",
                ["block", "type", "output", "shape", "windows", "samples", "classes"],
                [(b.block, b.block_type, b.output_type, "x".join(map(str, b.shape)), b.windows,
                  b.samples, ", ".join(b.classes)) for b in resp.blocks])


@features_app.command("explore")
@handles_api_errors
def features_explore(
    impulse_id: int,
    block: str = typer.Option("", "--block", "-b", help="Processing block (default: first)."),
    method: str = typer.Option("pca", "--method", help="pca | tsne"),
    max_points: int = typer.Option(0, "--max-points", help="0 = 2000 (PCA) / 1000 (t-SNE)."),
    png: Path = typer.Option(None, "--png", help="Write a scatter plot to this PNG file."),
    version: int = VERSION_OPTION,
    project_id: int = PROJECT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """2-D projection of generated features, coloured by label (points and/or a PNG)."""
    resp = get_client().feature_explorer(impulse_id, version, block=block, method=method,
                                         max_points=max_points, png=png is not None,
                                         project_id=project_id or None)
    if png is not None:
        png.parent.mkdir(parents=True, exist_ok=True)
        tmp = png.with_name(png.name + ".part")
        tmp.write_bytes(resp.png)
        tmp.replace(png)
    if json_out:
        print_json({"block": resp.block, "total_windows": resp.total_windows,
                    "explained_variance": list(resp.explained_variance),
                    "points": [message_to_dict(p) for p in resp.points]})
        return
    counts: dict[str, int] = {}
    for p in resp.points:
        counts[p.label or "(unlabeled)"] = counts.get(p.label or "(unlabeled)", 0) + 1
    typer.echo(f"{method.upper()} of block {resp.block!r}: {len(resp.points)} of "
               f"{resp.total_windows} windows; per label: "
               + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if resp.explained_variance:
        typer.echo("explained variance: "
                   + ", ".join(f"{v:.1%}" for v in resp.explained_variance))
    if png is not None:
        typer.echo(f"wrote {png}")


@features_app.command("autotune")
@handles_api_errors
def features_autotune(
    impulse_id: int,
    block: str = typer.Option(..., "--block", "-b", help="Processing block to tune."),
    max_windows: int = typer.Option(0, "--max-windows", help="0 = 300."),
    apply: bool = typer.Option(False, "--apply", help="Store the best params as a new version."),
    version: int = VERSION_OPTION,
    project_id: int = PROJECT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Search the parameters of a spectral / MFE / MFCC / spectrogram block on the data."""
    client = get_client()
    pid = project_id or None
    resp = client.autotune_block(impulse_id, block, version, max_windows=max_windows,
                                 project_id=pid)
    best = json.loads(resp.best.params_json)
    new_version = None
    if apply:
        cur = client.get_impulse(impulse_id, version, project_id=pid)
        definition = json.loads(cur.definition_json)
        for b in definition["processing"]:
            if b["name"] == block:
                b["params"] = best
        up = client.update_impulse(impulse_id, definition, project_id=pid)
        new_version = up.impulse.version
    if json_out:
        print_json({"best": {"params": best, "score": resp.best.score,
                             "features": resp.best.features},
                    "current_score": resp.current.score if resp.HasField("current") else None,
                    "candidates": [{"params": json.loads(c.params_json), "score": c.score,
                                    "features": c.features} for c in resp.candidates],
                    "metric": resp.metric, "windows": resp.windows,
                    "applied_version": new_version})
        return
    cur_score = f"{resp.current.score:.3f}" if resp.HasField("current") else "n/a"
    typer.echo(f"best score {resp.best.score:.3f} (current params {cur_score}; {resp.metric}, "
               f"{resp.windows} windows)")
    typer.echo(json.dumps(best, indent=2, sort_keys=True))
    if new_version is not None:
        typer.echo(f"applied: impulse {impulse_id} version {new_version}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(impulse_app, name="impulse")
    app.add_typer(features_app, name="features")
