"""PCAReducer against sklearn PCA."""

import pickle

import numpy as np
import pytest
from sklearn.decomposition import PCA, IncrementalPCA
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroprobe.transformers.reduction import PCAReducer

pd = pytest.importorskip("pandas")


def _frame(n=30, seed=0):
    rng = np.random.RandomState(seed)
    a = rng.randn(n, 6) @ rng.randn(6, 6)
    b = rng.randn(n, 4) * 10
    cols = [f"conv1:c{i}" for i in range(6)] + [f"fc:u{i}" for i in range(4)]
    return pd.DataFrame(np.hstack([a, b]), columns=cols)


# per_layer=True is left out: it needs '<layer>:...' feature names (a DataFrame), and sklearn's
# checks pass bare arrays, so it rejects nearly every check's input by design (with a clear error).
@parametrize_with_checks([
    PCAReducer(),
    PCAReducer(n_components=2, standardize=True),
    PCAReducer(whiten=True),
    PCAReducer(n_components=3, svd_solver="incremental", batch_size=10),
    PCAReducer(n_components=0.9, standardize=True, whiten=True),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_equals_sklearn_pca():
    X = _frame().to_numpy()
    ours = PCAReducer(n_components=3).fit(X)
    ref = PCA(n_components=3).fit(X)
    np.testing.assert_allclose(np.abs(ours.transform(X)), np.abs(ref.transform(X)), atol=1e-10)
    ours = PCAReducer(n_components=0.9, standardize=True, whiten=True).fit(X)
    Xs = StandardScaler().fit_transform(X)
    ref = PCA(n_components=0.9, whiten=True, svd_solver="full").fit(Xs)
    assert ours.n_components_ == [ref.n_components_]
    np.testing.assert_allclose(np.abs(ours.transform(X)), np.abs(ref.transform(Xs)), atol=1e-8)


def test_incremental_equals_incremental_pca():
    X = _frame(n=40).to_numpy()
    ours = PCAReducer(n_components=3, svd_solver="incremental", batch_size=10).fit(X)
    ref = IncrementalPCA(n_components=3, batch_size=10).fit(X)
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), atol=1e-10)


def test_per_layer_uses_feature_names_and_pandas_output():
    df = _frame()
    red = PCAReducer(n_components=2, per_layer=True).set_output(transform="pandas")
    out = red.fit_transform(df)
    assert list(out.columns) == ["conv1:pc0", "conv1:pc1", "fc:pc0", "fc:pc1"]
    assert red.layers_ == ["conv1", "fc"]
    for layer, cols in (("conv1", slice(0, 2)), ("fc", slice(2, 4))):
        block = df[[c for c in df.columns if c.startswith(layer + ":")]].to_numpy()
        ref = PCA(n_components=2).fit_transform(block)
        np.testing.assert_allclose(np.abs(out.iloc[:, cols].to_numpy()), np.abs(ref), atol=1e-10)
    with pytest.raises(ValueError, match="feature names"):
        PCAReducer(per_layer=True).fit(df.to_numpy())


def test_in_pipeline_fitted_on_training_folds_and_pickles():
    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    rng = np.random.RandomState(0)
    X = rng.randn(40, 12)
    Y = X[:, :3] @ rng.randn(3, 4) + 0.1 * rng.randn(40, 4)
    pipe = make_pipeline(PCAReducer(n_components=5), VoxelwiseEncoder(alphas=[0.1, 1.0]))
    scores = cross_val_score(pipe, X, Y, cv=4)
    assert scores.shape == (4,) and np.all(scores > 0.5)
    red = PCAReducer(n_components=2).fit(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(red)).transform(X), red.transform(X))


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"n_components": 0}, r"The 'n_components' parameter of PCAReducer must be an int in the "
                              r"range \[1, inf\), a float in the range \(0\.0, 1\.0\) "
                              r"or None\. Got 0 "),
        ({"n_components": 1.5}, r"'n_components' parameter of PCAReducer .* Got 1\.5 instead"),
        ({"n_components": "3"}, r"'n_components' parameter of PCAReducer .* Got '3' instead"),
        ({"svd_solver": "qr"}, r"The 'svd_solver' parameter of PCAReducer must be a str among "
                               r".*'incremental'.*Got 'qr' instead"),
        ({"batch_size": 0}, r"The 'batch_size' parameter of PCAReducer must be an int in the "
                            r"range \[1, inf\) or None"),
        ({"svd_solver": "incremental", "n_components": 0.5},
         r"svd_solver='incremental' needs an int n_components"),
    ],
)
def test_bad_parameters_sklearn_wording(params, pattern):
    X = np.random.RandomState(0).randn(20, 5)
    with pytest.raises(ValueError, match=pattern):
        PCAReducer(**params).fit(X)


def test_n_components_larger_than_rank_is_clipped():
    X = np.random.RandomState(0).randn(6, 5)
    red = PCAReducer(n_components=50).fit(X)
    assert red.n_components_ == [5]
    np.testing.assert_allclose(np.abs(red.transform(X)), np.abs(PCA(5).fit_transform(X)),
                               rtol=1e-6, atol=1e-8)
