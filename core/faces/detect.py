"""Face detector + 68-point landmark backends.

Offline default: dlib's HOG detector with the 68-point predictor shipped by `face_recognition_models`
(no download). The `.dat` file is located without importing `face_recognition_models` itself, because its
`__init__` imports `pkg_resources`, which newer setuptools removed.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import List

import numpy as np

from ..errors import ModelMissingError

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


def dlib_predictor_path() -> Path:
    """Path of the 68-point predictor: $LIPDUB_DLIB_PREDICTOR, else face_recognition_models' package data."""
    env = os.environ.get("LIPDUB_DLIB_PREDICTOR")
    if env:
        p = Path(env)
    else:
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise ModelMissingError(
                f"The face landmark model {PREDICTOR_FILE} was not found: install the Python package "
                "'face_recognition_models' or set LIPDUB_DLIB_PREDICTOR to the file's path."
            )
        p = Path(list(spec.submodule_search_locations)[0]) / "models" / PREDICTOR_FILE
    if not p.is_file():
        raise ModelMissingError(f"The face landmark model is missing: {p}. Reinstall 'face_recognition_models'.")
    return p


class DlibBackend:
    """dlib HOG face detector + 68-point shape predictor. ~70 ms detect / ~3 ms landmarks at 640x480."""

    name = "dlib"

    def __init__(self, upsample: int = 0):
        import dlib  # imported lazily: heavy, and only this backend needs it

        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(dlib_predictor_path()))
        self.upsample = upsample

    @staticmethod
    def _rgb(frame: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(frame[:, :, ::-1])

    def detect(self, frame: np.ndarray) -> List[np.ndarray]:
        """Face boxes (x0, y0, x1, y1) float32 in the BGR frame, largest first."""
        rects = self._detector(self._rgb(frame), self.upsample)
        boxes = [np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32) for r in rects]
        boxes.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
        return boxes

    def landmarks(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        """68 landmarks (x, y) float32 for the face in `box`."""
        x0, y0, x1, y1 = [int(round(float(v))) for v in box]
        shape = self._predictor(self._rgb(frame), self._dlib.rectangle(x0, y0, x1, y1))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float32)
