"""Audio -> sparse mouth shape (after "Synthesizing Obama", Suwajanakorn et al. 2017).

Mouth shapes live in a *canonical* face frame: each frame's 68 landmarks are mapped by a similarity transform,
fitted on the points that barely move when speaking (`geometry.STABLE`) to a fixed frontal template, then
rescaled about the eye midpoint so the inter-ocular distance (IOD) is exactly 1. The model predicts, per video
frame, the displacement of SHAPE_POINTS (mouth 48-67 + lower jaw 3-13) from the speaker's own neutral (closed)
mouth, through a PCA basis fitted on the training clips.

    normalize(landmarks) -> (canon, transforms)       # (N,68,2) -> canonical, (N,2,3) frame->canon affine
    denormalize(points, transform) -> frame coords     # inverse, one (2,3) or per-frame (N,2,3) transforms
    clip_neutral(canon, present) -> (K,2)              # mean of the clip's most closed mouths
    audio_features(wav, fps, num_frames) -> (N, F)     # per-utterance-normalised log-mel, any fps
    AudioToMouth.load(path=None).predict(wav, fps, num_frames) -> (N,K,2) displacement (canonical units)
    target_landmarks(track_landmarks, present, displacement) -> (N,68,2) frame-space landmarks with a new mouth
"""
from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .audio import SAMPLE_RATE, chunk_bounds
from .errors import ModelCorruptError, NoFaceError
from .faces import geometry as g

log = logging.getLogger(__name__)

PathLike = Union[str, Path]

MODEL_NAME = "mouth_shape"
HOP = 160            # 10 ms
WIN = 400            # 25 ms
N_FFT = 512
N_MELS = 80
MEL_CHUNK = 4096     # log-mel frames whose spectra are computed at once (bounds log_mel's memory)
FMIN, FMAX = 55.0, 7600.0
CONTEXT = 4          # mel frames (10 ms apart) sampled around each video frame's centre
LOG_EPS = 1e-10      # power floor (about -120 dBFS): digital silence stays finite, real recordings stay gain-invariant
FEATURE_CLIP = 4.0   # normalised features are clipped to [-4, 4]
NUM_FEATURES = N_MELS * CONTEXT
MODEL_FPS = 25.0     # the network runs on a 25 Hz grid; other frame rates are resampled in time

JAW_LOWER = np.arange(3, 14)
SHAPE_POINTS = np.concatenate([JAW_LOWER, g.MOUTH])          # K = 31
MOUTH_IN_SHAPE = np.arange(len(JAW_LOWER), len(SHAPE_POINTS))  # rows of SHAPE_POINTS that are 48-67
K = len(SHAPE_POINTS)

# Mean GRID-s1 face (training clips only, generalised Procrustes, IOD = 1, eye midpoint at the origin),
# made left/right symmetric below so the canonical face is frontal.
_TEMPLATE_RAW = np.array([
    [-1.192, 0.1505], [-1.1517, 0.4778], [-1.1141, 0.7962], [-1.0705, 1.1165], [-0.9658, 1.4051],
    [-0.7699, 1.6476], [-0.508, 1.8348], [-0.2201, 1.9671], [0.0968, 2.0104], [0.4006, 1.9485],
    [0.6411, 1.781], [0.8385, 1.5625], [0.9609, 1.292], [1.0079, 0.9914], [1.0211, 0.682],
    [1.031, 0.3793], [1.0417, 0.0793], [-0.9431, -0.1908], [-0.8149, -0.3583], [-0.6065, -0.419],
    [-0.3858, -0.3993], [-0.1732, -0.3393], [0.208, -0.352], [0.4111, -0.4136], [0.6178, -0.4303],
    [0.8092, -0.371], [0.9097, -0.1986], [0.0382, -0.0842], [0.0505, 0.1254], [0.064, 0.3292],
    [0.0788, 0.5445], [-0.1879, 0.771], [-0.0617, 0.7953], [0.0656, 0.8189], [0.1815, 0.7969],
    [0.2953, 0.7727], [-0.7022, -0.0005], [-0.578, -0.0639], [-0.4296, -0.0603], [-0.2844, 0.0201],
    [-0.4262, 0.0504], [-0.5797, 0.0541], [0.2927, 0.022], [0.424, -0.06], [0.5714, -0.0621],
    [0.6941, -0.0069], [0.5841, 0.054], [0.4339, 0.053], [-0.3875, 1.2548], [-0.2257, 1.1754],
    [-0.0537, 1.1243], [0.0688, 1.159], [0.194, 1.1228], [0.3518, 1.1771], [0.4917, 1.2581],
    [0.3641, 1.3884], [0.2182, 1.4492], [0.0852, 1.4631], [-0.0474, 1.4492], [-0.2214, 1.3848],
    [-0.3141, 1.2593], [-0.0515, 1.2234], [0.0709, 1.2344], [0.197, 1.2204], [0.4178, 1.2611],
    [0.2046, 1.3018], [0.0797, 1.3163], [-0.0458, 1.302]])
# iBUG-68 left/right mirror permutation
FLIP = np.array([16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
                 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
                 27, 28, 29, 30, 35, 34, 33, 32, 31,
                 45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
                 54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,
                 64, 63, 62, 61, 60, 67, 66, 65])


def _make_template() -> np.ndarray:
    mirrored = _TEMPLATE_RAW[FLIP] * np.array([-1.0, 1.0])
    t = 0.5 * (_TEMPLATE_RAW + mirrored)
    r, l = g.eye_centres(t)
    t = (t - 0.5 * (r + l)) / np.linalg.norm(l - r)
    return t


TEMPLATE = _make_template()   # (68, 2) float64, canonical frontal face, IOD 1, eye midpoint at (0, 0)


# --------------------------------------------------------------------------------------------- geometry
def _to_complex(p: np.ndarray) -> np.ndarray:
    return p[..., 0] + 1j * p[..., 1]


def normalize(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame landmarks (N,68,2) (or one (68,2)) -> canonical landmarks (same shape, float32) and the (N,2,3)
    frame->canonical affine transforms (float64). Frames with any NaN landmark give NaN outputs.

    The transform is the least-squares similarity of the STABLE points onto TEMPLATE, followed by a scaling about
    the eye midpoint that makes the aligned inter-ocular distance exactly 1.
    """
    lm = np.asarray(landmarks, np.float64)
    single = lm.ndim == 2
    if single:
        lm = lm[None]
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (N, 68, 2), got {np.shape(landmarks)}")
    z = _to_complex(lm)                                 # (N, 68)
    tz = _to_complex(TEMPLATE[g.STABLE])                # (P,)
    zs = z[:, g.STABLE]
    ok = np.isfinite(zs).all(axis=1)
    mu_s = zs.mean(axis=1, keepdims=True)
    mu_t = tz.mean()
    a_num = (np.conj(zs - mu_s) * (tz - mu_t)[None]).sum(axis=1)
    a_den = (np.abs(zs - mu_s) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = a_num / a_den                                # rotation * scale
        b = mu_t - a * mu_s[:, 0]
        aligned = a[:, None] * z + b[:, None]
        # exact IOD = 1, scaling about the template's eye midpoint (the origin)
        r = aligned[:, g.RIGHT_EYE].mean(axis=1)
        left = aligned[:, g.LEFT_EYE].mean(axis=1)
        iod = np.abs(left - r)
        bad = ~ok | ~np.isfinite(iod) | (iod < 1e-9)
        iod[bad] = np.nan
        a = a / iod
        b = b / iod
    a[bad] = complex(np.nan, np.nan)
    b[bad] = complex(np.nan, np.nan)
    canon = a[:, None] * z + b[:, None]
    canon = np.stack([canon.real, canon.imag], axis=-1).astype(np.float32)
    tf = np.empty((len(lm), 2, 3), np.float64)
    tf[:, 0, 0], tf[:, 0, 1], tf[:, 0, 2] = a.real, -a.imag, b.real
    tf[:, 1, 0], tf[:, 1, 1], tf[:, 1, 2] = a.imag, a.real, b.imag
    if single:
        return canon[0], tf[0]
    return canon, tf


def apply_transform(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Apply (2,3) or per-frame (N,2,3) affine transforms to points (...,2) / (N,...,2)."""
    p = np.asarray(points, np.float64)
    t = np.asarray(transform, np.float64)
    if t.ndim == 3:
        t = t.reshape((t.shape[0],) + (1,) * (p.ndim - 2) + (2, 3))
    lin = t[..., :2]
    return np.einsum("...ij,...j->...i", lin, p) + t[..., 2]


def invert_transform(transform: np.ndarray) -> np.ndarray:
    t = np.asarray(transform, np.float64)
    lin = t[..., :2]
    inv = np.linalg.inv(lin)
    out = np.empty_like(t)
    out[..., :2] = inv
    out[..., 2] = -np.einsum("...ij,...j->...i", inv, t[..., 2])
    return out


def denormalize(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Canonical points (...,K,2) back to frame coordinates with one (2,3) frame->canonical transform
    (or (N,K,2) points with per-frame (N,2,3) transforms). Returns float32."""
    t = np.asarray(transform, np.float64)
    if not np.isfinite(t).all():
        out = np.full(np.shape(points), np.nan, np.float32)
        if t.ndim == 3:
            good = np.isfinite(t).all(axis=(1, 2))
            if good.any():
                out[good] = denormalize(np.asarray(points)[good], t[good])
        return out
    return apply_transform(points, invert_transform(t)).astype(np.float32)


def clip_neutral(canon: np.ndarray, present: Optional[np.ndarray] = None, frac: float = 0.1) -> np.ndarray:
    """The speaker's closed/neutral mouth (K,2) in canonical coordinates: the mean SHAPE_POINTS over the `frac`
    of the clip's valid frames with the smallest inner-lip opening (at least 3 frames, or all if fewer)."""
    c = np.asarray(canon, np.float64)
    if c.ndim == 2:
        c = c[None]
    valid = np.isfinite(c.reshape(len(c), -1)).all(axis=1)
    if present is not None:
        pres = np.asarray(present, bool).reshape(-1)
        if len(pres) != len(c):
            raise ValueError(f"{len(pres)} present flags for {len(c)} frames")
        valid &= pres
    if not valid.any():
        raise NoFaceError("No frame with a tracked face to estimate the speaker's neutral mouth: "
                          "check that the face is visible in the clip.")
    cv = c[valid]
    opening = g.mouth_opening(cv)
    n = max(min(3, len(cv)), int(round(frac * len(cv))))
    idx = np.argsort(opening, kind="stable")[:n]
    return cv[idx][:, SHAPE_POINTS].mean(axis=0).astype(np.float32)


def shape_opening(shape: np.ndarray) -> np.ndarray:
    """Inner-lip opening of absolute canonical shapes (...,K,2) laid out as SHAPE_POINTS."""
    s = np.asarray(shape)
    top = s[..., [shape_row(61), shape_row(62), shape_row(63)], :]
    bot = s[..., [shape_row(67), shape_row(66), shape_row(65)], :]
    return np.linalg.norm(top - bot, axis=-1).mean(axis=-1)


ARTICULATION_PERCENTILE = 95.0   # "how wide this actor opens": this percentile of the opening above neutral
MAX_ARTICULATION_GAIN = 2.0      # never more than this much more movement than the model predicts


def match_articulation(displacement: np.ndarray, neutral: np.ndarray, actor_canon: np.ndarray,
                       actor_valid: np.ndarray, voiced: np.ndarray):
    """(displacement scaled, gain): a model unsure of a voice predicts shrunken, averaged mouths; scale the
    predicted displacements (never down) so the wide openings of the voiced frames reach as far as this actor's
    own wide openings in the clip (ARTICULATION_PERCENTILE of the opening above the neutral mouth)."""
    d = np.asarray(displacement, np.float64)
    base = float(shape_opening(np.asarray(neutral, np.float64)))
    voiced = np.asarray(voiced, bool)[:len(d)]
    actor = np.asarray(actor_canon, np.float64)[np.asarray(actor_valid, bool)]
    if not voiced.any() or len(actor) == 0:
        return displacement, 1.0
    pred_open = shape_opening(np.asarray(neutral, np.float64)[None] + d[voiced]) - base
    actor_open = shape_opening(actor[:, SHAPE_POINTS]) - base
    p_pred = float(np.percentile(pred_open, ARTICULATION_PERCENTILE))
    p_actor = float(np.percentile(actor_open, ARTICULATION_PERCENTILE))
    if not (p_pred > 1e-6 and p_actor > 0):
        return displacement, 1.0
    gain = float(np.clip(p_actor / p_pred, 1.0, MAX_ARTICULATION_GAIN))
    return (d * gain).astype(np.float32), gain


def shape_row(point: int) -> int:
    """The row of landmark `point` in shapes laid out as SHAPE_POINTS."""
    return int(np.nonzero(SHAPE_POINTS == point)[0][0])


# --------------------------------------------------------------------------------------------- audio
def _mel_basis(sr: int = SAMPLE_RATE) -> np.ndarray:
    # librosa-identical bank from core.audio: importing librosa itself costs seconds at start-up
    from .audio import mel_basis

    return mel_basis(sr=sr, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)


def _as_wav(wav) -> np.ndarray:
    w = np.asarray(wav, np.float32)
    if w.ndim == 2:  # (samples, channels) or (channels, samples)
        w = w.mean(axis=1 if w.shape[0] > w.shape[1] else 0)
    w = w.reshape(-1)
    return np.nan_to_num(w, nan=0.0, posinf=0.0, neginf=0.0)


def log_mel(wav: np.ndarray, min_seconds: float = 0.0, with_energy: bool = False):
    """(T, N_MELS) natural-log mel power at a 10 ms hop; frame j is centred on sample j*HOP.
    The signal is zero-padded to at least `min_seconds`. With `with_energy`, also the (T,) log total mel power."""
    from numpy.lib.stride_tricks import as_strided
    from scipy import fft as sfft

    w = _as_wav(wav)
    need = int(np.ceil(min_seconds * SAMPLE_RATE))
    if len(w) < need:
        w = np.pad(w, (0, need - len(w)))
    w = np.ascontiguousarray(np.pad(w, (WIN // 2, WIN // 2 + HOP)), np.float32)
    n = max(1, 1 + (len(w) - WIN) // HOP)
    frames = as_strided(w, shape=(n, WIN), strides=(w.strides[0] * HOP, w.strides[0]), writeable=False)
    # the spectra MEL_CHUNK frames at a time (each frame's spectrum is the same whatever the chunking): a long voice's
    # frames and complex spectra are never all in memory, only its power (the product by the mel bank stays one
    # product over all frames: BLAS's result for a row depends on how the rows are split)
    power = np.empty((n, N_FFT // 2 + 1), np.float32)
    for a, b in chunk_bounds(n, MEL_CHUNK):
        spec = sfft.rfft(frames[a:b] * _window(), n=N_FFT, axis=1)
        power[a:b] = spec.real ** 2 + spec.imag ** 2
    mel = power @ _mel_basis().T
    del power
    out = np.log(mel + LOG_EPS).astype(np.float32)
    if with_energy:
        return out, np.log(mel.sum(axis=1, dtype=np.float64) + LOG_EPS)
    return out


@functools.lru_cache(maxsize=1)
def _window() -> np.ndarray:
    return np.hanning(WIN + 2)[1:-1].astype(np.float32)


def voiced_mask(energy: np.ndarray) -> np.ndarray:
    """Frames well above the utterance's noise floor (all frames when the signal is flat)."""
    e = np.asarray(energy, np.float64)
    if len(e) == 0:
        return np.zeros(0, bool)
    lo, hi = np.percentile(e, 5), np.percentile(e, 95)
    if hi - lo < 1.0:          # flat (silence, steady noise): no speech to find
        return np.ones(len(e), bool)
    m = e > lo + 0.35 * (hi - lo)
    return m if m.sum() >= 5 else np.ones(len(e), bool)


def normalise_utterance(feat: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Per-band mean/variance normalisation over the voiced frames, std floored, clipped to +-FEATURE_CLIP."""
    m = voiced_mask(energy)
    ref = feat[m]
    mu = ref.mean(axis=0)
    sd = np.maximum(ref.std(axis=0), 0.5)
    return np.clip((feat - mu) / sd, -FEATURE_CLIP, FEATURE_CLIP).astype(np.float32)


def _interp_rows(table: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Linear interpolation of table rows at fractional positions (clamped to the ends)."""
    pos = np.clip(pos, 0, len(table) - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, len(table) - 1)
    f = (pos - i0)[..., None].astype(np.float32)
    return table[i0] * (1 - f) + table[i1] * f


def frame_centres(fps: float, num_frames: int) -> np.ndarray:
    return (np.arange(num_frames) + 0.5) / float(fps)


def audio_features(wav: np.ndarray, fps: float, num_frames: int) -> np.ndarray:
    """(num_frames, NUM_FEATURES) float32: CONTEXT log-mel frames, 10 ms apart, centred on each video frame's
    centre time ((i + 0.5) / fps), per-utterance normalised. Audio shorter than the video reads as silence."""
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    num_frames = int(num_frames)
    if num_frames <= 0:
        return np.zeros((0, NUM_FEATURES), np.float32)
    lm, energy = log_mel(wav, min_seconds=num_frames / float(fps) + 0.05, with_energy=True)
    lm = normalise_utterance(lm, energy)
    offsets = (np.arange(CONTEXT) - (CONTEXT - 1) / 2.0) * (HOP / SAMPLE_RATE)
    t = frame_centres(fps, num_frames)[:, None] + offsets[None, :]        # (N, CONTEXT) seconds
    rows = _interp_rows(lm, t * SAMPLE_RATE / HOP)                         # (N, CONTEXT, N_MELS)
    return rows.reshape(num_frames, NUM_FEATURES).astype(np.float32)


def model_inputs(wav: np.ndarray, fps: float, num_frames: int, with_phones: bool = False,
                 phone_segments=None) -> np.ndarray:
    """The network's input rows: `audio_features`, followed by PocketSphinx phone shares (core.phones) when the
    model was trained with them."""
    feats = audio_features(wav, fps, num_frames)
    if not with_phones:
        return feats
    from .phones import phone_features

    return np.concatenate([feats, phone_features(wav, fps, num_frames, phone_segments)], axis=1)


def log_rms(wav: np.ndarray, fps: float, num_frames: int) -> np.ndarray:
    """(N,) per-utterance-normalised log-RMS over each video frame's duration (the loudness baseline's input)."""
    w = _as_wav(wav)
    n = int(num_frames)
    c = frame_centres(fps, n) * SAMPLE_RATE
    half = 0.5 * SAMPLE_RATE / float(fps)
    out = np.empty(n, np.float64)
    sq = np.concatenate([[0.0], np.cumsum(w.astype(np.float64) ** 2)])
    lo = np.clip(np.round(c - half).astype(np.int64), 0, len(w))
    hi = np.clip(np.round(c + half).astype(np.int64), 0, len(w))
    cnt = np.maximum(hi - lo, 1)
    out[:] = np.log((sq[hi] - sq[lo]) / cnt + 1e-10)
    m = voiced_mask(out)
    sd = max(out[m].std(), 0.5)
    return np.clip((out - out[m].mean()) / sd, -FEATURE_CLIP, FEATURE_CLIP).astype(np.float32)


# --------------------------------------------------------------------------------------------- model
def shipped_model_path() -> Path:
    from .models.registry import shipped_models_dir   # core.models imports torch: only when a model is wanted

    return shipped_models_dir() / f"{MODEL_NAME}.pt"


def resolve_mouth_model(path: Optional[PathLike] = None, verify: bool = True) -> Path:
    """The model file, checked by `core.models.registry` (SHA-256 of the shipped file, or of a copy whose
    JSON description sits beside it). `path=None`: the shipped model."""
    from .models.registry import resolve_model

    return resolve_model(MODEL_NAME if path is None else Path(path).expanduser(), verify=verify)


@dataclass
class MouthHead:
    """The model's output layer, hidden features -> network-scale PCA coefficients: h @ weight.T + bias."""
    weight: np.ndarray      # (C, hidden)
    bias: np.ndarray        # (C,)

    def apply(self, hidden: np.ndarray) -> np.ndarray:
        return np.asarray(hidden, np.float64) @ self.weight.T + self.bias

    def scaled(self, gain: float, centre: np.ndarray) -> "MouthHead":
        """The same layer with its output moved `gain` times further from `centre` (more articulation)."""
        return MouthHead(weight=self.weight * gain, bias=gain * self.bias + (1.0 - gain) * np.asarray(centre))


# Loaded models by (file, size, mtime, verified): a dub loads the model for the adaptation and again in the engine,
# the window on every setting change. A model is never changed after loading (adapted heads are separate objects).
_LOADED: dict = {}
_LOADED_LOCK = threading.Lock()
LOADED_KEPT = 2


class AudioToMouth:
    """The shipped audio -> mouth-shape model: features -> MouthNet -> PCA coefficients -> (N,K,2) displacement."""

    def __init__(self, payload: dict, source: str = ""):
        import torch

        from .models.mouth_net import MouthNet

        try:
            cfg = dict(payload["config"])
            self.net = MouthNet(**cfg)
            self.net.load_state_dict(payload["state_dict"])
            self.pca_mean = payload["pca_mean"].double().numpy()          # (2K,)
            self.pca_basis = payload["pca_basis"].double().numpy()        # (C, 2K) orthonormal rows
            self.coef_scale = float(payload["coef_scale"])
            self.shape_points = payload["shape_points"].numpy().astype(np.int64)
            self.model_fps = float(payload.get("model_fps", MODEL_FPS))
            self.baselines = {k: v.double().numpy() for k, v in dict(payload.get("baselines", {})).items()}
            self.info = dict(payload.get("info", {}))
            self.uses_phones = str(payload.get("inputs", "mel")) == "mel+phones"
        except (KeyError, RuntimeError, TypeError, ValueError, AttributeError) as exc:
            raise ModelCorruptError(f"{source or 'The mouth-shape model'} has the wrong layout ({exc}): "
                                    f"use the mouth_shape.pt shipped with LipDub Studio.") from exc
        if not np.array_equal(self.shape_points, SHAPE_POINTS):
            raise ModelCorruptError(f"{source} predicts other landmarks than this version expects: "
                                    f"use the mouth_shape.pt shipped with LipDub Studio.")
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.source = source
        self.sha256 = ""
        self._torch = torch

    @classmethod
    def load(cls, path: Optional[PathLike] = None, verify: bool = True) -> "AudioToMouth":
        """`path=None`: the shipped resources/models/mouth_shape.pt, SHA-256-checked against mouth_shape.json.
        An explicit path is checked too when a JSON description sits beside it."""
        import torch

        from .models.registry import cached_sha256

        p = resolve_mouth_model(path, verify=verify)
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns, verify)
        with _LOADED_LOCK:
            if key in _LOADED:
                return _LOADED[key]
        try:
            payload = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle/zip errors of many kinds
            raise ModelCorruptError(f"{p} is not a readable mouth-shape model ({exc.__class__.__name__}): "
                                    f"reinstall LipDub Studio.") from exc
        if not isinstance(payload, dict):
            raise ModelCorruptError(f"{p} is not a mouth-shape model: reinstall LipDub Studio.")
        model = cls(payload, source=str(p))
        model.sha256 = cached_sha256(p)     # identifies the weights in caches (core.adapt)
        with _LOADED_LOCK:
            _LOADED[key] = model
            while len(_LOADED) > LOADED_KEPT:
                _LOADED.pop(next(iter(_LOADED)))
        return model

    @property
    def num_components(self) -> int:
        return self.pca_basis.shape[0]

    @property
    def head(self) -> "MouthHead":
        """The network's own output layer (what per-clip adaptation starts from)."""
        out = self.net.out
        return MouthHead(weight=out.weight.double().numpy().copy(), bias=out.bias.double().numpy().copy())

    def hidden(self, wav: np.ndarray, fps: float, num_frames: int, phone_segments=None) -> np.ndarray:
        """(num_frames, hidden) float64: the network's last hidden layer at each video frame's centre. The network
        runs on a 25 Hz grid; for other frame rates its output is interpolated at the frame centres.
        `phone_segments`: the voice's phones when already decoded (core.phones), else they are decoded here."""
        n = int(num_frames)
        if n <= 0:
            return np.zeros((0, self.net.out.in_features))
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        fps = float(fps)
        if abs(fps - self.model_fps) < 1e-6:
            return self._hidden(model_inputs(wav, fps, n, self.uses_phones, phone_segments))
        m = int(np.ceil(n / fps * self.model_fps)) + 1
        h = self._hidden(model_inputs(wav, self.model_fps, m, self.uses_phones, phone_segments))
        return _interp_rows(h, frame_centres(fps, n) * self.model_fps - 0.5)

    def _hidden(self, feats: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            h = self.net.hidden(torch.from_numpy(np.ascontiguousarray(feats, np.float32))[None])[0]
        return h.double().numpy()

    def from_coefficients(self, coef: np.ndarray) -> np.ndarray:
        d = coef @ self.pca_basis + self.pca_mean
        return d.reshape(len(coef), len(self.shape_points), 2).astype(np.float32)

    def to_coefficients(self, displacement: np.ndarray) -> np.ndarray:
        """(N, K, 2) displacements -> (N, C) network-scale targets (what the output layer is trained to give)."""
        d = np.asarray(displacement, np.float64).reshape(len(displacement), -1)
        return (d - self.pca_mean) @ self.pca_basis.T / self.coef_scale

    def predict(self, wav: np.ndarray, fps: float, num_frames: int,
                head: Optional["MouthHead"] = None, phone_segments=None) -> np.ndarray:
        """(num_frames, K, 2) float32 displacement of SHAPE_POINTS from the neutral mouth, canonical (IOD) units.
        `head`: an output layer adapted to this speaker (core.adapt), else the network's own."""
        n = int(num_frames)
        if n <= 0:
            return np.zeros((0, len(self.shape_points), 2), np.float32)
        h = self.hidden(wav, fps, n, phone_segments)
        return self.from_coefficients((head or self.head).apply(h) * self.coef_scale)

    def baseline_mean(self, num_frames: int) -> np.ndarray:
        """No-learning baseline (a): the training set's mean displacement on every frame."""
        d = self.baselines["mean_displacement"].reshape(len(self.shape_points), 2)
        return np.repeat(d[None], int(num_frames), axis=0).astype(np.float32)

    def baseline_loudness(self, wav: np.ndarray, fps: float, num_frames: int) -> np.ndarray:
        """No-learning baseline (b): displacement linear in per-utterance-normalised log-RMS (fit on training)."""
        loud = log_rms(wav, fps, num_frames).astype(np.float64)
        w, b = self.baselines["loudness_w"], self.baselines["loudness_b"]
        d = loud[:, None] * w[None] + b[None]
        return d.reshape(int(num_frames), len(self.shape_points), 2).astype(np.float32)


def target_landmarks(track_landmarks: np.ndarray, present: np.ndarray, displacement: np.ndarray,
                     neutral: Optional[np.ndarray] = None) -> np.ndarray:
    """Absolute frame-space landmarks (N,68,2) for a target clip: SHAPE_POINTS are replaced by
    (neutral + displacement) mapped back through each frame's canonical transform; the other points, and frames
    without a face (NaN), are unchanged. `neutral` defaults to `clip_neutral` of the target track."""
    lm = np.asarray(track_landmarks, np.float32)
    pres = np.asarray(present, bool)
    disp = np.asarray(displacement, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"track_landmarks must be (N, 68, 2), got {lm.shape}")
    if len(disp) != len(lm) or len(pres) != len(lm) or disp.shape[1:] != (len(SHAPE_POINTS), 2):
        raise ValueError(f"lengths differ: {len(lm)} landmark frames, {len(pres)} present flags, "
                         f"displacement {disp.shape}")
    canon, tf = normalize(lm)
    ok = pres & np.isfinite(tf).all(axis=(1, 2))
    if neutral is None:
        neutral = clip_neutral(canon, ok)
    out = lm.copy()
    if ok.any():
        shape = np.asarray(neutral, np.float64)[None] + disp[ok]
        frames = denormalize(shape, tf[ok])
        sub = out[ok]
        sub[:, SHAPE_POINTS] = frames
        out[ok] = sub
    return out
