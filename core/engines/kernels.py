"""Per-pixel kernels of the classic engine's render, compiled with numba (one pass over the pixels, no
temporaries); the plain numpy formulas are the reference and what `LIPDUB_NUMBA=0` runs. Both give bit-identical
results: the same float32 operations in the same order (numba does not contract a * b + c into a fused
multiply-add unless asked to), tested against each other in tests/core/test_kernels.py.

numba compiles a kernel on its first call (~1 s each) and keeps the machine code in its cache folder next to this
file, or in the user's cache when that is not writable; a frozen app without the source files compiles in every
process (cache off)."""
from __future__ import annotations

import os
import threading

import numpy as np

_lock = threading.Lock()
_jit = {}          # name -> compiled function, or None when numba is off


def numba_enabled() -> bool:
    return os.environ.get("LIPDUB_NUMBA", "1") != "0"


def _compile(name: str):
    """The numba-compiled kernel `name` (a function of this module named _nb_<name>), or None when turned off."""
    if name in _jit:
        return _jit[name]
    with _lock:
        if name not in _jit:
            fn = None
            if numba_enabled():
                import numba

                py = globals()["_nb_" + name]
                try:
                    fn = numba.njit(cache=True, nogil=True)(py)
                except RuntimeError:        # no cache locator (e.g. a frozen app without source files)
                    fn = numba.njit(cache=False, nogil=True)(py)
            _jit[name] = fn
    return _jit[name]


# ---------------------------------------------------------------------------------------------------------------
# piecewise-affine maps: (map_x, map_y) = aff[labels[p]] applied to (x, y) of pixel p

def _nb_affine_maps(aff, labels, x0, y0):
    h, w = labels.shape
    mx = np.empty((h, w), np.float32)
    my = np.empty((h, w), np.float32)
    for i in range(h):
        y = np.float32(i + y0)
        for j in range(w):
            x = np.float32(j + x0)
            k = labels[i, j]
            mx[i, j] = (aff[k, 0] * x + aff[k, 1] * y) + aff[k, 2]
            my[i, j] = (aff[k, 3] * x + aff[k, 4] * y) + aff[k, 5]
    return mx, my


def affine_maps(aff: np.ndarray, labels: np.ndarray, origin=(0, 0), grid=None):
    """float32 (h, w) maps: each pixel (x + origin x, y + origin y) through the float32 affine row
    aff[labels[y, x]] = (a, b, c, d, e, f): x' = a x + b y + c, y' = d x + e y + f (each product and sum rounded
    to float32, left to right). `grid`: the plain formula's (xs, ys) pixel coordinates, when they are at hand."""
    fn = _compile("affine_maps")
    aff = np.ascontiguousarray(aff, np.float32)
    if fn is not None:
        # contiguous labels: the render passes slices, and numba's loop over a non-contiguous array (a second
        # specialisation, compiled again) does not vectorise
        return fn(aff, np.ascontiguousarray(labels, np.int32), int(origin[0]), int(origin[1]))
    h, w = labels.shape
    if grid is None:
        xs = np.tile(np.arange(w, dtype=np.float32), h)
        ys = np.repeat(np.arange(h, dtype=np.float32), w)
    else:
        xs, ys = grid
    if origin != (0, 0):                             # exact: small integers in float32
        xs, ys = xs + np.float32(origin[0]), ys + np.float32(origin[1])
    mx, my = apply_affines(aff, labels.ravel(), xs, ys)
    return mx.reshape(h, w), my.reshape(h, w)


def apply_affines(aff: np.ndarray, labels: np.ndarray, xs: np.ndarray, ys: np.ndarray):
    """(map_x, map_y) = the affine `aff[labels[p]]` (each row a, b, c, d, e, f) applied to (xs[p], ys[p]), the
    plain numpy formula. Each coefficient is gathered into its own contiguous array (twice as fast as gathering
    whole rows)."""
    a, b, c, d, e, f = (np.take(row, labels) for row in np.ascontiguousarray(aff.T))
    mx = a * xs
    mx += b * ys
    mx += c
    my = d * xs
    my += e * ys
    my += f
    return mx, my


# ---------------------------------------------------------------------------------------------------------------
# weighted median of a few images

def _nb_weighted_median(imgs, w, half, big):
    # the pixel loops innermost (LLVM vectorises them): per candidate j its cumulative weight, then the minimum
    m, n = imgs.shape
    out = np.full(n, big, imgs.dtype)
    cum = np.empty(n, np.float32)
    zero = np.float32(0.0)
    for j in range(m):
        for p in range(n):
            cum[p] = zero
        for i in range(m):
            wi = w[i]
            if i == j:
                for p in range(n):
                    cum[p] += wi
            elif i < j:
                for p in range(n):
                    cum[p] += wi if imgs[i, p] <= imgs[j, p] else zero
            else:
                for p in range(n):
                    cum[p] += wi if imgs[i, p] < imgs[j, p] else zero
        for p in range(n):
            v = imgs[j, p] if cum[p] >= half else big
            out[p] = min(out[p], v)
    return out


def weighted_median_u8(imgs: np.ndarray, w: np.ndarray, half: np.float32):
    """The numba weighted median of (m, ...) uint8 images (see `retrieval.weighted_median`), or None when numba is off.
    `half`: the float32 threshold the cumulative weight must reach."""
    fn = _compile("weighted_median")
    if fn is None:
        return None
    m = len(imgs)
    flat = np.ascontiguousarray(imgs).reshape(m, -1)
    return fn(flat, np.ascontiguousarray(w, np.float32), np.float32(half), np.uint8(255)).reshape(imgs.shape[1:])


# ---------------------------------------------------------------------------------------------------------------
# alpha blend of two uint8 images

def _nb_blend(base, over, alpha):
    n = alpha.size
    b = base.reshape(-1)
    o = over.reshape(-1)
    a = alpha.reshape(-1)
    out = np.empty(n * 3, np.uint8)
    for p in range(n):
        ap = a[p]
        bp = np.float32(1.0) - ap
        for k in range(3):
            q = 3 * p + k
            v = (np.float32(b[q]) * bp + np.float32(o[q]) * ap) + np.float32(0.5)
            out[q] = np.int32(min(max(v, np.float32(0.0)), np.float32(255.0)))
    return out.reshape(base.shape)


def blend(base: np.ndarray, over: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 base * (1 - alpha) + over * alpha, rounded half up (float32 arithmetic). base/over (h, w, 3) uint8,
    alpha (h, w) float32."""
    fn = _compile("blend")
    if fn is not None and base.ndim == 3 and base.shape[2] == 3 and over.shape == base.shape:
        return fn(np.ascontiguousarray(base), np.ascontiguousarray(over), np.ascontiguousarray(alpha, np.float32))
    am = np.asarray(alpha, np.float32)[..., None]
    return np.clip(base.astype(np.float32) * (1 - am) + over.astype(np.float32) * am + 0.5, 0, 255).astype(np.uint8)
