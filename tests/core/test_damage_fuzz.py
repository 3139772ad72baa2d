"""The damaged-media fuzz corpus (issue 21): NUM_CASES seeded mutations of the media matrix (tests/damage_corpus.py).

Every case goes through the layer the commands use before any work (probe, then the damage scan of the picture
and of the sound). Each is either refused with its documented error (a typed MediaError: exit code 4, one line)
or accepted with a damage report; nothing else may happen (no other exception, no hang: each case has a time
bound). The report is checked against an independent witness: ffmpeg's per-frame MD5s of the mutated file against
the clean file's. A stream whose decoded frames changed in number (cut, lost, added) must be reported damaged; a
stream that decodes identically must not be. A stream whose frames changed in content only, with no error and no
frame lost, cannot be told from a clean one by decoding (an intra codec decodes a flipped coefficient without
complaint): those cases are counted and printed (`-s`), not failed.

A seeded handful then runs the real `dub` command line: refused with exit 4 and one line, no file left; and with
--allow-damaged, dubbed with the damaged frames listed, or refused.
"""
from __future__ import annotations

import json
import subprocess
import time
from fractions import Fraction

import pytest

from cli_runner import run_cli
from core import media
from core.errors import MediaError
from core.media_damage import AUDIO_SHORT_S, scan_damage
from damage_corpus import NUM_CASES, SEED, Case, corpus_cases, make_case
from data_paths import SAMPLES

CASES = corpus_cases(SEED, NUM_CASES)
NO_ANNOUNCED_LENGTH = ("ogg", "mpeg")   # containers that do not say how long they are: a cut there is a shorter file
CASE_SECONDS = 20.0          # the whole check of one 1.2 s case (probe + two scans) must end within this
VOICE = SAMPLES / "voice_sample.wav"
_WITNESS: dict = {}
TALLY: dict = {}


def witness(path, kind: str):
    """ffmpeg's per-frame (MD5, seconds) of the first stream of `kind` ("video"/"audio"), None when ffmpeg gives
    up; timestamps are dropped (a retimed frame with the same picture is the same)."""
    key = (str(path), kind, path.stat().st_size if path.exists() else 0)
    if key not in _WITNESS:
        sel = "0:v:0" if kind == "video" else "0:a:0"
        try:
            r = subprocess.run([media.ffmpeg_path(), "-nostdin", "-v", "quiet", "-i", str(path), "-map", sel + "?",
                                "-f", "framemd5", "-"], capture_output=True, text=True, timeout=60)
            tb = next((Fraction(ln.split(":")[-1].strip()) for ln in r.stdout.splitlines()
                       if ln.startswith("#tb")), Fraction(1))
            lines = [(ln.split(",")[-1].strip(), float(int(ln.split(",")[3]) * tb))
                     for ln in r.stdout.splitlines() if ln and not ln.startswith("#")]
        except subprocess.TimeoutExpired:
            lines = None
        _WITNESS[key] = lines
    return _WITNESS[key]


def test_corpus_is_seeded_and_large_enough():
    assert len(CASES) >= 100 and corpus_cases(SEED, NUM_CASES) == CASES
    assert {c.mutation for c in CASES} == {"cut", "flip", "zero", "swap", "truncate_audio"}
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fuzz_case_refused_or_damage_listed(matrix_media, fuzz_dir, case: Case):
    src = matrix_media.video(case.base) if case.kind == "video" else matrix_media.voice(case.base)
    path = make_case(matrix_media, case, fuzz_dir)
    t0 = time.perf_counter()
    try:
        info = media.probe(path)
    except MediaError as e:                      # refused: the documented error, one line
        assert "\n" not in str(e) and e.exit_code == 4
        TALLY[case.id] = "refused"
        return
    kinds = (["video"] if info.has_video else []) + (["audio"] if info.has_audio else [])
    reports = {}
    for kind in kinds:
        try:
            reports[kind] = scan_damage(path, info, kind, use_cache=False)
        except MediaError as e:
            assert "\n" not in str(e) and e.exit_code == 4
            TALLY[case.id] = "refused (scan)"
            return
    elapsed = time.perf_counter() - t0
    assert elapsed < CASE_SECONDS, f"{case.id}: {elapsed:.1f} s"
    outcome = []
    for kind, rep in reports.items():
        before, after = witness(src, kind), witness(path, kind)
        if after is None or before is None:
            outcome.append(f"{kind}:no-witness")
            continue
        lost = abs(sum(d for _, d in before) - sum(d for _, d in after))
        unknowable = info.format_name in NO_ANNOUNCED_LENGTH and not rep.damaged
        if len(after) != len(before) and (kind == "video" or lost > AUDIO_SHORT_S) and not unknowable:
            # frames lost (or invented), sound lost beyond the tolerance: must be reported
            assert rep.damaged, f"{case.id}: {kind} has {len(after)} frames instead of {len(before)}, no damage"
            outcome.append(f"{kind}:found")
        elif after == before:                     # decodes exactly as the clean file: no false alarm
            assert not rep.damaged, f"{case.id}: {kind} decodes identically, but: {rep.describe()}"
            outcome.append(f"{kind}:clean")
        elif unknowable and len(after) != len(before):
            outcome.append(f"{kind}:shorter-without-announced-length")
        else:
            outcome.append(f"{kind}:found" if rep.damaged else f"{kind}:silent")
    missing = {"video", "audio"} - set(kinds)
    if case.kind == "video" and "video" in missing:
        outcome.append("video:stream-lost")
    TALLY[case.id] = " ".join(outcome)


def test_fuzz_tally(capsys):
    """Runs after the cases (same module, file order): prints the outcome counts for the issue note."""
    if not TALLY:
        pytest.skip("no fuzz case ran in this session")
    counts: dict = {}
    for outcome in TALLY.values():
        for word in outcome.split():
            counts[word] = counts.get(word, 0) + 1
    silent = sorted(k for k, v in TALLY.items() if "silent" in v)
    with capsys.disabled():
        print(f"\nfuzz corpus: {len(TALLY)} cases; {counts}; silent content changes: {silent}")


HANDFUL = [c for c in CASES if c.kind == "video" and c.base in ("h264_mp4", "hevc_mp4", "vp9_webm", "rot90")][:6]


@pytest.mark.parametrize("case", HANDFUL, ids=[c.id for c in HANDFUL])
def test_fuzz_dub_command_refuses_or_lists(matrix_media, fuzz_dir, tmp_path, case: Case):
    path = make_case(matrix_media, case, fuzz_dir)
    out = tmp_path / "dub.mp4"
    common = ("--quiet", "--no-score", "--no-adapt", "--preset", "ultrafast", "--crf", "30", "--json")
    rc, stdout, stderr = run_cli("dub", "--video", path, "--audio", VOICE, "-o", out, *common)
    assert rc in (0, 4, 6), stderr                   # done, refused (media), or no face in what is left
    assert "Traceback" not in stderr and "internal error" not in stderr
    if rc != 0:
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), stderr
        assert list(tmp_path.iterdir()) == []         # no partial output
    else:
        assert json.loads(stdout)["damaged_frames"] == [] and media.probe(out).num_frames > 0
        out.unlink()
    if rc == 4 and "damaged" in stderr:
        rc, stdout, stderr = run_cli("dub", "--video", path, "--audio", VOICE, "-o", out, "--allow-damaged", *common)
        assert rc in (0, 4, 6), stderr               # dubbed, or nothing at all decodes / no face in what does
        if rc == 0:
            doc = json.loads(stdout)
            assert doc["damaged_frames"] and "video damaged" in stderr
            assert media.probe(out).num_frames == doc["num_frames"]
        else:
            lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("Warning:")]
            assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in stderr, stderr
            assert list(tmp_path.iterdir()) == []
