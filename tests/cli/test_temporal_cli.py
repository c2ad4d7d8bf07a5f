"""neuroprobe rsa / encode --brain epochs.fif --time-resolved: equal to the Python API."""

import csv

import h5py
import numpy as np
import pytest

from neuroprobe.cli.main import main

mne = pytest.importorskip("mne")


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def meg(tmp_path):
    """12 stimuli x 2 trials of 5 EEG channels x 20 samples (100 Hz); activations in another
    stimulus order than the epochs."""
    import pandas as pd

    from neuroprobe.io.activations import write_activations

    rng = np.random.default_rng(0)
    ids = np.array([f"s{i:02d}" for i in range(12)])
    feats = rng.standard_normal((12, 4))
    trial_ids = np.tile(ids, 2)
    data = rng.standard_normal((24, 5, 20))
    W = rng.standard_normal((4, 5))
    data[:, :, 8:14] += 2 * (feats[np.tile(np.arange(12), 2)] @ W)[:, :, None]
    info = mne.create_info(5, 100.0, "eeg")
    ep = mne.EpochsArray(data, info, tmin=-0.05, verbose=False,
                         metadata=pd.DataFrame({"stim_id": trial_ids}))
    fif = tmp_path / "sub-01-epo.fif"
    ep.save(fif, verbose=False)
    order = rng.permutation(12)
    act = write_activations(tmp_path / "m.act.h5",
                            {"fc": feats[order].astype(np.float32),
                             "noise": rng.standard_normal((12, 6)).astype(np.float32)},
                            list(ids[order]), model="toy")
    return dict(fif=fif, act=act, feats=feats, ids=ids, data=data, tmp=tmp_path)


def test_rsa_time_resolved_equals_python_api(meg):
    from neuroprobe.io.epochs import read_epochs
    from neuroprobe.rsa import compute_rdm
    from neuroprobe.solvers.temporal import compare_rdms, permutation_null, window_rdms

    tmp = meg["tmp"]
    rdm = tmp / "m.rdm.h5"
    assert main(["rdm", str(meg["act"]), "--layer", "fc", "--out", str(rdm), "--quiet"]) == 0
    out, fig = tmp / "r.csv", tmp / "r.png"
    assert main(["rsa", "--model", str(rdm), "--brain", str(meg["fif"]), "--time-resolved",
                 "--temporal-radius", "0.01", "--n-permutations", "50", "--out", str(out),
                 "--figure", str(fig), "--quiet"]) == 0
    rows = _read_csv(out)
    brain = read_epochs(mne.read_epochs(meg["fif"], verbose=False))
    b = window_rdms(brain.data, 1)
    model = compute_rdm(meg["feats"], "correlation")[None]   # rows in the epochs' ID order
    ref = compare_rdms(model, b)[0]
    np.testing.assert_allclose([float(r["r"]) for r in rows], ref, rtol=1e-5)
    np.testing.assert_allclose([float(r["time"]) for r in rows], brain.times[1:-1], atol=1e-9)
    with h5py.File(tmp / "r.h5") as f:
        np.testing.assert_allclose(f["r"][0], ref, rtol=1e-5)
        null = permutation_null(model, b, 50, random_state=0)
        p = (1 + (null.max(axis=(1, 2))[:, None] >= ref[None]).sum(0)) / 51
        np.testing.assert_allclose(f["p_fwe"][0], p)
    assert fig.stat().st_size > 0
    peak = brain.times[1:-1][np.argmax(ref)]
    assert 0.03 <= peak <= 0.08          # the planted window (samples 8..13)


def test_encode_time_resolved_equals_python_api(meg):
    from sklearn.model_selection import KFold

    from neuroprobe import TimeResolved, VoxelwiseEncoder
    from neuroprobe.io.epochs import read_epochs

    tmp = meg["tmp"]
    out = tmp / "e.h5"
    assert main(["encode", str(meg["act"]), "--layer", "fc", "--layer", "noise", "--brain",
                 str(meg["fif"]), "--time-resolved", "--cv", "3", "--inner-cv", "3",
                 "--alphas", "1,10,100", "--out", str(out), "--quiet"]) == 0
    brain = read_epochs(mne.read_epochs(meg["fif"], verbose=False))
    est = TimeResolved(VoxelwiseEncoder(alphas=[1, 10, 100], cv=3))
    X, Y = meg["feats"], brain.data
    folds = [est.fit(X[tr], Y[tr]).score_targets(X[te], Y[te])
             for tr, te in KFold(3, shuffle=True, random_state=0).split(X)]
    ref = np.nanmean(np.nanmean(np.stack(folds), axis=0), axis=0)
    with h5py.File(out) as f:
        assert [s.decode() if isinstance(s, bytes) else s for s in f["layers"][()]] == \
            ["fc", "noise"]
        np.testing.assert_allclose(f["score"][0], ref, rtol=1e-4, atol=1e-5)
        assert f["score"][0, 8:14].mean() > f["score"][1, 8:14].mean()


def test_time_resolved_bad_input(meg, capsys):
    tmp = meg["tmp"]
    assert main(["rsa", "--model", str(meg["act"]), "--out", str(tmp / "x.csv")]) != 0
    assert "--target" in capsys.readouterr().err
    assert main(["encode", str(meg["act"]), "--layer", "fc", "--brain", str(meg["fif"]),
                 "--out", str(tmp / "x.csv")]) != 0
    assert "--time-resolved" in capsys.readouterr().err
    assert main(["encode", str(meg["act"]), "--layer", "fc", "--brain", str(meg["fif"]),
                 "--time-resolved", "--temporal-radius", "0.5", "--out",
                 str(tmp / "x.csv")]) != 0
    assert "--temporal-radius" in capsys.readouterr().err


def _layers_in_brain_order(meg, brain):
    from neuroprobe.io.activations import read_layers_2d
    from neuroprobe.io.ids import align_ids

    feats, ids = read_layers_2d(meg["act"], ["fc", "noise"], with_ids=True)
    index = align_ids(brain.stim_ids, np.asarray(ids).astype(str))
    return {k: feats[k][index] for k in ("fc", "noise")}


def _reference(meg, cv, groups_of=None, **kw):
    """The Python API's ``permutation_test_time_resolved`` on the fixture (30 permutations),
    ``groups_of`` a dict stimulus ID -> group."""
    from neuroprobe import TimeResolved, VoxelwiseEncoder
    from neuroprobe.estimators.temporal import permutation_test_time_resolved
    from neuroprobe.io.epochs import read_epochs

    brain = read_epochs(mne.read_epochs(meg["fif"], verbose=False))
    groups = None if groups_of is None else np.array([groups_of[s] for s in brain.stim_ids])
    return permutation_test_time_resolved(
        TimeResolved(VoxelwiseEncoder(alphas=[1, 10, 100], cv=3)),
        _layers_in_brain_order(meg, brain), brain, n_permutations=30, cv=cv, groups=groups,
        random_state=0, **kw)


def _encode_perm(meg, fif, out, *extra):
    return main(["encode", str(meg["act"]), "--layer", "fc", "--layer", "noise", "--brain",
                 str(fif), "--time-resolved", "--cv", "3", "--inner-cv", "3", "--alphas",
                 "1,10,100", "--n-permutations", "30", "--out", str(out), "--quiet", *extra])


def test_encode_time_resolved_permutations_equal_python_api(meg):
    from sklearn.model_selection import KFold

    tmp = meg["tmp"]
    out, fig = tmp / "e.csv", tmp / "e.png"
    assert _encode_perm(meg, meg["fif"], out, "--figure", str(fig)) == 0
    ref = _reference(meg, KFold(3, shuffle=True, random_state=0))
    rows = _read_csv(out)
    assert [r["layer"] for r in rows[:1]] == ["fc"] and len(rows) == 2 * 20
    for key, arr in (("statistic", ref.observed), ("p", ref.pvalue), ("p_fwe", ref.pvalue_fwe)):
        np.testing.assert_allclose([float(r[key]) for r in rows], arr.ravel(), rtol=1e-5)
    with h5py.File(tmp / "e.h5") as f:
        np.testing.assert_allclose(f["statistic"][()], ref.observed, rtol=1e-6)
        np.testing.assert_allclose(f["pvalue_fwe"][()], ref.pvalue_fwe)
        np.testing.assert_array_equal(f["cluster"][()], ref.cluster_labels)
        np.testing.assert_allclose(f["cluster_p"][()], ref.cluster_pvalue)
        assert f["cluster_threshold"][()] == pytest.approx(ref.cluster_threshold)
    assert fig.stat().st_size > 0
    # the planted window (samples 8..13) of the fc layer is a significant cluster
    sig = [k for k, p in enumerate(ref.cluster_pvalue, 1) if p < 0.05]
    assert np.isin(ref.cluster_labels[0, 9:13], sig).all()
    assert not np.isin(ref.cluster_labels[1], sig).any()


def test_encode_time_resolved_shuffled_epochs_identical(meg):
    ep = mne.read_epochs(meg["fif"], verbose=False)
    order = np.random.default_rng(1).permutation(len(ep))
    shuffled = meg["tmp"] / "shuffled-epo.fif"
    ep[order].save(shuffled, verbose=False)
    a, b = meg["tmp"] / "a.h5", meg["tmp"] / "b.h5"
    assert _encode_perm(meg, meg["fif"], a) == 0
    assert _encode_perm(meg, shuffled, b) == 0
    with h5py.File(a) as fa, h5py.File(b) as fb:
        for key in ("score", "statistic", "pvalue", "pvalue_fwe", "cluster", "cluster_p"):
            np.testing.assert_allclose(fa[key][()], fb[key][()], rtol=1e-6, atol=1e-7,
                                       err_msg=key)


def test_encode_time_resolved_groups(meg):
    from sklearn.model_selection import GroupKFold

    tmp = meg["tmp"]
    table = tmp / "groups.csv"
    group_of = {s: i % 4 for i, s in enumerate(meg["ids"])}
    shuffled_ids = list(np.random.default_rng(2).permutation(meg["ids"]))
    table.write_text("stim_id,session\n" + "".join(f"{s},{group_of[s]}\n" for s in shuffled_ids))
    out = tmp / "g.h5"
    assert _encode_perm(meg, meg["fif"], out, "--groups", f"{table}:session",
                        "--inner-cv", "2") == 0
    ref = _reference(meg, GroupKFold(3), group_of)
    with h5py.File(out) as f:
        np.testing.assert_allclose(f["statistic"][()], ref.observed, rtol=1e-6)
        np.testing.assert_allclose(f["pvalue"][()], ref.pvalue)
    # bad groups: one group only, more folds than groups
    one = tmp / "one.csv"
    one.write_text("stim_id,session\n" + "".join(f"{s},0\n" for s in meg["ids"]))
    assert _encode_perm(meg, meg["fif"], tmp / "x.h5", "--groups", f"{one}:session") != 0
    assert main(["encode", str(meg["act"]), "--layer", "fc", "--brain", str(meg["fif"]),
                 "--time-resolved", "--cv", "6", "--groups", f"{table}:session",
                 "--out", str(tmp / "y.h5"), "--quiet"]) != 0


def test_encode_time_resolved_runs_and_threshold(meg):
    from sklearn.model_selection import LeaveOneGroupOut

    tmp = meg["tmp"]
    table = tmp / "runs.csv"
    run_of = {s: i % 3 for i, s in enumerate(meg["ids"])}
    table.write_text("stim_id,run\n" + "".join(f"{s},{r}\n" for s, r in run_of.items()))
    out = tmp / "r.h5"
    assert _encode_perm(meg, meg["fif"], out, "--runs", f"{table}:run",
                        "--cluster-threshold", "0.3") == 0
    ref = _reference(meg, LeaveOneGroupOut(), run_of, cluster_threshold=0.3)
    with h5py.File(out) as f:
        np.testing.assert_allclose(f["statistic"][()], ref.observed, rtol=1e-6)
        np.testing.assert_array_equal(f["cluster"][()], ref.cluster_labels)
        assert f["cluster_threshold"][()] == 0.3


def test_rsa_time_resolved_tail_and_tfce_equal_python_api(meg):
    from neuroprobe.estimators.temporal import permutation_test_time_resolved_rsa
    from neuroprobe.io.epochs import read_epochs
    from neuroprobe.rsa import compute_rdm

    tmp = meg["tmp"]
    rdm = tmp / "m.rdm.h5"
    assert main(["rdm", str(meg["act"]), "--layer", "fc", "--out", str(rdm), "--quiet"]) == 0
    out = tmp / "t.csv"
    assert main(["rsa", "--model", str(rdm), "--brain", str(meg["fif"]), "--time-resolved",
                 "--temporal-radius", "0.01", "--n-permutations", "30", "--tail", "0",
                 "--tfce", "0", "--out", str(out), "--quiet"]) == 0
    brain = read_epochs(mne.read_epochs(meg["fif"], verbose=False))
    ref = permutation_test_time_resolved_rsa(
        {"fc": compute_rdm(meg["feats"], "correlation")}, brain, temporal_radius=1,
        n_permutations=30, tfce={"start": 0.0}, tail=0, random_state=0)
    rows = _read_csv(out)
    for key, arr in (("r", ref.observed), ("p_fwe", ref.pvalue_fwe), ("tfce", ref.tfce_scores),
                     ("p_tfce", ref.tfce_pvalue)):
        np.testing.assert_allclose([float(r[key]) for r in rows], arr.ravel(), rtol=1e-5,
                                   atol=1e-12, err_msg=key)
    with h5py.File(tmp / "t.h5") as f:
        np.testing.assert_allclose(f["p_tfce"][()], ref.tfce_pvalue)
        np.testing.assert_allclose(f["tfce"][()], ref.tfce_scores, rtol=1e-8)
        np.testing.assert_array_equal(f["cluster"][()], ref.cluster_labels)
        np.testing.assert_allclose(f["cluster_p"][()], ref.cluster_pvalue)
        assert f["tail"][()] == 0 and f["tfce_step"][()] == pytest.approx(ref.tfce["step"])
    assert ref.tfce_pvalue[0, 8:12].max() < 0.1      # the planted window (samples 8..13)


def test_encode_time_resolved_tail_and_tfce_equal_python_api(meg):
    from sklearn.model_selection import KFold

    tmp = meg["tmp"]
    out = tmp / "n.csv"
    assert _encode_perm(meg, meg["fif"], out, "--tail", "-1", "--tfce", "0,-0.002") == 0
    ref = _reference(meg, KFold(3, shuffle=True, random_state=0), tail=-1,
                     tfce={"start": 0.0, "step": -0.002})
    rows = _read_csv(out)
    for key, arr in (("p", ref.pvalue), ("p_fwe", ref.pvalue_fwe), ("p_tfce", ref.tfce_pvalue)):
        np.testing.assert_allclose([float(r[key]) for r in rows], arr.ravel(), rtol=1e-5,
                                   err_msg=key)
    with h5py.File(tmp / "n.h5") as f:
        np.testing.assert_allclose(f["pvalue_tfce"][()], ref.tfce_pvalue)
        np.testing.assert_allclose(f["tfce"][()], ref.tfce_scores, rtol=1e-6, atol=1e-12)
        assert f["tail"][()] == -1 and f["tfce_step"][()] == -0.002
    assert (ref.tfce_scores <= 0).all()


# -- several subjects: group RDMs and the noise ceiling --------------------------------------
def _subject_fif(meg, name, seed, ids=None, sfreq=100.0, n_channels=4, tmin=-0.05):
    """Another subject: other channels and noise, trials in a shuffled order."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    ids = meg["ids"] if ids is None else ids
    index = {s: k for k, s in enumerate(meg["ids"])}
    trials = rng.permutation(np.tile(ids, 2))
    feats = meg["feats"][[index[s] for s in trials]]
    data = rng.standard_normal((trials.size, n_channels, 20))
    data[:, :, 8:14] += 2 * (feats @ rng.standard_normal((4, n_channels)))[:, :, None]
    ep = mne.EpochsArray(data, mne.create_info(n_channels, sfreq, "eeg"), tmin=tmin,
                         verbose=False, metadata=pd.DataFrame({"stim_id": trials}))
    path = meg["tmp"] / f"{name}-epo.fif"
    ep.save(path, verbose=False)
    return path


def test_rsa_time_resolved_subjects_equal_python_api(meg):
    from neuroprobe.estimators.temporal import permutation_test_time_resolved_rsa
    from neuroprobe.io.epochs import read_epochs
    from neuroprobe.rsa import compute_rdm, window_noise_ceiling
    from neuroprobe.solvers.temporal import window_rdms

    tmp = meg["tmp"]
    fifs = [meg["fif"], _subject_fif(meg, "sub-02", 1), _subject_fif(meg, "sub-03", 2)]
    rdm = tmp / "m.rdm.h5"
    assert main(["rdm", str(meg["act"]), "--layer", "fc", "--out", str(rdm), "--quiet"]) == 0
    out, fig = tmp / "g.csv", tmp / "g.png"
    assert main(["rsa", "--model", str(rdm), "--brain", *map(str, fifs), "--time-resolved",
                 "--temporal-radius", "0.01", "--n-permutations", "40", "--out", str(out),
                 "--figure", str(fig), "--quiet"]) == 0
    # reference: every subject's rows in the models' ID order, window RDMs, their mean
    subject_rdms = np.stack([window_rdms(read_epochs(mne.read_epochs(f, verbose=False),
                                                     reference_ids=meg["ids"]).data, 1)
                             for f in fifs])
    model = {"fc": compute_rdm(meg["feats"], "correlation")}
    ref = permutation_test_time_resolved_rsa(model, subject_rdms.mean(axis=0), temporal_radius=1,
                                             n_permutations=40, random_state=0)
    lower, upper = window_noise_ceiling(subject_rdms, "spearman")
    rows = _read_csv(out)
    for key, arr in (("r", ref.observed[0]), ("p_fwe", ref.pvalue_fwe[0]),
                     ("ceiling_lower", lower), ("ceiling_upper", upper)):
        np.testing.assert_allclose([float(r[key]) for r in rows], arr, rtol=1e-5, atol=1e-12,
                                   err_msg=key)
    with h5py.File(tmp / "g.h5") as f:
        np.testing.assert_allclose(f["r"][()], ref.observed, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(f["cluster"][()], ref.cluster_labels)
        np.testing.assert_allclose(f["ceiling_lower"][()], lower, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(f["ceiling_upper"][()], upper, rtol=1e-12, atol=1e-14)
        assert f["n_subjects"][()] == 3
    assert fig.stat().st_size > 0
    assert lower[8:12].min() > 0.3 > np.abs(lower[:4]).max()    # the planted window shared
    # one subject: today's outputs, no ceiling
    assert main(["rsa", "--model", str(rdm), "--brain", str(fifs[1]), "--time-resolved",
                 "--temporal-radius", "0.01", "--n-permutations", "0", "--out",
                 str(tmp / "one.csv"), "--quiet"]) == 0
    assert "ceiling_lower" not in _read_csv(tmp / "one.csv")[0]
    with h5py.File(tmp / "one.h5") as f:
        assert "ceiling_lower" not in f and f["r"].shape == ref.observed.shape


def test_rsa_time_resolved_subjects_without_permutations(meg):
    from neuroprobe.io.epochs import read_epochs
    from neuroprobe.rsa import compute_rdm
    from neuroprobe.solvers.temporal import compare_rdms, window_rdms

    tmp = meg["tmp"]
    fifs = [meg["fif"], _subject_fif(meg, "sub-02", 1)]
    rdm = tmp / "m.rdm.h5"
    assert main(["rdm", str(meg["act"]), "--layer", "fc", "--out", str(rdm), "--quiet"]) == 0
    assert main(["rsa", "--model", str(rdm), "--brain", *map(str, fifs), "--time-resolved",
                 "--method", "pearson", "--brain-metric", "sqeuclidean", "--n-permutations",
                 "0", "--out", str(tmp / "p.csv"), "--quiet"]) == 0
    mean = np.mean([window_rdms(read_epochs(mne.read_epochs(f, verbose=False),
                                            reference_ids=meg["ids"]).data, 0, "sqeuclidean")
                    for f in fifs], axis=0)
    ref = compare_rdms(compute_rdm(meg["feats"], "correlation")[None], mean, "pearson")
    with h5py.File(tmp / "p.h5") as f:                  # the .rdm.h5 model is float32
        np.testing.assert_allclose(f["r"][()], ref, rtol=1e-5, atol=1e-7)
        assert f["ceiling_lower"].shape == (20,)


def test_rsa_time_resolved_subjects_bad_input(meg, capsys):
    tmp = meg["tmp"]
    rdm = tmp / "m.rdm.h5"
    assert main(["rdm", str(meg["act"]), "--layer", "fc", "--out", str(rdm), "--quiet"]) == 0

    def run(other):
        code = main(["rsa", "--model", str(rdm), "--brain", str(meg["fif"]), str(other),
                     "--time-resolved", "--out", str(tmp / "x.csv"), "--quiet"])
        return code, capsys.readouterr().err

    fewer = _subject_fif(meg, "fewer", 1, ids=meg["ids"][:10])
    code, err = run(fewer)
    assert code != 0 and str(fewer) in err and "stimuli of" in err
    slower = _subject_fif(meg, "slower", 1, sfreq=200.0)
    code, err = run(slower)
    assert code != 0 and str(slower) in err and "200 Hz" in err and "100 Hz" in err
    later = _subject_fif(meg, "later", 1, tmin=0.0)
    code, err = run(later)
    assert code != 0 and str(later) in err and "one time window" in err
    code, err = run(tmp / "missing-epo.fif")
    assert code != 0 and "missing-epo.fif" in err


def test_encode_time_resolved_per_channel_equals_python_api(meg):
    from sklearn.model_selection import KFold

    tmp = meg["tmp"]
    out, fig = tmp / "c.csv", tmp / "c.png"
    assert _encode_perm(meg, meg["fif"], out, "--per-channel", "--tfce", "0",
                        "--figure", str(fig)) == 0
    ref = _reference(meg, KFold(3, shuffle=True, random_state=0), average=False,
                     keep_null=False, tfce={"start": 0.0})
    kept = _reference(meg, KFold(3, shuffle=True, random_state=0), average=False,
                      cluster_threshold=ref.cluster_threshold, tfce={"start": 0.0})
    assert ref.observed.shape == (2, 5, 20) and ref.null is None
    np.testing.assert_array_equal(ref.pvalue_fwe, kept.pvalue_fwe)   # the streamed null
    np.testing.assert_array_equal(ref.cluster_pvalue, kept.cluster_pvalue)
    with h5py.File(tmp / "c.h5") as f:
        np.testing.assert_allclose(f["statistic"][()], ref.observed, rtol=1e-6)
        for key, arr in (("pvalue", ref.pvalue), ("pvalue_fwe", ref.pvalue_fwe),
                         ("cluster_p", ref.cluster_pvalue), ("pvalue_tfce", ref.tfce_pvalue),
                         ("h0_max", ref.h0_max), ("h0_cluster", ref.h0_cluster)):
            np.testing.assert_allclose(f[key][()], arr, rtol=1e-6, err_msg=key)
        np.testing.assert_array_equal(f["cluster"][()], ref.cluster_labels)
        assert [t.decode() for t in f["targets"][()]] == [str(k) for k in range(5)]
    rows = _read_csv(out)
    assert len(rows) == 2 * 20
    sig = np.isin(ref.cluster_labels, np.flatnonzero(ref.cluster_pvalue < 0.05) + 1)
    for key, arr in (("n_fwe", (ref.pvalue_fwe < 0.05).sum(1)), ("n_cluster", sig.sum(1)),
                     ("n_tfce", (ref.tfce_pvalue < 0.05).sum(1))):
        np.testing.assert_array_equal([int(r[key]) for r in rows], arr.ravel(), err_msg=key)
    np.testing.assert_allclose([float(r["min_p_fwe"]) for r in rows],
                               ref.pvalue_fwe.min(axis=1).ravel(), rtol=1e-5)
    # planted: the fc channels carry the window 8..13 (4 of the 5 found at 30 permutations);
    # every significant cluster overlaps it (a cluster, not its every sample, is the finding),
    # no channel of the noise layer has one
    assert sig[0, :, 8:14].any(axis=1).sum() >= 4 and not sig[1].any()
    for k in np.flatnonzero(ref.cluster_pvalue < 0.05) + 1:
        samples = np.nonzero(ref.cluster_labels[0] == k)[1]
        assert np.isin(samples, np.arange(8, 14)).any()
    assert fig.stat().st_size > 0


def test_encode_time_resolved_per_channel_lags_and_bad_input(meg, capsys):
    tmp = meg["tmp"]
    out = tmp / "w.h5"
    assert _encode_perm(meg, meg["fif"], out, "--per-channel", "--temporal-radius", "0.01",
                        "--cluster-threshold", "0.3") == 0
    with h5py.File(out) as f:
        targets = [t.decode() for t in f["targets"][()]]
        assert f["statistic"].shape == (2, 15, 18) and len(targets) == 15
        assert targets[:3] == ["0@-0.01s", "0@+0s", "0@+0.01s"]
        assert f["cluster_threshold"][()] == 0.3
    code = main(["encode", str(meg["act"]), "--layer", "fc", "--brain", str(meg["fif"]),
                 "--time-resolved", "--per-channel", "--out", str(tmp / "x.csv")])
    assert code != 0 and "--per-channel" in capsys.readouterr().err


def _montage_fif(meg):
    """The fixture's data on 5 named 10-20 EEG channels with a montage (positions)."""
    import pandas as pd

    names = ["Fz", "Cz", "Pz", "C3", "C4"]
    info = mne.create_info(names, 100.0, "eeg")
    ep = mne.EpochsArray(meg["data"], info, tmin=-0.05, verbose=False,
                         metadata=pd.DataFrame({"stim_id": np.tile(meg["ids"], 2)}))
    ep.set_montage("colin27_1020", verbose=False)
    path = meg["tmp"] / "montage-epo.fif"
    ep.save(path, verbose=False)
    return path, ep


def test_encode_time_resolved_adjacency_equals_python_api(meg):
    from sklearn.model_selection import KFold

    from neuroprobe import TimeResolved, VoxelwiseEncoder
    from neuroprobe.estimators.temporal import permutation_test_time_resolved
    from neuroprobe.io.epochs import read_epochs

    tmp = meg["tmp"]
    fif, ep = _montage_fif(meg)
    A, names = mne.channels.find_ch_adjacency(ep.info, "eeg")
    assert list(names) == ep.ch_names and A.nnz > 5
    brain = read_epochs(mne.read_epochs(fif, verbose=False))
    ref = permutation_test_time_resolved(
        TimeResolved(VoxelwiseEncoder(alphas=[1, 10, 100], cv=3)),
        _layers_in_brain_order(meg, brain), brain, n_permutations=30,
        cv=KFold(3, shuffle=True, random_state=0), average=False, adjacency=A,
        random_state=0)
    np.save(tmp / "adj.npy", A.toarray())
    for spec, out in (("auto", tmp / "a.h5"), (str(tmp / "adj.npy"), tmp / "b.h5")):
        assert _encode_perm(meg, fif, out, "--per-channel", "--adjacency", spec) == 0
        with h5py.File(out) as f:
            np.testing.assert_array_equal(f["cluster"][()], ref.cluster_labels)
            np.testing.assert_allclose(f["cluster_p"][()], ref.cluster_pvalue)
            np.testing.assert_array_equal(f["adjacency"][()], A.toarray() & ~np.eye(5, dtype=bool))
            assert f["cluster_threshold"][()] == pytest.approx(ref.cluster_threshold)
    # spatio-temporal TFCE through the CLI = the Python API
    ref_tfce = permutation_test_time_resolved(
        TimeResolved(VoxelwiseEncoder(alphas=[1, 10, 100], cv=3)),
        _layers_in_brain_order(meg, brain), brain, n_permutations=30,
        cv=KFold(3, shuffle=True, random_state=0), average=False, adjacency=A,
        tfce={"start": 0.0}, random_state=0)
    assert _encode_perm(meg, fif, tmp / "t.h5", "--per-channel", "--adjacency", "auto",
                        "--tfce", "0") == 0
    with h5py.File(tmp / "t.h5") as f:
        np.testing.assert_allclose(f["tfce"][()], ref_tfce.tfce_scores, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(f["pvalue_tfce"][()], ref_tfce.tfce_pvalue)
    # clusters that span channels: the planted window joins all five
    sig = np.flatnonzero(ref.cluster_pvalue < 0.05) + 1
    assert any((ref.cluster_labels[0] == k).any(axis=1).sum() >= 3 for k in sig)


def test_encode_time_resolved_adjacency_bad_input(meg, capsys):
    tmp = meg["tmp"]
    base = ["encode", str(meg["act"]), "--layer", "fc", "--brain", str(meg["fif"]),
            "--time-resolved", "--n-permutations", "10", "--out", str(tmp / "x.csv")]
    cases = [(["--adjacency", "auto"], "needs --per-channel"),
             (["--per-channel", "--adjacency", str(tmp / "none.npy")], "file not found"),
             (["--per-channel", "--adjacency", "auto"], "set a montage")]
    np.save(tmp / "small.npy", np.ones((3, 3)))
    cases.append((["--per-channel", "--adjacency", str(tmp / "small.npy")], "(5, 5)"))
    for extra, message in cases:
        assert main(base + extra) != 0
        err = capsys.readouterr().err
        assert message in err, (extra, err)
