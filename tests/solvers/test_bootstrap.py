"""Percentile bootstrap CIs (solvers/bootstrap.py) against a brute-force loop over resamples."""

import numpy as np
import pytest
import scipy.stats  # noqa: E402

from neuroprobe.solvers.bootstrap import (  # noqa: E402
    bootstrap_indices,
    bootstrap_means,
    fdr_bh,
    holm,
    paired_bootstrap,
    percentile_ci,
)
from tests._tolerance import assert_allclose_dtype

rng = np.random.default_rng(0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_means_and_ci_equal_a_brute_force_loop_with_the_same_indices(dtype):
    values = rng.normal(size=(15, 4, 3)).astype(dtype)  # subjects x layers x voxels
    idx = bootstrap_indices(15, 400, random_state=3)
    loop = np.stack([values[i].mean(axis=0) for i in idx])  # one resample at a time
    means = bootstrap_means(values, idx)
    assert means.shape == (400, 4, 3) and means.dtype == dtype
    assert_allclose_dtype(means, loop, n_terms=15, dtype=dtype)
    mean, lower, upper = percentile_ci(values, indices=idx, ci=0.9)
    assert_allclose_dtype(mean, values.mean(axis=0), n_terms=15, dtype=dtype)
    ref_lo, ref_hi = np.quantile(loop, [0.05, 0.95], axis=0)
    assert_allclose_dtype(lower, ref_lo, n_terms=15, dtype=dtype)
    assert_allclose_dtype(upper, ref_hi, n_terms=15, dtype=dtype)
    assert np.all(lower <= mean + 1e-6) and np.all(mean <= upper + 1e-6)


def test_seeded_resamples_and_coverage():
    a = bootstrap_indices(10, 50, random_state=7)
    np.testing.assert_array_equal(a, bootstrap_indices(10, 50, random_state=7))
    assert a.min() >= 0 and a.max() < 10
    # a constant column has a zero-width interval; a wider spread gives a wider interval
    values = np.c_[np.ones(30), rng.normal(size=30), 5 * rng.normal(size=30)]
    _, lo, hi = percentile_ci(values, n_boot=500, random_state=0)
    assert hi[0] - lo[0] == 0 and hi[2] - lo[2] > 2 * (hi[1] - lo[1])


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="ci must be in"):
        percentile_ci(np.ones((3, 2)), ci=1.5)
    with pytest.raises(ValueError, match="indices must be"):
        bootstrap_means(np.ones((3, 2)), np.array([[0, 5, 1]]))
    with pytest.raises(ValueError, match="n_samples"):
        bootstrap_indices(0, 10)


def _rdm(points):
    return np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))


@pytest.mark.parametrize("method", ["pearson", "cosine"])
def test_rdm_similarity_over_stimulus_resamples_equals_a_loop(method):
    from neuroprobe.solvers.bootstrap import bootstrap_rdm_similarity

    n = 11
    target = _rdm(rng.normal(size=(n, 3)))
    models = np.stack([_rdm(rng.normal(size=(n, 3))) + s * target for s in (0.0, 0.5, 3.0)])
    idx = bootstrap_indices(n, 150, random_state=2)
    fast = bootstrap_rdm_similarity(models, target, idx, method=method)
    p, q = np.triu_indices(n, 1)
    ref = np.empty_like(fast)
    for b, i in enumerate(idx):  # the resampled RDMs, copies of one stimulus left out
        keep = i[p] != i[q]
        y = target[np.ix_(i, i)][p, q][keep]
        for m, model in enumerate(models):
            x = model[np.ix_(i, i)][p, q][keep]
            ref[b, m] = (np.corrcoef(x, y)[0, 1] if method == "pearson"
                         else x @ y / np.sqrt((x @ x) * (y @ y)))
    np.testing.assert_allclose(fast, ref, rtol=1e-10, atol=1e-12)
    assert np.all(np.isnan(bootstrap_rdm_similarity(models, target, np.zeros((1, n), int))))
    with pytest.raises(ValueError, match="model_rdms must be"):
        bootstrap_rdm_similarity(models[:, :5, :5], target, idx)


# --- paired bootstrap and corrections (comparing layers and models)
def test_bootstrap_means_equal_a_loop_over_resamples_2d():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((23, 4))
    idx = bootstrap_indices(23, 300, random_state=1)
    assert idx.shape == (300, 23) and idx.min() >= 0 and idx.max() < 23
    loop = np.array([values[i].mean(axis=0) for i in idx])
    np.testing.assert_allclose(bootstrap_means(values, idx), loop, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(idx, bootstrap_indices(23, 300, random_state=1))


def test_paired_bootstrap_equals_brute_force():
    rng = np.random.default_rng(2)
    scores = rng.standard_normal((40, 3)) + [0.0, 0.2, 0.9]
    idx = bootstrap_indices(40, 500, random_state=3)
    res = paired_bootstrap(scores, idx, confidence=0.9)
    for k, (a, b) in enumerate(res["pairs"]):
        d = scores[:, a] - scores[:, b]
        boot = np.array([d[i].mean() for i in idx])  # brute force, same indices
        np.testing.assert_allclose(res["boot"][:, k], boot, atol=1e-12)
        assert res["difference"][k] == pytest.approx(d.mean())
        lo, hi = np.quantile(boot, [0.05, 0.95])
        assert res["ci_low"][k] == pytest.approx(lo) and res["ci_high"][k] == pytest.approx(hi)
        p = (np.sum(np.abs(boot - d.mean()) >= abs(d.mean())) + 1) / 501
        assert res["pvalue"][k] == pytest.approx(p)
    assert [tuple(p) for p in res["pairs"]] == [(0, 1), (0, 2), (1, 2)]


def test_bootstrap_pvalues_are_calibrated_under_the_null():
    rng = np.random.default_rng(5)
    p = []
    for _ in range(200):
        s = rng.standard_normal((60, 2))  # two models with equal means
        idx = bootstrap_indices(60, 400, int(rng.integers(2**31)))
        p.append(paired_bootstrap(s, idx, 0.95)["pvalue"][0])
    p = np.array(p)
    assert 0.01 <= np.mean(p <= 0.05) <= 0.1
    assert scipy.stats.kstest(p, "uniform").pvalue > 0.001


def _holm_reference(p):
    """Holm (1979) as written: step down through the sorted p-values."""
    m = len(p)
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def _bh_reference(p):
    m = len(p)
    return np.array([min(1.0, min(p[j] * m / (np.sum(p <= p[j])) for j in range(m)
                                  if p[j] >= p[i])) for i in range(m)])


def test_holm_and_bh_equal_references():
    rng = np.random.default_rng(0)
    for m in (1, 2, 7, 50):
        p = rng.uniform(0, 0.2, m) ** 2
        np.testing.assert_allclose(holm(p), _holm_reference(p))
        np.testing.assert_allclose(fdr_bh(p), _bh_reference(p))
        np.testing.assert_allclose(fdr_bh(p), scipy.stats.false_discovery_control(p))
    p = np.array([0.01, np.nan, 0.04, 0.03])
    np.testing.assert_allclose(holm(p), [0.03, np.nan, 0.06, 0.06])
    assert np.isnan(fdr_bh(p)[1])


def test_errors():
    with pytest.raises(ValueError, match="n_samples .0. and n_boot"):
        bootstrap_indices(0, 10)
    with pytest.raises(ValueError, match="indices must be"):
        bootstrap_means(np.zeros((5, 2)), np.full((3, 4), 7))
