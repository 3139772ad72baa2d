"""render_file's second rendering thread (pipeline.RenderHelper): a batch's halves are rendered in two threads only
for engines whose frames are independent; the frames come back in order, the stage times add up, errors surface."""
import threading

import numpy as np
import pytest

from core.render.renderer import FrameRenderer
from core.render.stages import StageTimer
from core.render.writer import RenderHelper


class Renderer:
    def __init__(self, fail_at=None):
        self.threads, self.fail_at = set(), fail_at

    def render(self, frames, out_indices, timer, reuse_frames=False):
        self.threads.add(threading.current_thread().name)
        if self.fail_at in out_indices:
            raise ValueError(f"frame {self.fail_at}")
        timer.add("generate", 1.0, len(frames))
        return [f + 1 for f in frames], len(frames)


def test_halves_in_two_threads_in_order():
    helper = RenderHelper()
    try:
        r, timer = Renderer(), StageTimer()
        frames = [np.full(2, i) for i in range(16)]
        out, n = helper.render(r, frames, list(range(16)), timer)
        assert [int(f[0]) for f in out] == list(range(1, 17)) and n == 16
        assert len(r.threads) == 2
        assert timer.seconds["generate"] == 2.0 and timer.frames["generate"] == 16
        out, n = helper.render(r, frames[:1], [0], timer)                 # one frame: this thread alone
        assert n == 1 and int(out[0][0]) == 1
        for bad in (3, 12):                                                # either half's error reaches the job
            with pytest.raises(ValueError, match=f"frame {bad}"):
                helper.render(Renderer(fail_at=bad), frames, list(range(16)), StageTimer())
    finally:
        helper.close()


def test_only_engines_with_independent_frames_are_split():
    class Independent:
        frames_independent = True

    class Batched:
        pass

    assert FrameRenderer({"a": Independent()}, "a", None, None).frames_independent()
    assert not FrameRenderer({"a": Independent(), "b": Batched()}, "a", None, None).frames_independent()
    from core.engines.classic.engine import ClassicEngine
    from core.engines.wav2lip.engine import Wav2LipEngine

    assert ClassicEngine.frames_independent and not Wav2LipEngine.frames_independent
