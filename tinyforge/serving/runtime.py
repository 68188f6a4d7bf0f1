"""The whole impulse in-process: windows -> DSP blocks -> int8/float model -> label scores.

Inputs are either raw windows (float ``[T, axes]`` per window for time series, ``[H, W, C]``
for images, or the same values flat) or sample files (WAV, CSV, Edge Impulse JSON/CBOR,
JPEG/PNG) that are parsed by :func:`tinyforge.data.formats.parse_upload`, resampled and cut
into windows exactly as during feature generation (:func:`tinyforge.data.windowing.
window_sample`, :func:`~tinyforge.data.windowing.prepare_image`).

Features follow the deployed C SDK's convention (:mod:`tinyforge.csdk.generate`): each
processing block runs on its own axes and the flattened outputs are concatenated in the
first learning block's input order (all processing blocks in impulse order when there is no
learning block). The model is run by :class:`tinyforge.quantize.runner.TFLiteModel` (built-in
LiteRT kernels; int8 input quantised with the model's scale/zero point, output dequantised).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from tinyforge.data.formats import parse_upload
from tinyforge.data.windowing import prepare_image, window_sample
from tinyforge.dsp.registry import get_block
from tinyforge.errors import InvalidArgument, NotFound
from tinyforge.impulse import ImageInput, Impulse
from tinyforge.quantize.runner import TFLiteModel
from tinyforge.serving.model_dir import MODEL_TYPES, ModelFiles

#: largest request the runtime takes, in windows (a guard against accidental huge uploads)
MAX_WINDOWS = 4096


@dataclass
class Classification:
    """Result of one batch of windows.

    ``scores``: float32 ``[W, labels]``; ``anomaly``: float32 ``[W]`` or None;
    ``source``: int ``[W]`` index of the request item each window came from;
    ``start_ms``: float ``[W]`` window start within its sample (0 for raw windows);
    ``dsp_us`` / ``inference_us``: wall time of the DSP blocks and of the model (µs).
    """

    labels: tuple[str, ...]
    scores: np.ndarray
    anomaly: np.ndarray | None
    source: np.ndarray
    start_ms: np.ndarray
    dsp_us: int
    inference_us: int
    model_type: str
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def top_labels(self) -> list[str]:
        return [self.labels[i] for i in np.argmax(self.scores, axis=1)]


class ImpulseRuntime:
    """A loaded impulse ready to classify. Thread-safe (one model invocation at a time)."""

    def __init__(self, files: ModelFiles) -> None:
        self.files = files
        self.impulse: Impulse = files.impulse
        self.labels = files.labels
        inp = self.impulse.input
        self.is_image = isinstance(inp, ImageInput)
        self.window_shape: tuple[int, ...] = tuple(int(d) for d in inp.window_shape())
        self.window_size = math.prod(self.window_shape)
        self.fs = 0.0 if self.is_image else float(inp.frequency_hz)
        order = [b.name for b in self.impulse.processing]
        if self.impulse.learning:
            order = list(self.impulse.learning[0].inputs)
        self._order = order
        self._blocks = {}
        for b in self.impulse.processing:
            axes = self.impulse.block_axes(b)
            idx = None if self.is_image else [inp.axes.index(a) for a in axes]
            block = get_block(b.block)
            params, spec = block.check(b.params, self.fs, inp.window_shape(axes))
            self._blocks[b.name] = (block, params, idx, spec.size)
        self.feature_count = sum(self._blocks[n][3] for n in order)
        self.models: dict[str, TFLiteModel] = {}
        for mt in MODEL_TYPES:
            data = files.model_int8 if mt == "int8" else files.model_float32
            if data is None:
                continue
            m = TFLiteModel(data)
            if m.input_size != self.feature_count:
                raise InvalidArgument(
                    f"the {mt} model takes {m.input_size} features (input shape "
                    f"{list(m.input_shape)}) but the impulse's blocks give {self.feature_count}",
                    field="model")
            # one run on zeros: proves the model executes and gives its output count
            n_out = m.predict(np.zeros((1, self.feature_count), np.float32)).shape[1]
            if n_out != len(self.labels):
                raise InvalidArgument(f"the {mt} model has {n_out} outputs for "
                                      f"{len(self.labels)} labels", field="labels")
            self.models[mt] = m
        self.default_model_type = "int8" if "int8" in self.models else "float32"
        if files.anomaly is not None:
            missing = [n for n in files.anomaly.inputs if n not in self._blocks]
            if missing:
                raise InvalidArgument(f"anomaly scorer reads block {missing[0]!r}, not in the "
                                      "impulse", field="anomaly.json")
        self._lock = threading.Lock()

    # -- shapes -----------------------------------------------------------------------------
    def expected_shape_text(self) -> str:
        """Human description of the accepted raw window shapes (for error messages)."""
        dims = ", ".join(str(d) for d in self.window_shape)
        what = "[H, W, C]" if self.is_image else "[T, axes]"
        return (f"a window {what} = [{dims}] (or {self.window_size} values flat)"
                + ("" if self.is_image else f", axes {', '.join(self.impulse.input.axes)}"))

    def windows_from_array(self, x: np.ndarray, *, batched: bool | None = None) -> np.ndarray:
        """Raw values -> windows ``[N, *window_shape]`` float32.

        ``batched=False``: ``x`` is one window (``window_shape`` or flat); ``True``: a batch
        ``[N, *window_shape]`` or ``[N, window_size]``; ``None``: decided by the shape.
        InvalidArgument naming the expected shape otherwise.
        """
        try:
            x = np.asarray(x, dtype=np.float32)
        except (ValueError, TypeError) as e:
            raise InvalidArgument(f"input is not a numeric array ({e}); expected "
                                  f"{self.expected_shape_text()}", field="instances") from None
        ws, n = self.window_shape, self.window_size
        shape = tuple(x.shape)
        one = shape in (ws, (n,))
        many = len(shape) >= 2 and shape[0] >= 1 and shape[1:] in (ws, (n,))
        if batched is False and one:
            out = x.reshape((1, *ws))
        elif batched is True and many:
            out = x.reshape((shape[0], *ws))
        elif batched is None and (one or many):
            out = x.reshape((1, *ws)) if one else x.reshape((shape[0], *ws))
        else:
            raise InvalidArgument(f"input has shape {list(shape)}; expected "
                                  f"{self.expected_shape_text()}"
                                  + (" per instance" if batched is False else
                                     ", or a batch [N, ...] of them"), field="shape")
        if not np.all(np.isfinite(out)):
            raise InvalidArgument("input contains NaN or infinite values", field="instances")
        return out

    def windows_from_file(self, data: bytes, *, content_type: str | None = None,
                          filename: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A sample file -> ``(windows [N, *window_shape], start_ms [N])``.

        CSV files without a timestamp column are taken as sampled at the impulse's frequency.
        The impulse's axes are picked from the file by name, or by position when the file has
        exactly as many axes under other names (e.g. a header-less CSV).
        """
        inp = self.impulse.input
        parsed = parse_upload(bytes(data), filename, content_type, allow_unsigned=True,
                              frequency_hz=None if self.is_image else float(inp.frequency_hz))
        if self.is_image:
            if parsed.image is None:
                raise InvalidArgument("the impulse takes images; the file is a "
                                      f"{parsed.kind} sample", field="data")
            from tinyforge.data.images import image_pixels

            return prepare_image(image_pixels(data, "RGB"), inp)[None], np.zeros(1)
        if parsed.series is None:
            raise InvalidArgument(f"the impulse takes time series; the file is a {parsed.kind}",
                                  field="data")
        ts = parsed.series
        names: list[str] | None = list(ts.axes)
        if any(a not in ts.axes for a in inp.axes):
            if len(ts.axes) != len(inp.axes):
                raise InvalidArgument(
                    f"the sample has axes {', '.join(ts.axes)}; the impulse needs "
                    f"{', '.join(inp.axes)}", field="axes")
            names = None  # positional
        w = window_sample(ts.values, ts.interval_ms, inp, sample_axes=names)
        if len(w) == 0:
            raise InvalidArgument(
                f"the sample ({ts.duration_ms:g} ms) is shorter than one window "
                f"({inp.window_size_ms:g} ms) and the impulse does not zero-pad", field="data")
        return w.data, w.start_ms.astype(np.float64)

    # -- classification -------------------------------------------------------------------------
    def features(self, windows: np.ndarray, order: list[str] | None = None) -> np.ndarray:
        """Flat features ``[N, F]`` of windows ``[N, *window_shape]`` (blocks in ``order``)."""
        parts = []
        for name in order or self._order:
            block, params, idx, _ = self._blocks[name]
            x = windows if idx is None else windows[..., idx]
            parts.append(block.features_batch(x, self.fs, params).reshape(len(windows), -1))
        return np.concatenate(parts, axis=1)

    def classify(self, windows: np.ndarray, *, model_type: str | None = None,
                 source: np.ndarray | None = None,
                 start_ms: np.ndarray | None = None) -> Classification:
        """Scores of windows ``[N, *window_shape]`` with the ``int8`` (default) or ``float32``
        model; ``source``/``start_ms`` are carried into the result."""
        mt = model_type or self.default_model_type
        if mt not in MODEL_TYPES:
            raise InvalidArgument(f"model_type {mt!r} must be one of {', '.join(MODEL_TYPES)}",
                                  field="model_type")
        if mt not in self.models:
            raise NotFound(f"this deployment has no {mt} model (it has "
                           f"{', '.join(self.models)})", field="model_type")
        n = len(windows)
        if n == 0:
            raise InvalidArgument("no windows to classify", field="instances")
        if n > MAX_WINDOWS:
            raise InvalidArgument(f"{n} windows in one request, over the limit of {MAX_WINDOWS}",
                                  field="instances")
        t0 = time.perf_counter_ns()
        feats = self.features(windows)
        anomaly_feats = None
        if self.files.anomaly is not None:
            anomaly_feats = self.features(windows, list(self.files.anomaly.inputs))
        t1 = time.perf_counter_ns()
        with self._lock:  # one LiteRT interpreter per model: not re-entrant
            scores = self.models[mt].predict(feats)
        anomaly = None
        if anomaly_feats is not None:
            anomaly = self.files.anomaly.score(anomaly_feats)
        t2 = time.perf_counter_ns()
        return Classification(
            labels=self.labels, scores=scores.astype(np.float32), anomaly=anomaly,
            source=np.arange(n) if source is None else np.asarray(source),
            start_ms=np.zeros(n) if start_ms is None else np.asarray(start_ms, np.float64),
            dsp_us=(t1 - t0) // 1000, inference_us=(t2 - t1) // 1000, model_type=mt)
