"""Who speaks, measured (core.sync.asd.speaker): two GRID clips side by side with the sound of one of them; is the
speaking face found (`default_face`, as the pipeline chooses the face to dub)?

    python -m tools.eval_speaker [--set s1|others] [--pairs 10] [--json OUT]

s1: pairs of held-out s1 clips (evaluation only); others: each grid_others speaker with the next (never trained on).
Each pair is scored with the left clip's voice and with the right one's. Prints one JSON line per case and the
accuracy (also of the active-speaker network's mean alone, and per speaker for `others`).
"""
from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def side_by_side(a, b, voice: int, out: Path) -> str:
    from core.media import ffmpeg_path

    subprocess.run([ffmpeg_path(), "-y", "-loglevel", "error", "-i", str(a), "-i", str(b), "-filter_complex",
                    "[0:v]scale=360:288,setsar=1,fps=25[a];[1:v]scale=360:288,setsar=1,fps=25[b];"
                    "[a][b]hstack=inputs=2:shortest=1[v]", "-map", "[v]", "-map", f"{voice}:a", "-t", "3", "-ac", "1",
                    "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-c:a", "aac", str(out)], check=True)
    return str(out)


def cases(which: str, pairs: int):
    if which == "s1":
        names = (DATA / "grid_s1" / "heldout.txt").read_text().split()[100:100 + 2 * pairs]
        video = DATA / "grid_s1" / "video"
        return [(video / f"{names[2 * k]}.mp4", video / f"{names[2 * k + 1]}.mp4") for k in range(len(names) // 2)]
    others = sorted((DATA / "grid_others").glob("*.mpg"))
    return [(others[k], others[(k + 1) % len(others)]) for k in range(min(pairs, len(others)))]


def main(argv=None) -> int:
    import numpy as np

    from core import media
    from core.faces.track import track_video
    from core.sync.asd.speaker import default_face
    from core.sync.lane_adapt import own_voice

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=("s1", "others"), default="s1")
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--json", help="write the rows here")
    a = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="lipdub_speaker_") as d:
        for j, (left, right) in enumerate(cases(a.set, a.pairs)):
            for voice in (0, 1):
                video = side_by_side(left, right, voice, Path(d) / f"pair{j}_{voice}.mp4")
                info = media.probe(video)
                ts = track_video(video, cache_dir=str(Path(d) / "tracks"))
                if len(ts.tracks) != 2:
                    rows.append(dict(pair=j, voice=voice, error=f"{len(ts.tracks)} faces tracked"))
                    print(json.dumps(rows[-1]), flush=True)
                    continue
                order = sorted(ts.tracks, key=lambda t: float(np.nanmean(t.boxes[:, 0])))
                truth = order[voice].track_id
                shot = default_face(video, info, ts, own_voice(video, info),
                                    cache_dir=str(Path(d) / "speaker")).shots[0]
                rows.append(dict(pair=j, voice=voice, speaker=(left, right)[voice].stem, truth=truth,
                                 found=shot.track_id, ok=shot.track_id == truth, by=shot.by,
                                 asd_alone_ok=bool(shot.means) and max(shot.means, key=shot.means.get) == truth,
                                 asd={str(k): round(v, 3) for k, v in shot.means.items()},
                                 sync={str(k): round(v, 2) for k, v in shot.sync.items()}))
                print(json.dumps(rows[-1]), flush=True)
    done = [r for r in rows if "ok" in r]
    print(f"{a.set}: speaking face found {sum(r['ok'] for r in done)}/{len(done)} "
          f"(the network's mean alone: {sum(r['asd_alone_ok'] for r in done)}/{len(done)}; "
          f"decided by {dict(collections.Counter(r['by'] for r in done))})")
    if a.set == "others":
        per = collections.defaultdict(list)
        for r in done:
            per[r["speaker"]].append(r["ok"])
        print("per speaker: " + ", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in per.items()))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
