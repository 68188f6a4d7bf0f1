"""CLI commands: ``tinyforge blocks ...`` — author, build, push and run custom blocks locally.

Authoring works on this machine without the platform server: podman (rootful, runc) for
containers, a loopback OCI registry for push/pull, or a block's ``info.localCommand``.
With a platform configured (client.json or TINYFORGE_ADDRESS/TINYFORGE_API_KEY), ``blocks push``
also registers the pushed block with the organization's BlockService; ``blocks register``,
``ls``, ``show``, ``versions`` and ``delete`` work on that registry (``ls --registry`` lists an
OCI registry's catalogue instead).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer

from tinyforge.cli.common import get_client, handles_api_errors, print_json, print_table
from tinyforge.errors import TinyForgeError

blocks_app = typer.Typer(
    help="Custom blocks (transform, dsp, learn, deploy): scaffold, build, push, run locally.",
    no_args_is_help=True,
)

F = TypeVar("F", bound=Callable[..., Any])


class BlockTypeName(StrEnum):
    transform = "transform"
    dsp = "dsp"
    learn = "learn"
    deploy = "deploy"


class EngineName(StrEnum):
    auto = "auto"
    podman = "podman"
    local = "local"


def _errors(fn: F) -> F:
    """Print domain errors as one clear message on stderr and exit 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TinyForgeError as exc:
            where = f" [{exc.field}]" if exc.field else ""
            typer.echo(f"error{where}: {exc.message}", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _echo_err(line: str) -> None:
    typer.echo(line, err=True)


def _parse_params(pairs: list[str]) -> dict[str, str]:
    from tinyforge.errors import InvalidArgument

    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidArgument(f"--param {pair!r} is not KEY=VALUE", field="param")
        out[key.strip().replace("-", "_")] = value
    return out


@blocks_app.command("init")
@_errors
def init_cmd(
    directory: Path = typer.Argument(..., help="New (or empty) directory for the block."),
    block_type: BlockTypeName = typer.Option(..., "--type", "-t", help="Block type."),
    name: str = typer.Option("", help="Block name (default: from the directory name)."),
    base: str = typer.Option(
        "", help="Base image for the Dockerfile (default: the local Debian+Python base)."
    ),
) -> None:
    """Scaffold a runnable block: parameters.json, Dockerfile, main.py entrypoint, README."""
    from tinyforge.blocks.scaffold import init_block

    path = init_block(directory, block_type.value, name=name or None, base_image=base or None)
    typer.echo(f"created {block_type.value} block in {path}")


@blocks_app.command("setup")
@_errors
def setup_cmd(
    tensorflow: bool = typer.Option(
        False, "--tensorflow", help="Also build the TensorFlow base (learn blocks; ~1.5 GB)."
    ),
) -> None:
    """Check podman and bootstrap the local base images (idempotent, cached)."""
    from tinyforge.blocks import containers
    from tinyforge.errors import FailedPrecondition
    from tinyforge.workflows.podman import containers_conf, podman_unavailable_reason

    reason = podman_unavailable_reason()
    if reason:
        raise FailedPrecondition(f"podman cannot run containers here: {reason}", field="podman")
    typer.echo(f"podman ok (runc); CONTAINERS_CONF={containers_conf()}")
    typer.echo(containers.ensure_busybox_image())
    typer.echo(containers.ensure_base_image(log=_echo_err))
    if tensorflow:
        typer.echo(containers.ensure_tensorflow_base_image(log=_echo_err))


@blocks_app.command("build")
@_errors
def build_cmd(
    directory: Path = typer.Argument(..., help="Block directory (parameters.json + Dockerfile)."),
    tag: str = typer.Option("latest", help="Image tag."),
    base: str = typer.Option("", help="Local base image (BASE_IMAGE build argument)."),
) -> None:
    """Build the block's image with podman (--pull=never --network=none)."""
    from tinyforge.blocks.images import build_block_image

    ref = build_block_image(directory, tag=tag, base_image=base or None, log=_echo_err)
    typer.echo(ref)


@blocks_app.command("push")
@_errors
def push_cmd(
    directory: Path = typer.Argument(..., help="Block directory."),
    registry: str = typer.Option(..., help="Registry HOST:PORT, e.g. 127.0.0.1:5000."),
    tag: str = typer.Option("latest", help="Image tag."),
    base: str = typer.Option("", help="Local base image (BASE_IMAGE build argument)."),
    build: bool = typer.Option(True, "--build/--no-build", help="Build before pushing."),
    register: bool | None = typer.Option(
        None, "--register/--no-register",
        help="Register with the platform (default: when one is configured).",
    ),
    name: str = typer.Option("", help="Registry name (default: a slug of info.name)."),
) -> None:
    """Build (unless --no-build) and push the block's image; prints the pushed reference.

    TLS verification is off only for a loopback registry. When a platform is configured
    (client.json, or TINYFORGE_ADDRESS + TINYFORGE_API_KEY) the pushed image is also registered
    with the organization's BlockService as a new version (with the block's source when it
    declares info.localCommand); --no-register skips that, --register requires it.
    """
    from tinyforge.blocks.images import build_block_image, default_image_ref, push_block_image
    from tinyforge.blocks.manifest import load_manifest

    if build:
        ref = build_block_image(directory, tag=tag, base_image=base or None, log=_echo_err)
    else:
        ref = default_image_ref(load_manifest(directory), tag)
    remote = push_block_image(ref, registry, log=_echo_err)
    if register is not False:
        _register_pushed(directory, remote, name, required=register is True)
    typer.echo(remote)


def _register_pushed(directory: Path, image: str, name: str, *, required: bool) -> None:
    """Register a pushed image with the configured platform (stderr: what happened)."""
    from tinyforge.client import ApiError, ConfigError, TinyForgeClient
    from tinyforge.errors import FailedPrecondition

    try:
        client = TinyForgeClient.from_config()
    except ConfigError as exc:
        if required:
            raise FailedPrecondition(f"cannot register: {exc}", field="register") from None
        _echo_err("no platform configured: pushed only (use --register to require it)")
        return
    try:
        with client:
            b = client.register_block_dir(directory, name=name, image=image)
    except ApiError as exc:
        where = f" [{exc.field}]" if exc.field else ""
        raise FailedPrecondition(f"pushed {image}, but registering it failed: {exc.code}"
                                 f"{where}: {exc.message}", field="register") from None
    _echo_err(f"registered {b.reference} ({b.type}) in organization {b.org_id}")


@blocks_app.command("ls")
@_errors
@handles_api_errors
def ls_cmd(
    registry: str = typer.Option(
        "", help="List this OCI registry's catalogue (HOST:PORT) instead of the platform's."
    ),
    block_type: BlockTypeName | None = typer.Option(None, "--type", "-t", help="Only this type."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the organization's registered blocks (the platform's BlockService; latest
    versions), or with --registry the block images (repositories and tags) in an OCI registry."""
    if not registry:
        with get_client() as client:
            rows = client.list_registered_blocks(block_type.value if block_type else "")
        if as_json:
            print_json([_block_json(b) for b in rows])
            return
        print_table("Registered blocks", ["name", "type", "version", "versions", "image",
                                          "local command", "title"],
                    [(b.name, b.type, b.version, b.version_count, b.image or "-",
                      "yes" if b.has_local_command and b.source_sha256 else "-", b.title)
                     for b in rows])
        return
    from tinyforge.blocks.images import check_registry
    from tinyforge.blocks.oci_registry import registry_catalog

    cat = registry_catalog(check_registry(registry))
    if as_json:
        typer.echo(json.dumps(cat, indent=2))
        return
    if not cat:
        typer.echo(f"(no repositories in {registry})")
    for repo, tags in cat.items():
        for t in tags or ["(no tags)"]:
            typer.echo(f"{registry}/{repo}:{t}")


@blocks_app.command("run-local")
@_errors
def run_local_cmd(
    block: str = typer.Argument(..., help="Block directory or image reference."),
    in_path: Path = typer.Option(..., "--in", help="Input: dir, file, X.npy, data dir, ..."),
    out_dir: Path = typer.Option(..., "--out", help="New output directory."),
    param: list[str] = typer.Option([], "--param", "-p", help="Block parameter KEY=VALUE."),
    block_type: BlockTypeName | None = typer.Option(
        None, "--type", "-t", help="Expected block type (checked against parameters.json)."
    ),
    engine: EngineName = typer.Option(
        EngineName.auto,
        help="podman, local (info.localCommand) or auto (the image if built, else local).",
    ),
    epochs: int | None = typer.Option(None, help="learn blocks: training epochs."),
    learning_rate: float | None = typer.Option(None, help="learn blocks: learning rate."),
    memory_mb: int | None = typer.Option(None, help="Memory limit, MiB (containers)."),
    cpus: float | None = typer.Option(None, help="CPU limit, cores (containers)."),
    timeout: float | None = typer.Option(None, help="Time limit, seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run a block on local data exactly as the platform would (contract arguments, limits,
    read-only input, output published only on success); streams the block's log to stderr.
    """
    from tinyforge.blocks.limits import BlockLimits
    from tinyforge.blocks.run import resolve_block, run_block
    from tinyforge.errors import InvalidArgument

    resolved = resolve_block(block)
    if block_type is not None and resolved.manifest.type != block_type.value:
        raise InvalidArgument(
            f"block {resolved.manifest.name!r} is a {resolved.manifest.type} block, "
            f"not {block_type.value}",
            field="type",
        )
    result = run_block(
        resolved,
        in_path,
        out_dir,
        params=_parse_params(param),
        limits=BlockLimits(memory_mb=memory_mb, cpus=cpus, timeout_s=timeout),
        engine=engine.value,
        epochs=epochs,
        learning_rate=learning_rate,
        log=_echo_err,
    )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "name": result.name,
                    "type": result.type,
                    "engine": result.engine,
                    "image": result.image,
                    "out_dir": str(result.out_dir),
                    "files": result.files,
                    "duration_s": round(result.duration_s, 3),
                },
                indent=2,
            )
        )
        return
    typer.echo(
        f"{result.name} ({result.type}, {result.engine}) finished in {result.duration_s:.1f} s: "
        f"{len(result.files)} file(s) in {result.out_dir}"
    )


@blocks_app.command("registry")
@_errors
def registry_cmd(
    storage: Path = typer.Option(..., help="Directory holding the registry's data."),
    port: int = typer.Option(5000, help="Loopback port to listen on."),
) -> None:
    """Serve a local OCI registry (Debian's docker-registry) on 127.0.0.1:PORT until stopped."""
    import signal

    from tinyforge.blocks.oci_registry import LocalOciRegistry

    reg = LocalOciRegistry(storage, port=port).start()
    # SIGTERM must also stop the registry child (it runs in its own session).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    typer.echo(f"registry listening on {reg.address} (storage {storage}); Ctrl-C stops it")
    sys.stdout.flush()
    try:
        reg.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        reg.stop()


def _block_json(b: Any) -> dict[str, Any]:
    from tinyforge.cli.common import message_to_dict

    d = message_to_dict(b)
    d["parameters_json"] = json.loads(b.parameters_json)
    return d


@blocks_app.command("register")
@_errors
@handles_api_errors
def register_cmd(
    directory: Path = typer.Argument(..., help="Block directory (parameters.json)."),
    image: str = typer.Option("", help="Image reference, e.g. 127.0.0.1:5000/team/zcr:1."),
    digest: str = typer.Option("", help="sha256:... manifest digest pinning the image."),
    name: str = typer.Option("", help="Registry name (default: a slug of info.name)."),
    source: bool | None = typer.Option(
        None, "--source/--no-source",
        help="Upload the block's files (default: when it declares info.localCommand).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Register a block with the platform: a new version of NAME in your organization."""
    with get_client() as client:
        b = client.register_block_dir(directory, name=name, image=image, image_digest=digest,
                                      include_source=source)
    if as_json:
        print_json(_block_json(b))
        return
    typer.echo(f"registered {b.reference} ({b.type}); {_usage_hint(b)}")


@blocks_app.command("show")
@_errors
@handles_api_errors
def show_cmd(
    name: str = typer.Argument(..., help="Registered block name."),
    version: int = typer.Option(0, help="Version (0 = latest)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A registered block and its parameters: types, defaults and valid ranges."""
    with get_client() as client:
        b = client.get_block(name, version)
    if as_json:
        print_json(_block_json(b))
        return
    typer.echo(f"{b.name} v{b.version} of {b.latest_version} ({b.type}): {b.title}")
    if b.description:
        typer.echo(f"  {b.description}")
    typer.echo(f"  image: {b.image or '-'}" + (f" @ {b.image_digest}" if b.image_digest else ""))
    typer.echo(f"  local command: {'yes' if b.has_local_command and b.source_sha256 else 'no'}")
    typer.echo(f"  reference: {b.reference}")
    print_table("Parameters", ["param", "name", "type", "default", "valid", "help"],
                [(p.param, p.name, p.type, p.default_json, p.range, p.help)
                 for p in b.parameters])


@blocks_app.command("versions")
@_errors
@handles_api_errors
def versions_cmd(
    name: str = typer.Argument(..., help="Registered block name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every version of a registered block."""
    with get_client() as client:
        rows = client.list_block_versions(name)
    if as_json:
        print_json([_block_json(b) for b in rows])
        return
    print_table(f"Versions of {name}", ["version", "image", "digest", "source", "created"],
                [(b.version, b.image or "-", b.image_digest or "-",
                  b.source_sha256[:12] or "-", b.create_time.ToDatetime().isoformat())
                 for b in rows])


@blocks_app.command("delete")
@_errors
@handles_api_errors
def delete_cmd(
    name: str = typer.Argument(..., help="Registered block name."),
    version: int = typer.Option(0, help="Delete only this version (0 = the whole block)."),
) -> None:
    """Delete a version of a registered block, or the whole block."""
    with get_client() as client:
        n = client.delete_block(name, version)
    typer.echo(f"deleted {n} version(s) of {name}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(blocks_app, name="blocks")


def _usage_hint(b: Any) -> str:
    """How a registered block of each type is used (latest version, or pinned)."""
    ref = f"custom:{b.name} (latest) or {b.reference}"
    if b.type == "dsp":
        return f"use it as an impulse processing block: {ref}"
    if b.type == "learn":
        return f"use it as an impulse learning block type: {ref}"
    if b.type == "deploy":
        return f"build with it: tinyforge build --format {ref.split(' ')[0]} (or {b.reference})"
    return (f"run it: tinyforge pipeline run tinyforge-transform -p block={b.name} "
            "-p source=dataset:training")
