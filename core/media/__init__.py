"""Video/audio I/O through the ffmpeg and ffprobe command-line tools, streaming (never a whole video in RAM).

One concern per module, everything importable from here: `tools` (finding and running ffmpeg/ffprobe),
`probing` (`probe` -> `MediaInfo`), `decoding` (`iter_frames`, `FrameReader`), `encoding` (`VideoWriter`, muxing,
joining parts, the output path's checks). A test that replaces a function patches it where it is looked up
(e.g. `core.media.probing.ffprobe_path`).

Conventions (see docs/INTERFACES.md):
- Frames are BGR uint8 ``(H, W, 3)`` in *display orientation*: ffmpeg's autorotate applies the rotation
  metadata (display matrix / ``rotate`` tag) on decode. Pixels are **not** resampled for a non-square SAR: a
  frame holds the stored pixels (rotated); ``MediaInfo.sar`` is the pixel aspect ratio in display orientation
  and ``VideoWriter`` writes it back, so anamorphic video stays anamorphic.
- Frame ``i`` is the ``i``-th frame of the video at the constant rate ``MediaInfo.fps_fraction``. A constant
  frame rate (CFR) input is decoded frame for frame (``-fps_mode passthrough``). A variable frame rate (VFR)
  input is resampled to its average rate with ffmpeg's ``fps`` filter (round to nearest, absolute time grid,
  ``-copyts``). Either way a decode yields exactly ``MediaInfo.num_frames`` frames: if the decoder stops short
  (e.g. a corrupt tail), the last decoded frame is repeated; surplus frames are dropped.
- Random access (``FrameReader``) uses OpenCV's in-process FFmpeg decoder for CFR MP4/MOV/MKV/WebM/AVI files
  (a seek costs one decode from the previous key frame, no process start) and falls back to an ffmpeg pipe that
  is restarted at each long seek (exact for every input, slower) otherwise.

Writing (``VideoWriter``): frames go to ``ffmpeg -f rawvideo`` -> libx264 yuv420p (BT.709 matrix, limited range,
tagged) in a hidden temporary file next to the target; ``close()`` then muxes the audio (AAC, stream copy of the
video, explicit ``-map``) into a second temporary file and ``os.replace``s it onto the target. ``abort()``,
an exception inside ``with`` or a ``CancelledError`` delete the temporary files and never touch the target.
"""
from __future__ import annotations

from .tools import (  # noqa: F401
    PathLike, INSTALL_HINT, ffmpeg_path, ffprobe_path, ffmpeg_version, _popen_kwargs,
    _Proc,
)
from .probing import (  # noqa: F401
    PROBE_PACKETS, PROBE_TIMEOUT_S, VFR_JITTER, VFR_IRREGULAR_SHARE, VFR_RATE_MISMATCH, STANDARD_RATES,
    NOT_MEDIA_FORMATS, MediaInfo, build_probe_args, _check_input_file, probe, require_video,
    snap_rate, build_info_args, parse_ffmpeg_info,
)
from .decoding import (  # noqa: F401
    CV2_CONTAINERS, _grid_origin, build_decode_args, _ON_GRID, _grid_key, decode_on_time_grid,
    _file_identity, iter_frames, FrameReader, read_frame,
)
from .encoding import (  # noqa: F401
    SUPPORTED_OUTPUT_EXT, PRESETS, check_output_path, _rotation_args, build_encode_args, build_mux_args,
    build_concat_args, concat_list, mux_audio, join_video_parts, VideoWriter,
)
