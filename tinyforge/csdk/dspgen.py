"""C configuration of one DSP block: the constants and tables the C SDK blocks run from.

:func:`block_code` turns a processing block (name, validated parameters, sampling rate, window
shape) into C declarations — a ``static const`` configuration struct for
``tinyforge/csdk/dsp/tf_dsp.h`` plus the precomputed tables it points at (FFT twiddles, mel
filterbank, DCT matrix, Butterworth / decimation second-order sections, wavelet filters) —
and the expression that runs it. Every number is computed here with the same Python functions
the block itself uses (so both sides share one definition) and written as an exact float32
hexadecimal literal. Nothing is parsed on the device and nothing is allocated at run time: the
scratch size each block needs is returned so the caller can size one static buffer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyforge.dsp import filters
from tinyforge.dsp.audio import check_mel_range
from tinyforge.dsp.framing import frame_params
from tinyforge.dsp.mel import dct2_ortho_matrix, ei_filterbank
from tinyforge.dsp.registry import get_block
from tinyforge.dsp.spectral_analysis import LF_RATIO, fft_bin_range
from tinyforge.dsp.wavelet import wavelet_filters
from tinyforge.errors import InvalidArgument

#: the C sources of the DSP half of the SDK
DSP_DIR = Path(__file__).resolve().parent / "dsp"
#: blocks with a C twin (mlperf_kws has none yet)
C_BLOCKS = ("raw", "flatten", "spectral_analysis", "spectrogram", "mfe", "mfcc", "image")
_STATS_BITS = ("average", "minimum", "maximum", "rms", "stdev", "skewness", "kurtosis")


def dsp_sources() -> list[Path]:
    """The SDK's DSP ``.c`` files (all needed by any block; unused code is gc'd at link)."""
    return sorted(DSP_DIR.glob("*.c"))


def c_f32(v: float) -> str:
    """Exact C literal of ``v`` rounded to float32 (hexadecimal float, C99)."""
    f = float(np.float32(v))
    if not math.isfinite(f):
        raise InvalidArgument(f"value {v!r} is not finite", field="params")
    return "0.0f" if f == 0 else float.hex(f) + "f"


@dataclass
class BlockCode:
    """C for one block: ``call`` runs it as ``tf_dsp_...(&cfg, x, out, scratch)``."""

    name: str
    block: str
    call: str
    scratch_floats: int
    n_features: int
    output_shape: tuple[int, ...]


class CTables:
    """Collects C declarations; identical tables are emitted once."""

    def __init__(self, prefix: str = "tf_dsp") -> None:
        self.prefix = prefix
        self.decls: list[str] = []
        self._by_content: dict[tuple[str, tuple], str] = {}
        self.table_bytes = 0

    def array(self, ctype: str, stem: str, values: Any) -> str:
        """Declare ``static const ctype name[] = {...}``; return its name."""
        vals = np.asarray(values).ravel()
        if ctype == "float":
            items = tuple(c_f32(v) for v in vals)
        else:
            items = tuple(str(int(v)) for v in vals)
        key = (ctype, items)
        if key in self._by_content:
            return self._by_content[key]
        name = f"{self.prefix}_{stem}_{len(self._by_content)}"
        rows = [", ".join(items[i:i + 8]) for i in range(0, len(items), 8)]
        self.decls.append(f"static const {ctype} {name}[{max(1, len(items))}] = {{\n    "
                          + ",\n    ".join(rows or ["0"]) + "\n};\n")
        self._by_content[key] = name
        self.table_bytes += len(items) * (2 if ctype == "short" else 4)
        return name

    def struct(self, ctype: str, name: str, body: str) -> str:
        self.decls.append(f"static const {ctype} {name} = {body};\n")
        return name

    def source(self) -> str:
        return "".join(self.decls)


def _twiddles(t: CTables, n: int) -> str:
    k = np.arange(n // 2)
    tw = np.stack([np.cos(2 * np.pi * k / n), np.sin(2 * np.pi * k / n)], axis=-1)
    return "{" + f"{n}, " + t.array("float", f"twiddle{n}", tw) + "}"


def _sos(t: CTables, sos: np.ndarray, zi: np.ndarray | None) -> str:
    sos_name = t.array("float", "sos", np.asarray(sos, np.float32))
    zi_name = t.array("float", "zi", np.asarray(zi, np.float32)) if zi is not None else "0"
    return f"{{{len(sos)}, {sos_name}, {zi_name}}}"


def _decimators(t: CTables, name: str, ratios: tuple[int, ...]) -> str:
    """Declare an array of tf_decimator_t stages; return its name (or "0")."""
    if not ratios:
        return "0"
    items = []
    for r in ratios:
        sos, zi = filters._decimation_sos(r)  # the block's own coefficients
        items.append(f"{{{r}, {_sos(t, sos, zi)}}}")
    t.decls.append(f"static const tf_decimator_t {name}[{len(items)}] = {{"
                   + ", ".join(items) + "};\n")
    return name


def _filterbank(t: CTables, fb: np.ndarray) -> str:
    first, count, offset, weights = [], [], [], []
    for row in fb:
        nz = np.flatnonzero(row)
        lo, hi = int(nz[0]), int(nz[-1]) + 1
        first.append(lo)
        count.append(hi - lo)
        offset.append(len(weights))
        weights.extend(row[lo:hi].tolist())
    return (f"{{{len(fb)}, {t.array('short', 'fb_first', first)}, "
            f"{t.array('short', 'fb_count', count)}, {t.array('int', 'fb_offset', offset)}, "
            f"{t.array('float', 'fb_weights', weights)}}}")


def _frames(t: CTables, n_samples: int, fs: float, p: dict[str, Any]) -> tuple[str, int]:
    n, flen, stride = frame_params(n_samples, fs, p["frame_length"], p["frame_stride"])
    body = f"{{{n_samples}, {flen}, {stride}, {n}, {_twiddles(t, p['fft_length'])}}}"
    return body, n


def block_code(t: CTables, name: str, block: str, params: dict[str, Any] | None, fs: float,
               window_shape: tuple[int, ...]) -> BlockCode:
    """C configuration for ``block`` with ``params`` on windows of ``window_shape`` at ``fs``.

    ``name`` must be a C identifier (it names the configuration). Parameters are validated
    by the Python block (same errors as feature generation). Returns the call expression
    (using the variables ``x``, ``out`` and ``scratch``) and the scratch size in floats.
    """
    if not name.isidentifier():
        raise InvalidArgument(f"block name {name!r} is not a C identifier", field="name")
    if block not in C_BLOCKS:
        raise InvalidArgument(f"block {block!r} has no C implementation; blocks with one: "
                              f"{', '.join(C_BLOCKS)}", field="block")
    pyblock = get_block(block)
    p, spec = pyblock.check(params, fs, tuple(int(d) for d in window_shape))
    cfg = f"{t.prefix}_{name}"
    scratch = 0
    if block == "raw":
        ctype = "tf_raw_config_t"
        body = f"{{{window_shape[0]}, {window_shape[1]}, {c_f32(p['scale_axes'])}}}"
    elif block == "flatten":
        ctype = "tf_flatten_config_t"
        mask = sum(1 << i for i, s in enumerate(_STATS_BITS) if p[s])
        body = f"{{{window_shape[0]}, {window_shape[1]}, {c_f32(p['scale_axes'])}, {mask}u}}"
        scratch = window_shape[0]
    elif block == "image":
        ctype = "tf_image_config_t"
        h, w, c = window_shape
        body = f"{{{h}, {w}, {c}, {int(p['channels'] == 'Grayscale')}}}"
    elif block == "spectrogram":
        ctype = "tf_spectrogram_config_t"
        frames, _ = _frames(t, window_shape[0], fs, p)
        n = p["fft_length"]
        scratch = n + n // 2 + 1
        body = f"{{{frames}, {c_f32(p['noise_floor_db'])}, {scratch}}}"
    elif block in ("mfe", "mfcc"):
        low, high = check_mel_range(p, fs, "")
        fb = ei_filterbank(p["num_filters"], p["fft_length"], fs, low, high)
        frames, n_frames = _frames(t, window_shape[0], fs, p)
        n = p["fft_length"]
        scratch = n + n // 2 + 1 + p["num_filters"]
        if block == "mfe":
            ctype = "tf_mfe_config_t"
            body = (f"{{{frames}, {_filterbank(t, fb)}, {c_f32(p['noise_floor_db'])}, "
                    f"{scratch}}}")
        else:
            ctype = "tf_mfcc_config_t"
            scratch += 2 * n_frames
            dct = t.array("float", "dct", dct2_ortho_matrix(p["num_filters"], p["num_cepstral"]))
            body = (f"{{{frames}, {_filterbank(t, fb)}, {p['num_cepstral']}, {dct}, "
                    f"{c_f32(p['pre_cof'])}, {p['pre_shift']}, {p['win_size']}, {scratch}}}")
    else:  # spectral_analysis
        ctype = "tf_spectral_config_t"
        body, scratch = _spectral(t, cfg, p, fs, window_shape)
    t.struct(ctype, cfg, body)
    fn = "spectral_analysis" if block == "spectral_analysis" else block
    return BlockCode(name=name, block=block, call=f"tf_dsp_{fn}(&{cfg}, x, out, scratch)",
                     scratch_floats=scratch, n_features=spec.size, output_shape=spec.shape)


def _spectral(t: CTables, cfg: str, p: dict[str, Any], fs: float,
              window_shape: tuple[int, ...]) -> tuple[str, int]:
    n_samples, n_axes = window_shape
    ratio = int(p["input_decimation_ratio"])
    stages = filters._RATIO_STAGES[ratio]
    fs_eff = fs / ratio
    n_eff = filters.decimated_length(n_samples, ratio)
    dec = _decimators(t, cfg + "_decimation", stages)
    flt = "0"
    if p["filter_type"] != "none" and p["filter_order"] > 0:
        sos = filters.butterworth_sos(p["filter_type"], p["filter_order"], p["filter_cutoff"],
                                      fs_eff)
        t.decls.append(f"static const tf_sos_t {cfg}_filter = {_sos(t, sos, None)};\n")
        flt = f"&{cfg}_filter"
    head = f"{n_samples}, {n_axes}, {c_f32(p['scale_axes'])}, {len(stages)}, {dec}, {flt}, "
    n = p["fft_length"]
    if p["analysis_type"] == "Wavelet":
        lo, hi = wavelet_filters(p["wavelet"])
        taps = len(lo)
        scratch = n_samples + 4 * ((n_eff + taps) // 2 + 1) + 100
        body = (f"{{{head}1, {{0, 0}}, 0, 0, 0, 0, 0, 0, 0, {p['wavelet_level']}, {taps}, "
                f"{t.array('float', 'wavelet_lo', lo)}, {t.array('float', 'wavelet_hi', hi)}, "
                f"{scratch}}}")
        return body, scratch
    start, stop = fft_bin_range(p["filter_type"], p["filter_cutoff"], n, fs_eff)
    lf, lf_start, lf_stop = "0", 0, 0
    if p["extra_low_freq"]:
        lf = _decimators(t, cfg + "_low_freq", (LF_RATIO,))
        lf_start, lf_stop = fft_bin_range(p["filter_type"], p["filter_cutoff"], n,
                                          fs_eff / LF_RATIO)
    scratch = n_samples + n + 2 * (n // 2 + 1)
    body = (f"{{{head}0, {_twiddles(t, n)}, {int(p['do_log'])}, {int(p['do_fft_overlap'])}, "
            f"{start}, {stop}, {lf}, {lf_start}, {lf_stop}, 0, 0, 0, 0, {scratch}}}")
    return body, scratch
