"""core.models: layouts, official checkpoint formats, fixtures from the reference fill rule, typed errors."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from core.errors import ModelCorruptError, ModelMissingError
from core.models.load import (SyncNetColor, SyncNetV2, Wav2Lip, Wav2LipDiscQual, load_model, load_syncnet,
                         load_wav2lip, read_state_dict)
from models_helper import REFERENCE, filled, layout, ref, save_flat, save_wav2lip_style, tensors

CLASSES = {"wav2lip": Wav2Lip, "syncnet_color": SyncNetColor, "syncnet_v2": SyncNetV2,
           "wav2lip_disc_qual": Wav2LipDiscQual}
ATOL = 1e-5


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # the fixtures were made with 1 thread (and we share 2 cores)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_state_dict_layout_matches_official(name):
    lay = layout(name)
    sd = CLASSES[name]().state_dict()
    got = [[k, list(v.shape), "int64" if v.dtype == torch.int64 else "float32"] for k, v in sd.items()]
    assert got == [[k, list(s), d] for k, s, d in lay["entries"]]
    assert sum(p.numel() for p in CLASSES[name]().parameters()) == lay["total_parameters"]


def test_fill_rule_matches_published_checksums():
    sums = json.loads((REFERENCE / "fill_checksums.json").read_text())
    assert sums["seed"] == 1234
    for name, per_key in sums["models"].items():
        arrays = filled(name)
        assert list(arrays) == list(per_key)
        for key, (total, total_abs, first) in per_key.items():
            a = arrays[key].astype(np.float64)
            assert a.sum() == pytest.approx(total, rel=1e-9, abs=1e-9), key
            assert np.abs(a).sum() == pytest.approx(total_abs, rel=1e-9, abs=1e-9), key
            assert a.reshape(-1)[0] == pytest.approx(first, rel=1e-7, abs=1e-12), key


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ckpt")


def test_wav2lip_official_format_reproduces_fixture(ckpt_dir):
    path = save_wav2lip_style(ckpt_dir / "wav2lip.pth", "wav2lip")
    model = load_wav2lip(path)
    assert isinstance(model, Wav2Lip) and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    with torch.no_grad():
        out = model(torch.from_numpy(ref("wav2lip", "mel.npy")), torch.from_numpy(ref("wav2lip", "face.npy")))
    np.testing.assert_allclose(out.numpy(), ref("wav2lip", "out.npy"), atol=ATOL, rtol=0)
    # the training layout (B, T, ...) folds time into the batch and gives the same frames back
    face = torch.from_numpy(ref("wav2lip", "face.npy"))[:, :, None].repeat(1, 1, 2, 1, 1)
    mel = torch.from_numpy(ref("wav2lip", "mel.npy"))[:, None].repeat(1, 2, 1, 1, 1)
    with torch.no_grad():
        seq = model(mel, face)
    assert seq.shape == (2, 3, 2, 96, 96)
    np.testing.assert_allclose(seq[:, :, 1].numpy(), ref("wav2lip", "out.npy"), atol=ATOL, rtol=0)


def test_lipsync_expert_official_format_reproduces_fixture(ckpt_dir):
    path = save_wav2lip_style(ckpt_dir / "lipsync_expert.pth", "syncnet_color")
    model = load_syncnet(path)
    assert isinstance(model, SyncNetColor) and model.layout == "syncnet_color"
    with torch.no_grad():
        a, v = model(torch.from_numpy(ref("syncnet_color", "mel.npy")),
                     torch.from_numpy(ref("syncnet_color", "face.npy")))
    np.testing.assert_allclose(a.numpy(), ref("syncnet_color", "audio_embedding.npy"), atol=ATOL, rtol=0)
    np.testing.assert_allclose(v.numpy(), ref("syncnet_color", "face_embedding.npy"), atol=ATOL, rtol=0)
    cos = (a * v).sum(1).numpy()
    np.testing.assert_allclose(cos, [0.35214, 0.33843], atol=1e-5)


def test_expert_without_module_prefix_also_loads(ckpt_dir):
    # color_syncnet_train.py saves/loads without stripping: a single-GPU expert has plain keys
    path = save_wav2lip_style(ckpt_dir / "expert_plain.pth", "syncnet_color", prefix="")
    assert isinstance(load_syncnet(path), SyncNetColor)


def test_syncnet_v2_flat_file_reproduces_fixture(ckpt_dir):
    path = save_flat(ckpt_dir / "syncnet_v2.model", "syncnet_v2")
    model = load_syncnet(path)
    assert isinstance(model, SyncNetV2) and not model.training
    with torch.no_grad():
        aud = model.forward_aud(torch.from_numpy(ref("syncnet_v2", "aud_in.npy")))
        lip = model.forward_lip(torch.from_numpy(ref("syncnet_v2", "lip_in.npy")))
    np.testing.assert_allclose(aud.numpy(), ref("syncnet_v2", "aud_out.npy"), atol=ATOL, rtol=0)
    np.testing.assert_allclose(lip.numpy(), ref("syncnet_v2", "lip_out.npy"), atol=ATOL, rtol=0)


def test_disc_qual_reproduces_fixture(ckpt_dir):
    path = save_wav2lip_style(ckpt_dir / "disc.pth", "wav2lip_disc_qual")
    model = load_model(path, "wav2lip_disc_qual")
    with torch.no_grad():
        out = model(torch.from_numpy(ref("wav2lip_disc_qual", "face.npy")))
    np.testing.assert_allclose(out.numpy(), ref("wav2lip_disc_qual", "out.npy"), atol=ATOL, rtol=0)


def test_read_state_dict_strips_wrapper_and_prefix(ckpt_dir):
    path = save_wav2lip_style(ckpt_dir / "sd.pth", "syncnet_color")
    sd = read_state_dict(path)
    assert list(sd) == [k for k, _, _ in layout("syncnet_color")["entries"]]
    assert not any("module." in k for k in sd)


def test_truncated_file_is_corrupt(ckpt_dir, tmp_path):
    good = save_flat(ckpt_dir / "sync_for_trunc.model", "syncnet_v2").read_bytes()
    bad = tmp_path / "syncnet_v2.model"
    bad.write_bytes(good[: len(good) // 3])
    with pytest.raises(ModelCorruptError, match="syncnet_v2.model"):
        load_syncnet(bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"PK\x03\x04 this is not really a zip" * 3)
    with pytest.raises(ModelCorruptError, match="junk.pth.*Download it again"):
        load_wav2lip(junk)
    page = tmp_path / "wav2lip.pth"
    page.write_bytes(b"\n<!DOCTYPE html><html><body>Sign in to SharePoint</body></html>")
    with pytest.raises(ModelCorruptError, match="wav2lip.pth is a web page"):
        load_wav2lip(page)


def test_wrong_layout_files_are_rejected(ckpt_dir):
    sync = save_flat(ckpt_dir / "sync_for_wrong.model", "syncnet_v2")
    with pytest.raises(ModelCorruptError, match="syncnet_v2.*not a Wav2Lip generator"):
        load_wav2lip(sync)
    disc = save_wav2lip_style(ckpt_dir / "disc_for_wrong.pth", "wav2lip_disc_qual")
    with pytest.raises(ModelCorruptError, match="discriminator, not a SyncNet"):
        load_syncnet(disc)


def test_missing_and_misshaped_keys_name_file_and_key(tmp_path):
    sd = tensors("syncnet_v2")
    del sd["netfcaud.3.weight"]
    path = save_flat_dict(tmp_path / "missing.model", sd)
    with pytest.raises(ModelCorruptError, match=r"missing.model.*'netfcaud\.3\.weight' is missing"):
        load_syncnet(path)
    sd = tensors("syncnet_v2")
    sd["netcnnaud.4.weight"] = torch.zeros(192, 64, 3, 4)
    path = save_flat_dict(tmp_path / "shape.model", sd)
    with pytest.raises(ModelCorruptError, match=r"shape.model.*'netcnnaud\.4\.weight' has shape \(192, 64, 3, 4\)"):
        load_syncnet(path)
    sd = tensors("syncnet_v2")
    sd["netfclip.9.weight"] = torch.zeros(3)
    path = save_flat_dict(tmp_path / "extra.model", sd)
    with pytest.raises(ModelCorruptError, match=r"unexpected key 'netfclip\.9\.weight'"):
        load_syncnet(path)
    sd = tensors("syncnet_v2")
    sd["netfclip.0.bias"][3] = float("nan")
    path = save_flat_dict(tmp_path / "nan.model", sd)
    with pytest.raises(ModelCorruptError, match=r"'netfclip\.0\.bias' contains NaN"):
        load_syncnet(path)


def save_flat_dict(path, sd):
    torch.save(sd, str(path))
    return path


def test_old_files_without_num_batches_tracked_load(tmp_path):
    sd = {k: v for k, v in tensors("syncnet_v2").items() if not k.endswith("num_batches_tracked")}
    model = load_syncnet(save_flat_dict(tmp_path / "old.model", sd))
    np.testing.assert_array_equal(model.netcnnaud[1].running_var.numpy(), filled("syncnet_v2")["netcnnaud.1.running_var"])


def test_untrusted_pickle_falls_back_with_warning(tmp_path):
    path = tmp_path / "np.pth"
    torch.save({"state_dict": tensors("syncnet_v2"), "note": np.array([1, 2])}, str(path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_syncnet(path)
    assert isinstance(model, SyncNetV2)
    assert any("TRUSTING" in str(w.message) and "np.pth" in str(w.message) for w in caught)
    # a plain weights file loads silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_state_dict(save_flat_dict(tmp_path / "plain.pth", {"a": torch.zeros(2)}))


def test_missing_file_and_non_checkpoint(tmp_path):
    with pytest.raises(ModelMissingError, match="nope.pth"):
        load_wav2lip(tmp_path / "nope.pth")
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], str(path))
    with pytest.raises(ModelCorruptError, match="list.pth is not a model checkpoint"):
        read_state_dict(path)
