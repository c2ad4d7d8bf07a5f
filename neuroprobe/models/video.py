"""Video networks by name: torchvision's video classifiers and PyTorchVideo's hub builders.

Models
------
torchvision (``torchvision.models.video``): ``r3d_18``, ``mc3_18``, ``r2plus1d_18``, ``s3d``,
``mvit_v1_b``, ``mvit_v2_s``, ``swin3d_t``. PyTorchVideo (``pytorchvideo.models.hub``, built with
``pretrained=False`` unless weights are given): ``x3d_xs``, ``x3d_s``, ``x3d_m``, ``slow_r50``,
``slowfast_r50``. ``pytorchvideo.transforms`` is never imported (it is broken with current
torchvision).

Preprocessing (:class:`VideoPreprocess`)
----------------------------------------
decoded ``(frames uint8 (T, H, W, 3), fps)`` -> one clip ``(3, n_frames, crop, crop)`` float32:

1. temporal sampling with :func:`neuroprobe.media.video.clip_indices`: ``n_frames`` frames, one
   every ``stride`` frames; without an explicit ``stride`` it is ``max(1, round(fps / target_fps))``
   so that the clip covers the time span the weights were trained on (torchvision: Kinetics clips at
   15 fps, MViT 7.5 fps; PyTorchVideo: ``sampling_rate`` frames at 30 fps). Default
   ``mode="centre"``; videos shorter than one clip are padded by repeating the last frame
   (``short_policy="pad"``) or rejected (``"error"``).
2. spatial transform, as each family's published inference transform: torchvision models use
   :class:`torchvision.transforms._presets.VideoClassification` itself (bilinear resize of the uint8
   frames without antialiasing, centre crop, rescale to [0, 1], normalise); PyTorchVideo models use
   their hub recipe re-implemented in torch (``x / 255``, normalise, ``ShortSideScale`` bilinear,
   centre crop).

SlowFast
--------
``slowfast_r50`` needs two pathways. Its module here (:class:`SlowFastNet`, same sub-module names as
PyTorchVideo's ``Net``: ``blocks.0`` ...) takes the *fast* pathway clip ``(B, 3, 32, H, W)`` like
any other video model and builds the slow pathway itself (``alpha=4`` frames evenly spaced by
``torch.linspace``, as PyTorchVideo's ``PackPathway``); a list ``[slow, fast]`` is also accepted. So
the preprocessing, ``collate`` (:func:`torch.stack`) and batching are those of single-pathway
models. The output of a multi-pathway block is a list; hooks capture its first tensor, the slow
pathway.

Time series
-----------
:meth:`VideoPreprocess.clips` cuts a whole video into sliding clips (``mode="sliding"``, ``step``
frames apart, default non-overlapping) and returns their onsets in seconds;
:func:`neuroprobe.transformers.timeseries.extract_time_series` runs an extractor over these clips
to give a feature time series for :class:`~neuroprobe.transformers.HRFConvolver`.

Use :func:`video_model` to change the clip (``n_frames``, ``stride``/``target_fps``, ``mode``,
sizes) and pass the returned :class:`~neuroprobe.models.ModelSpec` as
``DNNFeatureExtractor(model=spec)``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neuroprobe._utils import seed_from
from neuroprobe.exceptions import ModelError, WeightsUnavailableError
from neuroprobe.models.hooks import add_forward_hook
from neuroprobe.models.registry import ModelSpec, register_model
from neuroprobe.models.weights import (
    DEFAULT_WEIGHTS_SEED,
    file_sha256,
    is_random_weights,
    load_state_dict_file,
    looks_like_path,
    resolve_enum,
    seeded,
    weights_file_location,
    weights_unavailable,
)

__all__ = [
    "PYTORCHVIDEO_MODELS",
    "TORCHVISION_VIDEO_MODELS",
    "SlowFastNet",
    "VideoPreprocess",
    "video_model",
]

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
PTV_MEAN = (0.45, 0.45, 0.45)
PTV_STD = (0.225, 0.225, 0.225)

#: torchvision name -> default clip (from the weights' documentation: frame_rate and clip_len).
TORCHVISION_VIDEO_MODELS = {
    "r3d_18": {"n_frames": 16, "target_fps": 15.0},
    "mc3_18": {"n_frames": 16, "target_fps": 15.0},
    "r2plus1d_18": {"n_frames": 16, "target_fps": 15.0},
    "s3d": {"n_frames": 128, "target_fps": 15.0},
    "mvit_v1_b": {"n_frames": 16, "target_fps": 7.5},
    "mvit_v2_s": {"n_frames": 16, "target_fps": 7.5},
    "swin3d_t": {"n_frames": 32, "target_fps": 15.0},
}

#: PyTorchVideo hub name -> inference recipe of its torch.hub page (frames x sampling rate at
#: 30 fps, short side, crop; mean 0.45 / std 0.225).
PYTORCHVIDEO_MODELS = {
    "x3d_xs": {"n_frames": 4, "sampling_rate": 12, "side": 182, "crop": 182},
    "x3d_s": {"n_frames": 13, "sampling_rate": 6, "side": 182, "crop": 182},
    "x3d_m": {"n_frames": 16, "sampling_rate": 5, "side": 256, "crop": 256},
    "slow_r50": {"n_frames": 8, "sampling_rate": 8, "side": 256, "crop": 256},
    "slowfast_r50": {"n_frames": 32, "sampling_rate": 2, "side": 256, "crop": 256, "alpha": 4},
}


# --------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------
def _pair(size):
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        return [int(size), int(size)]
    return [int(s) for s in size]


def _short_side_scale(x, size):
    """PyTorchVideo's ``short_side_scale``: bilinear resize of (N, C, H, W), short side ``size``."""
    h, w = x.shape[-2:]
    if w < h:
        new_h, new_w = int(math.floor(h / w * size)), int(size)
    else:
        new_h, new_w = int(size), int(math.floor(w / h * size))
    return torch.nn.functional.interpolate(
        x, size=(new_h, new_w), mode="bilinear", align_corners=False
    )


def _centre_crop(x, crop):
    h, w = x.shape[-2:]
    ch, cw = crop
    if ch > h or cw > w:
        raise ValueError(f"crop {crop} is larger than the resized frames {(h, w)}")
    top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
    return x[..., top : top + ch, left : left + cw]


class VideoPreprocess:
    """Decoded video ``(frames, fps)`` -> one clip tensor ``(3, n_frames, crop_h, crop_w)``.

    Parameters
    ----------
    n_frames : int
        Frames per clip.
    stride : int, optional
        Frames between the sampled frames; default ``max(1, round(fps / target_fps))``.
    target_fps : float, optional
        Sampling rate the weights expect (used when ``stride`` is None; ``None`` means stride 1).
    resize_size : int or (int, int)
        One int: the short side (aspect kept); two: ``(H, W)``.
    crop_size : int or (int, int)
        Centre crop.
    mean, std : tuple of 3 floats
    recipe : {"torchvision", "pytorchvideo"}
        Order of the spatial operations (see the module docstring).
    mode : {"centre", "start", "uniform", "sliding"}, default="centre"
        :func:`~neuroprobe.media.video.clip_indices` mode; ``"sliding"`` is only for :meth:`clips`.
    start_s : float, default=0.0
        Ignore the frames before this time (seconds).
    step : int, optional
        Frames between sliding clips (default: non-overlapping).
    short_policy : {"pad", "error"}, default="pad"
    """

    def __init__(
        self,
        *,
        n_frames,
        stride=None,
        target_fps=None,
        resize_size,
        crop_size,
        mean=KINETICS_MEAN,
        std=KINETICS_STD,
        recipe="torchvision",
        mode="centre",
        start_s=0.0,
        step=None,
        short_policy="pad",
    ):
        if recipe not in ("torchvision", "pytorchvideo"):
            raise ValueError(f"recipe must be 'torchvision' or 'pytorchvideo', got {recipe!r}")
        self.n_frames = int(n_frames)
        self.stride = None if stride is None else int(stride)
        self.target_fps = None if target_fps is None else float(target_fps)
        self.resize_size = (
            [int(resize_size)] if isinstance(resize_size, (int, np.integer)) else list(resize_size)
        )
        self.crop_size = _pair(crop_size)
        self.mean, self.std = tuple(mean), tuple(std)
        self.recipe = recipe
        self.mode = mode
        self.start_s = float(start_s)
        self.step = step
        self.short_policy = short_policy
        if recipe == "torchvision":
            from torchvision.transforms._presets import VideoClassification

            self._transform = VideoClassification(
                crop_size=self.crop_size, resize_size=self.resize_size, mean=self.mean, std=self.std
            )
        self.info = {
            "kind": f"video.{recipe}",
            "n_frames": self.n_frames,
            "stride": self.stride,
            "target_fps": self.target_fps,
            "mode": mode,
            "start_s": self.start_s,
            "step": step,
            "short_policy": short_policy,
            "resize": self.resize_size,
            "crop": self.crop_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "input_shape": [3, self.n_frames, *self.crop_size],
        }

    def stride_for(self, fps):
        """Frame stride used for a video at ``fps`` frames per second."""
        if self.stride is not None:
            return self.stride
        if self.target_fps is None or not fps:
            return 1
        return max(1, int(round(float(fps) / self.target_fps)))

    def indices(self, n_total, fps, *, mode=None, name="video"):
        """Frame indices ``(n_clips, n_frames)`` of the clips of a video with ``n_total`` frames."""
        from neuroprobe.media.video import clip_indices

        start = int(round(self.start_s * fps)) if fps else 0
        return clip_indices(
            n_total,
            self.n_frames,
            self.stride_for(fps),
            start=min(start, n_total - 1),
            mode=mode or self.mode,
            step=self.step,
            short_policy=self.short_policy,
            name=name,
        )

    def transform(self, frames):
        """Spatial transform: uint8 ``(..., T, H, W, 3)`` -> float ``(..., 3, T, h, w)``."""
        x = torch.as_tensor(np.ascontiguousarray(frames))
        if x.dtype != torch.uint8:
            raise TypeError(f"video frames must be uint8 (T, H, W, 3), got {x.dtype}")
        x = x.movedim(-1, -3)  # (..., T, 3, H, W)
        if self.recipe == "torchvision":
            return self._transform(x)
        lead = x.shape[:-3]
        x = x.reshape(-1, *x.shape[-3:]).float() / 255.0
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        x = (x - mean) / std
        if len(self.resize_size) == 1:
            x = _short_side_scale(x, self.resize_size[0])
        else:
            x = torch.nn.functional.interpolate(
                x, size=tuple(self.resize_size), mode="bilinear", align_corners=False
            )
        x = _centre_crop(x, self.crop_size).contiguous()
        x = x.reshape(*lead, *x.shape[-3:])  # (..., T, 3, h, w)
        return x.movedim(-3, -4)  # (..., 3, T, h, w)

    def __call__(self, decoded):
        if isinstance(decoded, torch.Tensor) and decoded.is_floating_point():
            return decoded  # already preprocessed
        frames, fps = decoded
        mode = self.mode if self.mode != "sliding" else "centre"
        idx = self.indices(len(frames), fps, mode=mode)[0]
        return self.transform(np.asarray(frames)[idx])

    def windows(self, decoded):
        """Sliding clips ``(n_clips, 3, n_frames, h, w)``, their onsets and duration (seconds).

        Used by :func:`neuroprobe.transformers.timeseries.extract_time_series`.
        """
        frames, fps = decoded
        clips, onsets = self.clips(decoded)
        from neuroprobe.media.video import clip_span

        span = clip_span(self.n_frames, self.stride_for(fps))
        return clips, onsets, (span / float(fps) if fps else float(span))

    def clips(self, decoded, *, name="video"):
        """All sliding clips ``(n_clips, 3, n_frames, h, w)`` and their onsets (seconds)."""
        frames, fps = decoded
        idx = self.indices(len(frames), fps, mode="sliding", name=name)
        onsets = idx[:, 0] / float(fps) if fps else idx[:, 0].astype(float)
        return self.transform(np.asarray(frames)[idx]), onsets


# --------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------
class SlowFastNet(nn.Module):
    """PyTorchVideo SlowFast taking the fast-pathway clip; it builds the slow pathway itself."""

    def __init__(self, net, alpha=4):
        super().__init__()
        self.blocks = net.blocks
        self.alpha = int(alpha)

    def forward(self, x):
        if isinstance(x, (list, tuple)):
            pathways = list(x)
        else:
            t = x.shape[2]
            idx = torch.linspace(0, t - 1, max(1, t // self.alpha), device=x.device).long()
            pathways = [x.index_select(2, idx), x]
        for block in self.blocks:
            pathways = block(pathways)
        return pathways


# --------------------------------------------------------------------------------------------
# Channel-first taps for token / channel-last layers (MViT, Swin3D)
# --------------------------------------------------------------------------------------------
class _ChannelsLastToFirst(nn.Module):
    """Swin3D stage output ``(B, T, H, W, C)`` -> ``(B, C, T, H, W)``."""

    def forward(self, x):
        return x.permute(0, 4, 1, 2, 3)


class _TokensToVideo(nn.Module):
    """MViT block output ``((B, 1 + T*H*W, C), (T, H, W))`` -> ``(B, C, T, H, W)`` (class token
    dropped)."""

    def forward(self, output):
        x, thw = output
        t, h, w = (int(v) for v in thw)
        b, n, c = x.shape
        return x[:, n - t * h * w :].transpose(1, 2).reshape(b, c, t, h, w)


def _tap_hook(module, inputs, output):
    tap = module.__dict__.get("_neuroprobe_tap")
    if tap is not None:
        tap(output)


def add_channel_first_taps(module, names, tap_factory):
    """Expose channel-last layers of ``module`` channel-first, for pooling over time and space.

    For each module name in ``names`` a tap module ``taps.<name with _>`` is added; a forward hook
    of the original layer calls it with the layer's output (the network itself is unchanged).
    Returns the aliases ``{name: "taps.<name>"}``, so that asking the extractor for ``"features.3"``
    captures the channel-first ``(B, C, T, H, W)`` version. The tap reference is kept in the layer's
    ``__dict__`` (not as a sub-module) so :func:`copy.deepcopy` of the network keeps each copy's
    hooks on its own taps.
    """
    taps = nn.ModuleDict()
    modules = dict(module.named_modules())
    aliases = {}
    for name in names:
        key = name.replace(".", "_")
        taps[key] = tap_factory()
        modules[name].__dict__["_neuroprobe_tap"] = taps[key]
        add_forward_hook(modules[name], _tap_hook)
        aliases[name] = f"taps.{key}"
    # first in named_modules(), so the default (last) layer of the extractor stays the head
    module._modules = {"taps": taps, **module._modules}
    return aliases


def _taps_for(name, module):
    if name.startswith("swin3d"):
        names = [f"features.{i}" for i in range(len(module.features))] + ["norm"]
        return add_channel_first_taps(module, names, _ChannelsLastToFirst)
    if name.startswith("mvit"):
        names = [f"blocks.{i}" for i in range(len(module.blocks))]
        return add_channel_first_taps(module, names, _TokensToVideo)
    return {}


def _freeze(module):
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _torchvision_module(name, weights, random_state):
    from torchvision import models

    if is_random_weights(weights):
        seed = seed_from(random_state, DEFAULT_WEIGHTS_SEED)
        with seeded(seed):
            module = models.get_model(name, weights=None)
        return module, f"random(seed={seed})", None
    if looks_like_path(weights):
        path = Path(weights)
        if not path.is_file():
            raise ModelError(f"weights file not found: {path}")
        module = models.get_model(name, weights=None)
        try:
            module.load_state_dict(load_state_dict_file(path), strict=True)
        except RuntimeError as exc:
            raise ModelError(
                f"weights file {path} does not match model {name!r}: {str(exc).splitlines()[0]}"
            ) from exc
        return module, f"sha256:{file_sha256(path)}", None
    enum = resolve_enum(name, weights)
    file_name, directory = weights_file_location(enum)
    try:
        module = models.get_model(name, weights=enum)
    except Exception as exc:  # noqa: BLE001 - network errors vary
        if (Path(directory) / file_name).exists():
            raise
        raise weights_unavailable(enum, name, exc) from exc
    return module, f"{type(enum).__name__}.{enum.name}", enum


#: options ``pytorchvideo.models.hub.slow_r50`` passes to ``create_resnet`` itself.
_HUB_FIXED = {
    "slow_r50": {
        "stem_conv_kernel_size": (1, 7, 7),
        "head_pool_kernel_size": (8, 7, 7),
        "model_depth": 50,
    },
}


def _pytorchvideo_module(name, weights, random_state, model_kwargs):
    from pytorchvideo.models import hub

    builder = getattr(hub, name)
    model_kwargs = dict(model_kwargs or {})
    if is_random_weights(weights):
        seed = seed_from(random_state, DEFAULT_WEIGHTS_SEED)
        with seeded(seed):
            if name in _HUB_FIXED and set(model_kwargs) & set(_HUB_FIXED[name]):
                # the hub function fixes these options: call its model builder directly
                from pytorchvideo.models.resnet import create_resnet

                module = create_resnet(**{**_HUB_FIXED[name], **model_kwargs})
            else:
                module = builder(pretrained=False, **model_kwargs)
        return module, f"random(seed={seed})"
    if model_kwargs:
        raise ModelError(
            f"{name}: model_kwargs change the architecture; they cannot be combined with "
            "pretrained weights"
        )
    if looks_like_path(weights):
        path = Path(weights)
        if not path.is_file():
            raise ModelError(f"weights file not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "model_state" in state:  # PyTorchVideo checkpoint
            state = state["model_state"]
        elif isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        module = builder(pretrained=False)
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(
                f"weights file {path} does not match model {name!r}: {str(exc).splitlines()[0]}"
            ) from exc
        return module, f"sha256:{file_sha256(path)}"
    if str(weights).lower() not in ("pretrained", "default", "kinetics400"):
        raise ModelError(
            f"unknown weights {weights!r} for {name!r}: use None (random), 'pretrained' or "
            "the path of a checkpoint"
        )
    try:
        module = builder(pretrained=True)
    except Exception as exc:  # noqa: BLE001
        raise WeightsUnavailableError(
            f"cannot fetch the pretrained weights of pytorchvideo {name!r} "
            f"({type(exc).__name__}: {exc}). "
            f"Put the checkpoint in {torch.hub.get_dir()}/checkpoints (torch.hub cache) or pass "
            "weights=<local path of the .pyth checkpoint>."
        ) from exc
    return module, f"pytorchvideo.{name}.kinetics400"


def video_model(
    name,
    weights="DEFAULT",
    random_state=None,
    *,
    n_frames=None,
    stride=None,
    target_fps=None,
    resize_size=None,
    crop_size=None,
    mode="centre",
    start_s=0.0,
    step=None,
    short_policy="pad",
    model_kwargs=None,
):
    """Build a video network and its clip preprocessing as a :class:`~neuroprobe.models.ModelSpec`.

    Parameters
    ----------
    name : str
        One of :data:`TORCHVISION_VIDEO_MODELS` or :data:`PYTORCHVIDEO_MODELS`.
    weights : str, path or None, default="DEFAULT"
        Pretrained by default: torchvision models: ``"DEFAULT"`` or an enum name (through
        torchvision's cache; offline without the file: ``WeightsUnavailableError``). PyTorchVideo
        models: ``"DEFAULT"`` / ``"pretrained"`` (torch.hub cache). Any model: a local checkpoint
        path. ``None``: random weights seeded by ``random_state`` (warned once per model name).
    random_state : int, optional
        Seed of random weights (``None``: seed 0).
    n_frames, stride, target_fps, resize_size, crop_size, mode, start_s, step, short_policy
        Override the clip of :class:`VideoPreprocess` (defaults: the model's published recipe).
    model_kwargs : dict, optional
        PyTorchVideo builder options for random-weight variants (e.g. smaller
        ``head_pool_kernel_sizes`` to run small inputs).

    Returns
    -------
    ModelSpec
        ``modality="video"``; ``preprocess_info["input_shape"] == [3, n_frames, crop_h, crop_w]``.
    """
    name = name.lower()
    extra = {}
    if name in TORCHVISION_VIDEO_MODELS:
        from torchvision import models

        module, weights_id, enum = _torchvision_module(name, weights, random_state)
        defaults = TORCHVISION_VIDEO_MODELS[name]
        preset = (enum or models.get_model_weights(name).DEFAULT).transforms()
        resize = list(preset.resize_size) if resize_size is None else resize_size
        crop = list(preset.crop_size) if crop_size is None else crop_size
        mean, std, recipe = tuple(preset.mean), tuple(preset.std), "torchvision"
    elif name in PYTORCHVIDEO_MODELS:
        defaults = dict(PYTORCHVIDEO_MODELS[name])
        defaults["target_fps"] = 30.0 / defaults["sampling_rate"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module, weights_id = _pytorchvideo_module(name, weights, random_state, model_kwargs)
        if "alpha" in defaults:
            module = SlowFastNet(module, alpha=defaults["alpha"])
            extra["alpha"] = defaults["alpha"]
        resize = defaults["side"] if resize_size is None else resize_size
        crop = defaults["crop"] if crop_size is None else crop_size
        mean, std, recipe = PTV_MEAN, PTV_STD, "pytorchvideo"
    else:
        raise ModelError(
            f"unknown video model {name!r}; known: "
            f"{sorted([*TORCHVISION_VIDEO_MODELS, *PYTORCHVIDEO_MODELS])}"
        )
    if model_kwargs and name in TORCHVISION_VIDEO_MODELS:
        raise ModelError(f"model_kwargs are only for PyTorchVideo models, not {name!r}")
    preprocess = VideoPreprocess(
        n_frames=n_frames or defaults["n_frames"],
        stride=stride,
        target_fps=defaults["target_fps"] if target_fps is None else target_fps,
        resize_size=resize,
        crop_size=crop,
        mean=mean,
        std=std,
        recipe=recipe,
        mode=mode,
        start_s=start_s,
        step=step,
        short_policy=short_policy,
    )
    info = dict(preprocess.info, **extra)
    if model_kwargs:
        info["model_kwargs"] = {k: repr(v) for k, v in model_kwargs.items()}
    aliases = _taps_for(name, module)
    return ModelSpec(
        module=_freeze(module),
        preprocess=preprocess,
        modality="video",
        name=name,
        weights_id=weights_id,
        aliases=aliases,
        preprocess_info=info,
    )


def _factory(name):
    def factory(weights="DEFAULT", random_state=None):
        return video_model(name, weights, random_state)

    factory.__name__ = f"{name}_factory"
    return factory


for _name in (*TORCHVISION_VIDEO_MODELS, *PYTORCHVIDEO_MODELS):
    register_model(_name, _factory(_name), modality="video")
