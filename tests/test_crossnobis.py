"""Crossnobis RDMs and noise precisions against rsatoolbox, brute force and memory bounds."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from neuroprobe.crossnobis import crossnobis_rdm, precision_from_residuals
from neuroprobe.rsa import compute_rdm

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.data.noise import prec_from_residuals  # noqa: E402


def _design(seed=0, n_runs=4, n_cond=6, p=15, extra=True):
    r = np.random.default_rng(seed)
    runs = np.repeat(np.arange(n_runs), n_cond)
    cond = np.tile(np.arange(n_cond), n_runs)
    if extra:  # unbalanced: some conditions repeated within some runs
        runs, cond = np.r_[runs, 0, 0, 2, 3], np.r_[cond, 1, 3, 5, 1]
    order = r.permutation(runs.size)  # rows in any order
    runs, cond = runs[order], cond[order]
    X = r.normal(size=(runs.size, p)) + r.normal(size=(n_cond, p))[cond]
    return X, np.array([f"c{c}" for c in cond]), runs


def _rsatoolbox(X, cond, runs, noise, remove_mean=False):
    ds = rsatoolbox.data.Dataset(X, obs_descriptors={"c": cond, "r": runs})
    rdm = rsatoolbox.rdm.calc_rdm_crossnobis(ds, "c", noise=noise, cv_descriptor="r",
                                              remove_mean=remove_mean)
    return rdm.dissimilarities[0]


@pytest.mark.parametrize("extra", [False, True])
@pytest.mark.parametrize("remove_mean", [False, True])
def test_identity_noise_equals_rsatoolbox(extra, remove_mean):
    X, cond, runs = _design(extra=extra)
    expect = _rsatoolbox(X, cond, runs, None, remove_mean)
    got = crossnobis_rdm(X, cond, runs, remove_mean=remove_mean)
    np.testing.assert_allclose(got, expect, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("method", ["diag", "shrinkage_eye", "shrinkage_diag", "full"])
def test_residual_noise_equals_rsatoolbox(method):
    X, cond, runs = _design(1)
    R = np.random.default_rng(2).normal(size=(60, X.shape[1])) @ np.diag(np.arange(1, 16))
    prec = prec_from_residuals(R, method=method)
    expect = _rsatoolbox(X, cond, runs, prec)
    ours = precision_from_residuals(R, method=method)
    np.testing.assert_allclose(ours.dense(), prec, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(crossnobis_rdm(X, cond, runs, ours), expect, rtol=1e-6,
                               atol=1e-9)
    # the dense precision and compute_rdm's dispatch give the same RDM
    np.testing.assert_allclose(compute_rdm(X, "crossnobis", conditions=cond, cv_groups=runs,
                                           noise=prec), expect, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("method", ["diag", "shrinkage_eye", "shrinkage_diag"])
def test_precision_more_channels_than_residuals(method):
    """p > n: the Woodbury form equals rsatoolbox's dense inverse."""
    R = np.random.default_rng(3).normal(size=(12, 50))
    np.testing.assert_allclose(precision_from_residuals(R, method=method).dense(),
                               prec_from_residuals(R, method=method), rtol=1e-7, atol=1e-10)


def test_brute_force_and_diagonal_vector():
    X, cond, runs = _design(4, n_runs=3, n_cond=4, p=5, extra=False)
    w = np.linspace(0.5, 2, 5)
    labels = np.unique(cond)
    expect = []
    for i in range(4):
        for j in range(i + 1, 4):
            ds = []
            for f in range(3):
                def mean(mask, c):
                    return X[mask & (cond == labels[c])].mean(0)
                a = mean(runs != f, i) - mean(runs != f, j)
                b = mean(runs == f, i) - mean(runs == f, j)
                ds.append(a @ (w * b) / 5)
            expect.append(np.mean(ds))
    got, lab = crossnobis_rdm(X, cond, runs, w, return_labels=True)
    np.testing.assert_allclose(got, expect, rtol=1e-12)
    assert list(lab) == list(labels)


def test_bad_input():
    X, cond, runs = _design(extra=False)
    with pytest.raises(ValueError, match="cv_groups: crossnobis needs at least 2 runs"):
        crossnobis_rdm(X, cond, np.zeros(len(runs)))
    keep = ~((runs == 2) & (cond == "c3"))
    with pytest.raises(ValueError, match="cv_groups: every run must contain every condition; "
                                         "run 2 lacks 1"):
        crossnobis_rdm(X[keep], cond[keep], runs[keep])
    with pytest.raises(ValueError, match=r"noise must be a precision of shape \(15,\)"):
        crossnobis_rdm(X, cond, runs, np.eye(14))
    with pytest.raises(ValueError, match="noise is a precision over 14 channels"):
        crossnobis_rdm(X, cond, runs, precision_from_residuals(X[:, :14]))
    with pytest.raises(ValueError, match="residuals: 1 channels have zero variance"):
        precision_from_residuals(np.c_[X, np.ones(len(X))])
    with pytest.raises(ValueError, match="cv_groups is required"):
        compute_rdm(X, "crossnobis", conditions=cond)
    with pytest.raises(ValueError, match="conditions must have one label per row"):
        crossnobis_rdm(X, cond[:-1], runs)
    with pytest.raises(ValueError, match="metric='crossnobis' only"):
        compute_rdm(X, "euclidean", cv_groups=runs)
    with pytest.raises(ValueError, match="method must be one of"):
        precision_from_residuals(X, method="ledoit")


def test_noise_memory_never_p_by_p():
    """300 residuals x 6,000 channels: a p x p float64 matrix alone is 288 MB."""
    code = textwrap.dedent("""
        import tracemalloc, numpy as np
        from neuroprobe.crossnobis import precision_from_residuals, crossnobis_rdm
        r = np.random.default_rng(0)
        R = r.normal(size=(300, 6000)); X = r.normal(size=(40, 6000))
        cond = np.tile(np.arange(10), 4); runs = np.repeat(np.arange(4), 10)
        tracemalloc.start()
        for m in ("shrinkage_diag", "shrinkage_eye", "diag"):
            crossnobis_rdm(X, cond, runs, precision_from_residuals(R, method=m))
        print(tracemalloc.get_traced_memory()[1])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    peak = int(out.stdout.split()[-1])
    assert peak < 120e6, f"peak {peak / 1e6:.0f} MB"
