"""Minimal stimuli: the smallest set of image parcels that keeps a unit's response."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from neuroprobe.inspect.units import check_metric, fill_doc, prepare_inspection

__all__ = ["MinimalStimulus", "minimal_stimulus", "parcellate"]


@dataclass
class MinimalStimulus:
    """Result of :func:`minimal_stimulus`.

    Attributes
    ----------
    input : ndarray (C, H, W)
        The minimal stimulus (removed parcels filled), in the model's input space.
    mask : ndarray of bool (H, W)
        Pixels kept.
    segments : ndarray of int (H, W)
        Parcel label of every pixel.
    kept : ndarray of int
        Labels of the kept parcels.
    original : float
        The unit's value for the whole image.
    response : float
        Its value for the minimal stimulus.
    trace : ndarray
        Value after each greedy removal (starting with ``original``).
    """

    input: np.ndarray
    mask: np.ndarray
    segments: np.ndarray
    kept: np.ndarray
    original: float
    response: float
    trace: np.ndarray


def _grid(h, w, n_segments):
    side = max(1, int(round(np.sqrt(n_segments))))
    ys = np.minimum((np.arange(h) * side) // h, side - 1)
    xs = np.minimum((np.arange(w) * side) // w, side - 1)
    return (ys[:, None] * side + xs[None, :]).astype(np.int64)


def parcellate(image, n_segments=50, method="auto", compactness=10.0):
    """Split an image ``(H, W, C)`` into parcels; return int labels ``(H, W)`` from 0.

    Parameters
    ----------
    image : ndarray (H, W, C)
    n_segments : int
        Approximate number of parcels.
    method : {"auto", "slic", "grid"}
        ``slic``: scikit-image SLIC superpixels (Achanta et al. 2012; ``pip install
        scikit-image``); ``grid``: square tiles; ``auto``: SLIC when scikit-image is installed.
    compactness : float
        SLIC trade-off between colour similarity and spatial proximity.
    """
    image = np.asarray(image, dtype=np.float64)
    h, w = image.shape[:2]
    if method == "auto":
        try:
            import skimage.segmentation  # noqa: F401

            method = "slic"
        except ImportError:
            method = "grid"
    if method == "grid":
        labels = _grid(h, w, n_segments)
    elif method == "slic":
        try:
            from skimage.segmentation import slic
        except ImportError as exc:
            raise ImportError(
                "method='slic' needs scikit-image: pip install 'neuroprobe[inspect]' "
                "(or use method='grid')"
            ) from exc
        lo, hi = image.min(), image.max()
        scaled = (image - lo) / max(hi - lo, 1e-12)
        labels = slic(scaled, n_segments=n_segments, compactness=compactness, start_label=0,
                      channel_axis=-1)
        if len(np.unique(labels)) < max(2, n_segments // 4):
            # SLIC merges everything on texture-less noise; tiles are more useful there
            warnings.warn(
                f"SLIC found {len(np.unique(labels))} superpixel(s) for n_segments={n_segments}; "
                "using a grid parcellation instead",
                stacklevel=2,
            )
            labels = _grid(h, w, n_segments)
    else:
        raise ValueError(f"method must be 'auto', 'slic' or 'grid', got {method!r}")
    _, labels = np.unique(labels, return_inverse=True)
    return labels.reshape(h, w).astype(np.int64)


_TIE_RTOL = 1e-5  # candidate values closer than this (relative) are ties


@fill_doc
def minimal_stimulus(
    model,
    image,
    target,
    *,
    n_segments=30,
    method="auto",
    threshold=0.9,
    fill=0.0,
    batch_size=64,
    metric="mean",
    weights="DEFAULT",
    random_state=None,
    device="cpu",
):
    """Greedily remove image parcels while the unit keeps its response.

    The image is split into parcels (superpixels). At each step, every remaining parcel is tried
    for removal (all candidates in batched forward passes) and the one whose removal keeps the
    value highest is removed, as long as the value stays ``>= threshold * original``. Values
    within a relative 1e-5 of the highest are ties, broken by the parcel label (the lowest
    goes first), so that float32 rounding in different batch compositions cannot change the
    path.

    With a list of targets, the candidates of every target go through shared forward passes and
    every forward pass computes the values of **all** targets: a parcel set evaluated for one
    target is never evaluated again for another (targets whose greedy paths coincide cost what
    one target costs; the first step is always shared).

    Parameters
    ----------
    %(model)s
    image : path, PIL image, uint8 array or float tensor
        One image.
    target : tuple or str, or list of those
        ``(layer, channel)`` or ``(layer, channel, row, col)``; its value for the image must be
        positive.
    n_segments : int
        Approximate number of parcels.
    method : {"auto", "slic", "grid"}
        Parcellation (see :func:`parcellate`).
    threshold : float
        Fraction of the original value to keep.
    fill : float
        Value of removed pixels in the model's input space (0: dataset mean after normalisation).
    batch_size : int
        Candidate images per forward pass.
    metric : {"mean", "max"}
        A channel target's value: the spatial mean (default) or max of its map.
    %(weights)s
    %(device)s

    Returns
    -------
    MinimalStimulus, or a list of them (one per target) for a list of targets
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    check_metric(metric)
    job = prepare_inspection(model, image, target, caller="minimal_stimulus", weights=weights,
                             random_state=random_state, device=device)
    if len(job.x) != 1:
        raise ValueError(f"minimal_stimulus takes one image, got {len(job.x)}")
    x = job.x.to(job.device)
    segments = parcellate(x[0].permute(1, 2, 0).cpu().numpy(), n_segments, method)
    parcels = _Parcels(job, x, segments, fill, metric, batch_size)
    with torch.no_grad():
        originals = parcels.originals()
        kept, traces = _prune(parcels, originals, threshold)
        results = [parcels.result(kept[k], traces[k]) for k in range(len(job.units))]
    return results[0] if job.single else results


class _Parcels:
    """One image cut into parcels, and the unit values of the image with parcels kept.

    Values are cached per set of kept parcels (a frozenset) and computed in shared batched
    forward passes (every unit from one pass).
    """

    def __init__(self, job, x, segments, fill, metric, batch_size):
        self.job, self.x, self.segments = job, x, segments
        self.metric, self.batch_size = metric, batch_size
        self.n = int(segments.max()) + 1
        seg_t = torch.from_numpy(segments).to(job.device)
        self.onehot = torch.stack([seg_t == p for p in range(self.n)])  # (P, H, W)
        self.fill = torch.as_tensor(float(fill), device=job.device)
        self.cache = {}  # frozenset of kept parcels -> values of every unit (n_units,)

    def evaluate(self, parcel_sets):
        """Fill the cache for the parcel sets not yet evaluated (shared forward passes)."""
        todo = list(dict.fromkeys(k for k in parcel_sets if k not in self.cache))
        for s in range(0, len(todo), self.batch_size):
            chunk = todo[s : s + self.batch_size]
            keep = torch.stack([self.onehot[sorted(k)].any(0) for k in chunk])[:, None]
            vals = self.job.probe.multi_values(torch.where(keep, self.x, self.fill),
                                               self.job.units, self.metric).cpu()
            for k, v in zip(chunk, vals):
                self.cache[k] = v

    def originals(self):
        """Values of the whole image per unit; raise unless every one is positive."""
        full = frozenset(range(self.n))
        self.evaluate([full])
        originals = [float(v) for v in self.cache[full]]
        for t, original in zip(self.job.units, originals):
            if original <= 0:
                raise ValueError(
                    f"the value of {t.label} for this image is {original:.4g} <= 0; a minimal "
                    "stimulus needs a positive response"
                )
        return originals

    def result(self, kept, trace):
        """The :class:`MinimalStimulus` of the kept parcels and the trace of one unit."""
        mask = self.onehot[kept].any(0)
        minimal = torch.where(mask[None], self.x[0], self.fill)
        return MinimalStimulus(
            input=minimal.cpu().numpy().astype(np.float32),
            mask=mask.cpu().numpy(),
            segments=self.segments,
            kept=np.asarray(kept, dtype=np.int64),
            original=trace[0],
            response=trace[-1],
            trace=np.asarray(trace),
        )


def _best_removal(vals, original):
    """Index of the candidate with the largest value (ties: the first)."""
    # ties (removing a parcel outside the unit's receptive field changes nothing) go to the
    # first remaining parcel whatever the float32 rounding of the batch the values came from:
    # "equal" is within _TIE_RTOL of the largest value
    top = float(vals.max())
    tol = _TIE_RTOL * max(float(vals.abs().max()), abs(original))
    return int(torch.nonzero(vals >= top - tol)[0, 0])


def _prune(parcels, originals, threshold):
    """Greedily remove parcels per unit; return the kept parcels and value traces per unit."""
    n_units = len(originals)
    kept = [list(range(parcels.n)) for _ in range(n_units)]
    traces = [[o] for o in originals]
    active = [parcels.n > 1 for _ in range(n_units)]
    while any(active):
        candidates = {
            k: [frozenset(kept[k]) - {p} for p in kept[k]]
            for k in range(n_units) if active[k]
        }
        parcels.evaluate([c for cands in candidates.values() for c in cands])
        for k, cands in candidates.items():
            vals = torch.stack([parcels.cache[c][k] for c in cands]).double()
            best = _best_removal(vals, originals[k])
            if float(vals[best]) < threshold * originals[k]:
                active[k] = False
                continue
            traces[k].append(float(vals[best]))
            kept[k].pop(best)
            active[k] = len(kept[k]) > 1
    return kept, traces
