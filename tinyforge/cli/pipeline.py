"""CLI commands for pipelines: ``pipeline ls`` and ``pipeline run NAME`` (live step progress).

A run is a job (JobService.WatchJob). The job log carries a *step event* line as each step
starts and ends (``step NODE: PHASE`` / ``step NODE: PHASE - MESSAGE``, see
protos/tinyforge/v1/pipeline_service.proto); ``run`` prints those as they come with a progress
bar of the job's progress, the steps' own log lines with ``--logs``, and on failure the failing
step and its message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
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

pipeline_app = typer.Typer(
    help="Pipelines (Argo WorkflowTemplates): list them, run one with live step progress.",
    no_args_is_help=True,
)
#: The step event lines of a pipeline job's log (the PipelineService contract).
STEP_EVENT = re.compile(
    r"^step (?P<node>.+?): (?P<phase>Running|Succeeded|Failed|Error|Skipped|Omitted)"
    r"(?: - (?P<message>.*))?$"
)
_FAILED = ("Failed", "Error")


@dataclass(frozen=True)
class StepEvent:
    """A step reached a phase (``message`` says why it failed / was skipped)."""

    node: str
    phase: str
    message: str = ""


def parse_step_event(line: str) -> StepEvent | None:
    """The step event of a job log line, or None for any other line."""
    m = STEP_EVENT.match(line)
    if m is None:
        return None
    return StepEvent(m.group("node"), m.group("phase"), m.group("message") or "")


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` → dict; exits 2 naming an item without ``=`` or a repeated key."""
    out: dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        key = key.strip()
        if not sep or not key:
            fail(f"--param {p!r} must be NAME=VALUE", code=2)
        if key in out:
            fail(f"--param {key} is given twice", code=2)
        out[key] = value
    return out


@pipeline_app.command("ls")
@handles_api_errors
def pipeline_ls(json_out: bool = JSON_OPTION) -> None:
    """The pipelines, with their parameters (* = required, else NAME=default)."""
    rows = get_client().list_pipelines()
    if json_out:
        print_json(rows)
        return
    table = []
    for p in rows:
        params = []
        for q in p.parameters:
            if q.reserved:
                continue
            params.append(f"{q.name}*" if q.required else f"{q.name}={q.default_value!r}")
        table.append((p.name, p.description, " ".join(params), " → ".join(p.steps)))
    print_table("pipelines (* = required)", ["name", "description", "parameters", "steps"], table)


def _step_text(e: StepEvent) -> str:
    mark = {"Running": "▶", "Succeeded": "✔", "Skipped": "–", "Omitted": "–"}.get(e.phase, "✘")
    text = f"{mark} {e.node}: {'started' if e.phase == 'Running' else e.phase.lower()}"
    return text + (f" ({e.message})" if e.message else "")


@pipeline_app.command("run")
@handles_api_errors
def pipeline_run(
    name: str = typer.Argument(..., help="Pipeline name (see `tinyforge pipeline ls`)."),
    project_id: int = typer.Option(
        0, "--project", "--project-id", help="Project (0 = the one in client.json)."
    ),
    param: list[str] = typer.Option(  # noqa: B008
        [], "--param", "-p", help="Pipeline parameter NAME=VALUE (repeatable)."
    ),
    no_wait: bool = typer.Option(False, "--no-wait", help="Start it and print the job id."),
    logs: bool = typer.Option(False, "--logs", help="Also print the steps' log lines."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Run pipeline NAME on a project and follow it live.

    Prints a line per step as it starts and ends, a progress bar, and on failure the failing
    step with its message.

    Exit code 0 when the job succeeded, 1 when it failed or was cancelled. With --json, one JSON
    object per event (job snapshot, step event, or with --logs a log line) per line.
    """
    client = get_client()
    job = client.run_pipeline(name, parse_params(param), project_id=project_id or None)
    if no_wait:
        if json_out:
            print_json(job)
        else:
            typer.echo(f"pipeline {name}: job {job.id} started (follow: tinyforge jobs watch "
                       f"{job.id})")
        return
    last, failed = _follow(client, job.id, name, logs=logs, json_out=json_out)
    status = message_to_dict(last)["status"]
    if status != "succeeded":
        if not json_out:
            for e in failed:
                typer.echo(f"failed step: {e.node}" + (f": {e.message}" if e.message else ""),
                           err=True)
            typer.echo(f"pipeline {name} (job {job.id}) {status}: {last.error}", err=True)
        raise typer.Exit(1)
    if not json_out:
        typer.echo(f"pipeline {name} (job {job.id}) succeeded")
        if last.HasField("result"):
            typer.echo("result: " + json.dumps(message_to_dict(last)["result"], sort_keys=True))


def _follow(client: Any, job_id: int, name: str, *, logs: bool,
            json_out: bool) -> tuple[Any, list[StepEvent]]:
    """Watch the job to its end; returns (final job, the step events that failed)."""
    last = None
    failed: list[StepEvent] = []
    if json_out:
        for event in client.watch_job(job_id):
            if event.HasField("job"):
                last = event.job
                typer.echo(json.dumps({"job": message_to_dict(event.job)}))
                continue
            e = parse_step_event(event.log.line)
            if e is not None:
                failed += [e] if e.phase in _FAILED else []
                typer.echo(json.dumps({"step": {"node": e.node, "phase": e.phase.lower(),
                                                "message": e.message}}))
            elif logs:
                typer.echo(json.dumps({"log": message_to_dict(event.log)}))
    else:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        with Progress(
            TextColumn(f"[bold]{name}[/] job {job_id} {{task.fields[status]}}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.description}"),
            console=Console(),
        ) as progress:
            task = progress.add_task("", total=1.0, status="")
            for event in client.watch_job(job_id):
                if event.HasField("log"):
                    e = parse_step_event(event.log.line)
                    if e is not None:
                        failed += [e] if e.phase in _FAILED else []
                        progress.console.print(_step_text(e), markup=False, highlight=False)
                    elif logs:
                        progress.console.print(event.log.line, markup=False, highlight=False)
                    continue
                last = event.job
                progress.update(task, completed=last.progress, description=last.message,
                                status=message_to_dict(last)["status"])
    if last is None or message_to_dict(last)["status"] in ("pending", "running"):
        last = client.get_job(job_id)
    return last, failed


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(pipeline_app, name="pipeline")
