"""core.qc: each flag on a defect made on purpose, and none on a clean copy; the report, the CLI and batch columns.

One held-out GRID s1 clip (evaluation only), tracked once; the defects are tools/qc_defects.py's, encoded like a
dub (H.264 CRF 18 with the clip's own sound). The rates over more clips and real dubs: tools/eval_qc.py.
"""
import csv
import json

import numpy as np
import pytest

from core import audio, media
from core.cli import main
from core.faces.track import track_video
from core.qc.report import run_qc
from core.qc.rules import KINDS, Thresholds, judged_silence, running_median
from data_paths import GRID_S1, heldout_names, read_frames
from tools import qc_defects as D

CLIP = GRID_S1 / "video" / f"{heldout_names()[0]}.mp4"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    base = tmp_path_factory.mktemp("qc")
    cache = base / "tracks"
    tr = track_video(str(CLIP), cache_dir=str(cache)).primary()
    frames = read_frames(CLIP)[:len(tr.present)]
    info = media.probe(str(CLIP))
    silent = ~audio.voice_activity(audio.load_audio(str(CLIP)), float(info.fps), len(frames))
    return {"dir": base, "cache": str(cache), "track": tr, "frames": frames, "silent": silent}


def check(clip, name, frames):
    out = D.write_video(clip["dir"] / f"{name}.mp4", frames, 25, audio_from=CLIP)
    return run_qc(str(CLIP), str(out), track_cache_dir=clip["cache"])


def test_clean_copy_is_not_flagged(clip):
    rep = check(clip, "clean", clip["frames"])
    assert rep.judged.mean() > 0.9
    for k in KINDS:
        assert rep.summary["flagged"][k] <= 0.02, k
    s = rep.summary
    assert s["psnr_outside"] > 35 and s["ssim_outside"] > 0.95 and 0.9 < s["sharpness_ratio"] < 1.1


@pytest.mark.parametrize("defect", ["blur", "box", "step", "jitter"])
def test_made_defect_is_flagged(clip, defect):
    tr = clip["track"]
    frames, hit = getattr(D, defect)(clip["frames"], tr.landmarks, tr.present)
    rep = check(clip, defect, frames)
    kind = D.KINDS[defect]
    aff = hit[:rep.num_frames] & rep.judged
    assert aff.sum() > 30
    assert rep.flags[kind][aff].mean() >= 0.8, (defect, rep.flags[kind][aff].mean())


def test_open_mouth_in_silence_is_flagged(clip):
    tr = clip["track"]
    frames, hit = D.open_silence(clip["frames"], tr.landmarks, tr.present, clip["silent"])
    rep = check(clip, "open", frames)
    aff = hit[:rep.num_frames] & rep.judged & judged_silence(clip["silent"], Thresholds().silence_margin)
    assert aff.sum() > 10
    assert rep.flags["open_in_silence"][aff].mean() >= 0.8
    assert not rep.flags["open_in_silence"][~hit[:rep.num_frames]].any()   # never where the voice speaks


def test_rules_helpers():
    s = np.array([1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1], bool)
    assert judged_silence(s, 2).tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    r = running_median(np.array([1.0, 1.0, 0.2, 1.0, 1.0, np.nan]), 5)
    assert r[2] == 1.0 and np.isnan(r[5])    # one odd frame does not flag; unmeasured stays unmeasured


def test_cli_json_csv_and_bad_media(clip, tmp_path, capsys):
    dub = clip["dir"] / "clean.mp4"
    if not dub.exists():
        D.write_video(dub, clip["frames"], 25, audio_from=CLIP)
    assert main(["qc", "--video", str(CLIP), "--dub", str(dub), "--json", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    n = doc["num_frames"]
    for k in KINDS:
        assert len(doc[k]) == n and all(isinstance(x, bool) for x in doc[k])
    for key in ("psnr_outside", "ssim_outside", "ssim_mouth", "sharpness_ratio", "lmd", "flagged"):
        assert key in doc["summary"]
    out = tmp_path / "qc.csv"
    assert main(["qc", "--video", str(CLIP), "--dub", str(dub), "--csv", str(out), "--quiet"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == n and set(KINDS) <= set(rows[0])
    small = tmp_path / "small.mp4"
    D.write_video(small, [f[::2, ::2].copy() for f in clip["frames"][:10]], 25)
    assert main(["qc", "--video", str(CLIP), "--dub", str(small), "--quiet"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "compare a dub with the video it was made from" in err[0]


def test_batch_row_has_qc_columns():
    from core.batch import QC_FIELDS, SUMMARY_FIELDS, ItemResult

    r = ItemResult(row=1, status="ok", qc={"flagged": {"any": 0.1, "blur": 0.0, "seam": 0.1, "flicker": 0.0,
                                                      "open_in_silence": 0.0},
                                          "psnr_outside": 41.2, "ssim_outside": 0.98, "ssim_mouth": 0.8,
                                          "sharpness_ratio": 0.97})
    row = r.as_row()
    assert list(row) == list(SUMMARY_FIELDS) and set(QC_FIELDS) <= set(row)
    assert row["qc_flagged"] == "0.100" and row["qc_psnr_outside"] == "41.20"
    assert ItemResult(row=2).as_row()["qc_blur"] == ""


def test_lips_are_fitted_only_where_the_open_rule_judges(clip):
    """The report fits the dub's lips only on the silent frames the open-mouth rule judges (2 frames from speech):
    the same flags as fitting them on every silent frame, fewer fits."""
    from core.qc.measure import measure
    from core.qc.rules import flags, open_level

    tr = clip["track"]
    frames, _hit = D.open_silence(clip["frames"], tr.landmarks, tr.present, clip["silent"])
    out = D.write_video(clip["dir"] / "open_fits.mp4", frames, 25, audio_from=CLIP)
    rep = run_qc(str(CLIP), str(out), track_cache_dir=clip["cache"])
    m = rep.measures
    quiet = judged_silence(m.silent, Thresholds().silence_margin)
    fitted = np.isfinite(m["open_dub"])
    assert fitted.any() and not (fitted & ~quiet).any()
    # every silent frame fitted (as before): more fits, the same flags
    n = rep.num_frames
    every = measure(media.iter_frames(str(CLIP)), media.iter_frames(str(out)), tr.landmarks[:n], tr.present[:n],
                    tr.boxes[:n], m.silent, num_frames=n, open_gate=open_level)
    assert (np.isfinite(every["open_dub"]) & m.silent & ~quiet).any()
    f = flags(every)
    for k in KINDS:
        assert np.array_equal(f[k], rep.flags[k]), k
    assert rep.flags["open_in_silence"].any()


def test_prefetch_depth():
    from core.qc.report import prefetch_depth

    assert prefetch_depth(360, 288) == 24 and prefetch_depth(1280, 720) == 18 and prefetch_depth(3840, 2160) == 3
