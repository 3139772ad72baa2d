"""Speed work must not change the picture: the frames the export hands to the encoder are compared with the frames
of the plain serial loop (decode a frame, render it, hand it on: the export as it was before its stages overlapped).
Outside what the dub changed they must be bit-identical; inside, PSNR >= 50 dB."""
import numpy as np
import pytest

from core import audio, media
from core.pipeline import DubSettings, prepare_dub
from core.render.schedule import voice_for
from core.render.source import SourceFrames
from core.render.stages import StageTimer
from core.render.writer import render_file
from data_paths import GRID_S1, SAMPLES, heldout_names

MIN_PSNR_DB = 50.0


def serial_reference(renderer, out_idx, batch_size):
    """(frames handed to the encoder, original frames) by the serial loop."""
    source = SourceFrames(renderer.video_path, renderer.info, renderer.ctx.source_index)
    frames, originals, batch, idx = [], [], [], []

    def flush():
        out, _ = renderer.render(batch, idx, StageTimer())
        frames.extend(np.array(f) for f in out)
        batch.clear()
        idx.clear()

    try:
        for o, _s, frame in source.iterate(out_idx):
            originals.append(np.array(frame))
            batch.append(frame)
            idx.append(o)
            if len(batch) >= batch_size:
                flush()
        flush()
    finally:
        source.close()
    return frames, originals


def encoder_input(monkeypatch, path, renderer, out_idx, batch_size, audio):
    """The frames `render_file` hands to the encoder (recorded at VideoWriter.write)."""
    seen = []
    write = media.VideoWriter.write

    def recording(self, frame):
        seen.append(np.array(frame))
        write(self, frame)

    monkeypatch.setattr(media.VideoWriter, "write", recording)
    render_file(path, renderer, out_idx, audio=audio, crf=18, preset="ultrafast", batch_size=batch_size,
                timer=StageTimer())
    return seen


def differences(reference, candidate, originals):
    """(frames whose untouched pixels differ, lowest PSNR in dB over the pixels the dub changed). Untouched: where
    the reference equals the original frame."""
    assert len(candidate) == len(reference), f"{len(candidate)} frames instead of {len(reference)}"
    outside_bad, worst = [], float("inf")
    for i, (ref, new, orig) in enumerate(zip(reference, candidate, originals)):
        changed = np.any(ref != orig, axis=-1)
        if np.any(new[~changed] != ref[~changed]):
            outside_bad.append(i)
        if changed.any():
            err = np.mean((new[changed].astype(np.float64) - ref[changed]) ** 2)
            worst = min(worst, float("inf") if err == 0 else 10 * np.log10(255.0 ** 2 / err))
    return outside_bad, worst


def test_the_comparison_catches_a_changed_picture():
    rng = np.random.default_rng(0)
    orig = [rng.integers(0, 256, (48, 64, 3), np.uint8) for _ in range(3)]
    ref = [o.copy() for o in orig]
    for r in ref:
        r[20:30, 20:40] = 128                          # what "the dub" changed
    assert differences(ref, [r.copy() for r in ref], orig) == ([], float("inf"))
    outside = [r.copy() for r in ref]
    outside[1][0, 0, 0] ^= 1                           # one bit outside the mouth
    assert differences(ref, outside, orig)[0] == [1]
    inside = [r.copy() for r in ref]
    inside[2][20:30, 20:40] += 3                       # a visible shift inside: 38.6 dB
    assert differences(ref, inside, orig)[1] < MIN_PSNR_DB
    with pytest.raises(AssertionError):                # a frame lost
        differences(ref, ref[:2], orig)


@pytest.mark.parametrize("clip, length", [("sample", "shortest"), ("grid", "pingpong"), ("sample", "hold")])
def test_export_hands_the_encoder_the_serial_loops_frames(clip, length, tmp_path, monkeypatch):
    """The export composites into the decoded frames themselves; the serial loop into copies. Pingpong reads its
    frames from a spill file, hold shows the last frame again and again (each time composited afresh)."""
    if clip == "sample":
        video, voice = SAMPLES / "grid_s1_sample.mp4", SAMPLES / "voice_sample.wav"
        if length == "hold":        # a voice 0.5 s longer than the video: its last frame is held for 12 frames
            import soundfile as sf

            wav = audio.load_audio(voice)
            voice = tmp_path / "long_voice.wav"
            sf.write(voice, np.concatenate([wav, wav[:len(wav) // 6]]), audio.SAMPLE_RATE)
    else:
        names = heldout_names()
        video, voice = GRID_S1 / "video" / f"{names[3]}.mp4", GRID_S1 / "video" / f"{names[4]}.mp4"
    settings = DubSettings(video=str(video), audio=str(voice), output=str(tmp_path / "out.mp4"), adapt=False,
                           length_policy=length, batch_size=8, track_cache_dir=str(tmp_path / "tracks"),
                           speaker_cache_dir=str(tmp_path / "speaker"), face_track=0)
    dub = prepare_dub(settings)
    try:
        out_idx = dub.prep.out_indices
        reference, originals = serial_reference(dub.renderer, out_idx, settings.batch_size)
        assert sum(np.any(r != o) for r, o in zip(reference, originals)) > 0.5 * len(out_idx)  # it dubbed
        got = encoder_input(monkeypatch, tmp_path / "out.mp4", dub.renderer, out_idx, settings.batch_size,
                            voice_for(dub.prep.ctx, out_idx))
    finally:
        dub.close()
    outside_bad, psnr = differences(reference, got, originals)
    assert outside_bad == [], f"frames {outside_bad} differ outside what the dub changed"
    assert psnr >= MIN_PSNR_DB
    assert media.probe(tmp_path / "out.mp4").num_frames == len(out_idx)


def test_batches_hold_a_bounded_number_of_bytes():
    """Large frames are rendered in smaller batches (memory: a batch is held three times at once), never fewer than
    two (both threads render) unless asked for one; small frames keep the batch asked for."""
    from core.render.writer import BATCH_BYTES, frames_per_batch

    assert frames_per_batch(16, 1280, 720) == 16
    assert frames_per_batch(16, 640, 360) == 16
    assert frames_per_batch(16, 1920, 1080) == 7
    assert frames_per_batch(16, 1080, 1920) == 7
    assert frames_per_batch(4, 1920, 1080) == 4
    assert frames_per_batch(16, 3840, 2160) == 2
    assert frames_per_batch(1, 3840, 2160) == 1
    for w, h in ((1920, 1080), (2560, 1440), (1280, 720)):
        n = frames_per_batch(64, w, h)
        assert n * 3 * w * h <= BATCH_BYTES < (n + 1) * 3 * w * h


def test_a_packed_texture_library_renders_the_same_frames(tmp_path, monkeypatch):
    """A long clip's library keeps its crops as lossless PNGs (memory): every rendered frame stays bit-identical."""
    from core.engines.classic import engine as classic

    frames, packed = [], []
    for above_mb in (1e9, 0.0):
        monkeypatch.setattr(classic, "PACK_LIBRARY_ABOVE_MB", above_mb)
        settings = DubSettings(video=str(SAMPLES / "grid_s1_sample.mp4"), audio=str(SAMPLES / "voice_sample.wav"),
                               output=str(tmp_path / "out.mp4"), adapt=False, track_cache_dir=str(tmp_path / "t"),
                               speaker_cache_dir=str(tmp_path / "speaker"), face_track=0)
        dub = prepare_dub(settings)
        try:
            packed.append(dub.engines["classic"].lib.packed)
            frames.append(serial_reference(dub.renderer, dub.prep.out_indices, 8)[0])
        finally:
            dub.close()
    assert packed == [False, True]
    assert len(frames[0]) == len(frames[1]) > 0
    assert all(np.array_equal(a, b) for a, b in zip(*frames))
