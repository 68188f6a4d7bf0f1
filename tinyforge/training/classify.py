"""Live classification: one raw sample (any ingest format) or stored sample through the
model's impulse — windowing, the DSP blocks feeding the model, the model (int8 or float).

:class:`LoadedModel` holds a model's files, impulse and runners; build it once per model
(:func:`load_model`) and call :meth:`LoadedModel.classify` many times (thread-safe: one lock
around the interpreters). Timing: ``dsp_ms`` covers the processing blocks over every window,
``inference_ms`` the model over every window (wall clock, milliseconds).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinyforge.blocks.registered import is_custom
from tinyforge.data.canonical import TimeSeries
from tinyforge.data.formats import parse_upload
from tinyforge.data.images import image_pixels
from tinyforge.data.windowing import prepare_image, window_sample
from tinyforge.dsp.registry import get_block as dsp_block
from tinyforge.errors import FailedPrecondition, InvalidArgument
from tinyforge.impulse import ImageInput, Impulse
from tinyforge.store.db import Database
from tinyforge.store.objects import ObjectStore
from tinyforge.training.store import ModelFiles, load_model_files

#: windows per Classify call; a longer sample is refused (stream it in parts instead)
MAX_WINDOWS = 5000


@dataclass
class WindowResult:
    start_ms: float
    scores: list[float]  # class scores (classification), outputs (regression), [score] (anomaly)


@dataclass
class ClassifyResult:
    """Scores per window and overall (mean over windows), the top label and its score,
    anomaly score (anomaly blocks: mean window score; ``anomalous`` vs the model threshold)."""

    task: str
    form: str  # "int8" | "float"
    labels: list[str]
    windows: list[WindowResult]
    scores: list[float]
    label: str
    confidence: float
    anomaly_score: float | None
    anomalous: bool | None
    dsp_ms: float
    inference_ms: float
    feature_count: int
    extra: dict[str, Any] = field(default_factory=dict)


class LoadedModel:
    """A stored model ready to classify (see the module docstring)."""

    def __init__(self, files: ModelFiles, resolver: Callable[[str], Any] | None = None) -> None:
        """``resolver`` turns the impulse's processing block names into blocks (default: the
        built-in ones; give an organization's registry resolver for custom DSP blocks)."""
        self.files = files
        self._resolve = resolver or dsp_block
        meta = files.metadata
        self.model_id = files.model_id
        self.task: str = meta["task"]
        self.labels: list[str] = list(meta.get("labels", []))
        self.impulse = Impulse.from_dict(meta["impulse"])
        self.inputs: list[str] = list(meta["input_blocks"])
        self.feature_shape = tuple(meta["feature_shape"])
        self.threshold = (meta.get("metrics", {}).get("extra", {}) or {}).get("threshold")
        self._lock = threading.Lock()
        self._runners: dict[str, Any] = {}

    def _runner(self, use_float: bool) -> tuple[str, Any]:
        """``(form, object with predict(x [N, F]) -> [N, out])``; int8 when it exists."""
        form = "float" if use_float or self.files.int8 is None else "int8"
        if form == "float" and self.files.float32 is None and self.files.int8 is not None:
            form = "int8"  # a custom block's int8-only model has no float form to run
        if form not in self._runners:
            if form == "int8":
                from tinyforge.quantize.runner import TFLiteModel

                self._runners[form] = TFLiteModel(self.files.int8)
            elif self.files.float32 is not None:
                from tinyforge.quantize.runner import TFLiteModel

                self._runners[form] = TFLiteModel(self.files.float32)
            else:  # scikit-learn blocks: the trained scorer itself
                self._runners[form] = self.files.trained()
        return form, self._runners[form]

    def windows_of_series(self, ts: TimeSeries) -> tuple[np.ndarray, np.ndarray]:
        """Windows ``[N, W, axes]`` and start times (ms) of a time series."""
        if isinstance(self.impulse.input, ImageInput):
            raise InvalidArgument("the model's impulse takes images; got time-series data",
                                  field="data")
        w = window_sample(ts.values, ts.interval_ms, self.impulse.input,
                          sample_axes=list(ts.axes))
        return w.data, np.asarray(w.start_ms, np.float64)

    def features(self, windows: np.ndarray) -> np.ndarray:
        """The model's input ``[N, F]`` for windows ``[N, W, axes]`` (images ``[N, H, W, C]``)."""
        imp = self.impulse
        is_image = isinstance(imp.input, ImageInput)
        fs = 0.0 if is_image else float(imp.input.frequency_hz)
        parts = []
        for name in self.inputs:
            b = imp.processing_block(name)
            x = windows
            if not is_image:
                x = x[..., [imp.input.axes.index(a) for a in imp.block_axes(b)]]
            feats = self._resolve(b.block).features_batch(x, fs, b.params)
            parts.append(np.asarray(feats, np.float32).reshape(len(windows), -1))
        return np.concatenate(parts, axis=1)

    def classify_windows(self, windows: np.ndarray, start_ms: np.ndarray, *,
                         use_float: bool = False) -> ClassifyResult:
        """Classify prepared windows (see :meth:`features`)."""
        n = len(windows)
        if n == 0:
            raise InvalidArgument("the sample is shorter than one window and the impulse does "
                                  "not zero-pad: nothing to classify", field="data")
        if n > MAX_WINDOWS:
            raise InvalidArgument(f"the sample gives {n} windows, at most {MAX_WINDOWS} per "
                                  "call: send a shorter sample", field="data")
        t0 = time.perf_counter()
        x = self.features(windows)
        dsp_ms = (time.perf_counter() - t0) * 1000.0
        if not np.isfinite(x).all():
            raise FailedPrecondition("the processing blocks produced NaN or infinite features "
                                     "for this sample", field="data")
        with self._lock:
            form, runner = self._runner(use_float)
            t1 = time.perf_counter()
            out = np.asarray(runner.predict(x), np.float32)
            t2 = time.perf_counter()
        out = out.reshape(n, -1)
        overall = out.mean(axis=0)
        res = ClassifyResult(
            task=self.task, form=form, labels=self.labels,
            windows=[WindowResult(float(s), [float(v) for v in row])
                     for s, row in zip(start_ms.tolist(), out, strict=True)],
            scores=[float(v) for v in overall], label="", confidence=0.0, anomaly_score=None,
            anomalous=None, dsp_ms=dsp_ms, inference_ms=(t2 - t1) * 1000.0,
            feature_count=int(x.shape[1]))
        if self.task == "classification":
            top = int(overall.argmax())
            res.label, res.confidence = self.labels[top], float(overall[top])
        elif self.task == "anomaly":
            res.anomaly_score = float(overall[0])
            if self.threshold is not None:
                res.anomalous = bool(res.anomaly_score > float(self.threshold))
                res.extra["threshold"] = float(self.threshold)
        return res

    def classify_bytes(self, data: bytes, filename: str | None = None, *,
                       frequency_hz: float | None = None,
                       use_float: bool = False) -> ClassifyResult:
        """Classify an uploaded file (EI JSON/CBOR, CSV, WAV, PNG/JPEG)."""
        parsed = parse_upload(data, filename, allow_unsigned=True, frequency_hz=frequency_hz)
        if parsed.image is not None:
            if not isinstance(self.impulse.input, ImageInput):
                raise InvalidArgument("the model's impulse takes time-series data; got an image",
                                      field="data")
            img = prepare_image(image_pixels(data, "RGB"), self.impulse.input)
            return self.classify_windows(img[None], np.zeros(1), use_float=use_float)
        assert parsed.series is not None
        windows, starts = self.windows_of_series(parsed.series)
        return self.classify_windows(windows, starts, use_float=use_float)


def load_model(objects: ObjectStore, project_id: int, model_id: int,
               db: Database | None = None) -> LoadedModel:
    """A stored model, loaded for classification (NotFound when it does not exist).

    ``db`` lets an impulse's custom DSP blocks (``custom:NAME@V``) resolve against the
    project's organization registry; without it only built-in blocks can run.
    """
    files = load_model_files(objects, project_id, model_id)
    resolver = None
    if db is not None and any(is_custom(b.get("block"))
                              for b in files.metadata["impulse"].get("processing", [])):
        from tinyforge.blocks.custom_dsp import project_resolver

        resolver = project_resolver(db, objects, project_id)
    return LoadedModel(files, resolver)
