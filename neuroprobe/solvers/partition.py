"""Set-theoretic variance partitioning: unique and shared components from the R2 of every union.

With ``k`` feature bands there are ``2^k - 1`` non-empty unions ``U`` of bands and as many atoms
of their Venn diagram: the atom ``S`` (a non-empty set of bands) is the variance explained by
every band of ``S`` and by no band outside it (de Heer et al. 2017; Lescroart et al. 2015). The
R2 of a union is the sum of the atoms it touches, ``R2(U) = sum_{S : S & U != {}} a(S)``, so with
``g(W) = R2(all) - R2(all \\ W)`` (the atoms inside ``W``) the atoms follow by Möbius inversion on
the subset lattice::

    a(S) = sum_{W subset of S} (-1)^(|S| - |W|) g(W)

For two bands: ``unique(A) = R2(AB) - R2(B)``, ``shared(AB) = R2(A) + R2(B) - R2(AB)``. The atoms
sum to ``R2(all)``. Estimates from held-out R2 can be negative (noise, overfitting of the larger
models); they are returned as they are.

Subsets are bit masks: band ``i`` is bit ``i``; row ``m - 1`` of an R2 array is the union of
mask ``m`` (``m = 1 .. 2^k - 1``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["subset_masks", "mask_bands", "mobius_matrix", "partition_components"]


def subset_masks(k):
    """The ``2^k - 1`` non-empty subsets of ``k`` bands as bit masks ``1 .. 2^k - 1``."""
    if k < 1:
        raise ValueError(f"variance partitioning needs at least one band; got {k}")
    return np.arange(1, 2**k, dtype=np.int64)


def mask_bands(mask, k):
    """Indices of the bands in bit mask ``mask`` (ascending)."""
    return [i for i in range(k) if (int(mask) >> i) & 1]


def mobius_matrix(k):
    """The ``(2^k - 1, 2^k - 1)`` matrix ``C`` with ``atoms = C @ r2`` (rows: atom masks,
    columns: union masks, both ``1 .. 2^k - 1``); integer entries."""
    masks = subset_masks(k)
    full = int(masks[-1])
    size = masks.size
    # g = G @ r2 with g(W) = r2(full) - r2(full \ W) (r2 of the empty union is 0)
    g = np.zeros((size, size), dtype=np.int64)
    g[:, full - 1] = 1
    for w in masks:
        rest = full & ~int(w)
        if rest:
            g[w - 1, rest - 1] -= 1
    # a(S) = sum_{W subset S} (-1)^{|S|-|W|} g(W)
    mu = np.zeros((size, size), dtype=np.int64)
    popcount = np.array([bin(int(m)).count("1") for m in masks])
    for s in masks:
        sub = masks[(masks & s) == masks]  # every non-empty W subset of S
        mu[s - 1, sub - 1] = (-1) ** (popcount[s - 1] - popcount[sub - 1])
    return mu @ g


def partition_components(r2):
    """The atoms of the variance partition from the R2 of every union of bands.

    Parameters
    ----------
    r2 : array of shape (2^k - 1, ...) (e.g. (2^k - 1, n_targets))
        Row ``m - 1`` holds the R2 of the union of bit mask ``m`` (band ``i`` is bit ``i``).

    Returns
    -------
    atoms : ndarray of the shape of ``r2``
        Row ``m - 1``: the variance explained by exactly the bands of mask ``m`` (unique to one
        band when ``m`` has one bit, shared by several otherwise); they sum to the R2 of the full
        union (last row of ``r2``). Negative estimates are kept.
    """
    r2 = np.asarray(r2, dtype=np.float64)
    size = r2.shape[0]
    k = int(np.log2(size + 1))
    if 2**k - 1 != size:
        raise ValueError(f"r2 must have 2^k - 1 rows (one per non-empty union of k bands); got "
                         f"{size}")
    c = mobius_matrix(k).astype(np.float64)
    return (c @ r2.reshape(size, -1)).reshape(r2.shape)
