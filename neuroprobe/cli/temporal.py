"""``neuroprobe rsa --brain epochs.fif --time-resolved`` and ``neuroprobe encode ... --brain
epochs.fif --time-resolved``: time-resolved RSA / encoding of MEG/EEG epochs.

The ``rsa`` and ``encode`` commands add these flags with :func:`add_arguments` and hand over to
:func:`run_rsa` / :func:`run_encode` when ``--brain`` is given. The brain epochs (``.fif``) are
read with :func:`neuroprobe.io.epochs.read_epochs` (trials averaged per stimulus, stimulus IDs
from the metadata ``stim_id`` column or the event names) and joined to the models by ID.
Outputs: a long CSV table at ``--out`` with the arrays (scores, p-values, cluster labels,
times, layer names) in ``OUT.h5`` beside it (``--out x.h5``: the HDF5 file only), and, with
``--figure``, the curves (:func:`neuroprobe.plotting.temporal.plot_time_courses`), significant
clusters shaded.

``rsa --brain sub1-epo.fif sub2-epo.fif ... --time-resolved`` (one file per subject): every
subject is read as above (rows in the stimulus order of the first file; the files must share
their stimuli, sampling rate and time axis), the group curves and their test come from the mean
of the subjects' window RDMs, and the noise ceiling of every window
(:func:`neuroprobe.rsa.window_noise_ceiling`) is added: ``ceiling_lower`` / ``ceiling_upper``
columns and datasets, and the band in ``--figure``. One file: no ceiling, as before.

``encode --time-resolved --n-permutations N`` tests the curves with
:func:`neuroprobe.estimators.temporal.permutation_test_time_resolved` (stimulus permutations
through the ridge fast path, within ``--groups``; the statistic is the ``--cv``-fold CV score at
each target's best alpha, averaged over channels, as ``encode --n-permutations``' maps); the
``score`` curves stay the nested outer-CV scores. ``rsa --time-resolved`` tests its curves with
:func:`neuroprobe.estimators.temporal.permutation_test_time_resolved_rsa`. Both take ``--tail``
(1: above chance, 0: two-sided, -1: below) and ``--tfce START[,STEP]`` (also threshold-free
cluster enhancement with its FWE p-values; STEP defaults to 1/50 of the most extreme observed
value, and is negative, with START <= 0, for ``--tail -1``, as mne.stats).

``encode --time-resolved --n-permutations N --per-channel`` tests every channel (x lag of the
window) apart: ``permutation_test_time_resolved(..., average=False, keep_null=False)``, FWE over
layers x channels x time, the null reduced chunk by chunk (memory of one chunk whatever N; the
default cluster threshold is the 95th percentile of the first chunk's null). The table keeps
one row per layer and time (the mean score) with the number of channels significant at 0.05
(``n_fwe``, ``n_cluster``, ``n_tfce``) and the smallest p-values; ``OUT.h5`` holds the
``(layer, target, time)`` arrays, the target names (``targets``) and the permutation
distributions (``h0_max``, ``h0_cluster``, ``h0_tfce``); ``--figure`` shades where some channel
is in a significant cluster. ``--adjacency auto|FILE`` makes the clusters (and TFCE) spatio-temporal
(adjacent channels at the same time join, as mne.stats' spatio-temporal cluster tests).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from neuroprobe.exceptions import CLIError

__all__ = ["add_arguments", "run_rsa", "run_encode", "refuse_tail_tfce"]


def add_arguments(p, command):
    """The time-resolved flags of ``rsa`` / ``encode`` (``command``)."""
    if command == "rsa":
        p.add_argument("--brain", default=None, nargs="+", metavar="EPOCHS",
                       help="MEG/EEG epochs (.fif, read with mne), one file per subject: "
                            "time-resolved brain data whose trials are averaged per stimulus "
                            "(IDs: metadata 'stim_id' or event names); several subjects: the "
                            "group RDMs are the mean of their window RDMs, with the noise "
                            "ceiling of every window; needs --time-resolved")
    else:
        p.add_argument("--brain", default=None,
                       help="MEG/EEG epochs (.fif, read with mne): time-resolved brain data "
                            "whose trials are averaged per stimulus (IDs: metadata 'stim_id' "
                            "or event names); needs --time-resolved")
    p.add_argument("--time-resolved", action="store_true",
                   help="one score per layer and time window of --brain")
    if command == "encode":
        p.add_argument("--per-channel", action="store_true",
                       help="with --n-permutations: test every channel (x lag of the window) "
                            "apart, FWE over layers x channels x time; the null is reduced as "
                            "it is drawn (memory of one chunk of permutations); the table "
                            "counts the channels significant at 0.05 per layer and time, the "
                            ".h5 holds (layer, channel, time) arrays")
        p.add_argument("--adjacency", default=None, metavar="auto|FILE",
                       help="with --per-channel: spatio-temporal clusters over adjacent "
                            "channels (as mne.stats): 'auto' (mne.channels.find_ch_adjacency "
                            "of the --brain file: MEG layouts, EEG with a montage) or a .npy "
                            "(channels x channels, non-zero: neighbours) / scipy sparse .npz "
                            "in the order of the picked channels; --tfce is then "
                            "spatio-temporal too")
    p.add_argument("--temporal-radius", type=float, default=0.0,
                   help="half-width of the time window in seconds (default 0: every sample)")
    p.add_argument("--picks", default=None,
                   help="MNE channel picks, e.g. 'mag' or 'eeg' (needed for mixed types)")
    p.add_argument("--figure", default=None, help="also save the curves as an image (.png)")
    if command == "rsa":
        p.add_argument("--brain-metric", default="correlation",
                       choices=["correlation", "sqeuclidean", "euclidean"],
                       help="distance of the brain patterns (default correlation)")
    p.add_argument("--cluster-threshold", type=float, default=None,
                   help="cluster-forming threshold on the curves, a magnitude (default: the "
                        "95th percentile of the permutation null, of |null| for --tail 0, "
                        "of -null for --tail -1)")
    p.add_argument("--tail", type=int, choices=[1, 0, -1], default=1,
                   help="permutation tests of the curves: 1 above chance (default), 0 "
                        "two-sided, -1 below chance")
    p.add_argument("--tfce", default=None, metavar="START[,STEP]",
                   help="also threshold-free cluster enhancement (FWE over layers x time) "
                        "from threshold START in steps of STEP (default: 1/50 of the most "
                        "extreme observed value); --tail -1 needs START <= 0 and STEP < 0")


def refuse_tail_tfce(args):
    """``--tail`` / ``--tfce`` without ``--brain``: they test time-resolved curves only."""
    if args.brain is None and (args.tail != 1 or args.tfce is not None):
        raise CLIError("--tail and --tfce apply to --brain epochs.fif --time-resolved only")


def _tfce(args):
    """``--tfce START[,STEP]`` as the ``tfce`` dict of the Python API (None: not asked)."""
    if args.tfce is None:
        return None
    parts = [v.strip() for v in str(args.tfce).split(",")]
    try:
        values = [float(v) for v in parts]
    except ValueError:
        values = []
    if not 1 <= len(parts) <= 2 or len(values) != len(parts) \
            or not np.all(np.isfinite(values)):
        raise CLIError(f"--tfce {args.tfce}: expected START or START,STEP (finite numbers, "
                       "e.g. 0 or 0,0.01)")
    start, step = values[0], values[1] if len(values) == 2 else None
    if args.tail == -1 and (start > 0 or (step is not None and step >= 0)):
        raise CLIError(f"--tfce {args.tfce} with --tail -1: expected START <= 0 and STEP < 0 "
                       "(thresholds going down, as mne.stats)")
    if args.tail == 0 and start < 0:
        raise CLIError(f"--tfce {args.tfce} with --tail 0: expected START >= 0 (thresholds on "
                       "|curve|)")
    if args.tail != -1 and step is not None and step <= 0:
        raise CLIError(f"--tfce {args.tfce}: expected STEP > 0")
    if getattr(args, "n_permutations", 0) <= 0:
        raise CLIError("--tfce needs --n-permutations > 0")
    return {"start": start} if step is None else {"start": start, "step": step}


def _brain(args, reference_ids=None, path=None):
    """One ``--brain`` file (``path``, default ``args.brain``) as EpochData; rows in the order
    of ``reference_ids`` when given."""
    from neuroprobe.io.epochs import read_epochs

    if not args.time_resolved:
        raise CLIError("--brain needs --time-resolved (time-resolved brain data)")
    path = Path(args.brain if path is None else path)
    if not path.exists():
        raise CLIError(f"--brain: file not found: {path}")
    try:
        import mne
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise CLIError("--brain .fif files need mne (pip install 'neuroprobe[meg]')") from exc
    epochs = mne.read_epochs(path, preload=True, verbose=False)
    picks = args.picks.split(",") if args.picks and "," in args.picks else args.picks
    try:
        return read_epochs(epochs, picks=picks, reference_ids=reference_ids)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"--brain {path}: {exc}") from exc


def _subjects(args):
    """Every ``--brain`` file of ``rsa``: the first as read, the others' rows in its stimulus
    order, all on the same time axis."""
    paths = [args.brain] if isinstance(args.brain, (str, Path)) else list(args.brain)
    for path in paths[1:]:
        if not Path(path).exists():
            raise CLIError(f"--brain: file not found: {path}")
    first = _brain(args, path=paths[0])
    brains = [first]
    for path in paths[1:]:
        try:
            brain = _brain(args, reference_ids=first.stim_ids, path=path)
        except CLIError as exc:
            raise CLIError(f"{exc} (every --brain file needs the stimuli of {paths[0]})") \
                from None
        if not np.isclose(brain.sfreq, first.sfreq):
            raise CLIError(f"--brain {path}: sampled at {brain.sfreq:g} Hz but {paths[0]} at "
                           f"{first.sfreq:g} Hz (resample the epochs to one rate)")
        if brain.times.shape != first.times.shape \
                or not np.allclose(brain.times, first.times, atol=0.5 / first.sfreq):
            raise CLIError(f"--brain {path}: {brain.times.size} samples from "
                           f"{brain.times[0]:g} s but {paths[0]} has {first.times.size} from "
                           f"{first.times[0]:g} s (crop the epochs to one time window)")
        brains.append(brain)
    return paths, brains


def _radius(args, sfreq, n_times):
    r = int(round(args.temporal_radius * sfreq))
    if r < 0 or 2 * r + 1 > n_times:
        raise CLIError(f"--temporal-radius {args.temporal_radius} s is {r} samples: wider than "
                       f"the epoch ({n_times} samples at {sfreq:g} Hz)")
    return r


def _save(args, rows, fields, datasets, times, curves, names, labels=None, cluster_p=None,
          ylabel="score", ceiling=None):
    from neuroprobe.io.arrays import write_h5, write_table

    out = Path(args.out)
    arrays = {**datasets, "times": times, "layers": np.asarray(names, dtype=str)}
    if out.suffix.lower() in (".h5", ".hdf5"):
        write_h5(out, arrays)
    else:                               # the table, and the arrays beside it (OUT.h5)
        write_table(out, rows, fields)
        write_h5(out.with_suffix(".h5"), arrays)
    if args.figure:
        from neuroprobe.plotting import save_figure
        from neuroprobe.plotting.temporal import plot_time_courses

        fig = plot_time_courses(times, curves, names, labels=labels, cluster_p=cluster_p,
                                ceiling=ceiling, ylabel=ylabel)
        save_figure(fig, args.figure)
    if not args.quiet:
        for name, c in zip(names, curves):
            k = int(np.nanargmax(c))
            print(f"{name}: peak {c[k]:.3f} at {times[k]:.3f} s", file=sys.stdout)


def run_rsa(args, load_source):
    """Time-resolved RSA of every --model RDM against the --brain epochs, with cluster FWE.

    Several ``--brain`` files (one per subject): every subject's window RDMs
    (:func:`neuroprobe.solvers.temporal.window_rdms`), the group curves and their test on the
    mean of them, and the noise ceiling of every window
    (:func:`neuroprobe.rsa.window_noise_ceiling`) in the outputs and the figure.

    ``load_source(spec, flag, ids_spec)`` reads one --model RDM source (``neuroprobe rsa``'s
    reader, passed in so that this module does not import the command module).
    """
    from neuroprobe.estimators.temporal import permutation_test_time_resolved_rsa
    from neuroprobe.io.ids import align_ids
    from neuroprobe.rsa import select_rdms, window_noise_ceiling
    from neuroprobe.solvers.temporal import compare_rdms, time_resolved_rsa, window_rdms

    if args.brain is None:
        raise CLIError("rsa needs --target (RDMs), or --brain epochs.fif --time-resolved")
    if args.method not in ("spearman", "pearson"):
        raise CLIError(f"--method {args.method}: time-resolved RSA supports spearman or pearson")
    tfce = _tfce(args)
    sources = [load_source(spec, "--model", args.model_ids) for spec in args.model]
    paths, brains = _subjects(args)
    brain = brains[0]                                # its stimulus order is the models'
    models, names = [], []
    for src in sources:
        if src.ids is not None:
            index = align_ids(brain.stim_ids, src.ids, what=f"--model {src.spec} stimulus IDs",
                              reference="--brain stimulus IDs")
            rdms = select_rdms(src.rdms, index)
        else:
            rdms = src.rdms
            print(f"warning: --model {src.spec} has no stimulus IDs; joined to --brain by "
                  "position (pass --model-ids)", file=sys.stderr)
        if rdms.shape[1] != len(brain.stim_ids) * (len(brain.stim_ids) - 1) // 2:
            raise CLIError(f"--model {src.spec}: RDMs of a different number of stimuli than the "
                           f"{len(brain.stim_ids)} of --brain")
        models.append(rdms)
        names += [n if len(sources) == 1 else f"{src.label}:{n}" for n in src.names]
    models = np.vstack(models)
    r = _radius(args, brain.sfreq, brain.data.shape[2])
    times = brain.times[r:brain.data.shape[2] - r]
    test = ceiling = None
    n_jobs = getattr(args, "n_jobs", None)           # threads of the window RDMs
    group = brain                                    # one subject: its epochs, as before
    if len(brains) > 1:                              # the mean of the subjects' window RDMs
        subject_rdms = np.stack([window_rdms(b.data, r, args.brain_metric, n_jobs=n_jobs)
                                 for b in brains])
        group = subject_rdms.mean(axis=0)
        try:
            ceiling = window_noise_ceiling(subject_rdms, args.method)
        except ValueError as exc:
            raise CLIError(f"rsa --time-resolved: --brain {' '.join(map(str, paths))}: {exc}") \
                from None
    if args.n_permutations > 0:
        try:
            test = permutation_test_time_resolved_rsa(
                models, group, temporal_radius=r, metric=args.brain_metric,
                comparison=args.method, n_permutations=args.n_permutations,
                cluster_threshold=args.cluster_threshold, tfce=tfce, tail=args.tail,
                random_state=args.seed, n_jobs=n_jobs)
        except ValueError as exc:
            raise CLIError(f"rsa --time-resolved: {exc}") from None
        curves, p_fwe = test.observed, test.pvalue_fwe
        labels, cluster_p = test.cluster_labels, test.cluster_pvalue
    else:
        curves = (compare_rdms(models, group, args.method) if len(brains) > 1 else
                  time_resolved_rsa(brain.data, models, r, args.brain_metric, args.method,
                                    n_jobs=n_jobs))
        p_fwe = np.full(curves.shape, np.nan)
        labels, cluster_p = np.zeros(curves.shape, int), np.zeros(0)
    rows = []
    for i, name in enumerate(names):
        for j, t in enumerate(times):
            k = int(labels[i, j])
            rows.append({"model": name, "time": f"{t:.6g}", "r": f"{curves[i, j]:.6g}",
                         "p_fwe": f"{p_fwe[i, j]:.6g}", "cluster": k,
                         "cluster_p": f"{cluster_p[k - 1]:.6g}" if k else ""})
            if test is not None and test.tfce is not None:
                rows[-1].update({"tfce": f"{test.tfce_scores[i, j]:.6g}",
                                 "p_tfce": f"{test.tfce_pvalue[i, j]:.6g}"})
            if ceiling is not None:
                rows[-1].update({"ceiling_lower": f"{ceiling[0][j]:.6g}",
                                 "ceiling_upper": f"{ceiling[1][j]:.6g}"})
    datasets = {"r": curves, "p_fwe": p_fwe, "cluster": labels, "cluster_p": cluster_p}
    if ceiling is not None:
        datasets.update({"ceiling_lower": ceiling[0], "ceiling_upper": ceiling[1],
                         "n_subjects": np.int64(len(brains))})
    if test is not None:
        datasets.update({"tail": np.int64(test.tail),
                         "cluster_threshold": np.float64(test.cluster_threshold)})
        if test.tfce is not None:
            datasets.update({"tfce": test.tfce_scores, "p_tfce": test.tfce_pvalue,
                             "tfce_start": np.float64(test.tfce["start"]),
                             "tfce_step": np.float64(test.tfce["step"])})
    _save(args, rows, list(rows[0]), datasets, times, curves, names, labels, cluster_p,
          ylabel="RDM correlation", ceiling=ceiling)
    return 0


def _groups(args, spec, flag, stim_ids, index):
    """``--groups`` / ``--runs`` (activation row order, or by a ``stim_id`` column) in the
    brain's order."""
    from neuroprobe.cli.main import from_io
    from neuroprobe.io.arrays import read_column

    if not spec:
        return None

    def warn(message):
        print(f"neuroprobe: warning: {message}", file=sys.stderr)

    groups = from_io(read_column, spec, list(stim_ids), flag, warn)
    if len(groups) != len(stim_ids):
        raise CLIError(f"{flag} {spec}: {len(groups)} values but {args.input} has "
                       f"{len(stim_ids)} stimuli")
    return np.asarray(groups)[index]


def run_encode(args):
    """Cross-validated time-resolved encoding of every --layer onto the --brain epochs, with
    permutation p-values (uncorrected, max-statistic and cluster-mass FWE over layers x time)
    when --n-permutations is given."""
    from sklearn.model_selection import LeaveOneGroupOut

    from neuroprobe._cv import default_cv, describe_cv
    from neuroprobe.estimators.encoding import VoxelwiseEncoder
    from neuroprobe.estimators.temporal import TimeResolved, permutation_test_time_resolved
    from neuroprobe.io.activations import read_layers_2d
    from neuroprobe.io.ids import align_ids

    if args.brain is None:
        raise CLIError("encode needs --targets, or --brain epochs.fif --time-resolved")
    for flag in ("bands", "delays", "resample"):
        if getattr(args, flag, None):
            raise CLIError(f"--{flag} is not available with --brain --time-resolved")
    if args.n_permutations < 0:
        raise CLIError(f"--n-permutations: expected an int >= 0; got {args.n_permutations}")
    if args.per_channel and not args.n_permutations:
        raise CLIError("--per-channel tests every channel: it needs --n-permutations > 0")
    if args.adjacency is not None and not args.per_channel:
        raise CLIError("--adjacency clusters over channels: it needs --per-channel")
    tfce = _tfce(args)
    if args.runs and args.groups:
        raise CLIError("give either --runs (leave-one-run-out) or --groups, not both")
    layers = list(args.layer or [])
    if not layers:
        raise CLIError("encode --time-resolved needs at least one --layer")
    feats, stim_ids = read_layers_2d(args.input, layers, with_ids=True)
    stim_ids = np.asarray(stim_ids).astype(str)
    brain = _brain(args)
    index = align_ids(brain.stim_ids, stim_ids, what=f"{args.input} stimulus IDs",
                      reference="--brain stimulus IDs")
    adjacency = _adjacency(args, brain)
    spec, flag = (args.runs, "--runs") if args.runs else (args.groups, "--groups")
    groups = _groups(args, spec, flag, stim_ids, index)
    if groups is not None and len(np.unique(groups)) < 2:
        raise CLIError(f"{flag} {spec}: grouped folds need at least 2 groups")
    if args.runs:                                    # leave-one-run-out, outer and inner
        splitter = inner = LeaveOneGroupOut()
    else:
        splitter = default_cv(args.cv, None, groups, args.seed, classifier=False)
        inner = args.inner_cv
    r = _radius(args, brain.sfreq, brain.data.shape[2])
    times = brain.times[r:brain.data.shape[2] - r]
    alphas = None if not args.alphas else [float(a) for a in args.alphas.split(",")]
    est = TimeResolved(VoxelwiseEncoder(alphas=alphas, cv=inner, scoring=args.scoring),
                       temporal_radius=r)
    Y = brain.data
    Xs = {name: feats[name][index] for name in layers}
    curves, maps = [], []
    try:
        for X in Xs.values():
            folds = []
            for tr, te in splitter.split(X, None, groups):
                g = None if groups is None else groups[tr]
                folds.append(est.fit(X[tr], Y[tr], groups=g).score_targets(X[te], Y[te]))
            m = np.nanmean(np.stack(folds), axis=0)                  # (targets, windows)
            maps.append(m)
            curves.append(np.nanmean(m, axis=0))
        test = None
        if args.n_permutations:
            test = permutation_test_time_resolved(
                est, Xs, brain, n_permutations=args.n_permutations, cv=splitter, groups=groups,
                average=not args.per_channel, keep_null=not args.per_channel,
                cluster_threshold=args.cluster_threshold, adjacency=adjacency, tfce=tfce,
                tail=args.tail,
                random_state=args.seed, n_jobs=args.n_jobs)
    except ValueError as exc:            # folds / groups that do not fit the stimuli
        raise CLIError(f"encode --time-resolved: {exc}") from None
    curves = np.stack(curves)
    rows = [{"layer": name, "time": f"{t:.6g}", "score": f"{curves[i, j]:.6g}"}
            for i, name in enumerate(layers) for j, t in enumerate(times)]
    fields = ["layer", "time", "score"]
    datasets = {"score": curves, "score_targets": np.stack(maps)}
    labels = cluster_p = None
    if test is not None and args.per_channel:
        fields, labels, cluster_p = _per_channel(rows, fields, datasets, test, brain, r)
    elif test is not None:
        labels, cluster_p = test.cluster_labels, test.cluster_pvalue
        for row, (i, j) in zip(rows, np.ndindex(*curves.shape)):
            k = int(labels[i, j])
            row.update({"statistic": f"{test.observed[i, j]:.6g}",
                        "p": f"{test.pvalue[i, j]:.6g}", "p_fwe": f"{test.pvalue_fwe[i, j]:.6g}",
                        "cluster": k, "cluster_p": f"{cluster_p[k - 1]:.6g}" if k else ""})
            if test.tfce is not None:
                row.update({"tfce": f"{test.tfce_scores[i, j]:.6g}",
                            "p_tfce": f"{test.tfce_pvalue[i, j]:.6g}"})
        fields += ["statistic", "p", "p_fwe", "cluster", "cluster_p"]
        if test.tfce is not None:
            fields += ["tfce", "p_tfce"]
    if test is not None:
        datasets.update(_test_datasets(test))
    if adjacency is not None:
        datasets["adjacency"] = adjacency.toarray()
    _save(args, rows, fields, datasets, times, curves, layers, labels, cluster_p,
          ylabel=f"{args.scoring} (mean over channels)")
    if test is not None and not args.quiet:
        n_sig = int((test.cluster_pvalue < 0.05).sum())
        where = ""
        if args.per_channel:
            sig = np.isin(test.cluster_labels, np.flatnonzero(test.cluster_pvalue < 0.05) + 1)
            where = f" in {int(sig.any(axis=(0, 2)).sum())} of {sig.shape[1]} channel(s)"
        print(f"{n_sig} cluster(s) at FWE p < 0.05{where} (threshold "
              f"{test.cluster_threshold:.4g}, tail {test.tail}, {test.n_permutations} "
              f"permutations, cv {describe_cv(splitter)})", file=sys.stdout)
        if test.tfce is not None:
            print(f"{int((test.tfce_pvalue < 0.05).sum())} sample(s) at TFCE FWE p < 0.05",
                  file=sys.stdout)
    return 0


def _adjacency(args, brain):
    """``--adjacency auto|FILE`` as a sparse (channels x channels) matrix in the order of
    ``brain.ch_names`` (None: not asked)."""
    from scipy import sparse

    from neuroprobe.solvers.adjacency import check_adjacency

    spec, n = args.adjacency, brain.data.shape[1]
    if spec is None:
        return None
    if spec == "auto":
        import mne

        info = mne.io.read_info(args.brain, verbose=False)
        info = mne.pick_info(info, [info.ch_names.index(ch) for ch in brain.ch_names])
        try:
            A, names = mne.channels.find_ch_adjacency(info, ch_type=None)
        except (ValueError, RuntimeError, KeyError) as exc:
            raise CLIError(f"--adjacency auto: mne found no channel adjacency for "
                           f"{args.brain} ({exc}); set a montage on the epochs or give a "
                           f"(channels x channels) .npy file") from None
        order = [list(names).index(ch) for ch in brain.ch_names]
        A = sparse.csr_array(A)[order][:, order]
    else:
        path = Path(spec)
        if not path.exists():
            raise CLIError(f"--adjacency: file not found: {path}")
        try:
            A = sparse.load_npz(path) if path.suffix == ".npz" else np.load(path)
        except (OSError, ValueError) as exc:
            raise CLIError(f"--adjacency {path}: not a .npy array or scipy sparse .npz "
                           f"({exc})") from None
    try:
        return check_adjacency(A, n, what=f"--adjacency {spec}")
    except ValueError as exc:
        raise CLIError(f"{exc}; the --brain channels: {', '.join(brain.ch_names[:8])}"
                       f"{' ...' if n > 8 else ''}") from None


def _test_datasets(test):
    """The HDF5 datasets of a :class:`TemporalPermutationResult` (arrays of shape (layers,
    windows), or (layers, targets, windows) per channel)."""
    out = {"statistic": test.observed, "pvalue": test.pvalue, "pvalue_fwe": test.pvalue_fwe,
           "cluster": test.cluster_labels, "cluster_p": test.cluster_pvalue,
           "cluster_threshold": np.float64(test.cluster_threshold),
           "n_permutations": np.int64(test.n_permutations), "tail": np.int64(test.tail),
           "h0_max": test.h0_max, "h0_cluster": test.h0_cluster}
    if test.tfce is not None:
        out.update({"tfce": test.tfce_scores, "pvalue_tfce": test.tfce_pvalue,
                    "tfce_start": np.float64(test.tfce["start"]),
                    "tfce_step": np.float64(test.tfce["step"]), "h0_tfce": test.h0_tfce})
    return out


def _target_names(brain, radius):
    """Names of the encoding targets of a window: channels, x lags (``CH@+0.01s``) when the
    window is wider than one sample (channel-major, as ``TimeResolved``'s targets)."""
    names = list(brain.ch_names) or [f"ch{k}" for k in range(brain.data.shape[1])]
    if radius == 0:
        return names
    lags = (np.arange(2 * radius + 1) - radius) / brain.sfreq
    return [f"{ch}@{lag:+.4g}s" for ch in names for lag in lags]


def _per_channel(rows, fields, datasets, test, brain, radius, alpha=0.05):
    """Table columns and figure spans of a per-channel test: per layer and time, how many
    targets are significant (max-statistic FWE, a significant cluster, TFCE) and the smallest
    p-values; the spans shaded are those where some target is in a significant cluster."""
    from scipy import ndimage

    sig_cluster = np.isin(test.cluster_labels, np.flatnonzero(test.cluster_pvalue < alpha) + 1)
    cluster_p = np.concatenate([[np.inf], test.cluster_pvalue])[test.cluster_labels]
    columns = {"n_fwe": (test.pvalue_fwe < alpha).sum(axis=1),
               "min_p_fwe": np.nanmin(test.pvalue_fwe, axis=1),
               "n_cluster": sig_cluster.sum(axis=1),
               "min_cluster_p": cluster_p.min(axis=1)}
    if test.tfce is not None:
        columns.update({"n_tfce": (test.tfce_pvalue < alpha).sum(axis=1),
                        "min_p_tfce": np.nanmin(test.tfce_pvalue, axis=1)})
    for row, (i, j) in zip(rows, np.ndindex(*columns["n_fwe"].shape)):
        for key, value in columns.items():
            v = value[i, j]
            row[key] = int(v) if key.startswith("n_") else ("" if np.isinf(v) else f"{v:.6g}")
    datasets["targets"] = np.asarray(_target_names(brain, radius), dtype=str)
    labels = np.zeros(sig_cluster.shape[::2], int)           # spans: some target significant
    span_p = []
    for i, any_sig in enumerate(sig_cluster.any(axis=1)):
        lab, k = ndimage.label(any_sig)
        labels[i][lab > 0] = lab[lab > 0] + len(span_p)
        span_p.extend(cluster_p[i][:, lab == m].min() for m in range(1, k + 1))
    return fields + list(columns), labels, np.asarray(span_p, dtype=float)
