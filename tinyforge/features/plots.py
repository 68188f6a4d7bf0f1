"""RunBlock: one window through one processing block, with the data for its plots.

:func:`run_block` returns the features (as the batch job computes them) and a list of
:class:`Plot`:

- every time-series block: ``signal`` (line per axis, x = time in ms);
- ``spectral_analysis`` (FFT variant): ``fft`` (line per axis: the Welch max-hold power per
  FFT bin, log10 when ``do_log``, x = bin frequency in Hz, after scaling, decimation,
  filtering and mean removal exactly as the block does) and, with a filter,
  ``filter_response`` (gain in dB of the float32 SOS via ``scipy.signal.sosfreqz``);
- ``spectrogram``, ``mfe``, ``mfcc``, ``mfcc_mlperf_kws``: ``features`` as a PNG image
  (time left to right, bins bottom to top) and its matrix;
- ``image``: the processed image as a PNG.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinyforge.dsp.base import OutputSpec, ProcessingBlock
from tinyforge.dsp.filters import butterworth_sos, decimate
from tinyforge.dsp.registry import get_block
from tinyforge.dsp.spectrum import rfft_frequencies, welch_max_hold
from tinyforge.errors import InvalidArgument

MAX_WINDOW_VALUES = 4_000_000  # one RunBlock window, values (T x axes or H x W x C)


@dataclass
class Plot:
    """Data for one plot. ``type``: ``line`` (``x`` + named ``series``) or ``image`` (``png``,
    with the plotted ``matrix`` ``[rows, cols]`` when it is one)."""

    name: str
    type: str
    title: str = ""
    x_label: str = ""
    y_label: str = ""
    x: list[float] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)
    png: bytes = b""
    matrix: np.ndarray | None = None


@dataclass
class BlockRun:
    """Result of :func:`run_block`."""

    block: str
    params: dict[str, Any]
    output: OutputSpec
    features: np.ndarray
    plots: list[Plot]


def _png_matrix(m: np.ndarray, title: str, xlabel: str, ylabel: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(m.T, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _png_image(img: np.ndarray) -> bytes:
    from PIL import Image

    arr = np.clip(np.asarray(img) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = arr[..., 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _spectral_plots(x: np.ndarray, fs: float, p: dict[str, Any], axes: list[str]) -> list[Plot]:
    """FFT bins and filter response of the spectral-analysis block (its own pre-processing)."""
    plots = []
    fx = np.ascontiguousarray(x.T[None]) * np.float32(p["scale_axes"])  # [1, A, T]
    ratio = int(p["input_decimation_ratio"])
    if ratio > 1:
        fx = decimate(fx, ratio)
        fs = fs / ratio
    sos = None
    if p["filter_type"] != "none" and p["filter_order"] > 0:
        import scipy.signal

        sos = butterworth_sos(p["filter_type"], p["filter_order"], p["filter_cutoff"], fs)
        fx = scipy.signal.sosfilt(sos, fx, axis=-1).astype(np.float32)
    fx = fx - fx.mean(axis=-1, keepdims=True)
    if p["analysis_type"] == "FFT":
        spec = welch_max_hold(fx, p["fft_length"], p["do_fft_overlap"])[0]
        if p["do_log"]:
            spec = np.log10(np.where(spec == 0, np.float32(1e-10), spec))
        freqs = rfft_frequencies(p["fft_length"], fs)
        plots.append(Plot("fft", "line", "Spectral power (max-hold)", "frequency (Hz)",
                          "log10 power" if p["do_log"] else "power", freqs.tolist(),
                          {a: spec[i].tolist() for i, a in enumerate(axes)}))
    else:
        t = (np.arange(fx.shape[-1]) * 1000.0 / fs).tolist()
        plots.append(Plot("filtered", "line", "Filtered signal", "time (ms)", "value", t,
                          {a: fx[0, i].tolist() for i, a in enumerate(axes)}))
    if sos is not None:
        import scipy.signal

        w, h = scipy.signal.sosfreqz(sos.astype(np.float64), worN=256, fs=fs)
        gain = 20 * np.log10(np.maximum(np.abs(h), 1e-12))
        plots.append(Plot("filter_response", "line",
                          f"{p['filter_type']}-pass Butterworth, order {p['filter_order']}, "
                          f"{p['filter_cutoff']:g} Hz", "frequency (Hz)", "gain (dB)",
                          w.tolist(), {"gain_db": gain.tolist()}))
    return plots


def run_block(block_name: str | ProcessingBlock, params: dict[str, Any] | None,
              window: np.ndarray, fs: float,
              axes: list[str] | None = None, *, plots: bool = True,
              field_prefix: str = "params.") -> BlockRun:
    """Features of one window and its plot data.

    ``window``: time series ``[T, axes]`` (``axes`` names its columns) at ``fs`` Hz, or an
    image ``[H, W, C]`` with 0..255 values. Raises InvalidArgument naming the bad parameter,
    a window too short for the frames, a filter cut-off above Nyquist, a wrong channel count.
    ``block_name`` may also be a block object (a registered custom block from a resolver).
    """
    block: ProcessingBlock = (block_name if isinstance(block_name, ProcessingBlock)
                              else get_block(block_name))
    x = np.asarray(window, dtype=np.float32)
    if x.size > MAX_WINDOW_VALUES:
        raise InvalidArgument(f"window has {x.size} values, the limit is {MAX_WINDOW_VALUES}",
                              field="window")
    if block.image_input:
        fs = 0.0
    p, spec = block.check(params, fs, x.shape, field_prefix=field_prefix)
    feats = block.features(x, fs, p)
    if getattr(block, "dynamic_output", False):  # a custom block's shape is known only now
        spec = OutputSpec(spec.kind, tuple(int(d) for d in feats.shape))
    out: list[Plot] = []
    if plots:
        if not block.image_input:
            names = list(axes or [f"axis{i}" for i in range(x.shape[1])])
            t = (np.arange(x.shape[0]) * 1000.0 / fs).tolist()
            out.append(Plot("signal", "line", "Window", "time (ms)", "value", t,
                            {a: x[:, i].tolist() for i, a in enumerate(names)}))
            if block.name == "spectral_analysis":
                out.extend(_spectral_plots(x, fs, p, names))
        if spec.kind == "spectrogram":
            out.append(Plot("features", "image", f"{block.title}", "frame", "coefficient",
                            png=_png_matrix(feats, block.title, "frame", "bin / coefficient"),
                            matrix=feats))
        elif spec.kind == "image":
            out.append(Plot("features", "image", "Processed image", png=_png_image(feats)))
    return BlockRun(block.name, p, spec, feats, out)
