"""cross_val_score_targets against a manual loop."""

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, KFold

from neuroprobe.estimators.encoding import VoxelwiseEncoder
from neuroprobe.metrics import correlation_score, r2_score
from neuroprobe.model_selection import cross_val_score_targets


def _data():
    rng = np.random.RandomState(0)
    X = rng.randn(48, 5)
    Y = X @ rng.randn(5, 7) + 2 * rng.randn(48, 7)
    return X, Y


def test_equals_manual_loop_for_encoder():
    X, Y = _data()
    enc = VoxelwiseEncoder(alphas=[0.1, 10.0, 1000.0], cv=3, dtype="float64")
    got = cross_val_score_targets(enc, X, Y, cv=4)
    assert got.shape == (4, 7)
    # the default splitter: shuffled KFold, seed 0 (as `neuroprobe encode --seed 0`)
    for k, (tr, te) in enumerate(KFold(4, shuffle=True, random_state=0).split(X)):
        fitted = VoxelwiseEncoder(alphas=[0.1, 10.0, 1000.0], cv=3, dtype="float64").fit(
            X[tr], Y[tr]
        )
        np.testing.assert_allclose(got[k], correlation_score(Y[te], fitted.predict(X[te])))


def test_groups_and_plain_sklearn_estimator():
    X, Y = _data()
    groups = np.repeat(np.arange(4), 12)
    with joblib.parallel_config(backend="threading"):  # n_jobs through joblib, cheap start
        got = cross_val_score_targets(Ridge(alpha=1.0), X, Y, cv=4, groups=groups, n_jobs=2)
    for k, (tr, te) in enumerate(GroupKFold(4).split(X, Y, groups)):
        pred = Ridge(alpha=1.0).fit(X[tr], Y[tr]).predict(X[te])
        np.testing.assert_allclose(got[k], correlation_score(Y[te], pred))


def test_hdf5_targets_stream(tmp_path):
    h5py = pytest.importorskip("h5py")
    X, Y = _data()
    enc = VoxelwiseEncoder(alphas=[1.0, 100.0], scoring="r2", dtype="float64", n_targets_batch=3)
    ref = cross_val_score_targets(enc, X, Y, cv=3)
    with h5py.File(tmp_path / "y.h5", "w") as fh:
        got = cross_val_score_targets(enc, X, fh.create_dataset("Y", data=Y), cv=3)
    np.testing.assert_allclose(got, ref)
    tr, te = next(iter(KFold(3, shuffle=True, random_state=0).split(X)))
    fitted = clone(enc).fit(X[tr], Y[tr])
    np.testing.assert_allclose(ref[0], r2_score(Y[te], fitted.predict(X[te])))


# ---------------------------------------------------------------- one CV default (issue 13, 4)
def test_default_cv_is_shuffled_stratified_seeded_and_grouped():
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    from neuroprobe.model_selection import default_cv, describe_cv

    y = np.repeat([0, 1, 2], 10)  # stimuli stored in category order
    X = np.zeros((30, 1))
    cv = default_cv(5, y)
    assert isinstance(cv, StratifiedKFold) and cv.shuffle and cv.random_state == 0
    for _, te in cv.split(X, y):
        assert np.bincount(y[te], minlength=3).tolist() == [2, 2, 2]
    # what the old plain KFold did on ordered stimuli: whole categories held out
    assert any(len(np.unique(y[te])) == 1 for _, te in KFold(5).split(X))
    values = np.linspace(0, 1, 30)
    cont = default_cv(5, values)
    assert type(cont) is KFold and cont.shuffle and cont.random_state == 0
    assert all(np.ptp(te) > len(te) - 1 for _, te in cont.split(X))  # no contiguous blocks
    assert default_cv(5, y, random_state=7).random_state == 7
    groups = np.repeat(np.arange(5), 6)
    assert type(default_cv(5, values, groups)) is GroupKFold
    assert isinstance(default_cv(5, y, groups), StratifiedGroupKFold)
    custom = KFold(3)
    assert default_cv(custom, y) is custom
    assert describe_cv(cv) == "StratifiedKFold(n_splits=5, random_state=0, shuffle=True)"
    # a RandomState gives fixed folds (one seed), and is not advanced
    rs = np.random.RandomState(3)
    state = rs.get_state()[1].copy()
    from_rs = default_cv(5, y, random_state=rs)
    first = [te for _, te in from_rs.split(X, y)]
    second = [te for _, te in from_rs.split(X, y)]
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    np.testing.assert_array_equal(rs.get_state()[1], state)


def test_cross_val_score_targets_seed_changes_folds_and_none_is_zero():
    X, Y = _data()
    est = Ridge(alpha=1.0)
    default = cross_val_score_targets(est, X, Y, cv=4)
    np.testing.assert_allclose(cross_val_score_targets(est, X, Y, cv=4, random_state=0), default)
    other = cross_val_score_targets(est, X, Y, cv=4, random_state=1)
    assert not np.allclose(other, default)
    for k, (tr, te) in enumerate(KFold(4, shuffle=True, random_state=1).split(X)):
        pred = Ridge(alpha=1.0).fit(X[tr], Y[tr]).predict(X[te])
        np.testing.assert_allclose(other[k], correlation_score(Y[te], pred))
def _brute_nested_r(X, Y, outer, inner_k, alphas):
    """Nested CV by brute force: sklearn Ridge per alpha and fold, np.corrcoef (0 if constant)."""

    def r(a, b):
        if np.ptp(b) == 0:
            return 0.0
        return np.corrcoef(a, b)[0, 1]

    out = np.zeros((len(outer), Y.shape[1]))
    for k, (tr, te) in enumerate(outer):
        for j in range(Y.shape[1]):
            inner = np.zeros(len(alphas))
            for itr, ite in KFold(inner_k).split(tr):
                for a, alpha in enumerate(alphas):
                    model = Ridge(alpha=alpha).fit(X[tr][itr], Y[tr][itr, j])
                    inner[a] += r(Y[tr][ite, j], model.predict(X[tr][ite])) / inner_k
            best = alphas[int(np.argmax(inner))]
            pred = Ridge(alpha=best).fit(X[tr], Y[tr, j]).predict(X[te])
            out[k, j] = r(Y[te, j], pred)
    return out


@pytest.mark.parametrize("p", [20, 150])  # primal (moments) and kernel paths
def test_pure_noise_targets_average_all_folds_and_match_brute_force(p):
    """Pure-noise voxels: no NaN fold, mean r ~ 0, equal to a brute-force sklearn loop.

    Small-valued features make the largest alpha's predictions constant to float32 rounding:
    they used to score NaN (36% of the voxels of such a run lost folds, with a warning blaming
    the targets) and the NaN-skipping fold means then selected those alphas.
    """
    import warnings

    rng = np.random.RandomState(0)
    X = 0.01 * rng.randn(90, p)
    Y = rng.randn(90, 300)
    alphas = np.logspace(-2, 7, 10)
    enc = VoxelwiseEncoder(alphas=alphas, cv=3)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        got = cross_val_score_targets(enc, X.astype(np.float32), Y.astype(np.float32), cv=5)
    assert not [str(w.message) for w in rec if "zero variance" in str(w.message)]
    assert np.isfinite(got).all()
    assert abs(got.mean()) < 0.02  # 1500 fold scores of noise: SE ~ 0.006
    # the same pipeline in float64 against brute force (first targets; it is slow)
    enc64 = VoxelwiseEncoder(alphas=alphas, cv=3, dtype="float64")
    got64 = cross_val_score_targets(enc64, X, Y[:, :5], cv=5)
    ref = _brute_nested_r(X, Y[:, :5], list(KFold(5, shuffle=True, random_state=0).split(X)), 3,
                          alphas)
    np.testing.assert_allclose(got64, ref, atol=1e-6)


def test_zero_variance_warnings_once_per_call_with_the_right_cause():
    import warnings

    from neuroprobe.metrics import ZeroVarianceWarning

    rng = np.random.RandomState(1)
    X, Y = rng.randn(40, 4), rng.randn(40, 5)
    Y[:, 2] = 7.0  # a truly constant target
    Y[:, 4] = np.repeat(np.arange(5.0), 8)  # varies, but is constant in each held-out fold
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        got = cross_val_score_targets(VoxelwiseEncoder(alphas=[1.0, 10.0]), X, Y, cv=KFold(5))
    msgs = [str(w.message) for w in rec]
    assert all(issubclass(w.category, ZeroVarianceWarning) for w in rec)
    assert msgs == [
        "1 of 5 target(s) have zero variance in the training samples of 5 of 5 fold(s); "
        "their scores there are NaN (undefined).",
        "2 of 5 target(s) have zero variance in the held-out samples of 5 of 5 fold(s); "
        "their scores there are NaN (undefined).",
    ]
    assert np.isnan(got[:, [2, 4]]).all() and np.isfinite(got[:, [0, 1, 3]]).all()
    # features that never vary (a dead layer): constant predictions, scored 0, one warning
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        got = cross_val_score_targets(VoxelwiseEncoder(alphas=[1.0]), np.ones((40, 3)),
                                      Y[:, [0, 1]], cv=4)
    assert [str(w.message) for w in rec] == [
        "predictions are constant for 2 of 2 target(s) in the held-out samples of 4 of 4 fold(s) "
        "(alpha = 1); scored 0 (no correlation), as himalaya does."
    ]
    np.testing.assert_array_equal(got, 0.0)
