"""variance_partitioning: planted unique / shared variance recovered (k = 2, 3), bands, errors."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from neuroprobe.estimators.encoding import VoxelwiseEncoder
from neuroprobe.exceptions import BandError, ZeroVarianceWarning
from neuroprobe.partition import resolve_bands, variance_partitioning
from neuroprobe.solvers.partition import partition_components, subset_masks


def _simulate(k, n=800, n_voxels=30, seed=0, per=2, noise=0.7):
    """One latent signal per atom of the Venn diagram; band i carries (mixed) the latents of
    every atom containing i; voxel v weights atom S by w[S, v]. True atom = w^2 / total var."""
    rng = np.random.default_rng(seed)
    masks = subset_masks(k)
    z = {m: rng.standard_normal((n, per)) for m in masks}
    bands = []
    for i in range(k):
        own = np.hstack([z[m] for m in masks if (m >> i) & 1])
        bands.append(own @ rng.standard_normal((own.shape[1], own.shape[1])))
    w = rng.uniform(0, 1, (masks.size, n_voxels)) * (rng.uniform(size=(masks.size, n_voxels)) < .7)
    Y = sum(z[m] @ np.full((per, 1), 1 / np.sqrt(per)) * w[j] for j, m in enumerate(masks))
    Y = Y + noise * rng.standard_normal((n, n_voxels))
    truth = w**2 / ((w**2).sum(axis=0) + noise**2)
    edges = np.cumsum([0] + [b.shape[1] for b in bands])
    spec = {f"b{i}": slice(edges[i], edges[i + 1]) for i in range(k)}
    return np.hstack(bands), Y, spec, truth


@pytest.mark.parametrize("k", [2, 3])
def test_planted_unique_and_shared_variance_recovered(k):
    X, Y, spec, truth = _simulate(k)
    vp = variance_partitioning(VoxelwiseEncoder(alphas=[0.01, 1.0, 100.0], scoring="r2"), X, Y,
                               spec, cv=5, random_state=0)
    assert vp.components.shape == truth.shape
    err = np.abs(vp.components - truth)
    assert err.mean() < 0.03 and err.max() < 0.15
    np.testing.assert_allclose(vp.components.mean(axis=1), truth.mean(axis=1), atol=0.05)
    # the atoms sum to the R2 of the full union, voxel by voxel
    np.testing.assert_allclose(vp.components.sum(axis=0), vp.r2[-1], atol=1e-10)
    np.testing.assert_allclose(vp.components, partition_components(vp.r2))


def test_union_r2_is_the_mean_held_out_r2_of_a_refit_on_the_union_columns():
    """Brute force: sklearn Ridge refit per fold on each union's columns, R2 per voxel."""
    X, Y, spec, _ = _simulate(2, n=120, n_voxels=4, seed=3)
    folds = list(KFold(4).split(X))
    vp = variance_partitioning(Ridge(alpha=1.0), X, Y, spec, cv=folds)
    a, b = (np.arange(X.shape[1])[spec[name]] for name in ("b0", "b1"))
    cols = {1: a, 2: b, 3: np.r_[a, b]}
    for m, c in cols.items():
        per_fold = []
        for tr, te in folds:
            pred = Ridge(alpha=1.0).fit(X[tr][:, c], Y[tr]).predict(X[te][:, c])
            ss_res = ((Y[te] - pred) ** 2).sum(0)
            per_fold.append(1 - ss_res / ((Y[te] - Y[te].mean(0)) ** 2).sum(0))
        np.testing.assert_allclose(vp.r2[m - 1], np.mean(per_fold, axis=0), rtol=1e-10)
    assert vp.r2_folds.shape == (4, 3, 4)
    import joblib

    with joblib.parallel_config(backend="threading"):  # (fold, union) fits in parallel: same
        par = variance_partitioning(Ridge(alpha=1.0), X, Y, spec, cv=folds, n_jobs=2)
    np.testing.assert_allclose(par.r2_folds, vp.r2_folds, rtol=1e-12)


def test_negative_estimates_are_reported_and_tables():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((150, 10))
    Y = X[:, :2] @ rng.standard_normal((2, 40)) + 2 * rng.standard_normal((150, 40))
    names = [f"conv3:{i}" for i in range(5)] + [f"fc1:{i}" for i in range(5)]
    groups = np.repeat(np.arange(5), 30)
    vp = variance_partitioning(None, pd.DataFrame(X, columns=names), Y, ["conv3:", "fc1"],
                               groups=groups)
    assert vp.bands == ["conv3", "fc1"]
    assert vp.r2_folds.shape[0] == 5  # leave-one-run-out by default with groups
    unique_fc1 = vp.components[1]  # fc1 explains nothing: noise around 0, some negative
    assert np.any(unique_fc1 < 0)
    table = vp.to_frame()
    assert list(table.columns) == ["component", "kind", "bands", "voxel", "value"]
    neg = table[(table.component == "unique:fc1") & (table.value < 0)]
    assert len(neg) == int(np.sum(unique_fc1 < 0))  # not clipped, not hidden
    assert set(table.kind) == {"unique", "shared", "r2"}
    maps = vp.maps()
    np.testing.assert_array_equal(maps["shared:conv3&fc1"], vp.components[2])
    np.testing.assert_array_equal(maps["r2:conv3+fc1"], vp.r2[2])
    summary = vp.summary()
    assert summary.loc["unique:fc1", "fraction_negative"] == pytest.approx(
        np.mean(unique_fc1 < 0))


class _Banded(RegressorMixin, BaseEstimator):
    """Records the bands it is given (the protocol of a banded ridge)."""

    seen = []

    def __init__(self, bands=None):
        self.bands = bands

    def fit(self, X, y):
        type(self).seen.append((X.shape[1], dict(self.bands)))
        self.model_ = Ridge(1.0).fit(X, y)
        return self

    def predict(self, X):
        return self.model_.predict(X)


def test_an_estimator_with_bands_gets_the_union_slices():
    _Banded.seen = []
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((40, 7)), rng.standard_normal((40, 3))
    variance_partitioning(_Banded(), X, Y, {"a": [5, 6], "b": slice(0, 3)}, cv=2)
    assert len(_Banded.seen) == 2 * 3
    assert _Banded.seen[2] == (5, {"a": slice(0, 2), "b": slice(2, 5)})
    assert _Banded.seen[1] == (3, {"b": slice(0, 3)})


def test_band_errors():
    names = np.array(["conv3:0", "conv3:1", "fc1:0"])
    assert {k: list(v) for k, v in resolve_bands(["conv3", "fc1:"], 3, names).items()} == {
        "conv3": [0, 1], "fc1": [2]}
    assert list(resolve_bands({"x": ["fc1:0"]}, 3, names)["x"]) == [2]
    with pytest.raises(BandError, match="'conv4'.*names no feature"):
        resolve_bands(["conv4"], 3, names)
    with pytest.raises(BandError, match="overlap"):
        resolve_bands({"a": slice(0, 2), "b": [1, 2]}, 3, names)
    with pytest.raises(BandError, match="feature names"):
        resolve_bands(["conv3:"], 3)
    with pytest.raises(BandError, match=r"\[0, 3\)"):
        resolve_bands({"a": [3]}, 3)
    with pytest.raises(BandError, match="empty"):
        resolve_bands({}, 3)
    with pytest.raises(ValueError, match="rows"):
        variance_partitioning(None, np.zeros((5, 2)), np.zeros((4, 1)), [slice(0, 1)])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_shared_ridge_blocks_equal_the_per_union_fits(dtype, monkeypatch):
    """The ridge path (one cross-product / one Gram matrix per band per fold, shared by the
    unions) equals the per-union clone-and-fit path: primal and kernel unions, runs, a
    column in no band, a constant voxel."""
    import neuroprobe.partition as partition

    rng = np.random.default_rng(4)
    n = 80
    X = rng.standard_normal((n, 4 + 6 + 90 + 1))
    Y = X[:, :10] @ rng.standard_normal((10, 12)) + X[:, 10:100] @ rng.standard_normal(
        (90, 12)) * 0.1 + rng.standard_normal((n, 12))
    Y[:, 5] = 2.0
    bands = {"a": slice(0, 4), "b": slice(4, 10), "c": slice(10, 100)}  # column 100: no band
    groups = np.repeat(np.arange(4), n // 4)
    est = VoxelwiseEncoder(scoring="r2", cv=3, dtype=dtype, alphas=[0.1, 10.0, 1000.0])
    calls = []
    real = partition.union_ridge_scores
    monkeypatch.setattr(partition, "union_ridge_scores",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    with pytest.warns(ZeroVarianceWarning):
        fast = variance_partitioning(est, X, Y, bands, groups=groups)
    assert len(calls) == 4  # one call (all 7 unions) per outer fold
    monkeypatch.setattr(partition, "_shared_ridge", lambda estimator: False)
    with pytest.warns(ZeroVarianceWarning):
        slow = variance_partitioning(est, X, Y, bands, groups=groups)
    assert np.isnan(fast.r2_folds[:, :, 5]).all() and np.isnan(slow.r2_folds[:, :, 5]).all()
    tol = {"float64": dict(rtol=1e-9, atol=1e-11), "float32": dict(rtol=1e-4, atol=1e-5)}[dtype]
    np.testing.assert_allclose(fast.r2_folds, slow.r2_folds, **tol)
    np.testing.assert_allclose(fast.components, slow.components, **tol)


def test_shared_ridge_is_only_for_ridge_with_per_target_alphas():
    from neuroprobe.partition import _shared_ridge

    assert _shared_ridge(VoxelwiseEncoder())
    assert not _shared_ridge(VoxelwiseEncoder(alpha_per_target=False))
    assert not _shared_ridge(VoxelwiseEncoder(cv=None))
    assert not _shared_ridge(VoxelwiseEncoder(penalty=None))
    assert not _shared_ridge(Ridge())
