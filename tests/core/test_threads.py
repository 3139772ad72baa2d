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
