"""Time-resolved noise ceiling: window by window equal to rsa.noise_ceiling (so rsatoolbox)."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from neuroprobe.rsa import noise_ceiling
from neuroprobe.solvers import temporal
from neuroprobe.solvers.temporal import window_noise_ceiling


def _subject_window_rdms(seed=0, n_subjects=5, n=10, n_windows=7, integer=False):
    """Subject RDMs of a shared signal whose strength changes over windows."""
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n_windows, n, 6))
    gain = np.linspace(0.0, 3.0, n_windows)[:, None, None]
    out = np.empty((n_subjects, n_windows, n * (n - 1) // 2))
    for s in range(n_subjects):
        X = gain * signal + rng.standard_normal((n_windows, n, 6))
        if integer:                                  # spike-count-like data: many tied pairs
            X = np.round(X).clip(-1, 1)
            out[s] = [pdist(x, "cityblock") for x in X]
        else:
            out[s] = [pdist(x, "correlation") for x in X]
    return out


def _loop(R, method):
    bounds = [noise_ceiling(R[:, w], method) for w in range(R.shape[1])]
    return np.array([b.lower for b in bounds]), np.array([b.upper for b in bounds])


@pytest.mark.parametrize("method", ["spearman", "pearson"])
@pytest.mark.parametrize("integer", [False, True])
def test_equals_noise_ceiling_window_by_window(method, integer):
    R = _subject_window_rdms(integer=integer)
    if integer:
        assert all(np.unique(r).size < r.size for r in R.reshape(-1, R.shape[-1]))  # ties
    R0 = R.copy()
    lower, upper = window_noise_ceiling(R, method)
    ref_lower, ref_upper = _loop(R, method)
    assert lower.shape == upper.shape == (R.shape[1],)
    np.testing.assert_allclose(lower, ref_lower, rtol=0, atol=1e-10)
    np.testing.assert_allclose(upper, ref_upper, rtol=0, atol=1e-10)
    assert np.all(lower <= upper + 1e-12)
    assert lower[-1] > lower[0] + 0.3           # planted: the signal grows over windows
    np.testing.assert_array_equal(R, R0)        # input untouched


def test_blocks_of_windows_give_the_same_bounds(monkeypatch):
    R = _subject_window_rdms(seed=3, n_subjects=3, n_windows=9)
    whole = window_noise_ceiling(R)
    monkeypatch.setattr(temporal, "_CEILING_BLOCK", 2 * 3 * R.shape[-1])   # 2 windows a block
    blocked = window_noise_ceiling(R)
    np.testing.assert_allclose(blocked, whole, rtol=0, atol=1e-13)


def test_two_subjects_and_constant_window():
    R = _subject_window_rdms(seed=4, n_subjects=2, n_windows=3)
    np.testing.assert_allclose(window_noise_ceiling(R, "pearson"), _loop(R, "pearson"),
                               atol=1e-10)
    R[0, 1] = 1.0                                # one subject's RDM constant in window 1
    lower, upper = window_noise_ceiling(R)
    assert np.isnan(lower[1]) and np.isnan(upper[1])
    assert np.isfinite(lower[[0, 2]]).all()


def test_bad_input():
    R = _subject_window_rdms(n_subjects=2)
    with pytest.raises(ValueError, match="at least 2 subjects; got 1"):
        window_noise_ceiling(R[:1])
    with pytest.raises(ValueError, match=r"subject_rdms: expected .*got shape \(7, 45\)"):
        window_noise_ceiling(R[0])
    with pytest.raises(ValueError, match="method: expected 'spearman' or 'pearson'"):
        window_noise_ceiling(R, "cosine")


def test_average_ranks_equal_scipy_with_ties():
    from scipy.stats import rankdata

    rng = np.random.default_rng(5)
    V = np.vstack([rng.integers(0, 6, (7, 40)) / 3.0,            # many ties, exact thirds
                   rng.standard_normal((3, 40)),                 # none
                   np.full((1, 40), 2.0)])                       # one run
    np.testing.assert_array_equal(temporal._average_ranks(V), rankdata(V, axis=1))
