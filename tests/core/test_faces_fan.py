"""Optional FAN backend: missing files are named, nothing is downloaded, local files load and run.

The real face-alignment weights are not available here, so the networks get random weights of the right
layout (saved the way face-alignment stores them); the geometry (crop, heatmap decoding, S3FD decoding) is
checked exactly on synthetic inputs."""
import urllib.request

import cv2
import numpy as np
import pytest
import torch

from data_paths import GRID_S1, heldout_names
from core.errors import ModelCorruptError, ModelMissingError
from core.faces import fan as F


@pytest.fixture
def no_network(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the FAN backend tried to download something")

    import torch.hub

    for name in ("load_state_dict_from_url", "download_url_to_file"):
        monkeypatch.setattr(torch.hub, name, boom)
    monkeypatch.setattr(urllib.request, "urlopen", boom)


def test_missing_files_are_named(tmp_path, no_network):
    with pytest.raises(ModelMissingError) as e:
        F.FanBackend(tmp_path)
    msg = str(e.value)
    assert "2DFAN4" in msg and "s3fd" in msg and str(tmp_path) in msg and "\n" not in msg
    with pytest.raises(ModelMissingError, match=r"blazeface\.pth.*anchors\.npy"):
        F.FanBackend(tmp_path, detector="blazeface")
    with pytest.raises(ModelMissingError, match="does not exist"):
        F.FanBackend(tmp_path / "nowhere")
    with pytest.raises(ModelMissingError, match="my_fan.pth"):
        F.FanBackend(fan_path=tmp_path / "my_fan.pth", detector="dlib")


def test_corrupt_file_is_reported(tmp_path, no_network):
    (tmp_path / "2DFAN4-bad.pth.tar").write_bytes(b"garbage" * 100)
    with pytest.raises(ModelCorruptError, match="2DFAN4-bad.pth.tar"):
        F.FanBackend(tmp_path, detector="dlib")


def test_local_weights_load_and_run(tmp_path, no_network):
    torch.manual_seed(0)
    net = F._fa_module("models/fan.py").FAN(1)                # one hourglass: a small stand-in for 2DFAN4
    torch.save(net.state_dict(), tmp_path / "2DFAN4-local.pth.tar")
    torch.save(F._fa_module("detection/sfd/net_s3fd.py").s3fd().state_dict(), tmp_path / "s3fd-local.pth")
    be = F.FanBackend(tmp_path, detector="sfd", min_score=0.0)
    assert F.fan_stacks(net.state_dict()) == 1
    key = be.settings_key()["files"]
    assert key["fan"].startswith("2DFAN4-local.pth.tar:") and key["detector"].startswith("s3fd-local.pth:")
    frame = cv2.VideoCapture(str(GRID_S1 / "video" / (heldout_names()[0] + ".mp4"))).read()[1]
    box = np.array([107, 120, 231, 245], np.float32)
    lm = be.landmarks(frame, box)
    assert lm.shape == (68, 2) and lm.dtype == np.float32 and np.isfinite(lm).all()
    # points come from inside the FAN crop around the box (random weights: anywhere in it)
    w = box[2] - box[0]
    assert (lm[:, 0] > box[0] - w).all() and (lm[:, 0] < box[2] + w).all()
    boxes = be.detect(cv2.resize(frame, (90, 72)))                       # S3FD forward + decoding + NMS
    assert isinstance(boxes, list) and all(b.shape == (4,) and b.dtype == np.float32 for b in boxes)


def test_heatmap_decoding_inverts_the_crop():
    box = np.array([100.0, 80.0, 230.0, 215.0])
    m = F.fan_crop_matrix(box)
    pts = np.array([[150.3, 140.7], [120.0, 200.2], [210.9, 100.1]])
    crop = pts @ m[:, :2].T + m[:, 2]
    centre = crop / 4.0 - 0.5                                          # heatmap-pixel coordinates
    yy, xx = np.mgrid[0:64, 0:64]
    hm = np.stack([np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 2.0) for cx, cy in centre])
    out = F.heatmaps_to_points(hm, m)
    px_per_hm = 4.0 / m[0, 0]                                           # image pixels per heatmap pixel
    assert np.abs(out - pts).max() < 0.5 * px_per_hm                  # quarter-pixel decoding precision


def test_s3fd_decoding_of_one_anchor():
    # level 0 (stride 4) 8x8 map, one confident anchor at (x=3, y=2) with zero regression
    cls = np.zeros((1, 2, 8, 8), np.float32)
    cls[0, 0] = 1.0
    cls[0, :, 2, 3] = [0.1, 0.9]
    reg = np.zeros((1, 4, 8, 8), np.float32)
    empty = [np.zeros((1, 2, 1, 1), np.float32), np.zeros((1, 4, 1, 1), np.float32)]
    dets = F.s3fd_decode([cls, reg] + empty * 5)
    assert dets.shape == (1, 5)
    cx, cy = 2 + 3 * 4, 2 + 2 * 4                                       # stride/2 + index*stride
    assert np.allclose(dets[0], [cx - 8, cy - 8, cx + 8, cy + 8, 0.9])  # prior size = 4 * stride
    assert F._nms(np.array([[0, 0, 10, 10, 0.9], [1, 1, 10, 10, 0.8], [50, 50, 60, 60, 0.7]]), 0.3) == [0, 2]


def test_get_backend_by_name(tmp_path, monkeypatch, no_network):
    from core.errors import ModelError
    from core.faces.backends import get_backend
    from core.faces.detect import DlibBackend

    monkeypatch.delenv("LIPDUB_FAN_DIR", raising=False)
    with pytest.raises(ModelMissingError, match="LIPDUB_FAN_DIR"):
        get_backend("fan")
    monkeypatch.setenv("LIPDUB_FAN_DIR", str(tmp_path))
    with pytest.raises(ModelMissingError, match="2DFAN4"):
        get_backend("fan")
    with pytest.raises(ModelError, match="Unknown face backend 'mtcnn'"):
        get_backend("mtcnn")
    assert isinstance(get_backend(), DlibBackend)
