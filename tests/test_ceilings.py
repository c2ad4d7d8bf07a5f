"""Public noise-ceiling functions, normalised scores, the selector and score_targets(normalize=)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

import neuroprobe
from neuroprobe.ceilings import (
    correlation_ceiling,
    explainable_variance,
    ncsnr,
    normalize_scores,
    nsd_noise_ceiling,
)
from neuroprobe.solvers import ceiling as solver
from neuroprobe.transformers import ExplainableVarianceSelector
from tests._tolerance import assert_allclose_dtype


def _repeats(seed=0, n_repeats=4, n_samples=60, n_targets=12):
    rng = np.random.default_rng(seed)
    amp = np.linspace(0.0, 2.0, n_targets)
    signal = rng.standard_normal((n_samples, n_targets)) * amp
    return signal + rng.standard_normal((n_repeats, n_samples, n_targets))


def test_public_names_exported():
    for name in ("explainable_variance", "correlation_ceiling", "ncsnr", "nsd_noise_ceiling",
                 "normalize_scores", "ExplainableVarianceSelector"):
        assert getattr(neuroprobe, name) is not None


def test_wrappers_equal_solvers():
    Y = _repeats()
    np.testing.assert_array_equal(explainable_variance(Y), solver.explainable_variance(Y))
    np.testing.assert_array_equal(
        explainable_variance(Y, bias_correction=False, do_zscore=False),
        solver.explainable_variance(Y, False, False),
    )
    np.testing.assert_array_equal(correlation_ceiling(Y), solver.ccmax(Y))
    np.testing.assert_array_equal(ncsnr(Y), solver.ncsnr(Y))
    np.testing.assert_array_equal(nsd_noise_ceiling(Y, n_average=3),
                                  solver.nsd_noise_ceiling(solver.ncsnr(Y), 3))


def test_two_dimensional_input_is_one_target_and_ints_accepted():
    Y = _repeats(n_targets=3)
    assert_allclose_dtype(explainable_variance(Y[:, :, 1]), explainable_variance(Y)[1:2],
                          n_terms=Y.size)
    Yi = np.round(Y * 10).astype(int)
    assert_allclose_dtype(explainable_variance(Yi), explainable_variance(Yi.astype(float)))


@pytest.mark.parametrize("func", [explainable_variance, correlation_ceiling, ncsnr,
                                  nsd_noise_ceiling])
def test_bad_repeats(func):
    Y = _repeats()
    with pytest.raises(ValueError, match="Y_repeats has 1 repeat"):
        func(Y[:1])
    with pytest.raises(ValueError, match=r"Y_repeats must have shape \(n_repeats"):
        func(Y[None])
    with pytest.raises(ValueError, match="Y_repeats has 1 sample"):
        func(Y[:, :1])
    bad = Y.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="Y_repeats contains 1 NaN"):
        func(bad)
    with pytest.raises(ValueError, match="Y_repeats must be numeric"):
        func(np.full((2, 3, 1), "a"))


def test_nsd_n_average_checked():
    with pytest.raises(ValueError, match="n_average must be a positive integer"):
        nsd_noise_ceiling(_repeats(), n_average=0)


@pytest.mark.parametrize("kind", ["correlation/ev", "correlation/ccmax", "r2/ev"])
def test_normalize_scores_equals_loop(kind):
    rng = np.random.default_rng(5)
    scores = rng.uniform(-0.2, 0.8, 50)
    ceil = rng.uniform(-0.1, 1.0, 50)
    got = normalize_scores(scores, ceil, kind=kind)
    expected = []
    for s, c in zip(scores, ceil):
        if c <= 0:
            expected.append(math.nan)
        else:
            expected.append(s / math.sqrt(c) if kind == "correlation/ev" else s / c)
    assert_allclose_dtype(got, expected)
    assert np.isnan(got[ceil <= 0]).all()


def test_normalize_scores_errors():
    with pytest.raises(ValueError, match="scores and ceiling must have the same shape"):
        normalize_scores(np.zeros(3), np.ones(4))
    with pytest.raises(ValueError, match="kind must be one of"):
        normalize_scores(np.zeros(3), np.ones(3), kind="r/ev")


def test_perfect_model_normalises_to_one():
    """The true signal as prediction of one repeat: r ~ sqrt(EV), so r / sqrt(EV) ~ 1; of the
    mean response: r ~ CCmax, so r / CCmax ~ 1."""
    rng = np.random.default_rng(6)
    signal = rng.standard_normal((20000, 3)) * np.array([0.5, 1.0, 2.0])
    Y = signal + rng.standard_normal((4, 20000, 3))
    r_one = np.array([np.corrcoef(signal[:, v], Y[0, :, v])[0, 1] for v in range(3)])
    r_mean = np.array([np.corrcoef(signal[:, v], Y.mean(0)[:, v])[0, 1] for v in range(3)])
    np.testing.assert_allclose(normalize_scores(r_one, explainable_variance(Y)), 1, atol=0.05)
    np.testing.assert_allclose(
        normalize_scores(r_mean, correlation_ceiling(Y), kind="correlation/ccmax"), 1, atol=0.02
    )


def test_selector_selects_by_ev_and_roundtrips():
    Y = _repeats()
    before = Y.copy()
    sel = ExplainableVarianceSelector(threshold=0.2).fit(Y)
    np.testing.assert_array_equal(Y, before)
    ev = explainable_variance(Y)
    np.testing.assert_array_equal(sel.ev_, ev)
    np.testing.assert_array_equal(sel.support_, ev > 0.2)
    assert 0 < sel.support_.sum() < Y.shape[2]
    np.testing.assert_array_equal(sel.get_support(indices=True), np.flatnonzero(ev > 0.2))
    Yt = Y.mean(0)
    out = sel.transform(Yt)
    np.testing.assert_array_equal(out, Yt[:, ev > 0.2])
    back = sel.inverse_transform(out)
    np.testing.assert_array_equal(back[:, ev > 0.2], out)
    assert np.isnan(back[:, ~(ev > 0.2)]).all()
    names = sel.get_feature_names_out()
    assert list(names) == [f"target{i}" for i in np.flatnonzero(ev > 0.2)]
    assert sel.n_features_in_ == Y.shape[2]


def test_selector_errors():
    Y = _repeats()
    with pytest.raises(InvalidParameterError, match="threshold"):
        ExplainableVarianceSelector(threshold="high").fit(Y)
    with pytest.raises(ValueError, match="Y_repeats has 1 repeat"):
        ExplainableVarianceSelector().fit(Y[:1])
    sel = ExplainableVarianceSelector().fit(Y)
    with pytest.raises(ValueError, match=r"Y must have shape \(n_samples, 12\)"):
        sel.transform(Y[0, :, :5])


def test_score_targets_normalize():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((120, 5))
    Y = _repeats(seed=8, n_repeats=3, n_samples=120, n_targets=4) + X[:, :1]
    ev = explainable_variance(Y)
    for scoring, kind in (("correlation", "correlation/ev"), ("r2", "r2/ev")):
        enc = neuroprobe.VoxelwiseEncoder(alphas=[1.0], scoring=scoring).fit(X, Y.mean(0))
        raw = enc.score_targets(X, Y.mean(0))
        np.testing.assert_array_equal(enc.score_targets(X, Y.mean(0), normalize=ev),
                                      normalize_scores(raw, ev, kind=kind))
