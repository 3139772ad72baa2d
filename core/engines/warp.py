"""Landmark-driven piecewise-affine warping (the classic engine's geometry step) and canonical face alignment.

A warp is defined by control points `src` (where things are in the source image) and `dst` (where they must land)
plus a triangulation of the points; every destination pixel is mapped back through the affine map of the
triangle that covers it and sampled with `cv2.remap`. Boundary points on the working rectangle stay fixed, so
the warp fades to the identity at the ROI edge.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

from ..faces import geometry as geo
from . import kernels

# Lower-face control points: cheeks/jaw, nose (fixed anchors), and the whole mouth.
# Resampling filter of every warp: bicubic keeps the lips and teeth visibly sharper than bilinear after the
# two or three resamplings a retrieved texture goes through.
INTERP = cv2.INTER_CUBIC

WARP_POINTS = np.concatenate([np.arange(1, 16), np.arange(30, 36), np.arange(48, 68)])
UPPER_INNER = np.array([61, 62, 63])
LOWER_INNER = np.array([67, 66, 65])


def boundary_points(x0: float, y0: float, x1: float, y1: float, per_side: int = 3) -> np.ndarray:
    """Points round a rectangle: corners plus `per_side` - 1 evenly spaced points inside each side."""
    ts = np.linspace(0.0, 1.0, per_side + 1)[:-1]
    top = np.stack([x0 + ts * (x1 - x0), np.full_like(ts, y0)], 1)
    right = np.stack([np.full_like(ts, x1), y0 + ts * (y1 - y0)], 1)
    bottom = np.stack([x1 - ts * (x1 - x0), np.full_like(ts, y1)], 1)
    left = np.stack([np.full_like(ts, x0), y1 - ts * (y1 - y0)], 1)
    return np.concatenate([top, right, bottom, left]).astype(np.float64)


def topology_points(lm: np.ndarray) -> np.ndarray:
    """A copy of (68, 2) landmarks with the inner lips pulled apart a little, so the triangulation has
    triangles inside the mouth even when it is closed (they open when the target opens)."""
    p = np.asarray(lm, np.float64).copy()
    iod = float(geo.inter_ocular(p))
    gap = 0.06 * iod
    centre = (p[UPPER_INNER] + p[LOWER_INNER]) / 2.0
    down, _ = geo.eye_to_mouth(p)
    p[UPPER_INNER] = centre - down * gap / 2
    p[LOWER_INNER] = centre + down * gap / 2
    return p


def triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles (T, 3) int32 of (P, 2) points (duplicates tolerated)."""
    from scipy.spatial import Delaunay

    pts = np.asarray(points, np.float64)
    tri = Delaunay(pts, qhull_options="QJ")
    simp = tri.simplices.astype(np.int32)
    a, b, c = pts[simp[:, 0]], pts[simp[:, 1]], pts[simp[:, 2]]
    area = 0.5 * np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
    return simp[area > 1e-9]


def _affines(src: np.ndarray, dst: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Per triangle the (2, 3) affine that maps dst-triangle points to src-triangle points. (T, 2, 3)."""
    d = dst[tris]                       # (T, 3, 2)
    s = src[tris]
    a = np.concatenate([d, np.ones(d.shape[:2] + (1,))], axis=2)   # (T, 3, 3)
    det = np.linalg.det(a)
    ok = np.abs(det) > 1e-9
    out = np.zeros((len(tris), 2, 3))
    out[:, 0, 0] = 1.0
    out[:, 1, 1] = 1.0
    if ok.any():
        sol = np.linalg.solve(a[ok], s[ok])     # (k, 3, 2): [x y 1] @ sol = src
        out[ok] = sol.transpose(0, 2, 1)
    return out


def affines_many(srcs, dst: np.ndarray, tris: np.ndarray) -> list:
    """`_affines(src, dst, tris)` for each of several `srcs` sharing one `dst`: one LAPACK solve with all the
    right-hand sides (each column is solved on its own, bit-identical to one solve per source; tested)."""
    dst = np.asarray(dst, np.float64)
    d = dst[tris]
    a = np.concatenate([d, np.ones(d.shape[:2] + (1,))], axis=2)
    ok = np.abs(np.linalg.det(a)) > 1e-9
    out = np.zeros((len(srcs), len(tris), 2, 3))
    out[:, :, 0, 0] = 1.0
    out[:, :, 1, 1] = 1.0
    if ok.any() and len(srcs):
        s = np.concatenate([np.asarray(src, np.float64)[tris] for src in srcs], axis=2)    # (T, 3, 2 n)
        sol = np.linalg.solve(a[ok], s[ok])
        for k in range(len(srcs)):
            out[k][ok] = sol[:, :, 2 * k:2 * k + 2].transpose(0, 2, 1)
    return list(out)


def label_triangles(dst: np.ndarray, tris: np.ndarray, shape_hw: Tuple[int, int]) -> np.ndarray:
    """int32 (h, w) image: 1 + index of the destination triangle covering each pixel centre, 0 outside."""
    h, w = shape_hw
    lab = np.zeros((h, w), np.int32)
    tp = np.round(np.asarray(dst, np.float64)[tris] * 16.0).astype(np.int32)     # (T, 3, 2), 4 fractional bits
    # skip triangles entirely outside the image
    lo = tp.min(axis=1)
    hi = tp.max(axis=1)
    keep = np.flatnonzero((hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < w * 16) & (lo[:, 1] < h * 16))
    fill = cv2.fillConvexPoly
    for i in keep.tolist():
        fill(lab, tp[i], i + 1, 8, 4)
    return lab


_GRIDS: dict = {}


def _grid(h: int, w: int):
    g = _GRIDS.get((h, w))
    if g is None:
        g = (np.tile(np.arange(w, dtype=np.float32), h), np.repeat(np.arange(h, dtype=np.float32), w))
        if len(_GRIDS) > 64:
            _GRIDS.clear()
        _GRIDS[(h, w)] = g
    return g


def pwa_maps(src: np.ndarray, dst: np.ndarray, tris: np.ndarray, shape_hw: Tuple[int, int],
             labels: Optional[np.ndarray] = None, origin: Tuple[int, int] = (0, 0),
             affines: Optional[np.ndarray] = None):
    """Backward maps (map_x, map_y) float32 (h, w) for `cv2.remap`: the piecewise-affine warp that carries
    `src` points onto `dst` points (both in pixel coordinates of their own images; the output image has size
    `shape_hw` and lives in dst coordinates). Pixels outside every triangle map to themselves.
    `labels` (from `label_triangles(dst, tris, shape_hw)`) may be passed when several sources share one dst.
    `origin` (x, y): the maps of only the window of that size at that pixel of the output (`labels`: the whole
    output's, cut to the window). `affines`: `_affines(src, dst, tris)` when already computed (`affines_many`)."""
    h, w = shape_hw
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    aff = np.empty((len(tris) + 1, 6), np.float32)
    aff[0] = (1, 0, 0, 0, 1, 0)                     # label 0 (outside): identity
    aff[1:] = (_affines(src, dst, tris) if affines is None else affines).reshape(-1, 6)
    if labels is None:
        if origin != (0, 0):    # rasterising a smaller image clips triangles differently at its edge
            raise ValueError("pwa_maps: a window needs the labels of the whole output, cut to the window")
        labels = label_triangles(dst, tris, (h, w))
    return kernels.affine_maps(aff, labels, origin, _grid(h, w))


def pwa_maps_coarse(src: np.ndarray, dst: np.ndarray, tris: np.ndarray, shape_hw: Tuple[int, int], step: int):
    """`pwa_maps` evaluated on a grid `step` times coarser and upsampled bilinearly (the maps are piecewise
    linear, so the error is sub-pixel near triangle edges only). For large regions (HD faces)."""
    if step <= 1:
        return pwa_maps(src, dst, tris, shape_hw)
    h, w = shape_hw
    hc, wc = -(-h // step), -(-w // step)
    # coarse pixel u stands for full-res x = u * step + (step - 1) / 2 (cv2.resize's pixel-centre convention)
    off = (step - 1) / 2.0
    dst = np.asarray(dst, np.float64)
    lab = label_triangles((dst - off) / step, tris, (hc, wc))
    aff = np.empty((len(tris) + 1, 6), np.float32)
    aff[0] = (1, 0, 0, 0, 1, 0)
    aff[1:] = _affines(np.asarray(src, np.float64), dst, tris).reshape(-1, 6)
    xs, ys = _grid(hc, wc)
    xs = xs * step + off
    ys = ys * step + off
    mx, my = kernels.apply_affines(aff, lab.ravel(), xs, ys)
    mx, my = mx.reshape(hc, wc), my.reshape(hc, wc)
    size = (wc * step, hc * step)
    mx = cv2.resize(mx, size, interpolation=cv2.INTER_LINEAR)[:h, :w]
    my = cv2.resize(my, size, interpolation=cv2.INTER_LINEAR)[:h, :w]
    return np.ascontiguousarray(mx), np.ascontiguousarray(my)


def warp_image(img: np.ndarray, src: np.ndarray, dst: np.ndarray, tris: np.ndarray,
               out_hw: Optional[Tuple[int, int]] = None, interpolation: Optional[int] = None,
               labels: Optional[np.ndarray] = None, origin: Tuple[int, int] = (0, 0),
               affines: Optional[np.ndarray] = None) -> np.ndarray:
    """Piecewise-affine warp of `img` so that `src` points move to `dst` points (same pixel frame); `origin`: only
    the `out_hw` window at that pixel of the output (see `pwa_maps`)."""
    out_hw = out_hw or img.shape[:2]
    mx, my = pwa_maps(src, dst, tris, out_hw, labels, origin, affines)
    return cv2.remap(img, mx, my, INTERP if interpolation is None else interpolation,
                     borderMode=cv2.BORDER_REPLICATE)


# ---------------------------------------------------------------------------------------------------------------
# Canonical alignment (similarity on the stable upper-face points)

def eye_normalized(lm: np.ndarray) -> np.ndarray:
    """(..., 68, 2) landmarks with the eye midpoint at 0, the eyes on the x axis and IOD = 1."""
    lm = np.asarray(lm, np.float64)
    r, l = geo.eye_centres(lm)
    mid = (r + l) / 2.0
    v = l - r
    iod = np.linalg.norm(v, axis=-1)
    c, s = v[..., 0] / iod, v[..., 1] / iod
    x = lm[..., 0] - mid[..., None, 0]
    y = lm[..., 1] - mid[..., None, 1]
    xr = (c[..., None] * x + s[..., None] * y) / iod[..., None]
    yr = (-s[..., None] * x + c[..., None] * y) / iod[..., None]
    return np.stack([xr, yr], axis=-1)


def stable_template(landmarks: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(68, 2) median eye-normalised face of a clip: the canonical space frames are aligned to."""
    pres = np.asarray(present, bool) & np.all(np.isfinite(landmarks), axis=(1, 2))
    if not pres.any():
        raise ValueError("no frame with landmarks")
    return np.median(eye_normalized(landmarks[pres]), axis=0)


@dataclass
class Similarity:
    """x_canon = s * R @ x_frame + t, and back."""

    s: float
    r: np.ndarray
    t: np.ndarray

    def fwd(self, pts: np.ndarray) -> np.ndarray:
        return (self.s * np.asarray(pts, np.float64) @ self.r.T + self.t)

    def inv(self, pts: np.ndarray) -> np.ndarray:
        return ((np.asarray(pts, np.float64) - self.t) @ self.r) / self.s

    def matrix(self) -> np.ndarray:
        """(2, 3) forward matrix."""
        return np.concatenate([self.s * self.r, self.t[:, None]], axis=1)


def align_to(lm: np.ndarray, template: np.ndarray) -> Similarity:
    s, r, t = geo.similarity_transform(np.asarray(lm, np.float64)[geo.STABLE], template[geo.STABLE])
    return Similarity(float(s), np.asarray(r, np.float64), np.asarray(t, np.float64))


@dataclass(frozen=True)
class CanonicalCrop:
    """A fixed window of canonical space (IOD units, eye midpoint at 0) sampled at `ppi` pixels per IOD."""

    x0: float = -1.35
    y0: float = 0.45
    x1: float = 1.35
    y1: float = 2.45
    ppi: float = 40.0

    @property
    def size(self) -> Tuple[int, int]:
        """(width, height) in pixels."""
        return int(round((self.x1 - self.x0) * self.ppi)), int(round((self.y1 - self.y0) * self.ppi))

    def to_px(self, canon: np.ndarray) -> np.ndarray:
        return (np.asarray(canon, np.float64) - [self.x0, self.y0]) * self.ppi

    def to_canon(self, px: np.ndarray) -> np.ndarray:
        return np.asarray(px, np.float64) / self.ppi + [self.x0, self.y0]

    def frame_to_crop(self, sim: Similarity) -> np.ndarray:
        """(2, 3) affine: frame pixel -> crop pixel."""
        m = sim.matrix() * self.ppi
        m[:, 2] -= np.array([self.x0, self.y0]) * self.ppi
        return m

    def extract(self, frame: np.ndarray, sim: Similarity) -> np.ndarray:
        """The canonical crop of `frame` (anti-aliased when the frame is much sharper than `ppi`)."""
        w, h = self.size
        m = self.frame_to_crop(sim)
        down = (1.0 / sim.s) / self.ppi     # frame pixels per crop pixel
        if down > 1.5:
            # blur only the frame region the crop samples from
            corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64)
            inv = cv2.invertAffineTransform(m)
            fc = corners @ inv[:, :2].T + inv[:, 2]
            fh, fw = frame.shape[:2]
            pad = int(np.ceil(2 * down)) + 2
            x0, y0 = max(0, int(fc[:, 0].min()) - pad), max(0, int(fc[:, 1].min()) - pad)
            x1, y1 = min(fw, int(fc[:, 0].max()) + pad), min(fh, int(fc[:, 1].max()) + pad)
            if x1 > x0 and y1 > y0:
                sub = cv2.GaussianBlur(frame[y0:y1, x0:x1], (0, 0), 0.45 * down)
                m = m.copy()
                m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
                return cv2.warpAffine(sub, m, (w, h), flags=INTERP, borderMode=cv2.BORDER_REPLICATE)
        return cv2.warpAffine(frame, m, (w, h), flags=INTERP, borderMode=cv2.BORDER_REPLICATE)
