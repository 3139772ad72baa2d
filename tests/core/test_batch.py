"""`batch`: a CSV manifest of dub jobs rendered headless, failures recorded, summary CSV, exit codes, cancel.

Real renders use the bundled sample with short frame ranges and the default (classic) engine with its shipped
model; the other engine goes through the same wiring (manifest, settings, outputs, summary, cancel).
"""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import batch, media
from core.cli import main
from core.errors import LipDubError, ProjectError
from data_paths import ROOT

SAMPLES = ROOT / "resources" / "samples"
VIDEO = SAMPLES / "grid_s1_sample.mp4"
VOICE = SAMPLES / "voice_sample.wav"


@pytest.fixture(autouse=True)
def own_cache(private_cache, monkeypatch):
    monkeypatch.setenv("LIPDUB_CACHE_DIR", str(private_cache))


def make_job(tmp_path, rows, header="video,voice,output"):
    """A job folder with the sample media copied in (so relative paths are tested) and a manifest."""
    job = tmp_path / "job"
    (job / "media").mkdir(parents=True)
    (job / "media" / VIDEO.name).write_bytes(VIDEO.read_bytes())
    (job / "media" / VOICE.name).write_bytes(VOICE.read_bytes())
    manifest = job / "manifest.csv"
    manifest.write_text("\n".join([header] + rows) + "\n", encoding="utf-8")
    return job, manifest


def read_summary(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------------------- real renders

def test_three_rows_two_ok_one_missing_video(tmp_path, capsys, monkeypatch):
    job, manifest = make_job(tmp_path, [
        "media/grid_s1_sample.mp4,media/voice_sample.wav,out/first.mp4",
        "",                                                              # blank lines are ignored
        "media/grid_s1_sample.mp4,media/voice_sample.wav,out/second.mp4",
        "media/no_such_clip.mp4,media/voice_sample.wav,out/third.mp4",
    ])
    monkeypatch.chdir(tmp_path)   # relative paths must resolve against the manifest's folder, not the cwd
    summary = tmp_path / "summary.csv"
    rc = main(["batch", str(manifest), "--out-summary", str(summary), "--range", "0", "8", "--crf", "30",
                     "--preset", "ultrafast", "--quiet"])
    err = capsys.readouterr().err
    assert rc == batch.EXIT_SOME_FAILED == 9
    rows = read_summary(summary)
    assert list(rows[0].keys()) == list(batch.SUMMARY_FIELDS)
    assert [r["row"] for r in rows] == ["1", "3", "4"]
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    for r, name in zip(rows[:2], ("first", "second")):
        out = job / "out" / f"{name}.mp4"
        assert r["output"] == str(out) and r["video"] == str(job / "media" / VIDEO.name)
        assert r["frames"] == "8" and float(r["seconds"]) > 0 and r["error"] == ""
        info = media.probe(str(out))
        assert info.num_frames == 8 and info.has_audio and (info.width, info.height) == (360, 288)
        assert r["lse_c"] == "" or float(r["lse_c"]) == float(r["lse_c"])   # a number when a scorer exists
    bad = rows[2]
    assert "does not exist" in bad["error"] and "no_such_clip.mp4" in bad["error"] and "\n" not in bad["error"]
    assert bad["frames"] == "0" and bad["lse_c"] == ""
    assert not (job / "out" / "third.mp4").exists()
    assert sorted(p.name for p in (job / "out").iterdir()) == ["first.mp4", "second.mp4"]   # no temp files left
    last = err.strip().splitlines()[-1]
    assert last.startswith("batch: 2 ok, 1 failed of 3 rows") and str(summary) in last


def test_cancel_inside_a_row_leaves_no_output_and_skips_the_rest(tmp_path):
    job, manifest = make_job(tmp_path, [
        "media/grid_s1_sample.mp4,media/voice_sample.wav,out/a.mp4",
        "media/grid_s1_sample.mp4,media/voice_sample.wav,out/b.mp4",
    ])
    (job / "out").mkdir()
    (job / "out" / "a.mp4").write_bytes(b"previous render")   # an existing output must survive a cancel
    from core.progress import CancelToken

    token = CancelToken()
    seen = []

    def progress(stage, done, total):
        seen.append(stage)
        if stage == "dub" and done > 0:   # frames already encoded into the row's temporary file
            token.cancel()

    a = batch.add_parser(__import__("argparse").ArgumentParser().add_subparsers()).parse_args(
        [str(manifest), "--range", "0", "12", "--batch-size", "4", "--no-score", "--quiet"])
    rc = batch.run_from_args(a, progress, token)
    assert rc == batch.EXIT_CANCELLED == 130
    assert "dub" in seen
    rows = read_summary(job / "manifest_summary.csv")   # default summary path, written after a cancel too
    assert [r["status"] for r in rows] == ["cancelled", "skipped"]
    assert "cancel" in rows[1]["error"]
    assert sorted(p.name for p in (job / "out").iterdir()) == ["a.mp4"]
    assert (job / "out" / "a.mp4").read_bytes() == b"previous render"


def test_ctrl_c_in_a_subprocess(tmp_path):
    job, manifest = make_job(tmp_path, [
        "media/grid_s1_sample.mp4,media/voice_sample.wav,out/a.mp4",
        "media/grid_s1_sample.mp4,media/voice_sample.wav,out/b.mp4",
    ])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "main.py", "batch", str(manifest), "--batch-size", "4", "--no-score"],
                            cwd=str(ROOT), env=env, stderr=subprocess.PIPE, text=True)
    lines = []
    t0 = time.time()
    for line in proc.stderr:   # the per-row start line comes before the row's tracking/model loading
        lines.append(line)
        if line.startswith("[1/2]"):
            break
        assert time.time() - t0 < 120, "".join(lines)
    time.sleep(0.5)   # inside the row (imports, tracking, engine preparation: seconds)
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, "".join(lines) + rest
    assert [r["status"] for r in read_summary(job / "manifest_summary.csv")] == ["cancelled", "skipped"]
    assert not (job / "out").exists() or list((job / "out").iterdir()) == []
    assert "1 cancelled" in rest.strip().splitlines()[-1]


# ------------------------------------------------------------------------------------- manifest problems

@pytest.mark.parametrize("case,expect", [
    ("missing", "does not exist"),
    ("empty", "is empty"),
    ("header_only", "lists no rows"),
    ("no_voice_column", "no 'voice' column"),
    ("binary", "not a UTF-8 text file"),
])
def test_unusable_manifest_is_one_clear_error(tmp_path, capsys, case, expect):
    m = tmp_path / "m.csv"
    if case == "empty":
        m.write_text("\n\n")
    elif case == "header_only":
        m.write_text("video,voice,output\n")
    elif case == "no_voice_column":
        m.write_text("video,audio,output\na.mp4,b.wav,c.mp4\n")
    elif case == "binary":
        m.write_bytes(b"\xff\xfe\x00\x81video")
    rc = main(["batch", str(m), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == batch.EXIT_BAD_MANIFEST == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expect in err[0] and "m.csv" in err[0]
    assert not (tmp_path / "m_summary.csv").exists()


def test_manifest_columns_any_order_semicolons_bom_and_absolute_paths(tmp_path):
    m = tmp_path / "sub" / "m.csv"
    m.parent.mkdir()
    m.write_bytes("\ufeffOutput ; Notes ; VIDEO ; voice\n"
                  f"o.mp4 ; x ; {VIDEO} ; v.wav\n".encode("utf-8"))
    [item] = batch.read_manifest(m)
    assert item.row == 1 and item.video == str(VIDEO) and item.project is None
    assert item.voice == str(m.parent / "v.wav") and item.output == str(m.parent / "o.mp4")


# ------------------------------------------------------------------------------------- rows, settings, failures

class FakeResult:
    def __init__(self, n):
        self.num_frames = n
        self.report = None
        self.messages = []


def test_failures_do_not_stop_the_batch_and_reasons_are_one_line(tmp_path):
    job, manifest = make_job(tmp_path, [
        "media/grid_s1_sample.mp4,media/voice_sample.wav,out/boom.mp4",
        "media/grid_s1_sample.mp4,,out/novoice.mp4",
        "media/grid_s1_sample.mp4,media/voice_sample.wav,media/grid_s1_sample.mp4",   # output == input
        "media/grid_s1_sample.mp4,media/voice_sample.wav,out/fine.mp4",
        "media/grid_s1_sample.mp4,media/voice_sample.wav,out/fine.mp4",                  # same output again
    ])
    calls = []

    def runner(settings, progress=None, cancel=None, score=True):
        calls.append(settings)
        if "boom" in settings.output:
            raise RuntimeError("boom\nwith a second line")
        Path(settings.output).write_bytes(b"video")
        return FakeResult(7)

    res = batch.run_batch(batch.read_manifest(manifest), runner=runner)
    st = [(r.status, r.error) for r in res.items]
    assert st[0] == ("failed", "internal error: RuntimeError: boom with a second line")
    assert st[1][0] == "failed" and "voice cell is empty" in st[1][1]
    assert st[2][0] == "failed" and "same as an input" in st[2][1]
    assert st[3] == ("ok", "") and res.items[3].frames == 7
    assert st[4][0] == "failed" and "also the output of row 4" in st[4][1]
    assert res.exit_code == 9 and not res.cancelled
    # the runner writes to a temporary name beside the output; only success is renamed into place
    assert len(calls) == 2 and all(Path(c.output).name.startswith(".") for c in calls)
    assert sorted(p.name for p in (job / "out").iterdir()) == ["fine.mp4"]


def test_skip_existing_and_all_ok_exit_zero(tmp_path):
    job, manifest = make_job(tmp_path, [
        "media/grid_s1_sample.mp4,media/voice_sample.wav,out/old.mp4",
        "media/grid_s1_sample.mp4,media/voice_sample.wav,out/new.mp4",
    ])
    (job / "out").mkdir()
    (job / "out" / "old.mp4").write_bytes(b"keep me")

    def runner(settings, progress=None, cancel=None, score=True):
        Path(settings.output).write_bytes(b"video")
        return FakeResult(3)

    res = batch.run_batch(batch.read_manifest(manifest), skip_existing=True, runner=runner)
    assert [r.status for r in res.items] == ["skipped", "ok"] and res.exit_code == 0
    assert (job / "out" / "old.mp4").read_bytes() == b"keep me"
    batch.write_summary(tmp_path / "s.csv", res.items)
    assert [r["status"] for r in read_summary(tmp_path / "s.csv")] == ["skipped", "ok"]
    assert res.total_line().startswith("batch: 1 ok, 0 failed, 1 skipped of 2 rows")


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)


def test_the_next_run_of_a_row_removes_what_a_killed_run_left(tmp_path):
    """A batch killed mid-row (kill -9) leaves its temporary output and the encoder's files written through it;
    the next run of that row removes them (core.atomic: their owner no longer runs), not a live run's."""
    import socket

    job, manifest = make_job(tmp_path, ["media/grid_s1_sample.mp4,media/voice_sample.wav,out/a.mp4"])
    out = job / "out"
    out.mkdir()
    host, dead = socket.gethostname(), _dead_pid()
    torn = [f".a.{host}-{dead}.batch-0a1b2c3d.mp4", f"..a.{host}-{dead}.batch-0a1b2c3d.{host}-{dead}.x1.part.mp4"]
    live = f".a.{host}-{os.getppid()}.batch-99999999.mp4"
    for name in torn + [live]:
        (out / name).write_bytes(b"half")

    def runner(settings, progress=None, cancel=None, score=True):
        assert Path(settings.output).name.startswith(f".a.{host}-{os.getpid()}.batch-")
        Path(settings.output).write_bytes(b"video")
        return FakeResult(3)

    res = batch.run_batch(batch.read_manifest(manifest), runner=runner)
    assert [r.status for r in res.items] == ["ok"]
    assert sorted(p.name for p in out.iterdir()) == sorted(["a.mp4", live])


def test_project_row_takes_the_project_settings_and_options_override_them(tmp_path):
    from core.project import Project

    job, _ = make_job(tmp_path, [])
    from core.engines.wav2lip import Wav2LipOptions

    ckpt = str(tmp_path / "wav2lip.pth")
    proj = Project(video=str(job / "media" / VIDEO.name), engine="wav2lip",
                   engine_options={"wav2lip": Wav2LipOptions(checkpoint=ckpt)}, length_policy="loop",
                   range=(5, 30), teeth_strength=0.5, face_track=0)
    proj.add_voice(str(job / "media" / VOICE.name))
    proj.mask.feather = 0.4
    proj.export.crf = 23
    proj.export.output = str(job / "proj_out.mp4")
    proj.history.set_voice_offset(3)
    proj.save(str(job / "take.lipdub"))
    (job / "m.csv").write_text("video,voice,output,project\n"
                               ",,,take.lipdub\n"
                               ",,out/override.mp4,take.lipdub\n"
                               ",,,missing.lipdub\n")
    items = batch.read_manifest(job / "m.csv")
    s = batch.item_settings(items[0])
    assert (s.video, s.audio, s.output) == (proj.video, proj.voice.path, str(job / "proj_out.mp4"))
    assert (s.engine, s.engine_options["wav2lip"].checkpoint, s.length_policy, s.frame_range, s.crf,
            s.teeth_strength, s.face_track) == ("wav2lip", ckpt, "loop", (5, 30), 23, 0.5, 0)
    assert s.mask.feather == pytest.approx(0.4) and s.edits is not None and s.edits.voice_offset == 3

    a = batch.add_parser(__import__("argparse").ArgumentParser().add_subparsers()).parse_args(
        ["m.csv", "--crf", "30", "--range", "0", "10", "--mask-feather", "0.2", "--checkpoint", "wav2lip_gan"])
    ov, mask = batch.overrides_from_args(a)
    s2 = batch.item_settings(items[1], ov, mask, a)
    assert s2.engine_options["wav2lip"].checkpoint == "wav2lip_gan"   # engine options given explicitly win too
    assert s2.output == str(job / "out" / "override.mp4")
    assert (s2.crf, s2.frame_range, s2.engine, s2.length_policy) == (30, (0, 10), "wav2lip", "loop")
    assert s2.mask.feather == pytest.approx(0.2) and s2.mask.dilation == pytest.approx(proj.mask.dilation)
    with pytest.raises(ProjectError, match="missing.lipdub"):
        batch.item_settings(items[2])

    def runner(settings, progress=None, cancel=None, score=True):
        Path(settings.output).write_bytes(b"video")
        return FakeResult(10)

    res = batch.run_batch(items, ov, mask, runner=runner)
    assert [r.status for r in res.items] == ["ok", "ok", "failed"]
    assert res.items[0].output == str(job / "proj_out.mp4") and (job / "proj_out.mp4").is_file()
    assert "does not exist" in res.items[2].error


def test_bad_option_values_are_rejected_before_any_work(tmp_path, capsys):
    _, manifest = make_job(tmp_path, ["media/grid_s1_sample.mp4,media/voice_sample.wav,out/a.mp4"])
    assert main(["batch", str(manifest), "--range", "10", "5", "--quiet"]) == 2
    assert "--range 10 5 is empty" in capsys.readouterr().err
    assert main(["batch", str(manifest), "--mask-feather", "-1", "--quiet"]) == 2
    assert main(["batch", str(manifest), "--out-summary", str(tmp_path / "nope" / "s.csv"), "--quiet"]) == 2
    assert "summary folder does not exist" in capsys.readouterr().err
    assert not (tmp_path / "job" / "out").exists()
    assert issubclass(batch.ManifestError, LipDubError)


def test_main_py_routes_batch_to_the_cli(tmp_path):
    """`python main.py batch` is the documented entry: failed rows give exit 9 and a summary; a bad manifest, 2."""
    job, manifest = make_job(tmp_path, ["media/no_such_clip.mp4,media/voice_sample.wav,out/x.mp4"])
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    run = subprocess.run([sys.executable, str(ROOT / "main.py"), "batch", str(manifest), "--quiet"],
                         cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 9, run.stderr
    assert "Traceback" not in run.stderr
    rows = read_summary(job / "manifest_summary.csv")
    assert [r["status"] for r in rows] == ["failed"] and "no_such_clip.mp4" in rows[0]["error"]
    bad = job / "bad.csv"
    bad.write_text("colour,size\nred,3\n", encoding="utf-8")
    run = subprocess.run([sys.executable, str(ROOT / "main.py"), "batch", str(bad)],
                         cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_driver_column_makes_performer_rows(tmp_path):
    """A `driver` cell: the row follows that performer video, whose sound is the voice when the voice cell is empty."""
    (tmp_path / "m.csv").write_text("video,voice,output,driver\n"
                                    "a.mp4,,out/a.mp4,booth/a.mp4\n"
                                    "b.mp4,b.wav,out/b.mp4,booth/b.mp4\n"
                                    "c.mp4,c.wav,out/c.mp4,\n")
    items = batch.read_manifest(tmp_path / "m.csv")
    settings = [batch.item_settings(it) for it in items]
    booth = tmp_path / "booth"
    assert settings[0].driver == settings[0].audio == str(booth / "a.mp4")
    assert settings[1].driver == str(booth / "b.mp4") and settings[1].audio == str(tmp_path / "b.wav")
    assert settings[2].driver is None and settings[2].audio == str(tmp_path / "c.wav")
