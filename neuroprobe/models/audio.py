"""Audio networks: VGGish with its published log-mel front end; torchaudio's wav2vec2/HuBERT/WavLM.

VGGish
------
The AudioSet VGGish model (Hershey et al. 2017) re-implemented in PyTorch from the published TF-Slim
definition (``vggish_slim.py``) and parameters (``vggish_params.py``):

* front end (:class:`VGGishFrontEnd`): waveform resampled to 16 kHz, magnitude STFT with a periodic
  Hann window of 400 samples (25 ms) zero-padded to a 512-point FFT, hop 160 samples (10 ms), no
  centring; 64 HTK-mel bands between 125 and 7500 Hz (triangles linear in mel, DC bin zeroed, as
  ``mel_features.spectrogram_to_mel_matrix``); ``log(mel + 0.01)``. Built from
  :class:`torchaudio.transforms.Spectrogram` and :class:`torchaudio.transforms.MelScale` (whose
  filter bank is replaced by the published one: torchaudio's triangles are linear in Hz, VGGish's in
  mel).
* examples (:func:`waveform_to_examples`): the log-mel frames cut into non-overlapping 0.96 s
  examples of 96 frames x 64 bands. Audio of duration ``d`` seconds yields ``1 + (n_frames - 96) //
  96`` examples with ``n_frames = 1 + (round(16000 d) - 400) // 160``, i.e. ``floor`` of roughly ``d
  / 0.96``. Audio shorter than one example (0.975 s) is zero-padded to one example
  (``short_policy="pad"``) or rejected (``short_policy="error"``).
* network (:class:`VGGish`): conv 64 - pool - conv 128 - pool - conv 256 x2 - pool - conv 512 x2 -
  pool (3x3 convolutions, ReLU, 2x2 max-pools), flatten in TF (H, W, C) order, fc 4096 - fc 4096 -
  fc 128 (the 128-D embedding has no ReLU, as published). Optional PCA / 8-bit quantisation
  post-processing with the published ``vggish_pca_params.npz`` (:class:`VGGishPostprocessor`).

The input of :class:`VGGish` is ``(batch, 1, n_examples, 96, 64)``: every example goes through the
same 2-D network (implemented as 3-D convolutions with kernel ``(1, 3, 3)`` and 1x1 convolutions for
the fully connected layers), so each layer's output keeps the example axis as a time axis -
convolutional layers give ``(batch, C, n_examples, H, W)`` (like a video network) and the fully
connected layers ``(batch, units, n_examples)``.
:class:`~neuroprobe.transformers.DNNFeatureExtractor` therefore pools over examples with the same
``pooling`` it uses over time for videos: ``pooling="mean"`` on ``"embedding"`` is the per-stimulus
mean of the 128-D embeddings over the 0.96 s examples; unpooled features keep one value per example
(a time series). For stimuli of different durations use :func:`extract_time_series`, which returns
each stimulus' per-example features with their onsets.

Weights cannot be downloaded here: pass the path of a converted PyTorch checkpoint (the
``torchvggish`` ``vggish-10086976.pth`` state dict, or one saved from :class:`VGGish`); without
weights the network has seeded random weights (``weights_id="random(seed=...)"``).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

# --- published VGGish parameters (vggish_params.py) -------------------------------------------
SAMPLE_RATE = 16000
STFT_WINDOW_LENGTH_SECONDS = 0.025
STFT_HOP_LENGTH_SECONDS = 0.010
NUM_MEL_BINS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_WINDOW_SECONDS = 0.96
EXAMPLE_HOP_SECONDS = 0.96
NUM_FRAMES = 96
EMBEDDING_SIZE = 128
QUANTIZE_MIN_VAL = -2.0
QUANTIZE_MAX_VAL = 2.0

WIN_LENGTH = int(round(SAMPLE_RATE * STFT_WINDOW_LENGTH_SECONDS))  # 400
HOP_LENGTH = int(round(SAMPLE_RATE * STFT_HOP_LENGTH_SECONDS))  # 160
N_FFT = 2 ** int(math.ceil(math.log2(WIN_LENGTH)))  # 512
EXAMPLE_FRAMES = int(round(EXAMPLE_WINDOW_SECONDS / STFT_HOP_LENGTH_SECONDS))  # 96
EXAMPLE_HOP_FRAMES = int(round(EXAMPLE_HOP_SECONDS / STFT_HOP_LENGTH_SECONDS))  # 96
#: Fewest samples giving one example: 95 hops + one window.
MIN_SAMPLES = (EXAMPLE_FRAMES - 1) * HOP_LENGTH + WIN_LENGTH  # 15600

#: DNNBrain-style layer aliases of VGGish -> module names.
VGGISH_ALIASES = {
    "conv1": "features.0",
    "pool1": "features.2",
    "conv2": "features.3",
    "pool2": "features.5",
    "conv3_1": "features.6",
    "conv3_2": "features.8",
    "pool3": "features.10",
    "conv4_1": "features.11",
    "conv4_2": "features.13",
    "pool4": "features.15",
    "fc1_1": "embeddings.0",
    "fc1_2": "embeddings.2",
    "embedding": "embeddings.4",
    "postprocess": "postprocess",
}

__all__ = [
    "VGGish",
    "VGGishFrontEnd",
    "VGGishPostprocessor",
    "build_vggish",
    "build_torchaudio_bundle",
    "load_vggish_checkpoint",
    "vggish_mel_matrix",
    "VGGishPreprocess",
    "audio_bundle_model",
    "vggish_model",
    "waveform_to_examples",
]


# --- front end ------------------------------------------------------------------------------------
def _hz_to_mel(hz):
    """HTK mel scale, as ``mel_features.hertz_to_mel``."""
    return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def vggish_mel_matrix(
    num_mel_bins=NUM_MEL_BINS,
    num_spectrogram_bins=N_FFT // 2 + 1,
    sample_rate=SAMPLE_RATE,
    lower_edge_hertz=MEL_MIN_HZ,
    upper_edge_hertz=MEL_MAX_HZ,
):
    """The published VGGish mel filter bank, ``(num_spectrogram_bins, num_mel_bins)`` float64.

    Triangular filters whose edges are equally spaced on the HTK mel scale and whose slopes are
    linear in mel; the DC bin gets zero weight.
    """
    nyquist = sample_rate / 2.0
    if not 0.0 <= lower_edge_hertz < upper_edge_hertz <= nyquist:
        raise ValueError(
            f"need 0 <= lower_edge_hertz < upper_edge_hertz <= {nyquist}, got "
            f"{lower_edge_hertz}, {upper_edge_hertz}"
        )
    bins_mel = _hz_to_mel(np.linspace(0.0, nyquist, num_spectrogram_bins))
    edges = np.linspace(
        _hz_to_mel(lower_edge_hertz), _hz_to_mel(upper_edge_hertz), num_mel_bins + 2
    )
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    up = (bins_mel[:, None] - lower) / (center - lower)
    down = (upper - bins_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(up, down))
    weights[0, :] = 0.0
    return weights


class VGGishFrontEnd(nn.Module):
    """Waveform at 16 kHz ``(..., n_samples)`` -> VGGish log-mel ``(..., n_frames, 64)``.

    ``torch.stft`` takes ``n_fft``-sample frames and centres the shorter window inside them, whereas
    VGGish frames ``win_length`` samples and zero-pads them to ``n_fft``; padding the signal by
    ``(n_fft - win_length) / 2`` zeros on both sides makes the two identical (same magnitudes, same
    ``1 + (n - 400) // 160`` frames).
    """

    def __init__(self):
        super().__init__()
        import torchaudio.transforms as T

        self.pad = (N_FFT - WIN_LENGTH) // 2
        self.spectrogram = T.Spectrogram(
            n_fft=N_FFT,
            win_length=WIN_LENGTH,
            hop_length=HOP_LENGTH,
            window_fn=torch.hann_window,
            wkwargs={"periodic": True},
            power=1.0,
            center=False,
            normalized=False,
        )
        self.mel = T.MelScale(
            n_mels=NUM_MEL_BINS,
            sample_rate=SAMPLE_RATE,
            f_min=MEL_MIN_HZ,
            f_max=MEL_MAX_HZ,
            n_stft=N_FFT // 2 + 1,
            mel_scale="htk",
        )
        # computed in float64 (cheap) so the float32 result matches the float64 reference formula
        self.double()
        with torch.no_grad():
            self.spectrogram.window.copy_(
                torch.hann_window(WIN_LENGTH, periodic=True, dtype=torch.float64)
            )
            self.mel.fb.copy_(torch.from_numpy(vggish_mel_matrix()))

    def forward(self, waveform):
        dtype = waveform.dtype if waveform.is_floating_point() else torch.float32
        waveform = torch.nn.functional.pad(waveform.double(), (self.pad, self.pad))
        spec = self.spectrogram(waveform)  # (..., 257, n_frames)
        mel = self.mel(spec)  # (..., 64, n_frames)
        return torch.log(mel + LOG_OFFSET).transpose(-1, -2).to(dtype)


_FRONT_END = None


def _front_end():
    global _FRONT_END
    if _FRONT_END is None:
        _FRONT_END = VGGishFrontEnd().eval()
    return _FRONT_END


def waveform_to_examples(waveform, sample_rate, *, short_policy="pad", name="waveform"):
    """Cut a waveform into VGGish log-mel examples ``(n_examples, 96, 64)`` float32 (torch).

    Parameters
    ----------
    waveform : array-like, shape (n_samples,) or (n_samples, n_channels)
        Float samples in [-1, 1]; channels are averaged.
    sample_rate : int
        Resampled to 16 kHz with :func:`torchaudio.functional.resample` when different.
    short_policy : {"pad", "error"}, default="pad"
        Audio shorter than one example (15600 samples at 16 kHz) is zero-padded at the end, or
        rejected.
    name : str
        Named in error messages.
    """
    from neuroprobe.media.audio import resample, to_mono

    wave = to_mono(np.asarray(waveform))
    if wave.size == 0:
        raise ValueError(f"{name}: zero-length audio")
    wave = resample(wave, sample_rate, SAMPLE_RATE)
    if wave.shape[0] < MIN_SAMPLES:
        if short_policy == "error":
            raise ValueError(
                f"{name}: {wave.shape[0] / SAMPLE_RATE:.3f} s of audio is shorter than one "
                f"VGGish example ({MIN_SAMPLES / SAMPLE_RATE:.3f} s; short_policy='error')"
            )
        if short_policy != "pad":
            raise ValueError(f"short_policy must be 'pad' or 'error', got {short_policy!r}")
        wave = np.pad(wave, (0, MIN_SAMPLES - wave.shape[0]))
    with torch.no_grad():
        log_mel = _front_end()(torch.from_numpy(np.ascontiguousarray(wave)))
    n_examples = 1 + (log_mel.shape[0] - EXAMPLE_FRAMES) // EXAMPLE_HOP_FRAMES
    return (
        log_mel.unfold(0, EXAMPLE_FRAMES, EXAMPLE_HOP_FRAMES)[:n_examples]
        .transpose(1, 2)
        .contiguous()
    )


class VGGishPreprocess:
    """Decoded audio ``(waveform, sample_rate)`` -> VGGish input ``(1, n_examples, 96, 64)``.

    Parameters
    ----------
    short_policy : {"pad", "error"}, default="pad"
        See :func:`waveform_to_examples`.
    max_examples : int, optional
        Keep only the first examples (bounds the memory for long recordings); with ``n_examples``
        equal for all stimuli, stimuli of different durations can share a batch.
    """

    def __init__(self, short_policy="pad", max_examples=None):
        self.short_policy = short_policy
        self.max_examples = None if max_examples is None else int(max_examples)
        self.info = {
            "kind": "vggish.log_mel",
            "sample_rate": SAMPLE_RATE,
            "win_length": WIN_LENGTH,
            "hop_length": HOP_LENGTH,
            "n_fft": N_FFT,
            "window": "hann(periodic)",
            "n_mels": NUM_MEL_BINS,
            "f_min": MEL_MIN_HZ,
            "f_max": MEL_MAX_HZ,
            "mel_scale": "htk",
            "log_offset": LOG_OFFSET,
            "example_frames": EXAMPLE_FRAMES,
            "example_hop_frames": EXAMPLE_HOP_FRAMES,
            "short_policy": short_policy,
            "max_examples": self.max_examples,
            "input_shape": [1, 1, EXAMPLE_FRAMES, NUM_MEL_BINS],
        }

    def __call__(self, decoded):
        if isinstance(decoded, torch.Tensor) and decoded.is_floating_point():
            return decoded  # already preprocessed
        waveform, sample_rate = decoded
        examples = waveform_to_examples(waveform, sample_rate, short_policy=self.short_policy)
        if self.max_examples is not None:
            examples = examples[: self.max_examples]
        return examples.unsqueeze(0)

    def windows(self, decoded):
        """Every 0.96 s example as its own input ``(n_examples, 1, 1, 96, 64)``, onsets, duration.

        Onsets and duration are in seconds; used by
        :func:`neuroprobe.transformers.timeseries.extract_time_series`.
        """
        examples = self(decoded)[0]  # (E, 96, 64)
        onsets = np.arange(examples.shape[0]) * EXAMPLE_HOP_SECONDS
        return examples[:, None, None], onsets, EXAMPLE_WINDOW_SECONDS


# --- network --------------------------------------------------------------------------------------
def _conv(c_in, c_out):
    # a 3x3 conv applied to every example independently: kernel (1, 3, 3) over (examples, time, mel)
    return nn.Conv3d(c_in, c_out, kernel_size=(1, 3, 3), padding=(0, 1, 1))


def _pool():
    return nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))


class VGGishPostprocessor(nn.Module):
    """PCA whitening, clipping to [-2, 2] and 8-bit quantisation of VGGish embeddings (published).

    Works on ``(batch, 128, n_examples)``; ``quantize=False`` stops after the PCA projection.
    """

    def __init__(self, pca_eigen_vectors, pca_means, quantize=True):
        super().__init__()
        self.register_buffer(
            "pca_eigen_vectors", torch.as_tensor(pca_eigen_vectors, dtype=torch.float32)
        )
        self.register_buffer(
            "pca_means", torch.as_tensor(pca_means, dtype=torch.float32).reshape(-1, 1)
        )
        self.quantize = bool(quantize)

    def forward(self, x):
        x = torch.einsum("ij,bjt->bit", self.pca_eigen_vectors, x - self.pca_means)
        if not self.quantize:
            return x
        x = torch.clamp(x, QUANTIZE_MIN_VAL, QUANTIZE_MAX_VAL)
        return torch.round((x - QUANTIZE_MIN_VAL) * (255.0 / (QUANTIZE_MAX_VAL - QUANTIZE_MIN_VAL)))


class VGGish(nn.Module):
    """VGGish network on log-mel examples ``(batch, 1, n_examples, 96, 64)``.

    Parameters
    ----------
    postprocess : VGGishPostprocessor, optional
        Applied after the embedding (module name ``"postprocess"``).
    aggregate : {"mean", "none"}, default="mean"
        What :meth:`forward` returns: the embedding averaged over examples ``(batch, 128)`` or per
        example ``(batch, 128, n_examples)``. Hooked layer outputs always keep the example axis.
    """

    def __init__(self, postprocess=None, aggregate="mean"):
        super().__init__()
        if aggregate not in ("mean", "none"):
            raise ValueError(f"aggregate must be 'mean' or 'none', got {aggregate!r}")
        self.aggregate = aggregate
        self.features = nn.Sequential(
            _conv(1, 64),
            nn.ReLU(),
            _pool(),
            _conv(64, 128),
            nn.ReLU(),
            _pool(),
            _conv(128, 256),
            nn.ReLU(),
            _conv(256, 256),
            nn.ReLU(),
            _pool(),
            _conv(256, 512),
            nn.ReLU(),
            _conv(512, 512),
            nn.ReLU(),
            _pool(),
        )
        # fully connected layers as 1x1 convolutions over the example axis
        self.embeddings = nn.Sequential(
            nn.Conv1d(512 * 6 * 4, 4096, 1),
            nn.ReLU(),
            nn.Conv1d(4096, 4096, 1),
            nn.ReLU(),
            nn.Conv1d(4096, EMBEDDING_SIZE, 1),
        )
        self.postprocess = postprocess if postprocess is not None else nn.Identity()

    def forward(self, x):
        if x.ndim == 4:  # (batch, n_examples, 96, 64)
            x = x.unsqueeze(1)
        if x.ndim != 5 or x.shape[1] != 1 or tuple(x.shape[-2:]) != (EXAMPLE_FRAMES, NUM_MEL_BINS):
            raise ValueError(
                f"VGGish expects log-mel examples (batch, 1, n_examples, {EXAMPLE_FRAMES}, "
                f"{NUM_MEL_BINS}), got {tuple(x.shape)}"
            )
        x = self.features(x)  # (B, 512, E, 6, 4)
        b, c, e, h, w = x.shape
        # flatten each example in TF's (H, W, C) order so converted TF weights apply unchanged
        x = x.permute(0, 2, 3, 4, 1).reshape(b, e, h * w * c).transpose(1, 2)
        x = self.postprocess(self.embeddings(x))  # (B, 128, E)
        return x.mean(dim=-1) if self.aggregate == "mean" else x


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_pca_params(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"VGGish PCA parameters not found: {path} (the published "
            "vggish_pca_params.npz, or torchvggish's vggish_pca_params-*.pth)"
        )
    if path.suffix == ".npz":
        with np.load(path) as f:
            return f["pca_eigen_vectors"], f["pca_means"]
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state["pca_eigen_vectors"], state["pca_means"]


def load_vggish_checkpoint(model, path):
    """Load a converted VGGish state dict into ``model``.

    Accepts the ``torchvggish`` layout (``features.N`` Conv2d weights ``(O, I, 3, 3)``,
    ``embeddings.N`` Linear weights ``(O, I)``, optional ``pproc.*``) or a state dict saved from
    :class:`VGGish`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"VGGish checkpoint not found: {path}. Pretrained weights cannot be downloaded by "
            "neuroprobe; convert them once (e.g. torchvggish's vggish-10086976.pth) and pass the "
            "local path as weights."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = model.state_dict()
    converted = {}
    for key, value in state.items():
        if key.startswith("pproc."):
            continue
        if key not in own:
            raise KeyError(
                f"{path}: unexpected key {key!r} for VGGish (expected {sorted(own)[:6]} ...)"
            )
        if value.ndim == 4 and own[key].ndim == 5:  # Conv2d -> Conv3d (1, 3, 3)
            value = value.unsqueeze(2)
        elif value.ndim == 2 and own[key].ndim == 3:  # Linear -> Conv1d(k=1)
            value = value.unsqueeze(-1)
        if value.shape != own[key].shape:
            raise ValueError(
                f"{path}: {key} has shape {tuple(value.shape)}, VGGish expects "
                f"{tuple(own[key].shape)}"
            )
        converted[key] = value
    missing = [k for k in own if k not in converted and not k.startswith("postprocess.")]
    if missing:
        raise KeyError(f"{path}: missing VGGish weights {missing[:5]}")
    # assign=True: a model built on the meta device takes the loaded tensors without initialisation
    model.load_state_dict(converted, strict=False, assign=True)
    return model


#: torchvggish's converted VGGish weights, looked up in ``torch.hub.get_dir()/checkpoints``.
VGGISH_DEFAULT_FILE = "vggish-10086976.pth"


def _vggish_default_file():
    from neuroprobe.exceptions import WeightsUnavailableError

    directory = Path(torch.hub.get_dir()) / "checkpoints"
    path = directory / VGGISH_DEFAULT_FILE
    if not path.is_file():
        raise WeightsUnavailableError(
            f"pretrained VGGish weights (weights='DEFAULT') are not cached: place torchvggish's "
            f"{VGGISH_DEFAULT_FILE!r} in the directory {str(directory)!r} "
            "(torch.hub.get_dir()/checkpoints; set TORCH_HOME to move it), pass "
            "weights=<path to a converted checkpoint>, or weights=None for random weights."
        )
    return path


def build_vggish(
    weights="DEFAULT", random_state=None, *, pca_params=None, quantize=True, aggregate="mean"
):
    """A :class:`VGGish` in eval mode and its ``weights_id``.

    Parameters
    ----------
    weights : str, Path or None, default="DEFAULT"
        Local converted checkpoint; ``"DEFAULT"``: torchvggish's ``vggish-10086976.pth`` in the
        torch.hub checkpoint directory (never downloaded: :class:`WeightsUnavailableError` naming
        the file and the directory when it is not there); ``None`` gives random weights seeded by
        ``random_state``.
    random_state : int, optional
        Seed of the random weights (``None``: seed 0, recorded in ``weights_id``).
    pca_params : str or Path, optional
        ``vggish_pca_params.npz``: add the published PCA (+ quantisation when ``quantize``)
        post-processing.
    """
    from neuroprobe._utils import seed_from
    from neuroprobe.models.weights import DEFAULT_WEIGHTS_SEED, is_random_weights, seeded

    post = None
    if pca_params is not None:
        vecs, means = _load_pca_params(pca_params)
        post = VGGishPostprocessor(vecs, means, quantize=quantize)
    if is_random_weights(weights):
        seed = seed_from(random_state, DEFAULT_WEIGHTS_SEED)
        with seeded(seed):
            model = VGGish(post, aggregate=aggregate)
        weights_id = f"random(seed={seed})"
    else:
        if isinstance(weights, str) and weights.upper() in ("DEFAULT", "PRETRAINED"):
            weights = _vggish_default_file()
        with torch.device("meta"):  # no random initialisation of 72 M parameters to overwrite
            model = VGGish(aggregate=aggregate)
        model = load_vggish_checkpoint(model, weights)
        if post is not None:
            model.postprocess = post
        weights_id = f"sha256:{_sha256(weights)}"
    return model.eval(), weights_id


# --- torchaudio bundles ------------------------------------------------------------------------
#: neuroprobe name -> torchaudio.pipelines bundle attribute.
TORCHAUDIO_BUNDLES = {
    "wav2vec2_base": "WAV2VEC2_BASE",
    "wav2vec2_large": "WAV2VEC2_LARGE",
    "wav2vec2_large_lv60k": "WAV2VEC2_LARGE_LV60K",
    "wav2vec2_xlsr53": "WAV2VEC2_XLSR53",
    "hubert_base": "HUBERT_BASE",
    "hubert_large": "HUBERT_LARGE",
    "hubert_xlarge": "HUBERT_XLARGE",
    "wavlm_base": "WAVLM_BASE",
    "wavlm_base_plus": "WAVLM_BASE_PLUS",
    "wavlm_large": "WAVLM_LARGE",
}


class _ChannelsFirst(nn.Module):
    """Tap: ``(B, frames, C)`` -> ``(B, C, frames)`` (the extractor's channel axis is axis 1)."""

    def forward(self, x):
        return x.transpose(1, 2)


class Wav2Vec2Taps(nn.Module):
    """A torchaudio wav2vec2 / HuBERT / WavLM model with channel-first transformer layers.

    ``forward(waveforms (B, n_samples))`` runs ``model.extract_features`` and passes the output of
    every transformer layer ``k`` through the tap module ``layers.k``, which returns it as ``(B, C,
    frames)``, so :class:`~neuroprobe.transformers.DNNFeatureExtractor` pools over time like for a
    1-D conv layer. The convolutional front end is ``model.feature_extractor.conv_layers.N``
    (already ``(B, C, frames)``). Returns the last layer's ``(B, C, frames)``.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        n_layers = len(_encoder(model).transformer.layers)
        self.layers = nn.ModuleList([_ChannelsFirst() for _ in range(n_layers)])

    def forward(self, waveforms):
        features, _ = self.model.extract_features(waveforms)
        out = None
        for tap, x in zip(self.layers, features):
            out = tap(x)
        return out


def _encoder(model):
    inner = getattr(model, "model", model)  # _extend_model wraps the Wav2Vec2Model
    return inner.encoder


def build_torchaudio_bundle(name, weights="DEFAULT", random_state=None, config=None):
    """A wav2vec2 / HuBERT / WavLM model from :mod:`torchaudio.pipelines`, and its weights_id.

    ``weights=None`` builds the bundle's architecture with seeded random weights; ``"pretrained"``
    (or
    ``"DEFAULT"``, or the bundle name) fetches the bundle's weights through torch.hub (its cache
    works offline; without network and cache a clear error is raised); a path loads a local state
    dict. ``config`` overrides architecture parameters of the bundle (random weights only), e.g.
    ``{"encoder_num_layers": 2}`` for a small test network.
    Returns ``(module, weights_id, sample_rate)`` with ``module`` a :class:`Wav2Vec2Taps`: capture
    ``layers.N`` (transformer layer N, ``(B, C, frames)``) or
    ``model.feature_extractor.conv_layers.N``.
    """
    import torchaudio.pipelines as P
    from torchaudio.pipelines._wav2vec2 import utils as _u

    attr = TORCHAUDIO_BUNDLES.get(name, name.upper())
    bundle = getattr(P, attr, None)
    if bundle is None or not hasattr(bundle, "_params"):
        raise KeyError(f"unknown torchaudio bundle {name!r}; known: {sorted(TORCHAUDIO_BUNDLES)}")
    from neuroprobe._utils import seed_from
    from neuroprobe.models.weights import DEFAULT_WEIGHTS_SEED, is_random_weights, seeded

    params = dict(bundle._params)
    if config:
        unknown = sorted(set(config) - set(params))
        if unknown:
            raise KeyError(f"unknown {name} parameters {unknown}; valid: {sorted(params)}")
        params.update(config)
    if is_random_weights(weights):
        seed = seed_from(random_state, DEFAULT_WEIGHTS_SEED)
        with seeded(seed):
            model = _u._get_model(bundle._model_type, params)
        weights_id = f"random(seed={seed})"
    elif config:
        raise ValueError(f"{name}: config changes the architecture; it needs weights=None")
    elif isinstance(weights, str) and weights.upper() in ("PRETRAINED", "DEFAULT", attr):
        try:
            model = bundle.get_model()
        except Exception as exc:  # URLError, HTTPError, OSError ...
            from neuroprobe.exceptions import WeightsUnavailableError

            raise WeightsUnavailableError(
                f"cannot fetch the pretrained weights of torchaudio.pipelines.{attr} ({exc}). "
                "Without "
                "network access, copy the bundle's checkpoint into the torch.hub cache "
                f"({torch.hub.get_dir()}/checkpoints) or pass a local state-dict path as weights."
            ) from exc
        weights_id = f"torchaudio.pipelines.{attr}"
    else:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"{name}: weights file not found: {path}")
        model = _u._get_model(bundle._model_type, bundle._params)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        weights_id = f"sha256:{_sha256(path)}"
    if getattr(bundle, "_normalize_waveform", False):
        model = _u._extend_model(model, normalize_waveform=True)
    return Wav2Vec2Taps(model).eval(), weights_id, int(bundle.sample_rate)


class WaveformPreprocess:
    """Decoded audio ``(waveform, sample_rate)`` -> mono float32 tensor at ``sample_rate``."""

    def __init__(self, sample_rate, max_seconds=None):
        self.sample_rate = int(sample_rate)
        self.max_seconds = max_seconds
        self.info = {
            "kind": "waveform",
            "sample_rate": self.sample_rate,
            "max_seconds": max_seconds,
            "input_shape": [self.sample_rate],
        }

    def __call__(self, decoded):
        from neuroprobe.media.audio import resample, to_mono

        if isinstance(decoded, torch.Tensor):
            return decoded.float()
        waveform, sample_rate = decoded
        wave = resample(to_mono(waveform), sample_rate, self.sample_rate)
        if self.max_seconds is not None:
            wave = wave[: int(round(self.max_seconds * self.sample_rate))]
        if wave.size == 0:
            raise ValueError("zero-length audio")
        return torch.from_numpy(np.ascontiguousarray(wave))


# --- ModelSpecs and registration ----------------------------------------------------------------
def vggish_model(
    weights="DEFAULT",
    random_state=None,
    *,
    pca_params=None,
    quantize=True,
    short_policy="pad",
    max_examples=None,
):
    """VGGish as a :class:`~neuroprobe.models.ModelSpec` (``modality="audio"``).

    See :func:`build_vggish` for ``weights`` / ``pca_params`` and :class:`VGGishPreprocess` for
    ``short_policy`` / ``max_examples``. Aliases: :data:`VGGISH_ALIASES` (``"embedding"`` is the
    128-D embedding, ``"postprocess"`` the PCA / quantised one when ``pca_params`` is given).
    """
    from neuroprobe.models.registry import ModelSpec

    module, weights_id = build_vggish(
        weights, random_state, pca_params=pca_params, quantize=quantize
    )
    for p in module.parameters():
        p.requires_grad_(False)
    preprocess = VGGishPreprocess(short_policy=short_policy, max_examples=max_examples)
    info = dict(preprocess.info)
    if pca_params is not None:
        info["pca_params"] = f"sha256:{_sha256(pca_params)}"
        info["quantize"] = bool(quantize)
    aliases = {
        k: v for k, v in VGGISH_ALIASES.items() if k != "postprocess" or pca_params is not None
    }
    return ModelSpec(
        module=module,
        preprocess=preprocess,
        modality="audio",
        name="vggish",
        weights_id=weights_id,
        aliases=aliases,
        preprocess_info=info,
    )


def audio_bundle_model(
    name, weights="DEFAULT", random_state=None, *, max_seconds=None, config=None
):
    """A torchaudio wav2vec2 / HuBERT / WavLM bundle as a :class:`~neuroprobe.models.ModelSpec`.

    See :func:`build_torchaudio_bundle` for ``weights`` and ``config``; ``max_seconds`` keeps only
    the start of long recordings. Aliases ``transformer1`` ... -> ``layers.0`` ... (channel-first
    taps).
    """
    from neuroprobe.models.registry import ModelSpec

    module, weights_id, sample_rate = build_torchaudio_bundle(name, weights, random_state, config)
    for p in module.parameters():
        p.requires_grad_(False)
    preprocess = WaveformPreprocess(sample_rate, max_seconds=max_seconds)
    info = dict(preprocess.info)
    if config:
        info["config"] = dict(config)
    aliases = {f"transformer{k + 1}": f"layers.{k}" for k in range(len(module.layers))}
    return ModelSpec(
        module=module,
        preprocess=preprocess,
        modality="audio",
        name=name,
        weights_id=weights_id,
        aliases=aliases,
        preprocess_info=info,
    )


def _register():
    from neuroprobe.models.registry import register_model

    register_model(
        "vggish",
        lambda weights="DEFAULT", random_state=None: vggish_model(weights, random_state),
        modality="audio",
    )

    def bundle_factory(name):
        def factory(weights="DEFAULT", random_state=None):
            return audio_bundle_model(name, weights, random_state)

        return factory

    for name in TORCHAUDIO_BUNDLES:
        register_model(name, bundle_factory(name), modality="audio")


_register()
