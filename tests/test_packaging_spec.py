"""Fast checks of the PyInstaller packaging (no build: that takes minutes and is not part of CI).

What goes into the bundle (spec_helpers), what is dropped, and what the runtime hook does to the environment
of the frozen app, checked against the real files of this checkout and a simulated bundle folder.
"""
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
sys.path.insert(0, str(PACKAGING))
import spec_helpers as H  # noqa: E402


def test_data_files_bundle_resources_and_dlib_models():
    datas = H.data_files(ROOT)
    by_dest = {}
    for src, dest in datas:
        assert Path(src).is_file(), src
        by_dest.setdefault(dest, set()).add(Path(src).name)
    assert {"grid_s1_sample.mp4", "voice_sample.wav", "ATTRIBUTION.md"} <= by_dest["resources/samples"]
    assert by_dest["face_recognition_models/models"] == set(H.DLIB_FILES)
    # the phone decoder's acoustic model and phone LM (core/phones.py), where pocketsphinx looks in the bundle
    assert "en-us-phone.lm.bin" in by_dest["pocketsphinx/model/en-us"]
    assert {"mdef", "means", "variances"} <= by_dest["pocketsphinx/model/en-us/en-us"]
    assert "en-us.lm.bin" not in by_dest["pocketsphinx/model/en-us"]   # the 26 MB word model is not needed
    # every shipped model's weights, description and card (whatever is committed now)
    models = ROOT / "resources" / "models"
    wanted = {f.name for f in models.iterdir() if f.suffix in (".pt", ".json", ".md")} if models.is_dir() else set()
    assert by_dest.get("resources/models", set()) == wanted
    for meta in models.glob("*.json") if models.is_dir() else []:
        d = json.loads(meta.read_text())
        assert d["file"] in wanted, f"{meta.name} names {d['file']}, which would not be bundled"


def test_frozen_resource_paths_match_the_bundle_layout(monkeypatch, tmp_path):
    """core finds resources/ under sys._MEIPASS when frozen: the destinations above must be those folders."""
    from core.models import registry

    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert registry.shipped_models_dir() == tmp_path / "resources" / "models"
    dests = {d for _, d in H.data_files(ROOT)}
    assert "resources/samples" in dests
    # the predictor path the runtime hook points core.faces.detect to
    assert (Path("face_recognition_models/models") / "shape_predictor_68_face_landmarks.dat").as_posix() in {
        f"{d}/{Path(s).name}" for s, d in H.data_files(ROOT)}


@pytest.mark.parametrize("dest,dropped", [
    ("torch/bin/test_api", True), ("torch/bin/TCPStoreTest", True), ("torch/bin/protoc-3.13.0.0", True),
    ("torch/lib/libtorchbind_test.so", True), ("torch/include/ATen/ATen.h", True),
    ("torch/lib/libtorch_cpu.so", False), ("torch/lib/libc10.so", False), ("torch/bin/torch_shm_manager", False),
    ("torch/lib/libgomp.so.1", False),
    ("PySide6/Qt/translations/qtbase_de.qm", True),
    ("PySide6/Qt/plugins/platforms/libqoffscreen.so", False), ("PySide6/Qt/plugins/platforms/libqxcb.so", False),
    ("PySide6/Qt/plugins/platforms/libqwayland.so", False), ("PySide6/Qt/plugins/platforms/libqeglfs.so", True),
    ("PySide6/Qt/plugins/multimedia/libffmpegmediaplugin.so", False),
    ("PySide6/Qt/lib/libQt6WebEngineCore.so.6", True), ("PySide6/Qt/lib/libQt6Widgets.so.6", False),
    ("resources/models/mouth_shape.pt", False), ("face_recognition_models/models/x.dat", False),
    ("nvidia/cudnn/lib/libcudnn.so.9", True), ("libcublas.so.12", True),
])
def test_drop_filter(dest, dropped):
    assert H.drop(dest) is dropped


def test_excludes_keep_what_the_app_imports():
    for needed in ("torch", "numpy", "scipy", "cv2", "dlib", "PySide6.QtMultimedia", "PySide6.QtWidgets",
                   "pyqtgraph", "soxr", "soundfile", "platformdirs", "tqdm", "core", "app",
                   "torch.testing._internal.logging_tensor"):
        assert not any(needed == e or needed.startswith(e + ".") for e in H.EXCLUDES), needed


def test_spec_and_scripts_are_consistent():
    spec = (PACKAGING / "lipdub.spec").read_text()
    ast.parse(spec)
    for name in ("rthook_lipdub.py", "spec_helpers", "main.py"):
        assert name in spec
    for script in ("build.sh", "smoke_test.sh"):
        r = subprocess.run(["bash", "-n", str(PACKAGING / script)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def run_hook(tmp_path, env_extra):
    """Execute the runtime hook as the frozen app would (sys._MEIPASS set) and return the resulting environment."""
    bundle = tmp_path / "bundle" / "_internal"
    (bundle / "face_recognition_models" / "models").mkdir(parents=True, exist_ok=True)
    (bundle / "face_recognition_models" / "models" / "shape_predictor_68_face_landmarks.dat").write_bytes(b"x")
    code = (f"import sys, os, json; sys._MEIPASS = {str(bundle)!r}; "
            f"exec(open({str(PACKAGING / 'rthook_lipdub.py')!r}).read()); print(json.dumps(dict(os.environ)))")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home"), **env_extra}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return bundle, json.loads(r.stdout)


def test_runtime_hook_user_writable_numba_cache_predictor_and_library_path(tmp_path):
    mine = tmp_path / "mylibs"
    bundle, env = run_hook(tmp_path, {"LD_LIBRARY_PATH": f"{tmp_path / 'bundle' / '_internal'}:{mine}"})
    numba = Path(env["NUMBA_CACHE_DIR"])
    assert numba.is_dir() and str(numba).startswith(str(tmp_path / "home")) and "LipDubStudio" in str(numba)
    assert env["LIPDUB_DLIB_PREDICTOR"] == str(bundle / "face_recognition_models" / "models"
                                               / "shape_predictor_68_face_landmarks.dat")
    assert env["LD_LIBRARY_PATH"] == str(mine)   # children (ffmpeg) must not load the bundle's libraries

    user = {"LD_LIBRARY_PATH_ORIG": str(tmp_path / "user" / "libs"), "NUMBA_CACHE_DIR": str(tmp_path / "my" / "cache"),
            "LIPDUB_DLIB_PREDICTOR": str(tmp_path / "my" / "pred.dat")}
    _, env2 = run_hook(tmp_path, {"LD_LIBRARY_PATH": str(tmp_path / "bundle-set"), **user})
    assert (env2["LD_LIBRARY_PATH"], env2["NUMBA_CACHE_DIR"], env2["LIPDUB_DLIB_PREDICTOR"]) == \
        (user["LD_LIBRARY_PATH_ORIG"], user["NUMBA_CACHE_DIR"], user["LIPDUB_DLIB_PREDICTOR"])   # the user's own settings win
    assert "LD_LIBRARY_PATH_ORIG" not in env2


def test_runtime_hook_falls_back_when_home_is_read_only(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").write_text("a file where the cache folder should be")   # mkdir under it fails
    (tmp_path / "t").mkdir()
    _, env = run_hook(tmp_path, {"XDG_CACHE_HOME": str(home / ".cache"), "TMPDIR": str(tmp_path / "t")})
    numba = Path(env["NUMBA_CACHE_DIR"])
    assert numba.parent == tmp_path / "t" and numba.name.startswith("lipdub-numba-") and numba.is_dir()


def test_nothing_the_app_imports_is_excluded_from_the_bundle():
    """Import what the frozen app imports on its main paths (CLI, engines, scoring, GUI) and check that no
    module loaded is one the spec excludes (the build would then fail at run time with ModuleNotFoundError)."""
    code = (
        "import sys, json\n"
        f"sys.path[:0] = [{str(ROOT)!r}, {str(PACKAGING)!r}]\n"
        "import spec_helpers as H\n"
        "import torch, core.cli, core.batch, core.pipeline, core.engines.wav2lip, core.engines.classic, "
        "core.engines.teeth, core.engines.warp, core.compose, core.sync.scoring, core.faces.track, core.faces.detect, "
        "core.project, core.models.registry, core.mouth_shape\n"
        "import scipy.spatial, scipy.signal, scipy.fft, dlib, cv2, soundfile, soxr\n"
        "import app.main, app.main_window\n"
        "bad = sorted(m for m in sys.modules if any(m == e or m.startswith(e + '.') for e in H.EXCLUDES))\n"
        "print(json.dumps(bad))\n")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []
