"""Benchmark of `batch --ray` and `--split-shots` on this machine (figures go to docs/MEASUREMENTS.md).

    python -m tools.bench_batch rows  [--rows 8] [--json OUT]   # sequential vs --ray on GRID rows
    python -m tools.bench_batch split [--seconds 60] [--json OUT]  # one long clip: one piece vs shot segments

rows: N held-out GRID s1 rows (clip i dubbed with clip i+1's voice, default settings, scored), each mode in a fresh
process with its own empty track cache: wall time, peak memory (RSS summed over the process and all its
descendants: Ray's GCS, raylet and workers, ffmpeg), seconds per row inside the row, and Ray's overhead per row
= (wall x cores - seconds inside the rows) / rows, i.e. core time per row not spent dubbing (start-up, worker
imports, scheduling, idle cores at the end). Then the same manifest again with --skip-existing (rows that do
nothing): what Ray costs for no work at all.

split: a clip with a cut every 3 s (tools.cut_clip), dubbed with its own voice, once with `run_dub` and once as a
`--split-shots` row on Ray, at crf 0 (lossless: decoded frames must be identical) and at crf 18 (max difference
and PSNR of the decoded frames: x264 rate control only).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def tree_rss_mb(root_pid: int) -> float:
    """Resident memory of a process and all its descendants, MB (from /proc)."""
    children: dict = {}
    rss: dict = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid = int(stat.parent.name)
            children.setdefault(int(fields[1]), []).append(pid)
            rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total / 2 ** 20


def run_measured(cmd, env) -> dict:
    """Run a command; wall time and peak tree RSS (sampled every 0.2 s); its stdout parsed as JSON."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    peak = [0.0]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.2):
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out = proc.communicate()[0]
    stop.set()
    th.join()
    wall = time.perf_counter() - t0
    doc = json.loads(out.strip().splitlines()[-1])
    return {"wall_s": round(wall, 1), "peak_mb": round(peak[0]), "exit_code": proc.returncode, "summary": doc}


def bench_rows(n: int, cpus: int) -> dict:
    from tools.cut_clip import SHARED

    names = (SHARED / "grid_s1" / "heldout.txt").read_text().split()[: n + 1]
    clips = [SHARED / "grid_s1" / "video" / f"{x}.mp4" for x in names]
    figures: dict = {"rows": n, "cpus": cpus, "machine_cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as d:
        for mode, extra in (("sequential", []), ("ray", ["--ray", "--ray-cpus", str(cpus)])):
            job = Path(d) / mode
            job.mkdir()
            manifest = job / "m.csv"
            manifest.write_text("video,voice,output\n" + "".join(
                f"{clips[i]},{clips[i + 1]},out/{i}.mp4\n" for i in range(n)))
            env = dict(os.environ, LIPDUB_CACHE_DIR=str(job / "cache"))
            cmd = [sys.executable, "main.py", "batch", str(manifest), "--json", "--quiet", *extra]
            r = run_measured(cmd, env)
            rows = r.pop("summary")["rows"]
            inside = sum(float(x["seconds"]) for x in rows)
            r["ok_rows"] = sum(x["status"] == "ok" for x in rows)
            r["row_s_mean"] = round(inside / n, 2)
            r["core_s_per_row_not_dubbing"] = round((r["wall_s"] * (cpus if mode == "ray" else 1) - inside) / n, 2)
            skip = run_measured(cmd + ["--skip-existing"], env)
            r["skip_existing_wall_s"] = skip["wall_s"]
            figures[mode] = r
    figures["speedup"] = round(figures["sequential"]["wall_s"] / figures["ray"]["wall_s"], 2)
    figures["ray_noop_cost_s"] = round(figures["ray"]["skip_existing_wall_s"]
                                       - figures["sequential"]["skip_existing_wall_s"], 1)
    return figures


def compare_frames(a: str, b: str) -> dict:
    """Decoded frames of two files: count, frames that differ, max abs difference, PSNR over the whole clip."""
    import numpy as np

    from core import media

    n = differ = 0
    worst = 0
    sq = 0.0
    for x, y in zip(media.iter_frames(a), media.iter_frames(b)):
        d = np.abs(x.astype(np.int16) - y.astype(np.int16))
        n += 1
        differ += bool(d.any())
        worst = max(worst, int(d.max()))
        sq += float((d.astype(np.float64) ** 2).mean())
    mse = sq / max(n, 1)
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
    return {"frames": n, "frames_a": media.probe(a).num_frames, "frames_b": media.probe(b).num_frames,
            "frames_that_differ": differ, "max_abs_diff": worst, "psnr_db": round(psnr, 2)}


def bench_split(seconds: float, cpus: int, crfs=(0, 18)) -> dict:
    from core import batch_ray
    from core.batch import BatchItem
    from core.pipeline import DubSettings, run_dub
    from tools.cut_clip import make_cut_clip, shot_sources

    figures: dict = {"seconds": seconds, "cpus": cpus}
    with tempfile.TemporaryDirectory(prefix="bench_split_") as d:
        os.environ["LIPDUB_CACHE_DIR"] = str(Path(d) / "cache")
        clip = make_cut_clip(Path(d) / "cuts.mp4", shot_sources(max(1, int(round(seconds / 3.0)))))
        batch_ray.connect(None, num_cpus=cpus)
        try:
            for crf in crfs:
                one, split = Path(d) / f"one{crf}.mp4", Path(d) / f"split{crf}.mp4"
                t0 = time.perf_counter()
                run_dub(DubSettings(video=str(clip), audio=str(clip), output=str(one), crf=crf))
                t_one = time.perf_counter() - t0
                t0 = time.perf_counter()
                res = batch_ray.run_batch_ray([BatchItem(1, str(clip), str(clip), str(split))], {"crf": crf},
                                              score=False, split_shots=True)
                t_split = time.perf_counter() - t0
                assert res.items[0].status == "ok", res.items[0]
                figures[f"crf{crf}"] = {"one_piece_s": round(t_one, 1), "split_on_ray_s": round(t_split, 1),
                                        **compare_frames(str(one), str(split))}
        finally:
            import ray

            ray.shutdown()
        from core.faces.track import track_video

        figures["cuts"] = len(track_video(str(clip)).cuts)
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["rows", "split"])
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--crf", type=int, action="append", help="split: the crf values to compare (default 0 and 18)")
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    figures = bench_rows(a.rows, a.cpus) if a.what == "rows" else bench_split(a.seconds, a.cpus, tuple(a.crf or (0, 18)))
    text = json.dumps(figures, indent=2)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
