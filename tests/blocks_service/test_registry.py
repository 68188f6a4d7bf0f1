"""BlockService through the real gRPC API: register / get / list / versions / delete, org
scoping, and bad input (each error naming its field)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.blocks.conftest import EXAMPLE_BLOCKS
from tinyforge.blocks.registry_store import pack_block_source
from tinyforge.client import ApiError

ZCR = EXAMPLE_BLOCKS / "zcr-bands"


def _manifest(**info: object) -> dict:
    doc = json.loads((ZCR / "parameters.json").read_text())
    doc["info"].update(info)
    return doc


def test_register_get_versions_and_delete(platform, tenant) -> None:
    c = tenant.client()
    b1 = c.register_block_dir(ZCR, name="zcr")
    assert (b1.name, b1.type, b1.version, b1.reference) == ("zcr", "dsp", 1, "custom:zcr@1")
    assert b1.has_local_command and len(b1.source_sha256) == 64
    # the schema is served with types, defaults and ranges
    params = {p.param: p for p in b1.parameters}
    assert set(params) == {"axes", "bands", "log_energy"}
    assert (params["bands"].type, json.loads(params["bands"].default_json),
            params["bands"].minimum, params["bands"].maximum) == ("int", 4, 1, 64)
    assert params["bands"].range == "int 1..64"
    # the source archive is stored and equals the block directory's
    keys = [o.key for o in platform.ctx.objects.list(f"orgs/{tenant.org_id}/blocks/")]
    assert keys and keys[0].endswith("/v1/source.tar.gz")
    assert platform.ctx.objects.get_bytes(keys[0]) == pack_block_source(ZCR)

    # a second registration is version 2; an image-only version is version 3
    b2 = c.register_block_dir(ZCR, name="zcr")
    img = "127.0.0.1:5000/tinyforge-blocks/zcr-and-band-energies:v3"
    b3 = c.register_block(_manifest(), name="zcr", image=img,
                          image_digest="sha256:" + "ab" * 32)
    assert (b2.version, b3.version, b3.latest_version, b3.version_count) == (2, 3, 3, 3)
    assert (b3.image, b3.image_digest, b3.source_sha256) == (img, "sha256:" + "ab" * 32, "")
    assert c.get_block("zcr").version == 3
    assert c.get_block("zcr", 1).source_sha256 == b1.source_sha256  # old versions stay readable
    assert [v.version for v in c.list_block_versions("zcr")] == [1, 2, 3]
    # the default name is a slug of info.name; the listing holds latest versions by name
    c.register_block_dir(ZCR)
    listed = {b.name: b.version for b in c.list_registered_blocks()}
    assert listed == {"zcr": 3, "zcr-and-band-energies": 1}
    assert [b.name for b in c.list_registered_blocks("learn")] == []

    # delete one version, then the whole block (and its stored sources)
    assert c.delete_block("zcr", 2) == 1
    assert [v.version for v in c.list_block_versions("zcr")] == [1, 3]
    with pytest.raises(ApiError) as err:
        c.get_block("zcr", 2)
    assert (err.value.code, err.value.field) == ("NOT_FOUND", "version")
    assert c.delete_block("zcr") == 2
    with pytest.raises(ApiError) as err:
        c.get_block("zcr")
    assert (err.value.code, err.value.field) == ("NOT_FOUND", "name")
    left = [o.key for o in platform.ctx.objects.list(f"orgs/{tenant.org_id}/blocks/")]
    assert len(left) == 1  # only the zcr-and-band-energies source remains
    # a new registration after deleting everything starts a fresh history
    assert c.register_block_dir(ZCR, name="zcr").version == 1


def test_blocks_are_org_scoped(platform, tenant) -> None:
    other = platform.new_tenant()
    mine, theirs = tenant.client(), other.client()
    mine.register_block_dir(ZCR, name="shared-name")
    assert [b.name for b in theirs.list_registered_blocks()] == []
    with pytest.raises(ApiError) as err:
        theirs.get_block("shared-name")
    assert err.value.code == "NOT_FOUND"
    for call in (lambda: theirs.get_block("shared-name", org_id=tenant.org_id),
                 lambda: theirs.list_registered_blocks(org_id=tenant.org_id),
                 lambda: theirs.delete_block("shared-name", org_id=tenant.org_id),
                 lambda: theirs.register_block(_manifest(), name="x", image="a.b/c:1",
                                               org_id=tenant.org_id)):
        with pytest.raises(ApiError) as err:
            call()
        assert err.value.code == "PERMISSION_DENIED"
    # the same name in another org is another block
    assert theirs.register_block_dir(ZCR, name="shared-name").version == 1
    assert mine.get_block("shared-name").version == 1
    # a project-scoped key reads the org's blocks (its impulses use them) but cannot register
    pkey = tenant.client(tenant.key("member", project_id=tenant.project_id))
    assert [b.name for b in pkey.list_registered_blocks()] == ["shared-name"]
    with pytest.raises(ApiError) as err:
        pkey.register_block_dir(ZCR, name="nope")
    assert err.value.code == "PERMISSION_DENIED"
    guest = tenant.client(tenant.key("guest"))
    assert guest.get_block("shared-name").name == "shared-name"
    with pytest.raises(ApiError) as err:
        guest.delete_block("shared-name")
    assert err.value.code == "PERMISSION_DENIED"


@pytest.mark.parametrize("mutate, field, words", [
    (lambda d: d["parameters"][1].update(type="complex"), "parameters[1].type", "complex"),
    (lambda d: d["parameters"][0].update(value=500), "parameters[0].value", "1..64"),
    (lambda d: d.update(type="dsp-ish"), "type", "dsp-ish"),
    (lambda d: d["info"].pop("name"), "info.name", "info.name"),
    (lambda d: d["info"].update(localCommand="python3 dsp.py"), "info.localCommand", "list"),
    (lambda d: d["info"].update(resources={"memoryMb": 1}), "info.resources.memoryMb",
     "MiB"),
])
def test_invalid_parameters_json_names_the_field(tenant, mutate, field, words) -> None:
    doc = _manifest()
    mutate(doc)
    with pytest.raises(ApiError) as err:
        tenant.client().register_block(doc, name="bad", image="127.0.0.1:5000/x/y:1")
    assert (err.value.code, err.value.field) == ("INVALID_ARGUMENT", field)
    assert words in err.value.message
    with pytest.raises(ApiError) as err:
        tenant.client().register_block("{not json", name="bad", image="127.0.0.1:5000/x/y:1")
    assert (err.value.code, err.value.field) == ("INVALID_ARGUMENT", "parameters.json")
    assert tenant.client().list_registered_blocks() == []


@pytest.mark.parametrize("image", [
    "UPPER/case:1", "127.0.0.1:5000/x/y:bad tag", "x/y@sha256:short", "127.0.0.1:5000/",
    "-leading/dash", "x//y", "a/b:" + "t" * 200,
])
def test_malformed_image_reference(tenant, image) -> None:
    with pytest.raises(ApiError) as err:
        tenant.client().register_block(_manifest(), name="img", image=image)
    assert (err.value.code, err.value.field) == ("INVALID_ARGUMENT", "image")
    assert "image reference" in err.value.message


def test_other_bad_registrations(tenant, tmp_path: Path) -> None:
    c = tenant.client()
    cases = [
        (dict(name="Bad Name!", image="a.b/c:1"), "name"),
        (dict(name="x", image="a.b/c:1", image_digest="md5:abc"), "image_digest"),
        (dict(name="x", image="a.b/c@sha256:" + "a" * 64, image_digest="sha256:" + "b" * 64),
         "image_digest"),
        (dict(name="x"), "image"),  # nothing to run
        (dict(name="x", source_archive=b"not a tarball"), "source"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ApiError) as err:
            c.register_block(_manifest(), **kwargs)
        assert (err.value.code, err.value.field) == ("INVALID_ARGUMENT", field), kwargs
    # an archive escaping its directory is refused
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("parameters.json", "../evil.py"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(ApiError) as err:
        c.register_block(_manifest(), name="x", source_archive=buf.getvalue())
    assert (err.value.field, "evil" in err.value.message) == ("source", True)
    # a new version may not change the block's type
    c.register_block(_manifest(), name="typed", image="a.b/c:1")
    learn = _manifest()
    learn["type"] = "learn"
    with pytest.raises(ApiError) as err:
        c.register_block(learn, name="typed", image="a.b/c:2")
    assert (err.value.code, err.value.field) == ("INVALID_ARGUMENT", "type")
    assert [v.version for v in c.list_block_versions("typed")] == [1]
