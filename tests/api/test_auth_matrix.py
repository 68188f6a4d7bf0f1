"""Authorization matrix: every method of every service × every kind of caller.

Expected statuses are written out by hand below (not derived from the policy table), and a
coverage test makes sure every method served has at least one case here.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool

from tinyforge.accounts import apikeys, members, projects
from tinyforge.auth import POLICY
from tinyforge.store.models import Job, JobStatus, Role
from tinyforge.v1 import (
    api_key_service_pb2 as ak,
)
from tinyforge.v1 import (
    api_key_service_pb2_grpc,
    block_service_pb2_grpc,
    builder_service_pb2_grpc,
    common_pb2,
    dsp_service_pb2_grpc,
    impulse_service_pb2_grpc,
    ingest_service_pb2_grpc,
    job_service_pb2_grpc,
    member_service_pb2_grpc,
    organization_service_pb2_grpc,
    pipeline_service_pb2_grpc,
    project_service_pb2_grpc,
    train_service_pb2_grpc,
)
from tinyforge.v1 import (
    block_service_pb2 as bk,
)
from tinyforge.v1 import (
    builder_service_pb2 as bu,
)
from tinyforge.v1 import (
    dsp_service_pb2 as db,
)
from tinyforge.v1 import (
    impulse_service_pb2 as ip,
)
from tinyforge.v1 import (
    ingest_service_pb2 as ib,
)
from tinyforge.v1 import (
    job_service_pb2 as jb,
)
from tinyforge.v1 import (
    member_service_pb2 as mb,
)
from tinyforge.v1 import (
    organization_service_pb2 as ob,
)
from tinyforge.v1 import pipeline_service_pb2 as pl
from tinyforge.v1 import (
    project_service_pb2 as pb,
)
from tinyforge.v1 import (
    train_service_pb2 as tb,
)

OK, PD, UA = "OK", "PERMISSION_DENIED", "UNAUTHENTICATED"
CALLERS = ["admin", "member", "guest", "project_key", "other_org", "revoked", "no_key"]
_n = itertools.count()


@dataclass
class World:
    """Org A (projects P1, P2) with keys of each role, and org B with its admin key."""

    platform: Any
    org_a: int
    p1: int
    p2: int
    org_b: int
    keys: dict[str, str | None]
    stubs: dict[str, Any]

    def fresh_project(self) -> int:
        with self.platform.ctx.db.session() as s:
            return projects.create_project(s, self.org_a, f"fresh-{next(_n)}").id

    def fresh_user(self) -> int:
        with self.platform.ctx.db.session() as s:
            return members.add_member(
                s, self.org_a, f"fresh-{next(_n)}-{uuid.uuid4().hex[:6]}@example.com", Role.GUEST
            ).user_id

    def fresh_key(self, project_id: int | None) -> int:
        with self.platform.ctx.db.session() as s:
            key, _ = apikeys.create_api_key(
                s, org_id=self.org_a, project_id=project_id, role=Role.GUEST
            )
            return key.id

    def sample(self, project_id: int) -> int:
        """A stored sample in ``project_id`` (uploaded through the domain, not the API)."""
        from tinyforge.data.samples import SampleStore, UploadOptions

        store = SampleStore(self.platform.ctx.db, self.platform.ctx.objects)
        data = (b'{"protected":{"ver":"v1","alg":"none"},"signature":"","payload":{'
                b'"device_type":"T","interval_ms":1,"sensors":[{"name":"x","units":"g"}],'
                b'"values":[[%d]]}}' % next(_n))
        return store.ingest_bytes(project_id, data, UploadOptions(filename="m.json")).id

    def job(self, project_id: int, status: JobStatus) -> int:
        with self.platform.ctx.db.session() as s:
            job = Job(project_id=project_id, kind="matrix", status=status)
            s.add(job)
            s.flush()
            return job.id


@pytest.fixture(scope="module")
def world(platform: Any) -> World:
    a = platform.new_tenant()
    b = platform.new_tenant()
    p2 = a.new_project()
    channel = grpc.insecure_channel(platform.address)
    stubs = {
        "OrganizationService": organization_service_pb2_grpc.OrganizationServiceStub(channel),
        "ProjectService": project_service_pb2_grpc.ProjectServiceStub(channel),
        "ApiKeyService": api_key_service_pb2_grpc.ApiKeyServiceStub(channel),
        "MemberService": member_service_pb2_grpc.MemberServiceStub(channel),
        "JobService": job_service_pb2_grpc.JobServiceStub(channel),
        "IngestService": ingest_service_pb2_grpc.IngestServiceStub(channel),
        "ImpulseService": impulse_service_pb2_grpc.ImpulseServiceStub(channel),
        "DspService": dsp_service_pb2_grpc.DspServiceStub(channel),
        "TrainService": train_service_pb2_grpc.TrainServiceStub(channel),
        "BlockService": block_service_pb2_grpc.BlockServiceStub(channel),
        "BuilderService": builder_service_pb2_grpc.BuilderServiceStub(channel),
        "PipelineService": pipeline_service_pb2_grpc.PipelineServiceStub(channel),
    }
    keys: dict[str, str | None] = {
        "admin": a.admin_key,
        "member": a.key("member"),
        "guest": a.key("guest"),
        # a member-role key scoped to P1 (its user is an org member)
        "project_key": a.key("member", project_id=a.project_id),
        "other_org": b.admin_key,
        "revoked": a.key("admin", revoked=True),
        "no_key": None,
    }
    return World(platform, a.org_id, a.project_id, p2, b.org_id, keys, stubs)


Builder = Callable[[World, int], Any]


@dataclass(frozen=True)
class Case:
    name: str
    method: str  # Service/Method
    build: Builder  # (world, target project id) -> request
    expected: tuple[str, str, str, str, str]  # admin, member, guest, project_key, other_org
    project_targeted: bool = False  # the request names a project (cross-project check applies)


FP, NF = "FAILED_PRECONDITION", "NOT_FOUND"
_IMPULSE = json.dumps({
    "input": {"type": "time-series", "window_size_ms": 1000, "window_stride_ms": 500,
              "frequency_hz": 50, "axes": ["x"]},
    "processing": [{"name": "spec", "block": "spectral_analysis"}]})


def _impulse(w: World, project_id: int) -> int:
    """A stored impulse in ``project_id`` (created through the domain, not the API)."""
    from tinyforge.impulse_store import create_impulse

    with w.platform.ctx.db.session() as s:
        return create_impulse(s, project_id, _name(), _IMPULSE).impulse_id


_BLOCK_MANIFEST = json.dumps({"version": 1, "type": "dsp", "info": {"name": "Matrix block"},
                              "parameters": []})


def _block(w: World) -> str:
    """A registered block in org A (through the domain, not the API); returns its name."""
    from tinyforge.blocks.registry_store import register_block

    name = _name()
    with w.platform.ctx.db.session() as s:
        register_block(s, w.platform.ctx.objects, w.org_a, manifest=_BLOCK_MANIFEST, name=name,
                       image="127.0.0.1:5000/matrix/block:1")
    return name


def _name() -> str:
    return f"n-{next(_n)}-{uuid.uuid4().hex[:6]}"


CASES = [
    Case("CreateOrganization", "OrganizationService/CreateOrganization",
         lambda w, p: ob.CreateOrganizationRequest(name=_name()), (OK, PD, PD, PD, OK)),
    Case("GetOrganization", "OrganizationService/GetOrganization",
         lambda w, p: ob.GetOrganizationRequest(org_id=w.org_a), (OK, OK, OK, OK, PD)),
    Case("ListOrganizations", "OrganizationService/ListOrganizations",
         lambda w, p: ob.ListOrganizationsRequest(), (OK, OK, OK, OK, OK)),
    Case("CreateProject", "ProjectService/CreateProject",
         lambda w, p: pb.CreateProjectRequest(org_id=w.org_a, name=_name()), (OK, OK, PD, PD, PD)),
    Case("GetProject", "ProjectService/GetProject",
         lambda w, p: pb.GetProjectRequest(project_id=p), (OK, OK, OK, OK, PD), True),
    Case("ListProjects", "ProjectService/ListProjects",
         lambda w, p: pb.ListProjectsRequest(org_id=w.org_a), (OK, OK, OK, OK, PD)),
    Case("UpdateProject", "ProjectService/UpdateProject",
         lambda w, p: pb.UpdateProjectRequest(project_id=p, description="updated"),
         (OK, OK, PD, OK, PD), True),
    Case("DeleteProject", "ProjectService/DeleteProject",
         lambda w, p: pb.DeleteProjectRequest(project_id=w.fresh_project()), (OK, PD, PD, PD, PD)),
    Case("GetProjectHmacKey", "ProjectService/GetProjectHmacKey",
         lambda w, p: pb.GetProjectHmacKeyRequest(project_id=p), (OK, PD, PD, PD, PD), True),
    Case("RotateProjectHmacKey", "ProjectService/RotateProjectHmacKey",
         lambda w, p: pb.RotateProjectHmacKeyRequest(project_id=p), (OK, PD, PD, PD, PD), True),
    Case("CreateApiKey[project]", "ApiKeyService/CreateApiKey",
         lambda w, p: ak.CreateApiKeyRequest(project_id=p, role=common_pb2.ROLE_GUEST),
         (OK, OK, PD, OK, PD), True),
    Case("CreateApiKey[org]", "ApiKeyService/CreateApiKey",
         lambda w, p: ak.CreateApiKeyRequest(org_id=w.org_a, role=common_pb2.ROLE_GUEST),
         (OK, PD, PD, PD, PD)),
    Case("ListApiKeys[project]", "ApiKeyService/ListApiKeys",
         lambda w, p: ak.ListApiKeysRequest(project_id=p), (OK, OK, PD, OK, PD), True),
    Case("ListApiKeys[org]", "ApiKeyService/ListApiKeys",
         lambda w, p: ak.ListApiKeysRequest(org_id=w.org_a), (OK, PD, PD, PD, PD)),
    Case("RevokeApiKey[project]", "ApiKeyService/RevokeApiKey",
         lambda w, p: ak.RevokeApiKeyRequest(api_key_id=w.fresh_key(p)),
         (OK, OK, PD, OK, PD), True),
    Case("RevokeApiKey[org]", "ApiKeyService/RevokeApiKey",
         lambda w, p: ak.RevokeApiKeyRequest(api_key_id=w.fresh_key(None)), (OK, PD, PD, PD, PD)),
    Case("AddMember", "MemberService/AddMember",
         lambda w, p: mb.AddMemberRequest(
             org_id=w.org_a, email=f"{_name()}@example.com", role=common_pb2.ROLE_GUEST),
         (OK, PD, PD, PD, PD)),
    Case("RemoveMember", "MemberService/RemoveMember",
         lambda w, p: mb.RemoveMemberRequest(org_id=w.org_a, user_id=w.fresh_user()),
         (OK, PD, PD, PD, PD)),
    Case("ListMembers", "MemberService/ListMembers",
         lambda w, p: mb.ListMembersRequest(org_id=w.org_a), (OK, OK, OK, PD, PD)),
    Case("GetJob", "JobService/GetJob",
         lambda w, p: jb.GetJobRequest(job_id=w.job(p, JobStatus.SUCCEEDED)),
         (OK, OK, OK, OK, PD), True),
    Case("ListJobs", "JobService/ListJobs",
         lambda w, p: jb.ListJobsRequest(project_id=p), (OK, OK, OK, OK, PD), True),
    Case("CancelJob", "JobService/CancelJob",
         lambda w, p: jb.CancelJobRequest(job_id=w.job(p, JobStatus.PENDING)),
         (OK, OK, PD, OK, PD), True),
    Case("WatchJob", "JobService/WatchJob",
         lambda w, p: jb.WatchJobRequest(job_id=w.job(p, JobStatus.SUCCEEDED)),
         (OK, OK, OK, OK, PD), True),
    Case("UploadSample", "IngestService/UploadSample",
         lambda w, p: ib.UploadSampleRequest(project_id=p, data=_acq(),
                                             options=ib.UploadOptions(filename="m.json")),
         (OK, OK, PD, OK, PD), True),
    Case("UploadStream", "IngestService/UploadStream",
         lambda w, p: iter([ib.UploadStreamRequest(header=ib.UploadStreamHeader(
             project_id=p, options=ib.UploadOptions(filename="m.json"))),
             ib.UploadStreamRequest(chunk=_acq())]),
         (OK, OK, PD, OK, PD), True),
    Case("ListSamples", "IngestService/ListSamples",
         lambda w, p: ib.ListSamplesRequest(project_id=p), (OK, OK, OK, OK, PD), True),
    Case("GetSample", "IngestService/GetSample",
         lambda w, p: ib.GetSampleRequest(project_id=p, sample_id=w.sample(p)),
         (OK, OK, OK, OK, PD), True),
    Case("DownloadSample", "IngestService/DownloadSample",
         lambda w, p: ib.DownloadSampleRequest(project_id=p, sample_id=w.sample(p)),
         (OK, OK, OK, OK, PD), True),
    Case("UpdateSample", "IngestService/UpdateSample",
         lambda w, p: ib.UpdateSampleRequest(project_id=p, sample_id=w.sample(p), label="l"),
         (OK, OK, PD, OK, PD), True),
    Case("MoveSamples", "IngestService/MoveSamples",
         lambda w, p: ib.MoveSamplesRequest(project_id=p, sample_ids=[w.sample(p)],
                                            category=ib.SAMPLE_CATEGORY_TESTING),
         (OK, OK, PD, OK, PD), True),
    Case("DeleteSamples", "IngestService/DeleteSamples",
         lambda w, p: ib.DeleteSamplesRequest(project_id=p, sample_ids=[w.sample(p)]),
         (OK, OK, PD, OK, PD), True),
    Case("RebalanceSplit", "IngestService/RebalanceSplit",
         lambda w, p: ib.RebalanceSplitRequest(project_id=p), (OK, OK, PD, OK, PD), True),
    Case("DatasetSummary", "IngestService/DatasetSummary",
         lambda w, p: ib.DatasetSummaryRequest(project_id=p), (OK, OK, OK, OK, PD), True),
    Case("ListDevices", "IngestService/ListDevices",
         lambda w, p: ib.ListDevicesRequest(project_id=p), (OK, OK, OK, OK, PD), True),
    Case("CreateImpulse", "ImpulseService/CreateImpulse",
         lambda w, p: ip.CreateImpulseRequest(project_id=p, name=_name(),
                                              definition_json=_IMPULSE),
         (OK, OK, PD, OK, PD), True),
    Case("GetImpulse", "ImpulseService/GetImpulse",
         lambda w, p: ip.GetImpulseRequest(project_id=p, impulse_id=_impulse(w, p)),
         (OK, OK, OK, OK, PD), True),
    Case("ListImpulses", "ImpulseService/ListImpulses",
         lambda w, p: ip.ListImpulsesRequest(project_id=p), (OK, OK, OK, OK, PD), True),
    Case("ListImpulseVersions", "ImpulseService/ListImpulseVersions",
         lambda w, p: ip.ListImpulseVersionsRequest(project_id=p, impulse_id=_impulse(w, p)),
         (OK, OK, OK, OK, PD), True),
    Case("UpdateImpulse", "ImpulseService/UpdateImpulse",
         lambda w, p: ip.UpdateImpulseRequest(project_id=p, impulse_id=_impulse(w, p),
                                              name=_name()),
         (OK, OK, PD, OK, PD), True),
    Case("DiffImpulseVersions", "ImpulseService/DiffImpulseVersions",
         lambda w, p: ip.DiffImpulseVersionsRequest(project_id=p, impulse_id=_impulse(w, p),
                                                    version_a=1),
         (OK, OK, OK, OK, PD), True),
    Case("ListBlocks", "DspService/ListBlocks",
         lambda w, p: db.ListBlocksRequest(), (OK, OK, OK, OK, OK)),
    Case("RunBlock", "DspService/RunBlock",
         lambda w, p: db.RunBlockRequest(project_id=p, block="raw", window=db.RawWindow(
             values=[1, 2, 3, 4], shape=[2, 2], frequency_hz=10)),
         (OK, OK, OK, OK, PD), True),
    Case("GenerateFeatures", "DspService/GenerateFeatures",
         lambda w, p: db.GenerateFeaturesRequest(project_id=p, impulse_id=_impulse(w, p)),
         (OK, OK, PD, OK, PD), True),
    Case("GetFeatures", "DspService/GetFeatures",
         lambda w, p: db.GetFeaturesRequest(project_id=p, impulse_id=_impulse(w, p)),
         (OK, OK, OK, OK, PD), True),
    # no features generated: an authorized caller gets past the check to FAILED_PRECONDITION
    Case("FeatureExplorer", "DspService/FeatureExplorer",
         lambda w, p: db.FeatureExplorerRequest(project_id=p, impulse_id=_impulse(w, p)),
         (FP, FP, FP, FP, PD), True),
    # an unknown block: an authorized caller gets past the check to NOT_FOUND
    Case("AutotuneBlock", "DspService/AutotuneBlock",
         lambda w, p: db.AutotuneBlockRequest(project_id=p, impulse_id=_impulse(w, p),
                                              block="absent"),
         (NF, NF, PD, NF, PD), True),
    # BlockService: org-level; project keys may read the org's blocks but not change them
    Case("RegisterBlock", "BlockService/RegisterBlock",
         lambda w, p: bk.RegisterBlockRequest(org_id=w.org_a, name=_name(),
                                              parameters_json=_BLOCK_MANIFEST,
                                              image="127.0.0.1:5000/matrix/block:1"),
         (OK, OK, PD, PD, PD)),
    Case("GetBlock", "BlockService/GetBlock",
         lambda w, p: bk.GetBlockRequest(org_id=w.org_a, name=_block(w)), (OK, OK, OK, OK, PD)),
    Case("ListRegisteredBlocks", "BlockService/ListRegisteredBlocks",
         lambda w, p: bk.ListRegisteredBlocksRequest(org_id=w.org_a), (OK, OK, OK, OK, PD)),
    Case("ListBlockVersions", "BlockService/ListBlockVersions",
         lambda w, p: bk.ListBlockVersionsRequest(org_id=w.org_a, name=_block(w)),
         (OK, OK, OK, OK, PD)),
    Case("DeleteBlock", "BlockService/DeleteBlock",
         lambda w, p: bk.DeleteBlockRequest(org_id=w.org_a, name=_block(w)),
         (OK, OK, PD, PD, PD)),
    # TrainService: an impulse without features / unknown model ids, so an authorized caller
    # gets past the check to FAILED_PRECONDITION / NOT_FOUND (no model is trained here)
    Case("StartTraining", "TrainService/StartTraining",
         lambda w, p: tb.StartTrainingRequest(project_id=p, impulse_id=_impulse(w, p)),
         (FP, FP, PD, FP, PD), True),
    Case("GetModel", "TrainService/GetModel",
         lambda w, p: tb.GetModelRequest(project_id=p, model_id=10**9), (NF, NF, NF, NF, PD),
         True),
    Case("ListModels", "TrainService/ListModels",
         lambda w, p: tb.ListModelsRequest(project_id=p), (OK, OK, OK, OK, PD), True),
    Case("TestModel", "TrainService/TestModel",
         lambda w, p: tb.TestModelRequest(project_id=p, model_id=10**9), (NF, NF, PD, NF, PD),
         True),
    Case("GetTestResult", "TrainService/GetTestResult",
         lambda w, p: tb.GetTestResultRequest(project_id=p, model_id=10**9),
         (NF, NF, NF, NF, PD), True),
    Case("DownloadModelFile", "TrainService/DownloadModelFile",
         lambda w, p: tb.DownloadModelFileRequest(project_id=p, model_id=10**9,
                                                  file="model_int8.tflite"),
         (NF, NF, NF, NF, PD), True),
    Case("Classify", "TrainService/Classify",
         lambda w, p: tb.ClassifyRequest(project_id=p, model_id=10**9, data=b"a,b\n1,2\n"),
         (NF, NF, NF, NF, PD), True),
    # BuilderService: the catalog is public; unknown model / build ids, so an authorized
    # caller gets past the check to NOT_FOUND (no model is trained here)
    Case("ListTargets", "BuilderService/ListTargets",
         lambda w, p: bu.ListTargetsRequest(), (OK, OK, OK, OK, OK)),
    Case("ListFormats", "BuilderService/ListFormats",
         lambda w, p: bu.ListFormatsRequest(), (OK, OK, OK, OK, OK)),
    Case("StartBuild", "BuilderService/StartBuild",
         lambda w, p: bu.StartBuildRequest(project_id=p, model_id=10**9, format="c-library",
                                           target="linux-x86_64"), (NF, NF, PD, NF, PD), True),
    Case("GetBuild", "BuilderService/GetBuild",
         lambda w, p: bu.GetBuildRequest(project_id=p, build_id=10**9), (NF, NF, NF, NF, PD),
         True),
    Case("ListBuilds", "BuilderService/ListBuilds",
         lambda w, p: bu.ListBuildsRequest(project_id=p), (OK, OK, OK, OK, PD), True),
    Case("DownloadArtifact", "BuilderService/DownloadArtifact",
         lambda w, p: bu.DownloadArtifactRequest(project_id=p, build_id=10**9),
         (NF, NF, NF, NF, PD), True),
    # PipelineService: the listing is public to any key; an unknown pipeline name, so an
    # authorized caller gets past the check to INVALID_ARGUMENT (no job is created)
    Case("ListPipelines", "PipelineService/ListPipelines",
         lambda w, p: pl.ListPipelinesRequest(), (OK, OK, OK, OK, OK)),
    Case("RunPipeline", "PipelineService/RunPipeline",
         lambda w, p: pl.RunPipelineRequest(project_id=p, name="tinyforge-none"),
         ("INVALID_ARGUMENT", "INVALID_ARGUMENT", PD, "INVALID_ARGUMENT", PD), True),
]  # fmt: skip


def _acq() -> bytes:
    """A tiny unsigned acquisition envelope, different each time (no duplicate content)."""
    return (b'{"protected":{"ver":"v1","alg":"none"},"signature":"","payload":{'
            b'"device_type":"T","interval_ms":1,"sensors":[{"name":"x","units":"g"}],'
            b'"values":[[%d]]}}' % next(_n))


def call(world: World, method: str, request: Any, key: str | None) -> tuple[str, Any]:
    """Invoke ``Service/Method`` with ``key``; returns (status name, response or None)."""
    service, name = method.split("/")
    fn = getattr(world.stubs[service], name)
    metadata = (("x-api-key", key),) if key is not None else ()
    try:
        response = fn(request, metadata=metadata, timeout=10)
        if name in ("WatchJob", "DownloadSample", "DownloadModelFile", "DownloadArtifact"):
            response = list(response)
        return "OK", response
    except grpc.RpcError as err:
        return err.code().name, None


def served_methods(platform: Any) -> set[str]:
    pool = descriptor_pool.Default()
    out = set()
    for service in platform.server.service_names:
        desc = pool.FindServiceByName(service)
        out.update(f"/{desc.full_name}/{m.name}" for m in desc.methods)
    return out


def test_every_served_method_has_a_case_and_a_rule(platform: Any) -> None:
    served = served_methods(platform)
    assert len(served) >= 20
    covered = {f"/tinyforge.v1.{c.method}" for c in CASES}
    assert served - covered == set(), "methods without an authorization test case"
    assert served - set(POLICY) == set(), "methods without a policy rule"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_matrix(world: World, case: Case) -> None:
    expected = dict(zip(CALLERS, [*case.expected, UA, UA], strict=True))
    got = {}
    for caller in CALLERS:
        request = case.build(world, world.p1)
        got[caller], response = call(world, case.method, request, world.keys[caller])
        if got[caller] != "OK":
            assert response is None
    assert got == expected


@pytest.mark.parametrize("case", [c for c in CASES if c.project_targeted], ids=lambda c: c.name)
def test_project_key_cannot_touch_another_project(world: World, case: Case) -> None:
    status, _ = call(world, case.method, case.build(world, world.p2), world.keys["project_key"])
    assert status == PD


@pytest.mark.parametrize("case", [c for c in CASES if c.project_targeted], ids=lambda c: c.name)
def test_other_org_cannot_touch_projects_of_org_a(world: World, case: Case) -> None:
    for project_id in (world.p1, world.p2):
        status, _ = call(world, case.method, case.build(world, project_id), world.keys["other_org"])
        assert status == PD


def test_listings_show_nothing_across_projects_or_orgs(world: World) -> None:
    listp = "ProjectService/ListProjects"
    _, resp = call(world, listp, pb.ListProjectsRequest(), world.keys["project_key"])
    assert [p.id for p in resp.projects] == [world.p1]
    _, resp = call(world, listp, pb.ListProjectsRequest(), world.keys["member"])
    ids = {p.id for p in resp.projects}
    assert {world.p1, world.p2} <= ids
    assert all(p.org_id == world.org_a for p in resp.projects)
    _, resp = call(world, listp, pb.ListProjectsRequest(), world.keys["other_org"])
    assert resp.projects and all(p.org_id == world.org_b for p in resp.projects)
    assert not ({p.id for p in resp.projects} & ids)

    for caller, org in (("member", world.org_a), ("project_key", world.org_a),
                        ("other_org", world.org_b)):  # fmt: skip
        _, resp = call(world, "OrganizationService/ListOrganizations",
                       ob.ListOrganizationsRequest(), world.keys[caller])  # fmt: skip
        assert [o.id for o in resp.organizations] == [org]

    request = ak.ListApiKeysRequest(project_id=world.p1)
    _, resp = call(world, "ApiKeyService/ListApiKeys", request, world.keys["project_key"])
    assert resp.api_keys and all(k.project_id == world.p1 for k in resp.api_keys)
    _, resp = call(world, "MemberService/ListMembers", mb.ListMembersRequest(),
                   world.keys["other_org"])  # fmt: skip
    assert resp.members and all(m.org_id == world.org_b for m in resp.members)


def test_unknown_ids_are_not_found_not_denied(world: World) -> None:
    for method, request in [
        ("ProjectService/GetProject", pb.GetProjectRequest(project_id=10**9)),
        ("JobService/GetJob", jb.GetJobRequest(job_id=10**9)),
        ("ApiKeyService/RevokeApiKey", ak.RevokeApiKeyRequest(api_key_id=10**9)),
        ("OrganizationService/GetOrganization", ob.GetOrganizationRequest(org_id=10**9)),
    ]:
        assert call(world, method, request, world.keys["admin"])[0] == "NOT_FOUND"
    # ... but an unauthenticated caller learns nothing, not even that
    assert call(world, "ProjectService/GetProject", pb.GetProjectRequest(project_id=10**9),
                None)[0] == UA  # fmt: skip
