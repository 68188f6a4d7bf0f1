"""Authorization policy: which role and scope every API method needs, and the check itself.

The table :data:`POLICY` maps each gRPC method (full name) to a :class:`Rule`; the server's
interceptor looks every call up here and denies methods that have no rule. Later services add
their rows to the table (and, for new kinds of resources, a scope resolver with
:func:`register_scope`).

How a call is decided:
1. the rule's *scope* turns the request into a :class:`Target` (organization, and project when
   the call is about one project), raising NotFound for unknown ids;
2. the target must be in the key's organization, and for a project-scoped key in its project
   (org-level targets are refused to project keys unless ``project_keys`` is set);
3. the key's effective role must be at least ``role`` (``org_role`` for org-level targets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tinyforge.accounts.orgs import get_org
from tinyforge.accounts.projects import get_project
from tinyforge.accounts.validation import check_id
from tinyforge.auth.principal import Principal, role_at_least
from tinyforge.errors import NotFound, PermissionDenied
from tinyforge.store.models import ApiKey, Job, Project, Role


class Scope:
    """Names of the built-in scope resolvers (strings, so later services can add their own)."""

    AUTHENTICATED = "authenticated"  # any valid key; target = the key's organization
    ORG = "org"  # request.<field> is an org id (0 = the key's organization)
    PROJECT = "project"  # request.<field> is a project id
    PROJECT_OR_ORG = "project_or_org"  # request.<field> project id if set, else request.<org_field>
    JOB = "job"  # request.<field> is a job id
    API_KEY = "api_key"  # request.<field> is an API key id


@dataclass(frozen=True)
class Rule:
    """What a method needs.

    role: minimum role for targets inside a project (and for org-level targets without org_role).
    org_role: minimum role when the target is the organization itself (None = ``role``).
    project_keys: whether project-scoped keys may call it on an org-level target.
    mutating: writes something; the server records an audit row for it.
    """

    role: Role
    scope: str
    field: str = ""
    org_field: str = "org_id"
    org_role: Role | None = None
    project_keys: bool = False
    mutating: bool = False


@dataclass(frozen=True)
class Target:
    """What a call is about: an organization, and a project inside it when ``project_id``."""

    org_id: int
    project_id: int | None = None


def _m(service: str, method: str) -> str:
    return f"/tinyforge.v1.{service}/{method}"


G, M, A = Role.GUEST, Role.MEMBER, Role.ADMIN

POLICY: dict[str, Rule] = {
    # OrganizationService: any org admin may create an organization (and becomes its admin).
    _m("OrganizationService", "CreateOrganization"): Rule(A, Scope.AUTHENTICATED, mutating=True),
    _m("OrganizationService", "GetOrganization"): Rule(G, Scope.ORG, "org_id", project_keys=True),
    _m("OrganizationService", "ListOrganizations"): Rule(G, Scope.AUTHENTICATED, project_keys=True),
    # ProjectService
    _m("ProjectService", "CreateProject"): Rule(M, Scope.ORG, "org_id", mutating=True),
    _m("ProjectService", "GetProject"): Rule(G, Scope.PROJECT, "project_id"),
    _m("ProjectService", "ListProjects"): Rule(G, Scope.ORG, "org_id", project_keys=True),
    _m("ProjectService", "UpdateProject"): Rule(M, Scope.PROJECT, "project_id", mutating=True),
    _m("ProjectService", "DeleteProject"): Rule(A, Scope.PROJECT, "project_id", mutating=True),
    _m("ProjectService", "GetProjectHmacKey"): Rule(A, Scope.PROJECT, "project_id"),
    _m("ProjectService", "RotateProjectHmacKey"): Rule(
        A, Scope.PROJECT, "project_id", mutating=True
    ),
    # ApiKeyService: project keys need member on the project, org keys need admin.
    _m("ApiKeyService", "CreateApiKey"): Rule(
        M, Scope.PROJECT_OR_ORG, "project_id", org_role=A, mutating=True
    ),
    _m("ApiKeyService", "ListApiKeys"): Rule(M, Scope.PROJECT_OR_ORG, "project_id", org_role=A),
    _m("ApiKeyService", "RevokeApiKey"): Rule(
        M, Scope.API_KEY, "api_key_id", org_role=A, mutating=True
    ),
    # MemberService
    _m("MemberService", "AddMember"): Rule(A, Scope.ORG, "org_id", mutating=True),
    _m("MemberService", "RemoveMember"): Rule(A, Scope.ORG, "org_id", mutating=True),
    _m("MemberService", "ListMembers"): Rule(G, Scope.ORG, "org_id"),
    # JobService
    _m("JobService", "GetJob"): Rule(G, Scope.JOB, "job_id"),
    _m("JobService", "ListJobs"): Rule(G, Scope.PROJECT, "project_id"),
    _m("JobService", "CancelJob"): Rule(M, Scope.JOB, "job_id", mutating=True),
    _m("JobService", "WatchJob"): Rule(G, Scope.JOB, "job_id"),
    # IngestService (data acquisition): members write samples, guests read them.
    # UploadStream authorizes its header message (services.common.auth.authorize_request).
    _m("IngestService", "UploadSample"): Rule(M, Scope.PROJECT, "project_id", mutating=True),
    _m("IngestService", "UploadStream"): Rule(M, Scope.PROJECT, "project_id", mutating=True),
    _m("IngestService", "ListSamples"): Rule(G, Scope.PROJECT, "project_id"),
    _m("IngestService", "GetSample"): Rule(G, Scope.PROJECT, "project_id"),
    _m("IngestService", "DownloadSample"): Rule(G, Scope.PROJECT, "project_id"),
    _m("IngestService", "UpdateSample"): Rule(M, Scope.PROJECT, "project_id", mutating=True),
    _m("IngestService", "MoveSamples"): Rule(M, Scope.PROJECT, "project_id", mutating=True),
    _m("IngestService", "DeleteSamples"): Rule(M, Scope.PROJECT, "project_id", mutating=True),
    _m("IngestService", "RebalanceSplit"): Rule(M, Scope.PROJECT, "project_id", mutating=True),
    _m("IngestService", "DatasetSummary"): Rule(G, Scope.PROJECT, "project_id"),
    _m("IngestService", "ListDevices"): Rule(G, Scope.PROJECT, "project_id"),
    # ImpulseService: members design impulses, guests read them.
    _m("ImpulseService", "CreateImpulse"): Rule(M, Scope.PROJECT, "project_id", mutating=True),
    _m("ImpulseService", "GetImpulse"): Rule(G, Scope.PROJECT, "project_id"),
    _m("ImpulseService", "ListImpulses"): Rule(G, Scope.PROJECT, "project_id"),
    _m("ImpulseService", "ListImpulseVersions"): Rule(G, Scope.PROJECT, "project_id"),
    _m("ImpulseService", "UpdateImpulse"): Rule(M, Scope.PROJECT, "project_id", mutating=True),
    _m("ImpulseService", "DiffImpulseVersions"): Rule(G, Scope.PROJECT, "project_id"),
    # DspService: block schemas are public to any key; RunBlock only computes (guests may);
    # generating features writes (members); reading features is for guests.
    _m("DspService", "ListBlocks"): Rule(G, Scope.AUTHENTICATED, project_keys=True),
    _m("DspService", "RunBlock"): Rule(G, Scope.PROJECT, "project_id"),
    _m("DspService", "GenerateFeatures"): Rule(M, Scope.PROJECT, "project_id", mutating=True),
    _m("DspService", "GetFeatures"): Rule(G, Scope.PROJECT, "project_id"),
    _m("DspService", "FeatureExplorer"): Rule(G, Scope.PROJECT, "project_id"),
    _m("DspService", "AutotuneBlock"): Rule(M, Scope.PROJECT, "project_id"),
    # BlockService: the organization's custom blocks. Every key of the org may read them
    # (project keys too: their impulses use them); members register and delete (project keys
    # not: a block serves every project of the org).
    _m("BlockService", "RegisterBlock"): Rule(M, Scope.ORG, "org_id", mutating=True),
    _m("BlockService", "GetBlock"): Rule(G, Scope.ORG, "org_id", project_keys=True),
    _m("BlockService", "ListRegisteredBlocks"): Rule(G, Scope.ORG, "org_id", project_keys=True),
    _m("BlockService", "ListBlockVersions"): Rule(G, Scope.ORG, "org_id", project_keys=True),
    _m("BlockService", "DeleteBlock"): Rule(M, Scope.ORG, "org_id", mutating=True),
    # TrainService: members train and test (jobs that write models); guests read models,
    # download their files and classify (computes only, like RunBlock).
    _m("TrainService", "StartTraining"): Rule(M, Scope.PROJECT, "project_id", mutating=True),
    _m("TrainService", "GetModel"): Rule(G, Scope.PROJECT, "project_id"),
    _m("TrainService", "ListModels"): Rule(G, Scope.PROJECT, "project_id"),
    _m("TrainService", "TestModel"): Rule(M, Scope.PROJECT, "project_id", mutating=True),
    _m("TrainService", "GetTestResult"): Rule(G, Scope.PROJECT, "project_id"),
    _m("TrainService", "DownloadModelFile"): Rule(G, Scope.PROJECT, "project_id"),
    _m("TrainService", "Classify"): Rule(G, Scope.PROJECT, "project_id"),
    # BuilderService: the catalog is public to any key; members start builds (jobs that run
    # toolchains and write artifacts); guests read builds and download their artifacts.
    _m("BuilderService", "ListTargets"): Rule(G, Scope.AUTHENTICATED, project_keys=True),
    _m("BuilderService", "ListFormats"): Rule(G, Scope.AUTHENTICATED, project_keys=True),
    _m("BuilderService", "StartBuild"): Rule(M, Scope.PROJECT, "project_id", mutating=True),
    _m("BuilderService", "GetBuild"): Rule(G, Scope.PROJECT, "project_id"),
    _m("BuilderService", "ListBuilds"): Rule(G, Scope.PROJECT, "project_id"),
    _m("BuilderService", "DownloadArtifact"): Rule(G, Scope.PROJECT, "project_id"),
    # PipelineService: any key may list the pipelines; members run one on a project (a job
    # that trains, builds, ... like StartTraining).
    _m("PipelineService", "ListPipelines"): Rule(G, Scope.AUTHENTICATED, project_keys=True),
    _m("PipelineService", "RunPipeline"): Rule(M, Scope.PROJECT, "project_id", mutating=True),
}

Resolver = Callable[[Session, Any, Rule, Principal], Target]


def _org_target(session: Session, org_id: int, field: str, principal: Principal) -> Target:
    org_id = org_id or principal.org_id
    get_org(session, org_id, field)
    return Target(org_id)


def _resolve_authenticated(session: Session, req: Any, rule: Rule, p: Principal) -> Target:
    return Target(p.org_id)


def _resolve_org(session: Session, req: Any, rule: Rule, p: Principal) -> Target:
    return _org_target(session, getattr(req, rule.field), rule.field, p)


_PROJECT_ORG = select(Project.org_id).where(Project.id == bindparam("pid"))  # built once


def _resolve_project(session: Session, req: Any, rule: Rule, p: Principal) -> Target:
    # A column query, not an ORM load: this runs on every project-scoped call.
    project_id = check_id(getattr(req, rule.field), rule.field)
    org_id = session.connection().scalar(_PROJECT_ORG, {"pid": project_id})
    if org_id is None:
        raise NotFound(f"project {project_id} does not exist", field=rule.field)
    return Target(org_id, project_id)


def _resolve_project_or_org(session: Session, req: Any, rule: Rule, p: Principal) -> Target:
    if getattr(req, rule.field):
        return _resolve_project(session, req, rule, p)
    return _org_target(session, getattr(req, rule.org_field), rule.org_field, p)


def _resolve_job(session: Session, req: Any, rule: Rule, p: Principal) -> Target:
    job_id = check_id(getattr(req, rule.field), rule.field)
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} does not exist", field=rule.field)
    project = get_project(session, job.project_id)
    return Target(project.org_id, project.id)


def _resolve_api_key(session: Session, req: Any, rule: Rule, p: Principal) -> Target:
    key_id = check_id(getattr(req, rule.field), rule.field)
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} does not exist", field=rule.field)
    return Target(key.org_id, key.project_id)


_RESOLVERS: dict[str, Resolver] = {
    Scope.AUTHENTICATED: _resolve_authenticated,
    Scope.ORG: _resolve_org,
    Scope.PROJECT: _resolve_project,
    Scope.PROJECT_OR_ORG: _resolve_project_or_org,
    Scope.JOB: _resolve_job,
    Scope.API_KEY: _resolve_api_key,
}


def register_scope(name: str, resolver: Resolver) -> None:
    """Add a scope resolver (e.g. 'sample': sample id → its project) for later services."""
    _RESOLVERS[name] = resolver


def resolve_target(session: Session, rule: Rule, request: Any, principal: Principal) -> Target:
    """Turn a request into the organization/project it is about (NotFound for unknown ids)."""
    return _RESOLVERS[rule.scope](session, request, rule, principal)


def authorize(principal: Principal, rule: Rule, target: Target, method: str = "") -> None:
    """Raise PermissionDenied unless ``principal`` may call ``method`` on ``target``."""
    name = method.rsplit("/", 1)[-1] or "this method"
    if target.org_id != principal.org_id:
        raise PermissionDenied(
            f"this API key belongs to organization {principal.org_id}; the request targets "
            f"organization {target.org_id}"
        )
    if principal.project_id is not None:
        if target.project_id is None and not rule.project_keys:
            raise PermissionDenied(
                f"{name} acts on the whole organization; this API key is scoped to project "
                f"{principal.project_id}"
            )
        if target.project_id is not None and target.project_id != principal.project_id:
            raise PermissionDenied(
                f"this API key is scoped to project {principal.project_id}; the request targets "
                f"project {target.project_id}"
            )
    required = rule.org_role if (target.project_id is None and rule.org_role) else rule.role
    if not role_at_least(principal.role, required):
        raise PermissionDenied(
            f"{name} requires role {required.value}; this API key has role {principal.role.value}"
        )
