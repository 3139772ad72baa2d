"""LipDub Studio core: everything that computes. No Qt may be imported below this package."""
import os

__version__ = "0.1.0"

# torch's OpenMP threads sleep between parallel regions instead of spinning (libgomp reads this once, when torch is
# imported, so it is set before anything below imports torch; a value the user set is kept). The dub runs its
# networks beside other threads and processes (the texture library's decoding, x264, other jobs): a spinning thread
# holds a core the others need, and one that lost its core stalls every region. Same arithmetic, so the same
# results (bit-identical features). Measured on 60 s of 720p at load ~3.5 (docs/MEASUREMENTS.md, issue 19): the
# own-voice scoring's picture side 36.9 -> 23.3 s, its voice side 4.2 -> 1.8 s (wall = CPU).
WAIT_POLICY_ENV = "OMP_WAIT_POLICY"
os.environ.setdefault(WAIT_POLICY_ENV, "PASSIVE")
