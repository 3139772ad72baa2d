#!/usr/bin/env bash
# Installs everything LipDub Studio needs into ./.venv (idempotent). Used by `make` and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v Xvfb >/dev/null 2>&1 || need_apt+=(xvfb)
# Qt's xcb platform plugin (real windows under Xvfb) and fonts; offscreen tests need only fontconfig.
for pkg in libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-randr0 libxcb-shape0 \
           libxcb-xinerama0 libxcb-cursor0 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3 \
           fonts-dejavu-core; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "Missing system packages: ${need_apt[*]} (install them with apt-get as root)" >&2; exit 1
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
  .venv/bin/pip install -q -U pip 'setuptools<81' wheel
  # torch==2.13.0 is the CPU build (see requirements.txt); CUDA is used at run time when present.
  .venv/bin/pip install -q -r requirements.txt
  # face-alignment would pull opencv-python beside the headless build: install it without its deps.
  .venv/bin/pip install -q --no-deps face-alignment==1.5.0
  touch "$stamp"
fi
# librosa compiles with numba on first use (~30 s): warm the cache once, in a cache dir we own.
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$HOME/.cache/lipdub/numba}"
if [ ! -f .venv/.warmed ]; then
  .venv/bin/python -c "import numpy as np, librosa; librosa.stft(np.zeros(16000, np.float32), n_fft=800, hop_length=200)" \
    && touch .venv/.warmed
fi
