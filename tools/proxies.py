"""Real-footage proxies built from the shared GRID clips (evaluation only; nothing here is trained on).

    python -m tools.proxies OUT_DIR [--names a b ...]     # writes OUT_DIR/NAME_hd.mp4 for grid_others clips

Video: upscaled to 1080 px high (letterboxed 1920x1080), slow head motion (rotation up to 3 degrees and a
drifting zoom/pan), 29.97 fps, re-encoded with x264 at CRF 30 (visible compression). Voice: `degrade_voice` adds
room reverberation (synthetic exponential-decay impulse response, RT60 0.45 s), a band-limited EQ tilt, a
gain change and pink-ish noise at 12 dB SNR.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROXY_FPS = "30000/1001"
from core.audio import SAMPLE_RATE  # noqa: E402


def proxy_video_args(src: Path, dst: Path) -> list[str]:
    """ffmpeg arguments for the HD head-motion proxy of one clip."""
    motion = ("rotate=a='0.05*sin(2*PI*t/2.3)':c=black,"
              "scale=iw*(1.06+0.04*sin(2*PI*t/3.1)):-2:eval=frame,"
              "crop=iw/1.06:ih/1.06:(iw-iw/1.06)/2*(1+0.5*sin(2*PI*t/1.7)):(ih-ih/1.06)/2")
    vf = (f"{motion},scale=-2:1080:flags=bicubic,pad=1920:1080:(ow-iw)/2:(oh-ih)/2,setsar=1,"
          f"fps={PROXY_FPS}")
    return ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-vf", vf, "-c:v", "libx264", "-crf", "30",
            "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-ar", "44100", str(dst)]


def encoded_once(args_for, src: Path, dst: Path) -> Path:
    """`dst` made from `src` by the ffmpeg arguments `args_for(src, tmp)` unless it exists (written whole or not at
    all)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        tmp = dst.with_name(dst.stem + ".tmp" + dst.suffix)
        subprocess.run(args_for(src, tmp), check=True)
        tmp.replace(dst)
    return dst


def make_proxy(src: Path, dst: Path) -> Path:
    return encoded_once(proxy_video_args, src, dst)


def mpeg1_args(src: Path, dst: Path) -> list[str]:
    """ffmpeg arguments for an MPEG-1 copy of a clip as the grid_others files are coded (360x288 mpeg1video at about
    850 kb/s, an I-frame every 12 frames, no B-frames; MPEG audio): the codec's blocks and I-frame flicker on
    clips that may be used for selection (s1_val), where the originals are H.264."""
    return ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-vf", "scale=360:288", "-c:v", "mpeg1video",
            "-b:v", "850k", "-g", "12", "-bf", "0", "-c:a", "mp2", "-b:a", "224k", "-f", "mpeg", str(dst)]


def make_mpeg1(src: Path, dst: Path) -> Path:
    return encoded_once(mpeg1_args, src, dst)


def room_impulse(rt60: float = 0.45, sr: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """Synthetic room impulse response: direct path plus exponentially decaying noise (60 dB down at rt60)."""
    rng = np.random.default_rng(seed)
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60) * 0.35
    tail[: int(0.004 * sr)] = 0.0                      # first reflections arrive after ~4 ms
    tail[0] = 1.0
    return tail / np.sqrt((tail ** 2).sum())


def degrade_voice(wav: np.ndarray, seed: int = 0, snr_db: float = 12.0, rt60: float = 0.45) -> np.ndarray:
    """Reverberant, EQ-tilted, re-levelled, noisy copy of a 16 kHz voice (same length)."""
    from scipy.signal import fftconvolve, lfilter

    rng = np.random.default_rng(seed)
    x = np.asarray(wav, np.float64)
    y = fftconvolve(x, room_impulse(rt60, seed=seed))[: len(x)]
    y = lfilter([1.0, -0.6], [1.0], y)                 # high-frequency tilt (small speaker / phone EQ)
    noise = lfilter([1.0], [1.0, -0.9], rng.standard_normal(len(x)))   # pink-ish
    return noise_and_level(y, noise, snr_db, rng.uniform(-12, 6))


def noise_and_level(y: np.ndarray, noise: np.ndarray, snr_db: float, gain_db: float) -> np.ndarray:
    """`noise` added to the voice `y` at `snr_db`, the sum re-levelled by `gain_db` and kept below clipping
    (float32)."""
    p_sig = np.mean(y ** 2) + 1e-12
    noise = noise * np.sqrt(p_sig / (np.mean(noise ** 2) + 1e-12) / 10 ** (snr_db / 10))
    y = (y + noise) * 10 ** (gain_db / 20)
    peak = np.abs(y).max()
    if peak > 0.99:
        y *= 0.99 / peak
    return y.astype(np.float32)


def random_voice_chain(wav: np.ndarray, seed: int) -> np.ndarray:
    """Training augmentation: the voice through a random recording chain (clean rooms to reverberant ones,
    5-30 dB SNR). Evaluation uses `degrade_voice`'s fixed settings instead."""
    rng = np.random.default_rng(seed)
    return degrade_voice(wav, seed=seed, snr_db=float(rng.uniform(5, 30)), rt60=float(rng.uniform(0.1, 0.8)))


def main():
    from tools import grid_splits

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--names", nargs="*", default=None)
    a = ap.parse_args()
    for name in a.names or grid_splits.others_names():
        print(make_proxy(grid_splits.video_path(name), a.out / f"{name}_hd.mp4"))


if __name__ == "__main__":
    main()
