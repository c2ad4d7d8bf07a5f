"""Möbius inversion of the union R2s vs the hand-written formulas (k = 1, 2, 3), any k."""

import itertools

import numpy as np
import pytest

from neuroprobe.solvers.partition import (
    UnionBlocks,
    mask_bands,
    mobius_matrix,
    partition_components,
    subset_masks,
    union_ridge_scores,
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


# --------------------------------------------------------------------------- shared ridge fits
def _bands_data(seed=0, n=40, sizes=(5, 9, 60), n_targets=6, offset=2.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sum(sizes))) + offset
    Y = X @ rng.standard_normal((X.shape[1], n_targets)) * 0.2 + rng.standard_normal(
        (n, n_targets))
    edges = np.cumsum((0,) + tuple(sizes))
    bands = [np.arange(edges[i], edges[i + 1]) for i in range(len(sizes))]
    return X, Y, bands


def test_union_plans_equal_make_plan_on_the_union_columns():
    """Primal unions (p_S <= n) and kernel unions (p_S > n) from the shared blocks have the
    eigenpairs make_plan computes from the union's own columns (float64)."""
    from neuroprobe.solvers import ridge
    from neuroprobe.solvers.backend import get_backend

    be = get_backend("numpy")
    X, _, bands = _bands_data()
    folds = [(np.setdiff1d(np.arange(30), te), te) for te in np.array_split(np.arange(30), 3)]
    masks = subset_masks(3)
    blocks = UnionBlocks(X[:30], bands, folds, masks, backend=be, dtype=np.float64)
    assert blocks.kinds == ["primal", "primal", "primal", "kernel", "kernel", "kernel",
                            "kernel"]
    for i, m in enumerate(masks):
        cols = np.concatenate([bands[b] for b in mask_bands(m, 3)])
        ref = ridge.make_plan(X[:30, cols], folds, backend=be, dtype=np.float64)
        got = blocks.plan(i)
        assert got.kind == ref.kind
        np.testing.assert_allclose(got.full_eigvals, ref.full_eigvals, atol=1e-8)
        for f_got, f_ref in zip(got.folds, ref.folds):
            np.testing.assert_allclose(f_got.eigvals, f_ref.eigvals, atol=1e-8)
            # eigenvectors up to sign: compare the projectors of the leading directions
            v, w = f_got.eigvecs[:, -3:], f_ref.eigvecs[:, -3:]
            np.testing.assert_allclose(v @ v.T, w @ w.T, atol=1e-8)
        if ref.kind == "kernel":
            np.testing.assert_allclose(got.mean_proj, ref.mean_proj, atol=1e-8)


@pytest.mark.parametrize("scoring", ["r2", "correlation"])
def test_union_ridge_scores_equal_a_brute_force_sklearn_ridge_per_union(scoring):
    """Brute force: for every union, the alpha of each target chosen by the mean inner-fold
    score of sklearn Ridge fits, then sklearn Ridge (one alpha per target) refit on the
    training rows and scored on the held-out rows."""
    from sklearn.linear_model import Ridge

    from neuroprobe.metrics import correlation_score, r2_score
    from neuroprobe.solvers.backend import get_backend

    X, Y, bands = _bands_data(seed=1, n=48, sizes=(4, 7, 50))
    train, test = np.arange(36), np.arange(36, 48)
    inner = [(np.setdiff1d(train, te), te) for te in np.array_split(train, 3)]
    alphas = np.array([0.1, 10.0, 1000.0])
    masks = subset_masks(3)
    got, const = union_ridge_scores(X[train], Y[train], X[test], Y[test], bands, masks, inner,
                                    alphas, scoring=scoring, backend=get_backend("numpy"),
                                    dtype=np.float64)
    assert got.shape == (7, Y.shape[1]) and not const.any()
    metric = {"r2": r2_score, "correlation": correlation_score}[scoring]
    for i, m in enumerate(masks):
        cols = np.concatenate([bands[b] for b in mask_bands(m, 3)])
        inner_scores = np.array([[metric(Y[te], Ridge(alpha=a).fit(X[tr][:, cols], Y[tr])
                                         .predict(X[te][:, cols])) for tr, te in inner]
                                 for a in alphas]).mean(axis=1)
        best = alphas[inner_scores.argmax(axis=0)]
        pred = Ridge(alpha=best).fit(X[train][:, cols], Y[train]).predict(X[test][:, cols])
        np.testing.assert_allclose(got[i], r2_score(Y[test], pred), rtol=1e-7, atol=1e-9)
