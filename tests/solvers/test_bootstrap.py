"""Paired bootstrap vs a brute-force loop over the same indices; Holm / BH vs references."""

import numpy as np
import pytest
import scipy.stats

from neuroprobe.solvers.bootstrap import (
    bootstrap_indices,
    bootstrap_means,
    fdr_bh,
    holm,
    paired_bootstrap,
)


def test_bootstrap_means_equal_a_loop_over_resamples():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((23, 4))
    idx = bootstrap_indices(23, 300, seed=1)
    assert idx.shape == (300, 23) and idx.min() >= 0 and idx.max() < 23
    loop = np.array([values[i].mean(axis=0) for i in idx])
    np.testing.assert_allclose(bootstrap_means(values, idx), loop, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(idx, bootstrap_indices(23, 300, seed=1))


def test_paired_bootstrap_equals_brute_force():
    rng = np.random.default_rng(2)
    scores = rng.standard_normal((40, 3)) + [0.0, 0.2, 0.9]
    idx = bootstrap_indices(40, 500, seed=3)
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
        p.append(paired_bootstrap(s, bootstrap_indices(60, 400, rng), 0.95)["pvalue"][0])
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
    with pytest.raises(ValueError, match="at least 2 units"):
        bootstrap_indices(1, 10)
    with pytest.raises(ValueError, match="units"):
        bootstrap_means(np.zeros((5, 2)), np.zeros((3, 4), dtype=int))
