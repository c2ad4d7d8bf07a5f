"""Time-resolved RSA: 8 layers x 301 times x 92 stimuli x 306 channels vs mne-rsa, the
1,000-permutation cluster/max-stat inference time, TimeResolved's batched encoder path vs
one clone per window, and the channel searchlight.
``python3 benchmarks/bench_temporal.py [--small | --rsa]`` (``--rsa``: the RSA tables only)."""

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


def main(n_stim=92, n_ch=306, n_times=301, n_layers=8, n_perm=1000, repeats=5, rsa_only=False):
    for radius in (0, 5):
        _rsa(n_stim, n_ch, n_times, n_layers, radius, n_perm, repeats)
    _rsa(n_stim, n_ch, n_times, n_layers, 0, n_perm, repeats, dtype=np.float32)
    _searchlight(n_stim, 64, 51, min(repeats, 3))
    if not rsa_only:
        _encoder(n_stim, n_ch, n_times)


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
    pos = np.array([ch["loc"][:3] for ch in ep.info["chs"]])
    A = channel_neighbourhoods(pos, spatial_radius)
    load0 = _load()
    wall, cpu, out = _interleaved({
        "mne-rsa": lambda: mne_rsa.rsa_epochs(
            ep, model, spatial_radius=spatial_radius, temporal_radius=0.0, y=np.arange(n_stim),
            verbose=False).data,
        "1 thread": lambda: searchlight_rsa(X, model[None], A, 0, n_jobs=1)[0],
        "all cores": lambda: searchlight_rsa(X, model[None], A, 0, n_jobs=-1)[0]}, repeats)
    print(f"searchlight {n_ch} channels (mean {A.sum(1).mean():.1f} per neighbourhood) x "
          f"{n_times} times ({repeats} interleaved repeats):")
    for k in ("1 thread", "all cores"):
        print(f"| `searchlight_rsa`, {k} | {wall['mne-rsa']:.2f} s | {wall[k]:.3f} s | "
              f"**{wall['mne-rsa'] / wall[k]:.1f}x** | {cpu['mne-rsa'] / cpu[k]:.1f}x | "
              f"{np.abs(out[k] - out['mne-rsa']).max():.1e} | {load0}-{_load()} |")


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


def _interleaved(fns, repeats):
    """Min wall and min CPU (process) time of each function, repeats interleaved (A B C A B C)."""
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    out = {}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            out[k] = fn()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return {k: min(v) for k, v in wall.items()}, {k: min(v) for k, v in cpu.items()}, out


def _load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def _rsa(n_stim, n_ch, n_times, n_layers, radius, n_perm, repeats, dtype=np.float64):
    """mne-rsa ``rsa_epochs`` vs neuroprobe, both from in-memory data to the 8 x n_times curves.

    mne-rsa's timer: ``rsa_epochs`` on an EpochsArray (its data copy, averaging per ``y``, a
    ``pdist`` + Spearman per time). neuroprobe's: ``time_resolved_rsa`` on the (stimuli,
    channels, times) array (RDMs, ranks and the comparison with the standardised models,
    fused over chunks of windows), on 1 thread and on all cores; and the unfused
    ``window_rdms`` + ``compare_rdms`` (1 thread).
    """
    import mne
    import mne_rsa

    from neuroprobe.solvers.temporal import time_resolved_rsa

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_stim, n_ch, n_times))
    models = [rng.random(n_stim * (n_stim - 1) // 2) for _ in range(n_layers)]
    M = np.stack(models)
    info = mne.create_info(n_ch, 1000.0, "mag")
    ep = mne.EpochsArray(X, info, verbose=False)
    load0 = _load()
    fns = {"mne-rsa": lambda: np.stack([e.data[0] for e in mne_rsa.rsa_epochs(
        ep, models, temporal_radius=radius / 1000.0, y=np.arange(n_stim), verbose=False)])}
    if dtype == np.float64:
        fns["1 thread"] = lambda: time_resolved_rsa(X, M, radius, n_jobs=1)
        fns["all cores"] = lambda: time_resolved_rsa(X, M, radius, n_jobs=-1)
    fns["unfused"] = lambda: compare_rdms(M, window_rdms(X, radius, dtype=dtype))
    wall, cpu, out = _interleaved(fns, repeats)
    ref = out.pop("mne-rsa")
    ours = out["unfused"]
    name = np.dtype(dtype).name
    rows = []
    for k in out:
        err = np.abs(out[k] - ref).max()
        how = {"1 thread": "`time_resolved_rsa`, 1 thread",
               "all cores": "`time_resolved_rsa`, `n_jobs=-1` (2 cores)",
               "unfused": f"`window_rdms(dtype={name})` + `compare_rdms`"}[k]
        rows.append(f"| {radius} | {how} | {wall['mne-rsa']:.3f} s | {wall[k]:.3f} s | "
                    f"**{wall['mne-rsa'] / wall[k]:.1f}x** | {cpu['mne-rsa'] / cpu[k]:.1f}x | "
                    f"{err:.1e} | {load0}-{_load()} |")
    t0 = time.perf_counter()
    null = permutation_null(M, window_rdms(X, radius), n_perm, random_state=0)
    p_fwe = max_stat_fwe(ours, null)
    cluster_fwe(ours, null, 0.02, tail=1)
    t_null = time.perf_counter() - t0
    subj = rng.standard_normal((20, n_times)) + 0.3
    t0 = time.perf_counter()
    permutation_cluster_1samp(subj, 2.0, n_perm, tail=1, random_state=0)
    t_clu = time.perf_counter() - t0
    print(f"radius {radius} samples (1 kHz), {name} Gram ({repeats} interleaved repeats):")
    print("| temporal_radius | neuroprobe path | mne-rsa | neuroprobe | ratio (wall) | "
          "ratio (CPU time) | max abs diff | load avg |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"{n_perm}-permutation null + max-stat and cluster FWE "
          f"({n_layers}x{n_times}): {t_null:.2f}s; min p {p_fwe.min():.3f}")
    print(f"{n_perm}-sign-flip cluster test (20 subjects x {n_times}): {t_clu:.2f}s")


if __name__ == "__main__":
    import mne

    mne.set_log_level("ERROR")                    # mne-rsa's per-call progress lines
    if "--small" in sys.argv:
        main(n_ch=102, n_times=151, n_perm=200, repeats=2)
    elif "--rsa" in sys.argv:                     # the RSA tables only (~1 min)
        main(rsa_only=True, repeats=7)
    else:
        main()
