"""core.preload: torch and the networks a dub will load, loaded in a thread while the job probes and tracks; and the
pipeline's use of it (the preloaded scorer is the one the job uses, a failed preload changes nothing)."""
import numpy as np

from core import pipeline
from core.preload import Preload
from core.sync.scorers import registry


def test_the_preloaded_scorer_is_handed_over_once_and_only_for_the_same_settings(monkeypatch):
    loads = []
    monkeypatch.setattr(registry, "get_scorer", lambda name, models_dir=None, device="auto":
                        loads.append((name, models_dir, device)) or object())
    p = Preload(device="cpu", models_dir="m", scorer=True)
    s = p.scorer("m", "cpu")
    assert s is not None and loads == [("auto", "m", "cpu")]
    assert p.scorer("m", "cpu") is None                            # once: the job owns it now
    assert Preload(device="cpu", models_dir="m", scorer=True).scorer("other", "cpu") is None
    assert Preload(device="cpu", models_dir="m", scorer=True).scorer("m", "cuda") is None
    assert Preload(device="cpu", scorer=False).scorer(None, "cpu") is None


def test_a_failed_preload_is_forgotten(monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("no such model")

    monkeypatch.setattr(registry, "get_scorer", broken)
    p = Preload(device="cpu", scorer=True)
    assert p.scorer(None, "cpu") is None


def test_report_voice_falls_back_when_its_scorer_cannot_load(monkeypatch):
    """ReportVoice (the report's voice side, computed while the output renders) without a scorer leaves the scoring,
    and its error, to score_output after the render."""
    def broken(prep, settings):
        raise pipeline.ModelError("the scorer is missing")

    monkeypatch.setattr(pipeline, "report_scorer", broken)
    rv = pipeline.ReportVoice(settings=None, prep=None, out_idx=np.arange(3))
    assert rv.scorer is None and rv.result() is None
