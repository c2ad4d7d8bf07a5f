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
