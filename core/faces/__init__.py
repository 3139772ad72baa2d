"""Face detection, landmarks and tracking (no Qt).

- `detect`: `DlibBackend` (offline default: HOG on a downscaled copy + 68-point predictor at full resolution),
  `default_backend()` (shared, models load once per process); `backends.get_backend("dlib" | "fan")`.
- `fan`: `FanBackend`, face-alignment's 2D-FAN + S3FD/BlazeFace from the user's own weight files (never downloads).
- `track`: `track_video(path)` / `track_frames(frames, n, fps)` -> `TrackSet` of `FaceTrack`s.
- `smoothing`: zero-phase One-Euro filtering; `cache`: per-clip .npz cache of tracking results.
- `geometry`: iBUG-68 index groups, inter-ocular distance, mouth opening, similarity transforms.
"""
