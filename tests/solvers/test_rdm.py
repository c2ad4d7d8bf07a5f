"""RDM kernels against scipy pdist / scipy.stats / brute force / rsatoolbox."""

import itertools

import numpy as np
import pytest
import scipy.stats
from scipy.spatial.distance import pdist

from neuroprobe.solvers import rdm as R


@pytest.fixture
def X():
    return np.random.default_rng(0).standard_normal((17, 9))


@pytest.mark.parametrize("metric", R.GRAM_METRICS)
def test_gram_metrics_equal_pdist(X, metric):
    expected = pdist(X, metric)
    np.testing.assert_allclose(R.rdm(X, metric), expected, rtol=1e-10, atol=1e-12)
    # small blocks of rows give the same condensed vector
    np.testing.assert_allclose(R.rdm(X, metric, block_bytes=1000), expected, rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("metric", R.GRAM_METRICS)
def test_torch_backend_equals_numpy(X, metric):
    pytest.importorskip("torch")
    got = R.rdm(X.astype(np.float32), metric, backend="torch", device="cpu")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, pdist(X, metric), rtol=1e-4, atol=1e-4)
    blocked = R.rdm(X.astype(np.float32), metric, backend="torch", block_bytes=500)
    np.testing.assert_allclose(blocked, got, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("metric", ["cityblock", "chebyshev", "canberra", "braycurtis"])
def test_other_metrics_fall_back_to_pdist(X, metric):
    np.testing.assert_allclose(R.rdm(X, metric), pdist(X, metric))


def test_minkowski_kwargs_and_mahalanobis_vi(X):
    np.testing.assert_allclose(R.rdm(X, "minkowski", p=3), pdist(X, "minkowski", p=3))
    A = np.random.default_rng(1).standard_normal((9, 9))
    VI = A @ A.T + np.eye(9)
    np.testing.assert_allclose(R.rdm(X, "mahalanobis", VI=VI), pdist(X, "mahalanobis", VI=VI),
                               rtol=1e-10)


def test_float32_input_gives_float32(X):
    out = R.rdm(X.astype(np.float32), "correlation")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, pdist(X, "correlation"), atol=1e-5)


def test_n_from_pairs():
    assert R.n_from_pairs(R.n_pairs(92)) == 92
    with pytest.raises(ValueError, match="not such a number"):
        R.n_from_pairs(7)


# ---------------------------------------------------------------------------- comparisons
def _with_ties(rng, m):
    return rng.integers(0, 6, size=m).astype(float)


def _tau_a_brute(a, b):
    s = 0.0
    for i, j in itertools.combinations(range(a.size), 2):
        s += np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
    return s / (a.size * (a.size - 1) / 2)


def _rho_a_brute(a, b):
    ra, rb = scipy.stats.rankdata(a), scipy.stats.rankdata(b)
    m = a.size
    return 12 * np.sum((ra - ra.mean()) * (rb - rb.mean())) / (m**3 - m)


def test_compare_against_scipy_and_brute_force():
    rng = np.random.default_rng(0)
    A = np.vstack([rng.standard_normal(28), _with_ties(rng, 28)])
    B = np.vstack([_with_ties(rng, 28), rng.standard_normal(28), A[0] + rng.standard_normal(28)])
    refs = {
        "pearson": lambda a, b: scipy.stats.pearsonr(a, b)[0],
        "spearman": lambda a, b: scipy.stats.spearmanr(a, b)[0],
        "kendall_tau_b": lambda a, b: scipy.stats.kendalltau(a, b)[0],
        "kendall_tau_a": _tau_a_brute,
        "rho_a": _rho_a_brute,
        "cosine": lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b),
    }
    for method, ref in refs.items():
        expected = np.array([[ref(a, b) for b in B] for a in A])
        np.testing.assert_allclose(R.compare(A, B, method), expected, rtol=1e-10, atol=1e-12,
                                   err_msg=method)


def test_compare_torch_equals_numpy():
    pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    A, B = rng.standard_normal((3, 45)), rng.standard_normal((2, 45))
    for method in R.DOT_METHODS:
        np.testing.assert_allclose(R.compare(A, B, method, backend="torch"),
                                   R.compare(A, B, method), atol=1e-5)


def test_compare_equals_rsatoolbox():
    rsatoolbox = pytest.importorskip("rsatoolbox")
    from rsatoolbox.rdm import RDMs, compare

    rng = np.random.default_rng(3)
    A = np.vstack([rng.standard_normal(36), _with_ties(rng, 36)])
    B = np.vstack([_with_ties(rng, 36), rng.standard_normal(36)])
    names = {"pearson": "corr", "spearman": "spearman", "kendall_tau_b": "kendall",
             "kendall_tau_a": "tau-a", "rho_a": "rho-a", "cosine": "cosine"}
    for ours, theirs in names.items():
        expected = compare(RDMs(A), RDMs(B), method=theirs)
        np.testing.assert_allclose(R.compare(A, B, ours), expected, rtol=1e-10, atol=1e-12,
                                   err_msg=ours)
    assert rsatoolbox is not None


def test_rdms_equal_rsatoolbox_definitions(X):
    pytest.importorskip("rsatoolbox")
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm

    ds = Dataset(X)
    np.testing.assert_allclose(R.rdm(X, "correlation"),
                               calc_rdm(ds, method="correlation").get_vectors()[0], atol=1e-12)
    # rsatoolbox "euclidean" = our sqeuclidean / n_features
    np.testing.assert_allclose(R.rdm(X, "sqeuclidean") / X.shape[1],
                               calc_rdm(ds, method="euclidean").get_vectors()[0], atol=1e-12)
    # rsatoolbox "mahalanobis" = our mahalanobis**2 / n_features (its noise = our VI)
    A = np.random.default_rng(1).standard_normal((9, 9))
    VI = A @ A.T + np.eye(9)
    np.testing.assert_allclose(
        R.rdm(X, "mahalanobis", VI=VI) ** 2 / X.shape[1],
        calc_rdm(ds, method="mahalanobis", noise=VI).get_vectors()[0], rtol=1e-9)


def test_prepare_is_permutation_equivariant():
    rng = np.random.default_rng(4)
    a = _with_ties(rng, 40)
    p = rng.permutation(40)
    for method in R.DOT_METHODS:
        np.testing.assert_allclose(R.prepare(a[p], method), R.prepare(a, method)[:, p])


def test_kendall_constant_vector():
    a = np.ones(10)
    b = np.arange(10.0)
    assert R.kendall(a, b, "a") == 0.0
    assert np.isnan(R.kendall(a, b, "b"))


def test_unknown_method():
    with pytest.raises(ValueError, match="method must be one of"):
        R.compare(np.ones((1, 3)), np.ones((1, 3)), "foo")


@pytest.mark.parametrize("n", [5, 12])
def test_whitened_comparisons_equal_rsatoolbox(n):
    pytest.importorskip("rsatoolbox")
    from rsatoolbox.rdm import RDMs, compare
    from rsatoolbox.rdm.compare import _cosine_cov_weighted_slow

    rng = np.random.default_rng(5)
    m = n * (n - 1) // 2
    A = np.vstack([rng.random((3, m)), _with_ties(rng, m) + 5])
    B = rng.random((4, m))
    sigma = rng.random(n) + 0.5
    for method in R.COV_METHODS:
        np.testing.assert_allclose(R.compare(A, B, method), compare(RDMs(A), RDMs(B), method),
                                   rtol=1e-10, atol=1e-12, err_msg=method)
        np.testing.assert_allclose(R.compare(A, B, method, sigma_k=sigma),
                                   compare(RDMs(A), RDMs(B), method, sigma_k=sigma),
                                   rtol=1e-10, atol=1e-12, err_msg=method)
    # the whitening by the explicit inverse RDM covariance V (rsatoolbox's slow path, _get_v)
    np.testing.assert_allclose(R.compare(A, B, "cosine_cov"), _cosine_cov_weighted_slow(A, B),
                               atol=1e-6)


def test_whitened_comparison_invariances():
    rng = np.random.default_rng(6)
    a, b = rng.random(28), rng.random(28)
    assert R.compare(a, a, "corr_cov")[0, 0] == pytest.approx(1.0)
    # corr_cov ignores an offset of the RDM, cosine_cov does not; both ignore scale
    assert R.compare(a, 3 * b + 2, "corr_cov")[0, 0] == pytest.approx(
        R.compare(a, b, "corr_cov")[0, 0])
    assert R.compare(a, 3 * b, "cosine_cov")[0, 0] == pytest.approx(
        R.compare(a, b, "cosine_cov")[0, 0])
    assert R.compare(a, b + 2, "cosine_cov")[0, 0] != pytest.approx(
        R.compare(a, b, "cosine_cov")[0, 0])
    with pytest.raises(ValueError, match="sigma_k"):
        R.compare(a, b, "pearson", sigma_k=np.ones(8))
    with pytest.raises(ValueError, match="sigma_k"):
        R.compare(a, b, "cosine_cov", sigma_k=np.ones(5))


def test_poisson_cv_equals_rsatoolbox():
    pytest.importorskip("rsatoolbox")
    import contextlib
    import io

    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm

    from neuroprobe.rsa import compute_rdm

    rng = np.random.default_rng(8)
    cond = np.tile(np.arange(5), 4)
    runs = np.repeat([0, 1], 10)  # two runs, two repetitions of each condition per run
    X = rng.poisson(3.0 * rng.random((5, 12))[cond] + 0.5).astype(float)

    def theirs(run_labels):
        ds = Dataset(X, obs_descriptors={"c": cond, "r": run_labels})
        with contextlib.redirect_stdout(io.StringIO()):
            return calc_rdm(ds, method="poisson_cv", descriptor="c",
                            cv_descriptor="r").get_vectors()[0]

    # rsatoolbox returns the last run's RDM: equal with last_fold=True ...
    np.testing.assert_allclose(R.poisson_cv(X, cond, runs, last_fold=True)[0], theirs(runs),
                               rtol=1e-12)
    # ... and our default is the mean over runs (each made the last by relabelling)
    both = (theirs(runs) + theirs(1 - runs)) / 2
    np.testing.assert_allclose(compute_rdm(X, "poisson_cv", conditions=cond, cv_groups=runs),
                               both, rtol=1e-12)
    with pytest.raises(ValueError, match="non-negative"):
        compute_rdm(-X, "poisson_cv", conditions=cond, cv_groups=runs)
    with pytest.raises(ValueError, match="at least 2 runs"):
        compute_rdm(X, "poisson_cv", conditions=cond, cv_groups=np.zeros(20))
    keep = ~((cond == 4) & (runs == 1))
    with pytest.raises(ValueError, match="lacks conditions"):
        compute_rdm(X[keep], "poisson_cv", conditions=cond[keep], cv_groups=runs[keep])
