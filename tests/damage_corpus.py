"""A seeded fuzz corpus of damaged media (issue 21): mutations of the generated media matrix (tests/media_matrix.py)
of the kinds files arrive damaged in: cut off, bytes flipped, a block zeroed, container boxes swapped, the sound
truncated.

    cases = corpus_cases(SEED, 120)                 # [(case id, base name, kind of base, mutation, params)]
    path = make_case(matrix_media, case, folder)    # the mutated file, written once

Everything is drawn from one `random.Random(seed)`: the same seed gives the same files on every machine (the
matrix files themselves are made by the same ffmpeg commands; a different ffmpeg build may encode them differently,
so the *bytes* mutated are the same positions in possibly different files).
"""
from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Dict, List, NamedTuple, Tuple

SEED = 2121
NUM_CASES = 120
BASE_VIDEOS = ("h264_mp4", "hevc_mp4", "h264_yuv444p_mkv", "vp9_webm", "mpeg2_mpg", "mjpeg_avi", "prores_mov",
               "vfr", "rot90", "no_audio")
BASE_VOICES = ("m4a_16k_mono", "mp3_44k_stereo", "opus_ogg", "flac_96k_24bit", "wav_pcm_16_16000_1ch")
MUTATIONS = ("cut", "flip", "zero", "swap", "truncate_audio")


class Case(NamedTuple):
    id: str
    base: str
    kind: str            # "video" | "voice"
    mutation: str
    params: Tuple


def corpus_cases(seed: int = SEED, n: int = NUM_CASES) -> List[Case]:
    """`n` cases cycling over bases and mutations, parameters drawn from `seed`."""
    rng = random.Random(seed)
    bases = [(b, "video") for b in BASE_VIDEOS] + [(b, "voice") for b in BASE_VOICES]
    cases = []
    for k in range(n):
        base, kind = bases[k % len(bases)]
        mutation = MUTATIONS[(k // len(bases) + k) % len(MUTATIONS)]
        if mutation == "truncate_audio" and base == "no_audio":
            mutation = "cut"
        if mutation == "cut":
            params = (round(rng.uniform(0.05, 0.995), 4),)
        elif mutation == "flip":
            count = rng.choice((1, 4, 16, 50, 64))
            params = (count, rng.randrange(2 ** 32))
        elif mutation == "zero":
            params = (round(rng.uniform(0.05, 0.95), 4), rng.choice((512, 1024, 4096, 8192)))
        elif mutation == "swap":
            params = (rng.randrange(2 ** 32),)
        else:
            params = (round(rng.uniform(0.1, 0.9), 4),)
        cases.append(Case(f"{k:03d}_{base}_{mutation}", base, kind, mutation, params))
    return cases


def mp4_boxes(data: bytes, start: int = 0, end: int | None = None) -> List[Tuple[int, int, bytes]]:
    """(offset, size, type) of the boxes between `start` and `end` (an ISO-BMFF level); stops at a malformed box."""
    end = len(data) if end is None else end
    out, pos = [], start
    while pos + 8 <= end:
        size, typ = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1 and pos + 16 <= end:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        elif size == 0:
            size = end - pos
        if size < 8 or pos + size > end:
            break
        out.append((pos, size, typ))
        pos += size
    return out


def swap_boxes(data: bytes, rng: random.Random) -> bytes:
    """Two sibling boxes swapped: inside moov (trak/mvhd/udta) when there are two, else at the top level; for a
    file that is not ISO-BMFF, two blocks of 4 KB swapped."""
    top = mp4_boxes(data)
    moov = [b for b in top if b[2] == b"moov"]
    levels = []
    if moov:
        off, size, _ = moov[0]
        inner = mp4_boxes(data, off + 8, off + size)
        if len(inner) >= 2:
            levels.append(inner)
    if len(top) >= 2:
        levels.append(top)
    if levels:
        boxes = levels[0] if rng.random() < 0.5 or len(levels) == 1 else levels[1]
        i, j = sorted(rng.sample(range(len(boxes)), 2))
        (ai, asz, _), (bj, bsz, _) = boxes[i], boxes[j]
        return data[:ai] + data[bj:bj + bsz] + data[ai + asz:bj] + data[ai:ai + asz] + data[bj + bsz:]
    block = 4096
    if len(data) < 3 * block:
        block = max(16, len(data) // 4)
    a = rng.randrange(0, len(data) - 2 * block)
    b = rng.randrange(a + block, len(data) - block + 1)
    return data[:a] + data[b:b + block] + data[a + block:b] + data[a:a + block] + data[b + block:]


def mutate(data: bytes, case: Case) -> bytes:
    n = len(data)
    if case.mutation in ("cut", "truncate_audio") and case.kind == "voice":
        return data[:max(1, int(n * case.params[0]))]
    if case.mutation == "cut":
        return data[:max(1, int(n * case.params[0]))]
    if case.mutation == "flip":
        count, seed = case.params
        rng = random.Random(seed)
        out = bytearray(data)
        for _ in range(count):
            i = rng.randrange(n)
            out[i] ^= 1 << rng.randrange(8)
        return bytes(out)
    if case.mutation == "zero":
        at, size = case.params
        i = min(int(n * at), max(0, n - size))
        return data[:i] + bytes(min(size, n - i)) + data[i + size:]
    if case.mutation == "swap":
        return swap_boxes(data, random.Random(case.params[0]))
    raise ValueError(case.mutation)


def zero_sound_from(src: Path, data: bytes, fraction: float) -> bytes:
    """`data` (the bytes of `src`) with the payload of its first sound stream's packets zeroed from `fraction`
    of them on."""
    import subprocess

    from core.media import ffprobe_path

    r = subprocess.run([ffprobe_path(), "-v", "error", "-select_streams", "a:0", "-show_entries", "packet=pos,size",
                        "-of", "compact=p=0", str(src)], capture_output=True, text=True, check=True)
    packets = []
    for ln in r.stdout.split():
        kv = dict(x.split("=", 1) for x in ln.split("|") if "=" in x)
        if kv.get("pos", "").isdigit() and kv.get("size", "").isdigit():
            packets.append((int(kv["pos"]), int(kv["size"])))
    out = bytearray(data)
    for pos, size in packets[int(len(packets) * fraction):]:
        out[pos:pos + size] = bytes(size)
    return bytes(out)


def make_case(matrix_media, case: Case, folder: Path, _made: Dict[str, Path] = {}) -> Path:
    """The mutated file of `case` in `folder` (made once). `truncate_audio` on a video: the sound's packets zeroed
    from the fraction on (the header still announces all of it, as when a recorder's sound writer dies)."""
    key = f"{folder}/{case.id}"
    if key in _made:
        return _made[key]
    src = matrix_media.video(case.base) if case.kind == "video" else matrix_media.voice(case.base)
    out = Path(folder) / f"{case.id}{src.suffix}"
    if case.mutation == "truncate_audio" and case.kind == "video":
        out.write_bytes(zero_sound_from(src, src.read_bytes(), case.params[0]))
    else:
        out.write_bytes(mutate(src.read_bytes(), case))
    _made[key] = out
    return out
