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
