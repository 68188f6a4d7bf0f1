"""The vectorised batch path: chunk boundaries, in-place arithmetic, BLAS thread limit.

``features_batch`` cuts a batch into chunks of ``base.CHUNK_SAMPLES`` input samples and the
audio kernels work in place on their intermediates; these tests pin down that neither changes
a result nor the caller's arrays.
"""

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from tinyforge.dsp import base, registry
from tinyforge.dsp.audio import preemphasis
from tinyforge.dsp.framing import frame_signal
from tinyforge.dsp.normalize import noise_floor_db, quantize_u8
from tinyforge.dsp.spectrum import power_spectrum
from tinyforge.errors import InvalidArgument

RNG = np.random.default_rng(5)
AUDIO = [("mfcc", {}), ("mfcc", {"win_size": 0, "pre_shift": 3}), ("mfe", {}),
         ("spectrogram", {})]  # fmt: skip


def speech_like(n: int, t: int = 8000) -> np.ndarray:
    x = RNG.standard_normal((n, t, 1)) * np.linspace(100, 8000, n)[:, None, None]
    return x.astype(np.float32)


@pytest.mark.parametrize("name, params", AUDIO)
def test_batch_across_chunk_boundaries_equals_each_window(monkeypatch, name, params):
    block = registry.get_block(name)
    x = speech_like(10)
    monkeypatch.setattr(base, "CHUNK_SAMPLES", 3 * 8000)  # chunks of 3, 3, 3 and 1 windows
    out = block.features_batch(x, 8000, params)
    for i in range(len(x)):
        np.testing.assert_allclose(out[i], block.features(x[i], 8000, params),
                                   rtol=1e-6, atol=1e-6)  # fmt: skip
    monkeypatch.setattr(base, "CHUNK_SAMPLES", 1 << 30)  # the whole batch as one chunk
    np.testing.assert_allclose(block.features_batch(x, 8000, params), out, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name, params", AUDIO)
def test_caller_signal_is_not_modified(name, params):
    x = speech_like(4)
    before = x.copy()
    registry.get_block(name).features_batch(x, 8000, params)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("where, bad", [(9, np.nan), (4, np.inf), (0, -np.inf)])
def test_non_finite_sample_in_any_chunk_is_rejected(monkeypatch, where, bad):
    monkeypatch.setattr(base, "CHUNK_SAMPLES", 3 * 8000)
    x = speech_like(10)
    x[where, 1234, 0] = bad
    with pytest.raises(InvalidArgument, match="NaN or infinite") as e:
        registry.get_block("mfe").features_batch(x, 8000, {})
    assert e.value.field == "signal"


@pytest.mark.parametrize("shift", [1, 2, 7, 159, 160])
def test_preemphasis_is_the_circular_formula(shift):
    x = (RNG.standard_normal((3, 161)) * 1000).astype(np.float32)
    expect = x - np.float32(0.97) * np.roll(x, shift, axis=-1)
    got = preemphasis(x, 0.97, shift)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expect)


def test_frame_signal_edge_cases():
    x = np.arange(50, dtype=np.float32)
    assert frame_signal(x, 10, 5, 0).shape == (0, 10)
    last = frame_signal(x, 10, 5, 9)  # the last frame ends exactly at the end
    np.testing.assert_array_equal(last[-1], x[40:50])
    with pytest.raises(ValueError, match="do not fit"):
        frame_signal(x, 10, 5, 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_power_spectrum_of_full_length_frames(dtype):
    frames = RNG.standard_normal((4, 64)).astype(dtype)
    expect = np.abs(np.fft.rfft(frames.astype(np.float64), axis=-1)) ** 2 / 64
    got = power_spectrum(frames, 64)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-4)


def test_normalisations_leave_their_input_alone():
    p = np.abs(RNG.standard_normal((5, 40))).astype(np.float32) * 1e-3
    p[0, 0] = 0.0
    before = p.copy()
    v = noise_floor_db(p, -52)
    np.testing.assert_array_equal(p, before)
    expect = (10 * np.log10(np.maximum(p.astype(np.float64), 1e-30)) + 52) / 64
    np.testing.assert_allclose(v, expect, rtol=1e-5, atol=1e-5)
    v_before = v.copy()
    q = quantize_u8(v)
    np.testing.assert_array_equal(v, v_before)
    np.testing.assert_array_equal(q, np.minimum(np.floor(np.clip(v, 0, 1) * 256 + 0.5), 255) / 256)


def _blas_threads() -> list[int]:
    # rebuild the cached controller so it knows every BLAS library this test sees
    base._blas_controller.cache_clear()
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_blas_is_single_threaded_inside_and_restored_after():
    before = _blas_threads()
    if not before:
        pytest.skip("threadpoolctl finds no BLAS library in this process")
    with base.single_threaded_blas():
        assert _blas_threads() == [1] * len(before)
    assert _blas_threads() == before


def test_blas_limit_from_overlapping_threads_never_sticks():
    before = _blas_threads()
    if not before:
        pytest.skip("threadpoolctl finds no BLAS library in this process")
    entered, release, seen = threading.Event(), threading.Event(), []

    def worker():
        with base.single_threaded_blas():
            seen.append(_blas_threads())
            entered.set()
            release.wait(timeout=30)

    t = threading.Thread(target=worker)
    t.start()
    assert entered.wait(timeout=30)
    assert seen == [[1] * len(before)]  # a worker thread (not only the main one) can limit
    with base.single_threaded_blas():  # overlaps the worker's limit, and outlives it
        release.set()
        t.join(timeout=30)
    assert _blas_threads() == before  # whatever the interleaving, the original count is back
    with base.single_threaded_blas():  # and the main thread can take the limit afterwards
        assert _blas_threads() == [1] * len(before)
    assert _blas_threads() == before
