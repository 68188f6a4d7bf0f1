"""``wasm``: ``<name>.wasm`` (a WASI reactor module: the C SDK + compiled model with a few
exports), ``tinyforge_impulse.js`` (a wrapper for node and browsers), ``example.js`` and a
``package.json``.

Verification: node loads the shipped module through the shipped wrapper and classifies the
test windows (read from a float32 file); every prediction must equal the platform's.
"""

from __future__ import annotations

import json
import shutil

import numpy as np

from tinyforge.deploy import cross
from tinyforge.deploy.context import BuildContext
from tinyforge.deploy.sources import (
    impulse_summary,
    render,
    template,
    verified_values,
    write,
    write_sources,
)
from tinyforge.deploy.targets import require
from tinyforge.deploy.verification import compare_predictions, max_windows
from tinyforge.errors import FailedPrecondition

VERIFY_JS = """
'use strict';
const fs = require('node:fs');
const { load } = require(process.argv[2]);
(async () => {
  const impulse = await load(process.argv[3]);
  const raw = fs.readFileSync(process.argv[4]);
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  const n = impulse.windowLength, out = [];
  for (let k = 0; k * n < all.length; k++) {
    const r = impulse.classify(all.subarray(k * n, (k + 1) * n));
    out.push({ index: r.index, ms: r.ms });
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e.stack); process.exit(1); });
"""


def build(ctx: BuildContext) -> None:
    """Fill ``ctx.stage`` with the module, wrapper, example and README."""
    name = ctx.bundle.name
    cross.require_toolchain(ctx.target, run=True)
    src = write_sources(ctx, ctx.work / "src")
    glue = write(ctx.work / "src" / "tf_wasm.c", render(template("wasm/tf_wasm.c"), NAME=name))
    objs = cross.compile_objects(ctx, [glue, *src.c_files], src.include_dirs, ctx.work / "obj")
    wasm = ctx.stage / f"{name}.wasm"
    ctx.run([ctx.target.toolchain, "--target=wasm32-wasi", "-mexec-model=reactor",
             "-Wl,--gc-sections", *objs, "-lm", "-o", wasm])
    ctx.metrics["binary_bytes"] = wasm.stat().st_size
    summary = impulse_summary(ctx)
    write(ctx.stage / "tinyforge_impulse.js", render(template("wasm/tinyforge_impulse.js"),
                                                      **summary))
    write(ctx.stage / "example.js", render(template("wasm/example.js"), NAME=name))
    write(ctx.stage / "package.json", render(template("wasm/package.json"), NAME=name,
                                             PKG=name.lower().replace("_", "-")))
    shutil.copy(glue, ctx.stage / "tf_wasm.c")
    node = "not run"
    if ctx.bundle.test_windows is not None:
        node = _verify(ctx, wasm)
    write(ctx.stage / "README.md", render(template("wasm/README.md"), **summary,
                                          **verified_values(ctx), NODE=node))


def _verify(ctx: BuildContext, wasm) -> str:
    require("node")
    indices = list(range(max_windows(ctx)))
    data = np.ascontiguousarray(np.asarray(ctx.bundle.test_windows, dtype="<f4")[indices])
    f32 = ctx.work / "windows.f32"
    f32.write_bytes(data.tobytes())
    js = write(ctx.work / "verify.js", VERIFY_JS)
    out = ctx.run(["node", js, ctx.stage / "tinyforge_impulse.js", wasm, f32])
    try:
        rows = json.loads(out)
    except ValueError as e:
        raise FailedPrecondition(f"node printed no result ({e}): {out[-300:]}",
                                 field="verification") from None
    version = ctx.run(["node", "--version"]).strip()
    compare_predictions(ctx, indices, [int(r["index"]) for r in rows], f"node {version}")
    ctx.metrics["classify_ms"] = round(float(np.median([r["ms"] for r in rows])), 3)
    return version
