"""Temporal figures: the artists hold exactly the numbers passed in."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from neuroprobe.plotting import save_figure  # noqa: E402
from neuroprobe.plotting.temporal import (  # noqa: E402
    plot_peak_latencies,
    plot_temporal_generalization,
    plot_time_courses,
    significant_spans,
)


def _by_gid(ax, prefix):
    arts = list(ax.lines) + list(ax.patches) + list(ax.collections) + list(ax.images)
    return {a.get_gid(): a for a in arts if (a.get_gid() or "").startswith(prefix)}


def test_time_courses_lines_clusters_and_ceiling(tmp_path):
    times = np.linspace(-0.1, 0.5, 13)
    curves = np.vstack([np.sin(times * 6), np.cos(times * 6)])
    labels = np.zeros((2, 13), int)
    labels[0, 2:5] = 1      # significant
    labels[1, 7:9] = 2      # not significant
    labels[1, 10:12] = 3    # significant
    p = np.array([0.01, 0.3, 0.04])
    fig = plot_time_courses(times, curves, ["conv1", "fc8"], labels=labels, cluster_p=p,
                            ceiling=(0.2, 0.6))
    ax = fig.axes[0]
    lines = _by_gid(ax, "curve:")
    np.testing.assert_array_equal(lines["curve:conv1"].get_ydata(), curves[0])
    np.testing.assert_array_equal(lines["curve:fc8"].get_xdata(), times)
    spans = _by_gid(ax, "cluster:")
    assert sorted(spans) == ["cluster:conv1:0", "cluster:fc8:0"]
    for gid, (a, b) in [("cluster:conv1:0", (times[2], times[4])),
                        ("cluster:fc8:0", (times[10], times[11]))]:
        x0, _, w, _ = spans[gid].get_bbox().bounds
        assert (x0, x0 + w) == pytest.approx((a, b))
    band = _by_gid(ax, "ceiling")["ceiling"]
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(0.2) and ys.max() == pytest.approx(0.6)
    assert save_figure(fig, tmp_path / "tc.png").stat().st_size > 0


def test_significant_spans():
    labels = np.array([[0, 1, 1, 0, 2, 2, 2]])
    (span,), = significant_spans(labels, [0.5, 0.01], np.arange(7) * 0.1)
    assert span == pytest.approx((0.4, 0.6))
    with pytest.raises(ValueError, match="labels"):
        significant_spans(labels, [0.1, 0.1], np.arange(5))


def test_peak_latencies_with_intervals():
    peak, low, high = np.array([0.1, 0.15, 0.2]), np.array([0.08, 0.1, 0.18]), \
        np.array([0.12, 0.2, 0.25])
    fig = plot_peak_latencies(["a", "b", "c"], peak, low, high)
    ax = fig.axes[0]
    np.testing.assert_array_equal(_by_gid(ax, "peaks")["peaks"].get_ydata(), peak)
    segs = [c for c in ax.collections if c.get_segments()][0].get_segments()
    np.testing.assert_allclose([s[:, 1].min() for s in segs], low)
    np.testing.assert_allclose([s[:, 1].max() for s in segs], high)
    with pytest.raises(ValueError, match="peak"):
        plot_peak_latencies(["a"], peak)


def test_temporal_generalization_image():
    rng = np.random.default_rng(0)
    scores = rng.random((5, 7))
    fig = plot_temporal_generalization(scores, np.arange(5) * 0.1, np.arange(7) * 0.1,
                                       chance=0.5)
    im = _by_gid(fig.axes[0], "generalization")["generalization"]
    np.testing.assert_array_equal(np.asarray(im.get_array()), scores)
    assert im.get_extent() == pytest.approx((0.0, 0.6, 0.0, 0.4))
    lo, hi = im.get_clim()
    assert (lo + hi) / 2 == pytest.approx(0.5)
    with pytest.raises(ValueError, match="scores"):
        plot_temporal_generalization(scores, np.arange(7))
