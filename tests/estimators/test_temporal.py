"""TimeResolved (RSA fast path = generic path = mne-rsa; planted latency) and
TemporalGeneralization (= MNE's GeneralizingEstimator on the same folds)."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import StratifiedKFold

from neuroprobe import RSAScorer, TemporalGeneralization, TimeResolved
from neuroprobe.io.epochs import EpochData

mne = pytest.importorskip("mne")
mne_rsa = pytest.importorskip("mne_rsa")


def _planted(n=16, n_ch=8, n_times=30, peak=18, seed=0):
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((n, 5))
    Y = rng.standard_normal((n, n_ch, n_times))
    W = rng.standard_normal((5, n_ch))
    Y[:, :, peak - 1:peak + 2] += 3 * (feats @ W)[:, :, None]
    return feats, Y


def test_rsa_fast_path_equals_generic_and_mne_rsa():
    X, Y = _planted()
    fast = TimeResolved(RSAScorer(), temporal_radius=2).fit(X, Y).score_targets(X, Y)

    tr = TimeResolved(RSAScorer(), temporal_radius=2)
    tr._fast = lambda: False  # force the generic per-window path
    slow = tr.fit(X, Y).score_targets(X, Y)
    np.testing.assert_allclose(fast, slow, atol=1e-10)
    threads = TimeResolved(RSAScorer(), temporal_radius=2, n_jobs=2).fit(X, Y)
    np.testing.assert_allclose(threads.score_targets(X, Y), fast, atol=1e-12)
    from scipy.spatial.distance import pdist
    ref = mne_rsa.rsa_epochs(mne.EpochsArray(Y, mne.create_info(8, 100.0, "eeg"), verbose=False),
                             pdist(X, "correlation"), temporal_radius=0.02,
                             y=np.arange(16), verbose=False)
    np.testing.assert_allclose(fast[0], ref.data[0], atol=1e-6)


def test_planted_latency_recovered_and_step():
    X, Y = _planted(peak=18)
    tr = TimeResolved(RSAScorer(), temporal_radius=1, step=2).fit(X, EpochData(
        Y, np.arange(30) / 100, np.arange(16).astype(str), 100.0))
    curve = tr.score_targets(X, Y)[0]
    assert tr.times_[np.argmax(curve)] in (17, 18, 19)
    assert curve.shape == (len(range(1, 29, 2)),)


def test_generic_encoder_curve():
    X, Y = _planted()
    tr = TimeResolved(Ridge(1.0)).fit(X, Y)
    s = tr.score_targets(X, Y)
    assert s.shape == (1, 30)
    ref = Ridge(1.0).fit(X, Y[:, :, 5]).score(X, Y[:, :, 5])
    np.testing.assert_allclose(s[0, 5], ref)


def test_bad_params():
    X, Y = _planted()
    with pytest.raises(ValueError, match="temporal_radius"):
        TimeResolved(RSAScorer(), temporal_radius=20).fit(X, Y)
    with pytest.raises(ValueError, match="temporal_radius"):
        TimeResolved(RSAScorer(), temporal_radius=-1).fit(X, Y)
    with pytest.raises(ValueError, match="y: expected brain data"):
        TimeResolved(RSAScorer()).fit(X, Y[:, :, 0])


def test_generalization_equals_mne():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    X = rng.standard_normal((40, 4, 10))
    X[y == 1, :, 4:8] += 0.8
    for train, test in StratifiedKFold(3).split(X[:, 0, 0], y):
        ours = TemporalGeneralization(LogisticRegression()).fit(X[train], y[train])
        ref = mne.decoding.GeneralizingEstimator(LogisticRegression(), scoring="accuracy")
        ref.fit(X[train], y[train])
        np.testing.assert_allclose(ours.score(X[test], y[test]), ref.score(X[test], y[test]))


def test_sklearn_contract_and_gridsearch():
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, KFold

    X, Y = _planted(n=20)
    est = TimeResolved(RSAScorer(), temporal_radius=1, step=3)
    assert clone(est).get_params()["step"] == 3
    assert est.fit(X, Y) is est
    search = GridSearchCV(TimeResolved(RSAScorer()), {"temporal_radius": [0, 1]},
                          cv=KFold(2)).fit(X, Y)
    assert search.best_params_["temporal_radius"] in (0, 1)
    ref = TimeResolved(RSAScorer(), temporal_radius=1).fit(X[10:], Y[10:]).score(X[:10], Y[:10])
    np.testing.assert_allclose(search.cv_results_["split0_test_score"][1], ref)


@pytest.mark.parametrize("radius,step", [(0, 1), (2, 3)])
def test_batched_encoder_equals_per_window_clones(radius, step):
    from neuroprobe import VoxelwiseEncoder

    X, Y = _planted(n=40, n_ch=6, n_times=20)
    enc = VoxelwiseEncoder(alphas=[0.1, 1.0, 10.0, 100.0], cv=4, dtype="float64")
    fast = TimeResolved(enc, temporal_radius=radius, step=step).fit(X, Y)
    assert hasattr(fast, "estimator_") and not hasattr(fast, "estimators_")
    slow = TimeResolved(enc, temporal_radius=radius, step=step)
    slow._batched = lambda: False                    # force one clone per window
    slow.fit(X, Y)
    np.testing.assert_allclose(fast.score_targets(X, Y), slow.score_targets(X, Y), atol=1e-10)
    assert fast.score_targets(X, Y).shape == (6 * (2 * radius + 1), len(fast.times_))
    for est, t in zip(slow.estimators_, fast.times_):   # same alphas per channel and window
        w = np.searchsorted(fast.times_, t)
        n_t = 6 * (2 * radius + 1)
        np.testing.assert_array_equal(est.best_alphas_,
                                      fast.estimator_.best_alphas_[w * n_t:(w + 1) * n_t])
    # one shared alpha: not independent per window, so one clone per window
    shared = TimeResolved(VoxelwiseEncoder(alpha_per_target=False), temporal_radius=radius)
    assert not shared._batched()


def test_spatial_searchlight_equals_time_resolved_per_neighbourhood():
    X, Y = _planted(n=12, n_ch=6, n_times=14)
    rng = np.random.default_rng(1)
    A = rng.random((6, 6)) < 0.4
    np.fill_diagonal(A, True)
    sl = TimeResolved(RSAScorer(), temporal_radius=1, step=2, spatial_neighbours=A).fit(X, Y)
    got = sl.score_targets(X, Y)
    assert got.shape == (6, len(sl.times_))
    for c in range(6):
        ref = TimeResolved(RSAScorer(), temporal_radius=1, step=2).fit(X, Y[:, A[c]])
        np.testing.assert_allclose(got[c], ref.score_targets(X, Y[:, A[c]])[0], atol=1e-10)
    from neuroprobe import VoxelwiseEncoder

    with pytest.raises(ValueError, match="spatial_neighbours"):
        TimeResolved(VoxelwiseEncoder(), spatial_neighbours=A).fit(X, Y)
