"""main.configure_environment: what the libraries read when they load is set before they do."""
import os
import subprocess
import sys

from data_paths import ROOT

CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
import main
main.configure_environment()
import numpy, scipy.linalg, threadpoolctl
blas = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
print(len(blas), *sorted({p["num_threads"] for p in blas}))
"""


def run_child(env):
    r = subprocess.run([sys.executable, "-c", CHILD, str(ROOT)], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_numpys_blas_runs_on_one_thread_unless_the_user_says_otherwise(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env["HOME"] = str(tmp_path)
    found, *threads = run_child(env)
    assert int(found) >= 1 and threads == ["1"]
    assert run_child(dict(env, OPENBLAS_NUM_THREADS="2"))[1:] == ["2"]
