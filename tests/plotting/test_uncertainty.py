"""Figures with uncertainty draw exactly the numbers they are given (read back from the artists)."""

import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from neuroprobe import plotting
from neuroprobe.solvers.bootstrap import bootstrap_indices

rng = np.random.default_rng(0)
LAYERS = ["conv1", "conv2", "conv3", "fc6"]


def _errorbar_segments(ax):
    """The vertical error-bar segments of the axes, as (x, low, high) rows."""
    rows = []
    for coll in ax.collections:
        if isinstance(coll, LineCollection):
            for seg in coll.get_segments():
                seg = np.asarray(seg)
                if len(seg) == 2 and seg[0, 0] == seg[1, 0]:
                    rows.append((seg[0, 0], seg[:, 1].min(), seg[:, 1].max()))
    return np.array(sorted(rows))


def test_layer_ci_bars_are_the_bootstrap_intervals_and_the_ceiling_band():
    samples = rng.normal(loc=[0.1, 0.3, 0.5, 0.2], scale=0.1, size=(12, 4))
    idx = bootstrap_indices(12, 300, random_state=1)
    mean, lower, upper = plotting.layer_ci(samples, indices=idx)
    brute = np.stack([samples[i].mean(axis=0) for i in idx])
    np.testing.assert_allclose(lower, np.quantile(brute, 0.025, axis=0), rtol=1e-12)
    np.testing.assert_allclose(upper, np.quantile(brute, 0.975, axis=0), rtol=1e-12)
    fig = plotting.plot_layer_ci(LAYERS, mean, lower, upper, ceiling=(0.6, 0.7), chance=0.0)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    line = next(li for li in ax.lines if li.get_gid() == "series-0" or len(li.get_ydata()) == 4)
    np.testing.assert_allclose(line.get_ydata(), mean)
    seg = _errorbar_segments(ax)
    np.testing.assert_allclose(seg[:, 0], np.arange(4))
    np.testing.assert_allclose(seg[:, 1], lower, rtol=1e-12)
    np.testing.assert_allclose(seg[:, 2], upper, rtol=1e-12)
    band = next(c for c in ax.collections if c.get_gid() == "noise-ceiling")
    ys = np.concatenate([p.vertices[:, 1] for p in band.get_paths()])
    assert ys.min() == pytest.approx(0.6) and ys.max() == pytest.approx(0.7)
    assert [t.get_text() for t in ax.get_xticklabels()] == LAYERS
    table = plotting.figure_table(fig)
    np.testing.assert_array_equal(table["upper"], upper)
    np.testing.assert_array_equal(table["ceiling_lower"], [0.6] * 4)


def test_layer_ci_several_series_and_per_layer_ceiling():
    vals = np.array([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    fig = plotting.plot_layer_ci(LAYERS, vals, vals - 0.05, vals + 0.1, labels=["enc", "rsa"],
                                 ceiling=(np.full(4, 0.5), np.array([0.6, 0.7, 0.8, 0.9])))
    ax = fig.axes[0]
    for k in range(2):
        line = [li for li in ax.lines if li.get_gid() == f"series-{k}"] or \
            [li for li in ax.lines if np.allclose(li.get_ydata(), vals[k])]
        assert line, k
    assert [t.get_text() for t in ax.get_legend().get_texts()][:1] == ["noise ceiling"]
    assert list(plotting.figure_table(fig)) [:3] == ["layer", "ceiling_lower", "ceiling_upper"]
    with pytest.raises(ValueError, match="one value per layer"):
        plotting.plot_layer_ci(LAYERS, [0.1, 0.2])
    with pytest.raises(ValueError, match="lower has shape"):
        plotting.plot_layer_ci(LAYERS, vals, vals[:1], vals)


def test_model_comparison_bars_and_brackets_only_for_significant_pairs():
    names = ["alexnet", "vgg", "resnet"]
    values = np.array([0.2, 0.35, 0.3])
    p = np.array([[1.0, 0.004, 0.2], [0.004, 1.0, 0.0004], [0.2, 0.0004, 1.0]])
    fig = plotting.plot_model_comparison(names, values, lower=values - 0.05,
                                         upper=values + 0.05, pvalues=p, ceiling=(0.5, 0.6))
    ax = fig.axes[0]
    bars = [r for r in ax.patches if r.get_width() == pytest.approx(0.7)]
    np.testing.assert_allclose([b.get_height() for b in bars], values)
    seg = _errorbar_segments(ax)
    np.testing.assert_allclose(seg[:, 1:], np.c_[values - 0.05, values + 0.05])
    brackets = {li.get_gid() for li in ax.lines if (li.get_gid() or "").startswith("pair-")}
    assert brackets == {"pair-0-1", "pair-1-2"}  # 0 vs 2 has p = 0.2
    texts = {t.get_gid(): t.get_text() for t in ax.texts}
    assert texts == {"pair-0-1-text": "**", "pair-1-2-text": "***"}
    assert [plotting.significance_marker(x) for x in (0.2, 0.04, 0.009, 0.0009)] == \
        ["", "*", "**", "***"]
    with pytest.raises(ValueError, match=r"\(3, 3\) matrix"):
        plotting.plot_model_comparison(names, values, pvalues=np.ones(3))


def _square_rdm(n):
    x = rng.normal(size=(n, 5))
    return np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))


def test_rdm_panel_sorts_by_category_and_draws_the_boundaries():
    from scipy.spatial.distance import squareform
    from scipy.stats import rankdata

    rdm = _square_rdm(6)
    cats = ["face", "body", "face", "body", "scene", "face"]
    fig = plotting.plot_rdm(squareform(rdm, checks=False), categories=cats)
    ax = fig.axes[0]
    order = np.array([0, 2, 5, 1, 3, 4])  # categories in order of appearance, stable
    shown = np.asarray(ax.images[0].get_array())
    sub = rdm[np.ix_(order, order)]
    off = ~np.eye(6, dtype=bool)
    ranks = (rankdata(sub[off], method="min") - 1) / off.sum()  # percentile of each entry
    np.testing.assert_allclose(shown[off], ranks)
    assert np.all(np.diag(shown) == 0)
    bounds = sorted({li.get_ydata()[0] for li in ax.lines if li.get_gid() == "category-boundary"
                     and li.get_ydata()[0] == li.get_ydata()[1]})
    assert bounds == [2.5, 4.5]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["face", "body", "scene"]
    raw = plotting.plot_rdm(rdm, rank=False)
    np.testing.assert_allclose(np.asarray(raw.axes[0].images[0].get_array()), rdm)
    with pytest.raises(ValueError, match="one label per stimulus"):
        plotting.plot_rdm(rdm, categories=["a"])


def test_mds_recovers_a_planar_configuration_and_the_scatter_shows_it():
    pts = rng.normal(size=(10, 2))
    rdm = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    xy = plotting.mds_embedding(rdm, random_state=0)
    emb = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    np.testing.assert_allclose(emb, rdm, atol=0.05 * rdm.max())  # distances kept (up to SMACOF)
    np.testing.assert_array_equal(xy, plotting.mds_embedding(rdm, random_state=0))  # seeded
    cats = np.array(["a"] * 5 + ["b"] * 5)
    fig = plotting.plot_mds(rdm, categories=cats, random_state=0)
    ax = fig.axes[0]
    for k, c in enumerate(["a", "b"]):
        coll = next(cl for cl in ax.collections if cl.get_gid() == f"category-{k}")
        np.testing.assert_allclose(coll.get_offsets(), xy[cats == c])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


def test_histogram_bars_equal_numpy_histogram_and_significant_on_top():
    scores = rng.normal(size=400)
    p = rng.random(400)
    edges = np.linspace(-4, 4, 17)
    fig = plotting.plot_score_histogram(scores, bins=edges)
    np.testing.assert_array_equal([r.get_height() for r in fig.axes[0].patches],
                                  np.histogram(scores, edges)[0])
    fig = plotting.plot_score_histogram(np.r_[scores, np.nan], bins=edges,
                                        pvalues=np.r_[p, 0.0], alpha=0.05, threshold=1.0)
    patches = fig.axes[0].patches
    ns, sig = patches[:16], patches[16:]
    np.testing.assert_array_equal([r.get_height() for r in ns],
                                  np.histogram(scores[p >= 0.05], edges)[0])
    np.testing.assert_array_equal([r.get_height() for r in sig],
                                  np.histogram(scores[p < 0.05], edges)[0])
    np.testing.assert_array_equal([r.get_y() for r in sig], [r.get_height() for r in ns])
    with pytest.raises(ValueError, match="one value per score"):
        plotting.plot_score_histogram(scores, pvalues=p[:3])


def test_rdm_layer_ci_observed_is_pearson_and_interval_brackets_it():
    from scipy.spatial.distance import squareform
    from scipy.stats import pearsonr

    target = _square_rdm(12)
    layers = {"conv1": _square_rdm(12), "fc": target + 0.2 * _square_rdm(12)}
    values, lower, upper = plotting.rdm_layer_ci(layers, target, n_boot=300)
    for v, rdm in zip(values, layers.values()):
        assert v == pytest.approx(pearsonr(squareform(rdm, checks=False),
                                           squareform(target, checks=False))[0])
    assert np.all(lower <= values) and np.all(values <= upper)
    assert upper[1] - lower[1] < upper[0] - lower[0]  # the close layer: a tighter interval
