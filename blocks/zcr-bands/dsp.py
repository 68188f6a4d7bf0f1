"""DSP block: zero-crossing rate + band energies per axis.

Batch contract (TinyForge dsp): --in X.npy --out features.npy --params JSON.
X is N windows, either N x T x axes or N x (T*axes) with interleaved axes (x0,y0,z0,x1,...;
then the ``axes`` parameter gives the channel count). features.npy is float32
N x axes*(1 + bands): for each axis, [zcr, band_1, ..., band_B].

- zcr: fraction of consecutive sample pairs whose signs differ after removing the window mean
  (a sine of f Hz sampled at fs Hz gives about 2f/fs).
- band energies: mean power |rfft|^2 / T^2 of the mean-removed, Hann-windowed signal in
  ``bands`` equal-width bands of bins 1..T//2 (DC excluded); log10(e + 1e-12) when
  ``log_energy`` is true.

``--window`` instead of ``--in``/``--out`` computes one window given as a JSON list and prints
the features as a JSON list (the per-window call used for live classification).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def features(x: np.ndarray, bands: int, log_energy: bool) -> np.ndarray:
    """x: N x T x C float -> N x C*(1+bands) float32."""
    n, t, c = x.shape
    if t < 2 * bands + 1:
        raise ValueError(f"windows of {t} samples are too short for {bands} bands")
    x = x - x.mean(axis=1, keepdims=True)
    signs = np.signbit(x)
    zcr = np.count_nonzero(signs[:, 1:, :] != signs[:, :-1, :], axis=1) / (t - 1)
    spec = np.abs(np.fft.rfft(x * np.hanning(t)[None, :, None], axis=1)) ** 2 / t**2
    spec = spec[:, 1 : t // 2 + 1, :]  # drop DC
    edges = np.linspace(0, spec.shape[1], bands + 1).round().astype(int)
    energy = [spec[:, a:b, :].mean(axis=1) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    energy = np.stack(energy, axis=1)
    if log_energy:
        energy = np.log10(energy + 1e-12)
    out = np.concatenate([zcr[:, None, :], energy], axis=1)  # N x (1+B) x C
    return out.transpose(0, 2, 1).reshape(n, -1).astype(np.float32)


def as_windows(x: np.ndarray, axes: int) -> np.ndarray:
    if x.ndim == 3:
        return x.astype(np.float64)
    if x.ndim != 2 or x.shape[1] % axes:
        raise ValueError(f"X has shape {x.shape}; expected N x T x C or N x (T*{axes})")
    return x.reshape(x.shape[0], -1, axes).astype(np.float64)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--in", dest="inp")
    ap.add_argument("--out")
    ap.add_argument("--window", help="one window as a JSON list (T or T x C)")
    ap.add_argument("--params", default="{}", help="JSON object of the block's parameters")
    args = ap.parse_args(argv)
    p = json.loads(args.params)
    axes = int(p.get("axes", 1))
    bands = int(p.get("bands", 4))
    log_energy = bool(p.get("log_energy", True))
    try:
        if args.window is not None:
            w = np.asarray(json.loads(args.window), dtype=np.float64)
            w = w.reshape(1, -1, axes) if w.ndim == 1 else w[None]
            print(json.dumps(features(w, bands, log_energy)[0].tolist()))
            return 0
        if not args.inp or not args.out:
            ap.error("--in and --out are required in batch mode")
        x = as_windows(np.load(args.inp, allow_pickle=False), axes)
        f = features(x, bands, log_energy)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    np.save(args.out, f)
    print(f"{x.shape[0]} windows x {x.shape[2]} axes -> features {f.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
