"""CKAScorer: score equals cka_matrix; Pipeline use; PermutationTest fast path equals refits."""

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from neuroprobe.cka import linear_cka, rbf_cka
from neuroprobe.estimators import CKAScorer, PermutationTest


def _data(seed=0, n=30):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, 6))
    return X, X @ r.normal(size=(6, 4)) + 2 * r.normal(size=(n, 4))


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("unbiased", [False, True])
def test_score_equals_function(kernel, unbiased):
    X, y = _data()
    est = CKAScorer(kernel=kernel, threshold=0.8, unbiased=unbiased).fit(X, y)
    f = (lambda a, b: linear_cka(a, b, unbiased=unbiased)) if kernel == "linear" else (
        lambda a, b: rbf_cka(a, b, 0.8, unbiased=unbiased))
    assert est.cka_ == pytest.approx(f(X, y), rel=1e-10)
    s = est.score(X, y)
    assert isinstance(s, float) and s == pytest.approx(f(X, y), rel=1e-10)


def test_pipeline():
    X, y = _data(1)
    pipe = make_pipeline(StandardScaler(), CKAScorer()).fit(X, y)
    Xs = (X - X.mean(0)) / X.std(0)
    assert pipe.score(X, y) == pytest.approx(linear_cka(Xs, y), rel=1e-10)


@pytest.mark.parametrize("unbiased", [False, True])
def test_permutation_fast_path_equals_refits(unbiased):
    X, y = _data(2, n=20)
    est = CKAScorer(kernel="rbf", unbiased=unbiased)
    pt = PermutationTest(est, n_permutations=49, random_state=0).fit(X, y)
    assert pt.fast_path_
    assert pt.score_ == pytest.approx(rbf_cka(X, y, unbiased=unbiased), rel=1e-10)
    perms = np.stack([np.random.default_rng(k).permutation(20) for k in range(7)])
    null = pt._null_from_permutations(X, y, perms)[:, 0]
    brute = [rbf_cka(X, y[p], unbiased=unbiased) for p in perms]
    np.testing.assert_allclose(null, brute, rtol=1e-10)
    expect_p = (np.sum(pt.null_distribution_ >= pt.score_) + 1) / 50
    assert pt.pvalue_ == pytest.approx(expect_p)
    assert pt.pvalue_ < 0.1  # a real effect


def test_bad_params_and_input():
    X, y = _data()
    with pytest.raises(ValueError, match="kernel"):
        CKAScorer(kernel="poly").fit(X, y)
    with pytest.raises(ValueError, match="threshold"):
        CKAScorer(threshold=-1).fit(X, y)
    with pytest.raises(ValueError, match="needs y"):
        CKAScorer().fit(X)
    with pytest.raises(ValueError, match=r"one row per row of X \(30\)"):
        CKAScorer().fit(X, y[:-2])
