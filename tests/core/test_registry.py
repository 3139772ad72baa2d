"""core.models.registry: names, models_dir precedence, resolve errors, SHA-256 verification and its cache."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from core.errors import ModelCorruptError, ModelMissingError
from core.model_catalog import known_models, users_of
from core.models import registry
from core.models.registry import REGISTRY, ModelSpec, models_dir, resolve_model

known_models()      # the plug-ins declare the user-supplied files


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("LIPDUB_MODELS_DIR", raising=False)
    monkeypatch.setenv("LIPDUB_CACHE_DIR", str(tmp_path / "cache"))
    registry.clear_hash_cache()
    yield
    registry.clear_hash_cache()


def test_plug_ins_declare_the_files_users_supply():
    expect = {"wav2lip": ("wav2lip.pth", "wav2lip", "engine wav2lip"),
              "wav2lip_gan": ("wav2lip_gan.pth", "wav2lip", "engine wav2lip"),
              "lipsync_expert": ("lipsync_expert.pth", "syncnet_color", "scorer lipsync_expert"),
              "syncnet_v2": ("syncnet_v2.model", "syncnet_v2", "scorer syncnet_v2")}
    for name, (filename, kind, user) in expect.items():
        spec = REGISTRY[name]
        assert (spec.filename, spec.kind, spec.shipped) == (filename, kind, False)
        assert spec.source and spec.licence and users_of(name) == [user]
    assert users_of("mouth_shape") == ["engine classic"] and users_of("sync_lite") == ["scorer lite"]
    for name in ("wav2lip", "wav2lip_gan", "lipsync_expert"):
        assert "non-commercial" in REGISTRY[name].licence
        assert "github.com/Rudrabha/Wav2Lip" in REGISTRY[name].source
    assert "syncnet_v2.model" in REGISTRY["syncnet_v2"].source


def test_models_dir_precedence(tmp_path, monkeypatch):
    import platformdirs

    assert models_dir() == Path(platformdirs.user_data_dir("LipDubStudio", appauthor=False)) / "models"
    monkeypatch.setenv("LIPDUB_MODELS_DIR", str(tmp_path / "env"))
    assert models_dir() == tmp_path / "env"
    assert models_dir(tmp_path / "flag") == tmp_path / "flag"
    assert models_dir(str(tmp_path / "flag")) == tmp_path / "flag"


def test_missing_model_message_names_file_folder_and_source(tmp_path, monkeypatch):
    monkeypatch.setenv("LIPDUB_MODELS_DIR", str(tmp_path / "models"))
    with pytest.raises(ModelMissingError) as exc:
        resolve_model("wav2lip")
    msg = str(exc.value)
    assert "wav2lip.pth" in msg and str(tmp_path / "models") in msg and "github.com/Rudrabha/Wav2Lip" in msg
    assert "\n" not in msg
    with pytest.raises(ModelMissingError, match="syncnet_v2.model.*robots.ox.ac.uk"):
        resolve_model("syncnet_v2", models_dir=tmp_path)


def test_present_file_resolves_and_size_is_checked(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    f = folder / "syncnet_v2.model"
    f.write_bytes(b"\0" * 1000)
    with pytest.raises(ModelCorruptError, match="syncnet_v2.model is only 0.0 MB.*incomplete"):
        resolve_model("syncnet_v2", models_dir=folder)
    assert resolve_model("syncnet_v2", models_dir=folder, verify=False) == f
    with f.open("r+b") as fh:  # sparse file of the right size
        fh.truncate(REGISTRY["syncnet_v2"].min_bytes + 10)
    assert resolve_model("syncnet_v2", models_dir=folder) == f
    # a direct path named like a registry file is checked against that entry
    small = tmp_path / "wav2lip.pth"
    small.write_bytes(b"x" * 100)
    with pytest.raises(ModelCorruptError, match="incomplete"):
        resolve_model(str(small))
    other = tmp_path / "my_finetune.pth"
    other.write_bytes(b"x" * 100)
    assert resolve_model(str(other)) == other


def test_unknown_names_and_paths(tmp_path):
    with pytest.raises(ModelMissingError, match="Unknown model 'wav3lip'.*syncnet_v2"):
        resolve_model("wav3lip")
    with pytest.raises(ModelMissingError, match="not found.*nothere.pth"):
        resolve_model(str(tmp_path / "nothere.pth"))
    with pytest.raises(ModelMissingError, match="is a folder"):
        resolve_model(str(tmp_path))


def _with_spec(monkeypatch, spec):
    monkeypatch.setitem(REGISTRY, spec.name, spec)


def test_sha_mismatch_detected_and_hash_cached(tmp_path, monkeypatch):
    data = os.urandom(4096)
    good = hashlib.sha256(data).hexdigest()
    folder = tmp_path / "m"
    folder.mkdir()
    f = folder / "thing.bin"
    f.write_bytes(data)
    calls = []
    real = registry.sha256_file
    monkeypatch.setattr(registry, "sha256_file", lambda p, *a: calls.append(p) or real(p))

    _with_spec(monkeypatch, ModelSpec("thing", "thing.bin", "x", good, "the test", "test", False))
    assert resolve_model("thing", models_dir=folder) == f
    assert resolve_model("thing", models_dir=folder) == f
    assert len(calls) == 1  # second time from the in-memory cache
    registry.clear_hash_cache()
    assert resolve_model("thing", models_dir=folder) == f
    assert len(calls) == 1  # ... and from the on-disk cache in a "new process"
    cache = json.loads((tmp_path / "cache" / "model_hashes.json").read_text())
    assert cache[str(f.resolve())]["sha256"] == good

    # same size, new content, new mtime: re-hashed and rejected
    f.write_bytes(bytes(reversed(data)))
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 5_000_000_000))
    with pytest.raises(ModelCorruptError, match=r"thing.bin is corrupt.*SHA-256"):
        resolve_model("thing", models_dir=folder)
    assert len(calls) == 2
    # verify=False skips the check for user-supplied files
    assert resolve_model("thing", models_dir=folder, verify=False) == f


def _ship(folder: Path, name: str, payload: bytes, sha: str | None = None) -> None:
    (folder / f"{name}.pt").write_bytes(payload)
    (folder / f"{name}.json").write_text(json.dumps({
        "name": name, "file": f"{name}.pt", "sha256": sha or hashlib.sha256(payload).hexdigest(),
        "kind": "sync_lite", "licence": "MIT", "source": "trained by us on GRID", "metrics": {"r": 0.9}}))


def test_shipped_models_discovered_and_always_verified(tmp_path, monkeypatch):
    shipped = tmp_path / "resources" / "models"
    shipped.mkdir(parents=True)
    _ship(shipped, "toy_lite", b"weights" * 10)
    _ship(shipped, "toy_bad", b"weights" * 10, sha="0" * 64)
    (shipped / "broken.json").write_text("{not json")
    reg = registry.build_registry(shipped)
    assert {"wav2lip", "syncnet_v2", "toy_lite", "toy_bad"} <= set(reg) and "broken" not in reg
    spec = reg["toy_lite"]
    assert spec.shipped and spec.kind == "sync_lite" and spec.metrics == {"r": 0.9}

    with monkeypatch.context() as m:
        m.setattr(registry, "shipped_models_dir", lambda: shipped)
        registry.refresh_registry()
        assert resolve_model("toy_lite") == shipped / "toy_lite.pt"
        with pytest.raises(ModelCorruptError, match="toy_bad.pt is corrupt.*reinstall"):
            resolve_model("toy_bad", verify=False)  # shipped: verified regardless
        (shipped / "toy_lite.pt").unlink()
        with pytest.raises(ModelMissingError, match="shipped model file toy_lite.pt.*reinstall"):
            resolve_model("toy_lite")
    registry.refresh_registry()
    assert "toy_lite" not in REGISTRY
