"""Optional FAN backend (face-alignment 1.5 networks) with user-supplied weight files. Never downloads.

face-alignment's own `FaceAlignment` class fetches its checkpoints from the internet and its package
`__init__` needs scikit-image and numba; neither is acceptable here. So this module loads only the network
definitions (`models/fan.py`, `detection/sfd/net_s3fd.py`, `detection/blazeface/net_blazeface.py`: plain
torch files) straight from the installed package's folder, builds the networks, loads the local weight
files into them (state dict, or a TorchScript archive), and does the pre/post-processing in numpy.

Files (the names face-alignment uses; any file matching the pattern works):
- 2D-FAN landmarks: `2DFAN4-*.pth.tar` (state dict) or `2DFAN4*.zip` (TorchScript, face-alignment <= 1.3)
- detector `sfd`: `s3fd-*.pth`; detector `blazeface`: `blazeface.pth` + `anchors.npy`
  (`blazefaceback.pth` + `anchorsback.npy` with `back_model=True`); detector `dlib`: no file (HOG).

A missing file raises ModelMissingError naming it. FAN costs ~1 s per face per frame on this CPU, so it is
a quality option for short clips, not the default.
"""
from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np

from ..errors import ModelCorruptError, ModelError, ModelMissingError
from .detect import PreparedFrame, file_identity, prepare_frame

FAN_PATTERNS = ("2DFAN4*.pth.tar", "2DFAN4*.pth", "2DFAN-4*.pth*", "2DFAN4*.zip", "2dfan4*")
SFD_PATTERNS = ("s3fd*.pth", "s3fd*.pth.tar", "s3fd*.zip", "S3FD*")
BLAZE_FILES = {False: ("blazeface.pth", "anchors.npy"), True: ("blazefaceback.pth", "anchorsback.npy")}
FAN_EXAMPLE = "2DFAN4-11f355bf06.pth.tar"
SFD_EXAMPLE = "s3fd-619a316812.pth"

CROP = 256          # FAN input size
HEATMAP = 64        # FAN heatmap size
REFERENCE_SCALE = 195.0
CENTER_Y_OFFSET = 0.12


def _fa_root() -> Path:
    spec = importlib.util.find_spec("face_alignment")   # finds the folder without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissingError("The FAN backend needs the Python package face-alignment 1.5 "
                                "(pip install face-alignment==1.5.0 --no-deps); use the dlib backend otherwise.")
    return Path(list(spec.submodule_search_locations)[0])


def _fa_module(rel: str):
    """Import one plain-torch file of face_alignment by path (bypassing the package's heavy __init__)."""
    name = "_lipdub_fa_" + rel.replace("/", "_").replace(".py", "")
    if name in sys.modules:
        return sys.modules[name]
    path = _fa_root() / rel
    if not path.is_file():
        raise ModelMissingError(f"face-alignment is installed but {path} is missing: reinstall face-alignment==1.5.0.")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules[name] = mod
    return mod


def _find(folder: Optional[Path], patterns: Sequence[str]) -> Optional[Path]:
    if folder is None or not folder.is_dir():
        return None
    for pat in patterns:
        hits = sorted(p for p in folder.glob(pat) if p.is_file())
        if hits:
            return hits[0]
    return None


def _state_dict(obj) -> dict:
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise TypeError(f"expected a state dict, got {type(obj).__name__}")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())


def load_network(path: Path, build, device: str = "cpu", what: str = "network"):
    """A torch module from `path`: a TorchScript archive as is, else a state dict loaded into `build(state)`."""
    import torch

    from ..models.registry import resolve_model

    path = resolve_model(Path(path))   # the one place model files are checked
    try:
        if _is_torchscript(path):
            net = torch.jit.load(str(path), map_location=device)
        else:
            sd = _state_dict(torch.load(str(path), map_location=device, weights_only=True))
            net = build(sd)
            net.load_state_dict(sd)
    except Exception as e:
        raise ModelCorruptError(f"The {what} file {path} could not be loaded ({type(e).__name__}: "
                                f"{str(e).splitlines()[0][:120]}); use the original face-alignment file.") from e
    net.to(device)
    net.eval()
    return net


def fan_stacks(state: dict) -> int:
    """Number of stacked hourglasses in a FAN state dict (4 for face-alignment's 2DFAN4)."""
    n = 0
    while any(k.startswith(f"m{n}.") for k in state):
        n += 1
    return max(n, 1)


def _nms(dets: np.ndarray, thresh: float) -> List[int]:
    if len(dets) == 0:
        return []
    x1, y1, x2, y2, sc = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3], dets[:, 4]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = sc.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        inter = np.maximum(0.0, xx2 - xx1 + 1) * np.maximum(0.0, yy2 - yy1 + 1)
        ovr = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[np.flatnonzero(ovr <= thresh) + 1]
    return keep


def s3fd_decode(outputs: Sequence[np.ndarray], min_score: float = 0.05) -> np.ndarray:
    """S3FD head outputs (cls0, reg0, cls1, reg1, ...; cls already softmaxed) -> (K, 5) boxes + score."""
    rows = []
    for i in range(len(outputs) // 2):
        cls, reg = outputs[2 * i][0], outputs[2 * i + 1][0]
        stride = 2 ** (i + 2)
        ys, xs = np.nonzero(cls[1] > min_score)
        if len(ys) == 0:
            continue
        score = cls[1, ys, xs]
        loc = reg[:, ys, xs].T.astype(np.float64)
        pri = np.stack([stride / 2 + xs * stride, stride / 2 + ys * stride,
                        np.full(len(xs), stride * 4.0), np.full(len(xs), stride * 4.0)], 1)
        cxy = pri[:, :2] + loc[:, :2] * 0.1 * pri[:, 2:]
        wh = pri[:, 2:] * np.exp(loc[:, 2:] * 0.2)
        rows.append(np.concatenate([cxy - wh / 2, cxy + wh / 2, score[:, None]], 1))
    return np.concatenate(rows, 0) if rows else np.zeros((0, 5))


def fan_crop_matrix(box: np.ndarray) -> np.ndarray:
    """2x3 affine frame -> 256x256 FAN input for a face box (face-alignment's centre/scale convention)."""
    x0, y0, x1, y1 = [float(v) for v in box[:4]]
    cx, cy = x1 - (x1 - x0) / 2.0, y1 - (y1 - y0) / 2.0
    cy -= (y1 - y0) * CENTER_Y_OFFSET
    scale = (x1 - x0 + y1 - y0) / REFERENCE_SCALE
    h = 200.0 * scale
    return np.array([[CROP / h, 0, CROP * (-cx / h + 0.5)], [0, CROP / h, CROP * (-cy / h + 0.5)]], np.float64)


def heatmaps_to_points(hm: np.ndarray, crop_matrix: np.ndarray) -> np.ndarray:
    """(68, 64, 64) heatmaps -> (68, 2) frame coordinates (argmax + quarter-pixel shift, as face-alignment)."""
    n, H, W = hm.shape
    flat = hm.reshape(n, -1).argmax(1)
    px, py = flat % W, flat // W
    pts = np.stack([px, py], 1).astype(np.float64)
    for j in range(n):
        x, y = px[j], py[j]
        if 0 < x < W - 1 and 0 < y < H - 1:
            d = np.array([hm[j, y, x + 1] - hm[j, y, x - 1], hm[j, y + 1, x] - hm[j, y - 1, x]])
            pts[j] += np.sign(d) * 0.25
    # face-alignment: 1-based argmax - 0.5 = px + 0.5 in heatmap units; x4 to crop pixels; invert the crop affine
    pts = (pts + 0.5) * (CROP / HEATMAP)
    a = crop_matrix[:, :2]
    return ((pts - crop_matrix[:, 2]) @ np.linalg.inv(a).T).astype(np.float32)


class FanBackend:
    """2D-FAN landmarks + S3FD / BlazeFace / dlib-HOG detection from local weight files only."""

    name = "fan"

    def __init__(self, weights_dir: Optional[Union[str, Path]] = None, *, fan_path=None, detector: str = "sfd",
                 detector_path=None, anchors_path=None, back_model: bool = False, device: str = "cpu",
                 flip: bool = False, detect_max_side: int = 640, min_score: float = 0.5):
        folder = Path(weights_dir) if weights_dir else None
        if folder is not None and not folder.is_dir():
            raise ModelMissingError(f"The FAN weights folder does not exist: {folder}.")
        if detector not in ("sfd", "blazeface", "dlib"):
            raise ModelError(f"Unknown FAN face detector {detector!r}: use 'sfd', 'blazeface' or 'dlib'.")
        self.device, self.flip, self.detector_name = device, bool(flip), detector
        self.detect_max_side, self.min_score, self.back_model = int(detect_max_side or 0), float(min_score), back_model

        missing = []
        fan = Path(fan_path) if fan_path else _find(folder, FAN_PATTERNS)
        if fan is None or not fan.is_file():
            missing.append(f"{fan or FAN_EXAMPLE} (2D-FAN landmarks)")
        det = anc = None
        if detector == "sfd":
            det = Path(detector_path) if detector_path else _find(folder, SFD_PATTERNS)
            if det is None or not det.is_file():
                missing.append(f"{det or SFD_EXAMPLE} (S3FD face detector)")
        elif detector == "blazeface":
            wname, aname = BLAZE_FILES[bool(back_model)]
            det = Path(detector_path) if detector_path else _find(folder, (wname,))
            anc = Path(anchors_path) if anchors_path else _find(folder, (aname,))
            if det is None or not det.is_file():
                missing.append(f"{det or wname} (BlazeFace detector)")
            if anc is None or not anc.is_file():
                missing.append(f"{anc or aname} (BlazeFace anchors)")
        if missing:
            where = f" in {folder}" if folder else ""
            raise ModelMissingError(f"FAN backend: missing weight file(s){where}: {', '.join(missing)}. "
                                    "Get them from the face-alignment project yourself (nothing is downloaded), "
                                    "or use the default dlib backend.")
        self.files = {"fan": fan, "detector": det, "anchors": anc}

        import torch

        self._torch = torch
        fan_mod = _fa_module("models/fan.py")
        self._fan = load_network(fan, lambda sd: fan_mod.FAN(fan_stacks(sd)), device, "2D-FAN")
        self._hog = None
        if detector == "sfd":
            s3 = _fa_module("detection/sfd/net_s3fd.py")
            self._det = load_network(det, lambda sd: s3.s3fd(), device, "S3FD detector")
        elif detector == "blazeface":
            bz = _fa_module("detection/blazeface/net_blazeface.py")
            self._det = load_network(det, lambda sd: bz.BlazeFace(back_model=bool(back_model)), device,
                                     "BlazeFace detector")
            try:
                self._det.load_anchors_from_npy(np.load(str(anc)), device)
            except Exception as e:
                raise ModelCorruptError(f"The BlazeFace anchors file {anc} could not be loaded ({e}).") from e
            self._det.min_score_thresh = self.min_score
        else:
            import dlib

            self._det = None
            self._hog = dlib.get_frontal_face_detector()

    def settings_key(self) -> dict:
        return {"backend": self.name, "detector": self.detector_name, "flip": self.flip, "back": self.back_model,
                "detect_max_side": self.detect_max_side, "min_score": self.min_score,
                "files": {k: file_identity(v) for k, v in self.files.items() if v is not None}}

    def prepare(self, frame) -> PreparedFrame:
        return prepare_frame(frame, self.detect_max_side)

    # -- detection ---------------------------------------------------------------------------------------------
    def detect(self, frame) -> List[np.ndarray]:
        pf = self.prepare(frame)
        s = pf.scale
        if s < 1.0:
            import cv2

            small = cv2.resize(pf.bgr, (pf.small.shape[1], pf.small.shape[0]), interpolation=cv2.INTER_AREA)
        else:
            small = pf.bgr
        if self._hog is not None:
            rects = self._hog(pf.small, 0)
            dets = np.array([[r.left(), r.top(), r.right(), r.bottom(), 1.0] for r in rects], np.float64).reshape(-1, 5)
        elif self.detector_name == "sfd":
            dets = self._detect_sfd(small)
        else:
            dets = self._detect_blazeface(small)
        dets = dets[dets[:, 4] >= self.min_score] if len(dets) else dets
        boxes = [np.asarray(d[:4] / s, np.float32) for d in dets]
        boxes.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
        return boxes

    def _detect_sfd(self, bgr: np.ndarray) -> np.ndarray:
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1))).float()[None]
        x = x - torch.tensor([104.0, 117.0, 123.0]).view(1, 3, 1, 1)
        with torch.no_grad():
            out = list(self._det(x.to(self.device)))
        for i in range(len(out) // 2):
            out[2 * i] = torch.softmax(out[2 * i], dim=1)
        dets = s3fd_decode([o.cpu().numpy() for o in out])
        return dets[_nms(dets, 0.3)] if len(dets) else dets

    def _detect_blazeface(self, bgr: np.ndarray) -> np.ndarray:
        import cv2

        size = 256 if self.back_model else 128
        h, w = bgr.shape[:2]
        side = max(h, w)
        sq = np.zeros((side, side, 3), np.uint8)                # letterbox: the whole frame is searched
        oy, ox = (side - h) // 2, (side - w) // 2
        sq[oy:oy + h, ox:ox + w] = bgr[:, :, ::-1]
        img = cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA)
        with self._torch.no_grad():
            p = self._det.predict_on_image(img)
        p = p.cpu().numpy() if hasattr(p, "cpu") else np.asarray(p)
        if len(p) == 0:
            return np.zeros((0, 5))
        ymin, xmin, ymax, xmax, score = p[:, 0], p[:, 1], p[:, 2], p[:, 3], p[:, -1]
        return np.stack([xmin * side - ox, ymin * side - oy, xmax * side - ox, ymax * side - oy, score], 1)

    # -- landmarks ---------------------------------------------------------------------------------------------
    def landmarks(self, frame, box: np.ndarray) -> np.ndarray:
        import cv2

        torch = self._torch
        bgr = frame.bgr if isinstance(frame, PreparedFrame) else frame
        m = fan_crop_matrix(box)
        crop = cv2.warpAffine(np.ascontiguousarray(bgr[:, :, ::-1]), m, (CROP, CROP), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        x = torch.from_numpy(crop.transpose(2, 0, 1).astype(np.float32) / 255.0)[None].to(self.device)
        with torch.no_grad():
            out = self._fan(x)
            hm = (out[-1] if isinstance(out, (list, tuple)) else out)
            if self.flip:
                f = self._fan(torch.flip(x, dims=[3]))
                f = f[-1] if isinstance(f, (list, tuple)) else f
                hm = hm + _flip_heatmaps(f)
        return heatmaps_to_points(hm[0].float().cpu().numpy(), m)


# iBUG-68 left/right correspondences (for the flipped pass)
_FLIP_PAIRS = np.array([16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 26, 25, 24, 23, 22, 21, 20, 19, 18,
                        17, 27, 28, 29, 30, 35, 34, 33, 32, 31, 45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40, 54,
                        53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65])


def _flip_heatmaps(hm):
    import torch

    return torch.flip(hm[:, _FLIP_PAIRS], dims=[3])
