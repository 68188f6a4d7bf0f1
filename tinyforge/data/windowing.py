"""Cut canonical samples into windows as an impulse's input block says.

Time series (:func:`window_sample`): a sample is float32 ``[T, axes]`` sampled every
``interval_ms``. It is resampled to the input block's ``frequency_hz`` when its rate differs
(polyphase, ``scipy.signal.resample_poly``), reduced to the input block's axes, and cut into
windows of ``W = round(window_size_ms * f / 1000)`` samples starting at ``0, S, 2S, ...``
(``S`` = stride in samples) while the window fits in the sample. A sample shorter than one
window gives one zero-padded window when ``zero_pad`` is set and none otherwise.

Window labels: from the structured labels ``(start_ms, end_ms, label)`` when the sample has
them — the label whose intervals overlap the window for the longest time (ties: the label met
first); windows no interval touches fall back to the sample label — otherwise the sample label.

Images (:func:`prepare_image`): resized to the input block's width x height by resize mode —
``squash`` (stretch, aspect ratio ignored), ``fit-short`` (scale so the shorter side fits, then
centre-crop the longer side), ``fit-long`` (scale so the longer side fits, then centre-pad with
black), ``crop`` (centre crop at the target size without scaling; pads with black where the
image is smaller) — and converted to RGB or grayscale (ITU-R 601-2 luma). Output float32
``[H, W, C]`` with 0..255 values.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from tinyforge.errors import InvalidArgument
from tinyforge.impulse import ImageInput, TimeSeriesInput


@dataclass(frozen=True)
class StructuredLabel:
    """A label over ``[start_ms, end_ms)`` of a sample."""

    start_ms: float
    end_ms: float
    label: str


@dataclass
class Windows:
    """Windows cut from one sample: data ``[N, W, axes]``, start times (ms), labels."""

    data: np.ndarray
    start_ms: np.ndarray
    labels: list[str | None]

    def __len__(self) -> int:
        return int(self.data.shape[0])


def sample_frequency(interval_ms: float) -> float:
    """Sampling rate (Hz) of a sample with ``interval_ms`` between values.

    Rounded to an integer when within 0.01 Hz of one (16 kHz stored as 0.0625 ms is 16000).
    """
    if not (np.isfinite(interval_ms) and interval_ms > 0):
        raise InvalidArgument(f"interval_ms must be > 0, got {interval_ms!r}", field="interval_ms")
    f = 1000.0 / interval_ms
    return float(round(f)) if abs(f - round(f)) < 0.01 else f


def resample(values: np.ndarray, from_hz: float, to_hz: float) -> np.ndarray:
    """Resample ``values`` ``[T, axes]`` from ``from_hz`` to ``to_hz`` (polyphase filter)."""
    if abs(from_hz - to_hz) <= 1e-9 * to_hz:
        return values
    from scipy.signal import resample_poly

    ratio = Fraction(to_hz / from_hz).limit_denominator(1000)
    out = resample_poly(values.astype(np.float64), ratio.numerator, ratio.denominator, axis=0)
    return out.astype(np.float32)


def window_label(
    start_ms: float,
    end_ms: float,
    sample_label: str | None,
    structured: list[StructuredLabel] | None,
) -> str | None:
    """Label of the window ``[start_ms, end_ms)``: majority overlap, else the sample label."""
    if not structured:
        return sample_label
    overlap: dict[str, float] = {}
    for s in structured:
        o = min(end_ms, s.end_ms) - max(start_ms, s.start_ms)
        if o > 0:
            overlap[s.label] = overlap.get(s.label, 0.0) + o
    if not overlap:
        return sample_label
    return max(overlap, key=lambda k: overlap[k])  # max keeps the first of equal keys


def _structured(labels) -> list[StructuredLabel] | None:
    if labels is None:
        return None
    out = []
    for i, item in enumerate(labels):
        s = item if isinstance(item, StructuredLabel) else StructuredLabel(*item)
        if not (np.isfinite(s.start_ms) and np.isfinite(s.end_ms) and s.end_ms > s.start_ms):
            raise InvalidArgument(
                f"structured label {i} must have start_ms < end_ms, got {s.start_ms}..{s.end_ms}",
                field=f"structured_labels[{i}]",
            )
        out.append(s)
    return out


def window_sample(
    values: np.ndarray,
    interval_ms: float,
    input_block: TimeSeriesInput,
    label: str | None = None,
    structured_labels: list | None = None,
    sample_axes: list[str] | None = None,
) -> Windows:
    """Cut one sample ``[T, axes]`` into the input block's windows (see module doc).

    ``sample_axes`` names the sample's columns; the input block's axes are picked from them by
    name (InvalidArgument if one is missing). Without names the columns must already be the
    input block's axes, in order. ``structured_labels`` items are ``(start_ms, end_ms, label)``.
    """
    x = np.asarray(values)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise InvalidArgument(f"sample must be [T, axes] with T >= 1, got {x.shape}",
                              field="values")  # fmt: skip
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        raise InvalidArgument("sample contains NaN or infinite values", field="values")
    wanted = list(input_block.axes)
    if sample_axes is not None:
        if len(sample_axes) != x.shape[1]:
            raise InvalidArgument(
                f"sample has {x.shape[1]} columns but {len(sample_axes)} axis names",
                field="sample_axes",
            )
        missing = [a for a in wanted if a not in sample_axes]
        if missing:
            raise InvalidArgument(
                f"axis {missing[0]!r} is not in the sample; it has {', '.join(sample_axes)}",
                field="axes",
            )
        x = x[:, [sample_axes.index(a) for a in wanted]]
    elif x.shape[1] != len(wanted):
        raise InvalidArgument(
            f"sample has {x.shape[1]} axes, the input block expects {len(wanted)} "
            f"({', '.join(wanted)})",
            field="axes",
        )
    fs = float(input_block.frequency_hz)
    x = resample(x, sample_frequency(interval_ms), fs)
    structured = _structured(structured_labels)
    w, s = input_block.window_samples, input_block.stride_samples
    n = x.shape[0]
    if n < w:
        if not input_block.zero_pad:
            return Windows(np.zeros((0, w, x.shape[1]), np.float32), np.zeros(0), [])
        x = np.concatenate([x, np.zeros((w - n, x.shape[1]), np.float32)])
        starts = np.array([0])
    else:
        starts = np.arange(0, n - w + 1, s)
    view = np.lib.stride_tricks.sliding_window_view(x, w, axis=0)  # [n-w+1, axes, w]
    data = np.ascontiguousarray(np.swapaxes(view[starts], 1, 2))
    start_ms = starts * (1000.0 / fs)
    win_ms = w * 1000.0 / fs
    labels = [window_label(t, t + win_ms, label, structured) for t in start_ms]
    return Windows(data, start_ms, labels)


def prepare_image(image, input_block: ImageInput) -> np.ndarray:
    """Resize/convert one image (PIL image or uint8 array ``[H, W(, C)]``) → ``[H, W, C]``."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
            raise InvalidArgument(
                f"image array must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got {image.shape}",
                field="image",
            )
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    elif isinstance(image, Image.Image):
        img = image
    else:
        raise InvalidArgument("image must be a PIL image or a numpy array", field="image")
    img = img.convert("RGB")
    tw, th = input_block.width, input_block.height
    sw, sh = img.size
    mode = input_block.resize_mode
    if mode == "squash":
        img = img.resize((tw, th), Image.BILINEAR)
    elif mode in ("fit-short", "fit-long"):
        scale = (max if mode == "fit-short" else min)(tw / sw, th / sh)
        nw, nh = max(1, round(sw * scale)), max(1, round(sh * scale))
        img = _center_on_canvas(img.resize((nw, nh), Image.BILINEAR), tw, th)
    elif mode == "crop":
        img = _center_on_canvas(img, tw, th)
    else:
        raise InvalidArgument(f"unknown resize mode {mode!r}", field="input.resize_mode")
    if input_block.color == "grayscale":
        return np.asarray(img.convert("L"), dtype=np.float32)[:, :, None]
    return np.asarray(img, dtype=np.float32)


def _center_on_canvas(img, tw: int, th: int):
    """Centre ``img`` on a black ``tw`` x ``th`` canvas (crops what overflows)."""
    from PIL import Image

    canvas = Image.new("RGB", (tw, th))
    canvas.paste(img, ((tw - img.size[0]) // 2, (th - img.size[1]) // 2))
    return canvas
