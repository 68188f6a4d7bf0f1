"""CLI commands: ``jobs list/get/cancel/watch``."""

from __future__ import annotations

import json

import typer

from tinyforge.cli.common import (
    JSON_OPTION,
    get_client,
    handles_api_errors,
    message_to_dict,
    print_fields,
    print_json,
    print_table,
)

jobs_app = typer.Typer(help="Long-running jobs: status, logs, cancel.", no_args_is_help=True)


@jobs_app.command("list")
@handles_api_errors
def jobs_list(
    project_id: int = typer.Option(0, help="Project (0 = the project in client.json)."),
    limit: int = typer.Option(50, help="Newest N jobs (0 = all)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Jobs of a project, newest first."""
    rows = get_client().list_jobs(project_id or None, limit=limit)
    if json_out:
        print_json(rows)
        return
    table = []
    for j in rows:
        d = message_to_dict(j)
        table.append((j.id, j.kind, d["status"], f"{j.progress:.0%}", j.message, d["create_time"]))
    print_table("jobs", ["id", "kind", "status", "progress", "message", "created"], table)


@jobs_app.command("get")
@handles_api_errors
def jobs_get(job_id: int, json_out: bool = JSON_OPTION) -> None:
    """Show one job."""
    job = get_client().get_job(job_id)
    if json_out:
        print_json(job)
    else:
        print_fields(job)


@jobs_app.command("cancel")
@handles_api_errors
def jobs_cancel(job_id: int, json_out: bool = JSON_OPTION) -> None:
    """Cancel a job (pending: at once; running: at its next check)."""
    job = get_client().cancel_job(job_id)
    if json_out:
        print_json(job)
    else:
        typer.echo(f"job {job.id}: {message_to_dict(job)['status']} (cancel requested)")


@jobs_app.command("watch")
@handles_api_errors
def jobs_watch(
    job_id: int,
    from_offset: int = typer.Option(0, "--from-offset", help="First log line to show."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Follow a job live: progress bar and log lines, until it finishes.

    Exit code 0 when it succeeded, 1 when it failed or was cancelled. With --json, one JSON
    object per event (a job snapshot or a log line) per line.
    """
    client = get_client()
    last = None
    if json_out:
        for event in client.watch_job(job_id, from_offset):
            kind = event.WhichOneof("event")
            typer.echo(json.dumps({kind: message_to_dict(getattr(event, kind))}))
            if kind == "job":
                last = event.job
    else:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        console = Console()
        with Progress(
            TextColumn("[bold]job {task.fields[job_id]}[/] {task.fields[status]}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("", total=1.0, job_id=job_id, status="")
            for event in client.watch_job(job_id, from_offset):
                if event.HasField("log"):
                    progress.console.print(event.log.line, markup=False, highlight=False)
                    continue
                last = event.job
                progress.update(
                    task,
                    completed=last.progress,
                    description=last.message,
                    status=message_to_dict(last)["status"],
                )
    if last is None:
        last = client.get_job(job_id)
    status = message_to_dict(last)["status"]
    if status != "succeeded":
        if not json_out:
            typer.echo(f"job {job_id} {status}: {last.error}", err=True)
        raise typer.Exit(1)
    if not json_out:
        typer.echo(f"job {job_id} succeeded")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(jobs_app, name="jobs")
