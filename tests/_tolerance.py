"""Tolerances derived from the dtype and the size of the reduction, for results that are
computed in different blockings or batch orders (target blocks, chunks, workers, BLAS kernels).

Such results agree only up to rounding: a sum of ``n_terms`` products, accumulated in another
order, differs by a few units in the last place times ~sqrt(n_terms) (random-walk rounding; the
worst case is n_terms). ``assert_allclose_dtype`` compares with

    rtol = factor * eps(dtype) * sqrt(n_terms),   atol = rtol * max|desired|

so entries near zero are judged against the array's scale, not against their own. Bit-exact
``assert_array_equal`` stays where bit-exactness is designed (a resumed file equals an
uninterrupted one, integer data, the same computation repeated).
"""

from __future__ import annotations

import numpy as np

__all__ = ["assert_allclose_dtype", "dtype_tolerance"]


def dtype_tolerance(dtype, n_terms=1, factor=16.0):
    """Relative tolerance for ``dtype`` after a reduction over ``n_terms`` terms."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.inexact):
        return 0.0
    return float(factor * np.finfo(dtype).eps * np.sqrt(max(int(n_terms), 1)))


def assert_allclose_dtype(actual, desired, *, n_terms=1, dtype=None, factor=16.0, err_msg=""):
    """``assert_allclose`` with a tolerance derived from the dtype and the reduction size.

    Parameters
    ----------
    actual, desired : array-like
        Results of the same computation in different blockings / orders.
    n_terms : int
        Length of the longest sum behind each entry (samples, features, ...).
    dtype : dtype, optional
        Precision the results were computed in; default: the less precise of the two arrays'.
        Integer (and boolean) results are compared exactly.
    factor : float
        Units in the last place allowed per sqrt(term); raise it (with a comment) where the
        computation amplifies rounding (a solve with a large condition number).
    """
    actual, desired = np.asarray(actual), np.asarray(desired)
    if dtype is None:
        kinds = [a.dtype for a in (actual, desired) if np.issubdtype(a.dtype, np.inexact)]
        dtype = max(kinds, key=lambda d: np.finfo(d).eps) if kinds else actual.dtype
    rtol = dtype_tolerance(dtype, n_terms, factor)
    if rtol == 0.0:
        np.testing.assert_array_equal(actual, desired, err_msg=err_msg)
        return
    finite = np.isfinite(desired)
    scale = float(np.max(np.abs(desired[finite]))) if finite.any() else 0.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale, equal_nan=True,
                               err_msg=err_msg or f"rtol={rtol:.2e} ({np.dtype(dtype)}, "
                               f"{n_terms} terms), atol=rtol*max|desired|")
