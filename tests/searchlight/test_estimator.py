"""Searchlight estimator: values equal rsatoolbox / sklearn on each centre's voxels, planted
effects, FWE under the null, torch = numpy, maps in the data's format, bad input."""

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroprobe.crossnobis import crossnobis_rdm
from neuroprobe.io.rdm import RDMData
from neuroprobe.rsa import compare_rdms, compute_rdm
from neuroprobe.searchlight import Searchlight, line_neighbourhoods, volume_neighbourhoods
from neuroprobe.transformers import BrainMasker
from tests._tolerance import assert_allclose_dtype

nib = pytest.importorskip("nibabel")


def _volume(seed=0, shape=(6, 7, 5), n=10):
    r = np.random.default_rng(seed)
    mask = r.random(shape) > 0.3
    data = r.normal(size=shape + (n,)).astype(np.float32)
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    img = nib.Nifti1Image(data, aff)
    masker = BrainMasker(nib.Nifti1Image(mask.astype(np.uint8), aff))
    X = masker.fit_transform(img).astype(np.float64)
    return mask, data, masker, X, r


def test_rsa_map_equals_rsatoolbox_searchlight():
    """get_volume_searchlight + get_searchlight_RDMs + evaluate_models_searchlight."""
    pytest.importorskip("rsatoolbox")
    from rsatoolbox.inference import eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.util.searchlight import (
        evaluate_models_searchlight,
        get_searchlight_RDMs,
        get_volume_searchlight,
    )

    mask, data, masker, X, r = _volume()
    n = X.shape[0]
    model = compute_rdm(r.normal(size=(n, 4)))
    sl = Searchlight(masker=masker, radius=2, radius_unit="voxels",
                     model_rdms=model).fit(X)
    centers, neighbors = get_volume_searchlight(mask, radius=2, threshold=1.0,
                                                truncate_at_boundary=True)
    flat = np.moveaxis(data, -1, 0).reshape(n, -1).astype(np.float64)
    rdms = get_searchlight_RDMs(flat, centers, neighbors, np.arange(n), verbose=False)
    res = evaluate_models_searchlight(rdms, ModelFixed("m", RDMs(model[None])), eval_fixed,
                                      method="spearman")
    expect = np.array([np.squeeze(e.evaluations) for e in res])
    cols = np.flatnonzero(mask.ravel())
    assert np.array_equal(cols[sl.centers_], centers)
    ok = np.isfinite(expect)
    assert ok.sum() > 100
    assert_allclose_dtype(sl.score_map_[ok, 0], expect[ok], n_terms=n * n)
    # the map image: a NIfTI in the data's space, the value at each centre voxel
    img = sl.to_image()
    assert isinstance(img, nib.Nifti1Image) and img.shape == mask.shape
    vol = np.asarray(img.dataobj).ravel()
    np.testing.assert_allclose(vol[centers[ok]], expect[ok], rtol=1e-5)
    assert np.all(np.isnan(vol[~mask.ravel()]))


def test_crossnobis_with_noise_equals_direct():
    r = np.random.default_rng(1)
    mask = r.random((6, 6, 6)) > 0.3
    nb = volume_neighbourhoods(mask, 2.0).to_columns(np.flatnonzero(mask))
    n_cond, n_runs, p = 8, 3, mask.sum()
    conditions = np.tile(np.arange(n_cond), n_runs + 1)[:-2]  # unbalanced: run 3 lacks two rows
    runs = np.repeat(np.arange(n_runs + 1), n_cond)[:-2]
    keep = np.isin(conditions, np.arange(n_cond))
    X = r.normal(size=(conditions.size, p))
    runs[runs == n_runs] = 0  # the extra repetitions join run 0
    noise = r.uniform(0.5, 2.0, p)
    model = compute_rdm(r.normal(size=(n_cond, 3)))
    sl = Searchlight(neighbourhoods=nb, metric="crossnobis", noise=noise, comparison="pearson",
                     model_rdms=model).fit(X, conditions=conditions, cv_groups=runs)
    assert keep.all()
    for c in range(0, len(nb), 17):
        m = nb.members(c)
        d = crossnobis_rdm(X[:, m], conditions, runs, noise[m])
        assert sl.score_map_[c, 0] == pytest.approx(compare_rdms(d, model, "pearson"),
                                                    rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("scoring", ["r2", "correlation"])
def test_encoding_equals_sklearn_ridge(scoring):
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold, cross_val_predict

    _, _, masker, X, r = _volume(2, n=20)
    F = r.normal(size=(20, 6))
    X = X + F @ r.normal(size=(6, X.shape[1])) * 0.5
    sl = Searchlight(analysis="encoding", masker=masker, radius=3.0, alpha=2.5, cv=4,
                     scoring=scoring).fit(X, F)
    nb = sl.neighbourhoods_
    for c in range(0, len(nb), 23):
        m = nb.members(c)
        pred = cross_val_predict(Ridge(alpha=2.5), F, X[:, m], cv=KFold(4))
        if scoring == "r2":
            expect = r2_score(X[:, m], pred, multioutput="variance_weighted")
        else:
            expect = np.mean([np.corrcoef(pred[:, k], X[:, k2])[0, 1]
                              for k, k2 in enumerate(m)])
        assert sl.score_map_[c, 0] == pytest.approx(expect, rel=1e-8, abs=1e-10)


def test_planted_effect_and_fwe():
    r = np.random.default_rng(3)
    shape, n = (10, 10, 8), 12
    mask = np.ones(shape, bool)
    nb = volume_neighbourhoods(mask, 2.0).to_columns(np.arange(mask.size))
    X = r.normal(size=(n, mask.size))
    features = r.normal(size=(n, 4))
    centre = np.ravel_multi_index((5, 5, 4), shape)
    planted = nb.members(int(np.flatnonzero(nb.centers == centre)[0]))
    pattern = features @ r.normal(size=(4, planted.size))
    X[:, planted] = pattern + 0.3 * X[:, planted]
    model = compute_rdm(pattern)
    sl = Searchlight(neighbourhoods=nb, n_permutations=200, random_state=0,
                     model_rdms=model).fit(X)
    best = nb.centers[int(np.nanargmax(sl.score_map_[:, 0]))]
    assert best == centre
    p = sl.pvalues_fwe_[:, 0]
    assert p[np.flatnonzero(nb.centers == centre)[0]] <= 0.05
    far = np.linalg.norm(np.argwhere(mask)[nb.centers] - (5, 5, 4), axis=1) > 4
    assert np.mean(p[far] <= 0.05) < 0.01
    assert sl.score(X) == pytest.approx(np.nanmax(sl.score_map_))


@pytest.mark.parametrize("analysis", ["rsa", "encoding"])
def test_null_equals_refit_on_permuted_data(analysis):
    """The fast path (permuted model RDMs / permuted rows through the CV hat matrix) equals
    the map recomputed on permuted data, permutation by permutation."""
    r = np.random.default_rng(4)
    X, F = r.normal(size=(10, 40)), r.normal(size=(10, 3))
    sl = Searchlight(analysis, radius=3, n_permutations=6, random_state=1).fit(X, F)
    for k, p in enumerate(sl.permutations_):
        if analysis == "rsa":
            again = sl.score_map(X, F[p])
        else:
            again = sl.score_map(X[p], F)
        assert sl.null_max_[k, 0] == pytest.approx(np.nanmax(again), rel=1e-9, abs=1e-12)


def test_fwe_controls_family_wise_error_under_null():
    r = np.random.default_rng(5)
    alpha, hits, n_sim = 0.2, 0, 40
    for s in range(n_sim):
        X, F = r.normal(size=(8, 60)), r.normal(size=(8, 3))
        sl = Searchlight(radius=4, n_permutations=49, random_state=s).fit(X, F)
        hits += np.nanmin(sl.pvalues_fwe_) <= alpha
    # 40 null maps of 60 centres: uncorrected p-values would reject in nearly every map
    assert hits / n_sim <= alpha + 0.15


def test_torch_equals_numpy_and_n_jobs_invariance():
    r = np.random.default_rng(6)
    nb = line_neighbourhoods(80, 5)
    X, F = r.normal(size=(12, 80)), r.normal(size=(12, 4))
    runs, cond = np.repeat(np.arange(2), 12), np.tile(np.arange(12), 2)
    Xo = r.normal(size=(24, 80))
    for kw, args, fit in [({}, (X, F), {}), ({"analysis": "encoding"}, (X, F), {}),
                          ({"metric": "crossnobis", "model_rdms": compute_rdm(F)}, (Xo,),
                           {"conditions": cond, "cv_groups": runs})]:
        a = Searchlight(neighbourhoods=nb, n_permutations=20, random_state=0, **kw).fit(
            *args, **fit)
        b = Searchlight(neighbourhoods=nb, n_permutations=20, random_state=0, backend="torch",
                        **kw).fit(*args, **fit)
        with parallel_config(backend="threading"):  # the split over tasks, without spawning
            c = Searchlight(neighbourhoods=nb, n_permutations=20, random_state=0, n_jobs=2,
                            batch_size=7, **kw).fit(*args, **fit)
        assert_allclose_dtype(b.score_map_, a.score_map_, dtype=np.float32, n_terms=144)
        assert_allclose_dtype(b.null_max_, a.null_max_, dtype=np.float32, n_terms=144)
        np.testing.assert_allclose(c.score_map_, a.score_map_, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(c.pvalues_fwe_, a.pvalues_fwe_)


def test_model_rdms_matched_by_stimulus_ids():
    r = np.random.default_rng(7)
    X, F = r.normal(size=(8, 30)), r.normal(size=(8, 3))
    ids = np.array([f"s{i}" for i in range(8)])
    order = r.permutation(8)
    data = RDMData(compute_rdm(F[order])[None], ["m"], ids[order])
    a = Searchlight(radius=3).fit(X, F)
    b = Searchlight(radius=3, model_rdms=data).fit(X, stim_ids=ids)
    np.testing.assert_allclose(b.score_map_, a.score_map_, rtol=1e-12)
    other = RDMData(data.rdms, ["m"], np.array([f"t{i}" for i in range(8)]))
    with pytest.raises(ValueError, match="model_rdms"):
        Searchlight(radius=3, model_rdms=other).fit(X, stim_ids=ids)


def test_bad_input():
    r = np.random.default_rng(8)
    mask, _, masker, X, _ = _volume(9)
    F = r.normal(size=(X.shape[0], 3))
    with pytest.raises(ValueError, match=r"radius=0.5 \(mm\) gives searchlights of one voxel"):
        Searchlight(masker=masker, radius=0.5).fit(X, F)
    with pytest.raises(ValueError, match="X has 5 columns but masker has"):
        Searchlight(masker=masker).fit(X[:, :5], F)
    with pytest.raises(ValueError, match="model_rdms are RDMs of 5 stimuli but the data have 10"):
        Searchlight(model_rdms=compute_rdm(F[:5])).fit(X)
    with pytest.raises(ValueError, match="needs conditions= and cv_groups="):
        Searchlight(metric="crossnobis", model_rdms=compute_rdm(F)).fit(X)
    cond, runs = np.tile(np.arange(5), 2), np.repeat([0, 1], 5)
    with pytest.raises(ValueError, match=r"noise must be a diagonal precision .*\(3,\)"):
        Searchlight(metric="crossnobis", noise=np.ones(3), model_rdms=compute_rdm(F[:5])).fit(
            X, conditions=cond, cv_groups=runs)
    with pytest.raises(ValueError, match="requires y to be passed"):
        Searchlight().fit(X)
    with pytest.raises(ValueError, match="no fast permutation path"):
        Searchlight(comparison="kendall", n_permutations=5).fit(X, F)
    with pytest.raises(ValueError, match="to_image needs a fitted BrainMasker"):
        Searchlight().fit(X, F).to_image()


@parametrize_with_checks([Searchlight(), Searchlight(analysis="encoding")])
def test_sklearn_contract(estimator, check):
    check(estimator)


def test_stride_through_masker_and_score_map_on_new_data():
    mask, _, masker, X, r = _volume(10, shape=(8, 8, 6))
    F = r.normal(size=(X.shape[0], 3))
    sl = Searchlight(masker=masker, radius=2, radius_unit="voxels", stride=2).fit(X, F)
    coords = np.argwhere(mask)[sl.centers_]
    assert np.all(coords % 2 == 0) and len(sl.centers_) == np.all(
        np.argwhere(mask) % 2 == 0, axis=1).sum()
    X2 = r.normal(size=X.shape)
    np.testing.assert_allclose(sl.score_map(X2, F),
                               Searchlight(masker=masker, radius=2, radius_unit="voxels",
                                           stride=2).fit(X2, F).score_map_)


@pytest.mark.gpu
def test_cuda_equals_numpy():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    r = np.random.default_rng(11)
    nb = line_neighbourhoods(200, 6)
    X, F = r.normal(size=(20, 200)), r.normal(size=(20, 4))
    for kw in ({}, {"analysis": "encoding"}):
        a = Searchlight(neighbourhoods=nb, n_permutations=30, random_state=0, **kw).fit(X, F)
        b = Searchlight(neighbourhoods=nb, n_permutations=30, random_state=0, backend="torch",
                        device="cuda", **kw).fit(X, F)
        assert_allclose_dtype(b.score_map_, a.score_map_, dtype=np.float32, n_terms=400)
        assert_allclose_dtype(b.null_max_, a.null_max_, dtype=np.float32, n_terms=400)
