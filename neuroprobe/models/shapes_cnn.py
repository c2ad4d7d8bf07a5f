"""The ``"shapes-cnn"`` model: a small CNN trained in seconds on generated shape pictures.

The network of ``neuroprobe demo`` and of the README's examples, registered as the model
``"shapes-cnn"`` when this module is imported (:data:`neuroprobe.models.registry.LAZY_MODULES`
imports it on first use of the name):

- :func:`make_shapes` draws 64x64 RGB pictures of the four categories of :data:`CATEGORIES`
  (disk, ring, square, cross) with random position, size, orientation, colours and pixel noise;
- :func:`make_network` builds the five-layer CNN (``conv1`` ... ``conv4``, ``fc1``, ``fc2``) with
  seeded random weights;
- :func:`train_network` trains it for a few seconds on generated pictures, so that category
  information rises with depth;
- :func:`shapes_cnn` is the model factory (``weights="trained"`` or ``"DEFAULT"``, the default:
  trained as in the demo; ``weights=None``: seeded random weights; a path: a state_dict file).

This module depends on :mod:`neuroprobe.models` only (never on :mod:`neuroprobe.demo`, which
re-exports its names).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

__all__ = [
    "CATEGORIES",
    "IMAGE_SIZE",
    "LAYERS",
    "TRAINING",
    "ImageStandardizer",
    "make_shapes",
    "make_network",
    "train_network",
    "shapes_cnn",
]

#: Shape categories of the generated pictures (label i is ``CATEGORIES[i]``).
CATEGORIES = ("disk", "ring", "square", "cross")
#: Layers of the network, input to output.
LAYERS = ("conv1", "conv2", "conv3", "conv4", "fc1", "fc2")
#: Image size of the generated pictures.
IMAGE_SIZE = 64
#: Training of ``weights="trained"``: pictures per category and epochs, full and ``quick``.
TRAINING = {
    False: dict(n_per_category=300, epochs=8),
    True: dict(n_per_category=300, epochs=6),
}


# ------------------------------------------------------------------------------------------
# Generated pictures
# ------------------------------------------------------------------------------------------
def make_shapes(n_per_category=60, size=IMAGE_SIZE, seed=0):
    """Draw pictures of the four shape categories.

    Each picture is one shape of :data:`CATEGORIES` with random centre, radius, orientation,
    foreground and background colours (with a minimum contrast), plus Gaussian pixel noise.

    Parameters
    ----------
    n_per_category : int
        Pictures per category.
    size : int
        Height and width in pixels.
    seed : int
        Seed of the generator; the same seed gives the same pictures.

    Returns
    -------
    images : ndarray of uint8, shape (n, size, size, 3)
        ``n = 4 * n_per_category``, in random category order.
    labels : ndarray of int, shape (n,)
        Category index of each picture.
    """
    if int(n_per_category) < 1:
        raise ValueError(f"n_per_category must be >= 1, got {n_per_category}")
    if int(size) < 8:
        raise ValueError(f"size must be >= 8 pixels, got {size}")
    rng = np.random.default_rng(seed)
    n_cat = len(CATEGORIES)
    n = int(n_per_category) * n_cat
    labels = rng.permutation(np.repeat(np.arange(n_cat), int(n_per_category)))
    grid = (np.arange(size, dtype=np.float32) + 0.5)
    radius = rng.uniform(0.18, 0.32, n).astype(np.float32) * size
    cx = rng.uniform(0.35, 0.65, n).astype(np.float32) * size
    cy = rng.uniform(0.35, 0.65, n).astype(np.float32) * size
    theta = rng.uniform(0, np.pi / 2, n).astype(np.float32)
    fg = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    bg = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    low_contrast = np.abs(fg - bg).sum(axis=1) < 0.6
    bg[low_contrast] = 1.0 - fg[low_contrast]
    noise = rng.normal(0.0, 0.06, (n, size, size, 3)).astype(np.float32)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    c, s = np.cos(theta), np.sin(theta)
    for i in range(n):  # one picture at a time keeps memory small; 4096 pixels each
        dx = (grid[None, :] - cx[i]) / radius[i]
        dy = (grid[:, None] - cy[i]) / radius[i]
        mask = _shape_mask(labels[i], dx * c[i] + dy * s[i], -dx * s[i] + dy * c[i])
        picture = np.where(mask[..., None], fg[i], bg[i]) + noise[i]
        images[i] = np.clip(np.rint(picture * 255.0), 0, 255).astype(np.uint8)
    return images, labels


def _shape_mask(label, u, v):
    """Pixels of shape ``CATEGORIES[label]`` in the rotated, radius-scaled coordinates ``u, v``."""
    if label == 0:  # disk
        return u**2 + v**2 < 1.0
    if label == 1:  # ring
        r2 = u**2 + v**2
        return (r2 < 1.0) & (r2 > 0.36)
    if label == 2:  # square
        return np.maximum(np.abs(u), np.abs(v)) < 0.85
    au, av = np.abs(u), np.abs(v)  # cross
    return ((au < 0.33) & (av < 1.0)) | ((av < 0.33) & (au < 1.0))


# ------------------------------------------------------------------------------------------
# Network
# ------------------------------------------------------------------------------------------
class ImageStandardizer:
    """Preprocessing of the network: RGB picture -> float tensor (3, H, W), z-scored per image.

    Standardising each picture removes its mean colour and contrast, which carry no category
    information in the generated pictures.
    """

    info = {"kind": "per-image z-score", "resize": None, "crop": None,
            "input_shape": [3, IMAGE_SIZE, IMAGE_SIZE]}

    def __call__(self, image):
        import torch

        if isinstance(image, torch.Tensor) and image.is_floating_point():
            return image
        array = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
        x = torch.from_numpy(np.array(array, dtype=np.float32, copy=True)).permute(2, 0, 1)
        return (x - x.mean()) / x.std().clamp_min(1e-6)


def _to_tensor(images):
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return (x - mean) / std


def make_network(seed=0, n_classes=4, size=IMAGE_SIZE):
    """The CNN with seeded random weights.

    ``conv1`` (8 channels, stride 2) -> ``conv2`` (16) -> ``conv3`` (32) -> ``conv4`` (32), each
    followed by a ReLU (``relu1`` ...), then ``pool`` (adaptive average pooling to a
    ``size / 16`` square, the identity at the training size, so other picture sizes work too) ->
    ``flatten`` -> ``fc1`` (64 units) -> ``relu5`` -> ``fc2`` (one unit per category). Hooks
    on the named modules capture pre-activation outputs.

    Parameters
    ----------
    seed : int
    n_classes : int
    size : int
        Input height and width (a multiple of 16).

    Returns
    -------
    torch.nn.Sequential
    """
    import torch
    from torch import nn

    if size % 16:
        raise ValueError(f"size must be a multiple of 16, got {size}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        side = size // 16
        net = nn.Sequential(
            OrderedDict(
                [
                    ("conv1", nn.Conv2d(3, 8, 5, stride=2, padding=2)),
                    ("relu1", nn.ReLU()),
                    ("conv2", nn.Conv2d(8, 16, 3, stride=2, padding=1)),
                    ("relu2", nn.ReLU()),
                    ("conv3", nn.Conv2d(16, 32, 3, stride=2, padding=1)),
                    ("relu3", nn.ReLU()),
                    ("conv4", nn.Conv2d(32, 32, 3, stride=2, padding=1)),
                    ("relu4", nn.ReLU()),
                    ("pool", nn.AdaptiveAvgPool2d(side)),
                    ("flatten", nn.Flatten()),
                    ("fc1", nn.Linear(32 * side * side, 64)),
                    ("relu5", nn.ReLU()),
                    ("fc2", nn.Linear(64, n_classes)),
                ]
            )
        )
    return net.eval()


def train_network(net, n_per_category=300, epochs=8, seed=0, lr=2e-3, batch_size=32):
    """Train ``net`` to classify freshly generated shapes (a few CPU seconds).

    The training pictures come from :func:`make_shapes` with a seed different from the demo
    study's stimuli (``seed + 10_000``), so the study never sees a training picture. Training runs
    on one thread (these small convolutions gain little from more, and lose much on a busy
    machine).

    Parameters
    ----------
    net : torch.nn.Module
    n_per_category : int
    epochs : int
    seed : int
    lr : float
    batch_size : int

    Returns
    -------
    net : torch.nn.Module
        The same module, trained, in ``eval()`` mode.
    """
    import torch

    images, labels = make_shapes(n_per_category, seed=int(seed) + 10_000)
    x = _to_tensor(images)
    y = torch.from_numpy(labels).long()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _train(net, x, y, epochs, seed, lr, batch_size)
    finally:
        torch.set_num_threads(threads)
    return net.eval()


def _train(net, x, y, epochs, seed, lr, batch_size, betas=(0.9, 0.999), eps=1e-8):
    """Mini-batch Adam (written out: constructing a ``torch.optim`` optimizer imports
    ``torch._dynamo``, which costs more than this whole training)."""
    import torch
    from torch import nn

    params = [p for p in net.parameters() if p.requires_grad]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    b1, b2 = betas
    step = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        gen = torch.Generator().manual_seed(int(seed))
        net.train()
        for _ in range(int(epochs)):
            order = torch.randperm(len(x), generator=gen)
            for start in range(0, len(x), batch_size):
                idx = order[start : start + batch_size]
                net.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
                step += 1
                with torch.no_grad():
                    for p, mp, vp in zip(params, m, v):
                        mp.mul_(b1).add_(p.grad, alpha=1 - b1)
                        vp.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                        denom = (vp / (1 - b2**step)).sqrt_().add_(eps)
                        p.addcdiv_(mp, denom, value=-lr / (1 - b1**step))
    return net.eval()


# ------------------------------------------------------------------------------------------
# Model factory
# ------------------------------------------------------------------------------------------
def shapes_cnn(weights="DEFAULT", random_state=None, *, quick=False):
    """Model factory of ``"shapes-cnn"``: the network as a :class:`ModelSpec`.

    Parameters
    ----------
    weights : "DEFAULT" (or "trained"), None or path, default="DEFAULT"
        ``"DEFAULT"``/``"trained"``: trained on generated shapes as in the demo; ``None`` (or
        ``"random"``): seeded random weights; a path: a state_dict file (``shapes_cnn.pt`` in a
        demo folder).
    random_state : int or None
        Seed of the weights (and of the training).
    quick : bool
        Shorter training (as ``neuroprobe demo --quick``).

    Returns
    -------
    ModelSpec
    """
    from neuroprobe.exceptions import ModelError
    from neuroprobe.models import ModelSpec

    seed = 0 if random_state is None else int(random_state)
    net = make_network(seed)
    if weights is None or str(weights).lower() in ("none", "random"):
        weights_id = f"random(seed={seed})"
    elif str(weights).lower() in ("trained", "default"):
        training = TRAINING[bool(quick)]
        train_network(net, training["n_per_category"], training["epochs"], seed=seed)
        weights_id = f"trained(seed={seed}{', quick' if quick else ''})"
    elif Path(str(weights)).is_file():
        _load_weights(net, weights)
        weights_id = f"file:{Path(weights).name}"
    else:
        raise ModelError(
            "shapes-cnn weights must be None, 'trained'/'DEFAULT' or the path of a state_dict "
            f"file (e.g. shapes_cnn.pt written by the demo); got {weights!r}"
        )
    return ModelSpec(
        module=net.eval(),
        preprocess=ImageStandardizer(),
        modality="image",
        name="shapes-cnn",
        weights_id=weights_id,
        preprocess_info=dict(ImageStandardizer.info),
    )


def _load_weights(net, path):
    """Load a state_dict file (or a checkpoint holding one) into ``net``; ModelError if it fails."""
    import torch

    from neuroprobe.exceptions import ModelError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict):  # a checkpoint (e.g. from neuroprobe finetune)
            state = next((state[k] for k in ("state_dict", "model", "model_state_dict")
                          if isinstance(state.get(k), dict)), state)
        net.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name
        message = " ".join(str(exc).split())
        raise ModelError(f"cannot load shapes-cnn weights from {path}: {message}") from exc


def _register():
    from neuroprobe.models import register_model

    register_model("shapes-cnn", shapes_cnn, modality="image")


_register()
