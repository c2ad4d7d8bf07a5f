"""RunScaler against a per-run z-scoring loop."""

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroprobe.transformers import RunScaler
from neuroprobe.transformers.runs import run_indices
from tests._tolerance import assert_allclose_dtype


def loop_zscore(X, runs, with_mean=True, with_std=True):
    out = np.array(X, dtype=float)
    for r in set(runs.tolist()):
        for j in range(X.shape[1]):
            rows = [i for i in range(len(runs)) if runs[i] == r]
            vals = [X[i, j] for i in rows]
            mean = sum(vals) / len(vals)
            std = (sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5
            for i in rows:
                x = X[i, j] - (mean if with_mean else 0.0)
                out[i, j] = x / (std if with_std and std > 0 else 1.0)
    return out


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    runs = rng.permutation(np.repeat(["b", "a", "c"], [20, 13, 7]))  # interleaved, unequal
    X = rng.standard_normal((40, 5)) * 3 + 10
    X[runs == "a", 2] = 4.0  # constant within one run
    return X, runs


@pytest.mark.parametrize("with_mean, with_std", [(True, True), (True, False), (False, True)])
def test_equals_loop(data, with_mean, with_std):
    X, runs = data
    out = RunScaler(with_mean=with_mean, with_std=with_std).fit_transform(X, runs=runs)
    assert_allclose_dtype(out, loop_zscore(X, runs, with_mean, with_std), n_terms=40)
    np.testing.assert_array_equal(RunScaler(with_mean, with_std, runs=runs).fit_transform(X),
                                  out)


def test_differs_from_global_scaling_and_float32(data):
    X, runs = data
    X[runs == "c"] += 50.0
    out = RunScaler().fit_transform(X.astype(np.float32), runs=runs)
    assert out.dtype == np.float32
    for r in "abc":
        np.testing.assert_allclose(out[runs == r][:, [0, 1, 3]].mean(0), 0, atol=1e-5)
    single = RunScaler().fit_transform(X)
    assert np.abs(single[runs == "c"].mean(0)).min() > 0.5


def test_run_indices_sorted_labels():
    idx = run_indices(np.array([2, 0, 2, 1, 0]), 5)
    assert [i.tolist() for i in idx] == [[1, 4], [3], [0, 2]]
    with pytest.raises(ValueError, match="runs must give one run label per row"):
        run_indices([0, 1], 3)


def test_metadata_routing_in_pipeline(data):
    X, runs = data
    y = X[:, 0]
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(RunScaler().set_transform_request(runs=True)
                             .set_fit_request(runs=True), Ridge())
        pipe.fit(X, y, runs=runs)
        pred = pipe.predict(X, runs=runs)
    ref = Ridge().fit(loop_zscore(X, runs), y).predict(loop_zscore(X, runs))
    assert_allclose_dtype(pred, ref, n_terms=40, factor=1e4)


@parametrize_with_checks(
    [RunScaler()],
    expected_failed_checks=lambda est: {
        "check_methods_subset_invariance":
            "each run is z-scored with its own statistics, computed on the rows transformed "
            "together: a subset of a run is scaled with the subset's mean and std",
    },
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
