import struct

import numpy as np
import pytest

from core import audio
from core.errors import AudioError, MediaError

from core.media import ffmpeg_path
from data_paths import GRID_OTHERS, GRID_S1, REFERENCE

REF = REFERENCE / "audio"


@pytest.fixture(scope="module")
def speech():
    return audio.load_audio(REF / "speech16k.wav")


# ----------------------------------------------------------------------------------------------------------- load
def test_load_reference_wav_is_exact(speech):
    import soundfile as sf

    raw, sr = sf.read(str(REF / "speech16k.wav"), dtype="int16")
    assert sr == 16000 and speech.dtype == np.float32 and speech.shape == (49865,)
    assert np.array_equal(speech, raw.astype(np.float32) / 32768)


def test_load_any_container_resamples_and_downmixes(tmp_path, speech):
    import subprocess

    # the same voice through AAC at 44.1 kHz stereo: back at 16 kHz mono, same length, nearly the same signal
    m4a = tmp_path / "voice.m4a"
    subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(REF / "speech16k.wav"), "-ar", "44100", "-ac", "2",
                    "-c:a", "aac", "-b:a", "256k", str(m4a)], check=True)
    x = audio.load_audio(m4a)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - len(speech)) <= 0.05 * 16000          # AAC priming/padding
    lag = int(np.argmax(np.correlate(x[:20000], speech[5000:7000], "valid"))) - 5000
    seg = x[5000 + lag:45000 + lag]
    assert np.corrcoef(seg, speech[5000:45000])[0, 1] > 0.98
    # stereo WAV with the voice only on the left: the mono mix is half of it (soundfile fast path + soxr)
    import soundfile as sf

    st = tmp_path / "st.wav"
    sf.write(str(st), np.stack([speech, np.zeros_like(speech)], 1), 16000, subtype="FLOAT")
    assert np.allclose(audio.load_audio(st), speech / 2, atol=1e-7)
    y = audio.load_audio(st, sr=8000)
    assert len(y) == (len(speech) + 1) // 2


def test_load_real_clips(grid_clip):
    x = audio.load_audio(grid_clip)                    # AAC 44.1 kHz mono in MP4
    assert abs(len(x) - 2.978 * 16000) < 800 and 0.05 < np.abs(x).max() <= 1.0    # clipped to full scale
    mpg = sorted(GRID_OTHERS.glob("*.mpg"))[0]         # MP2 stereo in MPEG-PS
    y = audio.load_audio(mpg)
    assert abs(len(y) - 2.95 * 16000) < 800 and np.abs(y).max() > 0.05


def test_load_bad_inputs(odd_media, tmp_path):
    with pytest.raises(AudioError, match="no audio stream"):
        audio.load_audio(odd_media("noaudio"))
    with pytest.raises(AudioError, match="zero length"):
        audio.load_audio(odd_media("wav_empty"))
    with pytest.raises(MediaError, match="empty"):
        audio.load_audio(odd_media("empty"))
    with pytest.raises(MediaError, match="not a readable"):
        audio.load_audio(odd_media("garbage"))
    with pytest.raises(MediaError, match="does not exist"):
        audio.load_audio(tmp_path / "nope.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + bytes(200))               # broken header: soundfile fails, ffmpeg too
    with pytest.raises(MediaError, match="bad.wav"):
        audio.load_audio(bad)


def test_load_hour_long_wav_reads_the_file_directly(tmp_path, monkeypatch):
    """An hour of 16 kHz WAV loads through the fast path (soundfile, no ffmpeg decode, no resampling); how fast
    is a benchmark figure (tools.bench), not a timed test."""
    def no_ffmpeg(*a, **k):
        raise AssertionError("a 16 kHz WAV must not be decoded through ffmpeg")

    monkeypatch.setattr(audio, "build_audio_decode_args", no_ffmpeg)
    n = 3600 * 16000
    path = tmp_path / "hour.wav"
    with open(path, "wb") as f:         # PCM16 mono 16 kHz header, then a sparse hour of silence
        f.write(b"RIFF" + struct.pack("<I", 36 + 2 * n) + b"WAVEfmt " +
                struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16) + b"data" + struct.pack("<I", 2 * n))
        f.truncate(44 + 2 * n)
    x = audio.load_audio(path)
    assert x.shape == (n,) and x.dtype == np.float32 and not x.any()


# ------------------------------------------------------------------------------------------------------------ mel
def test_mel_matches_reference_fixture(speech):
    mel = audio.melspectrogram(speech)
    ref = np.load(REF / "mel.npy")
    assert mel.shape == ref.shape == (80, 250) and mel.dtype == np.float32
    err = np.abs(mel - ref).max()
    print(f"mel max abs error vs fixture: {err:.2e}")
    assert err < 1e-6


def _first_column(y, mirror):
    """Mel column 0 computed by hand: the window centred on sample 0, its left half reflected or zero."""
    left = y[400:0:-1] if mirror else np.zeros(400)
    frame = np.concatenate([left, y[:400]])
    n = np.arange(800)
    mag = np.abs(np.fft.rfft(frame * (0.5 - 0.5 * np.cos(2 * np.pi * n / 800))))
    db = 20 * np.log10(np.maximum(1e-5, audio.mel_basis().astype(np.float64) @ mag)) - 20
    return np.clip(8 * (db + 100) / 100 - 4, -4, 4)


def test_mel_uses_reflect_padding_like_wav2lip(speech):
    x = speech[9000:25000]                       # starts inside speech
    assert np.abs(x[:50]).max() > 0.01
    y = np.concatenate([[x[0]], x[1:].astype(np.float64) - 0.97 * x[:-1]])
    ours = audio.melspectrogram(x)
    reflect, zero = _first_column(y, True), _first_column(y, False)
    assert np.abs(ours[:, 0] - reflect).max() < 1e-5
    assert np.abs(zero - reflect).max() > 0.1     # librosa >= 0.10's zero padding would differ here


def test_mel_edge_cases():
    for n in (0, 1, 3, 199, 200, 401, 799, 16000):
        m = audio.melspectrogram(np.zeros(n, np.float32))
        assert m.shape == (80, audio.num_mel_frames(n)) and np.all(m == -4.0), n
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 300):
        m = audio.melspectrogram(rng.standard_normal(n).astype(np.float32) * 0.1)
        assert m.shape == (80, 1 + n // 200) and np.all(np.isfinite(m)) and np.abs(m).max() <= 4
    x = rng.standard_normal(4000).astype(np.float32) * 0.1
    bad = x.copy()
    bad[[10, 500, 3999]] = [np.nan, np.inf, -np.inf]
    clean = x.copy()
    clean[[10, 500, 3999]] = 0
    assert np.array_equal(audio.melspectrogram(bad), audio.melspectrogram(clean))


def test_mel_blocking_does_not_change_the_result(monkeypatch, speech):
    full = audio.melspectrogram(speech)
    monkeypatch.setattr(audio, "MEL_BLOCK", 7)
    assert np.array_equal(audio.melspectrogram(speech), full)


def _mel_of_whole_padded_signal(x):
    """The mel spectrogram as one whole padded, pre-emphasised float64 copy of the signal gives it (the way before
    `melspectrogram` cut the samples block by block), FFT'd in the same blocks."""
    x = np.nan_to_num(np.asarray(x, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    y = np.concatenate([x[:1], x[1:] - audio.PREEMPHASIS * x[:-1]])
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(y, audio.N_FFT // 2, mode="reflect"),
                                                      audio.N_FFT)[::audio.MEL_HOP]
    out = []
    for a in range(0, len(frames), audio.MEL_BLOCK):
        mag = np.abs(np.fft.rfft(frames[a:a + audio.MEL_BLOCK] * audio.hann_window(audio.MEL_WINDOW), axis=1))
        out.append(audio.mel_units(20.0 * np.log10(np.maximum(audio.AMP_FLOOR, np.dot(audio.mel_basis(), mag.T)))))
    return np.concatenate(out, axis=1).astype(np.float32)


@pytest.mark.parametrize("block", [audio.MEL_BLOCK, 3])
def test_mel_cut_from_each_blocks_samples_equals_the_whole_signals(monkeypatch, speech, block):
    monkeypatch.setattr(audio, "MEL_BLOCK", block)
    rng = np.random.default_rng(3)
    for n in (401, 402, 799, 800, 801, 1203, 16000, 3 * 200 * block + 17):
        x = (rng.standard_normal(n) * 0.1).astype(np.float32)
        x[[0, n // 2, n - 1]] = [0.7, np.nan, -np.inf]          # the edges' reflections and the repair
        assert np.array_equal(audio.melspectrogram(x), _mel_of_whole_padded_signal(x)), n
    assert np.array_equal(audio.melspectrogram(speech), _mel_of_whole_padded_signal(speech))


# --------------------------------------------------------------------------------------------------- chunking
@pytest.mark.parametrize("fps,name", [(25, "chunk_starts_25.npy"), (29.97, "chunk_starts_2997.npy")])
def test_chunk_starts_match_wav2lip(fps, name):
    ref = np.load(REF / name)
    got = audio.mel_chunk_starts(250, fps, len(ref))
    assert got.dtype == np.int64 and np.array_equal(got, ref)
    # fewer video frames: Wav2Lip's first pairs
    assert np.array_equal(audio.mel_chunk_starts(250, fps, 40), ref[:40])
    # more video frames than chunks: one start per frame, continuing past the end (read as silence)
    more = audio.mel_chunk_starts(250, fps, len(ref) + 5)
    assert len(more) == len(ref) + 5 and np.array_equal(more[:len(ref)], ref)
    assert np.all(np.diff(more[len(ref) - 1:]) > 0) and np.all(more[len(ref):] > 250 - 16)


def test_chunk_starts_reference_loop_other_rates():
    def loop(t, fps):
        out, i = [], 0
        while True:
            s = int(i * (80.0 / fps))
            if s + 16 > t:
                out.append(t - 16)
                break
            out.append(s)
            i += 1
        return out

    for t in (16, 17, 100, 1234):
        for fps in (23.976, 24, 30, 50, 59.94, 60):
            ref = loop(t, fps)
            assert audio.mel_chunk_starts(t, fps, len(ref)).tolist() == ref, (t, fps)
    assert audio.mel_chunk_starts(5, 25, 3).tolist() == [0, 0, 6]      # mel shorter than a chunk


def test_mel_chunks(speech):
    mel = audio.melspectrogram(speech)
    ch = audio.mel_chunks(mel, 25, 80)
    starts = audio.mel_chunk_starts(mel.shape[1], 25, 80)
    assert ch.shape == (80, 80, 16) and ch.dtype == np.float32
    for i in (0, 10, 74):
        assert np.array_equal(ch[i], mel[:, starts[i]:starts[i] + 16])
    assert np.array_equal(ch[74], mel[:, 234:250])                    # Wav2Lip's clamped last chunk
    assert np.all(ch[76] == -4.0)                                      # past the voice: silence
    assert np.array_equal(audio.mel_chunks(mel, 25, 80, start=70, stop=78), ch[70:78])
    short = audio.mel_chunks(mel[:, :5], 25, 2)
    assert short.shape == (2, 80, 16) and np.array_equal(short[0, :, :5], mel[:, :5]) and np.all(short[0, :, 5:] == -4)


# ------------------------------------------------------------------------------------------------------------ VAD
def _align_labels(name, n):
    lab = np.zeros(n, bool)
    t = (np.arange(n) + 0.5) * 1000                     # frame centres in 1/25000 s
    for line in (GRID_S1 / "align" / f"{name}.align").read_text().split("\n"):
        if line.strip():
            a, b, w = line.split()
            if w not in ("sil", "sp"):
                lab[(t >= int(a)) & (t < int(b))] = True
    return lab


def test_vad_against_grid_alignments():
    names = (GRID_S1 / "heldout.txt").read_text().split()[::31][:8]
    accs = []
    for name in names:
        wav = audio.load_audio(GRID_S1 / "video" / f"{name}.mp4")
        lab = _align_labels(name, 75)
        v = audio.voice_activity(wav, 25, 75)
        assert v.dtype == bool and v.shape == (75,)
        accs.append(np.mean(v == lab))
        # loudness does not matter: 26 dB quieter gives the same frames
        assert np.array_equal(audio.voice_activity(wav * 0.05, 25, 75), v)
        # nor does moderate noise (20 dB below the speech peak) change much
        noisy = wav + np.random.default_rng(1).standard_normal(len(wav)).astype(np.float32) * 0.1 * np.abs(wav).max() / 3
        assert np.mean(audio.voice_activity(noisy, 25, 75) == lab) > 0.8
    print(f"VAD frame accuracy on {len(names)} held-out GRID clips: {np.mean(accs):.3f} (min {np.min(accs):.3f})")
    assert np.mean(accs) > 0.9 and np.min(accs) > 0.8


def test_vad_synthetic_bursts_and_edge_cases():
    sr, fps = 16000, 25
    t = np.arange(sr * 4) / sr
    wav = np.zeros_like(t, dtype=np.float32)
    on = (t >= 1.0) & (t < 2.0)                         # frames 25..49
    wav[on] = 0.5 * np.sin(2 * np.pi * 300 * t[on])
    wav += np.random.default_rng(0).standard_normal(len(t)).astype(np.float32) * 1e-3
    v = audio.voice_activity(wav, fps, 110)             # 10 frames past the end of the audio
    # the 32 ms analysis window reaches 16 ms into frames 24 and 50, then onset (1) and hangover (2) frames
    expected = np.zeros(110, bool)
    expected[24 - audio.VAD_ONSET_FRAMES:51 + audio.VAD_HANGOVER_FRAMES] = True
    assert np.array_equal(v, expected)
    assert not audio.voice_activity(np.zeros(sr, np.float32), fps, 25).any()
    noise = np.random.default_rng(2).standard_normal(sr * 2).astype(np.float32) * 0.1
    assert not audio.voice_activity(noise, fps, 50).any()
    assert audio.voice_activity(np.zeros(0, np.float32), fps, 5).tolist() == [False] * 5
    nan = wav.copy()
    nan[::1000] = np.nan
    assert audio.voice_activity(nan, fps, 100).shape == (100,)
    # a one-frame pause inside speech is bridged
    gap = wav.copy()
    gap[(t >= 1.4) & (t < 1.44)] = 0
    assert audio.voice_activity(gap, fps, 100)[35]


def _band_levels_in_one_pass(wav):
    """band_levels_db as one pass over the whole padded signal (how it was computed before it was chunked)."""
    x = audio.sanitize(wav)
    pad = audio.VAD_N_FFT // 2
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad), audio.VAD_N_FFT)[::audio.VAD_HOP]
    window = audio.hann_window(audio.VAD_N_FFT)
    freqs = np.fft.rfftfreq(audio.VAD_N_FFT, 1.0 / audio.SAMPLE_RATE)
    band = (freqs >= audio.VAD_BAND_HZ[0]) & (freqs <= audio.VAD_BAND_HZ[1])
    spec = np.fft.rfft(frames * window, axis=1)
    return 10.0 * np.log10(np.sum(np.abs(spec[:, band]) ** 2, axis=1) * 2.0 / np.sum(window) ** 2 + 1e-12)


def test_vad_levels_are_the_same_in_chunks(monkeypatch, speech):
    """A long voice's levels are computed a chunk at a time (memory): every hop's value is the one-pass value,
    at the chunk edges and the signal's ends too, on speech and on noise with NaNs."""
    noise = np.random.default_rng(3).standard_normal(16000 * 2 + 77).astype(np.float32) * 0.1
    noise[5000] = np.nan
    for chunk in (audio.LEVEL_CHUNK, 64, 7):
        monkeypatch.setattr(audio, "LEVEL_CHUNK", chunk)
        for wav in (speech, speech[:1], speech[:300], speech[:16000 + 159], noise):
            assert np.array_equal(audio.band_levels_db(wav), _band_levels_in_one_pass(wav))


@pytest.mark.parametrize("container, codec", [("m4a", "aac"), ("mp3", "libmp3lame"), ("ogg", "libopus")])
def test_load_16k_mono_lossy_without_resampling(tmp_path, speech, container, codec):
    """16 kHz mono in a lossy container needs no resampling or downmix: the decoded bytes used to be clipped in
    place and raised 'output array is read-only'. The result must be writable like every other load."""
    import subprocess

    src = tmp_path / f"voice16k.{container}"
    subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(REF / "speech16k.wav"), "-ar", "16000", "-ac", "1",
                    "-c:a", codec, str(src)], check=True)
    x = audio.load_audio(src)
    assert x.dtype == np.float32 and x.ndim == 1 and x.flags.writeable
    assert abs(len(x) - len(speech)) <= 0.05 * 16000 and np.abs(x).max() <= 1.0
    x[:10] = 0                                           # callers may edit what they get


def test_chunk_bounds_cover_the_range_with_no_short_chunk_but_the_only_one():
    assert audio.chunk_bounds(10, 4) == [(0, 4), (4, 10)]
    assert audio.chunk_bounds(8, 4) == [(0, 4), (4, 8)]
    assert audio.chunk_bounds(3, 4) == [(0, 3)]
    assert audio.chunk_bounds(0, 4) == [(0, 0)]
    for n in range(1, 40):
        b = audio.chunk_bounds(n, 7)
        assert b[0][0] == 0 and b[-1][1] == n and all(x[1] == y[0] for x, y in zip(b, b[1:]))
        assert all(hi - lo >= min(n, 7) for lo, hi in b)
