"""A custom DSP block as a container, end to end: ``tinyforge blocks push`` builds the example
block's image from the local Debian base, pushes it to a real loopback OCI registry and
registers it with the platform; the local copies are dropped; feature generation through the
API then pulls and runs the image (podman, --network=none) and its matrix equals the block's
local-command run on the same windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.blocks.conftest import EXAMPLE_BLOCKS
from tests.blocks_service.test_custom_dsp import _direct, _impulse
from tests.dsp_service.conftest import SUCCEEDED, generate, make_synthetic
from tinyforge.cli.main import app
from tinyforge.features import load_features

pytestmark = [pytest.mark.slow, pytest.mark.podman]


def test_pushed_image_generates_features(platform, tenant, client, base_image, oci_registry,
                                         tmp_path: Path) -> None:
    from tinyforge.blocks.images import remove_image
    from tinyforge.workflows.podman import image_exists

    env = {"TINYFORGE_ADDRESS": platform.address, "TINYFORGE_API_KEY": tenant.admin_key,
           "TINYFORGE_DATA_DIR": str(tmp_path)}
    res = CliRunner().invoke(app, ["blocks", "push", str(EXAMPLE_BLOCKS / "zcr-bands"),
                                   "--registry", oci_registry.address, "--name", "zcr-img",
                                   "--tag", f"t{tenant.org_id}", "--register"], env=env)
    assert res.exit_code == 0, res.output
    remote = res.stdout.strip().splitlines()[-1]
    assert "registered custom:zcr-img@1" in res.output
    reg = client.get_block("zcr-img")
    assert reg.image == remote
    remove_image(f"localhost/tinyforge-blocks/zcr-and-band-energies:t{tenant.org_id}")
    remove_image(remote)
    assert not image_exists(remote)

    ds = make_synthetic(client, tenant.project_id, per_class=2, n=200)
    imp = client.create_impulse("containers", _impulse("custom:zcr-img"))
    job, result, lines = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error
    assert any("with podman" in ln for ln in lines) and any("pulling" in ln for ln in lines)
    fm = load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id, 1, "zcr")
    direct = _direct(ds, sorted(ds.samples), {"bands": 3, "log_energy": True}, tmp_path / "d")
    np.testing.assert_allclose(fm.X, direct, rtol=1e-5, atol=1e-5)
    _, again, _ = generate(client, imp.impulse_id)
    assert again["blocks"]["zcr"]["processed_samples"] == 0
