"""Run the command line (`main.py ARGS`) in the test process: the models and libraries load once per session
instead of once per call, and what it prints is captured. Exit codes and messages are the real ones."""
from __future__ import annotations

import contextlib
import io


def run_cli(*args):
    """(exit code, stdout, stderr) of `main.py ARGS`."""
    from core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()
