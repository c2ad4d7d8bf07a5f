"""Time-resolved RSA: 8 layers x 301 times x 92 stimuli x 306 channels vs mne-rsa, the
1,000-permutation cluster/max-stat inference time, and TimeResolved's batched encoder path vs
one clone per window.  ``python3 benchmarks/bench_temporal.py [--small]``"""

import sys
import time

import numpy as np

from neuroprobe.solvers.temporal import (
    cluster_fwe,
    compare_rdms,
    max_stat_fwe,
    permutation_cluster_1samp,
    permutation_null,
    window_rdms,
)


def _best(fn, repeats):
    """Min wall time of ``repeats`` calls (the machine is shared) and the last result."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(n_stim=92, n_ch=306, n_times=301, n_layers=8, n_perm=1000, repeats=3):
    for radius in (0, 5):
        _rsa(n_stim, n_ch, n_times, n_layers, radius, n_perm, repeats)
    _rsa(n_stim, n_ch, n_times, n_layers, 0, n_perm, repeats, dtype=np.float32)
    _encoder(n_stim, n_ch, n_times)
    _searchlight(n_stim, 64, 51, repeats)


def _searchlight(n_stim, n_ch, n_times, repeats, spatial_radius=0.05):
    """Channel x time searchlight (EEG 10-05 positions) vs mne-rsa ``spatial_radius``."""
    import mne
    import mne_rsa

    from neuroprobe.solvers.temporal import channel_neighbourhoods, searchlight_rsa

    rng = np.random.default_rng(2)
    montage = mne.channels.make_standard_montage("standard_1005")
    info = mne.create_info(montage.ch_names[:n_ch], 1000.0, "eeg")
    X = rng.standard_normal((n_stim, n_ch, n_times))
    ep = mne.EpochsArray(X, info, verbose=False)
    ep.set_montage(montage, verbose=False)
    model = rng.random(n_stim * (n_stim - 1) // 2)
    t_ref, ref = _best(lambda: mne_rsa.rsa_epochs(
        ep, model, spatial_radius=spatial_radius, temporal_radius=0.0, y=np.arange(n_stim),
        verbose=False), repeats)
    pos = np.array([ch["loc"][:3] for ch in ep.info["chs"]])
    A = channel_neighbourhoods(pos, spatial_radius)
    t_ours, ours = _best(lambda: searchlight_rsa(X, model[None], A, 0), repeats)
    err = np.abs(ours[0] - ref.data).max()
    print(f"searchlight {n_ch} channels (mean {A.sum(1).mean():.1f} per neighbourhood) x "
          f"{n_times} times: mne-rsa {t_ref:.2f}s  neuroprobe {t_ours:.3f}s  "
          f"ratio {t_ref / t_ours:.1f}x  max|diff| {err:.1e}")


def _encoder(n_stim, n_ch, n_times, n_features=100):
    """TimeResolved(VoxelwiseEncoder): one fit with channels x times as targets vs clones."""
    from neuroprobe import TimeResolved, VoxelwiseEncoder

    rng = np.random.default_rng(1)
    X = rng.standard_normal((n_stim, n_features)).astype(np.float32)
    Y = rng.standard_normal((n_stim, n_ch, n_times)).astype(np.float32)
    enc = VoxelwiseEncoder(cv=5)
    t0 = time.perf_counter()
    fast = TimeResolved(enc).fit(X, Y).score_targets(X, Y)
    t_fast = time.perf_counter() - t0
    slow_est = TimeResolved(enc)
    slow_est._batched = lambda: False
    t0 = time.perf_counter()
    slow = slow_est.fit(X, Y).score_targets(X, Y)
    t_slow = time.perf_counter() - t0
    print(f"TimeResolved(VoxelwiseEncoder(cv=5)) {n_stim}x{n_features} -> {n_ch}x{n_times}: "
          f"clones {t_slow:.2f}s  batched {t_fast:.2f}s  ratio {t_slow / t_fast:.1f}x  "
          f"max|diff| {np.abs(fast - slow).max():.1e}")


def _rsa(n_stim, n_ch, n_times, n_layers, radius, n_perm, repeats, dtype=np.float64):
    import mne
    import mne_rsa

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_stim, n_ch, n_times))
    models = [rng.random(n_stim * (n_stim - 1) // 2) for _ in range(n_layers)]
    info = mne.create_info(n_ch, 1000.0, "mag")
    ep = mne.EpochsArray(X, info, verbose=False)
    t_ref, ref = _best(lambda: mne_rsa.rsa_epochs(
        ep, models, temporal_radius=radius / 1000.0, y=np.arange(n_stim), verbose=False), repeats)
    t_ours, brain = _best(lambda: window_rdms(X, radius, dtype=dtype), repeats)
    t_cmp, ours = _best(lambda: compare_rdms(np.stack(models), brain), repeats)
    t_ours += t_cmp
    err = np.abs(ours - np.stack([e.data[0] for e in ref])).max()
    t0 = time.perf_counter()
    null = permutation_null(np.stack(models), brain, n_perm, random_state=0)
    p_fwe = max_stat_fwe(ours, null)
    cluster_fwe(ours, null, 0.02, tail=1)
    t_null = time.perf_counter() - t0
    subj = rng.standard_normal((20, n_times)) + 0.3
    t0 = time.perf_counter()
    permutation_cluster_1samp(subj, 2.0, n_perm, tail=1, random_state=0)
    t_clu = time.perf_counter() - t0
    print(f"radius {radius} samples (1 kHz), {np.dtype(dtype).name} Gram:")
    print(f"mne-rsa {t_ref:.2f}s  neuroprobe {t_ours:.3f}s  ratio {t_ref / t_ours:.1f}x  "
          f"max|diff| {err:.1e}")
    print(f"{n_perm}-permutation null + max-stat and cluster FWE "
          f"({n_layers}x{n_times}): {t_null:.2f}s; "
          f"min p {p_fwe.min():.3f}")
    print(f"{n_perm}-sign-flip cluster test (20 subjects x {n_times}): {t_clu:.2f}s")


if __name__ == "__main__":
    if "--small" in sys.argv:
        main(n_ch=102, n_times=151, n_perm=200, repeats=2)
    else:
        main()
