"""The ASD networks (core.sync.asd): our modules load the authors' checkpoints exactly (reference outputs of their
own code on fixed inputs, ../shared/reference/asd/), and the crop and MFCCs are the authors'."""
import numpy as np
import pytest
import torch

from data_paths import REFERENCE, SHARED

from core.sync.asd import features as AF
from core.sync.asd.net import detect_architecture, from_state_dict, load_checkpoint

ASD_REF = REFERENCE / "asd"
CHECKPOINTS = [("light_asd", "finetuning_TalkSet"), ("light_asd", "pretrain_AVA_CVPR"),
               ("lr_asd", "finetuning_TalkSet"), ("lr_asd", "pretrain_AVA")]


@pytest.fixture(scope="module")
def inputs():
    with np.load(ASD_REF / "inputs.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("arch,weights", CHECKPOINTS)
def test_networks_reproduce_the_authors_outputs(inputs, arch, weights):
    torch.set_num_threads(1)
    model = load_checkpoint(SHARED / "models" / "asd" / arch / f"{weights}.model")
    assert model.arch == arch
    with np.load(ASD_REF / f"{arch}_{weights}.npz") as z:
        ref = {k: z[k] for k in z.files}
    with torch.no_grad():
        v = model.visual(torch.as_tensor(inputs["faces"])[None])
        a = model.audio(torch.as_tensor(inputs["mfcc"])[None])
        b = model.backend(a, v)
        got = {"visual_embed": v, "audio_embed": a, "backend": b, "av_logits": model.av_head(b),
               "v_logits": model.v_head(v)}
        speak = model.speaking_logit(a, v)[0].numpy()
    for key, value in got.items():
        np.testing.assert_allclose(value[0].numpy(), ref[key], atol=1e-4, rtol=0, err_msg=key)
    # the speaking logit is the head's index 1 minus index 0
    np.testing.assert_allclose(speak, ref["av_logits"][:, 1] - ref["av_logits"][:, 0], atol=1e-4)


def test_a_wrong_checkpoint_is_refused():
    state = torch.load(SHARED / "models" / "asd" / "light_asd" / "finetuning_TalkSet.model", weights_only=True,
                       map_location="cpu")
    state.pop("lossV.FC.bias")
    with pytest.raises(RuntimeError):
        from_state_dict(state)
    with pytest.raises(ValueError):
        detect_architecture({"conv.weight": torch.zeros(1)})


def test_shipped_light_asd_is_the_authors_file():
    import hashlib

    from core.models.registry import resolve_model

    shipped = resolve_model("light_asd")
    authors = SHARED / "models" / "asd" / "light_asd" / "finetuning_TalkSet.model"
    assert hashlib.sha256(shipped.read_bytes()).digest() == hashlib.sha256(authors.read_bytes()).digest()


def test_mfcc_is_python_speech_features_exactly(inputs):
    got = AF.mfcc(inputs["audio_int16"].astype(np.float32) / 32768.0)
    np.testing.assert_array_equal(got, inputs["mfcc"])


def test_face_crop_follows_the_face():
    """A bright square 'mouth' drawn at a known place lands where the authors' crop puts it, at any resolution."""
    for scale in (1.0, 3.0):
        frame = np.full((int(288 * scale), int(360 * scale), 3), 40, np.uint8)
        box = np.array([100, 100, 200, 200], np.float32) * scale     # bs = 50: crop rows 135..205, cols 115..185
        y0, x0 = int(170 * scale), int(140 * scale)
        frame[y0:y0 + int(20 * scale), x0:x0 + int(20 * scale)] = 250
        crop = AF.face_crop(frame, None, box)
        assert crop.shape == (AF.CROP, AF.CROP) and crop.dtype == np.uint8
        ys, xs = np.nonzero(crop > 150)
        # (170 - 135) / 70 * 112 = 56 ... (190 - 135) / 70 * 112 = 88; columns (140 - 115) / 70 * 112 = 40 ... 72
        assert abs(ys.min() - 56) <= 2 and abs(ys.max() - 88) <= 2
        assert abs(xs.min() - 40) <= 2 and abs(xs.max() - 72) <= 2
    blank = AF.face_crop(frame, None, None)
    assert (blank == AF.PAD_GREY).all()


def test_the_shipped_network_is_frozen_for_speed_and_still_exact(inputs):
    """load_asd() traces and freezes the visual encoder (batch norms folded): the same outputs as the authors'."""
    from core.sync.asd.weights import load_asd

    with np.load(ASD_REF / "light_asd_finetuning_TalkSet.npz") as z:
        ref = z["visual_embed"]
    model = load_asd()
    assert isinstance(model.visualEncoder, torch.jit.ScriptModule)
    with torch.no_grad():
        for t in (50, 13):        # any length: the traced graph is not tied to the example's
            got = model.visual(torch.as_tensor(inputs["faces"][:t])[None])[0].numpy()
            if t == 50:
                np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
            else:
                eager = load_checkpoint(SHARED / "models" / "asd" / "light_asd" / "finetuning_TalkSet.model")
                want = eager.visual(torch.as_tensor(inputs["faces"][:t])[None])[0].numpy()
                np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_the_frozen_encoder_is_kept_and_read_back_exactly(inputs, tmp_path):
    """Tracing and freezing cost about a second per process: the frozen encoder is kept in the cache and read back
    with the same outputs; a damaged file is made again."""
    from core.sync.asd.net import FROZEN_VERSION, freeze_visual
    from core.sync.asd.weights import frozen_cache

    path = SHARED / "models" / "asd" / "light_asd" / "finetuning_TalkSet.model"
    cache = tmp_path / "frozen.pt"
    faces = torch.as_tensor(inputs["faces"][:20])[None]
    with torch.no_grad():
        made = freeze_visual(load_checkpoint(path), cache)
        assert cache.is_file()
        read = freeze_visual(load_checkpoint(path), cache)
        assert torch.equal(made.visual(faces), read.visual(faces))
        cache.write_bytes(b"not a TorchScript archive")
        again = freeze_visual(load_checkpoint(path), cache)
        assert torch.equal(made.visual(faces), again.visual(faces))
    assert cache.stat().st_size > 1000                           # rewritten
    assert frozen_cache("cpu").name.startswith(f"light_asd-visual{FROZEN_VERSION}-")   # a new forward, a new file


@pytest.mark.parametrize("k, bias", [(1, False), (3, False), (5, True)])
def test_time_conv_is_the_3d_convolution(k, bias):
    """The encoder's time-only convolutions, computed in 2-D: the Conv3d's numbers, at any clip length."""
    from core.sync.asd.net import time_conv

    torch.manual_seed(k)
    conv = torch.nn.Conv3d(6, 10, (k, 1, 1), padding=(k // 2, 0, 0), bias=bias)
    for t in (1, 4, 17):
        x = torch.randn(2, 6, t, 7, 5)
        with torch.no_grad():
            got, want = time_conv(conv, x), conv(x)
        assert got.shape == want.shape == (2, 10, t, 7, 5)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_the_frozen_encoder_avoids_the_slow_3d_path_on_one_thread(inputs):
    """On one thread PyTorch sends a 3-D convolution with a 1x1 spatial kernel to its slow im2col path (the encoder
    used to spend 60% of its time there); of the encoder's 3-D convolutions only the first block's strided 3x3 one
    may still take it."""
    from core.device import one_torch_thread
    from core.sync.asd.weights import load_asd

    model = load_asd()
    faces = torch.as_tensor(inputs["faces"][:40])[None]
    with one_torch_thread(), torch.no_grad(), torch.autograd.profiler.profile() as prof:
        model.visual(faces)
    calls = {e.key: e.count for e in prof.key_averages()}
    fast, slow = calls.get("aten::mkldnn_convolution", 0), calls.get("aten::slow_conv3d_forward", 0)
    assert fast + slow == 12 and slow <= 1     # 3 blocks of 2 spatial and 2 temporal ones (the 1x1x1: products)


def test_mfccs_computed_in_chunks_equal_python_speech_features_in_one_pass(monkeypatch):
    from python_speech_features import mfcc as psf_mfcc

    from core.audio import load_audio
    from data_paths import GRID_OTHERS

    voice = load_audio(str(GRID_OTHERS / "lbax4n.mpg"))
    for n in (len(voice), 401, 561, 16000 + 37):
        x = voice[:n]
        one_pass = psf_mfcc(np.asarray(x, np.float64) * 32768.0, 16000, numcep=13, winlen=0.025,
                            winstep=0.010).astype(np.float32)
        for rows in (AF.MFCC_CHUNK, 97, 1):
            monkeypatch.setattr(AF, "MFCC_CHUNK", rows)
            assert np.array_equal(AF.mfcc(x), one_pass), (n, rows)


def test_visual_encoder_in_parts_equals_one_pass():
    """`visual_in_parts` (the sync scorer's encoder pass) gives what one pass over the chunk gives, its zero padding at
    the chunk's two ends included, while no pass reads more than a part and its reach."""
    from core.sync.asd.net import VISUAL_REACH, visual_in_parts
    from core.sync.asd.weights import load_asd

    torch.set_num_threads(1)
    model = load_asd()
    faces = torch.from_numpy(np.random.default_rng(3).integers(0, 255, (1, 40, 112, 112), dtype=np.uint8))
    lengths = []

    def visual(x):
        lengths.append(x.shape[1])
        return model.visual(x)

    whole = model.visual(faces)
    for part in (8, 13):
        lengths.clear()
        parts = visual_in_parts(visual, faces, part=part)
        assert parts.shape == whole.shape and max(lengths) <= part + 2 * VISUAL_REACH and len(lengths) > 1
        torch.testing.assert_close(parts, whole, atol=1e-4, rtol=0)
    # a reach one frame short would not be exact: the encoder does read VISUAL_REACH frames either side
    r = VISUAL_REACH - 1
    short = torch.cat([model.visual(faces[:, :20 + r])[:, :20], model.visual(faces[:, 20 - r:])[:, r:]], 1)
    assert (short - whole).abs().max() > 1e-3
