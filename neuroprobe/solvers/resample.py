"""Resampling of features given at their own times onto a scan grid, as one matrix product.

Every method is a linear map: an ``(n_scans, n_samples)`` interpolation matrix ``W`` built once
from the times alone (broadcasting, no Python loop over scans), then ``W @ X`` for thousands of
features at once. The Lanczos, average and nearest matrices are banded (a scan only sees the
samples within a few TRs): they are built from the band alone as CSR arrays (two
``searchsorted`` calls give each scan's first and last sample) and applied as a sparse times
dense product, whose cost grows with the band, not with the run length.

Methods (``t_s``: sample times, ``s_i``: scan times, ``fc = 1 / tr``):

``"lanczos"``
    ``W[i, s] = sinc(fc (s_i - t_s)) * sinc(fc (s_i - t_s) / a)`` where ``|fc (s_i - t_s)| <= a``,
    0 elsewhere (``sinc(x) = sin(pi x) / (pi x)``, ``a = window``). This is exactly
    ``lanczosfun`` / ``lanczosinterp2D`` of Huth et al. (2016) and the gallantlab voxelwise
    tutorials: the kernel's first zero is one TR away, i.e. a low-pass at the scan rate's
    Nyquist frequency ``1 / (2 tr)``. Like theirs, the weights are *not* normalised: with ``k``
    samples per TR a constant feature comes out about ``k`` times larger (word rates, not means).
``"sinc"``
    ``W[i, s] = sinc(fc (s_i - t_s))``: the same low-pass without the Lanczos window (the
    ``window -> inf`` limit of ``"lanczos"``, support over the whole run). Not gallantlab's
    ``sincinterp2D``, whose cutoff is the scan rate and whose rows are renormalised.
``"average"``
    ``W[i, s] = 1 / n_i`` for the ``n_i`` samples with ``s_i <= t_s < s_i + tr``; a scan with
    no sample is 0.
``"nearest"``
    ``W[i, s] = 1`` for the sample closest in time to ``s_i`` (ties: the earlier sample).
"""

from __future__ import annotations

import numpy as np

__all__ = ["METHODS", "apply_matrix", "resample", "resampling_matrix"]

METHODS = ("lanczos", "sinc", "average", "nearest")


def _check_times(times, name):
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or times.size == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D array of seconds, got shape {times.shape}"
        )
    if not np.all(np.isfinite(times)):
        raise ValueError(f"{name} must be finite numbers of seconds")
    steps = np.diff(times)
    if np.any(steps < 0):
        i = int(np.flatnonzero(steps < 0)[0])
        raise ValueError(
            f"{name} must be non-decreasing (sorted in time); {name}[{i + 1}] = "
            f"{times[i + 1]:g} comes after {name}[{i}] = {times[i]:g}"
        )
    return times


def _tr(scan_times, tr):
    if tr is not None:
        tr = float(tr)
        if not (np.isfinite(tr) and tr > 0):
            raise ValueError(f"tr must be a positive number of seconds, got {tr!r}")
        return tr
    if scan_times.size < 2:
        raise ValueError("tr is required when there is a single scan time")
    tr = float(np.mean(np.diff(scan_times)))  # gallantlab: 1 / mean(diff(newtime))
    if tr <= 0:
        raise ValueError("scan_times must be increasing to derive tr from them")
    return tr


def _band(lo, hi):
    """CSR structure of rows ``i`` holding columns ``lo[i] <= j < hi[i]`` (no loop over rows)."""
    counts = np.maximum(hi - lo, 0)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    rows = np.repeat(np.arange(lo.size), counts)
    cols = np.arange(indptr[-1]) - indptr[rows] + lo[rows]
    return indptr, rows, cols


def _csr(values, cols, indptr, shape):
    from scipy.sparse import csr_array

    return csr_array((values, cols, indptr), shape=shape)


def resampling_matrix(times, scan_times, method="lanczos", *, window=3, tr=None, sparse=False):
    """The ``(n_scans, n_samples)`` matrix ``W`` such that ``W @ X`` resamples ``X`` to the scans.

    Parameters
    ----------
    times : array, shape (n_samples,)
        Times of the rows of ``X`` in seconds (non-decreasing).
    scan_times : array, shape (n_scans,)
        Times of the scans in seconds (non-decreasing), on the same clock.
    method : {"lanczos", "sinc", "average", "nearest"}
        See the module docstring for each formula.
    window : int
        Lobes ``a`` of the Lanczos window (``"lanczos"`` only).
    tr : float, optional
        Scan period; default ``mean(diff(scan_times))`` as in ``lanczosinterp2D``.
    sparse : bool
        Return a ``scipy.sparse.csr_array`` for the banded methods (``"lanczos"``,
        ``"average"``, ``"nearest"``), built from the band alone: only the samples within
        ``window`` TRs (``"lanczos"``), within the TR (``"average"``) or the nearest one are
        evaluated. ``"sinc"`` is always a dense ndarray.

    Returns
    -------
    ndarray or scipy.sparse.csr_array, shape (n_scans, n_samples), float64
    """
    times = _check_times(times, "times")
    scan_times = _check_times(scan_times, "scan_times")
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    tr = _tr(scan_times, tr)
    shape = (scan_times.size, times.size)
    if method == "sinc":
        return np.sinc((scan_times[:, None] - times[None, :]) / tr)
    if method == "lanczos":
        a = int(window)
        if a < 1:
            raise ValueError(f"window must be a positive integer of lobes, got {window!r}")
        reach = a * tr * (1 + 1e-9)  # a little wider; the exact |t| > a test is applied below
        lo = np.searchsorted(times, scan_times - reach, side="left")
        hi = np.searchsorted(times, scan_times + reach, side="right")
        indptr, rows, cols = _band(lo, hi)
        t = (scan_times[rows] - times[cols]) / tr
        values = np.sinc(t) * np.sinc(t / a)
        values[np.abs(t) > a] = 0.0
    elif method == "average":
        lo = np.searchsorted(times, scan_times, side="left")
        hi = np.searchsorted(times, scan_times + tr, side="left")
        indptr, rows, cols = _band(lo, hi)
        values = 1.0 / (hi - lo)[rows]
    else:  # nearest: the right neighbour wins only when strictly closer
        right = np.clip(np.searchsorted(times, scan_times, side="left"), 0, times.size - 1)
        left = np.clip(right - 1, 0, times.size - 1)
        cols = np.where(np.abs(times[right] - scan_times) < np.abs(scan_times - times[left]),
                        right, left)
        indptr, values = np.arange(shape[0] + 1), np.ones(shape[0])
    W = _csr(values, cols, indptr, shape)
    return W if sparse else W.toarray()


def resample(X, times, scan_times, method="lanczos", *, window=3, tr=None):
    """Resample the rows of ``X`` given at ``times`` to ``scan_times`` (one matrix product).

    Parameters
    ----------
    X : array, shape (n_samples, n_features)
    times, scan_times, method, window, tr
        As in :func:`resampling_matrix`.

    Returns
    -------
    ndarray, shape (n_scans, n_features)
        In ``X``'s floating dtype (float32 stays float32).
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if len(times) != X.shape[0]:
        raise ValueError(f"times has {len(times)} values but X has {X.shape[0]} rows")
    W = resampling_matrix(times, scan_times, method, window=window, tr=tr, sparse=True)
    return apply_matrix(W, X)


def apply_matrix(W, X):
    """``W @ X`` in ``X``'s float dtype (``W`` an ndarray or a scipy sparse array).

    Parameters
    ----------
    W : ndarray or scipy.sparse array, shape (n_scans, n_samples)
    X : ndarray, shape (n_samples, n_features)

    Returns
    -------
    ndarray, shape (n_scans, n_features)
    """
    X = np.asarray(X)
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    return np.asarray(W.astype(dtype, copy=False) @ X.astype(dtype, copy=False))
