"""read_epochs: per-stimulus averaging, id alignment (shuffled epochs identical), bad input."""

import numpy as np
import pytest

from neuroprobe.exceptions import StimulusError
from neuroprobe.io.epochs import read_epochs
from neuroprobe.solvers.temporal import compare_rdms, window_rdms

mne = pytest.importorskip("mne")


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((24, 5, 20))
    ids = np.array([f"s{k}" for k in np.tile(np.arange(8), 3)])
    return X, ids, np.arange(20) / 100.0


def test_average_and_align_shuffled_identical():
    X, ids, t = _data()
    ref = [f"s{k}" for k in (3, 1, 0, 2, 7, 6, 5, 4)]
    a = read_epochs(X, times=t, stim_ids=ids, reference_ids=ref)
    perm = np.random.default_rng(1).permutation(24)
    b = read_epochs(X[perm], times=t, stim_ids=ids[perm], reference_ids=ref)
    np.testing.assert_allclose(a.data, b.data, atol=1e-12)
    np.testing.assert_array_equal(a.stim_ids, ref)
    np.testing.assert_allclose(a.data[0], X[ids == "s3"].mean(0))
    model = np.random.default_rng(2).random((2, 28))
    np.testing.assert_allclose(compare_rdms(model, window_rdms(a.data, 1)),
                               compare_rdms(model, window_rdms(b.data, 1)), atol=1e-12)


def test_keep_trials_groups_and_zscore():
    X, ids, t = _data()
    sessions = np.repeat([0, 1], 12)
    d = read_epochs(X, times=t, stim_ids=ids, average=False, zscore=True, sessions=sessions)
    assert d.data.shape == X.shape and d.groups.shape == (24,)
    blk = d.data[sessions == 1]
    np.testing.assert_allclose(blk.mean(axis=(0, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(blk.std(axis=(0, 2)), 1, atol=1e-12)


def test_mne_epochs_event_names():
    X, ids, t = _data()
    codes = np.array([int(s[1:]) + 1 for s in ids])
    info = mne.create_info(5, 100.0, "eeg")
    ev = np.column_stack([np.arange(24), np.zeros(24, int), codes])
    ep = mne.EpochsArray(X, info, events=ev, event_id={f"s{k}": k + 1 for k in range(8)},
                         verbose=False)
    d = read_epochs(ep)
    np.testing.assert_allclose(d.data, read_epochs(X, times=ep.times, stim_ids=ids).data)


def test_bad_input():
    X, ids, t = _data()
    with pytest.raises(StimulusError, match="stim_ids"):
        read_epochs(X, times=t)
    with pytest.raises(ValueError, match="stim_ids"):
        read_epochs(X, times=t, stim_ids=ids, reference_ids=["a", "b"])
    bad = X.copy()
    bad[3, 0, 0] = np.nan
    with pytest.raises(ValueError, match="epochs: .*NaN"):
        read_epochs(bad, times=t, stim_ids=ids)
    with pytest.raises(ValueError, match="times"):
        read_epochs(X, times=np.r_[t[:10], t[10:] * 1.5], stim_ids=ids)
    ev = [mne.EvokedArray(X[0], mne.create_info(5, f, "eeg")) for f in (100.0, 200.0)]
    with pytest.raises(ValueError, match="sampling rates"):
        read_epochs(ev)
    info = mne.create_info(["a", "b", "c", "d", "e"], 100.0, ["eeg"] * 3 + ["mag"] * 2)
    ep = mne.EpochsArray(X, info, verbose=False)
    with pytest.raises(ValueError, match="picks"):
        read_epochs(ep, stim_ids=ids)


def test_spike_counts_route():
    """Multi-unit spike counts (n_stimuli, n_units, n_bins), integers, in a shuffled stimulus
    order: rows reordered by ID, counts kept exactly (as float), and time-resolved RSA over
    bins equal to a per-bin scipy loop."""
    from scipy.spatial.distance import pdist
    from scipy.stats import spearmanr

    from neuroprobe import RSAScorer, TimeResolved

    rng = np.random.default_rng(3)
    ids = np.array([f"img{i}" for i in range(10)])
    counts = rng.poisson(3.0, (10, 7, 12))                      # 10 stimuli, 7 units, 12 bins
    order = rng.permutation(10)
    bins = 0.025 + 0.05 * np.arange(12)                          # bin centres, 50 ms bins
    ep = read_epochs(counts[order], times=bins, stim_ids=ids[order], reference_ids=ids)
    assert ep.data.dtype == np.float64 and ep.sfreq == pytest.approx(20.0)
    np.testing.assert_array_equal(ep.data, counts)
    np.testing.assert_array_equal(ep.stim_ids, ids)
    feats = rng.standard_normal((10, 4))
    curve = TimeResolved(RSAScorer(), temporal_radius=0).fit(feats, ep).score_targets(feats, ep)
    ref = [spearmanr(pdist(feats, "correlation"), pdist(counts[:, :, b], "correlation"))[0]
           for b in range(12)]
    np.testing.assert_allclose(curve[0], ref, atol=1e-10)
