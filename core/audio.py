"""Audio: loading (any container through ffmpeg, WAV/FLAC directly), Wav2Lip's mel spectrogram and its per-frame
chunking, and an energy-based voice activity detector.

The mel spectrogram reproduces Wav2Lip's `audio.melspectrogram` as the released models were trained (librosa 0.7):
preemphasis 0.97, STFT (n_fft 800, hop 200, Hann window 800, centred with **reflect** padding), magnitude, Slaney
mel basis in float32 (80 mels, 55-7600 Hz), 20*log10(max(1e-5, x)) - 20 dB, then the symmetric normalisation
clip(8 * (dB + 100) / 100 - 4, -4, 4). It is computed in float64 in blocks (bounded memory for long audio) and
returned as float32 (the models' input type; < 3e-7 from the float64 result).
"""
from __future__ import annotations

import functools

import logging
import math
import subprocess
from pathlib import Path
from typing import Optional

import numpy as np

from . import media
from .errors import AudioError, MediaError

log = logging.getLogger(__name__)

# -- hyper-parameters (Wav2Lip hparams.py), units in the names/comments ----------------------------------------
SAMPLE_RATE = 16000          # Hz; every array in the core is mono float32 at this rate
N_FFT = 800                  # samples per FFT (50 ms)
MEL_WINDOW = 800             # samples per Hann window (50 ms)
MEL_HOP = 200                # samples between mel columns (12.5 ms)
MEL_FRAMES_PER_SECOND = SAMPLE_RATE / MEL_HOP   # 80 mel columns per second
NUM_MELS = 80                # mel bands
MEL_FMIN = 55.0              # Hz, lowest mel band edge
MEL_FMAX = 7600.0            # Hz, highest mel band edge
PREEMPHASIS = 0.97           # y[n] = x[n] - 0.97 x[n-1]
MIN_LEVEL_DB = -100.0        # dB, floor of the normalisation
REF_LEVEL_DB = 20.0          # dB subtracted from 20*log10(magnitude)
AMP_FLOOR = 1e-5             # magnitude floor before log10 (= -100 dB)
MAX_ABS_VALUE = 4.0          # mel values lie in [-MAX_ABS_VALUE, MAX_ABS_VALUE]
MEL_SILENCE = -MAX_ABS_VALUE # value of a mel cell for digital silence; used to pad chunks past the end
MEL_STEP = 16                # mel columns per chunk fed to Wav2Lip (0.2 s)
MEL_BLOCK = 4096             # mel columns computed per block (bounds memory for long audio)

# -- voice activity detection --------------------------------------------------------------------------------
VAD_N_FFT = 512              # samples (32 ms)
VAD_HOP = 160                # samples (10 ms)
VAD_BAND_HZ = (100.0, 7800.0)   # Hz, band used for the energy (keeps fricatives such as /s/, /f/)
VAD_FLOOR_PERCENTILE = 10.0  # the utterance's noise floor: this percentile of the frame levels (dB)
VAD_PEAK_PERCENTILE = 99.0   # its speech peak
VAD_REL_THRESHOLD = 0.5      # active when level > floor + this share of (peak - floor) ...
VAD_MIN_SNR_DB = 6.0         # ... and at least this many dB above the floor
VAD_MIN_RANGE_DB = 12.0      # peak - floor below this: no speech at all (silence, stationary noise)
VAD_SILENCE_DBFS = -70.0     # peak level below this (dB re full scale): silence
VAD_HANGOVER_FRAMES = 2      # video frames kept active after speech ends
VAD_ONSET_FRAMES = 1         # video frames made active before speech starts
VAD_MIN_GAP_FRAMES = 2       # shorter pauses inside speech are bridged (video frames)
LEVEL_CHUNK = 2048           # hops whose levels are computed at once (bounds band_levels_db's memory)

FAST_PATH_SUFFIXES = (".wav", ".flac")
MAX_AVERAGED_CHANNELS = 2    # mono/stereo are averaged; surround is downmixed by ffmpeg's matrix (dialogue is in
                             # the centre channel: an average of 5.1 would leave it 15.6 dB too quiet)


# --------------------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------------------
def build_audio_decode_args(ffmpeg: str, path, stream_index: Optional[int], channels: int,
                            sample_rate: int) -> list:
    """ffmpeg arguments writing one audio stream as interleaved float32 at its own rate/channels to stdout.

    Sample 0 is the file's time 0 (its first video frame in a video): a sound that starts late (cameras, edits)
    is padded with silence in front and samples before time 0 (encoder delay) are dropped
    (`aresample=first_pts=0`), so a video's own sound stays in sync with its frames."""
    amap = f"0:{stream_index}" if stream_index is not None else "0:a:0"
    return [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path), "-map", amap,
            "-vn", "-sn", "-dn", "-af", "aresample=first_pts=0", "-ac", str(int(channels)),
            "-ar", str(int(sample_rate)),
            "-c:a", "pcm_f32le", "-f", "f32le", "pipe:1"]


def resample(wav: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality resampling (soxr 'HQ', librosa's default) of a mono float32 signal."""
    if sr_in == sr_out or wav.size == 0:
        return wav.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(wav, int(sr_in), int(sr_out), quality="HQ").astype(np.float32, copy=False)


def _finish(x: np.ndarray, sr_in: int, sr: int, path) -> np.ndarray:
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.size == 0:
        raise AudioError(f"{path} contains no audio samples (zero length). Choose a file with sound.")
    if not np.all(np.isfinite(x)):
        log.warning("%s: non-finite audio samples replaced by 0", path)
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    x = resample(x, sr_in, sr)
    # lossy codecs and resampling overshoot a little past full scale. In place when possible (an hour of audio
    # is 230 MB), but without resampling `x` may still be the read-only view of ffmpeg's output bytes.
    return np.clip(x, -1.0, 1.0, out=x if x.flags.writeable else None)


def _load_soundfile(p: Path, sr: int) -> Optional[np.ndarray]:
    try:
        import soundfile as sf

        if sf.info(str(p)).channels > MAX_AVERAGED_CHANNELS:
            return None                     # surround: ffmpeg's downmix keeps the dialogue (read it once, there)
        x, sr_in = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as e:  # unsupported subtype, damaged header...: let ffmpeg try
        log.debug("soundfile cannot read %s (%s); using ffmpeg", p, e)
        return None
    return _finish(x, sr_in, sr, p)


def load_audio(path, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 audio at `sr` Hz from any audio or video file (its first audio stream).

    WAV/FLAC are read with soundfile (an hour of 16 kHz WAV loads in well under a second); everything else is
    decoded by ffmpeg. Mono and stereo are averaged, surround is downmixed by ffmpeg (dialogue in the centre keeps
    its level), other rates are resampled with soxr (HQ). Non-finite samples become
    0 and the result is clipped to [-1, 1] (decoded AAC/MP3 and resampling overshoot slightly). MediaError for a missing/unreadable/non-media
    file, AudioError when there is no audio stream or it is empty."""
    p = media._check_input_file(path, "audio")
    if p.suffix.lower() in FAST_PATH_SUFFIXES:
        wav = _load_soundfile(p, sr)
        if wav is not None:
            return wav
    info = media.probe(p)
    if not info.has_audio:
        if info.num_audio_streams:
            raise AudioError(f"The audio stream of {p} is empty (zero length). Choose a file with sound.")
        raise AudioError(f"{p} has no audio stream. Choose a file with sound (a voice recording or a video "
                         "with audio).")
    channels = info.audio_channels or 1
    if channels > MAX_AVERAGED_CHANNELS:
        channels = 1             # ffmpeg's -ac 1 downmix
    rate = info.audio_sample_rate or sr
    exe = media.ffmpeg_path()
    args = build_audio_decode_args(exe, p, info.audio_stream_index, channels, rate)
    try:
        r = subprocess.run(args, capture_output=True, **media._popen_kwargs())
    except OSError as e:
        raise MediaError(f"ffmpeg ({exe}) cannot be run ({e}); reinstall FFmpeg.") from None
    data = r.stdout
    n = len(data) // (4 * channels) * channels
    if r.returncode != 0 and n == 0:
        err = r.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AudioError(f"The audio of {p} cannot be decoded ({err[-1] if err else r.returncode}). "
                         "The file may be damaged; convert it to WAV and try again.")
    if r.returncode != 0:  # pragma: no cover - damaged tail
        log.warning("%s: ffmpeg reported an error after %d samples; using what was decoded", p, n // channels)
    x = np.frombuffer(data, np.float32, count=n).reshape(-1, channels)
    return _finish(x, rate, sr, p)


# --------------------------------------------------------------------------------------------------------------
# mel spectrogram (Wav2Lip)
# --------------------------------------------------------------------------------------------------------------
def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa htk=False): linear below 1 kHz, logarithmic above."""
    f = np.asanyarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    if f.ndim:
        t = f >= min_log_hz
        mels[t] = min_log_mel + np.log(f[t] / min_log_hz) / logstep
    elif f >= min_log_hz:
        mels = min_log_mel + np.log(f / min_log_hz) / logstep
    return mels


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asanyarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    t = m >= min_log_mel
    freqs[t] = min_log_hz * np.exp(logstep * (m[t] - min_log_mel))
    return freqs




def mel_basis(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = NUM_MELS, fmin: float = MEL_FMIN,
              fmax: float = MEL_FMAX) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) float32 Slaney-normalised mel filter bank, identical to
    librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax) without importing librosa
    (its import costs seconds). Defaults: Wav2Lip's bank (16 kHz, n_fft 800, 80 mels, 55-7600 Hz)."""
    return _mel_basis_cached(int(sr), int(n_fft), int(n_mels), float(fmin), float(fmax))


@functools.lru_cache(maxsize=8)
def _mel_basis_cached(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    w = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        w[i] = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    w.flags.writeable = False
    return w


def hann_window(n: int) -> np.ndarray:
    """Periodic Hann window, computed as scipy.signal.get_window("hann", n, fftbins=True) does (librosa's stft
    window) without importing scipy.signal (seconds of import time)."""
    fac = np.linspace(-np.pi, np.pi, n + 1)
    w = np.zeros(n + 1)
    w += 0.5 * np.cos(0 * fac)
    w += 0.5 * np.cos(1 * fac)
    return w[:-1]


def sanitize(wav: np.ndarray) -> np.ndarray:
    """1-D float64 copy with NaN/inf replaced by 0 (logged)."""
    x = np.asarray(wav, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(x)):
        log.warning("audio contains NaN/inf samples; they are treated as silence (0)")
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return x


def num_mel_frames(num_samples: int) -> int:
    """Mel columns for a signal of `num_samples` samples: 1 + num_samples // 200."""
    return 1 + max(0, int(num_samples)) // MEL_HOP


def melspectrogram(wav: np.ndarray) -> np.ndarray:
    """(80, 1 + len(wav)//200) float32 Wav2Lip mel spectrogram of mono 16 kHz audio.

    Edge cases: NaN/inf samples count as 0 (silence); an empty input is one sample of silence (one column of
    -4); any input shorter than the 400-sample reflect padding is reflected as numpy does (repeatedly), where
    librosa 0.7 would have raised. Computed MEL_BLOCK columns at a time from the samples they cover (pre-emphasis
    and reflect padding included), so a long voice never has its float64 copies in memory (10 min: ~0.4 GB); each
    column's arithmetic is the same whatever the blocking."""
    x = np.asarray(wav).reshape(-1)
    if x.size == 0:
        x = np.zeros(1)
    if not np.isfinite(x).all():
        x = sanitize(x)
    pad = N_FFT // 2
    n = x.size
    columns = num_mel_frames(n)
    if n <= pad:                                           # numpy's repeated reflection: the whole signal at once
        y = preemphasis(x, np.arange(n))
        ypad = np.pad(y, pad, mode="reflect" if n > 1 else "edge")
    window = hann_window(MEL_WINDOW)
    basis = mel_basis()
    out = np.empty((NUM_MELS, columns), dtype=np.float32)
    for a in range(0, columns, MEL_BLOCK):
        b = min(columns, a + MEL_BLOCK)
        if n <= pad:
            seg = ypad[a * MEL_HOP:(b - 1) * MEL_HOP + N_FFT]
        else:                                              # the padded signal's samples of this block
            k = np.arange(a * MEL_HOP, (b - 1) * MEL_HOP + N_FFT) - pad
            k = np.abs(k)                                  # reflected before the start ...
            k = np.where(k >= n, 2 * (n - 1) - k, k)       # ... and after the end
            seg = preemphasis(x, k)
        block = np.lib.stride_tricks.sliding_window_view(seg, N_FFT)[::MEL_HOP] * window
        mag = np.abs(np.fft.rfft(block, n=N_FFT, axis=1))        # (b, 401) float64
        mel = np.dot(basis, mag.T)                               # float32 basis x float64 -> float64
        out[:, a:b] = mel_units(20.0 * np.log10(np.maximum(AMP_FLOOR, mel)))
    return out


def preemphasis(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """float64 y[index] of y[n] = x[n] - PREEMPHASIS x[n-1], y[0] = x[0] (scipy.signal.lfilter([1, -0.97], [1], x))."""
    cur = x[index].astype(np.float64)
    prev = x[np.maximum(index - 1, 0)].astype(np.float64)
    return np.where(index > 0, cur - PREEMPHASIS * prev, cur)


def mel_units(level_db: np.ndarray) -> np.ndarray:
    """Mel band levels in dB (20 log10 of the band magnitude) -> Wav2Lip's normalised units, clipped to
    [-MAX_ABS_VALUE, MAX_ABS_VALUE]."""
    db = np.asarray(level_db) - REF_LEVEL_DB
    return np.clip((2 * MAX_ABS_VALUE) * ((db - MIN_LEVEL_DB) / (-MIN_LEVEL_DB)) - MAX_ABS_VALUE,
                   -MAX_ABS_VALUE, MAX_ABS_VALUE)


def mel_level_db(units: np.ndarray) -> np.ndarray:
    """The inverse of `mel_units` (inside its clipping range): normalised mel -> band level in dB."""
    m = np.asarray(units, np.float64)
    return (m + MAX_ABS_VALUE) / (2 * MAX_ABS_VALUE) * (-MIN_LEVEL_DB) + MIN_LEVEL_DB + REF_LEVEL_DB


def mel_chunk_starts(num_mel_frames: int, fps: float, num_video_frames: int) -> np.ndarray:
    """(num_video_frames,) int64 start column of each 16-column mel chunk, as Wav2Lip's inference loop:

        start = int(i * (80. / fps)); the first chunk that would run past the end is clamped to T - 16 and
        the loop stops.

    Wav2Lip then cuts the video to the number of chunks. Here the result always has one start per video frame:
    - more chunks than frames: the first `num_video_frames` are kept (exactly Wav2Lip's pairs);
    - fewer chunks than frames (the voice is shorter than the video): frame i >= the loop's count gets its
      natural start int(i * 80 / fps), past T - 16; `mel_chunks` reads the columns past the end as silence (-4),
      i.e. as if the voice went on silent.
    A mel shorter than 16 columns is treated as padded with silence to 16 columns (all loop starts are 0)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    n = max(0, int(num_video_frames))
    t = max(int(num_mel_frames), MEL_STEP)
    mult = 80.0 / fps
    upper = int(math.ceil((t - MEL_STEP + 1) / mult)) + 2
    i = np.arange(max(upper, 1), dtype=np.float64)
    nat = (i * mult).astype(np.int64)                      # int() of a positive float = truncation
    k = int(np.count_nonzero(nat + MEL_STEP <= t))         # starts that fit (a prefix: nat is non-decreasing)
    loop = np.concatenate([nat[:k], [t - MEL_STEP]]).astype(np.int64)
    if n <= loop.size:
        return loop[:n].copy()
    extra = (np.arange(loop.size, n, dtype=np.float64) * mult).astype(np.int64)
    return np.concatenate([loop, extra])


def mel_chunks(mel: np.ndarray, fps: float, num_video_frames: int, start: int = 0,
               stop: Optional[int] = None) -> np.ndarray:
    """(N, 80, 16) float32: the mel chunk of each video frame (frames `start`..`stop`-1, default all), Wav2Lip's
    pairing (see `mel_chunk_starts`; columns past the end of `mel` read as silence, -4)."""
    mel = np.asarray(mel)
    if mel.ndim != 2 or mel.shape[0] != NUM_MELS:
        raise ValueError(f"mel must be ({NUM_MELS}, T), got {mel.shape}")
    starts = mel_chunk_starts(mel.shape[1], fps, num_video_frames)[start:stop]
    if starts.size == 0:
        return np.zeros((0, NUM_MELS, MEL_STEP), np.float32)
    need = int(starts.max()) + MEL_STEP
    if need > mel.shape[1]:
        pad = np.full((NUM_MELS, need - mel.shape[1]), MEL_SILENCE, dtype=mel.dtype)
        mel = np.concatenate([mel, pad], axis=1)
    idx = starts[:, None] + np.arange(MEL_STEP)[None, :]          # (N, 16)
    return np.ascontiguousarray(mel[:, idx].transpose(1, 0, 2), dtype=np.float32)


# --------------------------------------------------------------------------------------------------------------
# voice activity
# --------------------------------------------------------------------------------------------------------------
def chunk_bounds(n: int, size: int) -> list:
    """[(start, stop)] cutting range(n) into chunks of `size`, the last one taking the rest (so no chunk but a
    whole short range is smaller than `size`: numpy's and scipy's FFTs of a single row round differently)."""
    starts = list(range(0, max(1, int(n) - int(size) + 1), int(size)))
    return list(zip(starts, starts[1:] + [int(n)]))


def band_levels_db(wav: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Speech-band (100-7800 Hz) power in dB re full scale, one value per 10 ms hop (centred frames).
    Computed LEVEL_CHUNK hops at a time from the samples they cover, so a long voice never has its padded copy and
    spectra in memory at once (each hop's level is the same whatever the chunking)."""
    x = np.asarray(wav).reshape(-1)
    if x.size == 0:
        return np.zeros(0)
    if not np.all(np.isfinite(x)):
        x = sanitize(x)                           # logs the repair once
    pad = VAD_N_FFT // 2
    n_hops = 1 + (x.size + 2 * pad - VAD_N_FFT) // VAD_HOP
    window = hann_window(VAD_N_FFT)
    freqs = np.fft.rfftfreq(VAD_N_FFT, 1.0 / sr)
    band = (freqs >= VAD_BAND_HZ[0]) & (freqs <= VAD_BAND_HZ[1])
    norm = 2.0 / (np.sum(window) ** 2)            # a full-scale sine in band -> about 0 dB
    out = np.empty(n_hops)
    for a, b in chunk_bounds(n_hops, LEVEL_CHUNK):
        # samples of hops a..b-1 in the zero-padded signal: [a*HOP, (b-1)*HOP + N_FFT), shifted back by `pad`
        lo, hi = a * VAD_HOP - pad, (b - 1) * VAD_HOP + VAD_N_FFT - pad
        seg = np.zeros(hi - lo)
        seg[max(0, -lo):seg.size - max(0, hi - x.size)] = x[max(0, lo):min(x.size, hi)]
        frames = np.lib.stride_tricks.sliding_window_view(seg, VAD_N_FFT)[::VAD_HOP]
        spec = np.fft.rfft(frames * window, axis=1)
        p = np.sum(np.abs(spec[:, band]) ** 2, axis=1) * norm
        out[a:b] = 10.0 * np.log10(p + 1e-12)
    return out


def _runs(mask: np.ndarray):
    """(start, stop) of each run of True."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def voice_activity(wav: np.ndarray, fps: float, num_frames: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """(num_frames,) bool: is the voice active during video frame i (time [i/fps, (i+1)/fps))?

    Energy-based and relative to the utterance itself, so the result does not depend on the recording level:
    the speech-band level of each 10 ms hop is compared with the utterance's noise floor (10th percentile) and
    peak (99th percentile): active when above floor + max(6 dB, 50% of peak - floor). A frame is active when
    any of its hops is. One-frame pauses are bridged, then activity is extended 1 frame before each
    onset and 2 frames (hangover) after each offset. Silence, stationary noise (peak - floor < 12 dB) and frames
    past the end of the audio are inactive."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    n = max(0, int(num_frames))
    out = np.zeros(n, dtype=bool)
    lv = band_levels_db(wav, sr)
    if n == 0 or lv.size == 0:
        return out
    floor = float(np.percentile(lv, VAD_FLOOR_PERCENTILE))
    peak = float(np.percentile(lv, VAD_PEAK_PERCENTILE))
    if peak < VAD_SILENCE_DBFS or peak - floor < VAD_MIN_RANGE_DB:
        return out
    thr = floor + max(VAD_MIN_SNR_DB, VAD_REL_THRESHOLD * (peak - floor))
    hop_active = lv > thr
    # hop h is centred at h * hop / sr seconds; video frame i spans [i/fps, (i+1)/fps)
    edges = np.ceil(np.arange(n + 1) / fps * sr / VAD_HOP).astype(np.int64)
    edges = np.clip(edges, 0, lv.size)
    csum = np.concatenate([[0], np.cumsum(hop_active)])
    out = (csum[edges[1:]] - csum[edges[:-1]]) > 0
    # bridge short pauses
    starts, stops = _runs(~out)
    for a, b in zip(starts, stops):
        if a > 0 and b < n and b - a < VAD_MIN_GAP_FRAMES:
            out[a:b] = True
    # onset and hangover
    res = out.copy()
    starts, stops = _runs(out)
    for a, b in zip(starts, stops):
        res[max(0, a - VAD_ONSET_FRAMES):min(n, b + VAD_HANGOVER_FRAMES)] = True
    return res
