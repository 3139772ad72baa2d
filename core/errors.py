"""Typed exceptions raised by the core. The CLI prints `str(exc)` as one line; the GUI shows it in a dialog.

Every message must say what went wrong *and* what the user can do about it, naming the file involved.
"""


class LipDubError(Exception):
    """Base class of every error the core raises on purpose (bad input, missing model, cancel...)."""

    exit_code = 1


class FFmpegMissingError(LipDubError):
    exit_code = 3


class MediaError(LipDubError):
    """Unreadable/missing file, no video stream, no audio stream, zero-length media, ffmpeg failure."""

    exit_code = 4


class AudioError(MediaError):
    pass


class OutputError(LipDubError):
    """Output path not writable, equal to an input, or encoding failed."""

    exit_code = 5


class NoFaceError(LipDubError):
    exit_code = 6


class ModelError(LipDubError):
    """A model file is missing, corrupt (SHA-256 mismatch), or has the wrong layout."""

    exit_code = 7


class ModelMissingError(ModelError):
    pass


class ModelCorruptError(ModelError):
    pass


class ProjectError(LipDubError):
    exit_code = 8


class CancelledError(LipDubError):
    """Raised by `CancelToken.raise_if_cancelled()`; the job must leave no partial output behind."""

    exit_code = 130
