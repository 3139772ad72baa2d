import faulthandler
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # data_paths, shared by every test folder
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "lipdub" / "numba"))

# Under pytest-xdist each worker gets its share of the cores for torch's and the BLAS libraries' thread pools (set
# before anything imports them; subprocesses inherit it). With their default of one thread per core, two workers on
# two cores run four spinning pools, and the other jobs of a shared machine more: one in-process dub measured under
# load took 2x the CPU time and 2x the wall time with 2 threads as with 1.
_XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
WORKER_THREADS = max(1, (os.cpu_count() or 1) // _XDIST_WORKERS) if _XDIST_WORKERS > 1 else None
if WORKER_THREADS:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, str(WORKER_THREADS))

from data_paths import GRID_S1, REFERENCE, SHARED, heldout_names  # noqa: E402


def run_temp_root(tmp_path_factory) -> Path:
    """pytest's temp folder of the whole run: with pytest-xdist each worker's own basetemp (.../popen-gwN) is a
    folder inside the one of the run."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


# The heaviest test files, heaviest first (wall time of each file in a `make test` run on the shared 2-core machine,
# 2026-12-06; every file not listed takes under 20 s there). `make test` hands whole files to the two xdist workers
# in collection order (`--dist loadfile --no-loadscope-reorder`; xdist's own default order is by number of tests per
# file, which puts files of a few long tests, like test_refine.py, last): the long files start first and the short
# ones fill in, so both workers finish together. A new heavy file belongs in this list.
HEAVY_FIRST = (
    "tests/core/test_media_matrix.py",
    "tests/core/test_refine.py",
    "tests/core/test_damage_fuzz.py",
    "tests/core/test_adapt.py",
    "tests/core/test_pipeline.py",
    "tests/core/test_batch_ray.py",
    "tests/core/test_asd_speaker.py",
    "tests/core/test_media_damage.py",
    "tests/app/test_corrections.py",
    "tests/core/test_performer.py",
    "tests/core/test_export_faults.py",
    "tests/core/test_sync_asd.py",
    "tests/app/test_main_window.py",
    "tests/core/test_scoring.py",
    "tests/core/test_batch.py",
    "tests/core/test_av_offset.py",
    "tests/core/test_edits.py",
    "tests/core/test_sync_lane.py",
    "tests/core/test_qc.py",
    "tests/core/test_mouth_shape.py",
    "tests/core/test_classic.py",
    "tests/core/test_asd.py",
    "tests/core/test_models.py",
)


def pytest_collection_modifyitems(config, items):
    """Heavy files first (HEAVY_FIRST), the rest after them in their usual order; each file's tests keep theirs."""
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Every cache the program writes during the tests (face tracks, model hashes...) goes under pytest's temp
    area, never into the user's cache folder (subprocesses inherit the variable). One folder for the whole run,
    shared by the xdist workers: a clip tracked, a GRID landmark file or the frozen ASD encoder made by one worker
    is a cache hit for the other (every cache file is written to a temporary name and renamed into place)."""
    folder = run_temp_root(tmp_path_factory) / "lipdub_cache"
    old = os.environ.get("LIPDUB_CACHE_DIR")
    os.environ["LIPDUB_CACHE_DIR"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("LIPDUB_CACHE_DIR", None)
    else:
        os.environ["LIPDUB_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def worker_threads():
    """A test that sets torch's thread count (some do, for reference fixtures made with one thread) does not leave it
    to the tests after it on this worker."""
    yield
    torch = sys.modules.get("torch")
    if WORKER_THREADS and torch is not None and torch.get_num_threads() != WORKER_THREADS:
        torch.set_num_threads(WORKER_THREADS)


@pytest.fixture(autouse=True)
def hang_guard(request):
    """A test stuck in native code that holds the GIL (a Qt deadlock) cannot be stopped by pytest-timeout's signal;
    faulthandler's watchdog is a C thread: it prints every thread's stack and ends the run, so CI fails at once
    with the evidence instead of stalling until its own limit."""
    faulthandler.dump_traceback_later(float(request.config.getini("timeout")) + 60, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def shared_dir():
    if not SHARED.is_dir():
        pytest.fail(f"../shared is missing (expected at {SHARED})")
    return SHARED


@pytest.fixture(scope="session")
def reference_dir(shared_dir):
    return REFERENCE


@pytest.fixture(scope="session")
def grid_clip():
    """A held-out GRID s1 clip (never trained on)."""
    return GRID_S1 / "video" / (heldout_names()[0] + ".mp4")


@pytest.fixture(scope="session")
def matrix_media(tmp_path_factory, grid_clip):
    """Real-world media of every common kind, made on first use (see tests/media_matrix.py)."""
    from media_matrix import MatrixMedia

    return MatrixMedia(tmp_path_factory.mktemp("matrix"), grid_clip)


@pytest.fixture(scope="session")
def w2l_checkpoint(tmp_path_factory):
    """A Wav2Lip generator file in the released format with random weights: exercises the real engine and
    pipeline plumbing (preview, export, cancel) without the shipped or user-supplied models. Made once per worker
    (a few seconds) for every test that needs one."""
    from tools.bench import fill_rule_checkpoint

    p = tmp_path_factory.mktemp("ckpt") / "wav2lip_random.pth"
    fill_rule_checkpoint(p)
    return str(p)
