"""Neighbourhoods: the members of every searchlight, as one sparse (CSR) table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Neighbourhoods:
    """Searchlight centres and their members.

    Attributes
    ----------
    centers : ndarray of shape (n_centers,)
        Index of every centre (flat voxel index of the volume, or vertex index).
    indptr, indices : ndarray
        CSR table: the members of centre ``c`` are ``indices[indptr[c]:indptr[c + 1]]``
        (same index space as ``centers``), sorted.
    shape : tuple
        Volume shape, or ``(n_vertices,)``.
    """

    centers: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    shape: tuple

    def __len__(self):
        return self.centers.size

    @property
    def sizes(self):
        """Number of members of every centre."""
        return np.diff(self.indptr)

    def members(self, c):
        """Members of the ``c``-th centre."""
        return self.indices[self.indptr[c]:self.indptr[c + 1]]

    def to_columns(self, mask_indices):
        """The table with members as columns of masked data (``mask_indices``: the flat
        index of every column, e.g. ``np.flatnonzero(mask)``); members outside raise."""
        lookup = np.full(int(np.prod(self.shape)), -1, dtype=np.int64)
        lookup[np.asarray(mask_indices)] = np.arange(len(mask_indices))
        cols = lookup[self.indices]
        if np.any(cols < 0):
            raise ValueError("mask_indices: some searchlight members are outside the data's "
                             "columns (build the neighbourhoods on the data's mask)")
        return Neighbourhoods(lookup[self.centers], self.indptr, cols, (len(mask_indices),))
