"""Build-time quantization arithmetic, reproducing TFLite's prepare-time computations exactly.

Multipliers are computed in double from the float32 scales stored in the model, as TFLite's
``QuantizeMultiplier`` does; activation ranges and lookup tables in float32 with libm's
``expf``/``tanhf`` (the functions TFLite's kernels call), so the C side only does integer work
(or, for SOFTMAX, the same float32 operations in the same order).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from functools import lru_cache

import numpy as np

f32 = np.float32


def round_half_away(x: float) -> int:
    """std::round: halves go away from zero."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = m * 2^(shift - 31), m in [2^30, 2^31) as int32."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def activation_range(activation: int, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 output (fused NONE/RELU/RELU_N1_TO_1/RELU6)."""

    def q(v: float) -> int:
        return zero_point + round_half_away(float(f32(v) / f32(scale)))

    lo, hi = -128, 127
    if activation == 1:
        return max(lo, q(0.0)), hi
    if activation == 3:
        return max(lo, q(0.0)), min(hi, q(6.0))
    if activation == 2:
        return max(lo, q(-1.0)), min(hi, q(1.0))
    return lo, hi


@lru_cache(maxsize=1)
def _libm() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    for name in ("expf", "tanhf"):
        fn = getattr(lib, name)
        fn.restype = ctypes.c_float
        fn.argtypes = [ctypes.c_float]
    return lib


def _expf(x) -> np.float32:
    return f32(_libm().expf(float(x)))


def _tanhf(x) -> np.float32:
    return f32(_libm().tanhf(float(x)))


def lut_int8(kind: str, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> list[int]:
    """256-entry int8 table indexed by (uint8)x for LOGISTIC / TANH (TFLite PopulateLookupTable)."""
    inv = f32(1) / f32(out_scale)
    table = [0] * 256
    for val in range(-128, 128):
        x = f32(in_scale) * f32(val - in_zp)
        if kind == "logistic":
            y = f32(1) / (f32(1) + _expf(-x))
        elif kind == "tanh":
            y = _tanhf(x)
        else:
            raise ValueError(kind)
        r = round_half_away(float(f32(y * inv)))
        table[val & 0xFF] = max(-128, min(127, r + out_zp))
    return [t - 256 if t > 127 else t for t in table]


def softmax_table(in_scale: float, beta: float) -> list[float]:
    """TFLite PopulateSoftmaxLookupTable: table[255 - d] = expf(-in_scale * beta * d)."""
    scale = f32(-f32(in_scale) * f32(beta))
    table = [0.0] * 256
    for d in range(256):
        table[255 - d] = float(_expf(f32(scale * f32(d))))
    return table


def c_float(x: float) -> str:
    """Exact C99 hex-float literal of a float32 value."""
    x = float(f32(x))
    if x == 0.0:
        return "0.0f"
    return f"{x.hex()}f"


def c_double(x: float) -> str:
    """Exact C99 hex literal of a double."""
    return "0.0" if x == 0.0 else float(x).hex()
