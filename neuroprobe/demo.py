"""The embedded demo study: generated stimuli, a small trained network, simulated brains.

``neuroprobe demo`` (or :func:`run_demo`) runs a complete study with no download and no user data:

1. **Stimuli**: :func:`make_shapes` draws 64x64 RGB pictures of four shape categories (disk, ring,
   square, cross) with random position, size, orientation, colours and pixel noise.
2. **Network**: :func:`make_network` is a five-layer CNN (``conv1`` ... ``conv4``, ``fc1``, ``fc2``)
   trained for a few seconds on other generated pictures (:func:`train_network`), so that category
   information rises with depth. It is also registered as the model ``"shapes-cnn"``
   (``weights="trained"`` or ``"DEFAULT"``, the default: trained as in the demo;
   ``weights=None``: seeded random weights).
3. **Brains**: :func:`simulate_brain` plants a linear map from the (whitened) principal
   components of ONE layer (:data:`PLANTED_LAYER`) into the voxels of a spherical region of
   interest of a 10x10x10 volume, plus independent noise for each simulated subject; the
   volumes are written as 4-D NIfTI files and read back through
   :class:`~neuroprobe.transformers.BrainMasker`.
4. **Study**, through the public API only: extract every layer once to an ``.act.h5`` file
   (:class:`~neuroprobe.transformers.DNNFeatureExtractor`), reduce each layer with
   :class:`~neuroprobe.transformers.PCAReducer`, probe the categories per layer
   (:func:`~neuroprobe.probing.probe_layers`), voxelwise encoding per layer with family-wise
   permutation p-values (:class:`~neuroprobe.estimators.VoxelwiseEncoder` inside
   :class:`~neuroprobe.estimators.PermutationTest`), RSA per layer against the subjects' RDMs with a
   noise ceiling (:class:`~neuroprobe.estimators.RSAScorer`, :func:`~neuroprobe.rsa.noise_ceiling`),
   top stimuli and saliency maps of a few units (:mod:`neuroprobe.inspect`).
5. **Report**: Markdown and HTML with PNG figures (:mod:`neuroprobe.report`), and a summary naming
   the layer the study recovered, which must be the planted one.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "CATEGORIES",
    "LAYERS",
    "PLANTED_LAYER",
    "BrainSimulation",
    "ImageStandardizer",
    "make_shapes",
    "make_network",
    "train_network",
    "shapes_cnn",
    "simulate_brain",
    "write_brain",
    "run_demo",
]

#: Shape categories of the generated stimuli (label i is ``CATEGORIES[i]``).
CATEGORIES = ("disk", "ring", "square", "cross")
#: Layers of the demo network, input to output.
LAYERS = ("conv1", "conv2", "conv3", "conv4", "fc1", "fc2")
#: The layer whose principal components drive the simulated voxels.
PLANTED_LAYER = "conv3"
#: Image size of the generated stimuli.
IMAGE_SIZE = 64

# Sizes of the full demo and of ``--quick``.
_CONFIG = {
    False: dict(n_per_category=60, n_train_per_category=300, epochs=8, n_subjects=4,
                n_permutations=1000, n_components=40, n_components_probe=20, top_k=6),
    True: dict(n_per_category=30, n_train_per_category=300, epochs=6, n_subjects=3,
               n_permutations=100, n_components=40, n_components_probe=20, top_k=4),
}


# ------------------------------------------------------------------------------------------
# Stimuli
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
        u, v = dx * c[i] + dy * s[i], -dx * s[i] + dy * c[i]
        label = labels[i]
        if label == 0:  # disk
            mask = u**2 + v**2 < 1.0
        elif label == 1:  # ring
            r2 = u**2 + v**2
            mask = (r2 < 1.0) & (r2 > 0.36)
        elif label == 2:  # square
            mask = np.maximum(np.abs(u), np.abs(v)) < 0.85
        else:  # cross
            au, av = np.abs(u), np.abs(v)
            mask = ((au < 0.33) & (av < 1.0)) | ((av < 0.33) & (au < 1.0))
        picture = np.where(mask[..., None], fg[i], bg[i]) + noise[i]
        images[i] = np.clip(np.rint(picture * 255.0), 0, 255).astype(np.uint8)
    return images, labels


# ------------------------------------------------------------------------------------------
# Network
# ------------------------------------------------------------------------------------------
class ImageStandardizer:
    """Preprocessing of the demo network: RGB picture -> float tensor (3, H, W), z-scored per image.

    Standardising each picture removes its mean colour and contrast, which carry no category
    information in the generated stimuli.
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
    """The demo CNN with seeded random weights.

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

    The training pictures come from :func:`make_shapes` with a seed different from the study's
    stimuli (``seed + 10_000``), so the study never sees a training picture. Training runs on one
    thread (these small convolutions gain little from more, and lose much on a busy machine).

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


def shapes_cnn(weights="DEFAULT", random_state=None, *, quick=False):
    """Model factory of ``"shapes-cnn"``: the demo network as a :class:`ModelSpec`.

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
    import torch

    from neuroprobe.models import ModelError, ModelSpec

    seed = 0 if random_state is None else int(random_state)
    net = make_network(seed)
    if weights is None or str(weights).lower() in ("none", "random"):
        weights_id = f"random(seed={seed})"
    elif str(weights).lower() in ("trained", "default"):
        cfg = _CONFIG[bool(quick)]
        train_network(net, cfg["n_train_per_category"], cfg["epochs"], seed=seed)
        weights_id = f"trained(seed={seed}{', quick' if quick else ''})"
    elif Path(str(weights)).is_file():
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            if isinstance(state, dict):  # a checkpoint (e.g. from neuroprobe finetune)
                state = next((state[k] for k in ("state_dict", "model", "model_state_dict")
                              if isinstance(state.get(k), dict)), state)
            net.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - re-raised with the file name
            message = " ".join(str(exc).split())
            raise ModelError(f"cannot load shapes-cnn weights from {weights}: {message}") from exc
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


def _register():
    from neuroprobe.models import register_model

    register_model("shapes-cnn", shapes_cnn, modality="image")


_register()


# ------------------------------------------------------------------------------------------
# Simulated brains
# ------------------------------------------------------------------------------------------
@dataclass
class BrainSimulation:
    """Simulated responses of several subjects in one volume space.

    Attributes
    ----------
    data : list of ndarray of float32, shape (X, Y, Z, n_stimuli)
        One 4-D volume series per subject (one volume per stimulus).
    brain_mask, roi_mask : ndarray of bool, shape (X, Y, Z)
        Voxels of the brain, and of the region driven by the planted layer.
    gain : ndarray of float32, shape (X, Y, Z)
        Signal amplitude of each voxel (0 outside the region); noise has standard deviation 1.
    weights : ndarray (n_components, n_roi_voxels)
        The planted linear map (columns: ROI voxels in C order).
    affine : ndarray (4, 4)
    """

    data: list
    brain_mask: np.ndarray
    roi_mask: np.ndarray
    gain: np.ndarray
    weights: np.ndarray
    affine: np.ndarray = field(default_factory=lambda: np.diag([3.0, 3.0, 3.0, 1.0]))


def _sphere(shape, centre, radius):
    grids = np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij")
    dist = np.sqrt(sum((g - c) ** 2 for g, c in zip(grids, centre)))
    return dist, dist <= radius


def simulate_brain(features, n_subjects=4, shape=(10, 10, 10), roi_centre=(5.5, 4.5, 4.5),
                   roi_radius=3.0, max_gain=2.0, min_gain=1.0, noise=1.0, baseline=100.0,
                   seed=0):
    """Voxel responses driven by ``features`` through a planted linear map, plus noise.

    Inside a spherical region of interest, voxel ``v`` of subject ``s`` responds to stimulus
    ``i`` with ``baseline + gain_v * (z_i . w_v) + e_siv`` where ``z_i`` are the columns of
    ``features`` standardised, ``w_v`` ~ N(0, I / n_components) is shared by the subjects (so
    ``z . w`` has unit variance), ``gain`` decreases linearly from ``max_gain`` at the centre to
    ``min_gain`` at the border, and ``e`` ~ N(0, noise^2) is independent across subjects, voxels
    and stimuli. Brain voxels outside the region carry noise only.

    Parameters
    ----------
    features : ndarray (n_stimuli, n_components)
        The planted features (e.g. principal components of one layer).
    n_subjects : int
    shape : tuple of 3 int
    roi_centre : tuple of 3 float
        In voxel coordinates.
    roi_radius : float
        In voxels.
    max_gain, min_gain, noise, baseline : float
    seed : int

    Returns
    -------
    BrainSimulation
    """
    rng = np.random.default_rng(seed)
    z = np.asarray(features, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 3:
        raise ValueError(f"features must be (n_stimuli >= 3, n_components); got {z.shape}")
    z = (z - z.mean(axis=0)) / np.where(z.std(axis=0) > 0, z.std(axis=0), 1.0)
    brain_centre = [(s - 1) / 2 for s in shape]
    _, brain = _sphere(shape, brain_centre, min(shape) / 2)
    dist, roi = _sphere(shape, roi_centre, roi_radius)
    roi &= brain
    gain = np.where(roi, min_gain + (max_gain - min_gain) * (1 - dist / roi_radius), 0.0)
    n_roi = int(roi.sum())
    weights = rng.normal(0.0, 1.0 / np.sqrt(z.shape[1]), (z.shape[1], n_roi))
    signal = (z @ weights) * gain[roi]  # (n, n_roi)
    data = []
    for _ in range(int(n_subjects)):
        vol = np.zeros(tuple(shape) + (z.shape[0],), dtype=np.float32)
        vol[brain] = baseline + noise * rng.standard_normal((int(brain.sum()), z.shape[0]))
        vol[roi] += signal.T.astype(np.float32)
        data.append(vol)
    return BrainSimulation(data, brain, roi, gain.astype(np.float32), weights)


def write_brain(sim, folder):
    """Write a simulation as NIfTI files: one 4-D series per subject, the brain mask, the ROI.

    Returns
    -------
    dict
        ``subjects`` (list of paths), ``brain_mask``, ``roi`` (paths).
    """
    import nibabel as nib

    from neuroprobe._utils import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def save(array, name):
        path = folder / name
        with atomic_path(path, suffix=".nii.gz") as tmp:
            nib.save(nib.Nifti1Image(array, sim.affine), tmp)
        return path

    subjects = [save(vol, f"sub-{s + 1:02d}_responses.nii.gz") for s, vol in enumerate(sim.data)]
    return {
        "subjects": subjects,
        "brain_mask": save(sim.brain_mask.astype(np.uint8), "brain_mask.nii.gz"),
        "roi": save(sim.roi_mask.astype(np.uint8), "roi.nii.gz"),
        "gain": save(sim.gain, "planted_gain.nii.gz"),
    }


# ------------------------------------------------------------------------------------------
# The study
# ------------------------------------------------------------------------------------------
class _Log:
    """Timed progress messages (``verbose``) and the timing of each step."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.start = time.perf_counter()
        self.last = self.start
        self.timings = {}

    def step(self, name, message):
        now = time.perf_counter()
        self.timings[name] = round(now - self.last, 3)
        self.last = now
        if self.verbose:
            print(f"[{now - self.start:6.1f}s] {message}", flush=True)

    @property
    def total(self):
        return round(time.perf_counter() - self.start, 3)


def _save_stimuli(images, labels, folder):
    """Write the pictures as PNG files and return a StimulusSet of them (with category columns)."""
    from PIL import Image

    from neuroprobe.stimuli import StimulusSet

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids, paths = [], []
    for i, (image, label) in enumerate(zip(images, labels)):
        stim_id = f"{CATEGORIES[label]}_{i:03d}"
        path = folder / f"{stim_id}.png"
        Image.fromarray(image).save(path)
        ids.append(stim_id)
        paths.append(str(path))
    return StimulusSet.from_paths(
        paths, ids=ids,
        attributes={"category": np.asarray([CATEGORIES[k] for k in labels]),
                    "label": np.asarray(labels)},
    )


def _pca_pipeline(act_path, layer, n_components, seed):
    """``ActivationReader -> PCAReducer(whiten=True)``: whitened components of one layer."""
    from sklearn.pipeline import make_pipeline

    from neuroprobe.transformers import ActivationReader, PCAReducer

    return make_pipeline(ActivationReader(act_path, layer),
                         PCAReducer(n_components=n_components, whiten=True, svd_solver="full",
                                    random_state=seed))


def _encode_layers(components, Y, cv, n_permutations, seed, n_jobs):
    """Per layer: PermutationTest(VoxelwiseEncoder) -> CV score and FWE p-value of each voxel."""
    from neuroprobe.estimators import PermutationTest, VoxelwiseEncoder

    scores, pvalues = {}, {}
    for layer, X in components.items():
        test = PermutationTest(VoxelwiseEncoder(alphas=np.logspace(-1, 4, 11), cv=cv),
                               n_permutations=n_permutations, random_state=seed,
                               n_jobs=n_jobs).fit(X, Y)
        scores[layer] = np.asarray(test.score_, dtype=np.float64)
        pvalues[layer] = np.asarray(test.pvalue_fwe_, dtype=np.float64)
    return scores, pvalues


def _rsa_layers(X, slices, subject_rdms, n_permutations, seed, n_jobs):
    """Layer RDMs vs each subject's RDM (mean, SEM) and FWE p-values vs the mean subject RDM."""
    from neuroprobe.estimators import PermutationTest, RSAScorer

    scorer = RSAScorer(metric="correlation", comparison="spearman", feature_groups=slices,
                       target_rdm=subject_rdms).fit(X)
    matrix = scorer.score_matrix(X)  # (n_layers, n_subjects)
    mean = matrix.mean(axis=1)
    sem = matrix.std(axis=1, ddof=1) / np.sqrt(matrix.shape[1])
    test = PermutationTest(
        RSAScorer(metric="correlation", comparison="spearman", feature_groups=slices,
                  target_rdm=subject_rdms.mean(axis=0)),
        n_permutations=n_permutations, random_state=seed, n_jobs=n_jobs,
    ).fit(X)
    return scorer, mean, sem, np.atleast_1d(test.pvalue_fwe_)


def _recovered_layer(layers, scores, significant):
    """Layer with the highest mean encoding score over voxels significant for any layer."""
    any_sig = np.any(np.stack([significant[layer] for layer in layers]), axis=0)
    voxels = any_sig if any_sig.any() else np.ones_like(any_sig)
    means = {layer: float(np.mean(scores[layer][voxels])) for layer in layers}
    return max(layers, key=lambda layer: means[layer]), means, voxels


def run_demo(out="neuroprobe_demo", quick=False, seed=0, *, n_jobs=None, verbose=True,
             embed_images=False):
    """Run the embedded study end to end and write its report.

    Parameters
    ----------
    out : str or Path
        Output folder (created); holds ``report.md``, ``report.html``, ``figures/``, the stimuli,
        the activation file, the simulated NIfTI files and the result maps.
    quick : bool
        Fewer stimuli, subjects and permutations, shorter training (about 4x faster).
    seed : int
        Seed of everything (stimuli, network, simulation, CV splits, permutations).
    n_jobs : int, optional
        Parallel permutation chunks (joblib).
    verbose : bool
        Print progress and the summary.
    embed_images : bool
        Embed the figures in the HTML report.

    Notes
    -----
    The arrays of the demo are small, so BLAS and torch run on one thread (more threads only add
    overhead here, and on a busy machine oversubscription slows them down many times);
    ``n_jobs`` runs permutation chunks in parallel processes.

    Returns
    -------
    dict
        ``planted_layer``, ``recovered_layer`` (encoding), ``rsa_best_layer``,
        ``decoding_best_layer``, ``layers``, ``decoding_accuracy`` / ``encoding_score`` /
        ``encoding_n_significant`` / ``rsa_score`` / ``rsa_pvalue_fwe`` (dicts layer -> value),
        ``noise_ceiling`` (lower, upper), ``n_stimuli``, ``n_voxels``, ``n_roi_voxels``,
        ``n_responsive_voxels`` (significant for at least one layer; the encoding profile
        averages over them),
        ``roi_recall`` (fraction of ROI voxels significant for the recovered layer),
        ``false_positive_voxels`` (significant voxels outside the ROI), ``top_stimuli``,
        ``paths`` (report, figures, data files), ``timings`` (seconds per step), ``seconds``,
        ``summary`` (the printed text).
    """
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            return _run_study(out, quick, seed, n_jobs, verbose, embed_images)
    finally:
        torch.set_num_threads(threads)


def _run_study(out, quick, seed, n_jobs, verbose, embed_images):
    import torch
    from sklearn.model_selection import KFold

    from neuroprobe import plotting
    from neuroprobe._utils import atomic_path
    from neuroprobe.inspect import saliency, top_stimuli
    from neuroprobe.io.activations import open_activations
    from neuroprobe.report import Section, write_report
    from neuroprobe.rsa import compute_rdm, noise_ceiling
    from neuroprobe.transformers import BrainMasker, DNNFeatureExtractor

    cfg = _CONFIG[bool(quick)]
    seed = int(seed)
    out = Path(out).absolute()  # the returned paths stay valid if the caller changes directory
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    log = _Log(verbose)
    layers = list(LAYERS)
    result = {"planted_layer": PLANTED_LAYER, "layers": layers, "quick": bool(quick), "seed": seed}
    paths = {}

    # 1. stimuli -----------------------------------------------------------------------
    images, labels = make_shapes(cfg["n_per_category"], seed=seed)
    stimuli = _save_stimuli(images, labels, out / "stimuli")
    stimuli.write_csv(out / "stimuli.csv")
    paths["stimuli"] = out / "stimuli.csv"
    n = len(stimuli)
    log.step("stimuli", f"generated {n} pictures of {len(CATEGORIES)} shape categories "
                        f"({', '.join(CATEGORIES)})")

    # 2. network ------------------------------------------------------------------------
    spec = shapes_cnn("trained", seed, quick=quick)
    paths["weights"] = out / "shapes_cnn.pt"
    torch.save(spec.module.state_dict(), paths["weights"])
    log.step("network", f"trained the demo CNN ({', '.join(layers)}) on "
                        f"{cfg['n_train_per_category'] * len(CATEGORIES)} other generated pictures")

    # 3. extract every layer once -------------------------------------------------------
    act_path = out / "activations.act.h5"
    if act_path.exists():
        act_path.unlink()
    extractor = DNNFeatureExtractor(spec, layers=layers, batch_size=64)
    extractor.fit(stimuli)
    extractor.extract_to_file(stimuli, act_path)
    paths["activations"] = act_path
    with open_activations(act_path) as f:
        shapes = {layer: tuple(f.shape(layer)[1:]) for layer in layers}
    log.step("extract", f"extracted {len(layers)} layers in one pass -> {act_path.name}")

    # 4. PCA per layer (whitened components) ----------------------------------------------
    comps = {}
    for layer in layers:
        pipe = _pca_pipeline(act_path, layer, min(cfg["n_components"], int(np.prod(shapes[layer]))),
                             seed)
        comps[layer] = pipe.fit_transform(stimuli.ids).astype(np.float32)
    X_all = np.hstack([comps[layer] for layer in layers])
    slices, start = {}, 0
    for layer in layers:
        slices[layer] = slice(start, start + comps[layer].shape[1])
        start += comps[layer].shape[1]
    log.step("pca", f"PCA per layer: up to {cfg['n_components']} whitened components each")

    # 5. simulated brains, written as NIfTI and read back ---------------------------------
    sim = simulate_brain(comps[PLANTED_LAYER], n_subjects=cfg["n_subjects"], seed=seed + 1)
    brain_files = write_brain(sim, out / "brain")
    paths.update({f"brain_{k}": v for k, v in brain_files.items() if k != "subjects"})
    paths["brain_subjects"] = brain_files["subjects"]
    masker = BrainMasker(brain_files["brain_mask"]).fit()
    roi_masker = BrainMasker(brain_files["roi"]).fit()
    Y_subjects = [masker.transform(p) for p in brain_files["subjects"]]
    Y = np.mean(Y_subjects, axis=0)
    roi_subjects = [roi_masker.transform(p) for p in brain_files["subjects"]]
    roi_cols = np.isin(masker.columns_, roi_masker.columns_)
    log.step("brain", f"simulated {cfg['n_subjects']} subjects: {masker.n_voxels_} brain voxels, "
                      f"{int(roi_cols.sum())} driven by {PLANTED_LAYER} (NIfTI, read back with "
                      "BrainMasker)")

    # 6. probe the categories per layer ---------------------------------------------------
    cv = KFold(5, shuffle=True, random_state=seed)
    decoding, decoding_sd = _probe(act_path, labels, layers, cfg["n_components_probe"], seed,
                                   n_jobs)
    chance = 1.0 / len(CATEGORIES)
    log.step("probe", "decoding accuracy: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                        decoding.items()))

    # 7. voxelwise encoding per layer with permutation p-values (FWE over voxels) ---------
    enc_score, enc_p = _encode_layers(comps, Y, cv, cfg["n_permutations"], seed, n_jobs)
    enc_sig = {layer: p < 0.05 for layer, p in enc_p.items()}
    recovered, enc_mean, responsive = _recovered_layer(layers, enc_score, enc_sig)
    log.step("encode", "encoding (mean r over responsive voxels): "
             + ", ".join(f"{k} {v:.2f}" for k, v in enc_mean.items()))
    maps_dir = out / "maps"
    maps_dir.mkdir(exist_ok=True)
    for layer in layers:
        masker.inverse_transform(enc_score[layer].astype(np.float32)).to_filename(
            maps_dir / f"encoding_r_{layer}.nii.gz")
        masker.inverse_transform(  # NaN outside the ROI: no "significant" voxel out there
            enc_p[layer].astype(np.float32), fill=np.nan,
            description="neuroprobe demo: FWE p (max-stat); NaN=outside the ROI",
        ).to_filename(maps_dir / f"encoding_pfwe_{layer}.nii.gz")
    paths["maps"] = maps_dir

    # 8. RSA per layer against the subjects' ROI RDMs, with a noise ceiling ---------------
    subject_rdms = compute_rdm(roi_subjects, "correlation")
    ceiling = noise_ceiling(subject_rdms, "spearman")
    scorer, rsa_mean, rsa_sem, rsa_p = _rsa_layers(X_all, slices, subject_rdms,
                                                   cfg["n_permutations"], seed, n_jobs)
    rsa_best = layers[int(np.argmax(rsa_mean))]
    log.step("rsa", "RSA (mean Spearman over subjects): "
             + ", ".join(f"{k} {v:.2f}" for k, v in zip(layers, rsa_mean))
             + f"; noise ceiling [{ceiling.lower:.2f}, {ceiling.upper:.2f}]")

    # 9. top stimuli and saliency of a few units of the recovered layer -------------------
    with open_activations(act_path) as f:
        acts = f.read(recovered)
    unit_axis = tuple(range(2, acts.ndim))
    channel_var = (acts.max(axis=unit_axis) if unit_axis else acts).var(axis=0)
    units = sorted(np.argsort(channel_var)[::-1][:3].tolist())
    top = top_stimuli(act_path, stimuli, layer=recovered, units=units, k=cfg["top_k"],
                      metric="max")
    best = [int(top.indices[u, 0]) for u in range(len(units))]
    sal = np.concatenate([
        saliency(spec, images[[i]], (recovered, int(c)), method="guided")
        for i, c in zip(best, units)
    ])
    log.step("inspect", f"top stimuli and saliency of {recovered} units {units}")

    # 10. figures --------------------------------------------------------------------------
    figs = {}

    def fig(name, figure):
        figs[name] = plotting.save_figure(figure, figures / f"{name}.png")

    examples = [np.flatnonzero(labels == k)[:6] for k in range(len(CATEGORIES))]
    fig("stimuli", plotting.plot_top_stimuli(
        images[np.stack(examples)], unit_labels=list(CATEGORIES),
        ids=np.asarray(stimuli.ids)[np.stack(examples)]))
    fig("decoding", plotting.plot_layer_profile(
        layers, [decoding[k] for k in layers], errors=[decoding_sd[k] for k in layers],
        chance=chance, highlight=PLANTED_LAYER,
        ylabel="decoding accuracy", title="Category decoding by layer"))
    fig("encoding", plotting.plot_layer_profile(
        layers, [enc_mean[k] for k in layers], highlight=PLANTED_LAYER,
        ylabel="mean CV correlation", title="Voxelwise encoding by layer"))
    r_img = masker.inverse_transform(enc_score[recovered].astype(np.float32))
    sig_img = masker.inverse_transform(enc_sig[recovered].astype(np.float32))
    centre = int(round(np.mean(np.nonzero(sim.roi_mask)[2])))
    fig("encoding_map", plotting.plot_volume_slices(
        r_img, axis=2, slices=[max(0, centre - 2), centre, min(sim.roi_mask.shape[2] - 1,
                                                                 centre + 2)],
        outline=np.asarray(sig_img.dataobj) > 0.5, vmin=0, vmax=1,
        title=f"Encoding accuracy of {recovered} (cyan: FWE p < 0.05)",
        colorbar_label="CV correlation"))
    order = np.argsort(labels, kind="stable")
    rdms = {"brain (mean of subjects)": subject_rdms.mean(axis=0)}
    rdms.update({layer: scorer.model_rdms_[i] for i, layer in enumerate(layers)})
    fig("rdms", plotting.plot_rdm_grid(rdms, order=order, ncols=4,
                                       title="RDMs (stimuli sorted by category; rank scaled)"))
    fig("rsa", plotting.plot_rsa_profile(
        layers, rsa_mean, ceiling=ceiling, errors=rsa_sem, pvalues=rsa_p, highlight=PLANTED_LAYER,
        ylabel="Spearman correlation", title="RSA by layer against the noise ceiling"))
    fig("top_stimuli", plotting.plot_top_stimuli(
        images[top.indices], values=top.values,
        unit_labels=[f"{recovered}:{u}" for u in top.units]))
    fig("saliency", plotting.plot_saliency(
        images[best], sal, titles=[f"{recovered}:{u} top stimulus" for u in top.units]))
    paths["figures"] = figs
    log.step("figures", f"{len(figs)} figures in {figures}")

    # 11. summary and report ----------------------------------------------------------------
    decoding_best = max(layers, key=lambda k: decoding[k])
    roi_recall = float(np.mean(enc_sig[recovered][roi_cols])) if roi_cols.any() else 0.0
    false_pos = int(np.sum(enc_sig[recovered][~roi_cols]))
    ok = recovered == PLANTED_LAYER
    summary_lines = [
        f"Recovered layer: {recovered} (planted: {PLANTED_LAYER}) -- "
        + ("the study found the planted layer." if ok else "MISMATCH with the planted layer."),
        f"Encoding: {recovered} explains the voxels best (mean CV r {enc_mean[recovered]:.2f}); "
        f"{int(enc_sig[recovered].sum())} voxels significant (FWE p < 0.05), "
        f"{roi_recall:.0%} of the {int(roi_cols.sum())} ROI voxels, {false_pos} outside.",
        f"RSA: best layer {rsa_best} (Spearman {rsa_mean.max():.2f}, FWE p "
        f"{rsa_p[int(np.argmax(rsa_mean))]:.3g}); noise ceiling [{ceiling.lower:.2f}, "
        f"{ceiling.upper:.2f}].",
        f"Decoding: categories are best decoded from {decoding_best} "
        f"({decoding[decoding_best]:.2f}, chance {chance:.2f}).",
    ]
    summary = "\n".join(summary_lines)
    result.update(
        recovered_layer=recovered,
        rsa_best_layer=rsa_best,
        decoding_best_layer=decoding_best,
        decoding_accuracy=decoding,
        encoding_score=enc_mean,
        encoding_n_significant={k: int(v.sum()) for k, v in enc_sig.items()},
        rsa_score=dict(zip(layers, rsa_mean.tolist())),
        rsa_pvalue_fwe=dict(zip(layers, rsa_p.tolist())),
        noise_ceiling=(float(ceiling.lower), float(ceiling.upper)),
        n_stimuli=n,
        n_voxels=int(masker.n_voxels_),
        n_roi_voxels=int(roi_cols.sum()),
        n_responsive_voxels=int(responsive.sum()),
        roi_recall=roi_recall,
        false_positive_voxels=false_pos,
        top_stimuli={"layer": recovered, "units": list(top.units),
                     "ids": top.ids.tolist(), "values": top.values.tolist()},
        summary=summary,
    )
    sections = _report_sections(result, cfg, figs, out, Section)
    report = write_report(out, "neuroprobe demo study", sections, summary=summary,
                          embed_images=embed_images)
    paths["report_markdown"], paths["report_html"] = report["markdown"], report["html"]
    result["paths"] = paths
    log.step("report", f"report: {report['html']}")
    result["timings"] = dict(log.timings)
    result["seconds"] = log.total
    with atomic_path(out / "results.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(_jsonable(result), indent=2))
    if verbose:
        print(summary, flush=True)
    return result


def _probe(act_path, labels, layers, n_components, seed, n_jobs):
    """Category decoding per layer: probe_layers on the raw activations, PCA inside each fold."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from neuroprobe.probing import probe_layers
    from neuroprobe.transformers import PCAReducer

    # a full SVD of these short, wide matrices (n_stimuli x up to 8192) is faster than the
    # randomized solver that "auto" picks for them
    estimator = make_pipeline(
        PCAReducer(n_components=n_components, svd_solver="full", random_state=seed),
        StandardScaler(), LogisticRegression(max_iter=1000))
    table = probe_layers(str(act_path), labels, layers=list(layers), estimator=estimator, cv=5,
                         random_state=seed, n_jobs=n_jobs)
    return ({layer: float(table.loc[layer, "mean_score"]) for layer in layers},
            {layer: float(table.loc[layer, "std_score"]) for layer in layers})


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _cli_equivalents(result):
    """The command lines doing the steps of the study on the demo's files (run in ``out``)."""
    layer = result["recovered_layer"]
    layers = " ".join(result["layers"])
    return "\n".join([
        f"neuroprobe demo --out . --seed {result['seed']}"
        + (" --quick" if result["quick"] else ""),
        "neuroprobe layers --model shapes-cnn --weights shapes_cnn.pt",
        f"neuroprobe extract --model shapes-cnn --weights shapes_cnn.pt --layers {layers} "
        "--stimuli stimuli.csv --out activations.act.h5",
        "neuroprobe info activations.act.h5",
        "neuroprobe probe activations.act.h5 --labels stimuli.csv:category --out probe.csv",
        f"neuroprobe encode activations.act.h5 --layer {layer} "
        "--targets brain/sub-01_responses.nii.gz --mask brain/brain_mask.nii.gz "
        f"--target-ids stimuli.csv --out {layer}_r.nii.gz",
        "neuroprobe roi brain/sub-01_responses.nii.gz --mask brain/roi.nii.gz "
        "--ids stimuli.csv --out roi.h5",
        "neuroprobe decode brain/sub-01_responses.nii.gz --mask brain/roi.nii.gz "
        "--ids stimuli.csv --labels stimuli.csv:category --out decode.csv",
        f"neuroprobe rdm activations.act.h5 --layer {layer} --out dnn.rdm.h5",
        "neuroprobe rdm roi.h5 --out roi.rdm.h5",
        "neuroprobe rsa --model dnn.rdm.h5 --target roi.rdm.h5 --n-permutations 1000 "
        "--out rsa.csv",
        f"neuroprobe topstim --activations activations.act.h5 --layer {layer} "
        "--stimuli stimuli.csv --out topstim/",
        f"neuroprobe saliency --model shapes-cnn --weights shapes_cnn.pt --layer {layer} "
        "--channels 0 --stimuli stimuli/ --out saliency/",
    ])


def _report_sections(result, cfg, figs, out, Section):
    layers = result["layers"]
    planted = result["planted_layer"]

    def rel(name):
        return Path(figs[name]).relative_to(out).as_posix()

    n_cat = len(CATEGORIES)
    sections = [
        Section(
            "Study design",
            [
                f"{result['n_stimuli']} generated pictures ({cfg['n_per_category']} per category: "
                f"{', '.join(CATEGORIES)}; 64x64 RGB, random position, size, orientation, colours "
                "and pixel noise) went through a small CNN trained for a few seconds on other "
                f"generated pictures. Every layer ({', '.join(layers)}) was extracted once to "
                "`activations.act.h5` and reduced to "
                f"{cfg['n_components']} whitened principal components (PCAReducer).",
                f"Simulated fMRI: {cfg['n_subjects']} subjects, a 10x10x10 volume with "
                f"{result['n_voxels']} brain voxels; the {result['n_roi_voxels']} voxels of a "
                "spherical region of interest respond to the principal components of "
                f"{planted} through a planted linear map (shared by the subjects) plus "
                "independent Gaussian noise; the other voxels carry noise only. The volumes were "
                "written as 4-D NIfTI files (`brain/`) and read back with BrainMasker. The study "
                "below does not know which layer was planted: it must find it.",
            ],
            figures=[(rel("stimuli"), "Examples of the generated stimuli, one row per category")],
        ),
        Section(
            "Decoding the categories by layer",
            f"PCA ({cfg['n_components_probe']} components, fitted inside each training fold) and "
            "multinomial logistic regression on each layer's activations, 5-fold cross-validated "
            f"accuracy (chance {1 / n_cat:.2f}). Category information grows with depth; the brain "
            "region, however, follows an intermediate layer.",
            figures=[(rel("decoding"), "Decoding accuracy by layer (shaded: planted layer)")],
            table=(["layer", "accuracy"], [[k, result["decoding_accuracy"][k]] for k in layers]),
        ),
        Section(
            "Voxelwise encoding by layer",
            f"Ridge regression per voxel (VoxelwiseEncoder, alphas chosen per voxel by 5-fold CV) "
            f"from each layer's components to the subject-averaged responses; statistic: "
            "cross-validated correlation at each voxel's best alpha (the same statistic on "
            f"permuted data gives the null); p-values from {cfg['n_permutations']} permutations of "
            "the stimuli (PermutationTest), family-wise over voxels (max statistic). The layer "
            "profile averages over the voxels significant for at least one layer. Maps of every "
            "layer are in `maps/` (NIfTI, via BrainMasker.inverse_transform).",
            figures=[
                (rel("encoding"), "Mean cross-validated correlation by layer"),
                (rel("encoding_map"),
                 f"Encoding accuracy of {result['recovered_layer']}: axial slices of the "
                 "NIfTI map"),
            ],
            table=(["layer", "mean r", "significant voxels"],
                   [[k, result["encoding_score"][k], result["encoding_n_significant"][k]]
                    for k in layers]),
        ),
        Section(
            "Representational similarity by layer",
            "Correlation-distance RDMs of each layer's components and of each subject's ROI "
            "voxels; Spearman correlation of each layer RDM with each subject RDM (bars: mean "
            "and standard error over subjects); grey band: noise ceiling (lower: leave one "
            "subject out, upper: all subjects); stars: family-wise p < 0.05 over layers from "
            f"{cfg['n_permutations']} stimulus permutations of the subject-averaged RDM.",
            figures=[(rel("rdms"), "RDMs of the brain region and of every layer"),
                     (rel("rsa"), "RSA by layer against the noise ceiling")],
            table=(["layer", "Spearman (mean)", "p (FWE)"],
                   [[k, result["rsa_score"][k], result["rsa_pvalue_fwe"][k]] for k in layers]),
        ),
        Section(
            "Inside the recovered layer: top stimuli and saliency",
            f"The {cfg['top_k']} stimuli that drive three units (channels, maximum over space) "
            f"of {result['recovered_layer']} most, and guided-backpropagation saliency of each "
            "unit for its top stimulus.",
            figures=[(rel("top_stimuli"), "Top stimuli per unit (value: activation)"),
                     (rel("saliency"), "Saliency of each unit for its top stimulus")],
        ),
        Section(
            "Files",
            "`stimuli.csv` and `stimuli/` (the pictures), `shapes_cnn.pt` (trained weights), "
            "`activations.act.h5` (every layer), `brain/` (simulated NIfTI series, brain mask, "
            "ROI, planted gain), `maps/` (per-layer encoding accuracy and FWE p-value maps), "
            "`results.json` (all numbers of this report), `figures/`. The same study can be run "
            "step by step without programming with the commands below (from this folder).",
            code=_cli_equivalents(result),
        ),
    ]
    return sections
