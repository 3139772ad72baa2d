#!/usr/bin/env bash
# Smoke test of the built application (after packaging/build.sh). Not part of CI.
#
#   bash packaging/smoke_test.sh [dist/LipDubStudio]
#
# Runs the bundle the way a user would on a machine with nothing else installed:
# - a fresh HOME (empty caches: first-run costs are measured), no network (unshare -n when permitted),
#   and no ffmpeg on PATH (the bundled one must be used) unless SMOKE_SYSTEM_FFMPEG=1;
# - `--help` and `models` (CLI start-up time), two `dub` runs of the bundled sample (cold, then warm caches),
#   checked with ffprobe (frame count, size, audio stream);
# - the window offscreen (QT_QPA_PLATFORM=offscreen) via `--smoke-test`: empty, then with the sample loaded;
#   and on a real X server through the xcb plugin when xvfb-run is installed;
# - that nothing was written inside the install folder (it may be read-only).
# Engine: classic when its shipped model is in the bundle, else wav2lip with SMOKE_CHECKPOINT (default: a
# random-weights generator in the released format, made with the source tree's .venv and ../shared/reference).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
APPDIR=$(cd "${1:-dist/LipDubStudio}" 2>/dev/null && pwd) || { echo "FAIL: no build at ${1:-dist/LipDubStudio}: run packaging/build.sh" >&2; exit 1; }
APP="$APPDIR/LipDubStudio"
[ -x "$APP" ] || { echo "FAIL: $APP is not executable" >&2; exit 1; }
VIDEO="$ROOT/resources/samples/grid_s1_sample.mp4"
VOICE="$ROOT/resources/samples/voice_sample.wav"
TMP=$(mktemp -d -t lipdub_smoke.XXXXXX)
FAILS=0
RESULTS=()
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); RESULTS+=("FAIL $*"); }
ok() { echo "ok: $*"; RESULTS+=("ok   $*"); }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# ---- the user's environment: fresh home, no ffmpeg on PATH, no network --------------------------------------
mkdir -p "$TMP/home" "$TMP/bin" "$TMP/out"
SYS_PATH=$PATH
if [ "${SMOKE_SYSTEM_FFMPEG:-0}" = 1 ]; then APP_PATH=$SYS_PATH; else APP_PATH="$TMP/bin"; fi
RUN=(env -i HOME="$TMP/home" PATH="$APP_PATH" LANG=C.UTF-8 TMPDIR="$TMP")
if unshare -n true 2>/dev/null; then
  RUN=(unshare -n "${RUN[@]}"); NET="no network (unshare -n)"
else
  NET="network NOT isolated (unshare -n not permitted here)"
fi
echo "environment: fresh HOME=$TMP/home, PATH=$APP_PATH, $NET"
touch "$TMP/stamp"; sleep 1

# ---- engine -------------------------------------------------------------------------------------------------
ENGINE_ARGS=()
if [ -f "$APPDIR/_internal/resources/models/mouth_shape.pt" ]; then
  ENGINE="classic"
else
  CKPT=${SMOKE_CHECKPOINT:-$TMP/wav2lip_random.pth}
  if [ ! -f "$CKPT" ]; then
    "$ROOT/.venv/bin/python" -c "import sys; sys.path.insert(0, '$ROOT'); from pathlib import Path; \
from tools.bench import fill_rule_checkpoint; fill_rule_checkpoint(Path('$CKPT'))" \
      || { echo "FAIL: cannot make a test checkpoint; set SMOKE_CHECKPOINT" >&2; exit 1; }
  fi
  ENGINE="wav2lip (random-weights checkpoint: the classic model is not in this bundle)"
  ENGINE_ARGS=(--engine wav2lip --checkpoint "$CKPT")
fi
echo "engine: $ENGINE"

# ---- CLI start-up ---------------------------------------------------------------------------------------------
for k in 1 2; do
  t0=$(now); "${RUN[@]}" "$APP" --help >"$TMP/help.txt" 2>&1; rc=$?; t1=$(now)
  if [ $rc -eq 0 ] && grep -q "dub" "$TMP/help.txt"; then ok "CLI --help (run $k): $(secs "$t0" "$t1") s"
  else fail "--help exited $rc: $(head -c 300 "$TMP/help.txt")"; fi
done
t0=$(now); "${RUN[@]}" "$APP" models >"$TMP/models.txt" 2>&1; rc=$?; t1=$(now)
if [ $rc -eq 0 ]; then ok "CLI models: $(secs "$t0" "$t1") s ($(grep -c ' ok ' "$TMP/models.txt") model(s) ok)"
else fail "models exited $rc: $(tail -3 "$TMP/models.txt")"; fi
sed 's/^/    /' "$TMP/models.txt"

# ---- offline dub, cold then warm caches ----------------------------------------------------------------------
expect_frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$VIDEO")
for run in cold warm; do
  out="$TMP/out/dub_$run.mp4"
  t0=$(now)
  "${RUN[@]}" "$APP" dub --video "$VIDEO" --audio "$VOICE" -o "$out" "${ENGINE_ARGS[@]}" --quiet --json \
    >"$TMP/dub_$run.json" 2>"$TMP/dub_$run.err"
  rc=$?; t1=$(now)
  if [ $rc -ne 0 ] || [ ! -f "$out" ]; then fail "dub ($run) exited $rc: $(tail -3 "$TMP/dub_$run.err")"; continue; fi
  frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$out")
  size=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0:s=x "$out")
  audio=$(ffprobe -v error -select_streams a:0 -show_entries stream=codec_name,sample_rate -of csv=p=0 "$out")
  lse=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d.get('lse_c','n/a'))" "$TMP/dub_$run.json" 2>/dev/null)
  if [ "$frames" = "$expect_frames" ] && [ "$size" = "360x288" ] && [ -n "$audio" ]; then
    ok "dub ($run caches): $(secs "$t0" "$t1") s, $frames frames $size, audio $audio, LSE-C $lse"
  else
    fail "dub ($run) output: frames=$frames (expected $expect_frames) size=$size audio='$audio'"
  fi
done
[ -s "$TMP/dub_cold.err" ] && sed 's/^/    /' "$TMP/dub_cold.err" | tail -5

# ---- batch (when the command line has it) ---------------------------------------------------------------------
if "${RUN[@]}" "$APP" batch --help >/dev/null 2>&1; then
  printf 'video,voice,output\n%s,%s,b1.mp4\nmissing.mp4,%s,b2.mp4\n' "$VIDEO" "$VOICE" "$VOICE" >"$TMP/out/m.csv"
  t0=$(now); "${RUN[@]}" "$APP" batch "$TMP/out/m.csv" --range 0 10 --no-score --quiet "${ENGINE_ARGS[@]}" \
    2>"$TMP/batch.err"; rc=$?; t1=$(now)
  st=$(cut -d, -f5 "$TMP/out/m_summary.csv" 2>/dev/null | tail -n +2 | tr '\n' ' ')
  if [ $rc -eq 9 ] && [ "$st" = "ok failed " ] && [ -f "$TMP/out/b1.mp4" ]; then ok "batch (1 ok, 1 failed, exit 9): $(secs "$t0" "$t1") s"
  else fail "batch exited $rc, statuses '$st': $(tail -2 "$TMP/batch.err")"; fi
else
  echo "skip: this build has no 'batch' command yet"
fi

# ---- the window -------------------------------------------------------------------------------------------------
gui() {  # gui LABEL PLATFORM [files...]
  local label=$1 platform=$2; shift 2
  local t0 t1 rc
  t0=$(now)
  timeout 150 "${RUN[@]}" QT_QPA_PLATFORM="$platform" "$APP" --smoke-test "$@" >"$TMP/gui.out" 2>"$TMP/gui.err"
  rc=$?; t1=$(now)
  if [ $rc -eq 0 ] && grep -q "^ok:" "$TMP/gui.out"; then ok "GUI $label: $(secs "$t0" "$t1") s ($(grep '^ok:' "$TMP/gui.out"))"
  else fail "GUI $label exited $rc: $(cat "$TMP/gui.out") $(tail -3 "$TMP/gui.err")"; fi
}
gui "offscreen, empty window (includes the app's 0.5 s settle timer)" offscreen
gui "offscreen, sample loaded" offscreen "$VIDEO" "$VOICE"
if command -v xvfb-run >/dev/null 2>&1; then
  t0=$(now)
  timeout 150 xvfb-run -a env -u QT_QPA_PLATFORM HOME="$TMP/home" PATH="$APP_PATH" "$APP" --smoke-test "$VIDEO" "$VOICE" \
    >"$TMP/gui.out" 2>"$TMP/gui.err"; rc=$?; t1=$(now)
  if [ $rc -eq 0 ] && grep -q "^ok:" "$TMP/gui.out"; then ok "GUI xcb under Xvfb, sample loaded: $(secs "$t0" "$t1") s"
  else fail "GUI xcb exited $rc: $(cat "$TMP/gui.out") $(tail -3 "$TMP/gui.err")"; fi
else
  echo "skip: xvfb-run not installed (xcb platform not exercised)"
fi

# ---- read-only install: nothing written inside the bundle ----------------------------------------------------
written=$(find "$APPDIR" -newer "$TMP/stamp" -type f | head -5)
if [ -z "$written" ]; then ok "nothing written inside $APPDIR"; else fail "files written inside the bundle: $written"; fi
numba_files=$(find "$TMP/home" -path '*numba*' -type f | wc -l)
echo "user cache after the runs: $(du -sh "$TMP/home" | cut -f1) ($numba_files numba cache files)"

echo "---- summary ($(du -sh "$APPDIR" | cut -f1) bundle; engine: $ENGINE)"
printf '%s\n' "${RESULTS[@]}"
if [ "${SMOKE_KEEP:-0}" != 1 ]; then rm -rf "$TMP"; else echo "kept $TMP"; fi
[ $FAILS -eq 0 ] && echo "SMOKE TEST PASSED" || { echo "SMOKE TEST FAILED ($FAILS)"; exit 1; }
