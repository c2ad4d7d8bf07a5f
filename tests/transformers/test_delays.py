"""Delayer and fold_delays against an np.roll-with-zeroing loop, run by run."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroprobe.transformers import Delayer
from neuroprobe.transformers.delays import fold_delays


def roll_reference(X, runs, delays):
    """Per run and delay: np.roll, then zero the rows that wrapped around."""
    out = np.zeros((X.shape[0], len(delays) * X.shape[1]))
    p = X.shape[1]
    for r in np.unique(runs):
        rows = np.flatnonzero(runs == r)
        block = X[rows]
        for j, d in enumerate(delays):
            rolled = np.roll(block, d, axis=0)
            if d > 0:
                rolled[:d] = 0.0
            elif d < 0:
                rolled[d:] = 0.0
            if abs(d) >= len(rows):
                rolled[:] = 0.0
            out[rows, j * p:(j + 1) * p] = rolled
    return out


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    runs = np.repeat([3, 1, 2], [17, 9, 3])  # unequal lengths, labels not sorted in the rows
    return rng.standard_normal((29, 4)), runs


@pytest.mark.parametrize("delays", [(1, 2, 3, 4), (0, 1, -2), (5,), (0,)])
def test_equals_roll_with_zeroing(data, delays):
    X, runs = data
    out = Delayer(delays=delays).fit_transform(X, runs=runs)
    np.testing.assert_array_equal(out, roll_reference(X, runs, delays))
    # the parameter form is the same
    np.testing.assert_array_equal(Delayer(delays=delays, runs=runs).fit_transform(X), out)


def test_no_leak_across_runs(data):
    X, runs = data
    out = Delayer(delays=(1, 2)).fit_transform(X, runs=runs)
    first_of_run = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])
    assert np.all(out[first_of_run] == 0)
    assert np.all(out[first_of_run + 1, 4:] == 0)  # delay 2 block, second scan of each run
    # a single run would have leaked run 3's last scan into run 1's first
    single = Delayer(delays=(1,)).fit_transform(X)
    assert np.any(single[first_of_run[1:]] != 0)


def test_float32_kept_and_input_unchanged(data):
    X, runs = data
    X32 = X.astype(np.float32)
    X0 = X32.copy()
    out = Delayer().fit_transform(X32, runs=runs)
    assert out.dtype == np.float32 and out.shape == (29, 16)
    np.testing.assert_array_equal(X32, X0)


def test_feature_names():
    d = Delayer(delays=(1, 2)).fit(np.zeros((5, 2)))
    assert list(d.get_feature_names_out()) == ["x0:d1", "x1:d1", "x0:d2", "x1:d2"]
    assert list(d.get_feature_names_out(["conv3:0", "conv3:1"]))[:2] == ["conv3:0:d1",
                                                                         "conv3:1:d1"]
    with pytest.raises(ValueError, match="input_features has 1 names"):
        d.get_feature_names_out(["a"])


def test_fold_delays_equals_loop():
    rng = np.random.default_rng(1)
    delays, p, t = (1, 2, 3), 4, 5
    coef = rng.standard_normal((t, p * len(delays)))
    folded = fold_delays(coef, p, delays)
    assert folded.shape == (p, 3, t)
    names = Delayer(delays=delays).fit(np.zeros((2, p))).get_feature_names_out()
    for f in range(p):
        for j, d in enumerate(delays):
            col = list(names).index(f"x{f}:d{d}")
            for v in range(t):
                assert folded[f, j, v] == coef[v, col]
    np.testing.assert_array_equal(fold_delays(coef.T, p, delays), folded)
    np.testing.assert_array_equal(fold_delays(coef[0], p, delays), folded[:, :, :1])
    with pytest.raises(ValueError, match="coef must have 4 features x 3 delays = 12"):
        fold_delays(coef[:, :5], p, delays)


def test_fold_recovers_planted_response():
    """A planted FIR response is recovered by Ridge on the delayed features, folded back."""
    rng = np.random.default_rng(2)
    runs = np.repeat([0, 1, 2], 200)
    X = rng.standard_normal((600, 2))
    delays = (1, 2, 3, 4)
    h = np.array([[0.0, 1.0, 0.5, 0.2], [0.3, -0.4, 0.0, 0.1]])  # (feature, delay)
    D = Delayer(delays=delays).fit_transform(X, runs=runs)
    y = D @ h.T.ravel()  # delay-major columns
    coef = Ridge(alpha=1e-6).fit(D, y).coef_
    np.testing.assert_allclose(fold_delays(coef, 2, delays)[:, :, 0], h, atol=1e-6)


def test_errors(data):
    X, runs = data
    with pytest.raises(ValueError, match="runs must give one run label per row"):
        Delayer().fit_transform(X, runs=runs[:-1])
    with pytest.raises(ValueError, match="delays must be a non-empty sequence of integers"):
        Delayer(delays=(1.5, 2)).fit(X)
    with pytest.raises(ValueError, match="delays must be distinct"):
        Delayer(delays=(1, 1)).fit(X)
    with pytest.raises(ValueError, match="features"):
        Delayer().fit(X).transform(X[:, :2])


@parametrize_with_checks(
    [Delayer()],
    expected_failed_checks=lambda est: {
        "check_methods_subset_invariance":
            "rows are consecutive scans: a delayed row copies an earlier row of the same run, "
            "which a subset (a batch) may not contain",
        "check_methods_sample_order_invariance":
            "rows are consecutive scans: shuffling them changes which scan precedes which",
    },
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
