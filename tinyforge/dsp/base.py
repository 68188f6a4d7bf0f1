"""The processing-block contract shared by every block in :mod:`tinyforge.dsp`.

A block turns one window ``signal`` (float32 ``[T, axes]``; for images ``[H, W, C]``) sampled at
``fs`` Hz into a feature array of a declared shape and kind:

- ``flat``: ``[F]`` (a vector),
- ``spectrogram``: ``[frames, bins]`` (time on the first axis, as Edge Impulse's width x height),
- ``image``: ``[H, W, C]``.

Every block offers a per-window form :meth:`ProcessingBlock.features` and a batch form
:meth:`ProcessingBlock.features_batch` over ``[N, T, axes]`` that is vectorised over windows.
The per-window form is the batch form applied to one window, so both give identical numbers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from tinyforge.dsp.params import ParamSpec, validate_params
from tinyforge.errors import InvalidArgument

OUTPUT_KINDS = ("flat", "spectrogram", "image")
#: input samples processed per vectorised chunk in features_batch
CHUNK_SAMPLES = 1 << 17


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController | None:
    try:
        return ThreadpoolController()
    except Exception:  # introspection unsupported on this platform: run unlimited
        return None


# OpenBLAS's thread count is process-wide: only one thread at a time sets and restores it
_blas_limit_owner = threading.Lock()


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Context limiting the BLAS library (numpy's OpenBLAS) to one thread while it is active.

    The blocks' matrix products are small (one chunk of frames times a filterbank or a DCT):
    BLAS threads cost far more to wake and synchronise than they save, and on a loaded machine
    (or inside a process pool, where parallelism is across processes) they made the MFCC/MFE
    batch path about 7x slower. The thread count is process-wide, and overlapping limits from
    several threads can restore it wrongly, so only one thread at a time sets it (and restores
    the original count on leaving); a thread arriving meanwhile runs without touching it (maybe
    with more BLAS threads: slower, never different numbers).
    """
    ctl = _blas_controller()
    if ctl is None or not _blas_limit_owner.acquire(blocking=False):
        yield
        return
    try:
        with ctl.limit(limits=1, user_api="blas"):
            yield
    finally:
        _blas_limit_owner.release()


@dataclass(frozen=True)
class OutputSpec:
    """Shape (per window) and kind of a block's features."""

    kind: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "shape": list(self.shape)}


class ProcessingBlock:
    """Base class; subclasses set the class attributes and implement ``_check``/``_run``."""

    name: str = ""
    title: str = ""
    description: str = ""
    implementation_version: int = 1
    output_kind: str = "flat"
    params: tuple[ParamSpec, ...] = ()
    #: blocks that only accept one axis (audio blocks, as in Edge Impulse)
    single_axis: bool = False
    #: True for blocks whose input is an image window [H, W, C]
    image_input: bool = False

    # -- parameters -------------------------------------------------------------------------
    def validate(self, params: dict[str, Any] | None, field_prefix: str = "") -> dict[str, Any]:
        """Type/range-check ``params`` alone (no signal needed); return the complete dict."""
        return validate_params(self.params, params, field_prefix)

    def check(
        self,
        params: dict[str, Any] | None,
        fs: float,
        window_shape: tuple[int, ...],
        field_prefix: str = "",
    ) -> tuple[dict[str, Any], OutputSpec]:
        """Validate params against a window shape and sampling rate; return params + output spec.

        ``window_shape`` is ``(T, axes)`` for time series and ``(H, W, C)`` for images. Raises
        InvalidArgument for every problem that depends on the signal (frame count, filter
        cut-off above Nyquist, number of axes, channel count...).
        """
        p = self.validate(params, field_prefix)
        if self.image_input:
            if len(window_shape) != 3:
                raise InvalidArgument(
                    f"block {self.name!r} needs an image window [H, W, C], got shape "
                    f"{tuple(window_shape)}",
                    field="signal",
                )
        else:
            if len(window_shape) != 2 or window_shape[0] < 1 or window_shape[1] < 1:
                raise InvalidArgument(
                    f"block {self.name!r} needs a window [T, axes] with T >= 1 and axes >= 1, "
                    f"got shape {tuple(window_shape)}",
                    field="signal",
                )
            if not (np.isfinite(fs) and fs > 0):
                raise InvalidArgument(
                    f"sampling frequency must be > 0 Hz, got {fs!r}", field="frequency_hz"
                )
            if self.single_axis and window_shape[1] != 1:
                raise InvalidArgument(
                    f"block {self.name!r} supports a single axis, got {window_shape[1]}; "
                    "create one block per axis",
                    field=field_prefix + "axes" if field_prefix else "axes",
                )
        shape = self._check(p, float(fs), tuple(int(d) for d in window_shape), field_prefix)
        return p, OutputSpec(self.output_kind, tuple(int(d) for d in shape))

    def _check(
        self, p: dict[str, Any], fs: float, window_shape: tuple[int, ...], field_prefix: str
    ) -> tuple[int, ...]:
        """Block-specific checks; return the per-window output shape."""
        raise NotImplementedError

    def output_spec(
        self, params: dict[str, Any] | None, fs: float, window_shape: tuple[int, ...]
    ) -> OutputSpec:
        """Shape and kind of the features one window of ``window_shape`` produces."""
        return self.check(params, fs, window_shape)[1]

    # -- feature extraction -------------------------------------------------------------------
    def features(
        self, signal: np.ndarray, fs: float, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Features of one window (float32, shape per :meth:`output_spec`)."""
        signal = np.asarray(signal)
        return self.features_batch(signal[None], fs, params)[0]

    def features_batch(
        self, signals: np.ndarray, fs: float, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Features of N windows ``[N, *window_shape]`` → float32 ``[N, *output shape]``."""
        signals = np.asarray(signals)
        if signals.ndim < 2:
            raise InvalidArgument(
                f"batch must be [N, T, axes] (or [N, H, W, C]), got shape {signals.shape}",
                field="signal",
            )
        if not np.issubdtype(signals.dtype, np.number):
            raise InvalidArgument("signal must be numeric", field="signal")
        p, spec = self.check(params, fs, signals.shape[1:])
        x = signals.astype(np.float32, copy=False)
        n = signals.shape[0]
        out = np.empty((n,) + spec.shape, dtype=np.float32)
        # small chunks keep the intermediates (frames, spectra) in cache: several times faster
        per_window = max(1, int(np.prod(signals.shape[1:])))
        chunk = max(1, CHUNK_SAMPLES // per_window)
        with single_threaded_blas():
            for i in range(0, n, chunk):
                xc = x[i : i + chunk]
                # min/max propagate NaN and reach +-inf: no boolean array, chunk still in cache
                if xc.size and not (np.isfinite(xc.min()) and np.isfinite(xc.max())):
                    raise InvalidArgument("signal contains NaN or infinite values", field="signal")
                part = self._run(xc, float(fs), p)
                out[i : i + chunk] = np.asarray(part, dtype=np.float32).reshape((-1,) + spec.shape)
        return out

    def _run(self, x: np.ndarray, fs: float, p: dict[str, Any]) -> np.ndarray:
        """Vectorised kernel over ``x`` float32 ``[N, *window_shape]`` (params validated)."""
        raise NotImplementedError

    # -- schema -------------------------------------------------------------------------------
    def schema(self) -> dict[str, Any]:
        """``parameters.json``-style description of the block (for the API and UI)."""
        return {
            "version": 1,
            "type": "dsp",
            "info": {
                "name": self.name,
                "title": self.title,
                "description": self.description,
                "implementationVersion": self.implementation_version,
                "outputType": self.output_kind,
                "singleAxis": self.single_axis,
                "input": "image" if self.image_input else "time-series",
            },
            "parameters": [s.to_json() for s in self.params],
        }


def select_axes(
    signal: np.ndarray, sample_axes: list[str], wanted: list[str], field: str = "axes"
) -> np.ndarray:
    """Columns of ``signal`` ``[..., T, len(sample_axes)]`` for the axis names in ``wanted``.

    Raises InvalidArgument naming the missing axis and the axes the sample has.
    """
    idx = []
    for name in wanted:
        if name not in sample_axes:
            raise InvalidArgument(
                f"axis {name!r} is not in the sample; it has {', '.join(sample_axes)}", field=field
            )
        idx.append(sample_axes.index(name))
    return np.asarray(signal)[..., idx]
