"""`batch --ray`: rows as Ray tasks on a local Ray instance started here (2 CPUs, once for the module), on short
real GRID clips: outputs, summary and exit code; a worker killed mid-row; a clip split at its scene cuts and
rendered as parallel segments, checked frame by frame against a one-piece render.
"""
import os
import signal
import threading
import time

import numpy as np
import pytest

from core import batch
from core import batch_ray, media
from core.cli import main as cli_main
from data_paths import GRID_S1, heldout_names, read_frames

ray = pytest.importorskip("ray", reason="Ray is installed by tools/install.sh (requirements.txt)")

CLIPS = [GRID_S1 / "video" / f"{name}.mp4" for name in heldout_names()[:5]]
FAST = ["--preset", "ultrafast", "--no-score", "--quiet"]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray instance for the module; its workers inherit this test session's own caches (tests/conftest.py:
    `private_cache`), so a clip another test tracked is not tracked again in each worker."""
    assert batch_ray.connect(None, num_cpus=2)
    yield
    ray.shutdown()


def write_manifest(path, rows):
    path.write_text("\n".join(["video,voice,output"] + [",".join(map(str, r)) for r in rows]) + "\n")
    return path


def test_four_rows_one_missing_file_on_ray(tmp_path, capsys):
    """Rows 1-2 plain, row 3 a missing video, row 4 a project row (video, voice and output from the project)."""
    from core.project import Project

    out = tmp_path / "out"
    proj = Project(video=str(CLIPS[2]))
    proj.add_voice(str(CLIPS[0]))
    proj.export.output = str(out / "d.mp4")
    proj.save(str(tmp_path / "d.lipdub"))
    manifest = tmp_path / "season.csv"
    manifest.write_text("video,voice,output,project\n"
                        f"{CLIPS[0]},{CLIPS[1]},out/a.mp4,\n"
                        f"{CLIPS[1]},{CLIPS[2]},out/b.mp4,\n"
                        f"missing.mp4,{CLIPS[2]},out/c.mp4,\n"
                        ",,,d.lipdub\n")
    rc = cli_main(["batch", str(manifest), "--ray", "--range", "0", "20", "--json", *FAST])
    assert rc == batch.EXIT_SOME_FAILED == 9
    captured = capsys.readouterr()
    import json

    doc = json.loads(captured.out)
    assert doc["exit_code"] == 9 and doc["counts"]["ok"] == 3 and doc["counts"]["failed"] == 1
    rows = list(__import__("csv").DictReader(open(tmp_path / "season_summary.csv", encoding="utf-8")))
    assert rows == doc["rows"]
    assert [r["row"] for r in rows] == ["1", "2", "3", "4"]
    assert [r["status"] for r in rows] == ["ok", "ok", "failed", "ok"]
    assert "does not exist" in rows[2]["error"] and "missing.mp4" in rows[2]["error"]
    for r, name in zip([rows[0], rows[1], rows[3]], "abd"):
        info = media.probe(str(out / f"{name}.mp4"))
        assert r["frames"] == "20" and info.num_frames == 20 and info.has_audio
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mp4", "d.mp4"]   # no temporary files left
    assert captured.err.strip().splitlines()[-1].startswith("batch: 3 ok, 1 failed of 4 rows")


def test_engine_options_of_the_command_line_reach_the_workers(tmp_path, capsys):
    """An engine's own option (here the classic engine's --mouth-model) applies to the rows run on Ray: a model
    file that is not there fails the row, naming it, instead of being silently dropped."""
    manifest = write_manifest(tmp_path / "m.csv", [(CLIPS[0], CLIPS[1], "out/a.mp4")])
    missing = tmp_path / "no_such_mouth_model.pt"
    rc = cli_main(["batch", str(manifest), "--ray", "--range", "0", "10", "--mouth-model", str(missing), *FAST])
    capsys.readouterr()
    assert rc == batch.EXIT_SOME_FAILED
    rows = list(__import__("csv").DictReader(open(tmp_path / "m_summary.csv", encoding="utf-8")))
    assert rows[0]["status"] == "failed" and "no_such_mouth_model.pt" in rows[0]["error"], rows


def test_a_killed_worker_reruns_its_row(tmp_path):
    out = tmp_path / "out"
    items = batch.read_manifest(write_manifest(tmp_path / "m.csv", [(CLIPS[3], CLIPS[4], out / "k.mp4")]))
    killed = []

    def kill_once_encoding(pid):
        """SIGKILL the worker as soon as its row is writing frames (hidden temporary files beside the output)."""
        for _ in range(1200):
            if any(p.name.startswith(".") for p in (out.iterdir() if out.is_dir() else [])):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    def on_start(row, pid):
        if not killed:
            threading.Thread(target=kill_once_encoding, args=(pid,), daemon=True).start()

    done = []
    result = batch_ray.run_batch_ray(items, {"preset": "ultrafast", "frame_range": (0, 60)}, score=False,
                                     on_start=on_start, on_done=lambda k, r: done.append(r))
    assert killed and result.attempts == {1: 2}, (killed, result.attempts)
    (r,) = result.items
    assert r.status == "ok" and r.frames == 60, r
    assert result.exit_code == 0 and done == [r]
    assert media.probe(str(out / "k.mp4")).num_frames == 60
    assert [p.name for p in out.iterdir()] == ["k.mp4"]   # the killed attempt's hidden temporary files are gone
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)                             # that worker really died


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory):
    """3.6 s, three 1.2-s shots (s1 / another speaker / s1)."""
    from tools.cut_clip import make_cut_clip, shot_sources

    return make_cut_clip(tmp_path_factory.mktemp("cuts") / "cuts.mp4", shot_sources(3), seconds_each=1.2)


def test_split_shots_on_ray_is_frame_exact(tmp_path, cut_clip):
    """Lossless encodes (crf 0): the decoded frames show exactly what was rendered, so they must be equal. The whole
    clip is dubbed on Ray too: its workers' networks and BLAS run on one thread (batch_ray.SINGLE_THREAD_ENV), and
    a test process on two would sum in another order (not the same frames when the test runs alone)."""
    one = tmp_path / "one.mp4"
    whole = write_manifest(tmp_path / "w.csv", [(cut_clip, cut_clip, one)])
    assert cli_main(["batch", str(whole), "--ray", "--crf", "0", *FAST]) == 0
    manifest = write_manifest(tmp_path / "m.csv", [(cut_clip, cut_clip, tmp_path / "split.mp4")])
    rc = cli_main(["batch", str(manifest), "--ray", "--split-shots", "--min-shot-seconds", "0.8", "--crf", "0", *FAST])
    assert rc == 0
    from core.faces.track import track_video

    assert list(track_video(str(cut_clip)).cuts) == [30, 60]   # (cached) so the row ran as three segments
    a, b = read_frames(one), read_frames(tmp_path / "split.mp4")
    assert len(a) == len(b) == 90
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, read_frames(cut_clip)))   # it did dub something
    info = media.probe(str(tmp_path / "split.mp4"))
    assert info.has_audio and abs(info.duration - 3.6) < 0.05
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv", "m_summary.csv", "one.mp4", "split.mp4", "w.csv",
                                                          "w_summary.csv"]


def test_without_ray_installed_the_option_says_how_to_add_it(tmp_path):
    import subprocess
    import sys

    from data_paths import ROOT

    manifest = write_manifest(tmp_path / "m.csv", [(CLIPS[0], CLIPS[1], tmp_path / "a.mp4")])
    code = ("import sys; sys.modules['ray'] = None; from core.cli import main; "
            f"sys.exit(main(['batch', {str(manifest)!r}, '--ray', '--quiet']))")
    r = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == [
        "error: --ray needs the Ray package, which this installation does not include: install LipDub Studio "
        "with its 'ray' extra (pip install 'lipdub-studio[ray]', or pip install 'ray[client]' beside it), "
        "or leave out --ray."]
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "m_summary.csv").exists()


@pytest.mark.parametrize("args,expect", [
    (["--ray", "season.csv"], "--ray season.csv: give no address"),
    (["--ray", "--ray-cpus", "0"], "--ray-cpus must be at least 1"),
    (["--ray", "--retries", "-1"], "--retries must be 0 or more"),
    (["--ray", "--split-shots", "--min-shot-seconds", "0"], "--min-shot-seconds must be positive"),
])
def test_bad_ray_options_are_one_line_errors_before_any_work(tmp_path, capsys, args, expect):
    manifest = write_manifest(tmp_path / "m.csv", [(CLIPS[0], CLIPS[1], tmp_path / "a.mp4")])
    assert cli_main(["batch", str(manifest), *args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]


def test_a_retry_sweeps_its_dead_attempts_files_from_any_host(tmp_path):
    """Ray retries a row only after its attempt died: that attempt's temporary output and the files written through
    it go, whichever host ran it; other rows' files, a live writer's, and files that are not a batch row's stay."""
    final = tmp_path / "a.mp4"
    dead = ["node-7.cluster-412", "here-5"]
    gone = [".a.node-7.cluster-412.batch-0a1b2c3d.mp4", "..a.node-7.cluster-412.batch-0a1b2c3d.node-7.cluster-412.q.mp4",
            ".a.here-5.batch-ffffffff.mp4"]
    kept = [".a.b.here-5.batch-ffffffff.mp4",          # the temporary of a.b.mp4, another row's output
            ".a.here-6.batch-ffffffff.mp4",            # a live attempt's
            "a.mp4"]
    for name in gone + kept:
        (tmp_path / name).write_bytes(b"x")
    batch_ray.sweep_attempt_leftovers(final, dead)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
