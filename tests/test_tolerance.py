"""The dtype-derived tolerance of tests/_tolerance.py accepts reordered sums and rejects errors."""

import numpy as np
import pytest

from tests._tolerance import assert_allclose_dtype, dtype_tolerance


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accepts_a_sum_in_another_blocking(dtype):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((200, 500)).astype(dtype)
    B = rng.standard_normal((500, 30)).astype(dtype)
    whole = A @ B
    blocked = sum(A[:, k:k + 64] @ B[k:k + 64] for k in range(0, 500, 64))  # another order
    assert_allclose_dtype(blocked, whole, n_terms=500)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rejects_an_error_of_a_few_hundred_ulps(dtype):
    x = np.linspace(1, 2, 50).astype(dtype)
    wrong = x.copy()
    wrong[7] += 64 * dtype_tolerance(dtype, 100) * x[7]
    with pytest.raises(AssertionError):
        assert_allclose_dtype(wrong, x, n_terms=100)


def test_scale_and_integers():
    assert dtype_tolerance(np.float32, 100) == pytest.approx(16 * np.finfo(np.float32).eps * 10)
    assert dtype_tolerance(np.int64) == 0.0
    with pytest.raises(AssertionError):
        assert_allclose_dtype(np.array([1, 2]), np.array([1, 3]))
    # a near-zero entry is judged against the array's scale
    assert_allclose_dtype(np.array([1.0, 1e-9], np.float32), np.array([1.0, 0.0], np.float32))
    # the less precise dtype sets the tolerance
    assert_allclose_dtype(np.float32(1) + np.float32(1e-6), np.float64(1.0), n_terms=1)
