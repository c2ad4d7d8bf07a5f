"""VGGish (front end, network, checkpoints, PCA) and torchaudio bundles through the extractor."""

import os

import numpy as np
import pytest
import torch
from torch import nn

from neuroprobe.models import build_model
from neuroprobe.models.audio import (
    MIN_SAMPLES,
    VGGish,
    VGGishFrontEnd,
    audio_bundle_model,
    build_vggish,
    vggish_model,
    waveform_to_examples,
)
from neuroprobe.models.hooks import capture
from neuroprobe.models.registry import WeightsUnavailableError
from neuroprobe.stimuli import StimulusSet
from neuroprobe.transformers.extraction import DNNFeatureExtractor
from neuroprobe.transformers.timeseries import extract_time_series
from tests.media._synth import chirp, tone, write_audio


# ----------------------------------------------------------------------------- references
def reference_log_mel(x):
    """VGGish log-mel from the published formula, in numpy (independent of the implementation)."""
    x = np.asarray(x, dtype=np.float64)
    win, hop, nfft = 400, 160, 512
    n = 1 + (len(x) - win) // hop
    frames = np.stack([x[i * hop : i * hop + win] for i in range(n)])
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    mag = np.abs(np.fft.rfft(frames * hann, nfft))  # zero-padded to 512
    mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)  # noqa: E731 - HTK
    bins = mel(np.linspace(0, 8000, nfft // 2 + 1))
    edges = np.linspace(mel(125.0), mel(7500.0), 64 + 2)
    fb = np.zeros((nfft // 2 + 1, 64))
    for i in range(64):
        lo, c, hi = edges[i : i + 3]
        for k, b in enumerate(bins):
            fb[k, i] = max(0.0, min((b - lo) / (c - lo), (hi - b) / (hi - c)))
    fb[0] = 0.0
    return np.log(mag @ fb + 0.01)


class TorchVGGishReference(nn.Module):
    """The torchvggish layout (Conv2d / Linear, TF flatten order), one example at a time."""

    def __init__(self):
        super().__init__()
        c = lambda i, o: nn.Conv2d(i, o, 3, 1, 1)  # noqa: E731
        self.features = nn.Sequential(
            c(1, 64),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            c(64, 128),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            c(128, 256),
            nn.ReLU(),
            c(256, 256),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            c(256, 512),
            nn.ReLU(),
            c(512, 512),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 24, 4096),
            nn.ReLU(),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Linear(4096, 128),
        )

    def forward(self, x):  # (N, 1, 96, 64)
        x = self.features(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        return self.embeddings(x)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny inputs: one intra-op thread avoids oversubscribing a shared machine (restored)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def reference_net():
    torch.manual_seed(1)
    with torch.device("meta"):
        net = TorchVGGishReference()
    state = {k: torch.randn(v.shape) * 0.02 for k, v in net.state_dict().items()}
    net.load_state_dict(state, assign=True)  # a non-degenerate random network, no default init
    return net.eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, reference_net):
    path = tmp_path_factory.mktemp("ckpt") / "vggish-torchvggish-layout.pth"
    torch.save(reference_net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def sounds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sounds")
    return [
        write_audio(folder / "c0.wav", chirp(2.0, sr=16000)),
        write_audio(folder / "t1.flac", tone(1.1, sr=22050, freq=660.0, channels=2), 22050),
        write_audio(folder / "t2.wav", tone(1.2, sr=16000, freq=1200.0)),
    ]


# ----------------------------------------------------------------------------- front end
@pytest.mark.parametrize("signal", [chirp(1.5), tone(1.0, freq=440.0) + 0.01])
def test_front_end_equals_published_formula(signal):
    ours = VGGishFrontEnd()(torch.from_numpy(signal.astype(np.float64))).numpy()
    np.testing.assert_allclose(ours, reference_log_mel(signal), atol=1e-9, rtol=0)
    ours32 = VGGishFrontEnd()(torch.from_numpy(signal)).numpy()
    np.testing.assert_allclose(ours32, reference_log_mel(signal), atol=1e-4)


@pytest.mark.parametrize("seconds", [0.3, 0.975, 0.99, 1.92, 1.935, 3.05])
def test_number_of_examples(seconds):
    n = int(round(seconds * 16000))
    examples = waveform_to_examples(np.full(n, 0.1, np.float32), 16000)
    n_frames = 1 + (max(n, MIN_SAMPLES) - 400) // 160
    assert examples.shape == (1 + (n_frames - 96) // 96, 96, 64)
    # documented: floor(duration / 0.96) examples for audio of at least one example
    if n >= MIN_SAMPLES:
        assert examples.shape[0] == int((seconds - 0.015) // 0.96)
    else:
        assert examples.shape[0] == 1
        with pytest.raises(ValueError, match="shorter than one"):
            waveform_to_examples(np.full(n, 0.1, np.float32), 16000, short_policy="error")


def test_examples_are_consecutive_log_mel_blocks():
    x = chirp(2.5)
    ref = reference_log_mel(x)
    ex = waveform_to_examples(x, 16000).numpy()
    for k in range(ex.shape[0]):
        np.testing.assert_allclose(ex[k], ref[96 * k : 96 * (k + 1)], atol=1e-4)


# ----------------------------------------------------------------------------- network
def test_architecture_has_the_published_parameter_count():
    with torch.device("meta"):
        model = VGGish()
    assert sum(p.numel() for p in model.parameters()) == 72_141_184


@pytest.fixture(scope="module")
def pca_params(tmp_path_factory):
    rng = np.random.RandomState(0)
    vecs = (15 * np.linalg.qr(rng.randn(128, 128))[0]).astype(np.float32)  # spread, some clipping
    means = rng.randn(128, 1).astype(np.float32) * 0.01
    path = tmp_path_factory.mktemp("pca") / "vggish_pca_params.npz"
    np.savez(path, pca_eigen_vectors=vecs, pca_means=means)
    return path, vecs, means


@pytest.fixture(scope="module")
def loaded(checkpoint, pca_params):
    """VGGish from the torchvggish-layout checkpoint with PCA post-processing; one forward pass."""
    spec = vggish_model(checkpoint, pca_params=pca_params[0])
    x = waveform_to_examples(chirp(3.0), 16000)  # (3, 96, 64)
    with torch.no_grad(), capture(spec.module, ["embeddings.4", "postprocess"]) as out:
        mean = spec.module(x[None, None])
    return spec, x, out, mean


def test_checkpoint_matches_a_per_example_reference(loaded, reference_net):
    spec, x, out, mean = loaded
    assert spec.weights_id.startswith("sha256:")
    with torch.no_grad():
        per_example = reference_net(x[:, None]).numpy()  # (3, 128)
    np.testing.assert_allclose(out["embeddings.4"][0].T.numpy(), per_example, rtol=1e-4, atol=1e-5)
    # forward() averages the (post-processed) embedding over the examples
    np.testing.assert_allclose(mean[0].numpy(), out["postprocess"][0].mean(-1).numpy(), rtol=1e-6)


def test_pca_quantisation_postprocessing(loaded, pca_params):
    _, vecs, means = pca_params
    emb = loaded[2]["embeddings.4"][0].T.numpy().astype(np.float64)  # (3, 128)
    # published postprocess: PCA, clip to [-2, 2], map to 0..255 and round
    ref = np.dot(vecs, (emb.T - means)).T
    ref = np.round((np.clip(ref, -2.0, 2.0) + 2.0) * (255.0 / 4.0))
    got = loaded[2]["postprocess"][0].T.numpy()
    assert np.abs(got - ref).max() <= 1.0  # rounding at a .5 boundary may differ by one level
    assert np.mean(got == ref) > 0.99
    assert len(np.unique(got)) > 50 and got.min() == 0 and got.max() == 255  # spread and clipped


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="vggish.pth"):
        build_vggish(tmp_path / "vggish.pth")


# ----------------------------------------------------------------------------- extractor
def test_extractor_equals_direct_forward(sounds):
    stims = StimulusSet.from_paths(sounds[1:])  # 1.1 s and 1.2 s: one example each
    ext = DNNFeatureExtractor(
        "vggish", weights=None, layers=["conv2", "embedding"], random_state=0, batch_size=2
    )
    feats = ext.fit_transform(stims)
    assert ext.layer_shapes_ == {"conv2": (128, 1, 48, 32), "embedding": (128, 1)}
    # built independently of the extractor
    vggish_spec = build_model("vggish", weights=None, random_state=0)
    assert vggish_spec.modality == "audio" and vggish_spec.weights_id == "random(seed=0)"
    assert vggish_spec.aliases["embedding"] == "embeddings.4"
    for i in range(2):
        x = vggish_spec.preprocess(stims.load(i))[None]
        with torch.no_grad(), capture(vggish_spec.module, ["features.3", "embeddings.4"]) as out:
            vggish_spec.module(x)
        direct = np.concatenate([out["features.3"][0].ravel(), out["embeddings.4"][0].ravel()])
        np.testing.assert_allclose(feats[i], direct, rtol=1e-5, atol=1e-6)
    names = ext.get_feature_names_out()
    assert names[0] == "conv2:c0:t0:y0:x0" and len(names) == feats.shape[1]
    assert names[-1] == "embedding:c127:t0"


def test_batch_invariance_deterministic_and_variable_lengths(sounds):
    stims = StimulusSet.from_paths(sounds)  # 2.0 s, 1.1 s (22.05 kHz stereo), 1.2 s
    kw = dict(weights=None, layers=["conv1", "embedding"], pooling="mean", random_state=0)
    one = DNNFeatureExtractor("vggish", batch_size=1, **kw).fit_transform(stims)
    three = DNNFeatureExtractor("vggish", batch_size=3, **kw).fit_transform(stims)
    assert one.shape == (3, 64 + 128) and np.isfinite(one).all()
    np.testing.assert_allclose(one, three, rtol=1e-5, atol=1e-6)  # two builds: also deterministic
    assert not np.allclose(one[0], one[1])
    # unpooled features of stimuli with different numbers of examples: a clear error
    with pytest.raises(ValueError, match="different numbers of features|size seen in fit"):
        DNNFeatureExtractor(
            "vggish", weights=None, layers="embedding", random_state=0
        ).fit_transform(stims)


def test_time_series_per_example(sounds):
    stims = StimulusSet.from_paths(sounds)
    ext = DNNFeatureExtractor(
        "vggish", weights=None, layers="embedding", pooling="mean", random_state=0
    )
    ts = extract_time_series(ext, stims)
    assert list(ts.stim_ids) == ["c0", "c0", "t1", "t2"]
    np.testing.assert_allclose(ts.onsets, [0.0, 0.96, 0.0, 0.0])
    np.testing.assert_allclose(ts.durations, 0.96)
    pooled = ext.fit_transform(stims)  # mean over examples
    np.testing.assert_allclose(ts.features[:2].mean(0), pooled[0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ts.features[2:], pooled[1:], rtol=1e-4, atol=1e-6)
    assert not np.allclose(ts.features[0], ts.features[1])  # the chirp changes over time


def test_cli_extract_to_file(tmp_path, sounds, capsys):
    from neuroprobe.cli.main import main
    from neuroprobe.io.activations import open_activations

    out = tmp_path / "vggish.act.h5"
    folder = tmp_path / "stims"
    folder.mkdir()
    for p in sounds:
        (folder / os.path.basename(p)).write_bytes(open(p, "rb").read())
    code = main(
        [
            "extract",
            "--model",
            "vggish",
            "--weights",
            "none",
            "--seed",
            "0",
            "--layers",
            "embedding",
            "--pooling",
            "mean",
            "--stimuli",
            str(folder),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    stims = StimulusSet.from_folder(folder)
    ext = DNNFeatureExtractor(
        "vggish", weights=None, layers=["embedding"], pooling="mean", random_state=0
    )
    with open_activations(out) as f:
        stored = f.read("embedding")
        assert list(f.stim_ids) == list(stims.ids)
        assert f.attrs["model"] == "vggish"
    np.testing.assert_allclose(stored, ext.fit_transform(stims), rtol=1e-6)
    # no local checkpoint: a one-line error naming what to do
    assert (
        main(
            [
                "extract",
                "--model",
                "vggish",
                "--layers",
                "embedding",
                "--stimuli",
                str(folder),
                "--out",
                str(tmp_path / "x.act.h5"),
            ]
        )
        == 1
    )
    # the CLI's --weights DEFAULT: the offline error names the file and the folder
    err = capsys.readouterr().err
    assert "vggish-10086976.pth" in err and "checkpoints" in err


# ----------------------------------------------------------------------------- torchaudio bundles
TINY = dict(
    encoder_num_layers=2,
    encoder_embed_dim=32,
    encoder_num_heads=2,
    encoder_ff_interm_features=64,
    encoder_projection_dropout=0.0,
    encoder_pos_conv_kernel=16,
    encoder_pos_conv_groups=4,
)


def test_wav2vec2_bundle_through_the_extractor(sounds):
    spec = audio_bundle_model("wav2vec2_base", weights=None, random_state=0, config=TINY)
    assert spec.modality == "audio" and spec.aliases["transformer2"] == "layers.1"
    stims = StimulusSet.from_paths(sounds)
    ext = DNNFeatureExtractor(spec, layers=["transformer2"], pooling="mean", batch_size=3)
    feats = ext.fit_transform(stims)
    assert feats.shape == (3, 32) and np.isfinite(feats).all()
    for i in range(3):
        x = spec.preprocess(stims.load(i))[None]
        with torch.no_grad():
            layer_out = spec.module.model.extract_features(x)[0][1]  # (1, frames, 32)
        np.testing.assert_allclose(feats[i], layer_out[0].mean(0).numpy(), rtol=1e-4, atol=1e-5)


def test_bundle_offline_error(monkeypatch):
    import torchaudio.pipelines as P

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(type(P.HUBERT_BASE), "get_model", offline)
    with pytest.raises(WeightsUnavailableError, match="HUBERT_BASE.*local state-dict"):
        audio_bundle_model("hubert_base", "pretrained")
