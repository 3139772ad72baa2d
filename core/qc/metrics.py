"""Per-frame image measures of a dub against its original (the rules that turn them into flags: `core.qc.rules`).

All measures take crops made by `core.qc.regions` (the face at `CANON_IOD` scale), grey levels 0-255 float32.

- `ssim(a, b, where)`: scikit-image's SSIM (Gaussian window, sigma 1.5, as Wang et al.; computed with OpenCV
  filters), averaged over `where`.
- `psnr_outside(orig, dub, mask, roi)`: PSNR of the whole frame outside the lower-face mask (dB; inf when equal).
- `sharpness(g, where)`: gradient energy (Tenengrad: mean squared Sobel gradient) over the lower-face mask. It
  is judged as a ratio, dub over original at the same frame, over the region the dub replaces (lower face, chin,
  any beard): what blur removes. Measured against the alternatives on made blurs (sigma 0.04 IOD) and real
  dubs: the ratio of two difference-of-Gaussians bands (a CPBD-like "how sharp are the edges there are",
  content-free) separated a blurred lower face from a clean copy by 0.10 at best (0.85 against 0.95), the
  gradient-energy ratio by 0.45 (0.50 against 0.95), and over the whole lower face the content of a real dub
  (another mouth shape) moves it less than blur does (real dubs: 10th percentile 0.69-0.95). CPBD itself (seed
  001's measure) needs long edges to measure widths on, which a 30-60 px mouth does not have.
- `new_edges(orig, dub)`: per pixel, how much edge the dub has that the original has nowhere near, after the
  original is warped onto the dub by optical flow (a moved lip or chin is motion, not a seam).
- `second_difference(a, b, c)`: mean |a - 2b + c|: how much three consecutive frames zig-zag.
- `lip_opening(...)`: the inner-lip opening of a dub frame in IOD units, from dlib's 68-point predictor fitted in
  the track's box (no face detection).
"""
from __future__ import annotations

import math
from typing import Optional

import cv2
import numpy as np

from ..thread_limit import OneThread

EPS = 1e-6

# OpenCV's own thread pool off while the measures run (process-wide: OpenCV has one pool), restored after the last
# overlapping user (core.thread_limit). The measures work on ~150 px crops, where the pool only costs: with it, a
# worker thread spent 1.3 ms CPU a frame of a 720p check and the measures took no less time (measured with
# tools/bench_qc.py: the check's main thread 6.0 ms a frame either way); the two decoders and the measures already
# fill the cores.
opencv_single_threaded = OneThread(cv2.getNumThreads, cv2.setNumThreads)


def gray(img: np.ndarray) -> np.ndarray:
    """float32 grey levels of a BGR or (already) grey image."""
    if img.ndim == 2:
        return img.astype(np.float32)
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)


def blur(g: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(g, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


SSIM_SIGMA = 1.5          # px: Wang et al.'s Gaussian window, as scikit-image's gaussian_weights=True
SSIM_KSIZE = 11          # scikit-image truncates that Gaussian at 3.5 sigma: an 11 px window
SSIM_C1, SSIM_C2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2


def ssim_map(a: np.ndarray, b: np.ndarray) -> Optional[np.ndarray]:
    """Per-pixel SSIM of two grey images (0-255) exactly as scikit-image's `structural_similarity(...,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True)` computes it (reflected borders),
    with OpenCV's separable filters (5x faster on a face crop); None when too small to measure."""
    if min(a.shape[:2]) < 7:
        return None
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)

    def f(x):
        return cv2.GaussianBlur(x, (SSIM_KSIZE, SSIM_KSIZE), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    ua, ub = f(a), f(b)
    uaa, ubb, uab = ua * ua, ub * ub, ua * ub
    va, vb, vab = f(a * a) - uaa, f(b * b) - ubb, f(a * b) - uab
    return ((2 * uab + SSIM_C1) * (2 * vab + SSIM_C2)) / ((uaa + ubb + SSIM_C1) * (va + vb + SSIM_C2))


def ssim(a: np.ndarray, b: np.ndarray, where: Optional[np.ndarray] = None) -> float:
    """Mean SSIM of two grey images (0-255) over the pixels `where` (all when None); NaN when too small."""
    return mean_over(ssim_map(a, b), where)


def mean_over(full: Optional[np.ndarray], where: Optional[np.ndarray] = None) -> float:
    if full is None:
        return math.nan
    if where is None:
        return float(full.mean())
    if not np.any(where):
        return math.nan
    return float(full[where].mean())


def psnr_outside(orig: np.ndarray, dub: np.ndarray, mask: np.ndarray, roi) -> tuple:
    """(sum of squared errors, number of samples) of two frames (grey or BGR) outside the mask (uint8 `mask` > 0
    over `roi` is left out). Summed over frames, 10 log10(255^2 n / sse) is the clip's PSNR outside the mask."""
    sse = float(cv2.norm(orig, dub, cv2.NORM_L2SQR))
    n = orig.size
    x0, y0, x1, y1 = roi
    if mask.size and x1 > x0 and y1 > y0:
        sse -= float(cv2.norm(orig[y0:y1, x0:x1], dub[y0:y1, x0:x1], cv2.NORM_L2SQR, mask))
        n -= int(cv2.countNonZero(mask)) * (1 if orig.ndim == 2 else orig.shape[2])
    return max(sse, 0.0), max(n, 0)


def psnr(sse: float, n: int) -> float:
    if n <= 0:
        return math.nan
    if sse <= 0:
        return math.inf
    return float(10.0 * math.log10(255.0 ** 2 * n / sse))


def sharpness(g: np.ndarray, where: Optional[np.ndarray] = None) -> float:
    """Gradient energy (mean squared Sobel gradient, grey levels^2 / px^2, after a sigma-0.5 blur against coding
    noise) of a grey crop over `where` (all when None); NaN when there is nothing to measure."""
    if min(g.shape[:2]) < 5:
        return math.nan
    e = gradient(blur(g, 0.5)) ** 2
    if where is not None:
        if not np.any(where):
            return math.nan
        e = e[where]
    return float(e.mean())


def gradient(g: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    return cv2.magnitude(gx, gy) / 8.0      # grey levels per pixel


_FLOW = None


def motion_compensated(orig: np.ndarray, dub: np.ndarray) -> np.ndarray:
    """The original warped onto the dub by dense optical flow (OpenCV's DIS, fast preset): what the dub would
    look like if it only moved the original's content (a lip, the chin, a fold)."""
    global _FLOW
    if _FLOW is None:
        _FLOW = cv2.DISOpticalFlow_create(cv2.DISOpticalFlow_PRESET_FAST)
    a = np.clip(orig, 0, 255).astype(np.uint8)
    b = np.clip(dub, 0, 255).astype(np.uint8)
    flow = _FLOW.calc(b, a, None)                       # dub(x) ~ orig(x + flow(x))
    h, w = orig.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(orig, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


MEDIAN_STEP = 2   # px: radius of one median pass (5x5: OpenCV's larger medians are 12x slower on a face crop)


def median(g: np.ndarray, radius: int) -> np.ndarray:
    """Median smoothing of grey levels reaching about `radius` px: ceil(radius / 2) passes of a 5x5 median
    (rounded to whole levels; values outside 0-255 are clipped: add an offset first). Like one wide median it
    keeps a step and removes lines thinner than the window."""
    u8 = np.clip(g + 0.5, 0, 255).astype(np.uint8)
    for _ in range(-(-int(radius) // MEDIAN_STEP)):
        u8 = cv2.medianBlur(u8, 2 * MEDIAN_STEP + 1)
    return u8.astype(np.float32)


def new_edges(orig: np.ndarray, dub: np.ndarray, reach: int = 2, compensate: bool = True, smooth: int = 0,
              explained: float = 1.0) -> np.ndarray:
    """Per pixel: the edge strength (grey levels / px, after a sigma-1 blur) of dub - orig, less `explained` x
    the original's own edge strength anywhere within `reach` px; with `compensate`, the original is first warped
    onto the dub (`motion_compensated`). Positive where the dub shows an edge that no motion of the original
    explains (the border of a pasted patch, a brightness step), about 0 where the dub only moved what was there.
    `smooth` > 0: the difference and the original are median-filtered over (2 smooth + 1) px first: a brightness
    step keeps its edge through a median, the thin +- traces that hair or a fine edge a pixel off leave in the
    difference do not, and thin strands of the original stop vetoing a step that crosses them."""
    orig, dub = np.asarray(orig, np.float32), np.asarray(dub, np.float32)
    if compensate:
        orig = motion_compensated(orig, dub)
    diff = dub - orig
    if smooth > 0:
        diff = median(diff + 128.0, smooth) - 128.0
        orig = median(orig, smooth)
    ed = gradient(blur(diff, 1.0))
    eo = gradient(blur(orig, 1.0))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    return ed - explained * cv2.dilate(eo, k)


def second_difference(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Mean |a - 2b + c| of three consecutive grey crops (blurred with sigma 1 against coding noise)."""
    return float(np.abs(blur(a, 1.0) - 2.0 * blur(b, 1.0) + blur(c, 1.0)).mean())


_PREDICTOR = None


def _predictor():
    global _PREDICTOR
    if _PREDICTOR is None:
        import dlib

        from ..faces.detect import dlib_predictor_path

        _PREDICTOR = dlib.shape_predictor(str(dlib_predictor_path()))
    return _PREDICTOR


FIT_BOX = 160.0   # px: a face box is fitted at most this wide (dlib's predictor works at any scale)


def fit_landmarks(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """dlib's 68 points fitted in the track's face `box` (frame coordinates) of a grey or BGR frame; only the box (grown
    by a quarter, scaled to at most FIT_BOX px wide) is converted to grey."""
    import dlib

    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    gw, gh = 0.25 * (x1 - x0), 0.25 * (y1 - y0)
    cx0, cy0 = max(0, int(x0 - gw)), max(0, int(y0 - gh))
    cx1, cy1 = min(w, int(x1 + gw) + 1), min(h, int(y1 + gh) + 1)
    c = frame[cy0:cy1, cx0:cx1]
    s = min(1.0, FIT_BOX / max(x1 - x0, 1.0))
    if s < 1.0:
        c = cv2.resize(c, (max(1, int(round(c.shape[1] * s))), max(1, int(round(c.shape[0] * s)))),
                       interpolation=cv2.INTER_AREA)
    g = np.ascontiguousarray(c) if c.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(c), cv2.COLOR_BGR2GRAY)
    rect = dlib.rectangle(int(round((x0 - cx0) * s)), int(round((y0 - cy0) * s)), int(round((x1 - cx0) * s)),
                          int(round((y1 - cy0) * s)))
    shape = _predictor()(g, rect)
    return np.array([[p.x / s + cx0, p.y / s + cy0] for p in shape.parts()], np.float32)


def lip_opening(frame: np.ndarray, box: np.ndarray) -> float:
    """Inner-lip opening (IOD units) of the face in the track's `box` of a BGR frame (no face detection)."""
    from ..faces.geometry import inter_ocular, mouth_opening

    lm = fit_landmarks(frame, box)
    return float(mouth_opening(lm)) / max(float(inter_ocular(lm)), EPS)
