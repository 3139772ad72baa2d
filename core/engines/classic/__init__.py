"""The classic engine as a plug-in: options, command-line arguments, settings description (the engine itself,
imported only when one is created, is in `.engine`)."""
from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Optional

from ..registry import EnginePlugin, OptionField
from .options import ClassicOptions


def create(options: ClassicOptions, *, models_dir: Optional[str] = None, device: str = "cpu"):
    from .engine import ClassicEngine

    return ClassicEngine(options, models_dir=models_dir, device=device)


def add_arguments(group) -> None:
    group.add_argument("--classic-candidates", type=int, metavar="K", help="mouths retrieved per frame (default 12)")
    group.add_argument("--classic-blend", type=int, metavar="N", help="retrieved mouths blended per frame (default 5)")
    group.add_argument("--classic-steadiness", type=float, metavar="W",
                       help="cost of switching to another stretch of the clip (default 1.0)")
    group.add_argument("--mouth-model", metavar="FILE", help="audio-to-mouth model file (default: the shipped one)")
    group.add_argument("--keep-expression", action=argparse.BooleanOptionalAction, default=None,
                       help="keep the actor's slow lip expression (smile, pout) and replace only the speech motion "
                            "(default: on)")


def options_from_args(args, options: ClassicOptions) -> ClassicOptions:
    given = {key: getattr(args, attr, None) for attr, key in (
        ("classic_candidates", "k"), ("classic_blend", "blend"), ("classic_steadiness", "jump"),
        ("mouth_model", "mouth_model"), ("keep_expression", "keep_expression"))}
    given = {k: v for k, v in given.items() if v is not None}
    return replace(options, **given) if given else options


PLUGIN = EnginePlugin(
    name="classic",
    label="Classic",
    title="Classic (offline, ships with the app: audio → mouth shape → retrieval from the clip itself)",
    options=ClassicOptions, create=create, add_arguments=add_arguments, options_from_args=options_from_args,
    models=("mouth_shape",), mouth_model=lambda options: options.mouth_model,
    fields=(
        OptionField("k", "Candidates", "int", 1, 32, 1, tip="Mouths retrieved from the clip for each frame"),
        OptionField("blend", "Blend", "int", 1, 16, 1, tip="Retrieved mouths blended into each frame"),
        OptionField("jump", "Steadiness", "float", 0.0, 5.0, 0.1,
                    tip="Higher keeps the mouth texture from one stretch of the clip longer"),
        OptionField("keep_expression", "Keep expression", "bool",
                    tip="Keep the actor's own smile or pout; the dub replaces only the speech motion"),
    ),
)
