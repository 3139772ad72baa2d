"""Face detector + 68-point landmark backends.

Offline default: dlib's HOG detector with the 68-point predictor shipped by `face_recognition_models`
(no download). The `.dat` file is located without importing `face_recognition_models` itself, because its
`__init__` imports `pkg_resources`, which newer setuptools removed.

Speed: detection runs on a downscaled grey copy of the frame (longest side <= `detect_max_side`, default 640)
and the boxes are scaled back; landmarks are fitted on the full-resolution grey frame. A frame can be
converted once with `prepare(frame)` and the `PreparedFrame` passed to `detect` / `landmarks` / `descriptor`
for every face in it (the tracker does this); plain BGR arrays are accepted too.

The optional FAN backend (user-supplied weights only) lives in `core.faces.fan`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from pathlib import Path
from typing import List, Optional, Union

import numpy as np

from ..errors import ModelMissingError

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"


def _frm_models_dir() -> Optional[Path]:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def dlib_predictor_path() -> Path:
    """Path of the 68-point predictor: $LIPDUB_DLIB_PREDICTOR, else face_recognition_models' package data."""
    env = os.environ.get("LIPDUB_DLIB_PREDICTOR")
    if env:
        p = Path(env)
    else:
        d = _frm_models_dir()
        if d is None:
            raise ModelMissingError(
                f"The face landmark model {PREDICTOR_FILE} was not found: install the Python package "
                "'face_recognition_models' or set LIPDUB_DLIB_PREDICTOR to the file's path."
            )
        p = d / PREDICTOR_FILE
    if not p.is_file():
        raise ModelMissingError(f"The face landmark model is missing: {p}. Reinstall 'face_recognition_models'.")
    return p


def dlib_recognition_path() -> Optional[Path]:
    """dlib's 128-D face descriptor model (used only to re-identify a face after a cut); None if absent."""
    d = _frm_models_dir()
    if d is None or not (d / RECOGNITION_FILE).is_file():
        return None
    return d / RECOGNITION_FILE


def file_identity(path: Union[str, Path]) -> str:
    """Cheap identity of a model file for cache keys: name, size and a hash of its first 64 KB."""
    p = Path(path)
    h = hashlib.sha1()
    with open(p, "rb") as f:
        h.update(f.read(65536))
    return f"{p.name}:{p.stat().st_size}:{h.hexdigest()[:12]}"


def _to_gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    if frame.ndim == 2:
        return np.ascontiguousarray(frame)
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGR2GRAY)


def downscale_factor(height: int, width: int, max_side: int) -> float:
    """Factor (<= 1) that brings the longest side down to `max_side` (0 or None: no downscaling)."""
    if not max_side or max(height, width) <= max_side:
        return 1.0
    return max_side / float(max(height, width))


class PreparedFrame:
    """One frame converted once for every face in it: full-res grey (landmarks), and on demand a downscaled
    grey copy for detection (`small`, = full * `scale`) and an RGB copy."""

    def __init__(self, bgr: np.ndarray, gray: np.ndarray, detect_max_side: int):
        self.bgr, self.gray = bgr, gray
        self.scale = downscale_factor(gray.shape[0], gray.shape[1], detect_max_side)
        self._small: Optional[np.ndarray] = None
        self._rgb: Optional[np.ndarray] = None
        if self.scale < 1.0:
            self._size = (max(1, int(round(gray.shape[1] * self.scale))), max(1, int(round(gray.shape[0] * self.scale))))
            self.scale = self._size[0] / gray.shape[1]
        else:
            self._small = gray

    @property
    def small(self) -> np.ndarray:
        if self._small is None:
            import cv2

            self._small = cv2.resize(self.gray, self._size, interpolation=cv2.INTER_AREA)
        return self._small

    @property
    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = np.ascontiguousarray(self.bgr[:, :, ::-1])
        return self._rgb

    @property
    def shape(self):
        return self.bgr.shape


def prepare_frame(frame: np.ndarray, detect_max_side: int = 640) -> PreparedFrame:
    if isinstance(frame, PreparedFrame):
        return frame
    return PreparedFrame(frame, _to_gray(frame), detect_max_side)


class DlibBackend:
    """dlib HOG face detector + 68-point shape predictor.

    Measured here (2 shared cores): detect ~18 ms on 360x288, ~27 ms on a 1280x720 frame downscaled to 640x360
    (vs ~100 ms at full size); landmarks ~3 ms per face at any resolution.
    """

    name = "dlib"

    def __init__(self, upsample: int = 0, detect_max_side: int = 640, predictor_path: Optional[str] = None):
        import dlib  # imported lazily: heavy, and only this backend needs it

        self._dlib = dlib
        self._predictor_path = Path(predictor_path) if predictor_path else dlib_predictor_path()
        if not self._predictor_path.is_file():
            raise ModelMissingError(f"The face landmark model is missing: {self._predictor_path}.")
        self._detector = dlib.get_frontal_face_detector()
        # dlib's detector leaves the GIL while it runs and keeps its working buffers in the object: two threads
        # detecting at once (the window's jobs share this backend) got boxes of each other's frames. Its landmark
        # model and descriptor network keep the GIL (measured: no difference in 1000 / 180 concurrent calls).
        self._detector_lock = threading.Lock()
        self._predictor = dlib.shape_predictor(str(self._predictor_path))
        self._facerec = None
        self._facerec_tried = False
        self.upsample = int(upsample)
        self.detect_max_side = int(detect_max_side or 0)

    # -- identity for caches ---------------------------------------------------------------------------------
    def settings_key(self) -> dict:
        return dlib_settings_key(self.upsample, self.detect_max_side, self._predictor_path)

    def prepare(self, frame: np.ndarray) -> PreparedFrame:
        return prepare_frame(frame, self.detect_max_side)

    # -- detection ---------------------------------------------------------------------------------------------
    def detect(self, frame) -> List[np.ndarray]:
        """Face boxes (x0, y0, x1, y1) float32 in full-frame pixels, largest first."""
        return [b[:4] for b in self.detect_scored(frame)]

    def detect_scored(self, frame) -> List[np.ndarray]:
        """Like `detect` but each row is (x0, y0, x1, y1, score) with dlib's HOG SVM score."""
        pf = self.prepare(frame)
        with self._detector_lock:
            rects, scores, _ = self._detector.run(pf.small, self.upsample, 0.0)
        inv = 1.0 / pf.scale
        out = []
        for r, sc in zip(rects, scores):
            b = np.array([r.left(), r.top(), r.right(), r.bottom()], np.float64)
            if pf.scale != 1.0:
                # dlib boxes are inclusive pixel indices: scale the pixel *edges*, then back to indices
                b = np.array([b[0] * inv, b[1] * inv, (b[2] + 1) * inv - 1, (b[3] + 1) * inv - 1])
            out.append(np.array([*b, sc], np.float32))
        out.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
        return out

    # -- landmarks ---------------------------------------------------------------------------------------------
    def _rect(self, box):
        x0, y0, x1, y1 = [int(round(float(v))) for v in box[:4]]
        return self._dlib.rectangle(x0, y0, x1, y1)

    def landmarks(self, frame, box: np.ndarray) -> np.ndarray:
        """68 landmarks (x, y) float32 for the face in `box` (fitted on the full-resolution frame)."""
        gray = frame.gray if isinstance(frame, PreparedFrame) else _to_gray(frame)
        shape = self._predictor(gray, self._rect(box))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float32)

    # -- re-identification -------------------------------------------------------------------------------------
    def _load_facerec(self):
        if not self._facerec_tried:
            self._facerec_tried = True
            p = dlib_recognition_path()
            if p is not None:
                self._facerec = self._dlib.face_recognition_model_v1(str(p))
        return self._facerec

    def face_chip(self, frame, box: np.ndarray, landmarks: np.ndarray) -> Optional[np.ndarray]:
        """150x150 aligned RGB face chip (cheap, ~1 ms) to compute a descriptor from later; None without the model."""
        if dlib_recognition_path() is None:
            return None
        pf = self.prepare(frame)
        pts = self._dlib.points()
        for x, y in np.asarray(landmarks, np.float64):
            pts.append(self._dlib.point(int(round(x)), int(round(y))))
        shape = self._dlib.full_object_detection(self._rect(box), pts)
        return self._dlib.get_face_chip(pf.rgb, shape, size=150, padding=0.25)

    def chip_descriptor(self, chip: np.ndarray) -> Optional[np.ndarray]:
        """128-D dlib face descriptor of a chip (~140 ms here); one person's faces are < ~0.5 apart."""
        if chip is None or self._load_facerec() is None:
            return None
        return np.asarray(self._facerec.compute_face_descriptor(np.ascontiguousarray(chip)), np.float32)

    def descriptor(self, frame, box: np.ndarray, landmarks: np.ndarray) -> Optional[np.ndarray]:
        return self.chip_descriptor(self.face_chip(frame, box, landmarks))


def dlib_settings_key(upsample: int = 0, detect_max_side: int = 640, predictor_path=None) -> dict:
    """What makes dlib results differ (for cache keys), computable without loading the models (~1.7 s)."""
    p = Path(predictor_path) if predictor_path else dlib_predictor_path()
    return {"backend": DlibBackend.name, "upsample": int(upsample), "detect_max_side": int(detect_max_side or 0),
            "predictor": file_identity(p)}


_DEFAULT: Optional[DlibBackend] = None
_DEFAULT_LOCK = threading.Lock()    # one load when several threads ask at once (the window's jobs side by side)


def default_backend() -> DlibBackend:
    """A process-wide DlibBackend with default settings (loading the models takes ~0.9 s, so it is shared)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = DlibBackend()
        return _DEFAULT


def release_default_backend() -> None:
    """Drop the shared DlibBackend (its landmark model holds ~75 MB): a job that has tracked its clips releases it
    for the rest of its work (the next `default_backend()` loads it again)."""
    global _DEFAULT
    _DEFAULT = None
