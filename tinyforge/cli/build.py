"""CLI commands for deployment builds: ``build`` (start a build, follow it, download the zip,
print the RAM / flash / latency table), ``build targets``, ``build formats``, ``build ls``,
``build show`` and ``build download``.

A format ``custom:NAME[@VERSION]`` is one of the organization's registered deploy blocks
(``build formats`` lists them with their parameters); ``--param NAME=VALUE`` sets its
parameters."""

from __future__ import annotations

import json
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

build_app = typer.Typer(
    help="Deployment builds: C library, firmware, ESP-IDF, Linux, WASM, TFLite, KServe.",
    invoke_without_command=True, no_args_is_help=False)
PROJECT_OPTION = typer.Option(0, "--project-id", help="Project (0 = the one in client.json).")
_STATES = {1: "pending", 2: "running", 3: "ready", 4: "failed"}


def _pid(project_id: int) -> int | None:
    return project_id or None


def _kib(n: int | None) -> str:
    return "-" if not n else f"{n} B ({n / 1024:.1f} KiB)"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.2f}%"


def build_dict(b: Any) -> dict[str, Any]:
    """A Build message as plain JSON (metrics parsed, state / precision as short names)."""
    plain = type(b)()
    plain.CopyFrom(b)
    plain.ClearField("options")  # maps: message_to_dict walks messages and lists only
    plain.ClearField("parameters")
    d = message_to_dict(plain)
    d["options"] = dict(b.options)
    d["parameters"] = dict(b.parameters)
    d["metrics"] = json.loads(d.pop("metrics_json") or "{}")
    d["state"] = _STATES.get(b.state, "unspecified")
    d["precision"] = "float32" if b.precision == 2 else "int8"
    for k in ("ram_bytes", "flash_bytes", "arena_bytes", "dsp_instructions", "nn_instructions",
              "on_target_accuracy", "platform_accuracy"):
        d[k] = getattr(b, k) if b.HasField(k) else None
    return d


def _parse_options(pairs: list[str], flag: str = "--option") -> dict[str, str]:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            fail(f"{flag} {p!r} must look like NAME=VALUE")
        out[key.strip()] = value
    return out


def _param_text(p: Any) -> str:
    """One custom block parameter for the formats table: ``name=default (range)``."""
    return f"{p.param}={json.loads(p.default_json or 'null')!r} ({p.range})"


def _latency(instructions: int | None, clock_mhz: float) -> str:
    """Time per inference at the target's clock, at one instruction per cycle (an estimate:
    Cortex-M4F / RV32 cores retire about one instruction per cycle on this code)."""
    if not instructions or not clock_mhz:
        return "-"
    return f"~{instructions / (clock_mhz * 1e3):.2f} ms"


def print_build_table(b: Any, target: Any | None) -> None:
    """RAM / flash / latency / accuracy of a ready build (DSP and NN separately)."""
    m = json.loads(b.metrics_json or "{}")
    clock = float(target.clock_mhz) if target is not None else 0.0
    rows: list[tuple[str, str]] = [
        ("RAM (static + stack)", _kib(b.ram_bytes if b.HasField("ram_bytes") else None)),
        ("  tensor arena", _kib(b.arena_bytes if b.HasField("arena_bytes") else None)),
        ("flash", _kib(b.flash_bytes if b.HasField("flash_bytes") else None)),
    ]
    dsp = b.dsp_instructions if b.HasField("dsp_instructions") else None
    nn = b.nn_instructions if b.HasField("nn_instructions") else None
    if dsp or nn:
        at = f" at {clock:g} MHz" if clock else ""
        rows += [("DSP instructions / inference", f"{dsp:,}" if dsp else "-"),
                 ("NN instructions / inference", f"{nn:,}" if nn else "-"),
                 (f"DSP latency{at}", _latency(dsp, clock)),
                 (f"NN latency{at}", _latency(nn, clock))]
    if "dsp_us" in m or "nn_us" in m:
        rows += [("DSP time (measured, median)", f"{m.get('dsp_us', '-')} us"),
                 ("NN time (measured, median)", f"{m.get('nn_us', '-')} us")]
    if "classify_ms" in m:
        rows.append(("classify time (node, median)", f"{m['classify_ms']} ms"))
    rows += [
        ("on-target accuracy", _pct(b.on_target_accuracy if b.HasField("on_target_accuracy")
                                    else None)),
        ("platform int8 accuracy", _pct(b.platform_accuracy if b.HasField("platform_accuracy")
                                        else None)),
        ("windows compared", str(b.compared_windows or "-")),
        ("verified on", b.verified_on or "-"),
        ("artifact", f"{b.artifact_size} bytes, sha256 {b.artifact_sha256[:16]}…"),
    ]
    if b.model_prefix:
        rows.append(("KServe model directory", b.model_prefix))
    if b.block_reference:
        rows.append(("deploy block", b.block_reference + "".join(
            f" {k}={v}" for k, v in sorted(b.parameters.items()))))
    print_table(f"build {b.id}: {b.format} for {b.target}", ["metric", "value"], rows)


def _follow(client: Any, job_id: int, verbose: bool) -> Any:
    """Watch a build job with a live progress bar (the newest log line as its text, or every
    line with ``verbose``); returns the final job."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    last = None
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]build[/] {task.fields[status]}"), BarColumn(),
                  TaskProgressColumn(), TimeElapsedColumn(), TextColumn("{task.description}"),
                  console=console, transient=not verbose) as progress:
        task = progress.add_task("", total=1.0, status="")
        for event in client.watch_job(job_id):
            if event.HasField("log"):
                line = event.log.line
                if verbose:
                    progress.console.print(line, markup=False, highlight=False)
                progress.update(task, description=line[:70])
                continue
            last = event.job
            progress.update(task, completed=last.progress,
                            status=message_to_dict(last)["status"])
    return last if last is not None else client.get_job(job_id)


@build_app.callback()
@handles_api_errors
def build_cmd(
    ctx: typer.Context,
    fmt: str = typer.Option(None, "--format", "-f",
                            help="Deployment format (see `tinyforge build formats`)."),
    target: str = typer.Option(None, "--target", "-t",
                               help="Target (see `tinyforge build targets`)."),
    model_id: int = typer.Option(0, "--model", "-m", help="Model id (0 = the newest model)."),
    out: Path = typer.Option(None, "--out", "-o",
                             help="Where to save the zip (a file or a directory; default: "
                                  "the server's file name here)."),
    use_float: bool = typer.Option(False, "--float",
                                   help="Ship the float32 model (tflite, kserve)."),
    option: list[str] = typer.Option([], "--option", "-O",
                                     help="Build option NAME=VALUE (repeatable), e.g. "
                                          "test_windows=50, ram_limit_bytes=65536."),
    param: list[str] = typer.Option([], "--param", "-P",
                                    help="Parameter NAME=VALUE of a custom deploy block "
                                         "(format custom:NAME; repeatable; see `tinyforge "
                                         "build formats`)."),
    timeout_s: float = typer.Option(0.0, "--timeout", help="Build time limit in seconds "
                                                           "(0 = the server's, 600)."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Show every log line (toolchain output)."),
    project_id: int = PROJECT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Build a trained model for a target (a job): live progress, then the zip and a table of
    RAM, flash, DSP / NN instructions and latency, on-target vs platform accuracy.

    Exit code 1 when the build fails (its reason is printed).
    """
    if ctx.invoked_subcommand is not None:
        return
    if not fmt or not target:
        fail("give --format and --target (list them with `tinyforge build formats` and "
             "`tinyforge build targets`)", code=2)
    client = get_client()
    pid = _pid(project_id)
    resp = client.start_build(fmt, target, model_id=model_id, use_float=use_float,
                              options=_parse_options(option),
                              parameters=_parse_options(param, "--param"),
                              timeout_s=timeout_s, project_id=pid)
    if not json_out:
        typer.echo(f"build {resp.build_id} (job {resp.job_id}): model {resp.model_id} as "
                   f"{fmt} for {target}")
        job = _follow(client, resp.job_id, verbose)
    else:
        job = client.wait_job(resp.job_id)
    b = client.get_build(resp.build_id, project_id=pid)
    if message_to_dict(job)["status"] != "succeeded" or b.state != 3:
        if json_out:
            print_json(build_dict(b))
        else:
            typer.echo(f"build {b.id} failed: {job.error or b.error}", err=True)
        raise typer.Exit(1)
    path, size, _sha = client.download_artifact(b.id, out if out is not None else Path("."),
                                                project_id=pid)
    if json_out:
        print_json(build_dict(b) | {"path": str(path)})
        return
    tgt = next((t for t in client.list_targets() if t.name == b.target), None)
    print_build_table(b, tgt)
    typer.echo(f"wrote {path} ({size} bytes)")


@build_app.command("targets")
@handles_api_errors
def build_targets(json_out: bool = JSON_OPTION) -> None:
    """The target catalog: clock, RAM, flash, toolchain (installed here?), verification."""
    rows = get_client().list_targets()
    if json_out:
        print_json(rows)
        return
    print_table("targets", ["name", "arch", "clock", "RAM", "flash", "toolchain", "verified on",
                            "formats"],
                [(t.name, t.arch, f"{t.clock_mhz:g} MHz" if t.clock_mhz else "-",
                  f"{t.ram_bytes // 1024} KiB" if t.ram_bytes else "-",
                  f"{t.flash_bytes // 1024} KiB" if t.flash_bytes else "-",
                  t.toolchain + ("" if t.toolchain_installed else " (missing: "
                                 + t.toolchain_package + ")"),
                  t.runner or "build only", ", ".join(t.formats)) for t in rows])


@build_app.command("formats")
@handles_api_errors
def build_formats(json_out: bool = JSON_OPTION) -> None:
    """The deployment formats and the targets each builds for, then the organization's custom
    deploy blocks (custom:NAME) with their version and parameters (set with --param)."""
    rows = get_client().list_formats()
    if json_out:
        print_json(rows)
        return
    print_table("formats", ["name", "verified", "float32", "targets", "description"],
                [(f.name, "yes" if f.verified else "no", "yes" if f.supports_float else "no",
                  ", ".join(f.targets), f.description) for f in rows
                 if not f.HasField("custom_block")])
    custom = [f for f in rows if f.HasField("custom_block")]
    if custom:
        print_table("custom deploy blocks (wrap the c-library build)",
                    ["name", "version", "parameters", "description"],
                    [(f.name, f.custom_block.version,
                      "; ".join(_param_text(p) for p in f.custom_block.parameters) or "-",
                      f.description) for f in custom])


@build_app.command("ls")
@handles_api_errors
def build_ls(model_id: int = typer.Option(0, "--model", "-m", help="Only this model's."),
             state: str = typer.Option("", "--state",
                                       help="pending | running | ready | failed"),
             limit: int = typer.Option(50, "--limit", help="Newest N (at most 1000)."),
             project_id: int = PROJECT_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Builds of the project, newest first."""
    rows = get_client().list_builds(model_id=model_id, state=state, limit=limit,
                                    project_id=_pid(project_id))
    if json_out:
        print_json([build_dict(b) for b in rows])
        return
    print_table("builds", ["id", "model", "format", "target", "state", "RAM", "flash",
                           "on-target", "platform", "error"],
                [(b.id, b.model_id, b.format, b.target, _STATES.get(b.state, "?"),
                  b.ram_bytes if b.HasField("ram_bytes") else "-",
                  b.flash_bytes if b.HasField("flash_bytes") else "-",
                  _pct(b.on_target_accuracy if b.HasField("on_target_accuracy") else None),
                  _pct(b.platform_accuracy if b.HasField("platform_accuracy") else None),
                  (b.error[:60] + "…") if len(b.error) > 60 else b.error) for b in rows])


@build_app.command("show")
@handles_api_errors
def build_show(build_id: int, project_id: int = PROJECT_OPTION,
               json_out: bool = JSON_OPTION) -> None:
    """One build: state, error or the RAM / flash / latency table."""
    client = get_client()
    b = client.get_build(build_id, project_id=_pid(project_id))
    if json_out:
        print_json(build_dict(b))
        return
    if b.state != 3:
        typer.echo(f"build {b.id}: {b.format} for {b.target}, {_STATES.get(b.state, '?')}"
                   + (f": {b.error}" if b.error else ""))
        return
    tgt = next((t for t in client.list_targets() if t.name == b.target), None)
    print_build_table(b, tgt)


@build_app.command("download")
@handles_api_errors
def build_download(build_id: int,
                   out: Path = typer.Option(Path("."), "--out", "-o",
                                            help="A file or a directory."),
                   project_id: int = PROJECT_OPTION) -> None:
    """Download a ready build's zip."""
    path, size, sha = get_client().download_artifact(build_id, out,
                                                     project_id=_pid(project_id))
    typer.echo(f"wrote {path} ({size} bytes, sha256 {sha})")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(build_app, name="build")
