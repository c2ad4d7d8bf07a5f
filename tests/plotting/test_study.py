"""Study figures (plotting/study.py) draw the numbers they are given."""

import numpy as np
import pytest
from scipy.spatial.distance import squareform
from scipy.stats import rankdata

from neuroprobe import plotting

LAYERS = ["conv1", "conv2", "fc"]


def test_layer_profile_line_errors_and_chance():
    fig = plotting.plot_layer_profile(LAYERS, [0.2, 0.5, 0.4], errors=[0.01, 0.02, 0.03],
                                      chance=0.1, highlight="conv2")
    ax = fig.axes[0]
    line = [li for li in ax.lines if len(li.get_ydata()) == 3][0]
    np.testing.assert_allclose(line.get_ydata(), [0.2, 0.5, 0.4])
    seg = np.array([np.asarray(s)[:, 1] for c in ax.collections for s in c.get_segments()])
    np.testing.assert_allclose(np.sort(seg, axis=1), [[0.19, 0.21], [0.48, 0.52], [0.37, 0.43]])
    assert any(np.allclose(li.get_ydata(), 0.1) for li in ax.lines)  # chance line
    with pytest.raises(ValueError, match="one entry per layer"):
        plotting.plot_layer_profile(LAYERS, [0.1])


def test_rsa_profile_bars_ceiling_and_stars():
    fig = plotting.plot_rsa_profile(LAYERS, [0.1, 0.3, 0.2], (0.4, 0.5),
                                    pvalues=[0.5, 0.01, 0.04], alpha=0.05)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if p.get_width() == pytest.approx(0.7)]
    np.testing.assert_allclose([b.get_height() for b in bars], [0.1, 0.3, 0.2])
    stars = sorted(t.get_position()[0] for t in ax.texts if t.get_text() == "*")
    assert stars == [1, 2]


def test_rdm_grid_shows_rank_percentiles_in_the_given_order():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3))
    rdm = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    order = [4, 0, 3, 1, 2]
    fig = plotting.plot_rdm_grid({"a": squareform(rdm, checks=False), "b": rdm}, order=order)
    for ax in fig.axes[:2]:
        shown = np.asarray(ax.images[0].get_array())
        sub = rdm[np.ix_(order, order)]
        off = ~np.eye(5, dtype=bool)
        np.testing.assert_allclose(shown[off], (rankdata(sub[off], method="min") - 1) / off.sum())
