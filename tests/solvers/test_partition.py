"""Möbius inversion of the union R2s vs the hand-written formulas (k = 1, 2, 3), any k."""

import itertools

import numpy as np
import pytest

from neuroprobe.solvers.partition import (
    mask_bands,
    mobius_matrix,
    partition_components,
    subset_masks,
)


def _r2(rng, k, n_targets=7):
    return rng.uniform(0, 1, size=(2**k - 1, n_targets))


def test_two_bands_equal_the_textbook_formulas():
    r2 = _r2(np.random.default_rng(0), 2)
    a, b, ab = r2  # masks 1 (A), 2 (B), 3 (A+B)
    unique_a, unique_b, shared = partition_components(r2)
    np.testing.assert_allclose(unique_a, ab - b)
    np.testing.assert_allclose(unique_b, ab - a)
    np.testing.assert_allclose(shared, a + b - ab)


def test_three_bands_equal_the_textbook_formulas():
    r2 = _r2(np.random.default_rng(1), 3)
    R = {frozenset(mask_bands(m, 3)): r2[m - 1] for m in subset_masks(3)}
    A, B, C = 0, 1, 2

    def r(*bands):
        return R[frozenset(bands)]

    atoms = {frozenset(mask_bands(m, 3)): v for m, v in zip(subset_masks(3),
                                                             partition_components(r2))}
    full = r(A, B, C)
    for i, (j, l) in ((A, (B, C)), (B, (A, C)), (C, (A, B))):
        np.testing.assert_allclose(atoms[frozenset([i])], full - r(j, l))
    for (i, j), l in (((A, B), C), ((A, C), B), ((B, C), A)):
        # shared by exactly i and j: R2(il) + R2(jl) - R2(l) - R2(ijl)
        np.testing.assert_allclose(atoms[frozenset([i, j])], r(i, l) + r(j, l) - r(l) - full)
    np.testing.assert_allclose(
        atoms[frozenset([A, B, C])],
        r(A) + r(B) + r(C) - r(A, B) - r(A, C) - r(B, C) + full,
    )


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_components_rebuild_every_union_and_sum_to_the_full_r2(k):
    """Planted atoms -> union R2 by the definition (sum of the atoms the union touches) ->
    partition_components gives the atoms back; they sum to R2 of the full union."""
    rng = np.random.default_rng(k)
    masks = subset_masks(k)
    atoms = rng.normal(0.05, 0.1, size=(masks.size, 4))  # negative atoms allowed
    r2 = np.stack([atoms[(masks & u) != 0].sum(axis=0) for u in masks])
    got = partition_components(r2)
    np.testing.assert_allclose(got, atoms, atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=0), r2[-1], atol=1e-12)
    assert mobius_matrix(k).dtype.kind == "i"


def test_masks_and_errors():
    assert list(subset_masks(2)) == [1, 2, 3]
    assert [mask_bands(m, 3) for m in subset_masks(3)] == [
        [0], [1], [0, 1], [2], [0, 2], [1, 2], [0, 1, 2]]
    assert len(list(itertools.chain(subset_masks(5)))) == 31
    with pytest.raises(ValueError, match="2\\^k - 1"):
        partition_components(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="at least one band"):
        subset_masks(0)
