"""Deployment block: wrap a C library directory into one zip with a custom layout.

Contract (TinyForge deploy): --metadata IN/deployment-metadata.json, --in-directory IN,
--out-directory OUT, plus the parameters of parameters.json. The C library is the input's
``metadata["library"]["directory"]`` (default ``c-library``); every ``.tflite`` anywhere in the
input is a model file. Writes exactly one file, OUT/<prefix>.zip, laid out as::

    <prefix>/src/...            every .c/.cc/.cpp of the library (relative paths kept)
    <prefix>/include/...        every .h/.hpp of the library (relative paths kept)
    <prefix>/model/...          the .tflite model files
    <prefix>/CMakeLists.txt     a static library target over src/, every header folder included
    <prefix>/tinyforge.json     project, classes, deploy counter and sha256 of every file

The archive is reproducible: sorted entries, fixed timestamps and permissions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path

SOURCES = {".c", ".cc", ".cpp"}
HEADERS = {".h", ".hpp"}
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def plan(meta: dict, in_dir: Path) -> dict[str, Path]:
    """Archive-relative path (below the prefix) -> input file."""
    lib_dir = in_dir / str(meta.get("library", {}).get("directory", "c-library"))
    if not lib_dir.is_dir():
        raise ValueError(f"C library directory {lib_dir} does not exist")
    files: dict[str, Path] = {}
    for p in sorted(lib_dir.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(lib_dir)
        if p.suffix in SOURCES:
            files[f"src/{rel.as_posix()}"] = p
        elif p.suffix in HEADERS:
            # Headers keep their path below the library's include/ (if it has one).
            parts = rel.parts[1:] if rel.parts[0] == "include" and len(rel.parts) > 1 else rel.parts
            files["include/" + "/".join(parts)] = p
    if not any(k.startswith("src/") for k in files):
        raise ValueError(f"{lib_dir} holds no C/C++ source files")
    for p in sorted(in_dir.rglob("*.tflite")):
        files[f"model/{p.name}"] = p
    return files


def cmake_lists(name: str, files: dict[str, Path]) -> str:
    srcs = "\n".join(f"  {k}" for k in sorted(files) if k.startswith("src/"))
    # Every folder holding a header is an include dir: generated sources include nested headers
    # by their bare name ("model.h").
    dirs = sorted({k.rsplit("/", 1)[0] for k in files if k.startswith("include/")} | {"include"})
    incs = " ".join(dirs)
    return (
        "cmake_minimum_required(VERSION 3.13)\n"
        f"project({name} C CXX)\n"
        f"add_library({name} STATIC\n{srcs}\n)\n"
        f"target_include_directories({name} PUBLIC {incs})\n"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metadata", type=Path, required=True)
    ap.add_argument("--in-directory", type=Path, required=True)
    ap.add_argument("--out-directory", type=Path, required=True)
    ap.add_argument("--archive-prefix", default="")
    ap.add_argument("--library-name", default="edge_model")
    a = ap.parse_args(argv)
    meta = json.loads(a.metadata.read_text())
    project = str(meta.get("project", {}).get("name", "project"))
    counter = int(meta.get("deployCounter", 1))
    prefix = a.archive_prefix or f"{project}-v{counter}"
    prefix = re.sub(r"[^A-Za-z0-9._-]+", "-", prefix).strip("-") or "deployment"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", a.library_name):
        print(f"error: library-name {a.library_name!r} is not a C identifier", file=sys.stderr)
        return 1
    try:
        files = plan(meta, a.in_directory)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    blobs = {k: p.read_bytes() for k, p in files.items()}
    blobs["CMakeLists.txt"] = cmake_lists(a.library_name, files).encode()
    manifest = {
        "project": project,
        "deployCounter": counter,
        "classes": meta.get("classes", []),
        "library": a.library_name,
        "files": {k: hashlib.sha256(v).hexdigest() for k, v in sorted(blobs.items())},
    }
    blobs["tinyforge.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    a.out_directory.mkdir(parents=True, exist_ok=True)
    target = a.out_directory / f"{prefix}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for k in sorted(blobs):
            info = zipfile.ZipInfo(f"{prefix}/{k}", date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, blobs[k])
    print(f"wrote {target.name}: {len(blobs)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
