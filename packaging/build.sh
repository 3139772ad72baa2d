#!/usr/bin/env bash
# Build the one-folder application dist/LipDubStudio/ with PyInstaller (not part of CI: ~5 min, ~1.5 GB).
#
#   bash packaging/build.sh            # build (installs pyinstaller into .venv if missing)
#   bash packaging/smoke_test.sh       # then check that the build starts, dubs offline and opens its window
#
# Options (environment): PYTHON=path/to/python (default .venv/bin/python) · LIPDUB_BUNDLE_FFMPEG=0 to leave out
# the static ffmpeg (~170 MB; the app then uses ffmpeg from PATH) · DIST=dist · WORK=build/pyinstaller.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
DIST=${DIST:-dist}
WORK=${WORK:-build/pyinstaller}
if [ ! -x "$PY" ]; then
  echo "No Python at $PY: run 'make install' (tools/install.sh) first, or set PYTHON." >&2; exit 1
fi
if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
  "$PY" -m pip install -q 'pyinstaller>=6'
fi
# The shipped models must be there: a bundle without them cannot run the default (classic) engine.
missing=$("$PY" - <<'EOF'
import sys
sys.path.insert(0, "packaging")
import spec_helpers as H
names = H.shipped_model_names(".")
print(" ".join(n for n in ("mouth_shape", "sync_lite") if n not in names))
EOF
)
if [ -n "$missing" ]; then
  echo "warning: shipped model(s) missing from resources/models: $missing (the bundle will lack them)" >&2
fi
# Analysis imports librosa/numba: keep numba's cache out of the source tree.
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$HOME/.cache/lipdub/numba}"

start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" packaging/lipdub.spec
end=$(date +%s)

APP="$DIST/LipDubStudio"
"$PY" - "$APP" "$((end - start))" <<'EOF'
import json, os, subprocess, sys, time
app, secs = sys.argv[1], int(sys.argv[2])
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(app) for f in fs
           if not os.path.islink(os.path.join(d, f)))
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
info = {"built": time.strftime("%Y-%m-%d %H:%M:%S"), "commit": commit, "build_seconds": secs,
        "size_bytes": size}
with open(os.path.join(app, "BUILD_INFO.json"), "w") as fh:
    json.dump(info, fh, indent=1)
print(f"built {app} in {secs // 60} min {secs % 60} s: {size / 1e9:.2f} GB ({size / 2**20:.0f} MiB), commit {commit}")
EOF
