"""core/ must never import Qt (or the app): every core module is imported in a fresh interpreter in which
PySide6, shiboken6 and pyqtgraph cannot be imported, and afterwards none of them is in sys.modules."""
import subprocess
import sys
import textwrap

from data_paths import ROOT

SCRIPT = textwrap.dedent(r"""
    import importlib, importlib.abc, pkgutil, sys, json
    BLOCKED = ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6", "app")

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked import of {name} (core must stay Qt-free)")
            return None

    sys.meta_path.insert(0, Block())
    import core
    names, failed = [], {}
    for m in pkgutil.walk_packages(core.__path__, "core."):
        names.append(m.name)
        try:
            importlib.import_module(m.name)
        except ImportError as exc:
            if "blocked import" in str(exc):
                failed[m.name] = str(exc)
            # other import errors (optional extras such as face_alignment) are not this test's business
    leaked = sorted(n for n in sys.modules if n.split(".")[0] in BLOCKED)
    print(json.dumps({"modules": names, "failed": failed, "leaked": leaked}))
""")


def test_core_imports_without_qt():
    import json

    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=str(ROOT), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert "core.project" in out["modules"] and "core.pipeline" in out["modules"]
    assert out["failed"] == {}, out["failed"]
    assert out["leaked"] == []


def test_blocker_really_blocks():
    """The test above could pass vacuously if the blocker did nothing: check it on a module that imports Qt."""
    script = SCRIPT.replace("import core\n", "import core\ntry:\n    import PySide6.QtCore\nexcept ImportError as e:\n"
                            "    assert 'blocked import' in str(e), e\nelse:\n    raise SystemExit(3)\n")
    r = subprocess.run([sys.executable, "-c", script], cwd=str(ROOT), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_import_linter_contract_is_kept():
    """The same rule, statically (pyproject.toml's import-linter contract): also catches imports in code paths
    that the import test above never executes (inside functions)."""
    from pathlib import Path

    exe = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(exe)], cwd=str(ROOT), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "The core never imports Qt or the app KEPT" in r.stdout
