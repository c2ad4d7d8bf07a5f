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
    for k, (tr, te) in enumerate(KFold(4).split(X)):
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
    tr, te = next(iter(KFold(3).split(X)))
    fitted = clone(enc).fit(X[tr], Y[tr])
    np.testing.assert_allclose(ref[0], r2_score(Y[te], fitted.predict(X[te])))
