"""Weighted RDM fits equal rsatoolbox's ModelWeighted fitters; planted weights are recovered."""

import warnings

import numpy as np
import pytest

from neuroprobe.solvers import rsa_fit as F

THEIRS = {"pearson": "corr", "cosine": "cosine", "corr_cov": "corr_cov",
          "cosine_cov": "cosine_cov"}


def _data(seed=0, n=10, s=6, noise=0.3):
    rng = np.random.default_rng(seed)
    m = n * (n - 1) // 2
    C = rng.random((4, m))
    w = np.array([1.0, 0.0, 2.0, 0.5])
    return C, w, w @ C + noise * rng.random((s, m))


@pytest.mark.parametrize("method", list(THEIRS))
def test_fits_equal_rsatoolbox(method):
    pytest.importorskip("rsatoolbox")
    from rsatoolbox.model import ModelWeighted
    from rsatoolbox.model.fitter import fit_optimize_positive, fit_regress_nn
    from rsatoolbox.rdm import RDMs

    C, _, Y = _data()
    model = ModelWeighted("w", RDMs(C))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nn = fit_regress_nn(model, RDMs(Y), method=THEIRS[method])
        np.random.seed(0)  # noqa: NPY002 (rsatoolbox draws its starts from np.random)
        opt = fit_optimize_positive(model, RDMs(Y), method=THEIRS[method])
    # rsatoolbox solves the whitened normal equations by conjugate gradients (rtol 1e-5)
    tol = 1e-12 if method in ("pearson", "cosine") else 2e-4
    np.testing.assert_allclose(F.fit_weights(C, Y, method, "nnls"), nn, atol=tol)
    # its BFGS search (tol 1e-6) reaches our closed-form maximiser to ~1e-5
    ours = F.fit_weights(C, Y, method, "optimize")
    np.testing.assert_allclose(ours, opt, atol=2e-5)
    np.testing.assert_allclose(F.predict(ours, C), model.predict(opt), atol=1e-4)
    # and ours is the maximiser: no point of rsatoolbox's does better (objective of the fit)
    from neuroprobe.solvers.rdm import compare

    assert compare(F.predict(ours, C), Y, method).mean() >= compare(
        model.predict(opt), Y, method).mean() - 1e-12


def test_rank_fit_equals_rsatoolbox_search():
    pytest.importorskip("rsatoolbox")
    from rsatoolbox.model import ModelWeighted
    from rsatoolbox.model.fitter import fit_optimize_positive
    from rsatoolbox.rdm import RDMs

    C, _, Y = _data(1, n=7, s=3)
    np.random.seed(3)  # noqa: NPY002 (rsatoolbox draws its starts from np.random)
    theirs = fit_optimize_positive(ModelWeighted("w", RDMs(C)), RDMs(Y), method="spearman")
    np.testing.assert_allclose(F.fit_weights(C, Y, "spearman", "optimize", random_state=3),
                               theirs, atol=1e-12)


@pytest.mark.parametrize("method", list(THEIRS))
def test_planted_weights_recovered(method):
    C, w, _ = _data(2, noise=0.0)
    for fitter in F.FITTERS:
        np.testing.assert_allclose(F.fit_weights(C, w @ C, method, fitter), w / np.linalg.norm(w),
                                   atol=1e-8)


def test_fit_errors_and_negative_data():
    C, _, Y = _data()
    with pytest.raises(ValueError, match="cannot be fitted"):
        F.fit_weights(C, Y, "spearman", "nnls")
    with pytest.raises(ValueError, match="fitter"):
        F.fit_weights(C, Y, "cosine", "bfgs")
    # data anti-correlated with every component: all weights zero (no positive combination)
    np.testing.assert_array_equal(F.fit_weights(C, -C.sum(0), "pearson"), 0)


def test_crossval_scores_over_stimuli_and_subjects():
    C, w, Y = _data(4, n=16, s=6, noise=0.05)
    rng = np.random.default_rng(0)
    stim, subj = F.kfold_sets(16, 2, rng), F.kfold_sets(6, 3, rng)
    scores, weights = F.crossval_scores(C, Y, "pearson", "nnls", stim, subj)
    assert scores.shape == (2, 3) and weights.shape == (2, 3, 4)
    # brute force for one fold: fit on the other stimuli's pairs of the other subjects
    i, j = np.triu_indices(16, 1)
    train = np.setdiff1d(np.arange(16), stim[0])
    tp = np.isin(i, train) & np.isin(j, train)
    te = np.isin(i, stim[0]) & np.isin(j, stim[0])
    other = np.setdiff1d(np.arange(6), subj[1])
    wt = F.fit_weights(C[:, tp], Y[np.ix_(other, tp)], "pearson")
    expected = np.mean([np.corrcoef(wt @ C[:, te], y)[0, 1] for y in Y[np.ix_(subj[1], te)]])
    assert scores[0, 1] == pytest.approx(expected, rel=1e-10)
    assert scores.min() > 0.9  # the planted combination generalises
