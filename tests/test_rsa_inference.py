"""bootstrap_rsa equals rsatoolbox's bootstrap evaluations on the same bootstrap indices."""

import warnings

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from neuroprobe.exceptions import BootstrapWarning
from neuroprobe.rsa_inference import bootstrap_rsa, crossval_weighted_rsa

THEIRS = {"pearson": "corr", "cosine": "cosine", "spearman": "spearman", "rho_a": "rho-a",
          "corr_cov": "corr_cov", "cosine_cov": "cosine_cov"}


def _data(seed=0, n=14, n_subjects=5, k=3):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 4))
    subjects = np.stack([pdist(latent + 0.8 * rng.standard_normal((n, 4)))
                         for _ in range(n_subjects)])
    models = np.stack([pdist(latent + s * rng.standard_normal((n, 4))) for s in (0.5, 2.0)]
                      + [np.round(pdist(latent))][: k - 2])  # the last one has ties
    return models, subjects


def _indices(B, n_subjects, n, seed=1):
    rng = np.random.RandomState(seed)
    return rng.randint(0, n_subjects, (B, n_subjects)), rng.randint(0, n, (B, n))


class _Replay:
    """rsatoolbox's bootstrap_sample* replaying given indices (the same samples as ours)."""

    def __init__(self, subj, stim):
        self.subj, self.stim, self.b = subj, stim, 0

    def both(self, data, rdm_descriptor="index", pattern_descriptor="index"):
        s, p = self.subj[self.b], self.stim[self.b]
        self.b += 1
        return data.subsample("index", s).subsample_pattern("index", p), s, p

    def rdm(self, data, rdm_descriptor="index"):
        s = self.subj[self.b]
        self.b += 1
        return data.subsample("index", s), s

    def pattern(self, data, pattern_descriptor="index"):
        p = self.stim[self.b]
        self.b += 1
        return data.subsample_pattern("index", p), p


def _rsatoolbox(models, subjects, method, unit, subj, stim, monkeypatch):
    import rsatoolbox.inference.evaluate as ev
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    replay = _Replay(subj, stim)
    monkeypatch.setattr(ev, "bootstrap_sample", replay.both)
    monkeypatch.setattr(ev, "bootstrap_sample_rdm", replay.rdm)
    monkeypatch.setattr(ev, "bootstrap_sample_pattern", replay.pattern)
    monkeypatch.setattr(ev.tqdm, "trange", range)
    mods = [ModelFixed(f"m{i}", RDMs(m)) for i, m in enumerate(models)]
    B = (subj if subj is not None else stim).shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if unit == "both":
            return ev.eval_dual_bootstrap(mods, RDMs(subjects), method=method, N=B)
        if unit == "subjects":
            return ev.eval_bootstrap_rdm(mods, RDMs(subjects), method=method, N=B)
        return ev.eval_bootstrap_pattern(mods, RDMs(subjects), method=method, N=B)


@pytest.mark.parametrize("method", list(THEIRS))
def test_dual_bootstrap_equals_rsatoolbox(method, monkeypatch):
    pytest.importorskip("rsatoolbox")
    models, subjects = _data()
    subj, stim = _indices(40, 5, 14)
    res = bootstrap_rsa(models, subjects, method, "both", indices=(subj, stim))
    theirs = _rsatoolbox(models, subjects, THEIRS[method], "both", subj, stim, monkeypatch)
    # per-sample evaluations and noise ceilings of the three bootstraps
    np.testing.assert_allclose(res.evaluations, theirs.evaluations[:, :, 0, 0, :],
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.noise_ceilings,
                               theirs.noise_ceiling[:, :, 0, :].transpose(1, 0, 2),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.mean, theirs.get_means(), rtol=1e-10)
    np.testing.assert_allclose(res.sem, theirs.get_sem(), rtol=1e-8)
    np.testing.assert_allclose(res.ci.T, theirs.get_ci(0.95), rtol=1e-8)
    p_pair, p_zero, p_noise = theirs.test_all()
    np.testing.assert_allclose(res.pvalue_pairwise, p_pair, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(res.pvalue_zero, p_zero, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(res.pvalue_noise_ceiling, p_noise, rtol=1e-6, atol=1e-12)
    assert res.dof == theirs.dof


@pytest.mark.parametrize("unit", ["subjects", "stimuli"])
def test_single_bootstraps_equal_rsatoolbox(unit, monkeypatch):
    pytest.importorskip("rsatoolbox")
    models, subjects = _data(2)
    subj, stim = _indices(30, 5, 14, seed=3)
    subj, stim = (subj, None) if unit == "subjects" else (None, stim)
    res = bootstrap_rsa(models, subjects, "spearman", unit, indices=(subj, stim))
    theirs = _rsatoolbox(models, subjects, "spearman", unit, subj, stim, monkeypatch)
    np.testing.assert_allclose(res.evaluations, theirs.evaluations, rtol=1e-10)
    np.testing.assert_allclose(res.noise_ceilings, np.asarray(theirs.noise_ceiling).T,
                               rtol=1e-10)
    np.testing.assert_allclose(res.mean, theirs.get_means(), rtol=1e-10)
    np.testing.assert_allclose(res.sem, theirs.get_sem(), rtol=1e-8)
    np.testing.assert_allclose(res.pvalue_pairwise, theirs.test_pairwise(), rtol=1e-6)
    np.testing.assert_allclose(res.pvalue_zero, theirs.test_zero(), rtol=1e-6, atol=1e-12)
    if unit == "stimuli":  # rsatoolbox's eval_bootstrap_rdm drops the ceiling's covariance
        np.testing.assert_allclose(res.pvalue_noise_ceiling, theirs.test_noise(), rtol=1e-6)


def test_duplicated_stimuli_pairs_left_out_by_brute_force():
    models, subjects = _data(4, n=9)
    subj, stim = _indices(5, 5, 9, seed=5)
    res = bootstrap_rsa(models, subjects, "pearson", "both", indices=(subj, stim))
    from scipy.spatial.distance import squareform

    i, j = np.triu_indices(9, 1)
    for b in range(5):
        p = np.sort(stim[b])
        keep = p[i] != p[j]

        def sample(v, p=p, keep=keep):
            return squareform(v)[p[i[keep]], p[j[keep]]]

        expected = [np.mean([np.corrcoef(sample(m), sample(subjects[s]))[0, 1]
                             for s in subj[b]]) for m in models]
        np.testing.assert_allclose(res.evaluations[b, :, 0], expected, rtol=1e-10)


def test_torch_backend_equals_numpy():
    pytest.importorskip("torch")
    models, subjects = _data(5)
    for method in ("spearman", "pearson", "corr_cov"):
        a = bootstrap_rsa(models, subjects, method, "both", 20, random_state=0)
        b = bootstrap_rsa(models, subjects, method, "both", 20, random_state=0,
                          backend="torch")
        np.testing.assert_allclose(b.evaluations, a.evaluations, atol=2e-5)
        np.testing.assert_allclose(b.noise_ceilings, a.noise_ceilings, atol=2e-5)


def test_five_stimuli_give_defined_pvalues():
    models, subjects = _data(6, n=5, n_subjects=6)
    with pytest.warns(BootstrapWarning, match="fewer than 3 distinct"):
        res = bootstrap_rsa(models, subjects, "spearman", "both", 300, random_state=0)
    for p in (res.pvalue_zero, res.pvalue_noise_ceiling, res.pvalue_pairwise,
              res.pvalue_pairwise_fdr, res.pvalue_pairwise_fwe, res.ci):
        assert np.all(np.isfinite(p))
    assert res.n_valid < res.n_bootstrap and res.notes


def test_corrections_seeding_and_errors():
    import scipy.stats

    models, subjects = _data(7)
    a = bootstrap_rsa(models, subjects, "pearson", "subjects", 50, random_state=3)
    b = bootstrap_rsa(models, subjects, "pearson", "subjects", 50, random_state=3)
    np.testing.assert_array_equal(a.evaluations, b.evaluations)
    iu = np.triu_indices(3, 1)
    np.testing.assert_allclose(a.pvalue_pairwise_fdr[iu],
                               scipy.stats.false_discovery_control(a.pvalue_pairwise[iu]))
    np.testing.assert_allclose(a.pvalue_pairwise_fwe[iu],
                               np.minimum(1, 3 * a.pvalue_pairwise[iu]))
    assert len(a.rows()) == 3 + 3
    with pytest.raises(ValueError, match="unit"):
        bootstrap_rsa(models, subjects, unit="runs")
    with pytest.raises(ValueError, match="supports"):
        bootstrap_rsa(models, subjects, "kendall_tau_a")
    with pytest.raises(ValueError, match="indices"):
        bootstrap_rsa(models, subjects, unit="both", indices=(None, np.zeros((3, 14), int)))


def test_different_stimulus_sets_refused():
    from neuroprobe.io.rdm import RDMData

    models, subjects = _data(8, n=6)
    ids = [f"s{i}" for i in range(6)]
    other = ids[:5] + ["zz"]
    m = RDMData(models, names=["a", "b", "c"], stim_ids=ids)
    s = RDMData(subjects, names=[str(i) for i in range(5)], stim_ids=other)
    with pytest.raises(ValueError, match="zz|s5"):
        bootstrap_rsa(m, s, n_bootstrap=5)


def test_crossval_weighted_rsa_recovers_planted_model():
    rng = np.random.default_rng(9)
    comps = rng.random((3, 120))  # 16 stimuli
    subjects = np.array([0.0, 1.0, 0.5]) @ comps + 0.05 * rng.random((6, 120))
    out = crossval_weighted_rsa(comps, subjects, "pearson", n_folds_stimuli=2,
                                n_folds_subjects=3, random_state=0)
    assert out["scores"].shape == (2, 3) and out["score"] > 0.9
    np.testing.assert_allclose(out["weights_full"], np.array([0, 1, 0.5]) / np.sqrt(1.25),
                               atol=0.02)
    with pytest.raises(ValueError, match="n_folds_stimuli"):
        crossval_weighted_rsa(comps, subjects, n_folds_stimuli=9)
