"""The demo's data: generated stimuli and simulated brains (volumes written as NIfTI).

:func:`make_shapes` is the generator of :mod:`neuroprobe.models.shapes_cnn` (the same pictures
train the demo network), re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuroprobe.models.shapes_cnn import CATEGORIES, IMAGE_SIZE, make_shapes

__all__ = ["CATEGORIES", "IMAGE_SIZE", "BrainSimulation", "make_shapes", "simulate_brain",
           "write_brain", "save_stimuli"]


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


def save_stimuli(images, labels, folder):
    """Write the pictures as PNG files (atomically) and return a StimulusSet of them.

    The StimulusSet has the columns ``category`` (name) and ``label`` (index); IDs are
    ``<category>_<index>``.
    """
    from PIL import Image

    from neuroprobe._utils import atomic_path
    from neuroprobe.stimuli import StimulusSet

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids, paths = [], []
    for i, (image, label) in enumerate(zip(images, labels)):
        stim_id = f"{CATEGORIES[label]}_{i:03d}"
        path = folder / f"{stim_id}.png"
        with atomic_path(path, suffix=".png") as tmp:
            Image.fromarray(image).save(tmp, format="PNG")
        ids.append(stim_id)
        paths.append(str(path))
    return StimulusSet.from_paths(
        paths, ids=ids,
        attributes={"category": np.asarray([CATEGORIES[k] for k in labels]),
                    "label": np.asarray(labels)},
    )
