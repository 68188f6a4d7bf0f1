"""Pipeline steps: the unit of work a workflow template runs in a container.

Every step of every pipeline is ``tinyforge step NAME --arg key=value ...`` in the TinyForge
image (or a custom block's image). A step reads its inputs from the metadata DB and the object
store (settings from ``TINYFORGE_*`` variables, as every platform process), does its work
through the library, and writes its output parameters as files under ``/tmp/outputs/`` — the
paths its Argo template declares in ``outputs.parameters[].valueFrom.path``. The local runner
re-roots those paths with ``TINYFORGE_OUTPUT_ROOT`` so the same step runs unchanged locally.

Steps register with :func:`step`; modules that define steps are listed in :data:`STEP_MODULES`
and imported on first lookup, so ``tinyforge --help`` stays fast.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyforge.errors import InvalidArgument, NotFound

#: Where a step writes output parameter NAME, relative to the output root ("/" in a container).
OUTPUTS_DIR = "tmp/outputs"
OUTPUT_ROOT_ENV = "TINYFORGE_OUTPUT_ROOT"
#: Modules whose import registers steps. Later stages append theirs.
STEP_MODULES: list[str] = [
    "tinyforge.workflows.builtin_steps",
    "tinyforge.features.steps",
    "tinyforge.training.steps",
    "tinyforge.deploy.steps",
    "tinyforge.transform.steps",
]


def output_path(name: str) -> str:
    """The container path of output parameter ``name`` (what templates declare)."""
    return f"/{OUTPUTS_DIR}/{name}"


@dataclass
class StepContext:
    """What a running step gets: its arguments and a way to emit outputs and log lines."""

    name: str
    args: dict[str, str]
    outputs: dict[str, str] = field(default_factory=dict)

    def arg(self, key: str, default: str | None = None) -> str:
        """Argument ``key``; InvalidArgument naming it when missing and no default."""
        if key in self.args:
            return self.args[key]
        if default is not None:
            return default
        raise InvalidArgument(f"step {self.name!r} needs argument {key!r}", field=key)

    def int_arg(self, key: str, default: int | None = None) -> int:
        raw = self.arg(key, None if default is None else str(default))
        try:
            return int(raw)
        except ValueError:
            raise InvalidArgument(
                f"argument {key!r} must be an integer, got {raw!r}", field=key
            ) from None

    def json_arg(self, key: str, default: Any = None) -> Any:
        raw = self.args.get(key)
        if raw is None:
            if default is None:
                raise InvalidArgument(f"step {self.name!r} needs argument {key!r}", field=key)
            return default
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"argument {key!r} is not valid JSON: {exc}", field=key) from None

    def output(self, name: str, value: Any) -> None:
        """Write output parameter ``name`` (strings as is, anything else as JSON)."""
        text = value if isinstance(value, str) else json.dumps(value)
        root = Path(os.environ.get(OUTPUT_ROOT_ENV, "/"))
        path = root / OUTPUTS_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)  # a reader never sees half an output
        self.outputs[name] = text

    def log(self, message: str) -> None:
        """One log line (stdout; the runner or Argo collects it into the job log)."""
        print(message, flush=True)


class StepReporter:
    """A library reporter for steps: logs and progress go to stdout, which the runner / Argo
    collects into the job log. Cancellation stops the step's process, so there is no flag to
    poll."""

    def __init__(self, ctx: StepContext) -> None:
        self._ctx = ctx

    def log(self, line: str) -> None:
        self._ctx.log(line)

    def progress(self, fraction: float, message: str = "") -> None:
        self._ctx.log(f"progress {fraction:.3f} {message}".rstrip())

    def check_cancelled(self) -> None:
        """Nothing to poll: a cancelled step is stopped from outside."""


StepFn = Callable[[StepContext], None]


@dataclass(frozen=True)
class StepDef:
    name: str
    fn: StepFn
    help: str


_STEPS: dict[str, StepDef] = {}
_loaded = False


def step(name: str, *, help: str = "") -> Callable[[StepFn], StepFn]:
    """Decorator registering ``fn`` as pipeline step ``name``."""

    def deco(fn: StepFn) -> StepFn:
        if name in _STEPS and _STEPS[name].fn is not fn:
            raise ValueError(f"step {name!r} is already registered")
        _STEPS[name] = StepDef(name, fn, help or (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return deco


def _load() -> None:
    global _loaded
    if not _loaded:
        for mod in STEP_MODULES:
            importlib.import_module(mod)
        _loaded = True


def steps() -> dict[str, StepDef]:
    """Every registered step by name."""
    _load()
    return dict(_STEPS)


def cleanup_step(name: str, what: str, cleanup: Callable[[Any, int, int], int]) -> StepFn:
    """Register step ``name``: an exit handler's removal of a job's staging keys.

    ``cleanup(objects, project_id, job_id)`` removes them and returns how many it removed;
    ``what`` names the job kind in the help text. The step runs whatever the outcome, so the
    staging keys never outlive the job.
    """

    def run(ctx: StepContext) -> None:
        from tinyforge.workflows.platform_env import step_platform

        project_id, job_id = ctx.int_arg("project-id"), ctx.int_arg("job-id")
        platform = step_platform()
        try:
            n = cleanup(platform.objects, project_id, job_id)
        finally:
            platform.close()
        ctx.log(f"removed {n} staged object(s)")

    return step(name, help=f"Remove a {what} job's staged block inputs and outputs.")(run)


def parse_args(pairs: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` → dict; InvalidArgument for an item without ``=``."""
    out: dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"step argument {p!r} is not KEY=VALUE", field="arg")
        out[key] = value
    return out


def run_step(name: str, args: Mapping[str, str]) -> dict[str, str]:
    """Run step ``name`` in this process; returns the outputs it wrote."""
    defs = steps()
    if name not in defs:
        raise NotFound(f"no step named {name!r}; steps: {', '.join(sorted(defs))}", field="name")
    ctx = StepContext(name=name, args=dict(args))
    defs[name].fn(ctx)
    return ctx.outputs


def main_exit_code(name: str, args: Mapping[str, str]) -> int:
    """Run a step as a process would: errors on stderr, exit 2 for bad input, 1 otherwise."""
    import threading

    from tinyforge.errors import TinyForgeError
    from tinyforge.workflows.executors import stop_children_on_sigterm

    if threading.current_thread() is threading.main_thread():
        stop_children_on_sigterm()  # a cancelled/stopped step takes its block processes along
    try:
        run_step(name, args)
    except TinyForgeError as exc:
        print(f"step {name} failed: {exc.code}: {exc.message}", file=sys.stderr, flush=True)
        return 2 if exc.code in {"INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION"} else 1
    return 0
