"""DSP benchmark: windows/s of our blocks next to librosa on the same frames, same run.

- FSDD (all 3000 recordings, 8 kHz): 1 s windows (stride 1 s, zero-padded) -> mfcc, mfe,
  spectrogram. MFCC/MFE are compared with librosa ``feature.mfcc`` / ``feature.melspectrogram``
  computing exactly the same frames: rectangular 160-sample frames, FFT 256, no centring, HTK
  mel, same mel-bin count and hop. librosa centres a short window inside ``n_fft``, so its input
  gets (n_fft - frame) / 2 zeros at each end (prepared once, outside the timing): its frame i then
  covers the same 160 samples as ours and it yields the same number of frames.
- librosa is measured at its best: on the whole batch ``[N, T]`` both with its default BLAS
  threading and with BLAS limited to one thread (the faster counts), plus the usual per-window
  loop (on a subset, it is slow). Ours limits BLAS to one thread itself (see
  ``tinyforge.dsp.base.single_threaded_blas``).
- Single-process figures interleave the contenders repetition by repetition, so machine load
  hits them alike, and report both wall time and this process's CPU time (``process_time``,
  counting every thread of the process); the best repetition of each counts.
- STM32 HAR (92 CSVs, 26 Hz): 2 s windows, 200 ms stride -> spectral_analysis.
- A process pool over all cores (wall time; the input batch sits in shared memory, the features
  are computed but not sent back); plus end-to-end feature generation for all of FSDD (WAV
  parsing + windowing + MFCC + MFE + spectrogram in each worker) on all cores.

Goals (issue 4): >= 2x librosa throughput for MFCC/MFE single-process; all of FSDD <= 10 s on
2 cores. Run: ``.venv/bin/python bench/dsp/run.py [--repeat N]``.
"""

from __future__ import annotations

import os
import sys
import time
import wave
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tinyforge.data.windowing import window_sample  # noqa: E402
from tinyforge.dsp import registry  # noqa: E402
from tinyforge.impulse import TimeSeriesInput  # noqa: E402

DATASETS = ROOT / ".." / "shared" / "datasets"
FSDD_INPUT = TimeSeriesInput(1000, 1000, 8000, ["audio"], zero_pad=True)
HAR_INPUT = TimeSeriesInput(2000, 200, 26, ["x", "y", "z"])
AUDIO_BLOCKS = {
    "mfcc": {},  # 20 ms frames / 20 ms stride, 32 filters, FFT 256, 13 coefficients
    "mfe": {},  # 20 ms / 10 ms, 40 filters, FFT 256
    "spectrogram": {},  # 20 ms / 10 ms, FFT 128
}
HAR_PARAMS = {"filter_type": "low", "filter_cutoff": 8, "fft_length": 32, "scale_axes": 0.001}
CORES = os.cpu_count() or 1
FS = 8000
FRAME = 160  # 20 ms at 8 kHz, the mfcc and mfe default frame length
N_FFT = 256
# librosa on the same frames as our mfcc / mfe defaults: rectangular, not centred, HTK mel
MFCC_KW = dict(sr=FS, n_mfcc=13, n_fft=N_FFT, hop_length=160, win_length=FRAME, window="boxcar",
               center=False, n_mels=32, htk=True)  # fmt: skip
MEL_KW = dict(sr=FS, n_fft=N_FFT, hop_length=80, win_length=FRAME, window="boxcar", center=False,
              n_mels=40, htk=True)  # fmt: skip
LOOP_WINDOWS = 300  # the per-window librosa loop runs on this many windows (it is slow)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32)


def fsdd_windows(paths: list[Path]) -> np.ndarray:
    out = [window_sample(read_wav(p)[:, None], 0.125, FSDD_INPUT).data for p in paths]
    return np.concatenate(out)


def har_windows(paths: list[Path]) -> np.ndarray:
    out = [window_sample(np.loadtxt(p, delimiter=",", dtype=np.float32), 1000 / 26,
                         HAR_INPUT).data for p in paths]  # fmt: skip
    return np.concatenate(out)


def librosa_frames_input(x: np.ndarray) -> np.ndarray:
    """``[N, T, 1]`` → ``[N, T + n_fft - frame]`` so librosa's frames equal ours (see top)."""
    pad = (N_FFT - FRAME) // 2
    return np.pad(x[:, :, 0], ((0, 0), (pad, N_FFT - FRAME - pad)))


def wall_best(fn, *args, repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs (pool figures)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best


def interleaved(contenders: dict, repeat: int) -> dict[str, tuple[float, float]]:
    """``{name: (best wall s, best CPU s)}``; each repetition runs every contender once."""
    best = {name: [float("inf"), float("inf")] for name in contenders}
    for _ in range(repeat):
        for name, fn in contenders.items():
            w, c = time.perf_counter(), time.process_time()
            fn()
            w, c = time.perf_counter() - w, time.process_time() - c
            best[name] = [min(best[name][0], w), min(best[name][1], c)]
    return {k: (v[0], v[1]) for k, v in best.items()}


def _block_chunk(args) -> int:
    """Worker: features of windows ``[lo, hi)`` of the shared input (written to no one)."""
    name, shm_name, shape, lo, hi, fs, params = args
    shm = SharedMemory(shm_name)
    try:
        x = np.ndarray(shape, np.float32, shm.buf)[lo:hi]
        n = len(registry.get_block(name).features_batch(x, fs, params))
        del x  # release the view before closing the mapping
        return n
    finally:
        shm.close()


class SharedWindows:
    """The input batch in shared memory (set up once, like loading the data set), so the pool
    figures measure feature extraction, not pickling the whole batch through pipes."""

    def __init__(self, x: np.ndarray):
        self.shape = x.shape
        self.shm = SharedMemory(create=True, size=max(1, x.nbytes))
        np.ndarray(x.shape, np.float32, self.shm.buf)[:] = x

    def close(self) -> None:
        self.shm.close()
        self.shm.unlink()


def run_pool(pool, name: str, xs: SharedWindows, fs: float, params: dict) -> None:
    bounds = np.linspace(0, xs.shape[0], CORES * 4 + 1).astype(int)
    jobs = [(name, xs.shm.name, xs.shape, int(lo), int(hi), fs, params)
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True) if hi > lo]  # fmt: skip
    list(pool.map(_block_chunk, jobs))


def _generate_files(paths: list[Path]) -> int:
    x = fsdd_windows(paths)
    for name, params in AUDIO_BLOCKS.items():
        registry.get_block(name).features_batch(x, FS, params)
    return len(x)


def librosa_contenders(kind: str, y: np.ndarray) -> dict:
    """librosa batch (default BLAS threads / one BLAS thread) and per-window loop on ``y``."""
    import librosa
    from threadpoolctl import threadpool_limits

    fn = librosa.feature.mfcc if kind == "mfcc" else librosa.feature.melspectrogram
    kw = MFCC_KW if kind == "mfcc" else MEL_KW

    def batch_1thread():
        with threadpool_limits(1, user_api="blas"):
            fn(y=y, **kw)

    def loop():
        for w in y[:LOOP_WINDOWS]:
            fn(y=w, **kw)

    return {"librosa batch": lambda: fn(y=y, **kw), "librosa batch 1 BLAS thread": batch_1thread,
            "librosa loop": loop}  # fmt: skip


def single_process_table(x: np.ndarray, repeat: int) -> list[str]:
    y = librosa_frames_input(x)
    n = len(x)
    lines = [f"{'block':<8}{'clock':<6}{'ours w/s':>10}{'librosa batch':>15}"
             f"{'batch 1-thread':>16}{'loop':>8}{'speed-up vs best':>18}"]  # fmt: skip
    for kind in ("mfcc", "mfe"):
        block = registry.get_block(kind)
        contenders = {"ours": lambda b=block: b.features_batch(x, FS, AUDIO_BLOCKS[b.name])}
        contenders.update(librosa_contenders(kind, y))
        t = interleaved(contenders, repeat)
        for ci, clock in enumerate(("wall", "CPU")):
            rate = {k: (LOOP_WINDOWS if k == "librosa loop" else n) / v[ci] for k, v in t.items()}
            best_lib = max(v for k, v in rate.items() if k != "ours")
            lines.append(f"{kind:<8}{clock:<6}{rate['ours']:>10.0f}{rate['librosa batch']:>15.0f}"
                         f"{rate['librosa batch 1 BLAS thread']:>16.0f}{rate['librosa loop']:>8.0f}"
                         f"{rate['ours'] / best_lib:>17.2f}x")  # fmt: skip
    return lines


def main() -> int:
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 5
    fsdd = sorted((DATASETS / "fsdd" / "recordings").glob("*.wav"))
    har = sorted((DATASETS / "har_stm32_accel").glob("*/*.csv"))
    if not fsdd or not har:
        print(f"SKIP: datasets not found under {DATASETS.resolve()}")
        return 0
    import librosa

    x = fsdd_windows(fsdd)
    h = har_windows(har)
    for kind in ("mfcc", "mfe"):  # warm librosa's caches (mel basis, numba) and ours
        for fn in librosa_contenders(kind, librosa_frames_input(x[:2])).values():
            fn()
        registry.get_block(kind).features_batch(x[:2], FS, {})
    print(f"FSDD: {len(fsdd)} recordings -> {len(x)} windows of 1 s at 8 kHz; "
          f"HAR: {len(har)} CSVs -> {len(h)} windows of 2 s at 26 Hz; {CORES} cores; "
          f"librosa {librosa.__version__}; best of {repeat} interleaved repetitions")  # fmt: skip
    print("\nsingle process, windows/s (librosa loop: first "
          f"{LOOP_WINDOWS} windows; CPU = process_time, all threads of the process)")
    for line in single_process_table(x, repeat):
        print(line)

    rows = []
    xs, hs = SharedWindows(x), SharedWindows(h)
    with ProcessPoolExecutor(CORES) as pool:
        run_pool(pool, "flatten", xs, FS, {})  # start the workers
        for name, params in AUDIO_BLOCKS.items():
            block = registry.get_block(name)
            t1 = wall_best(block.features_batch, x, FS, params)
            tn = wall_best(run_pool, pool, name, xs, FS, params)
            rows.append((name, len(x), t1, tn))
        block = registry.get_block("spectral_analysis")
        t1 = wall_best(block.features_batch, h, 26, HAR_PARAMS)
        tn = wall_best(run_pool, pool, "spectral_analysis", hs, 26, HAR_PARAMS)
        rows.append(("spectral_analysis (HAR)", len(h), t1, tn))
        t = time.perf_counter()
        sum(pool.map(_generate_files, np.array_split(fsdd, CORES * 4)))
        t_end = time.perf_counter() - t
    xs.close()
    hs.close()
    print(f"\n{'block (wall time)':<26}{'windows':>8}{'1 proc w/s':>12}{f'{CORES} procs w/s':>14}")
    for name, n, t1, tn in rows:
        print(f"{name:<26}{n:>8}{n / t1:>12.0f}{n / tn:>14.0f}")
    print("  (librosa for mfe = feature.melspectrogram: the same frames and mel energies, before "
          "the dB/noise-floor step)")  # fmt: skip
    print(f"\nall FSDD end to end (WAV parse + windowing + mfcc + mfe + spectrogram), {CORES} "
          f"processes: {t_end:.2f} s (goal <= 10 s on 2 cores)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
