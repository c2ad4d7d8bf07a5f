"""Searchlight RDMs / RSA values at every centre equal a direct computation on its voxels."""

import numpy as np
import pytest

from neuroprobe.rsa import compare_rdms, compute_rdm
from neuroprobe.searchlight import volume_neighbourhoods
from neuroprobe.searchlight.rdm import searchlight_rdms, searchlight_rsa


def _setup(seed=0):
    r = np.random.default_rng(seed)
    mask = r.random((7, 8, 6)) > 0.25
    nb = volume_neighbourhoods(mask, 2.0, threshold=0.0).to_columns(np.flatnonzero(mask))
    X = r.normal(size=(12, mask.sum()))
    return mask, nb, X


@pytest.mark.parametrize("metric", ["correlation", "euclidean", "sqeuclidean"])
def test_rdms_equal_direct(metric):
    _, nb, X = _setup()
    assert len(nb) > 100
    R = searchlight_rdms(X, nb, metric, chunk_size=29)
    for c in range(0, len(nb), 5):
        cols = nb.members(c)
        if metric == "correlation" and cols.size < 2:
            continue
        np.testing.assert_allclose(R[c], compute_rdm(X[:, cols], metric), rtol=1e-9,
                                   atol=1e-12)


def test_rsa_equals_direct_and_finds_planted_effect():
    mask, nb, X = _setup(1)
    r = np.random.default_rng(2)
    # plant: the columns of one sphere carry the model's geometry
    c0 = len(nb) // 2
    cols = nb.members(c0)
    X = X.copy()
    base = r.normal(size=(12, 5))
    model = compute_rdm(base, "correlation")
    X[:, cols] = base @ r.normal(size=(5, cols.size)) * 3 + 0.1 * X[:, cols]
    S = searchlight_rsa(X, nb, model, "correlation", "pearson")
    for c in range(0, len(nb), 4):
        m = nb.members(c)
        if m.size < 3:
            continue
        expect = compare_rdms(compute_rdm(X[:, m], "correlation"), model, "pearson")
        assert S[c, 0] == pytest.approx(float(np.squeeze(expect)), rel=1e-8)
    best = int(np.nanargmax(S[:, 0]))
    assert nb.centers[best] in cols  # the peak lies inside the planted sphere
    assert S[c0, 0] > 0.5 and np.nanmedian(S[:, 0]) < 0.3


def test_bad_input():
    _, nb, X = _setup()
    with pytest.raises(ValueError, match="metric must be one of"):
        searchlight_rdms(X, nb, "cosine")
    with pytest.raises(ValueError, match="columns"):
        searchlight_rdms(X[:, :10], nb)
    with pytest.raises(ValueError, match="model_rdms must be RDMs of the 12 conditions"):
        searchlight_rsa(X, nb, np.ones(10))


def test_rsa_map_equals_rsatoolbox():
    rsatoolbox = pytest.importorskip("rsatoolbox")
    import contextlib
    import io

    from rsatoolbox.inference import eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.util.searchlight import (
        evaluate_models_searchlight,
        get_searchlight_RDMs,
        get_volume_searchlight,
    )

    r = np.random.default_rng(5)
    mask = r.random((7, 7, 5)) > 0.3
    n = 10
    data = r.normal(size=(n, mask.sum()))
    model = r.random(n * (n - 1) // 2)
    full = np.zeros((n, mask.size))
    full[:, mask.ravel()] = data
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        c, nbrs = get_volume_searchlight(mask, radius=2, truncate_at_boundary=True)
        sl = get_searchlight_RDMs(full, c, nbrs, np.arange(n), method="correlation")
        ev = evaluate_models_searchlight(
            sl, ModelFixed("m", rsatoolbox.rdm.RDMs(model[None])), eval_fixed, method="corr")
    ref = np.array([e.evaluations[0][0][0] for e in ev])
    nb = volume_neighbourhoods(mask, 2).to_columns(np.flatnonzero(mask))
    ours = searchlight_rsa(data, nb, model, "correlation", "pearson")[:, 0]
    ok = np.isfinite(ref)
    assert ok.sum() > 50
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=1e-8, atol=1e-10)
