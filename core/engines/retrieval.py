"""Mouth-texture retrieval for the classic engine ("Synthesizing Obama", Suwajanakorn et al. 2017, sec. 4).

The clip's own frames form a texture library: canonical-aligned lower-face crops and their canonical mouth shapes.
For each output frame the k library frames whose mouth best matches the desired shape are candidates; a Viterbi
pass over the candidates trades shape error against temporal coherence (consecutive source frames are free,
jumps cost in proportion to how different the jump target looks from the natural next frame); the chosen frame
and its nearest rivals are then blended by a per-pixel weighted median, which keeps the texture stable.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple, Union

import cv2
import numpy as np

from .warp import CanonicalCrop

MOUTH_PTS = np.arange(48, 68)
JAW_PTS = np.arange(4, 13)
GAP_PAIRS = np.array([[61, 67], [62, 66], [63, 65]])
POINT_WEIGHT = 1.0
JAW_WEIGHT = 0.5
GAP_WEIGHT = 2.0
THUMB_SIZE = (16, 12)   # (w, h) of the grey mouth thumbnails used for the jump cost
# a packed library's crops (TextureLibrary.packed): measured on 1080p face crops (259 x 192), fast deflate with
# run-length matches keeps 0.28 of the bytes, 3.5 ms to pack and 1.35 ms to unpack a crop (level 1 as is: 0.35)
PNG_SETTINGS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]


def shape_features(canon: np.ndarray) -> np.ndarray:
    """(..., 68, 2) canonical landmarks (IOD units) -> (..., D) vectors whose Euclidean distance is a weighted
    RMS landmark error (mouth points, lower jaw, and the inner-lip gaps which decide how open the mouth looks)."""
    c = np.asarray(canon, np.float64)
    mouth = c[..., MOUTH_PTS, :] * POINT_WEIGHT
    jaw = c[..., JAW_PTS, :] * JAW_WEIGHT
    gaps = (c[..., GAP_PAIRS[:, 1], :] - c[..., GAP_PAIRS[:, 0], :]) * GAP_WEIGHT
    total = len(MOUTH_PTS) * POINT_WEIGHT ** 2 + len(JAW_PTS) * JAW_WEIGHT ** 2 + len(GAP_PAIRS) * GAP_WEIGHT ** 2
    f = np.concatenate([mouth.reshape(c.shape[:-2] + (-1,)), jaw.reshape(c.shape[:-2] + (-1,)),
                        gaps.reshape(c.shape[:-2] + (-1,))], axis=-1)
    return (f / np.sqrt(total)).astype(np.float32)


@dataclass
class TextureLibrary:
    """Aligned lower-face crops of one clip, filled in one streaming pass (never whole frames).

    `packed`: each crop is kept as a lossless PNG instead (a long 1080p clip's library: 0.28 of its 300 MB, for
    ~1.4 ms of unpacking per candidate crop); `image(row)` gives the same pixels either way."""

    crop: CanonicalCrop
    capacity: int
    packed: bool = False
    frames: np.ndarray = field(init=False)      # (L,) source frame index of each row
    images: Optional[np.ndarray] = field(init=False)   # (L, h, w, 3) uint8 (None when packed)
    canon: np.ndarray = field(init=False)       # (L, 68, 2) canonical landmarks (IOD units)
    thumbs: np.ndarray = field(init=False)      # (L, tw*th) float32
    size: int = 0

    def __post_init__(self):
        w, h = self.crop.size
        self.frames = np.zeros(self.capacity, np.int64)
        self.images = None if self.packed else np.zeros((self.capacity, h, w, 3), np.uint8)
        self._pngs: list = []
        self.canon = np.zeros((self.capacity, 68, 2), np.float32)
        self.thumbs = np.zeros((self.capacity, THUMB_SIZE[0] * THUMB_SIZE[1]), np.float32)
        self._row_of = {}

    def add(self, frame_index: int, image: np.ndarray, canon: np.ndarray) -> None:
        if self.size >= self.capacity:
            raise IndexError("texture library is full")
        i = self.size
        self.frames[i] = frame_index
        if self.packed:
            ok, png = cv2.imencode(".png", np.ascontiguousarray(image, np.uint8), PNG_SETTINGS)
            if not ok:
                raise RuntimeError("OpenCV could not encode a texture crop as PNG")
            self._pngs.append(png)
        else:
            self.images[i] = image
        self.canon[i] = canon
        self.thumbs[i] = mouth_thumbnail(image, canon, self.crop)
        self._row_of[int(frame_index)] = i
        self.size += 1

    def image(self, row: int) -> np.ndarray:
        """(h, w, 3) uint8 crop of library row `row`."""
        if not self.packed:
            return self.images[row]
        return cv2.imdecode(self._pngs[row], cv2.IMREAD_UNCHANGED)

    def row_of(self, frame_index: int) -> int:
        """Library row of a source frame, -1 if it is not in the library."""
        return self._row_of.get(int(frame_index), -1)

    def finish(self) -> None:
        """Trim the preallocated arrays to the rows actually filled."""
        n = self.size
        self.frames = self.frames[:n]
        if not self.packed:
            self.images = self.images[:n]
        self.canon = self.canon[:n]
        self.thumbs = self.thumbs[:n]
        self.capacity = n
        nxt = np.array([self.row_of(f + 1) for f in self.frames], np.int64)
        self.next_row = np.where(nxt >= 0, nxt, np.arange(n))
        self.features = shape_features(self.canon)
        # scale of the jump cost: a typical distance between two unrelated library frames
        if n >= 2:
            rng = np.random.default_rng(0)
            a = rng.integers(0, n, 256)
            b = rng.integers(0, n, 256)
            d = np.linalg.norm(self.thumbs[a] - self.thumbs[b], axis=1)
            self.thumb_scale = float(max(np.median(d[a != b]) if np.any(a != b) else 1.0, 1e-3))
        else:
            self.thumb_scale = 1.0


def mouth_thumbnail(image: np.ndarray, canon: np.ndarray, crop: CanonicalCrop) -> np.ndarray:
    """Small grey, mean-removed view of the mouth box of a canonical crop (for appearance distances)."""
    px = crop.to_px(np.asarray(canon, np.float64)[MOUTH_PTS])
    c = px.mean(0)
    half_w = 0.55 * crop.ppi
    half_h = 0.4 * crop.ppi
    x0, x1 = int(max(0, c[0] - half_w)), int(min(image.shape[1], c[0] + half_w))
    y0, y1 = int(max(0, c[1] - half_h)), int(min(image.shape[0], c[1] + half_h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros(THUMB_SIZE[0] * THUMB_SIZE[1], np.float32)
    g = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    t = cv2.resize(g, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32).ravel() / 255.0
    return t - t.mean()


def knn(queries: np.ndarray, items: np.ndarray, k: int, chunk: int = 2048) -> Tuple[np.ndarray, np.ndarray]:
    """For each query row, the k nearest item rows (Euclidean). Returns (idx (N,k) int64, dist (N,k)) sorted."""
    q = np.asarray(queries, np.float32)
    it = np.asarray(items, np.float32)
    k = int(min(k, len(it)))
    n2 = (it ** 2).sum(1)
    idx = np.zeros((len(q), k), np.int64)
    dist = np.zeros((len(q), k), np.float32)
    for s in range(0, len(q), chunk):
        qq = q[s:s + chunk]
        d2 = (qq ** 2).sum(1)[:, None] + n2[None, :] - 2.0 * qq @ it.T
        d2 = np.maximum(d2, 0.0)
        part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < len(it) else np.tile(np.arange(len(it)), (len(qq), 1))
        pd = np.take_along_axis(d2, part, 1)
        order = np.argsort(pd, axis=1)
        idx[s:s + chunk] = np.take_along_axis(part, order, 1)
        dist[s:s + chunk] = np.sqrt(np.take_along_axis(pd, order, 1))
    return idx, dist


def viterbi(unary: np.ndarray, pairwise: Union[np.ndarray, Callable[[int], np.ndarray]]) -> np.ndarray:
    """Minimum-cost path through a trellis. unary (N, k) cost of state j at step t; pairwise either (N-1, k, k)
    or a function t -> (k, k) giving the cost of going from state a at t to state b at t+1.
    Returns (N,) int64 chosen state per step."""
    u = np.asarray(unary, np.float64)
    n, k = u.shape
    if n == 0:
        return np.zeros(0, np.int64)
    back = np.zeros((n, k), np.int64)
    acc = u[0].copy()
    for t in range(1, n):
        p = pairwise[t - 1] if isinstance(pairwise, np.ndarray) else pairwise(t - 1)
        tot = acc[:, None] + np.asarray(p, np.float64)     # (k_prev, k_next)
        back[t] = np.argmin(tot, axis=0)
        acc = tot[back[t], np.arange(k)] + u[t]
    path = np.zeros(n, np.int64)
    path[-1] = int(np.argmin(acc))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def jump_costs(lib: TextureLibrary, rows_prev: np.ndarray, rows_next: np.ndarray, jump: float) -> np.ndarray:
    """(k, k) cost of showing library row b right after row a: 0 when b is a's next source frame, otherwise
    `jump` scaled by how different b looks from a's natural successor (capped at `jump`)."""
    nxt = lib.next_row[rows_prev]                                   # (k,)
    d = np.linalg.norm(lib.thumbs[nxt][:, None, :] - lib.thumbs[rows_next][None, :, :], axis=2)
    cost = jump * np.minimum(1.0, d / lib.thumb_scale)
    coherent = lib.frames[rows_next][None, :] == lib.frames[rows_prev][:, None] + 1
    cost[coherent] = 0.0
    return cost


@dataclass
class Selection:
    """Per output frame: the library rows to blend and their weights (first = the Viterbi choice)."""

    rows: np.ndarray      # (N, m) int64 (-1 = unused)
    weights: np.ndarray   # (N, m) float32
    shape_error: np.ndarray  # (N,) weighted RMS landmark error (IOD) of the chosen row


def select(lib: TextureLibrary, target_canon: np.ndarray, valid: Optional[np.ndarray] = None, *, k: int = 12,
           blend: int = 3, sigma: float = 0.03, jump: float = 1.0, chosen_boost: float = 1.0,
           exclude_near: int = 0, query_frames: Optional[np.ndarray] = None) -> Selection:
    """Candidates, Viterbi path and blend sets for target canonical shapes (N, 68, 2) (IOD units).
    `valid` (N,) marks output frames to solve (others get rows -1); runs of valid frames are solved jointly.
    `exclude_near` > 0 (evaluations): candidates come from library frames more than this many source frames from
    `query_frames` (N,), each output frame's own source frame (near ones only where too few others are left)."""
    n = len(target_canon)
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    m = max(1, int(blend))
    rows = np.full((n, m), -1, np.int64)
    weights = np.zeros((n, m), np.float32)
    err = np.full(n, np.nan, np.float32)
    if lib.size == 0 or not valid.any():
        return Selection(rows, weights, err)
    feats = shape_features(target_canon[valid])
    if exclude_near > 0:
        # at most 2 * exclude_near + 1 library frames lie that near: the k nearest of the rest are among these
        cand, dist = knn(feats, lib.features, k + 2 * int(exclude_near) + 1)
        near = np.abs(lib.frames[cand] - np.asarray(query_frames, np.int64)[valid][:, None]) <= exclude_near
        keep = np.argsort(near, axis=1, kind="stable")[:, :min(k, cand.shape[1])]
        cand, dist = np.take_along_axis(cand, keep, 1), np.take_along_axis(dist, keep, 1)
    else:
        cand, dist = knn(feats, lib.features, k)
    unary = (dist / sigma) ** 2
    path = viterbi(unary, lambda t: jump_costs(lib, cand[t], cand[t + 1], jump))
    vi = np.flatnonzero(valid)
    kk = cand.shape[1]
    for j, t in enumerate(vi):
        chosen = path[j]
        others = [c for c in range(kk) if c != chosen][:m - 1]
        order = [chosen] + others
        r = cand[j, order]
        w = np.exp(-0.5 * (dist[j, order] / sigma) ** 2 + 0.5 * (dist[j, chosen] / sigma) ** 2)
        w[0] *= chosen_boost   # rivals outvote the coherent choice only where they agree with each other
        rows[t, :len(order)] = r
        weights[t, :len(order)] = np.clip(w, 0.0, 2.0)
        err[t] = dist[j, chosen]
    return Selection(rows, weights, err)


def weighted_median(images: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-pixel, per-channel weighted median of (m, ...) images with (m,) non-negative weights (the lower
    weighted median: the smallest value whose cumulative weight reaches half the total). m is small (a few
    candidates), so it is computed with m^2 comparisons instead of a sort."""
    imgs = np.asarray(images)
    w = np.asarray(weights, np.float32)
    m = len(imgs)
    if m == 1:
        return imgs[0].copy()
    half = float(w.sum()) / 2.0 - 1e-6
    if imgs.dtype == np.uint8:
        from .kernels import weighted_median_u8

        # compared with float32 cumulative weights, `half` is taken as float32 (numpy's rule for a Python float)
        out = weighted_median_u8(imgs, w, np.float32(half))
        if out is not None:
            return out
    big = np.iinfo(imgs.dtype).max if imgs.dtype.kind in "ui" else np.inf
    out = None
    for j in range(m):
        cum = np.zeros(imgs.shape[1:], np.float32)
        vj = imgs[j]
        for i in range(m):
            if i == j:
                cum += w[i]
            elif i < j:
                cum += w[i] * (imgs[i] <= vj)
            else:
                cum += w[i] * (imgs[i] < vj)
        cand = np.where(cum >= half, vj, big)
        out = cand if out is None else np.minimum(out, cand)
    return out.astype(imgs.dtype)
