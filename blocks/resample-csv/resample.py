"""Transformation block: resample CSV time series to a target rate (linear interpolation).

Contract (TinyForge transform): --in-directory DIR | --in-file FILE, --out-directory DIR, plus the
parameters of parameters.json. Every *.csv under the input is written to the same relative path
in the output; other files are skipped. A CSV may have a header row. Sample times come from the
header's time column (milliseconds) or, with --source-frequency, from the row index.
The output keeps the column order; the time column (when present) is rewritten in milliseconds.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv(path: Path) -> tuple[list[str] | None, np.ndarray]:
    """Header (or None) and the numeric rows as a float64 matrix (rows x columns)."""
    with path.open(newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if not rows:
        raise ValueError("empty file")
    header = None
    if not all(_is_number(c) for c in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    if len(rows) < 2:
        raise ValueError("needs at least 2 data rows")
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ValueError(f"row {i + 1} has {len(r)} columns, expected {width}")
    try:
        data = np.array([[float(c) for c in r] for r in rows], dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"non-numeric value: {exc}") from None
    return header, data


def resample(times: np.ndarray, values: np.ndarray, target_hz: float) -> tuple[np.ndarray, ...]:
    """Linear interpolation of each column of ``values`` (rows = samples) onto a uniform grid
    starting at times[0] with step 1/target_hz (times in seconds)."""
    if np.any(np.diff(times) <= 0):
        raise ValueError("sample times must be strictly increasing")
    n = int(np.floor((times[-1] - times[0]) * target_hz + 1e-9)) + 1
    new_t = times[0] + np.arange(n) / target_hz
    cols = [np.interp(new_t, times, values[:, j]) for j in range(values.shape[1])]
    return new_t, np.stack(cols, axis=1) if cols else np.empty((n, 0))


def convert(src: Path, dst: Path, args: argparse.Namespace) -> int:
    header, data = read_csv(src)
    tcol = header.index(args.time_column) if header and args.time_column in header else None
    if args.source_frequency > 0:
        times = np.arange(data.shape[0]) / args.source_frequency
    elif tcol is not None:
        times = data[:, tcol] / 1000.0
    else:
        raise ValueError(
            f"no {args.time_column!r} column and --source-frequency is 0: sample times unknown"
        )
    value_cols = [j for j in range(data.shape[1]) if j != tcol]
    new_t, new_v = resample(times, data[:, value_cols], args.target_frequency)
    out = np.empty((new_t.shape[0], data.shape[1]))
    out[:, value_cols] = new_v
    if tcol is not None:
        out[:, tcol] = new_t * 1000.0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("w", newline="") as fh:
        w = csv.writer(fh)
        if header:
            w.writerow(header)
        for row in out:
            w.writerow([repr(float(v)) for v in row])
    return out.shape[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--in-directory", type=Path)
    src.add_argument("--in-file", type=Path)
    ap.add_argument("--out-directory", type=Path, required=True)
    ap.add_argument("--target-frequency", type=float, default=50.0)
    ap.add_argument("--source-frequency", type=float, default=0.0)
    ap.add_argument("--time-column", default="timestamp")
    args = ap.parse_args(argv)
    if args.target_frequency <= 0:
        ap.error("--target-frequency must be > 0")
    if args.in_file:
        pairs = [(args.in_file, args.out_directory / args.in_file.name)]
    else:
        pairs = [
            (p, args.out_directory / p.relative_to(args.in_directory))
            for p in sorted(args.in_directory.rglob("*"))
            if p.is_file() and p.suffix.lower() == ".csv"
        ]
    if not pairs:
        print("no .csv files in the input", file=sys.stderr)
        return 2
    failed = 0
    for s, d in pairs:
        try:
            n = convert(s, d, args)
            print(f"{s.name}: {n} rows at {args.target_frequency:g} Hz")
        except ValueError as exc:
            print(f"{s}: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
