"""Percentile bootstrap CIs (solvers/bootstrap.py) against a brute-force loop over resamples."""

import numpy as np
import pytest

from neuroprobe.solvers.bootstrap import bootstrap_indices, bootstrap_means, percentile_ci
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
