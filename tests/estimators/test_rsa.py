"""RSAScorer: scores, fitted RDMs, groups, pipelines and the sklearn contract."""

import numpy as np
import pytest
import scipy.stats
from scipy.spatial.distance import pdist
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroprobe.estimators.rsa import RSAScorer


def _data(seed=0, n=20):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 4))
    X = np.hstack([latent @ rng.standard_normal((4, 10)) + 0.3 * rng.standard_normal((n, 10)),
                   rng.standard_normal((n, 10))])  # columns 0-9 share the brain's geometry
    Y = latent @ rng.standard_normal((4, 15)) + 0.3 * rng.standard_normal((n, 15))
    return X, Y


def test_score_equals_scipy():
    X, Y = _data()
    est = RSAScorer().fit(X, Y)
    expected = scipy.stats.spearmanr(pdist(X, "correlation"), pdist(Y, "correlation"))[0]
    assert est.score(X, Y) == pytest.approx(expected)
    assert est.score(X) == pytest.approx(expected)  # fitted target RDM
    np.testing.assert_allclose(est.model_rdm_, pdist(X, "correlation"))
    np.testing.assert_allclose(est.target_rdm_, pdist(Y, "correlation"))
    est = RSAScorer(metric="euclidean", comparison="kendall_tau_a", target_metric="cosine")
    est.fit(X, Y)
    from neuroprobe.solvers.rdm import kendall

    assert est.score(X, Y) == pytest.approx(
        kendall(pdist(X, "euclidean"), pdist(Y, "cosine"), "a"))


def test_fixed_target_rdm_and_groups():
    X, Y = _data()
    target = pdist(Y, "correlation")
    est = RSAScorer(target_rdm=np.stack([target, pdist(Y[:, :5])]),
                    feature_groups={"good": slice(0, 10), "noise": np.arange(10, 20)}).fit(X)
    M = est.score_matrix(X)
    assert M.shape == (2, 2)
    assert est.model_names_ == ["good", "noise"]
    assert M[0, 0] == pytest.approx(scipy.stats.spearmanr(pdist(X[:, :10], "correlation"),
                                                          target)[0])
    assert M[0, 0] > M[1, 0] + 0.3  # the planted layer wins
    np.testing.assert_allclose(est.score_targets(X), M.ravel())
    assert est.score(X) == pytest.approx(M.mean())
    est = RSAScorer(target_groups=[np.arange(5), np.arange(5, 15)]).fit(X, Y)
    assert est.target_rdms_.shape == (2, 190)
    with pytest.raises(ValueError, match="target_rdm has 20 stimuli but X has 10"):
        RSAScorer(target_rdm=target).fit(X[:10])
    with pytest.raises(ValueError, match="needs Y"):
        RSAScorer().fit(X)
    with pytest.raises(ValueError, match="pass Y"):
        RSAScorer().fit(X, Y).score(X[:10])
    with pytest.raises(ValueError, match="feature_groups\\['a'\\]"):
        RSAScorer(feature_groups={"a": [40]}).fit(X, Y)


def test_pipeline_grid_search_picks_the_layer():
    X, Y = _data(1, n=40)
    layers = {"good": slice(0, 10), "noise": slice(10, 20)}
    pipe = Pipeline([("layer", FunctionTransformer()), ("rsa", RSAScorer())])
    grid = GridSearchCV(
        pipe,
        {"layer__func": [lambda x, s=s: x[:, s] for s in layers.values()]},
        cv=KFold(2),
    ).fit(X, Y)
    assert grid.best_index_ == 0
    assert grid.best_score_ > 0.3


def test_score_checks_n_features():
    X, Y = _data()
    est = RSAScorer().fit(X, Y)
    with pytest.raises(ValueError, match="X has 3 features, but RSAScorer is expecting 20"):
        est.score(X[:, :3], Y)


def test_torch_backend_matches_numpy():
    pytest.importorskip("torch")
    X, Y = _data()
    a = RSAScorer().fit(X, Y).score(X, Y)
    b = RSAScorer(backend="torch").fit(X.astype(np.float32), Y.astype(np.float32)).score(
        X.astype(np.float32), Y.astype(np.float32))
    assert b == pytest.approx(a, abs=1e-4)


@parametrize_with_checks(
    [RSAScorer(metric="euclidean")],
    expected_failed_checks=lambda est: {
        "check_n_features_in_after_fitting": (
            "calls score(X, y=...) by keyword; neuroprobe names the brain-response argument Y "
            "(the check of n_features_in_ itself is done: see test_score_checks_n_features)"
        ),
    },
)
def test_sklearn_contract(estimator, check):
    check(estimator)
