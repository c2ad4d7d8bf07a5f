"""compare_scores, heldout_scores and permutation_test_layers: references and planted effects."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold

from neuroprobe.comparison import compare_scores, heldout_scores, permutation_test_layers
from neuroprobe.estimators.encoding import VoxelwiseEncoder
from neuroprobe.solvers.bootstrap import bootstrap_indices


def test_compare_scores_equals_a_brute_force_bootstrap():
    rng = np.random.default_rng(0)
    base = rng.standard_normal(50)
    scores = {"a": base + 0.5 + 0.3 * rng.standard_normal(50), "b": base,
              "c": base + 0.05 * rng.standard_normal(50)}
    table = compare_scores(scores, n_bootstrap=400, random_state=7, confidence=0.9)
    assert list(zip(table.model_a, table.model_b)) == [("a", "b"), ("a", "c"), ("b", "c")]
    idx = bootstrap_indices(50, 400, 7)  # the same indices, brute force
    p = []
    for row in table.itertuples():
        d = scores[row.model_a] - scores[row.model_b]
        boot = np.array([d[i].mean() for i in idx])
        assert row.difference == pytest.approx(d.mean())
        assert (row.ci_low, row.ci_high) == pytest.approx(tuple(np.quantile(boot, [.05, .95])))
        p.append((np.sum(np.abs(boot - d.mean()) >= abs(d.mean())) + 1) / 401)
    np.testing.assert_allclose(table.pvalue, p)
    m = len(p)
    order = np.argsort(p)
    holm = np.maximum.accumulate(np.minimum(1, np.array(p)[order] * (m - np.arange(m))))
    np.testing.assert_allclose(table.pvalue_holm.to_numpy()[order], holm)
    assert table.loc[0, "ci_low"] > 0 and table.loc[0, "pvalue_holm"] < 0.01
    assert table.loc[2, "ci_low"] < 0 < table.loc[2, "ci_high"]
    assert set(table.unit) == {"stimuli"} and set(table.n_units) == {50}


def test_cluster_bootstrap_over_runs_and_2d_scores():
    rng = np.random.default_rng(1)
    runs = np.repeat(np.arange(6), 10)
    a = rng.standard_normal((60, 4))  # (stimuli, voxels): averaged over voxels
    b = a - 1.0
    table = compare_scores({"a": a, "b": b}, unit="runs", groups=runs, n_bootstrap=200,
                           random_state=0)
    assert table.n_units[0] == 6
    run_means = pd.Series(a.mean(axis=1)).groupby(runs).mean().to_numpy()
    assert table.mean_a[0] == pytest.approx(run_means.mean())
    assert table.difference[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same stimuli"):
        compare_scores({"a": np.zeros(5), "b": np.zeros(4)})
    with pytest.raises(ValueError, match="unit"):
        compare_scores({"a": np.zeros(5), "b": np.zeros(5)}, unit="voxels")


def _layers(seed, n=80, n_voxels=12, signal=1.0):
    """conv3 drives the voxels; conv4 is conv3 plus noise features; conv5 is unrelated."""
    rng = np.random.default_rng(seed)
    conv3 = rng.standard_normal((n, 5))
    conv4 = 0.5 * conv3 + rng.standard_normal((n, 5))
    conv5 = rng.standard_normal((n, 5))
    Y = signal * conv3 @ rng.standard_normal((5, n_voxels)) + rng.standard_normal((n, n_voxels))
    return {"conv3": conv3, "conv4": conv4, "conv5": conv5}, Y


def test_planted_better_layer_detected_by_paired_bootstrap():
    feats, Y = _layers(0)
    enc = VoxelwiseEncoder(alphas=[0.1, 10.0], cv=3)
    per_stimulus = {k: heldout_scores(enc, X, Y, cv=KFold(4)) for k, X in feats.items()}
    assert per_stimulus["conv3"].shape == (80,)
    table = compare_scores(per_stimulus, n_bootstrap=2000, random_state=0).set_index(
        ["model_a", "model_b"])
    assert table.loc[("conv3", "conv4"), "difference"] > 0
    assert table.loc[("conv3", "conv4"), "ci_low"] > 0
    assert table.loc[("conv3", "conv5"), "pvalue_holm"] < 0.01
    assert table.loc[("conv3", "conv5"), "pvalue_fdr_bh"] < 0.01


def test_heldout_scores_equal_cross_validated_predictions():
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((30, 3)), rng.standard_normal((30, 4))
    folds = KFold(3)
    got = heldout_scores(Ridge(1.0), X, Y, cv=folds)
    pred = np.empty_like(Y)
    for tr, te in folds.split(X):
        pred[te] = Ridge(1.0).fit(X[tr], Y[tr]).predict(X[te])
    np.testing.assert_allclose(got, [np.corrcoef(Y[i], pred[i])[0, 1] for i in range(30)])
    err = heldout_scores(Ridge(1.0), X, Y[:, 0], cv=folds)
    np.testing.assert_allclose(err, -(Y[:, 0] - pred[:, 0]) ** 2)
    labels = (X[:, 0] > 0).astype(int)
    acc = heldout_scores(LogisticRegression(), X, labels, cv=folds)
    assert set(np.unique(acc)) <= {0.0, 1.0} and acc.mean() > 0.7  # per-stimulus correctness
    with pytest.raises(ValueError, match="exactly one test fold"):
        heldout_scores(Ridge(), X, Y, cv=[(np.arange(10, 30), np.arange(10))])


def test_layer_fwe_controlled_over_null_simulations():
    """No layer explains anything: P(any FWE p <= 0.05 over 3 layers x 10 voxels) <= 0.05
    (up to simulation error), while uncorrected p-values give many false positives."""
    enc = VoxelwiseEncoder(alphas=[1.0], cv=3, dtype="float64")
    hits = any_uncorrected = 0
    n_sims = 20
    for seed in range(n_sims):
        feats, Y = _layers(seed, n=30, n_voxels=10, signal=0.0)
        res = permutation_test_layers(enc, feats, Y, n_permutations=39, random_state=seed)
        hits += bool(np.any(res.pvalue_fwe <= 0.05))
        any_uncorrected += bool(np.any(res.pvalue <= 0.05))
        assert np.all(res.pvalue_fwe >= res.pvalue_fwe_voxels)
    assert hits / n_sims <= 0.1
    assert any_uncorrected / n_sims > 0.5


def test_planted_layer_wins_the_layer_summary_and_shares_permutations():
    feats, Y = _layers(1, n=60, signal=1.0)
    enc = VoxelwiseEncoder(alphas=[0.1, 10.0], cv=3, dtype="float64")
    res = permutation_test_layers(enc, feats, Y, n_permutations=99, random_state=0,
                                  region=np.arange(6))
    assert res.layers == ["conv3", "conv4", "conv5"]
    s = res.summary
    assert s.loc["conv3", "n_significant"] == 6 and s.loc["conv5", "n_significant"] == 0
    assert s.loc["conv3", "mean_score"] > s.loc["conv4", "mean_score"] > s.loc["conv5",
                                                                                "mean_score"]
    assert set(s.n_targets) == {6}
    # each layer's null is PermutationTest's with the same seed (the same permutations)
    from neuroprobe.estimators.permutation import PermutationTest

    one = PermutationTest(enc, n_permutations=99, random_state=0).fit(feats["conv4"], Y)
    np.testing.assert_allclose(res.null[:, 1], one.null_distribution_)
    np.testing.assert_allclose(res.pvalue_fwe_voxels[1], one.pvalue_fwe_)
    flat = res.null.reshape(99, -1).max(axis=1)
    expected = (np.sum(flat[:, None] >= res.score.ravel()[None], axis=0) + 1) / 100
    np.testing.assert_allclose(res.pvalue_fwe.ravel(), expected)


def test_layer_rows_must_match():
    feats, Y = _layers(0, n=20)
    feats["conv5"] = feats["conv5"][:19]
    with pytest.raises(ValueError, match="layer 'conv5' has 19 stimuli but y has 20"):
        permutation_test_layers(VoxelwiseEncoder(), feats, Y, n_permutations=5)
