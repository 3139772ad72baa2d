"""The Wav2Lip engine as a plug-in: options, command-line arguments, settings description (the engine itself,
which needs torch, is in `.engine` and imported only when one is created)."""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ...models.registry import ModelSpec
from ..registry import EnginePlugin, OptionField
from .options import Wav2LipOptions

GENERATOR_KIND = "wav2lip"   # core.models.registry kind of the generator files
WAV2LIP_README = "https://github.com/Rudrabha/Wav2Lip (README, section 'Getting the weights')"
WAV2LIP_LICENCE = ("Wav2Lip weights: non-commercial research/academic use only (Wav2Lip licence); "
                   "commercial use needs the authors' permission")
GENERATOR_BYTES = 36_298_035 * 4       # float32 weights alone; smaller = a truncated download
GENERATORS = (
    ModelSpec("wav2lip", "wav2lip.pth", GENERATOR_KIND, None, f"{WAV2LIP_README}: the 'Wav2Lip' checkpoint",
              WAV2LIP_LICENCE, False, title="Wav2Lip generator (accurate sync)", min_bytes=GENERATOR_BYTES),
    ModelSpec("wav2lip_gan", "wav2lip_gan.pth", GENERATOR_KIND, None,
              f"{WAV2LIP_README}: the 'Wav2Lip + GAN' checkpoint", WAV2LIP_LICENCE, False,
              title="Wav2Lip + GAN generator (sharper)", min_bytes=GENERATOR_BYTES),
)


def create(options: Wav2LipOptions, *, models_dir: Optional[str] = None, device: str = "cpu"):
    from .engine import Wav2LipEngine

    return Wav2LipEngine(options, models_dir=models_dir, device=device)


def add_arguments(group) -> None:
    group.add_argument("--checkpoint", help="Wav2Lip generator: wav2lip, wav2lip_gan, or a file in the released "
                                            "format (default wav2lip)")


def options_from_args(args, options: Wav2LipOptions) -> Wav2LipOptions:
    ckpt = getattr(args, "checkpoint", None)
    return replace(options, checkpoint=ckpt) if ckpt is not None else options


PLUGIN = EnginePlugin(
    name="wav2lip",
    label="Wav2Lip",
    title="Wav2Lip (neural generator: needs a Wav2Lip weight file you supply)",
    options=Wav2LipOptions, create=create, add_arguments=add_arguments, options_from_args=options_from_args,
    models=GENERATORS,
    fields=(OptionField("checkpoint", "Wav2Lip weights", "model", model_kinds=(GENERATOR_KIND,),
                        tip="The generator file (the official weights are for non-commercial research only)"),),
)
