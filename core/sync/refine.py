"""Per-clip refinement: a scorer's video head refit on this actor's own, in-sync speech.

A long clip (20 s to minutes) that carries the actor's own voice in sync is labelled data for this very face: the
voice at the clip's own offset is the positive, the same voice a few frames early or late and the actor's other
sentences are the negatives. `refine_head` fine-tunes a copy of the scorer's video head (the projection the sync
distance reads; the frozen encoder's output per window, `FaceWindows.trunk`, is its input) with that contrast and
keeps the voice side fixed: the dub's voice is not the actor's, so only what the head learns about this face may
change. The step count, learning rate and the pull back to the shipped weights were chosen on GRID s4 held out from
the scorer's training (refined on its first half, judged on the rest: tools/eval_refine.py).
"""
from __future__ import annotations

import copy
from typing import Callable, Optional

import numpy as np

MIN_SPEECH_SECONDS = 20.0   # voiced own speech needed before the head is refit (shorter: the shipped head as is)
STEPS = 300
BATCH = 64                  # video windows per step
LEARNING_RATE = 3e-4
ANCHOR = 0.01               # weight of the squared distance to the shipped weights (keeps the refit near them)
MAX_SHIFT = 12              # same-voice negatives: up to this many frames early or late (+-1 is nearly in sync)
FAR_NEGATIVES = 32          # per window: the actor's other sentences (at least 2 * MAX_SHIFT frames away)
TEMPERATURE = 10.0          # logit scale of the cosine, as in training


def contrast_loss(video_emb, audio_emb, starts: np.ndarray, weights, rng: np.random.Generator):
    """InfoNCE of video windows `starts` (their unit embeddings `video_emb`, (B, D), with grad) against the fixed unit
    audio windows `audio_emb` (M, D): the positive is the same window, the negatives the voice at shifts
    -MAX_SHIFT..MAX_SHIFT except +-1 and FAR_NEGATIVES windows of other sentences."""
    import torch
    from torch.nn import functional as F

    m = len(audio_emb)
    shifts = np.array([s for s in range(-MAX_SHIFT, MAX_SHIFT + 1) if abs(s) != 1])
    near = starts[:, None] + shifts[None, :]                               # (B, S); column of shift 0 is the target
    far = rng.integers(0, m, size=(len(starts), FAR_NEGATIVES))
    cand = np.concatenate([near, far], axis=1)
    valid = (cand >= 0) & (cand < m)
    valid[:, len(shifts):] &= np.abs(far - starts[:, None]) >= 2 * MAX_SHIFT
    a = audio_emb[torch.as_tensor(np.clip(cand, 0, m - 1))]                # (B, K, D)
    logits = TEMPERATURE * torch.einsum("bd,bkd->bk", video_emb, a)
    logits = logits.masked_fill(torch.as_tensor(~valid), -1e4)
    target = torch.full((len(starts),), int(np.flatnonzero(shifts == 0)[0]), dtype=torch.long)
    w = torch.as_tensor(np.asarray(weights, np.float32))
    return (F.cross_entropy(logits, target, reduction="none") * w).sum() / w.sum()


class Adam:
    """torch.optim.Adam's update with its default settings, on its one-tensor-at-a-time path (the one it takes for
    CPU tensors), without torch.optim: constructing a torch optimizer imports torch._dynamo and with it sympy (+73 MB
    and ~1.5 s in every process that refits a head). Bit-identical to torch.optim.Adam on CPU (tests)."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        import torch

        self.params = list(params)
        self.lr, (self.beta1, self.beta2), self.eps = float(lr), betas, float(eps)
        self.steps = 0
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        import torch

        self.steps += 1
        step = float(self.steps)
        step_size = self.lr / (1 - self.beta1 ** step)
        bias_correction2_sqrt = (1 - self.beta2 ** step) ** 0.5
        with torch.no_grad():
            for p, exp_avg, exp_avg_sq in zip(self.params, self.exp_avg, self.exp_avg_sq):
                if p.grad is None:
                    continue
                exp_avg.lerp_(p.grad, 1 - self.beta1)
                exp_avg_sq.mul_(self.beta2).addcmul_(p.grad, p.grad, value=1 - self.beta2)
                p.addcdiv_(exp_avg, (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps), value=-step_size)


def refine_head(head, project: Callable, trunk: np.ndarray, audio_emb: np.ndarray, speech: np.ndarray,
                steps: int = STEPS, seed: int = 0, learning_rate: float = LEARNING_RATE, anchor: float = ANCHOR,
                train=None):
    """A fine-tuned copy of `head` (a torch module; `project(head, x)` maps trunk rows to unit embeddings).

    `trunk` (M, C): the clip's video windows as the head reads them; `audio_emb` (M, D): the own voice's unit window
    embeddings, already shifted to the clip's own offset (window i of both covers the same frames); `speech` (M,):
    how voiced each window is (0..1): silent windows say little about sync and are drawn less often. `train` (M,)
    bool: the windows it may learn from (default all)."""
    import torch

    from ..device import one_torch_thread

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    tuned = copy.deepcopy(head).train()
    start = [p.detach().clone() for p in tuned.parameters()]
    opt = Adam(tuned.parameters(), lr=learning_rate)
    x = torch.as_tensor(np.asarray(trunk, np.float32))
    a = torch.as_tensor(np.asarray(audio_emb, np.float32))
    draw = 0.1 + np.asarray(speech, np.float64)
    if train is not None:
        draw = draw * np.asarray(train, bool)
    draw /= draw.sum()
    with one_torch_thread():                    # many small operations (core.device.one_torch_thread)
        for _ in range(steps):
            idx = rng.choice(len(x), size=min(BATCH, int((draw > 0).sum())), replace=False, p=draw)
            loss = contrast_loss(project(tuned, x[torch.as_tensor(idx)]), a, idx, 0.2 + 0.8 * speech[idx], rng)
            loss = loss + anchor * sum(((p - p0) ** 2).sum() for p, p0 in zip(tuned.parameters(), start))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return tuned.eval()


HOLD_CHUNK = 50     # windows (2 s): the own voice is cut in chunks, every HOLD_EVERY-th kept out of the refit ...
HOLD_EVERY = 4      # ... to measure the level the refined head reaches with this face's voice (the lane's threshold)


def refine_scorer(scorer, face, aligned_wav: np.ndarray, voiced_windows: np.ndarray, fps: float,
                  video_fps: Optional[float] = None):
    """(refined scorer, own level) for a clip whose own voice, `aligned_wav` (already moved to its own offset),
    follows its lips; None when the scorer cannot be refined or there is too little speech.

    `face`: the clip's FaceWindows (core.sync.scoring) with `trunk`; `voiced_windows`: speech per window (0..1) on the
    scorer's grid at `fps`; `video_fps`: the clip's own rate (its `face.detected` is per video frame; default `fps`).
    The level (core.sync.lane.own_level) is measured with the refined head on the chunks it did not learn from, and
    only on them (null included), so the lane's threshold for this face is not set by windows the head was fitted to."""
    from .lane import own_level
    from .scoring import lse_from_features, resample_indices

    if face is None or face.trunk is None or not callable(getattr(scorer, "refined", None)):
        return None
    # a window has the face when the video frame nearest its centre (on the scorer's grid) had it
    seen = np.asarray(face.detected, bool)[resample_indices(len(face.detected), video_fps or fps, fps)]
    seen = seen[scorer.window // 2:]
    m = min(len(face.trunk), len(voiced_windows), len(seen))
    speech = np.asarray(voiced_windows[:m], np.float64) * seen[:m]
    if (speech > 0.5).sum() / fps < MIN_SPEECH_SECONDS:      # voiced own speech with the face scored, seconds
        return None
    held = (np.arange(m) // HOLD_CHUNK) % HOLD_EVERY == HOLD_EVERY - 1
    # the refit changes only the video head: the voice's features are the scorer's, computed once for both
    afeat = np.asarray(scorer.audio_features(aligned_wav, fps, m + scorer.window - 1), np.float32)[:m]
    refined = scorer.refined(face.trunk[:m], aligned_wav, speech, train=~held, audio=afeat)
    vfeat = refined.project_video(face.trunk[:m])
    rep = lse_from_features(vfeat, afeat, scorer.vshift, scorer=scorer.name, window=scorer.window)
    # the level comes from the held-out chunks alone, their null included: the refit pushed the wrong offsets away
    # on the windows it learnt from, and a null taken there (or a 1 s average reaching into them) raised the level
    # and so the threshold (docs/MEASUREMENTS.md: s4 held out, own voice shaded 0.29 -> 0.20 on the reverse split)
    return refined, own_level(rep.dists[held], rep.vshift, 0, (speech > 0.5)[held])


def refine_for_clip(scorer, own_report, aligned_wav: np.ndarray):
    """`refine_scorer` for the clip whose own voice was scored as `own_report` (its SyncReport, with `face`), the voice
    moved to its own offset: (refined scorer, own level) or None. It learns from the windows inside the span the
    offset's mouth witness read (core.sync.av_offset.WITNESS_SECONDS), as the mouth's adaptation does."""
    from .. import audio as audio_mod
    from .av_offset import witness_frames, witness_voice

    face = getattr(own_report, "face", None)
    if face is None:
        return None
    fps = float(own_report.scorer_fps or own_report.fps)
    w = scorer.window
    m = len(face.trunk) if face.trunk is not None else 0
    m = max(0, min(m, witness_frames(m + w, fps) - w))
    aligned_wav = witness_voice(aligned_wav)
    voiced = audio_mod.voice_activity(aligned_wav, fps, m + w)[w // 2:w // 2 + m]
    return refine_scorer(scorer, face, aligned_wav, voiced.astype(np.float64), fps, video_fps=float(own_report.fps))
