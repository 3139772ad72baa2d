"""Speaker-independent phone features from PocketSphinx (as Rhubarb Lip Sync does), one row per video frame.

PocketSphinx's US-English acoustic model was trained on many speakers; decoded in all-phone mode it gives a
time-aligned phone sequence for any voice, at about 5-15x real time on one core. `phone_features` turns that
sequence into a (num_frames, NUM_PHONES) matrix: for each video frame, the share of its duration covered by each
phone (silence included), so a frame that straddles two phones holds both.

The voice may be in another language: the English phone set then only approximates its sounds (the mouth model
also sees the mel spectrum, which is language-independent).
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict

import numpy as np

from .audio import chunk_bounds


PHONES = ("SIL", "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH",
          "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W",
          "Y", "Z", "ZH")
NUM_PHONES = len(PHONES)
PHONE_INDEX = {p: i for i, p in enumerate(PHONES)}
DECODER_FRAME_S = 0.01      # PocketSphinx frames are 10 ms
PCM_CHUNK = 1 << 20         # samples scaled to 16 bits at a time (pcm16)


def _decoder():
    """A new decoder for each voice: a reused one carries its live cepstral-mean estimate over from the voices it
    decoded before, so the same voice would decode differently (and dub differently) depending on what the process
    did earlier: the window, a Ray worker and the one-piece render must all agree. A new one costs ~0.03 s."""
    from pocketsphinx import Decoder, get_model_path

    mp = os.path.join(get_model_path(), "en-us")
    return Decoder(hmm=os.path.join(mp, "en-us"), allphone=os.path.join(mp, "en-us-phone.lm.bin"), lm=None,
                   dict=None, lw=2.0, beam=1e-20, pbeam=1e-20, loglevel="FATAL")


_DECODED: "OrderedDict[bytes, list]" = OrderedDict()     # content digest -> segments, most recent last
_DECODED_LOCK = threading.Lock()
DECODED_KEPT = 4            # voices whose phones are kept: the window re-dubs the same voice after every setting
                            # change (a voice padded or shifted is other samples: decoded again)


def decode_phones(wav: np.ndarray) -> list:
    """[(phone, start_s, end_s)] of a 16 kHz mono voice (noise and fillers count as silence). The last few voices'
    results are kept (decoding is deterministic: a new decoder per voice)."""
    x = np.ascontiguousarray(np.asarray(wav, np.float32).reshape(-1))
    if x.size == 0:
        return []
    key = hashlib.blake2b(x.view(np.uint8), digest_size=16).digest()     # the samples as they are: no copy
    with _DECODED_LOCK:
        if key in _DECODED:
            _DECODED.move_to_end(key)
            return list(_DECODED[key])
    out = _decode(pcm16(x))
    with _DECODED_LOCK:
        _DECODED[key] = out
        while len(_DECODED) > DECODED_KEPT:
            _DECODED.popitem(last=False)
    return list(out)


def pcm16(wav: np.ndarray) -> np.ndarray:
    """The 16-bit samples the decoder reads: NaN and infinities repaired as numpy's nan_to_num does, the peak
    brought to 0.7 of full scale (the decoder's front end expects a healthy level). Made PCM_CHUNK samples at a
    time: a 10 min voice never has whole float copies beside the decoder's own ~0.1 GB."""
    x = np.asarray(wav, np.float32).reshape(-1)
    out = np.empty(x.size, np.int16)
    if x.size == 0:
        return out
    bounds = chunk_bounds(x.size, PCM_CHUNK)
    peak = max(float(np.abs(np.nan_to_num(x[a:b])).max()) for a, b in bounds)
    for a, b in bounds:
        block = np.nan_to_num(x[a:b])
        if peak > 0:
            block = block * (0.7 / peak)
        out[a:b] = (block * 32767).astype(np.int16)
    return out


def _decode(pcm: np.ndarray) -> list:
    dec = _decoder()
    dec.start_utt()
    dec.process_raw(pcm.view(np.uint8), full_utt=True)
    dec.end_utt()
    out = []
    for seg in dec.seg():
        ph = seg.word if seg.word in PHONE_INDEX else "SIL"
        out.append((ph, seg.start_frame * DECODER_FRAME_S, (seg.end_frame + 1) * DECODER_FRAME_S))
    return out


def shift_segments(segments, seconds: float) -> list:
    """The phones of the same voice moved `seconds` later (earlier when negative), as if silence had been put in
    front of it (or its start cut off): what would fall before 0 is cut. Cheaper than decoding the moved voice,
    and the same voice keeps the same phones wherever it is placed."""
    out = []
    for ph, a, b in segments:
        a, b = a + seconds, b + seconds
        if b > 0:
            out.append((ph, max(a, 0.0), b))
    return out


def phone_features(wav: np.ndarray, fps: float, num_frames: int, segments=None) -> np.ndarray:
    """(num_frames, NUM_PHONES) float32: share of video frame i's time [i/fps, (i+1)/fps) covered by each phone.
    Frames past the decoded audio are silence."""
    n = int(num_frames)
    out = np.zeros((n, NUM_PHONES), np.float32)
    if n == 0:
        return out
    segs = decode_phones(wav) if segments is None else segments
    starts = np.arange(n) / float(fps)
    ends = starts + 1.0 / float(fps)
    for ph, a, b in segs:
        lo = max(0, int(np.floor(a * fps)))
        hi = min(n, int(np.ceil(b * fps)))
        if hi <= lo:
            continue
        overlap = np.clip(np.minimum(ends[lo:hi], b) - np.maximum(starts[lo:hi], a), 0.0, None) * fps
        out[lo:hi, PHONE_INDEX[ph]] += overlap.astype(np.float32)
    covered = out.sum(axis=1)
    out[:, PHONE_INDEX["SIL"]] += np.clip(1.0 - covered, 0.0, None)
    return out
