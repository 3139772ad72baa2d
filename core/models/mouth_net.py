"""Small temporal-convolution network: per-video-frame audio features -> mouth-shape PCA coefficients.

    MouthNet(n_in, n_out, hidden=128, kernel=5, dilations=(1, 2, 4), lookahead=5, dropout=0.1)
    forward(x: (B, T, n_in)) -> (B, T, n_out)

Each residual layer is a dilated 1-D convolution padded asymmetrically: the stack as a whole sees
`lookahead` frames of future audio (Suwajanakorn et al. 2017 found a ~200 ms delay best; 5 frames at 25 fps)
and the rest of its receptive field in the past. `config()` returns plain values that rebuild the same network,
so a checkpoint holds only tensors and plain values (loads with torch.load(weights_only=True)).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def split_lookahead(kernel: int, dilations: Sequence[int], lookahead: int) -> list[int]:
    """Right padding (future frames) per layer, summing to `lookahead`, each within its layer's span."""
    spans = [(kernel - 1) * d for d in dilations]
    if lookahead < 0 or lookahead > sum(spans):
        raise ValueError(f"lookahead {lookahead} must be in [0, {sum(spans)}] for this stack")
    right, left_over = [], lookahead
    # spread it evenly first, then fill what is left from the first layers
    share = lookahead // len(spans)
    for s in spans:
        r = min(share, s)
        right.append(r)
        left_over -= r
    for i, s in enumerate(spans):
        extra = min(left_over, s - right[i])
        right[i] += extra
        left_over -= extra
    return right


class _ResConv(nn.Module):
    def __init__(self, ch: int, kernel: int, dilation: int, right: int, dropout: float):
        super().__init__()
        span = (kernel - 1) * dilation
        self.pad = (span - right, right)
        self.conv = nn.Conv1d(ch, ch, kernel, dilation=dilation)
        self.norm = nn.GroupNorm(1, ch)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        y = self.conv(F.pad(x, self.pad))
        return x + self.drop(F.gelu(self.norm(y)))


class MouthNet(nn.Module):
    def __init__(self, n_in: int, n_out: int, hidden: int = 128, kernel: int = 5,
                 dilations: Sequence[int] = (1, 2, 4), lookahead: int = 5, dropout: float = 0.1):
        super().__init__()
        self._cfg = dict(n_in=int(n_in), n_out=int(n_out), hidden=int(hidden), kernel=int(kernel),
                         dilations=[int(d) for d in dilations], lookahead=int(lookahead), dropout=float(dropout))
        rights = split_lookahead(kernel, dilations, lookahead)
        self.inp = nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Dropout(dropout))
        self.layers = nn.ModuleList(_ResConv(hidden, kernel, d, r, dropout) for d, r in zip(dilations, rights))
        self.out = nn.Linear(hidden, n_out)

    def config(self) -> dict:
        return dict(self._cfg)

    @property
    def receptive_field(self) -> tuple[int, int]:
        """(past, future) frames each output sees."""
        past = sum((self._cfg["kernel"] - 1) * d for d in self._cfg["dilations"]) - self._cfg["lookahead"]
        return past, self._cfg["lookahead"]

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, n_in) -> (B, T, hidden): everything but the output layer (per-clip adaptation refits that)."""
        h = self.inp(x).transpose(1, 2)
        for layer in self.layers:
            h = layer(h)
        return h.transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x))
