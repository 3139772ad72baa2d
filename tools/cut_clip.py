"""A clip with scene cuts made from GRID clips (for `--split-shots` tests and benchmarks).

    python -m tools.cut_clip OUT.mp4 --seconds 60

Alternates held-out GRID s1 clips with clips of the other GRID speakers (different faces and backgrounds, so
the tracker sees a cut at each join), each scaled to 360x288 at 25 fps, with their audio (mono 44.1 kHz).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def shot_sources(count: int) -> List[Path]:
    """`count` clips: s1 held-out clips, every second one replaced by another speaker's clip."""
    heldout = (SHARED / "grid_s1" / "heldout.txt").read_text().split()
    others = sorted((SHARED / "grid_others").glob("*.mpg"))
    out = []
    for k in range(count):
        out.append(others[(k // 2) % len(others)] if k % 2 else SHARED / "grid_s1" / "video" / f"{heldout[k]}.mp4")
    return out


def make_cut_clip(out: Path, sources: Sequence[Path], seconds_each: float = 3.0, width: int = 360,
                  height: int = 288) -> Path:
    """Concatenate `sources` (each cut to `seconds_each`), one shot each, into an H.264 + AAC clip."""
    from core.media import ffmpeg_path

    inputs, chains, pads = [], [], []
    for k, src in enumerate(sources):
        inputs += ["-t", f"{seconds_each}", "-i", str(src)]
        chains.append(f"[{k}:v]scale={width}:{height},setsar=1,fps=25[v{k}];"
                      f"[{k}:a]aresample=44100,aformat=channel_layouts=mono[a{k}]")
        pads.append(f"[v{k}][a{k}]")
    graph = ";".join(chains) + ";" + "".join(pads) + f"concat=n={len(sources)}:v=1:a=1[v][a]"
    subprocess.run([ffmpeg_path(), "-hide_banner", "-nostdin", "-v", "error", "-y", *inputs,
                    "-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-crf", "18",
                    "-preset", "veryfast", "-c:a", "aac", str(out)], check=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--seconds", type=float, default=60.0, help="total length (3 s per shot)")
    a = ap.parse_args(argv)
    make_cut_clip(Path(a.out), shot_sources(max(1, int(round(a.seconds / 3.0)))))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
