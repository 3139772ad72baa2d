"""Nothing in the repository names a folder of one machine: every tracked text file is scanned for absolute paths
(two or more components from the root, outside URLs; drive-letter folders). Caches belong in the user cache folder (core.paths), test files under pytest's
temporary folders; a fake path in a test is built from tmp_path so that this rule stays simple."""
import re
import subprocess

from data_paths import ROOT

# (path prefix, why it may be named)
ALLOWED = (
    ("/usr/bin/env", "the portable shebang of the shell scripts"),
    ("/dev/null", "where shell scripts discard output"),
    ("/proc/", "Linux per-process information; tools/bench reads the ffmpeg children's peak memory there"),
)
# an absolute POSIX path of at least two components, not inside a URL or after ~, $HOME, ${VAR}, a word...
POSIX = re.compile(r"(?<![\w.~:/\\$%}>\-])/[A-Za-z_][\w.{}-]*/[\w.{}$-]+[\w./{}$-]*")
WINDOWS = re.compile(r"(?<!\w)[A-Za-z]:\\{1,2}\w[\w .-]*\\")
BINARY_SUFFIXES = {".pt", ".pth", ".png", ".jpg", ".ico", ".icns", ".mp4", ".wav", ".npz", ".npy", ".dat"}


def tracked_text_files():
    """Text files git tracks, and new ones it would (not ignored)."""
    r = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                       capture_output=True, check=True)
    for name in r.stdout.decode().split("\0"):
        p = ROOT / name
        if name and p.suffix.lower() not in BINARY_SUFFIXES and p.is_file():
            data = p.read_bytes()
            if b"\0" not in data[:4096]:
                yield name, data.decode("utf-8", "replace")


def machine_paths(text: str):
    for m in [*POSIX.finditer(text), *WINDOWS.finditer(text)]:
        if not any(m.group().startswith(prefix) for prefix, _ in ALLOWED):
            yield m.group()


def test_scanner_finds_what_it_must_and_spares_urls():
    posix, windows = "/" + "srv/cache/grid", "C:" + "\\Users\\"    # in parts: this file passes its own test
    found = list(machine_paths(f'CACHE = Path("{posix}")  # https://x.org/a/b, ~/.cache/a/b, $HOME/a/b, <dir>/a/b\n'
                               f'x = "{windows}me"; shebang /usr/bin/env; fricatives /s/, /f/; 1/25000 s; "\\n"'))
    assert found == [posix, windows]


def test_no_tracked_file_names_a_machine_folder():
    files = dict(tracked_text_files())
    assert "core/media/decoding.py" in files and "tests/test_no_machine_paths.py" in files
    bad = [f"{name}: {hit}" for name, text in files.items() for hit in machine_paths(text)]
    assert not bad, "absolute folders outside the repository:\n" + "\n".join(bad)
