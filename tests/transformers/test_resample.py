"""TimeResampler and solvers.resample against brute-force loops and gallantlab's lanczosinterp2D."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroprobe.solvers.resample import resample, resampling_matrix
from neuroprobe.transformers import TimeResampler
from tests._tolerance import assert_allclose_dtype

TR = 2.0


# --- references, written out -------------------------------------------------------------------
def gallant_lanczosfun(cutoff, t, window=3):
    """Direct transcription of gallantlab / Huth et al. ``interpdata.lanczosfun``."""
    t = t * cutoff
    with np.errstate(divide="ignore", invalid="ignore"):
        val = window * np.sin(np.pi * t) * np.sin(np.pi * t / window) / (np.pi**2 * t**2)
    val[t == 0] = 1.0
    val[np.abs(t) > window] = 0.0
    return val


def gallant_lanczosinterp2D(data, oldtime, newtime, window=3, cutoff_mult=1.0):
    """Direct transcription of gallantlab / Huth et al. ``interpdata.lanczosinterp2D``."""
    cutoff = 1 / np.mean(np.diff(newtime)) * cutoff_mult
    sincmat = np.zeros((len(newtime), len(oldtime)))
    for ndi in range(len(newtime)):
        sincmat[ndi, :] = gallant_lanczosfun(cutoff, newtime[ndi] - oldtime, window)
    return np.dot(sincmat, data)


def loop_sinc(data, oldtime, newtime, tr):
    out = np.zeros((len(newtime), data.shape[1]))
    for i, s in enumerate(newtime):
        for k, t in enumerate(oldtime):
            x = (s - t) / tr
            w = 1.0 if x == 0 else np.sin(np.pi * x) / (np.pi * x)
            out[i] += w * data[k]
    return out


def loop_average(data, oldtime, newtime, tr):
    out = np.zeros((len(newtime), data.shape[1]))
    for i, s in enumerate(newtime):
        rows = [k for k, t in enumerate(oldtime) if s <= t < s + tr]
        if rows:
            out[i] = sum(data[k] for k in rows) / len(rows)
    return out


def loop_nearest(data, oldtime, newtime):
    out = np.zeros((len(newtime), data.shape[1]))
    for i, s in enumerate(newtime):
        best = 0
        for k, t in enumerate(oldtime):
            if abs(t - s) < abs(oldtime[best] - s):
                best = k
        out[i] = data[best]
    return out


def reference(method, data, oldtime, newtime, tr):
    if method == "lanczos":
        return gallant_lanczosinterp2D(data, oldtime, newtime)
    if method == "sinc":
        return loop_sinc(data, oldtime, newtime, tr)
    if method == "average":
        return loop_average(data, oldtime, newtime, tr)
    return loop_nearest(data, oldtime, newtime)


@pytest.fixture()
def runs_data():
    """Three runs of unequal length, irregular (word-like) times, some on the scan grid."""
    rng = np.random.default_rng(0)
    lengths, n_scans = [37, 52, 23], [20, 27, 12]
    times, runs = [], []
    for r, (m, k) in enumerate(zip(lengths, n_scans)):
        t = np.sort(rng.uniform(-1.0, k * TR + 1.0, m))
        t[3] = 4.0  # exactly on a scan (t == 0 branch)
        times.append(np.sort(t))
        runs.append(np.full(m, r))
    X = rng.standard_normal((sum(lengths), 6))
    return X, times, np.concatenate(runs), n_scans


METHODS = ["lanczos", "sinc", "average", "nearest"]


@pytest.mark.parametrize("method", METHODS)
def test_function_equals_brute_force(runs_data, method):
    X, times, _, n_scans = runs_data
    Xr, t, k = X[:37], times[0], n_scans[0]
    scan_times = np.arange(k) * TR
    ours = resample(Xr, t, scan_times, method=method)
    ref = reference(method, Xr, t, scan_times, TR)
    assert_allclose_dtype(ours, ref, n_terms=len(t))
    assert np.abs(ref).max() > 0.1


@pytest.mark.parametrize("method", METHODS)
def test_transformer_per_run_equals_brute_force(runs_data, method):
    """Unequal runs, unequal n_scans: each run resampled alone, stacked in label order."""
    X, times, runs, n_scans = runs_data
    est = TimeResampler(tr=TR, n_scans=n_scans, times=np.concatenate(times), runs=runs,
                        method=method)
    out = est.fit_transform(X)
    assert out.shape == (sum(n_scans), 6)
    starts = np.cumsum([0] + [len(t) for t in times])
    ref = np.vstack([
        reference(method, X[starts[r]:starts[r + 1]], times[r], np.arange(k) * TR, TR)
        for r, k in enumerate(n_scans)
    ])
    assert_allclose_dtype(out, ref, n_terms=X.shape[0])
    np.testing.assert_array_equal(est.scan_runs_, np.repeat([0, 1, 2], n_scans))
    np.testing.assert_allclose(est.scan_times_[:20], np.arange(20) * TR)


def test_no_leak_across_runs_and_shuffled_rows(runs_data):
    X, times, runs, n_scans = runs_data
    t = np.concatenate(times)
    base = TimeResampler(TR, n_scans, times=t, runs=runs).fit_transform(X)
    X2 = X.copy()
    X2[runs == 1] += 100.0  # run 1 changes: runs 0 and 2 must not move
    out = TimeResampler(TR, n_scans, times=t, runs=runs).fit_transform(X2)
    keep = np.repeat([0, 1, 2], n_scans) != 1
    np.testing.assert_array_equal(out[keep], base[keep])
    assert not np.allclose(out[~keep], base[~keep])
    # runs interleaved in the rows (each run's rows still in time order): same result
    inter = np.random.default_rng(1).permutation(X.shape[0])
    for r in range(3):
        inter[np.flatnonzero(runs[inter] == r)] = np.flatnonzero(runs == r)
    assert not np.array_equal(inter, np.sort(inter))
    out_i = TimeResampler(TR, n_scans, times=t[inter], runs=runs[inter]).fit_transform(X[inter])
    assert_allclose_dtype(out_i, base, n_terms=X.shape[0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_long_run_sparse_product_equals_gallant(dtype):
    """A long run (banded matrix, under 10% non-zero: the CSR path) equals the dense reference."""
    rng = np.random.default_rng(4)
    t = np.sort(rng.uniform(0, 400.0, 2000))
    X = rng.standard_normal((2000, 7)).astype(dtype)
    W = resampling_matrix(t, np.arange(200) * TR, "lanczos")
    assert np.count_nonzero(W) < 0.1 * W.size
    out = TimeResampler(TR, 200, times=t).fit_transform(X)
    assert out.dtype == dtype
    ref = gallant_lanczosinterp2D(X.astype(np.float64), t, np.arange(200) * TR)
    assert_allclose_dtype(out, ref, n_terms=2000, dtype=dtype)


def test_lanczos_on_scan_grid_is_identity_and_float32_kept():
    X = np.random.default_rng(3).standard_normal((30, 4)).astype(np.float32)
    out = TimeResampler(TR).fit_transform(X)  # times None: one row per scan
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, X, atol=1e-6)
    out = TimeResampler(TR, n_scans=30, times=np.arange(30) * TR,
                        method="nearest").fit_transform(X)
    np.testing.assert_array_equal(out, X)


def test_slice_time_ref_shifts_interpolation_not_average(runs_data):
    X, times, _, n_scans = runs_data
    t, Xr, k = times[0], X[:37], n_scans[0]
    out = TimeResampler(TR, k, times=t, slice_time_ref=0.5).fit_transform(Xr)
    ref = gallant_lanczosinterp2D(Xr, t, (np.arange(k) + 0.5) * TR)
    assert_allclose_dtype(out, ref, n_terms=len(t))
    avg = TimeResampler(TR, k, times=t, method="average", slice_time_ref=0.5).fit_transform(Xr)
    assert_allclose_dtype(avg, loop_average(Xr, t, np.arange(k) * TR, TR), n_terms=len(t))


def test_times_from_stimulus_set_onset_column(runs_data):
    X, times, _, n_scans = runs_data

    class Stim:
        def column(self, name):
            return {"onset": times[0]}[name]

    a = TimeResampler(TR, n_scans[0], times=Stim()).fit_transform(X[:37])
    b = TimeResampler(TR, n_scans[0], times=times[0]).fit_transform(X[:37])
    np.testing.assert_array_equal(a, b)


def test_matrix_rows_of_average_sum_to_one_where_filled():
    t = np.array([0.1, 0.5, 1.9, 2.0, 7.5])
    W = resampling_matrix(t, np.arange(4) * TR, "average")
    np.testing.assert_allclose(W.sum(1), [1, 1, 0, 1])  # scan 2 ([4, 6) s) has no sample


# --- bad input ---------------------------------------------------------------------------------
def test_errors_name_the_argument(runs_data):
    X, times, runs, n_scans = runs_data
    t = np.concatenate(times)
    bad_t = t.copy()
    bad_t[[5, 6]] = bad_t[[6, 5]] if bad_t[5] != bad_t[6] else (0.0, -1.0)
    with pytest.raises(ValueError, match="times must be non-decreasing.*run 0"):
        TimeResampler(TR, n_scans, times=bad_t, runs=runs).fit(X)
    with pytest.raises(ValueError, match="runs must give one run label per row"):
        TimeResampler(TR, n_scans, times=t, runs=runs[:-1]).fit(X)
    with pytest.raises(ValueError, match="n_scans is required"):
        TimeResampler(TR, times=t, runs=runs).fit(X)
    with pytest.raises(ValueError, match="n_scans must be .* one positive int per run"):
        TimeResampler(TR, [20, 27], times=t, runs=runs).fit(X)
    with pytest.raises(ValueError, match="times has 10 values but X has"):
        TimeResampler(TR, 5, times=t[:10]).fit(X)
    with pytest.raises(ValueError, match="method"):
        TimeResampler(TR, 5, times=t, method="cubic").fit(X)
    est = TimeResampler(TR, n_scans, times=t, runs=runs).fit(X)
    with pytest.raises(ValueError, match="fitted on"):
        est.transform(X[:10])
    with pytest.raises(ValueError, match="times must be non-decreasing"):
        resample(X[:3], [0.0, 2.0, 1.0], [0.0, 2.0])
    with pytest.raises(ValueError, match="tr is required"):
        resample(X[:3], [0.0, 1.0, 2.0], [0.0])


def test_input_not_modified(runs_data):
    X, times, runs, n_scans = runs_data
    t = np.concatenate(times)
    X0, t0 = X.copy(), t.copy()
    TimeResampler(TR, n_scans, times=t, runs=runs, method="average").fit_transform(X)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(t, t0)


@parametrize_with_checks(
    [TimeResampler(tr=2.0)],
    expected_failed_checks=lambda est: {
        "check_methods_subset_invariance":
            "the resampling matrix maps the fitted samples as a whole (scans mix neighbouring "
            "samples); a subset of rows is a different time series",
        "check_fit_idempotent":
            "fit builds the matrix for the fitted rows' times; transform refuses rows of "
            "another length (a test split is another time series: fit a resampler on it)",
    },
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
