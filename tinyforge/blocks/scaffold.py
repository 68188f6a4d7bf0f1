"""``tinyforge blocks init``: a new block directory that already runs, for each block type.

The scaffold holds ``parameters.json`` (with ``info.localCommand`` so it runs without
containers), a ``Dockerfile`` ``FROM`` a configurable base (the ``BASE_IMAGE`` build argument,
default the locally bootstrapped Debian + Python image), an entrypoint ``main.py`` that
implements the type's contract in the simplest useful way, and a README.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from tinyforge.blocks.containers import BASE_IMAGE
from tinyforge.blocks.manifest import BLOCK_TYPES, parse_manifest
from tinyforge.errors import AlreadyExists, InvalidArgument

_TF_BASE = "localhost/tinyforge/block-base-tf:bookworm"

_PARAMS = {
    "transform": [
        {"param": "suffix", "name": "Output suffix", "type": "string", "value": ".out",
         "help": "Appended to every output file name."},
    ],
    "dsp": [
        {"param": "scale", "name": "Scale", "type": "float", "value": 1.0, "min": 0,
         "max": 1000, "help": "Multiplies every feature."},
    ],
    "learn": [
        {"param": "hidden-units", "name": "Hidden units", "type": "int", "value": 16, "min": 1,
         "max": 1024},
    ],
    "deploy": [
        {"param": "archive-name", "name": "Archive name", "type": "string", "value": "deployment",
         "help": "File name (without .zip) of the artifact."},
    ],
}  # fmt: skip

_MAIN = {
    "transform": '''\
"""Transformation block: copies every input file to the output, adding --suffix to its name.

Contract: --in-directory DIR | --in-file FILE, --out-directory DIR, then the parameters.
Replace transform() with your own processing.
"""

import argparse
import shutil
import sys
from pathlib import Path


def transform(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)


def main() -> int:
    ap = argparse.ArgumentParser()
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--in-directory", type=Path)
    src.add_argument("--in-file", type=Path)
    ap.add_argument("--out-directory", type=Path, required=True)
    ap.add_argument("--suffix", default=".out")
    a = ap.parse_args()
    if a.in_file:
        files = [a.in_file]
    else:
        files = sorted(p for p in a.in_directory.rglob("*") if p.is_file())
    for f in files:
        rel = Path(f.name) if a.in_file else f.relative_to(a.in_directory)
        dst = a.out_directory / rel.with_name(rel.name + a.suffix)
        dst.parent.mkdir(parents=True, exist_ok=True)
        transform(f, dst)
    print(f"transformed {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
''',
    "dsp": '''\
"""DSP block: per-window mean and standard deviation, times --params' scale.

Contract: --in X.npy --out features.npy --params JSON (every parameter, defaults filled in).
X is N windows x ...; features.npy must have one row per window. Replace compute().
"""

import argparse
import json
import sys

import numpy as np


def compute(x: np.ndarray, params: dict) -> np.ndarray:
    flat = x.reshape(x.shape[0], -1).astype(np.float64)
    feats = np.stack([flat.mean(axis=1), flat.std(axis=1)], axis=1)
    return (feats * float(params.get("scale", 1.0))).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="inp", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--params", default="{}")
    a = ap.parse_args()
    x = np.load(a.inp, allow_pickle=False)
    np.save(a.out, compute(x, json.loads(a.params)))
    print(f"features for {x.shape[0]} windows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
''',
    "learn": '''\
"""Learning block: a one-hidden-layer Keras classifier exported as model.tflite.

Contract: --data-directory DIR (X_split_train.npy, Y_split_train.npy[, *_test.npy]),
--out-directory DIR, --epochs N, --learning-rate LR, then the parameters.
The container needs TensorFlow: build FROM the TensorFlow base (see README.md).
"""

import argparse
import sys
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-directory", type=Path, required=True)
    ap.add_argument("--out-directory", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--learning-rate", type=float, default=0.001)
    ap.add_argument("--hidden-units", type=int, default=16)
    a = ap.parse_args()
    x = np.load(a.data_directory / "X_split_train.npy").astype(np.float32)
    y = np.load(a.data_directory / "Y_split_train.npy")
    x = x.reshape(len(x), -1)
    y = y.argmax(axis=1) if y.ndim == 2 else y.astype(np.int64)
    import tensorflow as tf

    model = tf.keras.Sequential([
        tf.keras.Input(shape=(x.shape[1],)),
        tf.keras.layers.Dense(a.hidden_units, activation="relu"),
        tf.keras.layers.Dense(int(y.max()) + 1, activation="softmax"),
    ])
    model.compile(tf.keras.optimizers.Adam(a.learning_rate), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=a.epochs, verbose=2)
    a.out_directory.mkdir(parents=True, exist_ok=True)
    tflite = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    (a.out_directory / "model.tflite").write_bytes(tflite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
''',
    "deploy": '''\
"""Deployment block: zips the whole input (metadata + model files) into one artifact.

Contract: --metadata IN/deployment-metadata.json, --in-directory IN, --out-directory OUT, then
the parameters. Must write exactly one file into OUT. Replace the layout with your own.
"""

import argparse
import json
import sys
import zipfile
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--metadata", type=Path, required=True)
    ap.add_argument("--in-directory", type=Path, required=True)
    ap.add_argument("--out-directory", type=Path, required=True)
    ap.add_argument("--archive-name", default="deployment")
    a = ap.parse_args()
    meta = json.loads(a.metadata.read_text())
    target = a.out_directory / f"{a.archive_name}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(a.in_directory.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(a.in_directory).as_posix())
    print(f"packaged project {meta.get('project', {}).get('name', '?')} into {target.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
''',
}

_DOCKERFILE = """\
# Built by `tinyforge blocks build` (podman build --pull=never --network=none). BASE_IMAGE is a
# locally made base: `tinyforge blocks setup` bootstraps it; --base picks another local image.
ARG BASE_IMAGE={base}
FROM ${{BASE_IMAGE}}
WORKDIR /app
COPY main.py /app/main.py
ENTRYPOINT ["python3", "/app/main.py"]
"""

_README = """\
# {name} ({btype} block)

Scaffolded by `tinyforge blocks init --type {btype}`. Edit `main.py` (the entrypoint) and the
parameters in `parameters.json`; the contract for {btype} blocks is in DESIGN.md §5.

```
tinyforge blocks run-local . --engine local --in INPUT --out OUTPUT     # no container
tinyforge blocks build .                                                # podman image
tinyforge blocks run-local . --engine podman --in INPUT --out OUTPUT2   # as the platform runs it
tinyforge blocks push . --registry 127.0.0.1:5000
```
{extra}"""

_LEARN_EXTRA = """
The container needs TensorFlow: `tinyforge blocks setup --tensorflow` makes the base
`{tf}` from this machine's TensorFlow (no registry is needed).
"""


def init_block(
    directory: Path, block_type: str, *, name: str | None = None, base_image: str | None = None
) -> Path:
    """Create a runnable block of ``block_type`` in the new or empty ``directory``.

    Raises InvalidArgument for an unknown type or name, AlreadyExists when ``directory`` holds
    files. Written to a temporary sibling first, then renamed (no half-made scaffolds).
    """
    if block_type not in BLOCK_TYPES:
        raise InvalidArgument(
            f"type {block_type!r} is not one of {', '.join(BLOCK_TYPES)}", field="type"
        )
    directory = Path(directory).resolve()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise AlreadyExists(f"{directory} already exists and is not empty", field="directory")
    name = name or directory.name.replace("_", " ").replace("-", " ").strip().capitalize()
    base = base_image or (_TF_BASE if block_type == "learn" else BASE_IMAGE)
    doc = {
        "version": 1,
        "type": block_type,
        "info": {
            "name": name,
            "description": f"A {block_type} block.",
            "localCommand": ["python3", "main.py"],
            "resources": {"memoryMb": 3072 if block_type == "learn" else 512, "cpus": 1},
        },
        "parameters": _PARAMS[block_type],
    }
    parse_manifest(doc)  # the scaffold must itself be valid (also checks the name)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9./:_-]*", base):
        raise InvalidArgument(f"base image {base!r} is not an image reference", field="base")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.init-", dir=directory.parent))
    try:
        (tmp / "parameters.json").write_text(json.dumps(doc, indent=2) + "\n")
        (tmp / "main.py").write_text(_MAIN[block_type])
        (tmp / "Dockerfile").write_text(_DOCKERFILE.format(base=base))
        extra = _LEARN_EXTRA.format(tf=_TF_BASE) if block_type == "learn" else ""
        (tmp / "README.md").write_text(_README.format(name=name, btype=block_type, extra=extra))
        tmp.chmod(0o755)
        if directory.exists():
            directory.rmdir()
        os.rename(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory
