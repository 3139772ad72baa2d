"""The sync heads of the `sync_asd` scorer: two small networks that map 5-frame windows of the ASD encoders'
per-frame embeddings (picture 128-d; voice 128-d, or 256-d with a second voice encoder: net.SecondVoice) into one
space where a window of lips and the window of voice that goes with it are close (trained by
tools/train_sync_asd.py)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

WINDOW = 5        # video frames per window (0.2 s at 25 fps), as syncnet_python's
EMBED = 128       # the ASD encoders' per-frame embedding
HIDDEN = 512
OUT = 128
CLIP_STD_FLOOR = 1e-2   # a still face: no division by ~0


class WindowHead(nn.Module):
    """(B, WINDOW, embed) -> (B, OUT) unit vectors; inputs standardised by statistics fixed at training time."""

    def __init__(self, hidden: int = HIDDEN, out: int = OUT, embed: int = EMBED):
        super().__init__()
        self.register_buffer("mean", torch.zeros(embed))
        self.register_buffer("std", torch.ones(embed))
        self.net = nn.Sequential(
            nn.Linear(WINDOW * embed, hidden), nn.ReLU(), nn.Dropout(0.1),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, out))

    def forward(self, x):
        x = (x - self.mean) / self.std
        return F.normalize(self.net(x.flatten(1)), dim=1)


class SyncHeads(nn.Module):
    """`audio_embed`: the voice side's per-frame width (2 * EMBED with a second voice encoder, net.SecondVoice)."""

    def __init__(self, hidden: int = HIDDEN, out: int = OUT, audio_embed: int = EMBED):
        super().__init__()
        self.video = WindowHead(hidden, out)
        self.audio = WindowHead(hidden, out, audio_embed)

    def config(self) -> dict:
        """What a heads file records to rebuild these heads (`from_config`)."""
        return {"hidden": self.video.net[0].out_features, "out": self.video.net[-1].out_features,
                "audio_embed": int(self.audio.mean.shape[0])}

    @classmethod
    def from_config(cls, cfg: dict) -> "SyncHeads":
        return cls(hidden=int(cfg.get("hidden", HIDDEN)), out=int(cfg.get("out", OUT)),
                   audio_embed=int(cfg.get("audio_embed", EMBED)))


def windows(per_frame: torch.Tensor) -> torch.Tensor:
    """(T, EMBED) per-frame embeddings -> (T - WINDOW + 1, WINDOW, EMBED): window i holds frames i .. i+4."""
    return per_frame.unfold(0, WINDOW, 1).permute(0, 2, 1)


def normalise_clip(per_frame: torch.Tensor) -> torch.Tensor:
    """(T, EMBED) visual embeddings of one face -> standardised over time, per dimension. What stays is how the
    face moves, not what it looks like: the heads were trained on two faces, and the clip's own statistics take
    the appearance out before they see it (measured: unseen faces' own voice shaded less, docs/MEASUREMENTS.md)."""
    mean = per_frame.mean(0, keepdim=True)
    std = per_frame.std(0, keepdim=True) if len(per_frame) > 1 else torch.zeros_like(mean)
    return (per_frame - mean) / (std + CLIP_STD_FLOOR)
