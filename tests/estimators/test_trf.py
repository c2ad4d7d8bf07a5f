"""TemporalResponseFunction: equal to MNE's ReceptiveField (Ridge and TimeDelayingRidge
conventions), per-channel alphas equal to a brute-force leave-one-run-out loop, planted kernel
recovered, scikit-learn compatible."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroprobe.estimators.trf import TemporalResponseFunction, _lagged, lags_from_times

mne = pytest.importorskip("mne")
from mne.decoding import ReceptiveField  # noqa: E402


def _data(nt=150, ne=3, p=2, c=3, seed=0):
    rng = np.random.default_rng(seed)
    X3 = rng.standard_normal((nt, ne, p)) + 0.5
    Y3 = rng.standard_normal((nt, ne, c)) + 1.0
    Y3 += 2 * np.roll(X3[:, :, :1], 2, axis=0)
    X = X3.transpose(1, 0, 2).reshape(-1, p)
    Y = Y3.transpose(1, 0, 2).reshape(-1, c)
    return X3, Y3, X, Y, np.repeat(np.arange(ne), nt)


@pytest.mark.parametrize("edge", ["mean", "zero"])
@pytest.mark.parametrize("window", [(-0.02, 0.05), (0.01, 0.04), (-0.05, -0.01)])
def test_equals_mne_receptive_field(edge, window):
    X3, Y3, X, Y, runs = _data()
    est = Ridge(10.0) if edge == "mean" else 10.0
    rf = ReceptiveField(*window, 100.0, estimator=est, scoring="r2").fit(X3, Y3)
    trf = TemporalResponseFunction(*window, 100.0, alphas=10.0, edge=edge, dtype="float64",
                                   scoring="r2").fit(X, Y, runs=runs)
    np.testing.assert_array_equal(trf.lags_, rf.delays_)
    np.testing.assert_allclose(trf.coef_, rf.coef_.transpose(1, 2, 0), atol=1e-10)
    np.testing.assert_allclose(trf.intercept_, rf.estimator_.intercept_, atol=1e-10)
    ref = rf.predict(X3).transpose(1, 0, 2).reshape(-1, Y.shape[1])
    np.testing.assert_allclose(trf.predict(X, runs=runs), ref, atol=1e-10)
    # new data (other mean and scale): MNE's edge rule applied to the new X
    X3b = 1.3 * X3[:90] + 0.2
    ref = rf.predict(X3b).transpose(1, 0, 2).reshape(-1, Y.shape[1])
    got = trf.predict(X3b.transpose(1, 0, 2).reshape(-1, 2), runs=np.repeat(np.arange(3), 90))
    np.testing.assert_allclose(got, ref, atol=1e-10)
    np.testing.assert_allclose(trf.score_targets(X, Y, runs=runs), rf.score(X3, Y3), atol=1e-10)


def test_lags_match_mne():
    from mne.decoding.receptive_field import _times_to_delays

    for tmin, tmax, sf in [(-0.1, 0.4, 128.0), (0.0, 0.0, 10.0), (-0.033, 0.017, 300.0)]:
        np.testing.assert_array_equal(lags_from_times(tmin, tmax, sf),
                                      _times_to_delays(tmin, tmax, sf))
    with pytest.raises(ValueError, match="tmin"):
        lags_from_times(0.2, 0.1, 100.0)


def test_per_channel_alpha_equals_leave_one_run_out_loop():
    rng = np.random.default_rng(1)
    n, p, runs = 360, 2, np.repeat(np.arange(4), 90)
    X = rng.standard_normal((n, p))
    clean = np.roll(X[:, 0], 1) + 0.5 * np.roll(X[:, 1], 3)
    Y = clean[:, None] + rng.standard_normal((n, 3)) * np.array([0.1, 1.0, 5.0])
    alphas = np.logspace(-2, 4, 7)
    trf = TemporalResponseFunction(0.0, 0.04, 100.0, alphas=alphas, dtype="float64")
    trf.fit(X, Y, runs=runs)
    design = _lagged(X, lags_from_times(0.0, 0.04, 100.0), runs, "mean", None)
    scores = np.zeros((alphas.size, 3))
    for i, a in enumerate(alphas):
        for r in range(4):
            tr, te = runs != r, runs == r
            pred = Ridge(a).fit(design[tr], Y[tr]).predict(design[te])
            scores[i] += [np.corrcoef(pred[:, c], Y[te, c])[0, 1] for c in range(3)]
    np.testing.assert_allclose(trf.cv_scores_, scores / 4, atol=1e-8)
    np.testing.assert_array_equal(trf.best_alphas_, alphas[scores.argmax(0)])
    assert trf.best_alphas_[0] < trf.best_alphas_[2]  # noisier channel: more shrinkage


def test_planted_kernel_recovered():
    rng = np.random.default_rng(2)
    sfreq, n = 100.0, 3000
    X = rng.standard_normal((n, 2))
    lags = lags_from_times(-0.02, 0.1, sfreq)
    kernel = np.zeros((2, lags.size, 2))
    kernel[0, :, 0] = np.exp(-0.5 * ((lags - 5) / 1.5) ** 2)        # peak at 50 ms
    kernel[1, :, 1] = -np.exp(-0.5 * ((lags - 8) / 1.0) ** 2)       # trough at 80 ms
    runs = np.repeat(np.arange(3), n // 3)
    from neuroprobe.transformers import Delayer

    D = Delayer(delays=lags).fit(X).transform(X, runs=runs)
    Y = D @ kernel.transpose(1, 0, 2).reshape(-1, 2) + 0.3 * rng.standard_normal((n, 2))
    trf = TemporalResponseFunction(-0.02, 0.1, sfreq).fit(X, Y, runs=runs)
    assert trf.coef_.shape == (2, lags.size, 2)
    np.testing.assert_allclose(trf.coef_, kernel, atol=0.05)
    assert trf.times_[trf.coef_[0, :, 0].argmax()] == pytest.approx(0.05)
    assert trf.score(X, Y, runs=runs) > 0.8


@parametrize_with_checks(
    [TemporalResponseFunction()],
    expected_failed_checks=lambda est: {
        "check_methods_subset_invariance":
            "rows are consecutive samples: a lagged row copies an earlier row of the same run, "
            "which a subset (a batch) may not contain",
        "check_methods_sample_order_invariance":
            "rows are consecutive samples: shuffling them changes which sample precedes which",
    },
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
