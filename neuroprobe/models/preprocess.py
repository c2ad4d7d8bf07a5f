"""Preprocessing of one decoded stimulus into a network's input tensor.

:func:`default_preprocess` is what user modules get without ``preprocess=``;
:class:`TorchvisionPreprocess` wraps the transform of a torchvision weights enum. Every transform
carries ``info``: a JSON-able description stored in ``.act.h5`` files and cache keys.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageToTensor",
    "TorchvisionPreprocess",
    "default_preprocess",
    "describe_callable",
]

#: ImageNet normalisation used by torchvision's classification weights and by the default
#: preprocessing of user modules.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageToTensor:
    """Default image preprocessing for user modules: RGB float tensor in [0, 1],
    ImageNet-normalised.

    The image keeps its native size (no resize or crop). Tensors are returned unchanged (they are
    taken as already preprocessed).
    """

    info = {
        "kind": "to_tensor+normalize",
        "resize": None,
        "crop": None,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
    }

    def __call__(self, image):
        import torch

        if isinstance(image, torch.Tensor):
            return image.float()
        array = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=2)
        tensor = torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).float() / 255.0
        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        return (tensor - mean) / std


class _Identity:
    info = {"kind": "identity"}

    def __call__(self, x):
        import torch

        return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def default_preprocess(modality="image"):
    """Preprocessing used for user modules given without ``preprocess``.

    image: :class:`ImageToTensor` (native size, ImageNet normalisation); other modalities: the
    decoded array as a tensor (identity).
    """
    return ImageToTensor() if modality == "image" else _Identity()


class TorchvisionPreprocess:
    """Wrap a torchvision weights transform (resize, centre crop, normalise) for one stimulus."""

    def __init__(self, transform):
        self.transform = transform
        self.info = {
            "kind": "torchvision.ImageClassification",
            "resize": list(transform.resize_size),
            "crop": list(transform.crop_size),
            "mean": list(transform.mean),
            "std": list(transform.std),
            "interpolation": str(transform.interpolation.value),
            "antialias": bool(transform.antialias),
        }

    def __call__(self, image):
        import torch

        if isinstance(image, torch.Tensor) and image.is_floating_point():
            return image  # already preprocessed
        if hasattr(image, "convert"):
            image = image.convert("RGB")
        return self.transform(image)


def describe_callable(obj):
    """``module.qualname`` of a user preprocessing callable (its ``preprocess_info`` identity)."""
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    module = getattr(obj, "__module__", None) or type(obj).__module__
    return f"{module}.{name}"
