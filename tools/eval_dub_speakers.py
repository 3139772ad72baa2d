"""Rendered dubs of speakers other than s1, re-tracked and compared with the real mouth that said the voice.

    python -m tools.eval_dub_speakers [--model M.pt] [--sets others s4 s4_hd] [--pairs 6] [--json OUT]

Every output is re-tracked from scratch (fresh dlib, no cache) and its inner-lip opening compared with the real
mouth that spoke the voice: Pearson r, and amplitude = std of the dubbed opening / std of the real one. The real
clip is re-tracked the same way: the product's tracker smooths its landmarks, which shrinks the opening's std by
3-9% against the raw per-frame tracks of tools.grid_cache, so comparing a smoothed dub with a raw real track would
count the tracker against the dub. `amplitude_raw` keeps that older comparison (against the grid cache) for
continuity with earlier figures.

- `others`: the ten grid_others speakers (one 3 s clip each; never trained on by any model). Each clip is dubbed
  with its *own* voice (the model never saw the speaker, so this is a fair unseen-speaker check; adaptation cannot
  be measured here: there is no second clip of the speaker to measure on, and 3 s is below what adaptation needs).
- `s4`: GRID s4's evaluation half (tools/grid_splits.py). The "actor clip" X is four evaluation clips joined
  (12 s); it is dubbed with the voice of another evaluation clip Y (not in X) and compared with Y's real mouth,
  with adaptation off and on (adaptation sees only X and X's own voice).
- `s4_hd`: the same with X turned into a real-footage proxy (tools.proxies: 1080p, head motion, 29.97 fps,
  CRF 30) whose own voice is reverberant and noisy, and Y's voice degraded the same way.
"""
from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def real_frames_at(num_out: int, num_real: int, fps_ratio: float = 1.0, shift: int = 0) -> np.ndarray:
    """The real clip's frame shown at each output frame's time (`shift` real frames later: a performer video's A/V
    offset, which the dub corrects), within the clip."""
    return np.clip(np.floor(np.arange(num_out) * fps_ratio + 0.5).astype(int) + int(shift), 0, num_real - 1)


def opening_vs(out_track, real_lm, real_present, fps_ratio: float = 1.0, shift: int = 0):
    """(r, amplitude) of the dubbed opening against the real one (real frames sampled at the output's times, `shift`
    real frames later: a performer video's A/V offset, which the dub corrects)."""
    from tools.eval_crossdub import mouth_series

    _, o_out = mouth_series(out_track.landmarks, out_track.present)
    _, o_real = mouth_series(real_lm, real_present)
    idx = real_frames_at(len(o_out), len(o_real), fps_ratio, shift)
    ok = out_track.present & np.asarray(real_present)[idx] & np.isfinite(o_out) & np.isfinite(o_real[idx])
    a, b = o_out[ok], o_real[idx][ok]
    return float(np.corrcoef(a, b)[0, 1]), float(np.std(a) / max(np.std(b), 1e-9))


@functools.lru_cache(maxsize=None)
def real_track(name: str):
    """GRID clip `name` re-tracked by the product's tracker, as the dubs are (once per clip per run)."""
    from tools import grid_splits
    from tools.eval_crossdub import track_fresh

    return track_fresh(str(grid_splits.video_path(name)))


def versus_real(out_path, name: str, fps_ratio: float = 1.0) -> dict:
    """The dub re-tracked against GRID clip `name`'s real mouth, re-tracked by the same tracker (r, amplitude)
    and, for continuity, against its raw grid-cache track (amplitude_raw)."""
    from tools.eval_crossdub import track_fresh
    from tools.grid_cache import load_clip

    real = real_track(name)
    out = track_fresh(str(out_path))
    r, amp = opening_vs(out, real.landmarks, real.present, fps_ratio)
    c = load_clip(name)
    _, amp_raw = opening_vs(out, c["landmarks"], c["present"].astype(bool), fps_ratio)
    return {"r": r, "amplitude": amp, "amplitude_raw": amp_raw}


def write_wav(path: Path, wav: np.ndarray) -> Path:
    import soundfile as sf
    sf.write(str(path), wav, 16000, subtype="FLOAT")
    return path


def concat(paths, out: Path) -> Path:
    lst = out.with_suffix(".txt")
    lst.write_text("".join(f"file '{p}'\n" for p in paths))
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(lst),
                    "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-c:a", "aac", str(out)], check=True)
    return out


def dub(video, voice, out, model, adapt: bool, tmp: Path):
    from core.engines.classic import ClassicOptions
    from core.pipeline import DubSettings, run_dub

    opts = {"classic": ClassicOptions(mouth_model=str(model))} if model else {}
    res = run_dub(DubSettings(video=str(video), audio=str(voice), output=str(out), engine_options=opts, adapt=adapt,
                              track_cache_dir=str(tmp / "tracks"), adapt_cache_dir=str(tmp / "adapt")), score=False)
    return res


def eval_others(model, tmp: Path) -> list:
    from tools import grid_splits

    rows = []
    for name in grid_splits.others_names():
        src = grid_splits.video_path(name)
        res = dub(src, src, tmp / f"{name}_own.mp4", model, adapt=False, tmp=tmp)
        row = {"clip": name, **versus_real(res.output, name)}
        rows.append(row)
        print(f"others {name}: r {row['r']:.3f} amplitude {row['amplitude']:.3f} "
              f"(raw {row['amplitude_raw']:.3f})", flush=True)
    return rows


def eval_s4(model, tmp: Path, pairs: int, hd: bool) -> list:
    from core.audio import load_audio
    from tools import grid_splits, proxies

    names = grid_splits.s4_eval_names()
    rows = []
    for g in range(pairs):
        actor = names[(4 * g) % len(names):(4 * g) % len(names) + 4]
        y = names[(4 * g + 4 + g) % len(names)]
        x = concat([grid_splits.video_path(n) for n in actor], tmp / f"actor{g}.mp4")
        voice = grid_splits.video_path(y)
        fps_ratio = 1.0
        if hd:
            hd_clip = proxies.make_proxy(x, tmp / f"actor{g}_hd_silent.mp4")
            own = write_wav(tmp / f"actor{g}_own.wav", proxies.degrade_voice(load_audio(str(x)), seed=g))
            x = tmp / f"actor{g}_hd.mp4"
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(hd_clip), "-i", str(own), "-map",
                            "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(x)], check=True)
            voice = write_wav(tmp / f"y{g}.wav", proxies.degrade_voice(load_audio(str(voice)), seed=100 + g))
            fps_ratio = 25.0 / (30000 / 1001)
        row = {"actor": actor, "y": y}
        for adapt in (False, True):
            res = dub(x, voice, tmp / f"dub{g}_{int(adapt)}_{int(hd)}.mp4", model, adapt, tmp)
            row["adapted" if adapt else "general"] = versus_real(res.output, y, fps_ratio)
            if adapt:
                row["adaptation"] = res.adaptation.to_json() if res.adaptation is not None else None
        print(f"{'s4_hd' if hd else 's4'} {g}: general r {row['general']['r']:.3f} amp "
              f"{row['general']['amplitude']:.3f} | adapted r {row['adapted']['r']:.3f} amp "
              f"{row['adapted']['amplitude']:.3f} | {row['adaptation'] and row['adaptation']['message']}", flush=True)
        rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="mouth model file (default: the shipped one)")
    ap.add_argument("--sets", nargs="+", default=["others", "s4", "s4_hd"])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    import torch
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="dubspk_"))
    result = {"model": str(a.model or "shipped")}
    for s in a.sets:
        if s == "others":
            rows = eval_others(a.model, tmp)
            result["others"] = {"rows": rows, **{m: float(np.mean([r[m] for r in rows]))
                                                 for m in ("r", "amplitude", "amplitude_raw")}}
        else:
            rows = eval_s4(a.model, tmp, a.pairs, hd=(s == "s4_hd"))
            result[s] = {"rows": rows, **{f"{k}_{m}": float(np.mean([r[k][m] for r in rows]))
                                          for k in ("general", "adapted") for m in ("r", "amplitude", "amplitude_raw")}}
        print(s, {k: round(v, 3) for k, v in result[s].items() if k != "rows"}, flush=True)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
