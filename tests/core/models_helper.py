"""Test helpers for core.models / core.sync.scoring (owner: models helper).

Builds official-format checkpoint files from the reference fill rule (seed 1234), so tests can exercise the real
loading path without any released weights.
"""
from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import numpy as np
import torch

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"


@functools.lru_cache(maxsize=None)
def fill_rule():
    spec = importlib.util.spec_from_file_location("lipdub_ref_fill_rule", REFERENCE / "fill_rule.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@functools.lru_cache(maxsize=None)
def layout(name: str) -> dict:
    return json.loads((REFERENCE / "layouts" / f"{name}.json").read_text())


@functools.lru_cache(maxsize=None)
def filled(name: str, seed: int = 1234) -> dict:
    """{key: float32/int64 numpy array} per the reference fill rule, in layout order."""
    return fill_rule().fill(layout(name)["entries"], seed)


def tensors(name: str, seed: int = 1234) -> dict:
    return {k: torch.from_numpy(v.copy()) for k, v in filled(name, seed).items()}


def save_wav2lip_style(path: Path, name: str, prefix: str = "module.", seed: int = 1234) -> Path:
    """Like Wav2Lip's save_checkpoint under DataParallel: wrapper dict, `module.` keys, optimizer state, steps."""
    sd = {prefix + k: v for k, v in tensors(name, seed).items()}
    first = next(iter(sd.values()))
    optimizer = {"state": {0: {"step": torch.tensor(10.0), "exp_avg": torch.zeros_like(first)}},
                 "param_groups": [{"lr": 1e-4, "betas": (0.5, 0.999), "eps": 1e-8, "weight_decay": 0,
                                   "amsgrad": False, "params": [0]}]}
    torch.save({"state_dict": sd, "optimizer": optimizer, "global_step": 123456, "global_epoch": 78}, str(path))
    return path


def save_flat(path: Path, name: str, seed: int = 1234) -> Path:
    """Like syncnet_v2.model: a flat mapping keyed like the module's state dict."""
    torch.save(tensors(name, seed), str(path))
    return path


def ref(*parts) -> np.ndarray:
    return np.load(REFERENCE.joinpath(*parts))
