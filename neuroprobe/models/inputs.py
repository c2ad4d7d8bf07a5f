"""Model inputs: pictures in any accepted form to the model's preprocessed batch, and back.

:func:`load_images` turns paths, a :class:`~neuroprobe.StimulusSet`, PIL images, uint8 arrays or
an already preprocessed float tensor into the ``(n, C, H, W)`` float batch a model
(:class:`~neuroprobe.models.resolve.InspectedModel`) takes; :func:`to_display` undoes the
normalisation for figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

__all__ = ["load_images", "to_display"]


def _first_conv_channels(module):
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            return m.in_channels
    return None


def _pil_to_rgb(img):
    from neuroprobe.media.image import to_rgb

    return img if img.mode == "RGB" else to_rgb(img)


def _array_to_pils(array, name):
    from PIL import Image

    a = np.asarray(array)
    if a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (3, 4) and a.shape[0] not in (1,)):
        a = a[None]
    if a.ndim == 3:  # (n, H, W) grayscale
        return [Image.fromarray(np.ascontiguousarray(x)) for x in a]
    if a.ndim == 4 and a.shape[-1] in (1, 3, 4):
        return [Image.fromarray(np.ascontiguousarray(x[..., 0] if a.shape[-1] == 1 else x))
                for x in a]
    raise ValueError(
        f"{name}: uint8 images must be (H, W), (H, W, 3|4), (n, H, W) or (n, H, W, 1|3|4); "
        f"got shape {a.shape}"
    )


def _check_tensor(x, info, name):
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(
            f"{name}: a preprocessed image tensor must be (n, C, H, W) or (C, H, W); got shape "
            f"{tuple(x.shape)}"
        )
    expected = _first_conv_channels(info.module)
    if expected is not None and x.shape[1] != expected:
        raise ValueError(
            f"{name}: the tensor has {x.shape[1]} channel(s) but {info.name} expects {expected}; "
            "pass grayscale/RGBA pictures as files, PIL images or uint8 arrays so that they are "
            "converted to RGB by the model's preprocessing"
        )
    return x.float()


def load_images(images, info, name="images"):
    """Preprocess ``images`` for ``info``'s module; return a float tensor ``(n, C, H, W)`` on CPU.

    Parameters
    ----------
    images : str, Path, list of paths, StimulusSet, PIL.Image, list of PIL images, uint8 array or
        float tensor/array
        Pictures (grayscale, RGBA, palette and 16-bit ones are converted to RGB before the model's
        preprocessing) or an already preprocessed float batch ``(n, C, H, W)``.
    info : InspectedModel
        From :func:`neuroprobe.models.resolve.resolve_model` (its ``preprocess``, ``module`` and
        ``name`` are used).
    name : str
        Argument name used in error messages.

    Returns
    -------
    torch.Tensor
    """
    from PIL import Image

    preprocess = info.preprocess

    def prep(img):
        out = preprocess(_pil_to_rgb(img))
        return out if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))

    if isinstance(images, torch.Tensor):
        return _check_tensor(images.detach().cpu(), info, name)
    if isinstance(images, np.ndarray):
        if np.issubdtype(images.dtype, np.floating):
            return _check_tensor(torch.from_numpy(np.array(images, dtype=np.float32)), info, name)
        if images.dtype != np.uint8:
            raise ValueError(f"{name}: arrays must be uint8 pictures or float tensors, not "
                             f"{images.dtype}")
        return torch.stack([prep(im) for im in _array_to_pils(images, name)]).float()
    if isinstance(images, Image.Image):
        return prep(images)[None].float()
    if isinstance(images, (str, Path)) or (
        isinstance(images, (list, tuple)) and images
        and all(isinstance(i, (str, Path)) for i in images)
    ):
        from neuroprobe.stimuli import as_stimulus_set

        images = as_stimulus_set(images if isinstance(images, (str, Path)) else list(images))
    if hasattr(images, "load") and hasattr(images, "modality"):  # StimulusSet
        if images.modality not in (None, "image"):
            raise ValueError(f"{name}: the stimulus set holds {images.modality}, not images")
        tensors = []
        for i in range(len(images)):
            item = images.load(i)
            if isinstance(item, torch.Tensor):
                tensors.append(item.float())
            else:
                tensors.append(prep(item).float())
        if not tensors:
            raise ValueError(f"{name}: the stimulus set is empty")
        return _check_tensor(torch.stack(tensors), info, name)
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError(f"{name}: no images given")
        tensors = []
        for item in images:
            if isinstance(item, Image.Image):
                tensors.append(prep(item))
            else:
                raise TypeError(f"{name}: list items must be PIL images (or all paths), not "
                                f"{type(item).__name__}")
        return torch.stack(tensors).float()
    raise TypeError(
        f"{name} must be paths, a StimulusSet, PIL images, a uint8 array or a float tensor "
        f"(n, C, H, W); got {type(images).__name__}"
    )


def to_display(x, info=None):
    """Undo the model's normalisation for display: ``(n, C, H, W)`` -> ``(n, H, W, C)`` in [0, 1].

    Uses ``mean``/``std`` from the model's ``preprocess_info`` when given, else rescales each
    image to [0, 1].
    """
    x = x.detach().cpu().float() if isinstance(x, torch.Tensor) else torch.as_tensor(x).float()
    if x.ndim == 3:
        x = x[None]
    pinfo = (info.preprocess_info if info is not None else None) or {}
    mean, std = pinfo.get("mean"), pinfo.get("std")
    if mean is not None and std is not None and len(mean) == x.shape[1]:
        x = x * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
        out = x.clamp(0, 1)
    else:
        lo = x.amin(dim=(1, 2, 3), keepdim=True)
        hi = x.amax(dim=(1, 2, 3), keepdim=True)
        out = (x - lo) / (hi - lo).clamp_min(1e-12)
    return out.permute(0, 2, 3, 1).numpy()
