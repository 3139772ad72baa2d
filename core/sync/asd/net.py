"""Light-ASD and LR-ASD, the two active-speaker-detection networks whose MIT-licensed weights were trained on
AVA-ActiveSpeaker and TalkSet (thousands of faces): our own modules, written from the architectures' description,
loading the authors' checkpoints exactly (checked against their outputs, tests/core/test_asd.py).

Credit: J. Liao et al., "A Light Weight Model for Active Speaker Detection", CVPR 2023 (Light-ASD), and
"LR-ASD: Lightweight and Robust Network for Active Speaker Detection", IJCV 2025; MIT licence
(resources/models/light_asd.md).

Inputs: `visual(faces)`: (B, T, 112, 112) uint8-valued grayscale face crops at 25 fps (`core.sync.asd.features`);
`audio(mfcc)`: (B, 4T, 13) MFCCs at 100 Hz. Both give (B, T, 128). `backend(a, v)` -> (B, T, 128);
`speaking_logit` / `visual_logit`: the audio-visual and visual-only heads' "speaking" logit.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Optional

import torch
from torch import nn
from torch.nn import functional as F

from .features import VISUAL_REACH

log = logging.getLogger(__name__)

BN_EPS = 1e-3
FACE_MEAN, FACE_STD = 0.4161, 0.1688   # the authors' grayscale normalisation of x / 255
EMBED = 128
ARCHITECTURES = ("light_asd", "lr_asd")


VISUAL_PART = 50     # frames per pass of `visual_in_parts` (the passes' activations and time per frame grow with T)


def visual_in_parts(visual, faces, part: int = VISUAL_PART):
    """`visual(faces)` for (B, T, ...) faces, computed `part` frames at a time, each pass with VISUAL_REACH frames of
    its neighbours on each side: what one pass gives (to float rounding: the convolutions sum in another order) while
    the activations of only ~`part` frames are held. On 2 CPU cores, Light-ASD's encoder took 8.0-8.4 ms a frame in
    passes of 112 frames and 5.9-6.3 ms in passes of 62 (its working set stays in cache)."""
    t = faces.shape[1]
    if t <= part + 2 * VISUAL_REACH:
        return visual(faces)
    out = []
    for a in range(0, t, part):
        b = min(t, a + part)
        lo, hi = max(0, a - VISUAL_REACH), min(t, b + VISUAL_REACH)
        out.append(visual(faces[:, lo:hi])[:, a - lo:b - lo])
    return torch.cat(out, 1)


def _bn3(c):
    return nn.BatchNorm3d(c, eps=BN_EPS)


def _bn2(c):
    return nn.BatchNorm2d(c, eps=BN_EPS)


def time_conv(conv: nn.Conv3d, x):
    """`conv(x)` for a Conv3d whose kernel spans time only ((k, 1, 1), stride 1; k = 1 included), computed as a
    2-D convolution over (B, C, T, H*W) (k = 1: a matrix product): the same numbers to float rounding (~2e-6). Why:
    PyTorch runs a 3-D convolution with a 1x1 spatial kernel on one thread through its slow im2col path (column
    buffers of 20-160 MB a call), a 2-D one through oneDNN: Light-ASD's encoder on one thread ~15 -> ~10 ms a frame
    (docs/MEASUREMENTS.md, sixteenth session)."""
    b, c, t, h, w = x.shape
    k, cout = conv.kernel_size[0], conv.out_channels     # module attributes: no tensor shapes read while tracing
    if k == 1:
        y = torch.matmul(conv.weight.reshape(cout, c), x.reshape(b, c, -1))
    else:
        y = F.conv2d(x.reshape(b, c, t, -1), conv.weight.reshape(cout, c, k, 1), padding=(conv.padding[0], 0))
    y = y.reshape(b, cout, t, h, w)
    return y if conv.bias is None else y + conv.bias.reshape(1, -1, 1, 1, 1)


# ----------------------------------------------------------------------------------------------- Light-ASD blocks
class LightVisualBlock(nn.Module):
    """Two branches (k = 3, 5), each a spatial (1,k,k) then a temporal (k,1,1) conv, summed, then a 1x1 conv."""

    def __init__(self, cin: int, cout: int, down: bool = False):
        super().__init__()
        stride = (1, 2, 2) if down else 1
        for k in (3, 5):
            setattr(self, f"s_{k}", nn.Conv3d(cin, cout, (1, k, k), stride=stride, padding=(0, k // 2, k // 2),
                                              bias=False))
            setattr(self, f"bn_s_{k}", _bn3(cout))
            setattr(self, f"t_{k}", nn.Conv3d(cout, cout, (k, 1, 1), padding=(k // 2, 0, 0), bias=False))
            setattr(self, f"bn_t_{k}", _bn3(cout))
        self.last = nn.Conv3d(cout, cout, 1, bias=False)
        self.bn_last = _bn3(cout)

    def forward(self, x):
        out = 0
        for k in (3, 5):
            # in place: each ReLU's input is a batch norm's fresh output, held by nothing else
            y = F.relu(getattr(self, f"bn_s_{k}")(getattr(self, f"s_{k}")(x)), inplace=True)
            out = out + F.relu(getattr(self, f"bn_t_{k}")(time_conv(getattr(self, f"t_{k}"), y)), inplace=True)
        return F.relu(self.bn_last(time_conv(self.last, out)), inplace=True)


class LightAudioBlock(nn.Module):
    """The audio twin of LightVisualBlock on (B, C, MFCC, time): (k,1) over the MFCC axis, then (1,k) over time."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        for k in (3, 5):
            setattr(self, f"m_{k}", nn.Conv2d(cin, cout, (k, 1), padding=(k // 2, 0), bias=False))
            setattr(self, f"bn_m_{k}", _bn2(cout))
            setattr(self, f"t_{k}", nn.Conv2d(cout, cout, (1, k), padding=(0, k // 2), bias=False))
            setattr(self, f"bn_t_{k}", _bn2(cout))
        self.last = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_last = _bn2(cout)

    def forward(self, x):
        out = 0
        for k in (3, 5):
            y = F.relu(getattr(self, f"bn_m_{k}")(getattr(self, f"m_{k}")(x)))
            out = out + F.relu(getattr(self, f"bn_t_{k}")(getattr(self, f"t_{k}")(y)))
        return F.relu(self.bn_last(self.last(out)))


# ----------------------------------------------------------------------------------------------- LR-ASD blocks
class LRVisualBlock(nn.Module):
    """One branch: spatial k=5 to half the channels, spatial k=3 to all, temporal k=5, temporal k=3."""

    def __init__(self, cin: int, cout: int, down: bool = False):
        super().__init__()
        half = cout // 2
        self.s_1 = nn.Conv3d(cin, half, (1, 5, 5), stride=(1, 2, 2) if down else 1, padding=(0, 2, 2), bias=False)
        self.s_norm_1 = _bn3(half)
        self.s_2 = nn.Conv3d(half, cout, (1, 3, 3), padding=(0, 1, 1), bias=False)
        self.s_norm_2 = _bn3(cout)
        self.t_1 = nn.Conv3d(cout, cout, (5, 1, 1), padding=(2, 0, 0), bias=False)
        self.t_norm_1 = _bn3(cout)
        self.t_2 = nn.Conv3d(cout, cout, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.t_norm_2 = _bn3(cout)

    def forward(self, x):
        x = F.relu(self.s_norm_1(self.s_1(x)))
        x = F.relu(self.s_norm_2(self.s_2(x)))
        x = F.relu(self.t_norm_1(time_conv(self.t_1, x)))
        return F.relu(self.t_norm_2(time_conv(self.t_2, x)))


class LRAudioBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        half = cout // 2
        self.m_1 = nn.Conv2d(cin, half, (5, 1), padding=(2, 0), bias=False)
        self.m_norm_1 = _bn2(half)
        self.m_2 = nn.Conv2d(half, cout, (3, 1), padding=(1, 0), bias=False)
        self.m_norm_2 = _bn2(cout)
        self.t_1 = nn.Conv2d(cout, cout, (1, 5), padding=(0, 2), bias=False)
        self.t_norm_1 = _bn2(cout)
        self.t_2 = nn.Conv2d(cout, cout, (1, 3), padding=(0, 1), bias=False)
        self.t_norm_2 = _bn2(cout)

    def forward(self, x):
        x = F.relu(self.m_norm_1(self.m_1(x)))
        x = F.relu(self.m_norm_2(self.m_2(x)))
        x = F.relu(self.t_norm_1(self.t_1(x)))
        return F.relu(self.t_norm_2(self.t_2(x)))


# ----------------------------------------------------------------------------------------------- encoders
class VisualEncoder(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.block1 = block(1, 32, down=True)
        self.block2 = block(32, 64)
        self.block3 = block(64, 128)

    @staticmethod
    def pool(x):
        """The authors' (1, 3, 3) max pool with stride (1, 2, 2), as a 2-D pool over each (channel, frame) plane:
        the same numbers exactly, without the indices PyTorch's 3-D pool computes (10% of the encoder's time)."""
        b, c, t, h, w = x.shape
        y = F.max_pool2d(x.reshape(b, c * t, h, w), 3, stride=2, padding=1)
        return y.reshape(b, c, t, y.shape[-2], y.shape[-1])

    def stem(self, x):
        """(B, 1, T, 112, 112) normalised -> (B, 64, T, 14, 14): everything before block3."""
        return self.pool(self.block2(self.pool(self.block1(x))))

    def head(self, x):
        """block3 and the global spatial max: (B, 64, T, 14, 14) -> (B, T, 128)."""
        return self.block3(x).amax(dim=(3, 4)).transpose(1, 2)

    def forward(self, x):
        return self.head(self.stem(x))


class AudioEncoder(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.block1 = block(1, 32)
        self.block2 = block(32, 64)
        self.block3 = block(64, 128)

    @staticmethod
    def pool(x):   # over time only
        return F.max_pool2d(x, (1, 3), stride=(1, 2), padding=(0, 1))

    def forward(self, x):
        x = self.pool(self.block1(x))
        x = self.pool(self.block2(x))
        return self.block3(x).mean(dim=2).transpose(1, 2)


# ----------------------------------------------------------------------------------------------- back ends
class LightBackend(nn.Module):
    """Audio + visual added, a forward GRU, GELU, a second GRU over the reversed result (reversed back), GELU."""

    def __init__(self):
        super().__init__()
        self.gru_forward = nn.GRU(EMBED, EMBED, batch_first=True)
        self.gru_backward = nn.GRU(EMBED, EMBED, batch_first=True)

    def forward(self, a, v):
        x = F.gelu(self.gru_forward(a + v)[0])
        x = self.gru_backward(x.flip(1))[0].flip(1)
        return F.gelu(x)


class Gate(nn.Module):
    """x * sigmoid(BN(conv1x1(x))) over (B, T, C)."""

    def __init__(self, c: int):
        super().__init__()
        self.attention = nn.Conv1d(c, c, 1, bias=False)
        self.bn = nn.BatchNorm1d(c, eps=BN_EPS)

    def forward(self, x):
        xc = x.transpose(1, 2)
        return (xc * torch.sigmoid(self.bn(self.attention(xc)))).transpose(1, 2)


class LRDetector(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru_forward = nn.GRU(2 * EMBED, EMBED // 2, batch_first=True)
        self.gru_backward = nn.GRU(2 * EMBED, EMBED // 2, batch_first=True)
        self.attention = Gate(EMBED)

    def forward(self, x):
        f = self.gru_forward(x)[0]
        b = self.gru_backward(x.flip(1))[0].flip(1)
        return self.attention(torch.cat([f, b], dim=2))


class LRBackend(nn.Module):
    def __init__(self):
        super().__init__()
        self.fusion = Gate(2 * EMBED)
        self.detector = LRDetector()

    def forward(self, a, v):
        return self.detector(self.fusion(torch.cat([a, v], dim=2)))


# ----------------------------------------------------------------------------------------------- the model
class ASDModel(nn.Module):
    """One of the two networks with its audio-visual and visual-only heads (checkpoint keys as the authors')."""

    def __init__(self, arch: str):
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown ASD architecture {arch!r}: {ARCHITECTURES}")
        self.arch = arch
        light = arch == "light_asd"
        self.visualEncoder = VisualEncoder(LightVisualBlock if light else LRVisualBlock)
        self.audioEncoder = AudioEncoder(LightAudioBlock if light else LRAudioBlock)
        self.backend_net = LightBackend() if light else LRBackend()
        self.av_head = nn.Linear(EMBED, 2)
        self.v_head = nn.Linear(EMBED, 2)

    @staticmethod
    def normalize(faces):
        """(B, T, H, W) uint8-valued faces -> (B, 1, T, H, W) normalised as the authors'."""
        return ((faces.float() / 255.0 - FACE_MEAN) / FACE_STD).unsqueeze(1)

    def visual(self, faces):
        return self.visualEncoder(self.normalize(faces))

    @staticmethod
    def audio_input(mfcc):
        """(B, 4T, 13) MFCCs -> (B, 1, 13, 4T), the audio encoder's layout."""
        return mfcc.float().unsqueeze(1).transpose(2, 3)

    def audio(self, mfcc):
        return self.audioEncoder(self.audio_input(mfcc))

    def backend(self, a, v):
        return self.backend_net(a, v)

    def speaking_logit(self, a, v):
        """(B, T) the audio-visual head's 'speaking' minus 'not speaking' logit."""
        out = self.av_head(self.backend(a, v))
        return out[..., 1] - out[..., 0]

    def visual_logit(self, v):
        out = self.v_head(v)
        return out[..., 1] - out[..., 0]


def _our_key(key: str, arch: str) -> str:
    """The authors' checkpoint key -> ours (their GRU container is `GRU` / `detector`, heads `lossAV` / `lossV`)."""
    key = key.replace("lossAV.FC.", "av_head.").replace("lossV.FC.", "v_head.")
    if key.startswith("model."):
        key = key[len("model."):]
    if arch == "light_asd":
        key = key.replace("GRU.", "backend_net.", 1)
    else:
        key = key.replace("fusion.", "backend_net.fusion.", 1).replace("detector.", "backend_net.detector.", 1)
    return key


def detect_architecture(state: Dict[str, torch.Tensor]) -> str:
    if "model.GRU.gru_forward.weight_ih_l0" in state:
        return "light_asd"
    if "model.detector.gru_forward.weight_ih_l0" in state:
        return "lr_asd"
    raise ValueError("not a Light-ASD or LR-ASD checkpoint")


def from_state_dict(state: Dict[str, torch.Tensor]) -> ASDModel:
    """An ASDModel (eval mode, float32) from the authors' flat state dict, every key used exactly once."""
    arch = detect_architecture(state)
    model = ASDModel(arch)
    model.load_state_dict({_our_key(k, arch): v for k, v in state.items()}, strict=True)
    return model.float().eval()


# the computation a frozen encoder keeps (core.sync.asd.weights.frozen_cache names its file after it): raise it when
# the encoder's forward changes, or a cached file from before keeps running the old one. 2: `time_conv`; 3: the
# 2-D pool and the ReLUs in place.
FROZEN_VERSION = 3


def freeze_visual(model: ASDModel, cache: Optional[Path] = None) -> ASDModel:
    """The same model with its visual encoder traced and frozen by TorchScript (batch norms folded into the
    convolutions, oneDNN's fused kernels): 2-4x faster on a CPU, outputs equal to ~2e-6. For inference only.
    `cache`: a file that keeps the frozen encoder (tracing and freezing take ~1 s of every process that scores;
    loading it back, ~0.02 s, gives the same outputs). Name it after the weights, the torch version and the device."""
    device = next(model.parameters()).device
    if cache is not None and cache.is_file():
        try:
            model.visualEncoder = torch.jit.load(str(cache), map_location=device)
            return model
        except (RuntimeError, OSError, ValueError) as exc:     # a damaged cache file is made again
            log.warning("ignoring the unreadable frozen ASD encoder %s (%s)", cache, exc)
    with torch.inference_mode(False), torch.no_grad():
        example = model.normalize(torch.zeros(1, 8, 112, 112, dtype=torch.uint8, device=device))
        model.visualEncoder = torch.jit.freeze(torch.jit.trace(model.visualEncoder.eval(), (example,),
                                                               check_trace=False))
    if cache is not None:
        from ...atomic import atomic_write

        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(cache, "wb") as fh:
                torch.jit.save(model.visualEncoder, fh)
        except OSError as exc:          # a cache that cannot be written is not an error for the job
            log.warning("could not keep the frozen ASD encoder in %s (%s)", cache, exc)
    return model


def load_checkpoint(path: Path, device: str = "cpu") -> ASDModel:
    """Read an authors' checkpoint file (no hash check here: shipped files go through core.models.registry)."""
    state = torch.load(Path(path), map_location=device, weights_only=True)
    return from_state_dict(state).to(device)


class SecondVoice(nn.Module):
    """A network's encoders with a second network's audio encoder beside its own: `audio` gives both embeddings of
    each frame side by side (B, T, 2 * EMBED), `visual` is the first network's (shared, not copied). The sync
    scorer's voice side (core.sync.scorers.asd): LR-ASD's audio encoder reads reverberant, noisy voices of speakers
    Light-ASD's misses (docs/MEASUREMENTS.md). Active-speaker detection keeps the authors' network alone."""

    def __init__(self, base: ASDModel, arch: str, audio_state: Dict[str, torch.Tensor]):
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown ASD architecture {arch!r}: {ARCHITECTURES}")
        self.second = AudioEncoder(LightAudioBlock if arch == "light_asd" else LRAudioBlock)
        self.second.load_state_dict(audio_state, strict=True)
        self.second.float().eval()
        self._base = (base,)                 # a tuple: not a submodule (its weights stay the shared network's)

    def visual(self, faces):
        return self._base[0].visual(faces)

    def audio(self, mfcc):
        return torch.cat([self._base[0].audio(mfcc), self.second(ASDModel.audio_input(mfcc))], dim=-1)


def audio_encoder_state(path: Path) -> tuple:
    """(architecture, audio encoder state dict) of an authors' checkpoint file: what `SecondVoice` is built from."""
    model = load_checkpoint(path)
    return model.arch, {k: v.clone() for k, v in model.audioEncoder.state_dict().items()}
