"""RSAScorer: scores, fitted RDMs, groups, pipelines and the sklearn contract."""

from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from scipy.spatial.distance import pdist, squareform
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroprobe.estimators.rsa import RSAScorer


def _data(seed=0, n=20):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 4))
    X = np.hstack([latent @ rng.standard_normal((4, 10)) + 0.3 * rng.standard_normal((n, 10)),
                   rng.standard_normal((n, 10))])  # columns 0-9 share the brain's geometry
    Y = latent @ rng.standard_normal((4, 15)) + 0.3 * rng.standard_normal((n, 15))
    return X, Y


def test_score_equals_scipy():
    X, Y = _data()
    est = RSAScorer().fit(X, Y)
    expected = scipy.stats.spearmanr(pdist(X, "correlation"), pdist(Y, "correlation"))[0]
    assert est.score(X, Y) == pytest.approx(expected)
    assert est.score(X) == pytest.approx(expected)  # fitted target RDM
    np.testing.assert_allclose(est.model_rdm_, pdist(X, "correlation"))
    np.testing.assert_allclose(est.target_rdm_, pdist(Y, "correlation"))
    est = RSAScorer(metric="euclidean", comparison="kendall_tau_a", target_metric="cosine")
    est.fit(X, Y)
    from neuroprobe.solvers.rdm import kendall

    assert est.score(X, Y) == pytest.approx(
        kendall(pdist(X, "euclidean"), pdist(Y, "cosine"), "a"))


def test_fixed_target_rdm_and_groups():
    X, Y = _data()
    target = pdist(Y, "correlation")
    est = RSAScorer(target_rdm=np.stack([target, pdist(Y[:, :5])]),
                    feature_groups={"good": slice(0, 10), "noise": np.arange(10, 20)}).fit(X)
    M = est.score_matrix(X)
    assert M.shape == (2, 2)
    assert est.model_names_ == ["good", "noise"]
    assert M[0, 0] == pytest.approx(scipy.stats.spearmanr(pdist(X[:, :10], "correlation"),
                                                          target)[0])
    assert M[0, 0] > M[1, 0] + 0.3  # the planted layer wins
    np.testing.assert_allclose(est.score_targets(X), M.ravel())
    assert est.score(X) == pytest.approx(M.mean())
    est = RSAScorer(target_groups=[np.arange(5), np.arange(5, 15)]).fit(X, Y)
    assert est.target_rdms_.shape == (2, 190)
    with pytest.raises(ValueError, match="target_rdm has 20 stimuli but X has 10"):
        RSAScorer(target_rdm=target).fit(X[:10])
    with pytest.raises(ValueError, match="needs y"):
        RSAScorer().fit(X)
    with pytest.raises(ValueError, match="pass y"):
        RSAScorer().fit(X, Y).score(X[:10])
    with pytest.raises(ValueError, match="feature_groups\\['a'\\]"):
        RSAScorer(feature_groups={"a": [40]}).fit(X, Y)


def test_pipeline_grid_search_picks_the_layer():
    X, Y = _data(1, n=40)
    layers = {"good": slice(0, 10), "noise": slice(10, 20)}
    pipe = Pipeline([("layer", FunctionTransformer()), ("rsa", RSAScorer())])
    grid = GridSearchCV(
        pipe,
        {"layer__func": [lambda x, s=s: x[:, s] for s in layers.values()]},
        cv=KFold(2),
    ).fit(X, Y)
    assert grid.best_index_ == 0
    assert grid.best_score_ > 0.3


def test_score_checks_n_features():
    X, Y = _data()
    est = RSAScorer().fit(X, Y)
    with pytest.raises(ValueError, match="X has 3 features, but RSAScorer is expecting 20"):
        est.score(X[:, :3], Y)


def test_torch_backend_matches_numpy():
    pytest.importorskip("torch")
    X, Y = _data()
    a = RSAScorer().fit(X, Y).score(X, Y)
    b = RSAScorer(backend="torch").fit(X.astype(np.float32), Y.astype(np.float32)).score(
        X.astype(np.float32), Y.astype(np.float32))
    assert b == pytest.approx(a, abs=1e-4)


@parametrize_with_checks([RSAScorer(), RSAScorer(metric="euclidean")])
def test_sklearn_contract(estimator, check):
    check(estimator)


# -- fixed target RDMs inside cross-validation (stimulus IDs / indices as y) --------------------
def _fixed(seed=3, n=30):
    X, Y = _data(seed, n=n)
    ids = np.array([f"stim{i:02d}" for i in range(n)])
    return X, pdist(Y, "correlation"), ids


def test_target_rdm_rows_selected_by_indices_and_ids():
    X, target, ids = _fixed()
    rows = np.array([5, 2, 17, 9, 0, 11, 23, 28, 14, 7])
    full = squareform(target)
    expected = scipy.stats.spearmanr(pdist(X[rows], "correlation"),
                                     squareform(full[np.ix_(rows, rows)], checks=False))[0]
    by_index = RSAScorer(target_rdm=target).fit(X[rows], rows)
    assert by_index.score(X[rows], rows) == pytest.approx(expected, rel=1e-10)
    assert by_index.score(X[rows]) == pytest.approx(expected, rel=1e-10)  # fitted rows
    by_id = RSAScorer(target_rdm=squareform(target), stim_ids=ids).fit(X[rows], ids[rows])
    assert by_id.score(X[rows], ids[rows]) == pytest.approx(expected, rel=1e-10)
    # an RDMData (as read from a .rdm.h5 file) brings its own IDs
    from neuroprobe.io.rdm import RDMData

    data = RDMData(target[None], ["it"], ids)
    assert RSAScorer(target_rdm=data).fit(X[rows], ids[rows]).score(
        X[rows], ids[rows]) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="not in target_rdm.*first: 'nope'"):
        RSAScorer(target_rdm=data).fit(X[:3], ["stim00", "nope", "stim01"])
    with pytest.raises(ValueError, match="give stim_ids="):
        RSAScorer(target_rdm=target).fit(X[rows], ids[rows])
    with pytest.raises(ValueError, match="must be the stimulus IDs"):
        RSAScorer(target_rdm=target).fit(X, X)


def test_grid_search_over_stimuli_with_a_fixed_rdm():
    """Reproduces the README failure: every fit raised 'target_rdm has 30 stimuli but X has 24'."""
    X, target, ids = _fixed(n=30)
    layers = {"good": slice(0, 10), "noise": slice(10, 20)}
    pipe = Pipeline([("layer", FunctionTransformer()), ("rsa", RSAScorer(target_rdm=target))])
    grid = {"layer__func": [lambda x, s=s: x[:, s] for s in layers.values()]}
    cv = KFold(5, shuffle=True, random_state=0)
    with pytest.raises(ValueError, match="pass their stimulus IDs or row indices"):
        GridSearchCV(pipe, grid, cv=cv, error_score="raise").fit(X)
    search = GridSearchCV(pipe, grid, cv=cv).fit(X, np.arange(30))
    # the same numbers by hand: held-out fold RDM vs the fold's rows of the target RDM
    full = squareform(target)
    by_hand = [np.mean([scipy.stats.spearmanr(
        pdist(X[test][:, s], "correlation"),
        squareform(full[np.ix_(test, test)], checks=False))[0]
        for _, test in cv.split(X)]) for s in layers.values()]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], by_hand, rtol=1e-10)
    assert search.best_index_ == 0
    pipe_ids = Pipeline([("layer", FunctionTransformer()),
                         ("rsa", RSAScorer(target_rdm=target, stim_ids=ids))])
    shuffled = np.random.default_rng(0).permutation(30)  # rows of X in another order: same result
    search_ids = GridSearchCV(pipe_ids, grid, cv=cv).fit(X[shuffled], ids[shuffled])
    assert search_ids.best_index_ == 0


def test_permutation_test_with_ids_equals_reordered_rdm():
    from neuroprobe.estimators import PermutationTest

    X, target, ids = _fixed()
    order = np.random.default_rng(1).permutation(30)
    a = PermutationTest(RSAScorer(target_rdm=target, stim_ids=ids), n_permutations=50,
                        random_state=2).fit(X[order], ids[order])
    full = squareform(target)
    b = PermutationTest(RSAScorer(target_rdm=full[np.ix_(order, order)]), n_permutations=50,
                        random_state=2).fit(X[order])
    assert a.score_ == pytest.approx(b.score_, rel=1e-10)
    np.testing.assert_allclose(a.null_distribution_, b.null_distribution_, rtol=1e-10)


def test_capital_Y_keyword_is_deprecated_but_works():
    X, Y = _data()
    est = RSAScorer()
    with pytest.warns(FutureWarning, match="Y= is deprecated"):
        est.fit(X, Y=Y)
    with pytest.warns(FutureWarning, match="Y= is deprecated"):
        old = est.score(X, Y=Y)
    assert old == pytest.approx(est.score(X, y=Y))
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        est.score(X, z=Y)


KRIEGESKORTE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "kriegeskorte92"


@pytest.mark.skipif(not (KRIEGESKORTE / "rdms.npz").exists(),
                    reason="kriegeskorte92 data not found at ../shared/data")
def test_readme_grid_search_rsa_snippet_on_92_images(tmp_path, monkeypatch):
    """The README's GridSearchCV + RSAScorer snippet, run as written on the 92 images."""
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    match = re.search(r"```python\n(# RSA: which layer.*?)```", readme, re.S)
    assert match, "README lost its GridSearchCV + RSAScorer snippet"
    code = match.group(1).replace("/path/to/kriegeskorte92", str(KRIEGESKORTE))
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README-rsa-snippet", "exec"), namespace)  # noqa: S102
    search = namespace["search"]
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))  # before: every fit failed (92 stimuli vs 69 rows)
    # independent check of the best layer's number: rebuild its features, and compare each
    # held-out fold's RDM with the fold's rows of the IT RDM with scipy
    from neuroprobe import DNNFeatureExtractor, StimulusSet

    stimuli = StimulusSet.from_csv(KRIEGESKORTE / "stimuli.csv")
    it = np.load(KRIEGESKORTE / "rdms.npz")["hIT"]
    best = search.best_params_["dnn__layers"]
    feats = DNNFeatureExtractor("alexnet", weights=None, random_state=0, layers=best,
                                pooling="max").fit_transform(stimuli)
    by_hand = np.mean([scipy.stats.spearmanr(
        pdist(feats[test], "correlation"), squareform(it[np.ix_(test, test)], checks=False))[0]
        for _, test in search.cv.split(feats)])
    assert search.best_score_ == pytest.approx(by_hand, rel=1e-4)


def test_parameter_constraints_sklearn_wording():
    """Bad parameters fail at fit (and in the permutation path) with sklearn's message."""
    X = np.random.default_rng(0).standard_normal((8, 4))
    Y = np.random.default_rng(1).standard_normal((8, 3))
    with pytest.raises(ValueError, match=r"The 'comparison' parameter of RSAScorer must be a str "
                                         r"among .*'spearman'.*Got 'nope' instead"):
        RSAScorer(comparison="nope").fit(X, Y)
    with pytest.raises(ValueError, match=r"The 'backend' parameter of RSAScorer must be a str "
                                         r"among .*Got 'jax' instead"):
        RSAScorer(backend="jax").fit(X, Y)
    with pytest.raises(ValueError, match="The 'comparison' parameter of RSAScorer"):
        RSAScorer(comparison="nope")._permutation_scores(X, Y, np.array([np.arange(8)]))
    # rsatoolbox's names stay accepted, and give the canonical method's score
    a = RSAScorer(comparison="corr").fit(X, Y).score(X, Y)
    b = RSAScorer(comparison="pearson").fit(X, Y).score(X, Y)
    assert a == b


def test_whitened_comparison_in_scorer_and_permutation_fast_path():
    from neuroprobe.estimators.permutation import PermutationTest
    from neuroprobe.rsa import compare_rdms, permutation_test_rdms

    X, Y = _data(5, n=16)
    est = RSAScorer(comparison="corr_cov").fit(X, Y)
    assert est.score(X, Y) == pytest.approx(compare_rdms(
        pdist(X, "correlation"), pdist(Y, "correlation"), "corr_cov"), rel=1e-10)
    res = permutation_test_rdms(pdist(X, "correlation"), pdist(Y, "correlation"), "cosine_cov",
                                n_permutations=20, random_state=0)
    perm = PermutationTest(RSAScorer(comparison="cosine_cov"), n_permutations=20,
                           random_state=0).fit(X, Y)
    assert perm.pvalue_ == pytest.approx(float(res["pvalue"][0, 0]))
