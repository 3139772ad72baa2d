"""torch's OpenMP threads wait passively once `core` is imported (core/__init__.py): they sleep between parallel
regions instead of spinning on a core the dub's other threads need."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = "import core, torch; torch.ones(4).sum()"


def omp_settings(env_extra: dict) -> str:
    """What libgomp says it uses (OMP_DISPLAY_ENV) in a fresh process that imports core, then torch."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(env_extra, OMP_DISPLAY_ENV="verbose", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, check=True)
    return out.stderr


def test_openmp_threads_do_not_spin_after_importing_core():
    shown = omp_settings({})
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in shown
    assert "GOMP_SPINCOUNT = '0'" in shown          # unset, libgomp would spin 300000 times before sleeping


def test_a_policy_the_user_set_is_kept():
    shown = omp_settings({"OMP_WAIT_POLICY": "ACTIVE"})
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in shown


def test_frame_share_hands_over_in_order_then_decodes_the_rest():
    import threading

    from core.streams import FrameShare

    def decode(n):
        return lambda k: iter([("own", i) for i in range(k, n)])

    for given in (0, 3, 10, 25):
        share = FrameShare(depth=2)

        def scoring_pass():
            for i in range(given):
                share.add(i, ("pass", i))
            share.done()

        th = threading.Thread(target=scoring_pass)
        th.start()
        got = list(share.frames(20, decode(20)))
        th.join(timeout=5)
        assert not th.is_alive()                          # a pass longer than the reader is released
        assert [i for _, i in got] == list(range(20))
        assert [src for src, _ in got] == ["pass"] * min(given, 20) + ["own"] * (20 - min(given, 20))
        assert share.shared == min(given, 20)


def test_frame_share_out_of_order_or_closed_reader():
    import threading

    from core.streams import FrameShare

    share = FrameShare(depth=1)
    share.add(0, "a")
    share.add(5, "x")                                     # not the pass from the start: sharing ends
    assert list(share.frames(3, lambda k: iter(range(k, 3)))) == ["a", 1, 2]
    share = FrameShare(depth=1)
    reader = share.frames(10, lambda k: iter(range(k, 10)))
    th = threading.Thread(target=lambda: [share.add(i, i) for i in range(10)])
    th.start()
    assert next(reader) == 0
    reader.close()                                        # the reader stops: the blocked pass goes on
    th.join(timeout=5)
    assert not th.is_alive()


def test_frame_share_closed_before_reading_never_blocks_the_pass():
    """The pipeline closes the share when the reading engine failed before it read (no scoring pass left waiting)."""
    from core.streams import FrameShare

    share = FrameShare(depth=1)
    share.close()
    for i in range(20):
        share.add(i, i)                                   # returns at once: nobody will read
    share.done()
