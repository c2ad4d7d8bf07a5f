"""CKA kernels against closed forms, the HSIC estimators written out, and invariances."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from neuroprobe.cka import cka_matrix, linear_cka, rbf_cka


def _data(seed=0, n=25, p=6, q=9):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, p))
    Y = X @ r.normal(size=(p, q)) + r.normal(size=(n, q))
    return X, Y


def _hsic_unbiased(K, L):
    """Song et al. (2012), eq. 5, written out."""
    n = K.shape[0]
    K, L = K.copy(), L.copy()
    np.fill_diagonal(K, 0)
    np.fill_diagonal(L, 0)
    one = np.ones(n)
    return (np.trace(K @ L) + (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ K @ L @ one) / (n * (n - 3))


def _hsic_biased(K, L):
    n = K.shape[0]
    H = np.eye(n) - 1 / n
    return np.trace(K @ H @ L @ H)


def _cka(K, L, hsic):
    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


def _rbf(X, threshold):
    X = X - X.mean(0)
    sq = ((X[:, None] - X[None]) ** 2).sum(-1)
    return np.exp(-sq / (2 * threshold ** 2 * np.median(sq)))


def test_linear_closed_form():
    X, Y = _data()
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    expect = (np.linalg.norm(Yc.T @ Xc) ** 2
              / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc)))
    assert linear_cka(X, Y) == pytest.approx(expect, rel=1e-12)
    assert linear_cka(X, Y) == pytest.approx(_cka(X @ X.T, Y @ Y.T, _hsic_biased), rel=1e-10)


def test_linear_unbiased_equals_song_hsic():
    X, Y = _data(1)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    expect = _cka(Xc @ Xc.T, Yc @ Yc.T, _hsic_unbiased)
    got = linear_cka(X, Y, unbiased=True)
    assert got == pytest.approx(expect, rel=1e-10)
    assert abs(got - linear_cka(X, Y)) > 1e-3  # the two estimators really differ


@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("threshold", [0.5, 1.0])
def test_rbf_equals_written_out(unbiased, threshold):
    X, Y = _data(2)
    hsic = _hsic_unbiased if unbiased else _hsic_biased
    expect = _cka(_rbf(X, threshold), _rbf(Y, threshold), hsic)
    assert rbf_cka(X, Y, threshold, unbiased=unbiased) == pytest.approx(expect, rel=1e-10)


@pytest.mark.parametrize("unbiased", [False, True])
def test_invariances(unbiased):
    X, Y = _data(3)
    Q = ortho_group.rvs(Y.shape[1], random_state=0)
    base = linear_cka(X, Y, unbiased=unbiased)
    assert linear_cka(X, 3.7 * Y @ Q + 5.0, unbiased=unbiased) == pytest.approx(base, rel=1e-10)
    assert rbf_cka(X, 2.5 * Y @ Q, unbiased=unbiased) == pytest.approx(
        rbf_cka(X, Y, unbiased=unbiased), rel=1e-10)
    assert linear_cka(X, X, unbiased=unbiased) == pytest.approx(1.0, rel=1e-12)
    # not invariant to a general (non-orthogonal) linear map
    A = np.diag(np.linspace(0.1, 10, Y.shape[1]))
    assert abs(linear_cka(X, Y @ A) - linear_cka(X, Y)) > 1e-3


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("unbiased", [False, True])
def test_matrix_equals_pairwise(kernel, unbiased):
    r = np.random.default_rng(4)
    A = [r.normal(size=(20, p)) for p in (3, 7, 11)]
    B = {"a": A[0] @ r.normal(size=(3, 4)), "b": r.normal(size=(20, 5))}
    M = cka_matrix(A, B, kernel=kernel, unbiased=unbiased)
    f = linear_cka if kernel == "linear" else rbf_cka
    expect = [[f(a, b, unbiased=unbiased) for b in B.values()] for a in A]
    assert M.shape == (3, 2)
    np.testing.assert_allclose(M, expect, rtol=1e-12)
    S = cka_matrix(A, kernel=kernel, unbiased=unbiased)
    np.testing.assert_allclose(S, S.T, rtol=1e-12)
    np.testing.assert_allclose(np.diag(S), 1.0, rtol=1e-12)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("unbiased", [False, True])
def test_torch_equals_numpy(kernel, unbiased):
    pytest.importorskip("torch")
    r = np.random.default_rng(5)
    A = [r.normal(size=(24, p)) for p in (4, 9)]
    expect = cka_matrix(A, kernel=kernel, unbiased=unbiased)
    got = cka_matrix(A, kernel=kernel, unbiased=unbiased, backend="torch")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-5)


def test_bad_input():
    X, Y = _data()
    with pytest.raises(ValueError, match="same stimuli"):
        linear_cka(X, Y[:-1])
    with pytest.raises(ValueError, match="kernel"):
        cka_matrix([X], kernel="poly")
    with pytest.raises(ValueError, match="threshold"):
        rbf_cka(X, Y, threshold=0)
    with pytest.raises(ValueError, match="4 stimuli"):
        linear_cka(X[:3], Y[:3], unbiased=True)
    with pytest.raises(ValueError, match=r"A\[0\] must be 2-D"):
        cka_matrix([np.ones(4)])
    with pytest.raises(ValueError, match="NaN"):
        linear_cka(np.full((5, 2), np.nan), X[:5])
