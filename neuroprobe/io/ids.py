"""Stimulus identity: one helper that aligns two sources by their stimulus IDs, and ID readers.

Every place where two per-stimulus data meet (an RDM with another RDM, activations with brain
responses, a label table with activations, a fixed RDM with the rows of a cross-validation fold)
calls :func:`align_ids`, so all of them reorder the same way and refuse the same way.

IDs for plain arrays are given with :func:`read_ids`: ``FILE.npy``, ``FILE.npz:KEY``,
``FILE.h5:DATASET``, ``FILE.txt`` (one ID per line), ``FILE.csv[:COLUMN]`` or a BIDS-style
``FILE.tsv[:COLUMN]`` events file (default column ``stim_id``; e.g. ``events.tsv:stim_file``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

__all__ = ["align_ids", "as_ids", "read_ids", "IDS_KEY"]

#: name of the stimulus-ID array in ``.npz`` / ``.h5`` files (targets, RDMs, reductions)
IDS_KEY = "stim_ids"


def as_ids(ids, what="ids"):
    """IDs as a 1-D array of str (``ValueError`` for other shapes or duplicates)."""
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D (one ID per stimulus); got shape {arr.shape}")
    arr = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in arr.tolist()],
                   dtype=str if arr.size else "<U1")
    uniq, counts = np.unique(arr, return_counts=True)
    if uniq.size != arr.size:
        raise ValueError(f"{what} has duplicate stimulus IDs (first: {str(uniq[counts > 1][0])!r})")
    return arr


def align_ids(reference_ids, other_ids, what="other", reference="reference", *, subset=False):
    """Index that puts the rows of ``other`` into the order of ``reference``.

    ``other[index]`` has its rows in the order of ``reference_ids``. IDs are compared as strings.

    Parameters
    ----------
    reference_ids : sequence
        IDs of the reference source (the order to follow).
    other_ids : sequence
        IDs of the rows of the other source.
    what, reference : str
        Names of the two sources in error messages (e.g. ``"--target"`` and ``"--model"``).
    subset : bool, default=False
        Allow ``other`` to hold more stimuli than ``reference`` (a lookup table, a full RDM for
        the rows of a fold); the IDs of ``reference`` must all be in ``other``. With
        ``subset=False`` the two sets must be equal.

    Returns
    -------
    index : ndarray of int of shape (len(reference_ids),)

    Raises
    ------
    ValueError
        Duplicate IDs, or different stimulus sets; the message names the first mismatching IDs.

    Examples
    --------
    >>> align_ids(["a", "b", "c"], ["c", "a", "b"])
    array([1, 2, 0])
    """
    ref = as_ids(reference_ids, f"{reference} IDs")
    oth = as_ids(other_ids, f"{what} IDs")
    position = {s: i for i, s in enumerate(oth.tolist())}
    missing = [s for s in ref.tolist() if s not in position]
    in_ref = set(ref.tolist())
    extra = [] if subset else [s for s in oth.tolist() if s not in in_ref]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} stimuli of {reference} are not in {what} "
                         f"(first: {missing[0]!r})")
        if extra:
            parts.append(f"{len(extra)} stimuli of {what} are not in {reference} "
                         f"(first: {extra[0]!r})")
        raise ValueError(
            f"stimulus IDs differ between {reference} ({ref.size} stimuli) and {what} "
            f"({oth.size}): " + "; ".join(parts)
        )
    return np.fromiter((position[s] for s in ref.tolist()), dtype=np.intp, count=ref.size)


def _split(spec):
    text = str(spec)
    if Path(text).exists():
        return Path(text), None
    if ":" in text:
        path, key = text.rsplit(":", 1)
        return Path(path), key or None
    return Path(text), None


def read_ids(spec, what="--ids"):
    """Stimulus IDs from a ``.npy``, ``.npz:KEY``, ``.h5:DATASET``, ``.txt`` or table file.

    ``.npz`` / ``.h5`` default to the key ``stim_ids``; ``.csv`` / ``.tsv`` (e.g. a BIDS
    ``events.tsv``) to the column ``stim_id``.

    Returns
    -------
    ndarray of str
    """
    path, key = _split(spec)
    if not path.exists():
        raise FileNotFoundError(f"{what}: file not found: {path}")
    name = path.name.lower()
    if name.endswith(".npy"):
        values = np.load(path, allow_pickle=False)
    elif name.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            key = key or IDS_KEY
            if key not in z.files:
                raise KeyError(f"{what}: {path} has no array {key!r}; arrays: {z.files}")
            values = z[key]
    elif name.endswith((".h5", ".hdf5")):
        import h5py

        with h5py.File(path, "r") as f:
            key = key or IDS_KEY
            if key not in f:
                raise KeyError(f"{what}: {path} has no dataset {key!r}; datasets: {list(f)}")
            values = f[key][()]
    elif name.endswith(".txt"):
        values = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    elif name.endswith((".csv", ".tsv")):
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t" if name.endswith(".tsv") else ","))
        columns = list(rows[0]) if rows else []
        key = key or "stim_id"
        if key not in columns:
            raise KeyError(f"{what}: {path} has no column {key!r}; give FILE:COLUMN, columns: "
                           f"{', '.join(columns)}")
        values = [r[key] for r in rows]
    else:
        raise ValueError(f"{what}: expected .npy, .npz[:KEY], .h5[:DATASET], .txt, "
                         f".csv[:COLUMN] or .tsv[:COLUMN]; got {path}")
    return as_ids(values, f"{what} ({path})")
