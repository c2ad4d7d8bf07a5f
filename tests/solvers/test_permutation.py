"""Permutation kernels: permutations, p-values, and the vectorised RSA null vs brute force."""

import math

import numpy as np
import pytest
import scipy.stats
from scipy.spatial.distance import pdist

from neuroprobe.solvers import permutation as P
from neuroprobe.solvers.rdm import COMPARE_METHODS


def test_draw_permutations_are_permutations_and_seeded():
    perms = P.draw_permutations(11, 50, seed=3)
    assert perms.shape == (50, 11)
    assert np.all(np.sort(perms, axis=1) == np.arange(11))
    np.testing.assert_array_equal(perms, P.draw_permutations(11, 50, seed=3))
    assert not np.array_equal(perms, P.draw_permutations(11, 50, seed=4))
    assert len({tuple(p) for p in perms}) > 45  # not the same permutation over and over


def test_draw_permutations_within_groups():
    groups = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 1])
    perms = P.draw_permutations(10, 200, groups=groups, seed=0)
    assert np.all(groups[perms] == groups)  # every sample stays in its group
    assert np.all(np.sort(perms, axis=1) == np.arange(10))
    # every within-group arrangement is reachable: group 2 (4 samples) shows many orders
    assert len({tuple(p[groups == 2]) for p in perms}) > 15


def test_chunks_depend_on_n_permutations_only():
    sizes = P.chunk_sizes(1000)
    assert sum(sizes) == 1000
    assert P.chunk_sizes(1000) == sizes
    a = [s.generate_state(2) for s in P.chunk_seeds(5, 4)]
    b = [s.generate_state(2) for s in P.chunk_seeds(np.random.RandomState(5), 4)]
    np.testing.assert_array_equal(a, b)
    assert len({tuple(x) for x in a}) == 4


def test_pvalues_brute_force():
    rng = np.random.default_rng(0)
    null = rng.standard_normal((99, 4))
    obs = np.array([0.0, 1.5, -2.0, 3.0])
    expected = [(np.sum(null[:, t] >= obs[t]) + 1) / 100 for t in range(4)]
    np.testing.assert_allclose(P.pvalues(obs, null), expected)
    expected_fwe = [(np.sum(null.max(axis=1) >= obs[t]) + 1) / 100 for t in range(4)]
    np.testing.assert_allclose(P.fwe_pvalues(obs, null), expected_fwe)
    assert np.all(P.fwe_pvalues(obs, null) >= P.pvalues(obs, null))


def _whitened_cosine(a, b):
    """Cosine of the double-centred square RDMs (Diedrichsen et al. 2020), written out."""
    from scipy.spatial.distance import squareform

    A, B = squareform(a), squareform(b)
    H = np.eye(A.shape[0]) - 1.0 / A.shape[0]
    A, B = H @ A @ H, H @ B @ H
    return np.sum(A * B) / np.sqrt(np.sum(A * A) * np.sum(B * B))


def _brute_null(Xm, Yt, perms, method):
    ref = {
        "pearson": lambda a, b: scipy.stats.pearsonr(a, b)[0],
        "spearman": lambda a, b: scipy.stats.spearmanr(a, b)[0],
        "kendall_tau_b": lambda a, b: scipy.stats.kendalltau(a, b)[0],
        "cosine": lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b),
        "rho_a": lambda a, b: 12 * np.sum((scipy.stats.rankdata(a) - (a.size + 1) / 2)
                                          * (scipy.stats.rankdata(b) - (a.size + 1) / 2))
        / (a.size**3 - a.size),
        "kendall_tau_a": None,
        "corr_cov": lambda a, b: _whitened_cosine(a - a.mean(), b - b.mean()),
        "cosine_cov": lambda a, b: _whitened_cosine(a, b),
    }[method]
    if ref is None:
        from neuroprobe.solvers.rdm import kendall

        def ref(a, b):
            return kendall(a, b, "a")
    models = [pdist(x, "correlation") for x in Xm]
    out = []
    for p in perms:
        out.append([ref(m, pdist(y[p], "euclidean")) for m in models for y in Yt])
    return np.array(out)


@pytest.mark.parametrize("method", COMPARE_METHODS)
def test_rsa_null_equals_brute_force(method):
    rng = np.random.default_rng(1)
    n = 9
    Xm = rng.standard_normal((3, n, 4))
    Yt = rng.integers(0, 3, size=(2, n, 2)).astype(float)  # integer data: tied distances
    models = np.array([pdist(x, "correlation") for x in Xm])
    targets = np.array([pdist(y, "euclidean") for y in Yt])
    perms = P.draw_permutations(n, 15, seed=0)
    observed, null = P.rsa_null(models, targets, perms, method)
    expected = _brute_null(Xm, Yt, perms, method)
    np.testing.assert_allclose(null, expected, atol=1e-10)
    identity = np.arange(n)[None]
    np.testing.assert_allclose(observed, _brute_null(Xm, Yt, identity, method)[0], atol=1e-10)
    # tiny batches give the same null
    _, null_small = P.rsa_null(models, targets, perms, method, batch_bytes=1)
    np.testing.assert_allclose(null_small, null)


def test_rsa_null_torch_equals_numpy():
    pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    models, targets = rng.random((2, 36)), rng.random((3, 36))
    perms = P.draw_permutations(9, 20, seed=1)
    for method in ("spearman", "pearson"):
        a = P.rsa_null(models, targets, perms, method)
        b = P.rsa_null(models, targets, perms, method, backend="torch")
        np.testing.assert_allclose(b[1], a[1], atol=1e-5)
        np.testing.assert_allclose(b[0], a[0], atol=1e-5)


@pytest.mark.gpu
def test_cuda_equals_numpy():
    from neuroprobe.rsa import compare_rdms, compute_rdm

    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 30)).astype(np.float32)
    for metric in ("correlation", "cosine", "euclidean", "sqeuclidean"):
        np.testing.assert_allclose(compute_rdm(X, metric, backend="torch", device="cuda"),
                                   pdist(X.astype(np.float64), metric), atol=1e-4)
    A, B = rng.random((3, 780)), rng.random((2, 780))
    for method in ("pearson", "spearman", "rho_a", "cosine"):
        np.testing.assert_allclose(compare_rdms(A, B, method, backend="torch", device="cuda"),
                                   compare_rdms(A, B, method), atol=1e-5)
    perms = P.draw_permutations(40, 64, seed=0)
    a = P.rsa_null(A, B, perms, "spearman")
    b = P.rsa_null(A, B, perms, "spearman", backend="torch", device="cuda")
    np.testing.assert_allclose(b[1], a[1], atol=1e-5)


def _old_driver(chunk, n_permutations, random_state, n_jobs):
    """The driver as PermutationTest.fit and permutation_test_rdms each wrote it before."""
    from joblib import Parallel, delayed, effective_n_jobs

    sizes = P.chunk_sizes(n_permutations)
    seeds = P.chunk_seeds(random_state, len(sizes))
    n_tasks = min(len(sizes), max(1, effective_n_jobs(n_jobs)))
    tasks = np.array_split(np.arange(len(sizes)), n_tasks)
    return Parallel(n_jobs=n_jobs)(
        delayed(chunk)([sizes[i] for i in t], [seeds[i] for i in t]) for t in tasks)


def _draw(sizes, seeds, n=9):
    return np.concatenate([P.draw_permutations(n, k, seed=s) for k, s in zip(sizes, seeds)])


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_run_chunks_is_the_old_driver_bit_for_bit(n_jobs):
    new = np.concatenate(P.run_chunks(_draw, 300, 11, n_jobs))
    old = np.concatenate(_old_driver(_draw, 300, 11, n_jobs))
    np.testing.assert_array_equal(new, old)
    np.testing.assert_array_equal(new, np.concatenate(P.run_chunks(_draw, 300, 11, None)))


def test_permutation_nulls_unchanged_by_the_shared_driver():
    """Values computed with the same seeds before ``run_chunks`` existed (commit 99a2d44)."""
    import warnings

    from sklearn.linear_model import Ridge

    from neuroprobe import rsa
    from neuroprobe.estimators import PermutationTest, VoxelwiseEncoder

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6))
    Y = X @ rng.standard_normal((6, 5)) + rng.standard_normal((40, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = PermutationTest(VoxelwiseEncoder(cv=4, dtype="float64"), n_permutations=150,
                               random_state=3, n_jobs=2).fit(X, Y)
        generic = PermutationTest(Ridge(), n_permutations=70, cv=3, random_state=5).fit(X, Y[:, 0])
    M, T = np.abs(rng.standard_normal((3, 66))), np.abs(rng.standard_normal((2, 66)))
    rdms = rsa.permutation_test_rdms(M, T, n_permutations=200, random_state=7)
    np.testing.assert_allclose(fast.null_distribution_[[0, 77, 149], 2],
                               [0.36220192746975366, -0.15173303472556818, -0.06896712390540674],
                               rtol=1e-12)
    np.testing.assert_allclose(generic.null_distribution_[[0, 33, 69]],
                               [-0.572527927817304, -0.5517609213580693, -0.7338674630617584],
                               rtol=1e-12)
    np.testing.assert_allclose(rdms["null"][[0, 100, 199], 1, 0],
                               [0.11754514142573845, -0.02661517586890723, -0.04435862644817865],
                               rtol=1e-12)
    with pytest.raises(ValueError, match="same number of stimuli"):
        rsa.permutation_test_rdms(M, T[:, :55], n_permutations=10)


# --------------------------------------------------------------------------- time-series schemes
def test_circular_shifts_rotate_each_run_by_its_own_shift():
    groups = np.repeat([3, 1, 2], [7, 5, 9])
    perms = P.draw_permutations(21, 300, groups=groups, seed=2, scheme="circular")
    assert np.all(np.sort(perms, axis=1) == np.arange(21))
    assert np.all(groups[perms] == groups)  # never leaves its run
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        # brute force: row k of the run is idx[(arange + s) % n] for one shift s in [1, n - 1]
        shifts = (np.searchsorted(idx, perms[:, idx[0]]) - 0) % idx.size
        assert np.all((shifts >= 1) & (shifts < idx.size))
        expected = idx[(np.arange(idx.size)[None, :] + shifts[:, None]) % idx.size]
        np.testing.assert_array_equal(perms[:, idx], expected)
        assert len(set(shifts.tolist())) == idx.size - 1  # every non-zero shift is drawn
    # runs are shifted independently
    s1 = perms[:, 0] - 0
    s2 = perms[:, 7] - 7
    assert len(set(zip(s1.tolist(), s2.tolist()))) > 20
    np.testing.assert_array_equal(
        perms, P.draw_permutations(21, 300, groups=groups, seed=2, scheme="circular"))


def test_block_permutations_keep_blocks_within_runs():
    groups = np.repeat([0, 1], [10, 7])
    perms = P.draw_permutations(17, 200, groups=groups, seed=1, scheme="block", block_size=3)
    assert np.all(np.sort(perms, axis=1) == np.arange(17))
    assert np.all(groups[perms] == groups)
    for g, sizes in ((0, [3, 3, 3, 1]), (1, [3, 3, 1])):
        idx = np.flatnonzero(groups == g)
        blocks = [tuple(idx[a:a + s]) for a, s in zip(np.cumsum([0] + sizes[:-1]), sizes)]
        for p in perms[:, idx]:
            # brute force: the run is a concatenation of its blocks, each intact and in order
            pos, seen = 0, []
            while pos < p.size:
                block = next(b for b in blocks if b[0] == p[pos])
                assert tuple(p[pos:pos + len(block)]) == block
                seen.append(block)
                pos += len(block)
            assert sorted(seen) == sorted(blocks)
        # every block order is drawn (4! and 3! orders, 200 draws)
        assert len({tuple(p) for p in perms[:, idx]}) == math.factorial(len(sizes))


def test_scheme_errors():
    with pytest.raises(ValueError, match="block_size"):
        P.draw_permutations(10, 3, scheme="block")
    with pytest.raises(ValueError, match="scheme"):
        P.draw_permutations(10, 3, scheme="rotate")
    # the shuffle scheme is unchanged by the new keyword (seeded results of earlier versions)
    np.testing.assert_array_equal(P.draw_permutations(9, 4, seed=0),
                                  P.draw_permutations(9, 4, seed=0, scheme="shuffle"))
