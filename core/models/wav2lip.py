"""Wav2Lip's networks, state-dict compatible with the released checkpoints.

Written from the layouts of the official models (key names, shapes, order, module types) and the published
architecture: every layer is a "conv block" (conv + BatchNorm + ReLU, optionally residual: `relu(bn(conv(x)) + x)`),
stored under `<block>.conv_block.0` (conv) and `<block>.conv_block.1` (BatchNorm).

- `Wav2Lip`: the generator. forward(audio_sequences (B,1,80,16), face_sequences (B,6,96,96)) -> (B,3,96,96) in [0,1].
  Also accepts the training layout (B,T,1,80,16) / (B,6,T,96,96) -> (B,3,T,96,96).
- `SyncNetColor`: the "lipsync expert". forward(mel (B,1,80,16), face (B,15,48,96)) -> (audio_emb, face_emb),
  each (B,512), L2-normalised.
- `Wav2LipDiscQual`: the visual-quality discriminator of Wav2Lip-GAN (for completeness; not used by the app).

Input convention (as in Wav2Lip): faces are BGR / 255; the generator's 6 channels are the masked frame (lower half
zeroed) followed by the reference frame; the expert's 15 channels are 5 frames' BGR stacked frame-major.
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

Size2 = Union[int, Tuple[int, int]]


class ConvBlock(nn.Module):
    """conv -> BatchNorm -> (+ input if residual) -> ReLU. Keys: conv_block.0.*, conv_block.1.*"""

    def __init__(self, cin: int, cout: int, kernel: Size2, stride: Size2, padding: Size2,
                 residual: bool = False, transpose: bool = False, output_padding: int = 0):
        super().__init__()
        if transpose:
            conv = nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding)
        else:
            conv = nn.Conv2d(cin, cout, kernel, stride, padding)
        self.conv_block = nn.Sequential(conv, nn.BatchNorm2d(cout))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return F.relu(out)


class PlainConvBlock(nn.Module):
    """conv -> LeakyReLU(0.01), no normalisation (the discriminator's block). Keys: conv_block.0.*"""

    def __init__(self, cin: int, cout: int, kernel: Size2, stride: Size2, padding: Size2):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv_block(x), 0.01)


def _res(c: int, n: int) -> list:
    """n residual 3x3 blocks at c channels."""
    return [ConvBlock(c, c, 3, 1, 1, residual=True) for _ in range(n)]


def _down(cin: int, cout: int, stride: Size2 = 2) -> ConvBlock:
    return ConvBlock(cin, cout, 3, stride, 1)


def _up(cin: int, cout: int) -> ConvBlock:
    """x2 upsampling transposed conv block (k3, s2, p1, output_padding 1)."""
    return ConvBlock(cin, cout, 3, 2, 1, transpose=True, output_padding=1)


def _audio_encoder(extra_res_last: int) -> nn.Sequential:
    """Mel (1,80,16) -> (512,1,1). Height strides 3,3,3 and width strides 1,3,2 collapse 80x16 to 3x3."""
    layers = [ConvBlock(1, 32, 3, 1, 1), *_res(32, 2),
              _down(32, 64, (3, 1)), *_res(64, 2),
              _down(64, 128, 3), *_res(128, 2),
              _down(128, 256, (3, 2)), *_res(256, extra_res_last),
              ConvBlock(256, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0)]
    return nn.Sequential(*layers)


class Wav2Lip(nn.Module):
    """The Wav2Lip generator (36,298,035 parameters): a U-Net whose bottleneck is the audio embedding."""

    def __init__(self):
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBlock(6, 16, 7, 1, 3)),                      # 96x96
            nn.Sequential(_down(16, 32), *_res(32, 2)),                    # 48
            nn.Sequential(_down(32, 64), *_res(64, 3)),                    # 24
            nn.Sequential(_down(64, 128), *_res(128, 2)),                  # 12
            nn.Sequential(_down(128, 256), *_res(256, 2)),                 # 6
            nn.Sequential(_down(256, 512), *_res(512, 1)),                 # 3
            nn.Sequential(ConvBlock(512, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0)),  # 1
        ])
        self.audio_encoder = _audio_encoder(extra_res_last=1)
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBlock(512, 512, 1, 1, 0)),                                     # 1
            nn.Sequential(ConvBlock(1024, 512, 3, 1, 0, transpose=True), *_res(512, 1)),     # 3
            nn.Sequential(_up(1024, 512), *_res(512, 2)),                                    # 6
            nn.Sequential(_up(768, 384), *_res(384, 2)),                                     # 12
            nn.Sequential(_up(512, 256), *_res(256, 2)),                                     # 24
            nn.Sequential(_up(320, 128), *_res(128, 2)),                                     # 48
            nn.Sequential(_up(160, 64), *_res(64, 2)),                                       # 96
        ])
        self.output_block = nn.Sequential(ConvBlock(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        batch = audio_sequences.size(0)
        sequences = face_sequences.dim() > 4
        if sequences:  # (B,T,1,80,16) / (B,6,T,96,96): fold time into the batch, time-major
            audio_sequences = torch.cat([audio_sequences[:, i] for i in range(audio_sequences.size(1))], dim=0)
            face_sequences = torch.cat([face_sequences[:, :, i] for i in range(face_sequences.size(2))], dim=0)
        skips = []
        x = face_sequences
        for block in self.face_encoder_blocks:
            x = block(x)
            skips.append(x)
        x = self.audio_encoder(audio_sequences)
        for block in self.face_decoder_blocks:
            x = torch.cat((block(x), skips.pop()), dim=1)
        x = self.output_block(x)
        if sequences:
            x = torch.stack(torch.split(x, batch, dim=0), dim=2)
        return x


class SyncNetColor(nn.Module):
    """Wav2Lip's lip-sync expert (16,435,072 parameters): lower-half face stack vs 16 mel columns."""

    def __init__(self):
        super().__init__()
        self.face_encoder = nn.Sequential(
            ConvBlock(15, 32, 7, 1, 3),                       # 48x96
            ConvBlock(32, 64, 5, (1, 2), 1), *_res(64, 2),    # 46x47
            _down(64, 128), *_res(128, 3),                    # 23x24
            _down(128, 256), *_res(256, 2),                   # 12x12
            _down(256, 512), *_res(512, 2),                   # 6x6
            _down(512, 512),                                  # 3x3
            ConvBlock(512, 512, 3, 1, 0),                     # 1x1
            ConvBlock(512, 512, 1, 1, 0),
        )
        self.audio_encoder = _audio_encoder(extra_res_last=2)

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor):
        face = self.face_encoder(face_sequences).view(face_sequences.size(0), -1)
        audio = self.audio_encoder(audio_sequences).view(audio_sequences.size(0), -1)
        return F.normalize(audio, p=2, dim=1), F.normalize(face, p=2, dim=1)


class Wav2LipDiscQual(nn.Module):
    """Wav2Lip-GAN's visual quality discriminator: (B,3,T,96,96) -> (T*B, 1) realness of each lower half."""

    def __init__(self):
        super().__init__()
        p = PlainConvBlock
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(p(3, 32, 7, 1, 3)),                                # 48x96
            nn.Sequential(p(32, 64, 5, (1, 2), 2), p(64, 64, 5, 1, 2)),       # 48x48
            nn.Sequential(p(64, 128, 5, 2, 2), p(128, 128, 5, 1, 2)),         # 24
            nn.Sequential(p(128, 256, 5, 2, 2), p(256, 256, 5, 1, 2)),        # 12
            nn.Sequential(p(256, 512, 3, 2, 1), p(512, 512, 3, 1, 1)),        # 6
            nn.Sequential(p(512, 512, 3, 2, 1), p(512, 512, 3, 1, 1)),        # 3
            nn.Sequential(p(512, 512, 3, 1, 0), p(512, 512, 1, 1, 0)),        # 1
        ])
        self.binary_pred = nn.Sequential(nn.Conv2d(512, 1, 1, 1, 0), nn.Sigmoid())

    def forward(self, face_sequences: torch.Tensor) -> torch.Tensor:
        x = torch.cat([face_sequences[:, :, i] for i in range(face_sequences.size(2))], dim=0)
        x = x[:, :, x.size(2) // 2:]
        for block in self.face_encoder_blocks:
            x = block(x)
        return self.binary_pred(x).view(len(x), -1)


__all__: Sequence[str] = ["ConvBlock", "Wav2Lip", "SyncNetColor", "Wav2LipDiscQual"]
