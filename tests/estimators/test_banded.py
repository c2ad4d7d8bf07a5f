"""BandedRidgeEncoder: bands from names, run-wise CV, split scores, nested CV, himalaya."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import LeaveOneGroupOut
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroprobe import BandedRidgeEncoder
from neuroprobe.exceptions import BandError
from neuroprobe.model_selection import cross_val_score_targets

ALPHAS = np.logspace(-1, 4, 6)


def _study(n=160, sizes=(12, 20), t=30, runs=4, seed=0, noise=1.5):
    """Targets driven by band 0 (even) or band 1 (odd), runs of equal length."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, sum(sizes))
    edges = np.cumsum([0, *sizes])
    truth = np.arange(t) % len(sizes)
    W = np.zeros((sum(sizes), t))
    for j, b in enumerate(truth):
        W[edges[b]:edges[b + 1], j] = rng.randn(sizes[b]) / np.sqrt(sizes[b])
    Y = X @ W + noise * rng.randn(n, t) * 0.5 + 2.0
    names = [f"conv{b + 3}:{i}" for b, s in enumerate(sizes) for i in range(s)]
    groups = np.repeat(np.arange(runs), n // runs)
    return X, Y, names, groups, truth


@parametrize_with_checks(
    [BandedRidgeEncoder(),
     BandedRidgeEncoder(bands=[slice(0, 1), slice(1, None)], candidates=4, alphas=[0.1, 10.0],
                        dtype="float64"),
     BandedRidgeEncoder(refine="gradient", n_iter_refine=3)],
    expected_failed_checks=lambda est: {} if est.bands is None else {
        "check_fit2d_1feature": "two bands of columns need at least two features"},
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_bands_from_prefixes_dataframe_and_pipeline():
    X, Y, names, groups, truth = _study()
    df = pd.DataFrame(X, columns=names)
    enc = BandedRidgeEncoder(bands=["conv3:", "conv4:"], alphas=ALPHAS, grid=5,
                             cv="leave-one-run-out").fit(df, Y, groups=groups)
    assert enc.band_names_ == ["conv3", "conv4"]
    np.testing.assert_array_equal(enc.bands_["conv4"], np.arange(12, 32))
    assert enc.best_gammas_.shape == (2, Y.shape[1])
    np.testing.assert_allclose(enc.best_gammas_.sum(axis=0), 1.0)
    # bands=None: one band per layer prefix, same fit
    auto = BandedRidgeEncoder(alphas=ALPHAS, grid=5, cv="leave-one-run-out").fit(
        df, Y, groups=groups)
    np.testing.assert_array_equal(auto.best_gammas_, enc.best_gammas_)
    # after a FeatureUnion with pandas output ("<step>__" prefixes)
    def pick(cols):
        return ColumnTransformer([("s", "passthrough", cols)], verbose_feature_names_out=False)

    union = FeatureUnion([("a", pick(names[:12])), ("b", pick(names[12:]))])
    pipe = make_pipeline(union, BandedRidgeEncoder(bands=["conv3:", "conv4:"], alphas=ALPHAS,
                                                   grid=5, cv="leave-one-run-out"))
    pipe.set_output(transform="pandas")
    pipe.fit(df, Y, bandedridgeencoder__groups=groups)
    assert str(pipe[-1].feature_names_in_[0]).startswith("a__conv3:")
    np.testing.assert_allclose(pipe[-1].coef_, enc.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pipe.predict(df), enc.predict(df), rtol=1e-5, atol=1e-5)
    # a ColumnTransformer, names through feature_names=
    ct = ColumnTransformer([("s3", StandardScaler(), names[:12]),
                            ("s4", StandardScaler(), names[12:])])
    Xc = ct.fit_transform(df)
    enc2 = BandedRidgeEncoder(bands={"early": "conv3:", "late": "conv4:"}, alphas=ALPHAS,
                              grid=5, cv="leave-one-run-out",
                              feature_names=ct.get_feature_names_out()).fit(Xc, Y, groups=groups)
    assert enc2.band_names_ == ["early", "late"]


def test_gammas_concentrate_on_planted_band_and_split_scores():
    X, Y, _, groups, truth = _study(n=240, t=40)
    tr, te = groups < 3, groups == 3
    enc = BandedRidgeEncoder(bands=[slice(0, 12), slice(12, 32)], alphas=ALPHAS, grid=10,
                             cv="leave-one-run-out").fit(X[tr], Y[tr], groups=groups[tr])
    planted = enc.best_gammas_[truth, np.arange(Y.shape[1])]
    assert np.all(planted >= 0.8), planted
    total = enc.score_targets(X[te], Y[te])
    np.testing.assert_allclose(total, r2_score(Y[te], enc.predict(X[te]),
                                               multioutput="raw_values"), rtol=1e-5, atol=1e-6)
    split = enc.score_targets(X[te], Y[te], split=True)
    assert split.shape == (2, Y.shape[1])
    np.testing.assert_allclose(split.sum(axis=0), total, rtol=1e-5, atol=1e-5)
    # the planted band carries the explained variance
    share = split[truth, np.arange(Y.shape[1])] / total
    assert np.all(share > 0.9), share
    assert isinstance(enc.score(X[te], Y[te]), float)


def test_split_equals_himalaya_r2_score_split():
    scoring = pytest.importorskip("himalaya.scoring")
    X, Y, _, groups, _ = _study()
    X = X - X.mean(axis=0)
    enc = BandedRidgeEncoder(bands=[slice(0, 12), slice(12, 32)], alphas=ALPHAS, candidates=6,
                             fit_intercept=False, dtype="float64",
                             cv="leave-one-run-out").fit(X[groups < 3], Y[groups < 3] - 2.0,
                                                         groups=groups[groups < 3])
    Xt, Yt = X[groups == 3], Y[groups == 3]
    Yt = Yt - Yt.mean(axis=0)
    preds = np.stack([Xt[:, cols] @ enc.coef_[cols] for cols in enc.bands_.values()])
    ref = np.asarray(scoring.r2_score_split(Yt, preds))
    np.testing.assert_allclose(enc.score_targets(Xt, Yt, split=True), ref, rtol=1e-8,
                               atol=1e-10)


def test_equals_brute_force_with_leave_one_run_out():
    X, Y, _, groups, _ = _study(n=120, sizes=(5, 7), t=5)
    cands = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.8, 0.2]])
    enc = BandedRidgeEncoder(bands=[slice(0, 5), slice(5, 12)], alphas=ALPHAS,
                             candidates=cands, dtype="float64",
                             cv="leave-one-run-out").fit(X, Y, groups=groups)
    folds = list(LeaveOneGroupOut().split(X, groups=groups))
    for j in range(Y.shape[1]):
        best, arg = -np.inf, None
        for gamma in cands:
            d = np.r_[np.full(5, np.sqrt(gamma[0])), np.full(7, np.sqrt(gamma[1]))]
            for alpha in ALPHAS:
                s = np.mean([r2_score(Y[te, j], Ridge(alpha=alpha).fit(X[tr] * d, Y[tr, j])
                                      .predict(X[te] * d)) for tr, te in folds])
                if s > best + 1e-12:
                    best, arg = s, (gamma, alpha, d)
        gamma, alpha, d = arg
        np.testing.assert_allclose(enc.best_gammas_[:, j], gamma)
        assert enc.best_alphas_[j] == alpha
        ref = Ridge(alpha=alpha).fit(X * d, Y[:, j])
        np.testing.assert_allclose(enc.coef_[:, j], ref.coef_ * d, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(enc.intercept_[j], ref.intercept_, rtol=1e-6)


class _CountingSplitter(LeaveOneGroupOut):
    """Records the groups every inner ``split`` sees."""

    seen = []

    def split(self, X, y=None, groups=None):
        type(self).seen.append((len(X), set(np.unique(groups))))
        return super().split(X, y, groups)


def test_nested_cv_inner_folds_see_only_training_runs():
    X, Y, _, groups, _ = _study(n=200, t=6, runs=5)
    _CountingSplitter.seen = []
    enc = BandedRidgeEncoder(bands=[slice(0, 12), slice(12, 32)], alphas=ALPHAS, candidates=4,
                             cv=_CountingSplitter())
    scores = cross_val_score_targets(enc, X, Y, cv=LeaveOneGroupOut(), groups=groups)
    assert scores.shape == (5, Y.shape[1])
    seen = _CountingSplitter.seen
    assert len(seen) == 5
    held_out = [set(range(5)) - runs for _, runs in seen]
    assert all(len(h) == 1 for h in held_out)
    assert {h.pop() for h in held_out} == set(range(5))
    assert all(rows == 160 for rows, _ in seen)  # four runs of 40 rows, never the held-out one


def test_bad_input_names_the_argument():
    X, Y, names, groups, _ = _study(n=40, t=2)
    df = pd.DataFrame(X, columns=names)
    with pytest.raises(BandError, match="prefix 'fc1:' names no feature"):
        BandedRidgeEncoder(bands=["conv3:", "fc1:"]).fit(df, Y)
    with pytest.raises(BandError, match="overlap"):
        BandedRidgeEncoder(bands=[slice(0, 20), slice(10, 32)]).fit(X, Y)
    with pytest.raises(BandError, match="belong to no band"):
        BandedRidgeEncoder(bands=[slice(0, 20)]).fit(X, Y)
    with pytest.raises(BandError, match="no feature names"):
        BandedRidgeEncoder(bands=["conv3:"]).fit(X, Y)
    with pytest.raises(ValueError, match="at least 5 runs in groups; got 4"):
        BandedRidgeEncoder(bands=[slice(0, 12), slice(12, 32)], cv=5).fit(X, Y, groups=groups)
    with pytest.raises(ValueError, match="needs groups"):
        BandedRidgeEncoder(cv="leave-one-run-out").fit(X, Y)
    with pytest.raises(ValueError, match="candidates"):
        BandedRidgeEncoder(bands=[slice(0, 12), slice(12, 32)], candidates=2).fit(X, Y)


def test_torch_backend_matches_numpy():
    pytest.importorskip("torch")
    X, Y, _, groups, _ = _study(n=80, sizes=(30, 60), t=8)  # kernel path
    kw = dict(bands=[slice(0, 30), slice(30, 90)], alphas=ALPHAS, candidates=5,
              cv="leave-one-run-out")
    a = BandedRidgeEncoder(**kw).fit(X, Y, groups=groups)
    b = BandedRidgeEncoder(backend="torch", **kw).fit(X, Y, groups=groups)
    assert a.solver_ == "kernel"
    np.testing.assert_allclose(a.cv_scores_, b.cv_scores_, atol=1e-4)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-3, atol=1e-3)


# --------------------------------------------------------------------------- refine="gradient"
def _refine_study():
    X, Y, _, groups, _ = _study(n=120, sizes=(5, 7), t=6, noise=3.0)
    kw = dict(bands=[slice(0, 5), slice(5, 12)], alphas=ALPHAS, candidates=5,
              cv="leave-one-run-out")
    return X, Y, groups, kw


def test_refine_raises_scores_and_refits_at_the_refined_values():
    X, Y, groups, kw = _refine_study()
    plain = BandedRidgeEncoder(**kw).fit(X, Y, groups=groups)
    assert not hasattr(plain, "refine_scores_")
    enc = BandedRidgeEncoder(refine="gradient", n_iter_refine=15, dtype="float64", **kw).fit(
        X, Y, groups=groups)
    start, end = enc.refine_scores_
    np.testing.assert_allclose(start, plain.cv_scores_.max(axis=0), rtol=1e-5)
    assert np.all(end >= start) and np.mean(end > start + 1e-6) > 0.5
    np.testing.assert_allclose(enc.best_gammas_.sum(axis=0), 1.0)
    folds = list(LeaveOneGroupOut().split(X, groups=groups))
    for j in range(Y.shape[1]):  # sklearn Ridge at the refined (gamma, alpha)
        g, alpha = enc.best_gammas_[:, j], enc.best_alphas_[j]
        d = np.r_[np.full(5, np.sqrt(g[0])), np.full(7, np.sqrt(g[1]))]
        cv = np.mean([r2_score(Y[te, j], Ridge(alpha=alpha).fit(X[tr] * d, Y[tr, j])
                               .predict(X[te] * d)) for tr, te in folds])
        np.testing.assert_allclose(cv, end[j], rtol=1e-8)
        ref = Ridge(alpha=alpha).fit(X * d, Y[:, j])
        np.testing.assert_allclose(enc.coef_[:, j], ref.coef_ * d, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(enc.intercept_[j], ref.intercept_, rtol=1e-6)
    # no steps: exactly the search's model
    zero = BandedRidgeEncoder(refine="gradient", n_iter_refine=0, **kw).fit(X, Y, groups=groups)
    np.testing.assert_array_equal(zero.coef_, plain.coef_)
    np.testing.assert_array_equal(zero.best_gammas_, plain.best_gammas_)


def test_refine_targets_subset_and_bad_values():
    X, Y, groups, kw = _refine_study()
    plain = BandedRidgeEncoder(**kw).fit(X, Y, groups=groups)
    top = BandedRidgeEncoder(refine="gradient", refine_targets=2, **kw).fit(X, Y, groups=groups)
    done = ~np.isnan(top.refine_scores_[1])
    assert done.sum() == 2
    best = plain.cv_scores_.max(axis=0)
    assert best[done].min() >= best[~done].max()
    np.testing.assert_array_equal(top.coef_[:, ~done], plain.coef_[:, ~done])
    mask = np.zeros(Y.shape[1], dtype=bool)
    mask[[1, 4]] = True
    sub = BandedRidgeEncoder(refine="gradient", refine_targets=mask, **kw).fit(
        X, Y, groups=groups)
    np.testing.assert_array_equal(~np.isnan(sub.refine_scores_[1]), mask)
    idx = BandedRidgeEncoder(refine="gradient", refine_targets=[4, 1], **kw).fit(
        X, Y, groups=groups)
    np.testing.assert_array_equal(idx.coef_, sub.coef_)
    with pytest.raises(ValueError, match="refine_targets"):
        BandedRidgeEncoder(refine="gradient", refine_targets=[0, 99], **kw).fit(
            X, Y, groups=groups)
    with pytest.raises(ValueError, match="refine"):
        BandedRidgeEncoder(refine="newton", **kw).fit(X, Y, groups=groups)


def test_refine_torch_matches_numpy():
    pytest.importorskip("torch")
    X, Y, groups, kw = _refine_study()
    a = BandedRidgeEncoder(refine="gradient", n_iter_refine=5, **kw).fit(X, Y, groups=groups)
    b = BandedRidgeEncoder(refine="gradient", n_iter_refine=5, backend="torch", **kw).fit(
        X, Y, groups=groups)
    np.testing.assert_allclose(a.refine_scores_, b.refine_scores_, atol=1e-5)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-3, atol=1e-3)
