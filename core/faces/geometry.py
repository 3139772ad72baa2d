"""Landmark index groups (iBUG 68) and face geometry helpers."""
from __future__ import annotations

import numpy as np

JAW = np.arange(0, 17)
RIGHT_BROW = np.arange(17, 22)
LEFT_BROW = np.arange(22, 27)
NOSE = np.arange(27, 36)
RIGHT_EYE = np.arange(36, 42)
LEFT_EYE = np.arange(42, 48)
MOUTH_OUTER = np.arange(48, 60)
MOUTH_INNER = np.arange(60, 68)
MOUTH = np.arange(48, 68)
# Points that barely move when speaking: used to align faces by a similarity transform.
STABLE = np.concatenate([np.arange(17, 27), np.arange(27, 36), RIGHT_EYE, LEFT_EYE])


def eye_centres(lm: np.ndarray):
    return lm[..., RIGHT_EYE, :].mean(axis=-2), lm[..., LEFT_EYE, :].mean(axis=-2)


def eye_to_mouth(lm: np.ndarray):
    """(unit vector from the eye midpoint to the mouth centre: the face's "down", the eye midpoint) of one
    (68, 2) landmark set; straight down when the two coincide."""
    lm = np.asarray(lm, np.float64)
    r, l = eye_centres(lm)
    eyes = (r + l) / 2.0
    d = lm[MOUTH].mean(0) - eyes
    n = np.linalg.norm(d)
    return (d / n if n > 1e-9 else np.array([0.0, 1.0])), eyes


def inter_ocular(lm: np.ndarray) -> np.ndarray:
    """Distance between the eye centres (pixels); works on (68,2) or (N,68,2)."""
    r, l = eye_centres(lm)
    return np.linalg.norm(l - r, axis=-1)


def mouth_opening(lm: np.ndarray) -> np.ndarray:
    """Inner-lip opening (mean of the three inner vertical gaps), in the landmarks' units."""
    top = lm[..., [61, 62, 63], :]
    bot = lm[..., [67, 66, 65], :]
    return np.linalg.norm(top - bot, axis=-1).mean(axis=-1)


def mouth_width(lm: np.ndarray) -> np.ndarray:
    return np.linalg.norm(lm[..., 54, :] - lm[..., 48, :], axis=-1)


def similarity_transform(src: np.ndarray, dst: np.ndarray):
    """Least-squares similarity (scale s, rotation R, translation t) with dst ≈ s * src @ R.T + t (Umeyama)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    r = u @ np.diag(sign) @ vt
    var_s = (a ** 2).sum() / len(src)
    s = (d * sign).sum() / var_s
    t = mu_d - s * r @ mu_s
    return s, r, t


def apply_similarity(pts: np.ndarray, s: float, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    return (s * np.asarray(pts, np.float64) @ r.T + t).astype(np.float32)


def face_frame(lm: np.ndarray):
    """Origin (eye midpoint), unit x axis (subject's right eye -> left eye, image left -> right for a frontal
    face), unit y axis (x turned 90 degrees, pointing down the face) and the inter-ocular distance."""
    r, l = eye_centres(np.asarray(lm, np.float64))
    d = l - r
    iod = float(np.linalg.norm(d))
    x = d / max(iod, 1e-9)
    y = np.array([-x[1], x[0]])
    return (r + l) / 2.0, x, y, iod


def face_to_frame(points, lm: np.ndarray) -> np.ndarray:
    """Points in face coordinates (IOD units, origin between the eyes) -> frame pixels for landmarks `lm`."""
    o, x, y, iod = face_frame(lm)
    p = np.asarray(points, np.float64).reshape(-1, 2)
    return (o + iod * (p[:, :1] * x + p[:, 1:] * y)).astype(np.float32)


def frame_to_face(points, lm: np.ndarray) -> np.ndarray:
    """Inverse of `face_to_frame`: frame pixels -> face coordinates."""
    o, x, y, iod = face_frame(lm)
    p = np.asarray(points, np.float64).reshape(-1, 2) - o
    return np.stack([p @ x, p @ y], axis=1) / max(iod, 1e-9)
