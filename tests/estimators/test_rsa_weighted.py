"""WeightedRSA: components from feature groups, fit equal to the solver, CV over stimuli."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from sklearn.model_selection import KFold, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroprobe.estimators.rsa_weighted import WeightedRSA
from neuroprobe.solvers import rsa_fit as F


def _layers(seed=0, n=24):
    rng = np.random.default_rng(seed)
    L = [rng.standard_normal((n, 8)) for _ in range(3)]
    comps = np.stack([pdist(x, "correlation") for x in L])
    target = np.array([0.8, 0.0, 0.6]) @ comps
    subjects = target + 0.02 * rng.standard_normal((4, target.size))
    return np.hstack(L), comps, subjects


@parametrize_with_checks([WeightedRSA()])
def test_sklearn_contract(estimator, check):
    check(estimator)


def test_weights_equal_solver_and_planted_layers():
    X, comps, subjects = _layers()
    groups = {"a": slice(0, 8), "b": slice(8, 16), "c": slice(16, 24)}
    est = WeightedRSA(target_rdm=subjects, feature_groups=groups).fit(X)
    np.testing.assert_allclose(est.coef_, F.fit_weights(comps, subjects, "pearson"),
                               atol=1e-12)
    np.testing.assert_allclose(est.coef_, [0.8, 0.0, 0.6], atol=0.03)
    np.testing.assert_allclose(est.rdm_, est.coef_ @ comps)
    assert list(est.get_feature_names_out()) == ["a", "b", "c"]
    assert est.score(X) == pytest.approx(np.mean(
        [np.corrcoef(est.rdm_, s)[0, 1] for s in subjects]))


def test_cross_validation_over_stimuli():
    X, _, subjects = _layers(1, n=30)
    groups = [slice(0, 8), slice(8, 16), slice(16, 24)]
    pipe = WeightedRSA(target_rdm=subjects, feature_groups=groups)
    scores = cross_val_score(pipe, X, np.arange(30), cv=KFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,) and scores.min() > 0.9
    # held-out fold by hand: the fit sees only the training stimuli's rows and columns
    train, test = next(KFold(3, shuffle=True, random_state=0).split(X))
    est = WeightedRSA(target_rdm=subjects, feature_groups=groups).fit(X[train], train)
    assert est.score(X[test], test) == pytest.approx(scores[0])


def test_rank_comparison_needs_optimize():
    X, _, subjects = _layers()
    with pytest.raises(ValueError, match="cannot be fitted"):
        WeightedRSA(comparison="spearman", target_rdm=subjects).fit(X)
    est = WeightedRSA(comparison="spearman", fitter="optimize", target_rdm=subjects,
                      feature_groups=[slice(0, 8), slice(16, 24)], random_state=0).fit(X)
    assert np.all(est.coef_ >= 0)
