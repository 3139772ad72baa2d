"""syncnet_python's SyncNet (`S(num_layers_in_fc_layers=1024)`), state-dict compatible with `syncnet_v2.model`.

Two streams, each a conv trunk (`netcnn*`, Sequential indices as in the official file: conv, BN, ReLU, [pool]) and an
MLP head (`netfc*`: Linear 512->512, BN1d, ReLU, Linear 512->1024):
- audio: `forward_aud(x)` with x (B,1,13,20) = 20 MFCC frames (0.2 s) of 13 coefficients -> (B,1024);
- lips:  `forward_lip(x)` with x (B,3,5,224,224) = 5 face crops, BGR, raw 0..255 floats -> (B,1024).
The embeddings are *not* normalised; LSE uses their Euclidean distance.
"""
from __future__ import annotations

import torch
from torch import nn


def _bn_relu2(c: int) -> list:
    return [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]


def _bn_relu3(c: int) -> list:
    return [nn.BatchNorm3d(c), nn.ReLU(inplace=True)]


def _head(d: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, d))


class SyncNetV2(nn.Module):
    def __init__(self, num_layers_in_fc_layers: int = 1024):
        super().__init__()
        self.netcnnaud = nn.Sequential(                                   # 13x20
            nn.Conv2d(1, 64, 3, 1, 1), *_bn_relu2(64),                    # 0-2
            nn.MaxPool2d(1, 1),                                           # 3
            nn.Conv2d(64, 192, 3, 1, 1), *_bn_relu2(192),                 # 4-6
            nn.MaxPool2d(3, (1, 2)),                                      # 7: 11x9
            nn.Conv2d(192, 384, 3, 1, 1), *_bn_relu2(384),                # 8-10
            nn.Conv2d(384, 256, 3, 1, 1), *_bn_relu2(256),                # 11-13
            nn.Conv2d(256, 256, 3, 1, 1), *_bn_relu2(256),                # 14-16
            nn.MaxPool2d(3, 2),                                           # 17: 5x4
            nn.Conv2d(256, 512, (5, 4), 1, 0), *_bn_relu2(512),           # 18-20: 1x1
        )
        self.netfcaud = _head(num_layers_in_fc_layers)
        self.netfclip = _head(num_layers_in_fc_layers)
        self.netcnnlip = nn.Sequential(                                   # 5x224x224
            nn.Conv3d(3, 96, (5, 7, 7), (1, 2, 2), 0), *_bn_relu3(96),    # 0-2: 1x109x109
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),                           # 3: 54
            nn.Conv3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), *_bn_relu3(256),  # 4-6: 26
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),                # 7: 13
            nn.Conv3d(256, 256, (1, 3, 3), 1, (0, 1, 1)), *_bn_relu3(256),  # 8-10
            nn.Conv3d(256, 256, (1, 3, 3), 1, (0, 1, 1)), *_bn_relu3(256),  # 11-13
            nn.Conv3d(256, 256, (1, 3, 3), 1, (0, 1, 1)), *_bn_relu3(256),  # 14-16
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),                           # 17: 6
            nn.Conv3d(256, 512, (1, 6, 6), 1, 0), *_bn_relu3(512),        # 18-20: 1x1x1
        )

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.netcnnaud(x)
        return self.netfcaud(mid.view(mid.size(0), -1))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.netcnnlip(x)
        return self.netfclip(mid.view(mid.size(0), -1))

    def forward(self, aud: torch.Tensor, lip: torch.Tensor):
        """(audio_emb, lip_emb), for symmetry with SyncNetColor; the scorer calls the two streams separately."""
        return self.forward_aud(aud), self.forward_lip(lip)
