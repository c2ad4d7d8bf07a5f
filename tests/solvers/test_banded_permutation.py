"""Banded ridge permutation nulls at fixed hyperparameters equal sklearn Ridge refits."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import explained_variance_score, r2_score
from sklearn.model_selection import KFold

from neuroprobe.solvers.backend import get_backend
from neuroprobe.solvers.banded import make_banded_plan
from neuroprobe.solvers.banded_permutation import banded_permutation_scores

BANDS = [np.arange(0, 3), np.arange(3, 7)]
CANDIDATES = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.8]])


def _problem(n=36, p=7, t=4, seed=0, offset=3.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + offset  # raw feature means: the split's intercept part
    Y = X[:, :3] @ rng.standard_normal((3, t)) + rng.standard_normal((n, t)) + 5.0
    folds = list(KFold(3).split(X))
    best_c = rng.integers(0, len(CANDIDATES), size=(len(folds), t))
    best_a = 10.0 ** rng.uniform(-1, 2, size=(len(folds), t))
    perms = np.stack([rng.permutation(n) for _ in range(5)])
    return X, Y, folds, best_c, best_a, perms


def _band_of(p):
    out = np.empty(p, dtype=int)
    for b, cols in enumerate(BANDS):
        out[cols] = b
    return out


def _refit_statistics(X, Y, folds, best_c, best_a, fit_intercept, split):
    """Brute force: one sklearn Ridge per fold and target on sqrt(gamma)-scaled features."""
    band_of = _band_of(X.shape[1])
    per_fold = []
    for f, (train, test) in enumerate(folds):
        rows = []
        for t in range(Y.shape[1]):
            gamma = CANDIDATES[best_c[f, t]]
            scale = np.sqrt(gamma)[band_of]
            model = Ridge(alpha=best_a[f, t], fit_intercept=fit_intercept, solver="svd")
            model.fit(X[train] * scale, Y[train, t])
            pred = model.predict(X[test] * scale)
            if not split:
                rows.append([r2_score(Y[test, t], pred)])
                continue
            coef = model.coef_ * scale  # in the original feature space
            bands = np.stack([X[test][:, c] @ coef[c] for c in BANDS])
            bands -= bands.mean(axis=1, keepdims=True)  # centred on the held-out rows
            y_c = Y[test, t] - Y[test, t].mean()
            shares = ((2 * y_c - bands.sum(axis=0)) * bands).sum(axis=1) / (y_c @ y_c)
            np.testing.assert_allclose(shares.sum(), explained_variance_score(Y[test, t], pred),
                                       atol=1e-10)
            rows.append(shares)
        per_fold.append(np.array(rows).T)  # (k, t)
    out = np.mean(per_fold, axis=0)
    return out if split else out[0]


@pytest.mark.parametrize("solver", ["primal", "kernel"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("split", [False, True])
def test_fixed_hyperparameter_null_equals_sklearn_refits(solver, fit_intercept, split):
    X, Y, folds, best_c, best_a, perms = _problem()
    plan = make_banded_plan(X, BANDS, folds, fit_intercept=fit_intercept,
                            backend=get_backend("numpy"), dtype=np.float64, solver=solver)
    observed, null = banded_permutation_scores(plan, Y, perms, CANDIDATES, best_c, best_a,
                                               scoring="r2", split=split)
    np.testing.assert_allclose(
        observed, _refit_statistics(X, Y, folds, best_c, best_a, fit_intercept, split),
        rtol=1e-8, atol=1e-10)
    expected = [_refit_statistics(X, Y[p], folds, best_c, best_a, fit_intercept, split)
                for p in perms]
    np.testing.assert_allclose(null, expected, rtol=1e-8, atol=1e-10)


def test_more_features_than_samples_and_small_batches_and_float32():
    """The kernel route (p > n), batches of one column, float32: same null as one batch."""
    rng = np.random.default_rng(1)
    n, t = 30, 3
    bands = [np.arange(0, 25), np.arange(25, 45)]
    X = rng.standard_normal((n, 45))
    Y = X[:, :5] @ rng.standard_normal((5, t)) + rng.standard_normal((n, t))
    folds = list(KFold(3).split(X))
    best_c = rng.integers(0, 3, size=(3, t))
    best_a = np.full((3, t), 5.0)
    perms = np.stack([rng.permutation(n) for _ in range(4)])
    be = get_backend("numpy")
    plan64 = make_banded_plan(X, bands, folds, backend=be, dtype=np.float64)
    assert plan64.kind == "kernel"
    ref = banded_permutation_scores(plan64, Y, perms, CANDIDATES[:3], best_c, best_a,
                                    scoring="correlation")
    one = banded_permutation_scores(plan64, Y, perms, CANDIDATES[:3], best_c, best_a,
                                    scoring="correlation", batch_bytes=1)
    np.testing.assert_allclose(one[1], ref[1], rtol=1e-12, atol=1e-12)
    # the same per-target brute force as above, correlation of the held-out predictions
    stat = np.zeros(t)
    for f, (train, test) in enumerate(folds):
        for j in range(t):
            scale = np.sqrt(CANDIDATES[best_c[f, j]])[np.repeat([0, 1], [25, 20])]
            pred = Ridge(alpha=5.0, solver="svd").fit(X[train] * scale, Y[train, j]).predict(
                X[test] * scale)
            stat[j] += np.corrcoef(pred, Y[test, j])[0, 1] / len(folds)
    np.testing.assert_allclose(ref[0], stat, atol=1e-10)
    plan32 = make_banded_plan(X, bands, folds, backend=be, dtype=np.float32)
    low = banded_permutation_scores(plan32, Y, perms, CANDIDATES[:3], best_c, best_a,
                                    scoring="correlation")
    np.testing.assert_allclose(low[1], ref[1], atol=2e-4)


def test_one_choice_for_every_fold_and_bad_permutations():
    X, Y, folds, best_c, best_a, perms = _problem()
    plan = make_banded_plan(X, BANDS, folds, backend=get_backend("numpy"), dtype=np.float64)
    shared = banded_permutation_scores(plan, Y, perms, CANDIDATES, best_c[0], best_a[0])
    tiled = banded_permutation_scores(plan, Y, perms, CANDIDATES, np.tile(best_c[0], (3, 1)),
                                      np.tile(best_a[0], (3, 1)))
    np.testing.assert_array_equal(shared[1], tiled[1])
    with pytest.raises(ValueError, match=r"permutations must have shape \(n_permutations, 36\)"):
        banded_permutation_scores(plan, Y, perms[:, :5], CANDIDATES, best_c, best_a)


@pytest.mark.parametrize("solver", ["primal", "kernel"])
def test_torch_backend_equals_numpy(solver):
    pytest.importorskip("torch")
    X, Y, folds, best_c, best_a, perms = _problem()
    out = {}
    for name in ("numpy", "torch"):
        plan = make_banded_plan(X, BANDS, folds, backend=get_backend(name), dtype=np.float64,
                                solver=solver)
        out[name] = [banded_permutation_scores(plan, Y, perms, CANDIDATES, best_c, best_a,
                                               split=split) for split in (False, True)]
    for a, b in zip(out["numpy"], out["torch"]):
        np.testing.assert_allclose(a[0], b[0], atol=1e-12)
        np.testing.assert_allclose(a[1], b[1], atol=1e-12)
