"""What goes into the PyInstaller bundle, as plain functions (imported by lipdub.spec; tested without a build).

Kept out of the spec file so that tests/test_packaging_spec.py can check the data list and the binary filter
in a second instead of a five-minute build.
"""
from __future__ import annotations

import fnmatch
import importlib.util
from pathlib import Path
from typing import List, Tuple

APP_NAME = "LipDubStudio"

# Shipped model files (resources/models/NAME.pt + NAME.json + NAME.md) and the bundled sample.
MODEL_PATTERNS = ("*.pt", "*.json", "*.md")
# dlib models from face_recognition_models: the 68-point predictor (tracking) and the face descriptor
# (re-identifying a face after a cut). The 5-point predictor and the CNN detector are not used.
DLIB_FILES = ("shape_predictor_68_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")
# PocketSphinx (core/phones.py) decodes phones with its US-English acoustic model and phone language model only;
# the 26 MB word language model and the dictionary stay out.
PHONE_MODEL_FILES = ("en-us/en-us-phone.lm.bin", "en-us/en-us")

# Python packages never needed at run time (dev tools, optional heavy extras of our dependencies).
EXCLUDES = [
    # GUI toolkits / plotting / notebooks we do not use
    "tkinter", "_tkinter", "matplotlib", "IPython", "ipykernel", "jupyter_client", "notebook", "PyQt5", "PyQt6",
    "PySide2", "OpenGL", "pyqtgraph.opengl", "pyqtgraph.examples", "pyqtgraph.jupyter",
    # dev / build / test tools
    "pytest", "_pytest", "pytestqt", "importlinter", "grimp", "PyInstaller", "pip", "setuptools",
    "pkg_resources", "wheel", "pygments", "rich",
    # librosa and its JIT stack: core computes its mel banks itself (core.audio), nothing imports librosa
    "librosa", "numba", "llvmlite", "pooch", "audioread", "joblib", "resampy",
    # optional extras pulled in by torch / scipy, unused here
    "sklearn", "pandas", "sympy", "mpmath", "networkx", "torchvision", "torchaudio", "tensorboard",
    "torch.utils.tensorboard", "torch.onnx", "face_alignment", "skimage",
    # the `ray` extra (batch --ray): a cluster runs the pip-installed package; the app says how to add it
    "ray", "grpc",
    # (torch.testing._internal must stay: torch.utils.checkpoint imports it when torch is imported)
    # Qt modules we do not use (QtMultimedia needs QtNetwork's library, not its Python module)
    "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets", "PySide6.QtWebEngineQuick", "PySide6.QtWebChannel",
    "PySide6.QtWebSockets", "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtQuick3D",
    "PySide6.Qt3DCore", "PySide6.Qt3DRender", "PySide6.Qt3DExtras", "PySide6.QtCharts",
    "PySide6.QtDataVisualization", "PySide6.QtGraphs", "PySide6.QtPdf", "PySide6.QtPdfWidgets",
    "PySide6.QtBluetooth", "PySide6.QtNfc", "PySide6.QtPositioning", "PySide6.QtLocation", "PySide6.QtSensors",
    "PySide6.QtSerialPort", "PySide6.QtSql", "PySide6.QtDesigner", "PySide6.QtHelp", "PySide6.QtUiTools",
    "PySide6.QtRemoteObjects", "PySide6.QtScxml", "PySide6.QtSpatialAudio", "PySide6.QtTextToSpeech",
    "PySide6.QtHttpServer", "PySide6.QtAxContainer",
]

# Files (destination paths inside the bundle, '/' separated) dropped after analysis: torch's C++ test programs
# and test libraries, protoc, headers; Qt translations (the UI is English only); Qt plugins for platforms a
# desktop app never uses; Qt WebEngine/Quick/QML libraries if something dragged them in.
DROP_PATTERNS = [
    "torch/bin/*Test", "torch/bin/test_*", "torch/bin/protoc*", "torch/bin/*.pt", "torch/bin/*.ptl",
    "torch/bin/upgrader_models/*",
    "torch/lib/libjitbackend_test.so", "torch/lib/libtorchbind_test.so", "torch/lib/libbackend_with_compiler.so",
    "torch/lib/libaoti_custom_ops.so", "torch/include/*", "torch/share/*", "torch/test/*",
    "*.h", "*.hpp", "*.cuh", "*.cmake", "*.a", "*.lib",
    "PySide6/Qt/translations/*",
    "PySide6/Qt/plugins/platforms/libqeglfs.so", "PySide6/Qt/plugins/platforms/libqlinuxfb.so",
    "PySide6/Qt/plugins/platforms/libqvnc.so", "PySide6/Qt/plugins/platforms/libqminimalegl.so",
    "PySide6/Qt/plugins/egldeviceintegrations/*",
    "PySide6/Qt/lib/libQt6WebEngine*", "PySide6/Qt/lib/libQt6Quick*", "PySide6/Qt/lib/libQt6Qml*",
    "PySide6/Qt/lib/libQt6Pdf*", "PySide6/Qt/lib/libQt63D*", "PySide6/Qt/resources/qtwebengine*",
    "PySide6/Qt/qml/*",
    # the CUDA runtime, should a CUDA build of torch be installed (the bundle is CPU-only)
    "nvidia/*", "libcudnn*", "libcublas*", "libcusparse*", "libcufft*", "libcurand*", "libnccl*", "libnvrtc*",
    "libcudart*", "libnvJitLink*", "torch/lib/libtorch_cuda*", "torch/lib/libc10_cuda*",
]


def drop(dest: str) -> bool:
    """True when a bundle entry (destination path) must be left out."""
    d = dest.replace("\\", "/")
    name = d.rsplit("/", 1)[-1]
    for pat in DROP_PATTERNS:
        if "/" in pat:
            if fnmatch.fnmatchcase(d, pat):
                return True
        elif fnmatch.fnmatchcase(name, pat):
            return True
    return False


def face_models_dir() -> Path:
    """face_recognition_models' model folder, found without importing the package (its __init__ needs
    pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("face_recognition_models is not installed: run tools/install.sh first.")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def data_files(root: Path) -> List[Tuple[str, str]]:
    """(source file, destination folder) pairs: resources/ (shipped models, sample), the dlib models,
    the README and the data attribution. Fails loudly when something the app needs is missing."""
    root = Path(root)
    out: List[Tuple[str, str]] = []
    models = root / "resources" / "models"
    for pat in MODEL_PATTERNS:
        for f in sorted(models.glob(pat)):
            out.append((str(f), "resources/models"))
    for f in sorted((root / "resources" / "samples").iterdir()):
        if f.is_file():
            out.append((str(f), "resources/samples"))
    fm = face_models_dir()
    for name in DLIB_FILES:
        f = fm / name
        if not f.is_file():
            raise SystemExit(f"{f} is missing: reinstall face_recognition_models.")
        out.append((str(f), "face_recognition_models/models"))
    import pocketsphinx

    phone_root = Path(pocketsphinx.get_model_path())
    for rel in PHONE_MODEL_FILES:
        src = phone_root / rel
        files = sorted(f for f in src.iterdir() if f.is_file()) if src.is_dir() else [src]
        if not files or not all(f.is_file() for f in files):
            raise SystemExit(f"{src} is missing: reinstall pocketsphinx.")
        for f in files:
            out.append((str(f), str(Path("pocketsphinx/model") / f.parent.relative_to(phone_root))))
    for name in ("README.md",):
        if (root / name).is_file():
            out.append((str(root / name), "."))
    return out


def shipped_model_names(root: Path) -> List[str]:
    """Names of the shipped models (resources/models/*.json) whose weights file is present."""
    import json

    names = []
    for meta in sorted((Path(root) / "resources" / "models").glob("*.json")):
        try:
            d = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (meta.parent / str(d.get("file", ""))).is_file():
            names.append(str(d.get("name", meta.stem)))
    return names
