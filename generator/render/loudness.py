"""Loudness of a preview, measured and set in NumPy: ITU-R BS.1770 / EBU R128.

Every preview is brought to the same loudness (−16 LUFS, what streaming services and podcasts
use) with its true peak under −1.5 dBTP, so no melody is louder than the next and none clips after
MP3 encoding. ffmpeg's ``loudnorm`` filter did this before at a cost of about half a second per
melody (it resamples to 192 kHz); here it is a few FFTs and a gain.

- Loudness: the K-weighting filters (a high shelf and a high pass, as biquads from their
  analogue prototypes, so any sample rate works) applied in the frequency domain, then 400 ms
  blocks overlapping by 75 % with the absolute (−70 LUFS) and relative (−10 LU) gates.
- True peak: the signal oversampled four times with a windowed-sinc interpolator.
- Level: one gain to the target; where that would put the peaks over the ceiling, a limiter
  lowers only the loud moments (gain per 10 ms block, never above what the block's peak allows,
  eased in between), and the gain is raised again by what the limiting took away.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

TARGET_LUFS = -16.0
CEILING_DBTP = -1.5
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
OVERSAMPLE = 4
_INTERPOLATOR_TAPS = 12  # per phase: 48 in all, as BS.1770's example interpolator
LIMITER_BLOCK_S = 0.010


def _biquad_response(b: np.ndarray, a: np.ndarray, w: np.ndarray) -> np.ndarray:
    z = np.exp(-1j * w)
    return (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)


@lru_cache(maxsize=8)
def _k_weighting(rate: float, size: int) -> np.ndarray:
    """The response of BS.1770's pre-filter (+4 dB shelf above ~1.5 kHz) and RLB high pass
    (38 Hz) on the bins of a real FFT of ``size`` points (kept: sizes are powers of two)."""
    w = np.linspace(0, np.pi, size // 2 + 1)
    gain_db, q, fc = 4.0, 1 / np.sqrt(2), 1500.0
    a_ = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * fc / rate
    alpha = np.sin(w0) / (2 * q)
    cos = np.cos(w0)
    shelf_b = np.array(
        [
            a_ * ((a_ + 1) + (a_ - 1) * cos + 2 * np.sqrt(a_) * alpha),
            -2 * a_ * ((a_ - 1) + (a_ + 1) * cos),
            a_ * ((a_ + 1) + (a_ - 1) * cos - 2 * np.sqrt(a_) * alpha),
        ]
    )
    shelf_a = np.array(
        [
            (a_ + 1) - (a_ - 1) * cos + 2 * np.sqrt(a_) * alpha,
            2 * ((a_ - 1) - (a_ + 1) * cos),
            (a_ + 1) - (a_ - 1) * cos - 2 * np.sqrt(a_) * alpha,
        ]
    )
    q, fc = 0.5, 38.0
    w0 = 2 * np.pi * fc / rate
    alpha = np.sin(w0) / (2 * q)
    cos = np.cos(w0)
    pass_b = np.array([(1 + cos) / 2, -(1 + cos), (1 + cos) / 2])
    pass_a = np.array([1 + alpha, -2 * cos, 1 - alpha])
    response = _biquad_response(shelf_b, shelf_a, w) * _biquad_response(pass_b, pass_a, w)
    return response.astype(np.complex64)


def k_weighted(signal: np.ndarray, rate: float) -> np.ndarray:
    """The signal as BS.1770 hears it (filtered in the frequency domain, in float32)."""
    samples = np.asarray(signal, dtype=np.float32)
    tail = int(rate) // 4  # the filters' ringing, so it does not wrap round onto the start
    size = 1 << int(np.ceil(np.log2(len(samples) + tail)))
    spectrum = np.fft.rfft(samples, size)
    return np.fft.irfft(spectrum * _k_weighting(float(rate), size), size)[: len(samples)]


def integrated_loudness(signal: np.ndarray, rate: float) -> float:
    """Integrated loudness of a mono signal (floats, full scale ±1) in LUFS; −inf if silent."""
    return gated_loudness(k_weighted(signal, rate), rate)


def gated_loudness(weighted: np.ndarray, rate: float) -> float:
    """Integrated loudness of an already K-weighted signal."""
    weighted = np.asarray(weighted, dtype=np.float64)
    block, step = int(0.4 * rate), int(0.1 * rate)
    if len(weighted) < block:
        weighted = np.pad(weighted, (0, block - len(weighted)))
    energy = np.concatenate([[0.0], np.cumsum(weighted * weighted)])
    starts = np.arange(0, len(weighted) - block + 1, step)
    mean_square = (energy[starts + block] - energy[starts]) / block
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10 * np.log10(mean_square)
    kept = mean_square[loudness > ABSOLUTE_GATE_LUFS]
    if not len(kept):
        return float("-inf")
    relative_gate = -0.691 + 10 * np.log10(kept.mean()) + RELATIVE_GATE_LU
    with np.errstate(divide="ignore"):
        kept = kept[-0.691 + 10 * np.log10(kept) > relative_gate]
    return float(-0.691 + 10 * np.log10(kept.mean()))


def _interpolator() -> np.ndarray:
    """A 48-tap windowed-sinc low pass for 4× oversampling, one row per output phase."""
    taps = OVERSAMPLE * _INTERPOLATOR_TAPS
    n = np.arange(taps) - (taps - 1) / 2
    kernel = np.sinc(n / OVERSAMPLE) * np.kaiser(taps, 8.0)
    kernel *= OVERSAMPLE / kernel.sum()
    return kernel.reshape(_INTERPOLATOR_TAPS, OVERSAMPLE).T


_PHASES = _interpolator().astype(np.float32)


def oversampled_peaks(signal: np.ndarray) -> np.ndarray:
    """|signal| at four times its rate, as (phases, samples): the peaks between samples that a
    decoder or a DAC will produce, which the samples alone do not show."""
    samples = np.asarray(signal, dtype=np.float32)
    return np.abs(np.stack([np.convolve(samples, phase, mode="same") for phase in _PHASES]))


def true_peak_db(signal: np.ndarray) -> float:
    peak = float(oversampled_peaks(signal).max(initial=0.0))
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def _block_peaks(signal: np.ndarray, block: int) -> np.ndarray:
    """The true peak of each ``block`` samples (the last block padded with silence)."""
    peaks = oversampled_peaks(signal).max(axis=0)
    count = -(-len(peaks) // block)
    return np.pad(peaks, (0, count * block - len(peaks))).reshape(count, block).max(axis=1)


def _limiter_gain(block_peaks: np.ndarray, block: int, length: int, ceiling: float) -> np.ndarray:
    """Per sample, the gain that keeps the true peak under ``ceiling`` (linear): 1 except
    around the loud moments."""
    with np.errstate(divide="ignore"):
        needed = np.minimum(1.0, ceiling / np.maximum(block_peaks, 1e-12))
    # Each block's gain also respects its neighbours', so easing between block centres never
    # lets a sample through louder than its own block allows.
    around = np.minimum(needed, np.minimum(np.r_[needed[1:], 1.0], np.r_[1.0, needed[:-1]]))
    centres = (np.arange(len(needed)) + 0.5) * block
    return np.interp(np.arange(length), centres, around).astype(np.float32)


def normalise(signal: np.ndarray, rate: float) -> np.ndarray:
    """The signal (float32) at TARGET_LUFS with its true peak at most CEILING_DBTP.

    The K-weighted signal and the peaks are computed once: a gain scales both, and the
    limiter's gain changes slowly (10 ms blocks), so the weighted signal times that gain is what
    the limited signal measures, within a tenth of an LU (the tests check the result against
    ffmpeg's own meter)."""
    samples = np.asarray(signal, dtype=np.float32)
    weighted = k_weighted(samples, rate)
    loudness = gated_loudness(weighted, rate)
    if not np.isfinite(loudness):
        return samples
    ceiling = 10 ** (CEILING_DBTP / 20)
    block = max(1, int(LIMITER_BLOCK_S * rate))
    peaks = _block_peaks(samples, block)
    gain = np.float32(10 ** ((TARGET_LUFS - loudness) / 20))
    for _round in range(3):  # limiting takes a little loudness away: give it back
        limiter = _limiter_gain(peaks * gain, block, len(samples), ceiling)
        if limiter.min() >= 1.0:
            return samples * gain
        shortfall = TARGET_LUFS - gated_loudness(weighted * gain * limiter, rate)
        if shortfall < 0.1:
            return samples * gain * limiter
        gain *= np.float32(10 ** (shortfall / 20))
    return samples * gain * _limiter_gain(peaks * gain, block, len(samples), ceiling)
