"""Noise-ceiling solvers vs brute-force per-target loops of the formulas, and planted truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from neuroprobe.solvers import ceiling
from tests._tolerance import assert_allclose_dtype


def _var(x, ddof):
    m = sum(x) / len(x)
    return sum((v - m) ** 2 for v in x) / (len(x) - ddof)


def _loop_ev(Y, bias_correction=True, do_zscore=True):
    """voxelwise_tutorials.utils.explainable_variance, one voxel and one repeat at a time."""
    R, T, V = Y.shape
    out = []
    for v in range(V):
        series = []
        for r in range(R):
            x = [float(a) for a in Y[r, :, v]]
            if do_zscore:
                m, s = sum(x) / T, math.sqrt(_var(x, 0))
                x = [(a - m) / s for a in x]
            series.append(x)
        mean_var = sum(_var(x, 1) for x in series) / R
        mean_resp = [sum(series[r][t] for r in range(R)) / R for t in range(T)]
        ev = _var(mean_resp, 1) / mean_var
        if bias_correction:
            ev = ev - (1 - ev) / (R - 1)
        out.append(ev)
    return np.array(out)


def _tutorial_ev(data, bias_correction=True, do_zscore=True):
    """The tutorial's code with scipy's zscore (the function the solver transcribes)."""
    if do_zscore:
        data = scipy.stats.zscore(data, axis=1)
    mean_var = data.var(axis=1, dtype=np.float64, ddof=1).mean(axis=0)
    var_mean = data.mean(axis=0).var(axis=0, dtype=np.float64, ddof=1)
    ev = var_mean / mean_var
    if bias_correction:
        ev = ev - (1 - ev) / (data.shape[0] - 1)
    return ev


def _loop_ccmax(Y):
    """Schoppe's calc_CCnorm.m per voxel: SP with MATLAB var (ddof=1), Var(y) with 1/T."""
    R, T, V = Y.shape
    out = []
    for v in range(V):
        trials = [[float(a) for a in Y[r, :, v]] for r in range(R)]
        summed = [sum(trials[r][t] for r in range(R)) for t in range(T)]
        sp = (_var(summed, 1) - sum(_var(tr, 1) for tr in trials)) / (R * (R - 1))
        y = [s / R for s in summed]
        vy = _var(y, 0)
        out.append(0.0 if sp <= 0 else math.sqrt(sp / vy))
    return np.array(out)


def _loop_ncsnr(Y):
    """Allen et al. 2022 per voxel: z-score over all trials, noise = mean var across trials."""
    R, T, V = Y.shape
    out = []
    for v in range(V):
        allb = [float(Y[r, t, v]) for r in range(R) for t in range(T)]
        m, s = sum(allb) / len(allb), math.sqrt(_var(allb, 0))
        z = [[(float(Y[r, t, v]) - m) / s for r in range(R)] for t in range(T)]
        noise = sum(_var(trials, 1) for trials in z) / T
        out.append(math.sqrt(max(0.0, 1 - noise)) / math.sqrt(noise))
    return np.array(out)


def _planted(rng, n_repeats, n_samples, n_targets, signal_var, noise_var, dtype=np.float64):
    signal = rng.standard_normal((n_samples, n_targets)) * np.sqrt(signal_var)
    noise = rng.standard_normal((n_repeats, n_samples, n_targets)) * np.sqrt(noise_var)
    return (signal + noise + 3.0).astype(dtype)


@pytest.fixture
def Y():
    rng = np.random.default_rng(0)
    snr = np.linspace(0.0, 3.0, 7)
    return _planted(rng, 4, 30, 7, snr, 1.0)


@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.parametrize("do_zscore", [True, False])
def test_ev_equals_loop_and_tutorial(Y, bias_correction, do_zscore):
    got = ceiling.explainable_variance(Y, bias_correction, do_zscore)
    assert_allclose_dtype(got, _loop_ev(Y, bias_correction, do_zscore), n_terms=Y.size)
    assert_allclose_dtype(got, _tutorial_ev(Y, bias_correction, do_zscore), n_terms=Y.size)


def test_ev_blocks_and_float32_and_input_untouched(Y):
    before = Y.copy()
    full = ceiling.explainable_variance(Y)
    assert_allclose_dtype(ceiling.explainable_variance(Y, block=2), full, n_terms=Y.size)
    np.testing.assert_array_equal(Y, before)
    Y32 = Y.astype(np.float32)
    assert_allclose_dtype(ceiling.explainable_variance(Y32), _loop_ev(Y32), n_terms=Y.size,
                          dtype=np.float32)


def test_ccmax_and_signal_power_equal_loop(Y):
    assert_allclose_dtype(ceiling.ccmax(Y), _loop_ccmax(Y), n_terms=Y.size)
    assert_allclose_dtype(ceiling.ccmax(Y, block=3), _loop_ccmax(Y), n_terms=Y.size)
    R = Y.shape[0]
    sp = [(_var(list(Y[:, :, v].sum(0)), 1) - sum(_var(list(Y[r, :, v]), 1) for r in range(R)))
          / (R * (R - 1)) for v in range(Y.shape[2])]
    assert_allclose_dtype(ceiling.signal_power(Y), sp, n_terms=Y.size)


def test_ccmax_is_zero_without_signal():
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((5, 40, 200))
    sp = ceiling.signal_power(noise)
    cc = ceiling.ccmax(noise)
    assert (sp <= 0).any()
    np.testing.assert_array_equal(cc[sp <= 0], 0.0)


def test_ncsnr_and_nc_equal_loop(Y):
    snr = ceiling.ncsnr(Y)
    assert_allclose_dtype(snr, _loop_ncsnr(Y), n_terms=Y.size)
    for n in (1, 3):
        expected = [100 * s**2 / (s**2 + 1 / n) for s in _loop_ncsnr(Y)]
        assert_allclose_dtype(ceiling.nsd_noise_ceiling(snr, n), expected, n_terms=Y.size)


def test_ncsnr_without_zscore_on_zscored_betas(Y):
    R, T, V = Y.shape
    flat = Y.reshape(R * T, V)
    Z = ((flat - flat.mean(0)) / flat.std(0)).reshape(Y.shape)
    assert_allclose_dtype(ceiling.ncsnr(Z, zscore=False), _loop_ncsnr(Y), n_terms=Y.size)
    assert_allclose_dtype(ceiling.ncsnr(Y, block=2), _loop_ncsnr(Y), n_terms=Y.size)


def test_planted_truth_converges_to_closed_form():
    """Signal variance s2, noise variance n2 per repeat, R repeats, many samples."""
    rng = np.random.default_rng(2)
    s2 = np.array([0.25, 1.0, 4.0])
    R, n2 = 5, 1.0
    Y = _planted(rng, R, 20000, 3, s2, n2)
    ev_true = s2 / (s2 + n2)
    np.testing.assert_allclose(ceiling.explainable_variance(Y), ev_true, atol=0.01)
    # uncorrected: E[ratio] = s + (1 - s) / R
    np.testing.assert_allclose(ceiling.explainable_variance(Y, bias_correction=False),
                               ev_true + (1 - ev_true) / R, atol=0.01)
    # CCmax: corr(signal, mean of R repeats) = sqrt(s2 / (s2 + n2 / R))
    np.testing.assert_allclose(ceiling.ccmax(Y), np.sqrt(s2 / (s2 + n2 / R)), atol=0.01)
    snr = ceiling.ncsnr(Y)
    np.testing.assert_allclose(snr, np.sqrt(s2 / n2), rtol=0.02)
    np.testing.assert_allclose(ceiling.nsd_noise_ceiling(snr, 3),
                               100 * (s2 / n2) / (s2 / n2 + 1 / 3), atol=1.0)


def test_bias_correction_is_unbiased_across_seeds():
    """Short recordings, few repeats: the corrected mean over independent draws (targets x
    seeds) is the planted EV; the raw ratio is off by (1 - s) / R."""
    R, T, s2 = 3, 200, 0.5
    ev_true = s2 / (s2 + 1.0)
    raw, corrected = [], []
    for seed in range(5):
        Y = _planted(np.random.default_rng(100 + seed), R, T, 2000, s2, 1.0)
        corrected.append(ceiling.explainable_variance(Y))
        raw.append(ceiling.explainable_variance(Y, bias_correction=False))
    corrected, raw = np.concatenate(corrected), np.concatenate(raw)
    se = corrected.std() / np.sqrt(corrected.size)
    assert abs(corrected.mean() - ev_true) < max(4 * se, 0.01)
    assert raw.mean() - ev_true > 0.8 * (1 - ev_true) / R


def test_noise_only_targets_centre_on_zero():
    Y = np.random.default_rng(3).standard_normal((4, 100, 3000))
    ev = ceiling.explainable_variance(Y)
    assert abs(ev.mean()) < 0.01 and (ev < 0).mean() > 0.3


def test_constant_target_is_nan():
    Y = np.random.default_rng(4).standard_normal((3, 10, 2))
    Y[:, :, 1] = 5.0
    assert np.isnan(ceiling.explainable_variance(Y)[1])
    assert np.isfinite(ceiling.explainable_variance(Y)[0])
