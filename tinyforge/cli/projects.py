"""CLI commands: ``project``, ``apikey`` and ``member`` groups."""

from __future__ import annotations

from enum import StrEnum

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

project_app = typer.Typer(help="Projects and their settings.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys (shown once, stored hashed).", no_args_is_help=True)
member_app = typer.Typer(help="Organization members and their roles.", no_args_is_help=True)


class RoleName(StrEnum):
    admin = "admin"
    member = "member"
    guest = "guest"


class LabelingName(StrEnum):
    single_label = "single_label"
    object_detection = "object_detection"
    structured_labels = "structured_labels"


PROJECT_ID = typer.Argument(0, help="Project id (0 = the project in client.json).")
UNSIGNED = typer.Option(
    None,
    "--allow-unsigned/--require-signed",
    help="Accept acquisition data without an HMAC signature.",
)


def _project_rows(projects: list) -> list[tuple]:
    rows = []
    for p in projects:
        d = message_to_dict(p)
        rows.append((p.id, p.name, d["labeling_method"], p.allow_unsigned_data, d["create_time"]))
    return rows


def _show_project(project: object, json_out: bool) -> None:
    if json_out:
        print_json(project)
    else:
        print_fields(project)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- project
@project_app.command("create")
@handles_api_errors
def project_create(
    name: str,
    description: str = typer.Option("", help="Free text."),
    labeling_method: LabelingName = typer.Option(LabelingName.single_label),
    allow_unsigned: bool = UNSIGNED,
    org_id: int = typer.Option(0, help="Organization (0 = your key's)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Create a project."""
    p = get_client().create_project(
        name,
        org_id=org_id,
        description=description,
        labeling_method=labeling_method.value,
        allow_unsigned_data=allow_unsigned,
    )
    if json_out:
        print_json(p)
    else:
        typer.echo(f"created project {p.id} ({p.name})")


@project_app.command("list")
@handles_api_errors
def project_list(
    org_id: int = typer.Option(0, help="Organization (0 = your key's)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Projects your API key can see."""
    rows = get_client().list_projects(org_id)
    if json_out:
        print_json(rows)
    else:
        print_table(
            "projects", ["id", "name", "labeling", "unsigned ok", "created"], _project_rows(rows)
        )


@project_app.command("get")
@handles_api_errors
def project_get(project_id: int = PROJECT_ID, json_out: bool = JSON_OPTION) -> None:
    """Show a project and its settings."""
    _show_project(get_client().get_project(project_id or None), json_out)


@project_app.command("update")
@handles_api_errors
def project_update(
    project_id: int = PROJECT_ID,
    name: str = typer.Option(None, help="New name."),
    description: str = typer.Option(None, help="New description."),
    labeling_method: LabelingName = typer.Option(None),
    allow_unsigned: bool = UNSIGNED,
    json_out: bool = JSON_OPTION,
) -> None:
    """Change project settings (only the options given)."""
    p = get_client().update_project(
        project_id or None,
        name=name,
        description=description,
        labeling_method=labeling_method.value if labeling_method else None,
        allow_unsigned_data=allow_unsigned,
    )
    _show_project(p, json_out)


@project_app.command("delete")
@handles_api_errors
def project_delete(
    project_id: int = typer.Argument(..., help="Project id."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a project with all its data (admins only)."""
    if not yes:
        typer.confirm(f"Delete project {project_id} and all its data?", abort=True)
    get_client().delete_project(project_id)
    typer.echo(f"deleted project {project_id}")


@project_app.command("hmac-key")
@handles_api_errors
def project_hmac_key(
    project_id: int = PROJECT_ID,
    rotate: bool = typer.Option(False, "--rotate", help="Replace the key with a new one."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Show (or rotate) the HMAC key that verifies signed data (admins only)."""
    client = get_client()
    key = (
        client.rotate_hmac_key(project_id or None)
        if rotate
        else client.get_hmac_key(project_id or None)
    )
    if json_out:
        print_json({"hmac_key": key})
    else:
        typer.echo(key)


# ---------------------------------------------------------------------------- apikey
@apikey_app.command("create")
@handles_api_errors
def apikey_create(
    project_id: int = typer.Option(0, help="Scope the key to this project (0 = organization)."),
    org_id: int = typer.Option(0, help="Organization (0 = your key's)."),
    role: RoleName = typer.Option(None, help="Role of the key (default: yours)."),
    name: str = typer.Option("", help="A label for the key."),
    user_id: int = typer.Option(0, help="Act for this member (admins only; 0 = you)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Create an API key; the secret is printed once and never again."""
    resp = get_client().create_api_key(
        project_id=project_id,
        org_id=org_id,
        role=role.value if role else None,
        name=name,
        user_id=user_id,
    )
    if json_out:
        print_json({"api_key": resp.api_key, "secret": resp.secret})
        return
    scope = f"project {resp.api_key.project_id}" if resp.api_key.project_id else "organization"
    typer.echo(f"created API key {resp.api_key.id} ({scope})")
    typer.echo(f"secret (shown once): {resp.secret}")


@apikey_app.command("list")
@handles_api_errors
def apikey_list(
    project_id: int = typer.Option(0, help="Keys of this project (0 = every key of the org)."),
    include_revoked: bool = typer.Option(False, "--include-revoked"),
    json_out: bool = JSON_OPTION,
) -> None:
    """API keys (prefixes only; secrets are never shown again)."""
    rows = get_client().list_api_keys(project_id=project_id, include_revoked=include_revoked)
    if json_out:
        print_json(rows)
        return
    table = []
    for k in rows:
        d = message_to_dict(k)
        table.append(
            (k.id, k.name, k.prefix + "…", k.project_id or "org", d["role"], d["revoke_time"] or "")
        )
    print_table("API keys", ["id", "name", "prefix", "scope", "role", "revoked"], table)


@apikey_app.command("revoke")
@handles_api_errors
def apikey_revoke(api_key_id: int, json_out: bool = JSON_OPTION) -> None:
    """Revoke an API key; calls with it fail from now on."""
    key = get_client().revoke_api_key(api_key_id)
    if json_out:
        print_json(key)
    else:
        typer.echo(f"revoked API key {key.id} ({key.prefix}…)")


# ---------------------------------------------------------------------------- member
@member_app.command("add")
@handles_api_errors
def member_add(
    email: str,
    role: RoleName = typer.Option(..., help="Role in the organization."),
    name: str = typer.Option("", help="Display name."),
    org_id: int = typer.Option(0, help="Organization (0 = your key's)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Add a user (created on first use) to the organization."""
    m = get_client().add_member(email, role.value, name=name, org_id=org_id)
    if json_out:
        print_json(m)
    else:
        typer.echo(f"added {m.email} (user {m.user_id}) as {role.value}")


@member_app.command("remove")
@handles_api_errors
def member_remove(
    user_id: int, org_id: int = typer.Option(0, help="Organization (0 = your key's).")
) -> None:
    """Remove a user from the organization; their keys stop working."""
    get_client().remove_member(user_id, org_id=org_id)
    typer.echo(f"removed user {user_id}")


@member_app.command("list")
@handles_api_errors
def member_list(
    org_id: int = typer.Option(0, help="Organization (0 = your key's)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Members of the organization and their roles."""
    rows = get_client().list_members(org_id)
    if json_out:
        print_json(rows)
    else:
        print_table(
            "members",
            ["user", "email", "name", "role"],
            [(m.user_id, m.email, m.name, message_to_dict(m)["role"]) for m in rows],
        )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(project_app, name="project")
    app.add_typer(apikey_app, name="apikey")
    app.add_typer(member_app, name="member")
