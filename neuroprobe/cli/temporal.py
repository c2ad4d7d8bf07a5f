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

``encode --time-resolved --n-permutations N`` tests the curves with
:func:`neuroprobe.estimators.temporal.permutation_test_time_resolved` (stimulus permutations
through the ridge fast path, within ``--groups``; the statistic is the ``--cv``-fold CV score at
each target's best alpha, averaged over channels, as ``encode --n-permutations``' maps); the
``score`` curves stay the nested outer-CV scores.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from neuroprobe.exceptions import CLIError

__all__ = ["add_arguments", "run_rsa", "run_encode"]


def add_arguments(p, command):
    """The time-resolved flags of ``rsa`` / ``encode`` (``command``)."""
    p.add_argument("--brain", default=None,
                   help="MEG/EEG epochs (.fif, read with mne): time-resolved brain data whose "
                        "trials are averaged per stimulus (IDs: metadata 'stim_id' or event "
                        "names); needs --time-resolved")
    p.add_argument("--time-resolved", action="store_true",
                   help="one score per layer and time window of --brain")
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
                   help="cluster-forming threshold on the curves (default: the 95th "
                        "percentile of the permutation null)")


def _brain(args, reference_ids=None):
    from neuroprobe.io.epochs import read_epochs

    if not args.time_resolved:
        raise CLIError("--brain needs --time-resolved (time-resolved brain data)")
    path = Path(args.brain)
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


def _radius(args, sfreq, n_times):
    r = int(round(args.temporal_radius * sfreq))
    if r < 0 or 2 * r + 1 > n_times:
        raise CLIError(f"--temporal-radius {args.temporal_radius} s is {r} samples: wider than "
                       f"the epoch ({n_times} samples at {sfreq:g} Hz)")
    return r


def _save(args, rows, fields, datasets, times, curves, names, labels=None, cluster_p=None,
          ylabel="score"):
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
                                ylabel=ylabel)
        save_figure(fig, args.figure)
    if not args.quiet:
        for name, c in zip(names, curves):
            k = int(np.nanargmax(c))
            print(f"{name}: peak {c[k]:.3f} at {times[k]:.3f} s", file=sys.stdout)


def run_rsa(args, load_source):
    """Time-resolved RSA of every --model RDM against the --brain epochs, with cluster FWE.

    ``load_source(spec, flag, ids_spec)`` reads one --model RDM source (``neuroprobe rsa``'s
    reader, passed in so that this module does not import the command module).
    """
    from neuroprobe.io.ids import align_ids
    from neuroprobe.rsa import select_rdms
    from neuroprobe.solvers.temporal import (
        cluster_fwe,
        compare_rdms,
        max_stat_fwe,
        permutation_null,
        window_rdms,
    )

    if args.brain is None:
        raise CLIError("rsa needs --target (RDMs), or --brain epochs.fif --time-resolved")
    if args.method not in ("spearman", "pearson"):
        raise CLIError(f"--method {args.method}: time-resolved RSA supports spearman or pearson")
    sources = [load_source(spec, "--model", args.model_ids) for spec in args.model]
    brain = _brain(args)
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
    brain_rdms = window_rdms(brain.data, r, args.brain_metric)
    times = brain.times[r:brain.data.shape[2] - r]
    curves = compare_rdms(models, brain_rdms, args.method)
    p_fwe = np.full(curves.shape, np.nan)
    labels, cluster_p = np.zeros(curves.shape, int), np.zeros(0)
    if args.n_permutations > 0:
        null = permutation_null(models, brain_rdms, args.n_permutations, args.method,
                                random_state=args.seed)
        p_fwe = max_stat_fwe(curves, null)
        thr = (args.cluster_threshold if args.cluster_threshold is not None
               else float(np.quantile(null, 0.95)))
        labels, cluster_p = cluster_fwe(curves, null, thr, tail=1)
    rows = []
    for i, name in enumerate(names):
        for j, t in enumerate(times):
            k = int(labels[i, j])
            rows.append({"model": name, "time": f"{t:.6g}", "r": f"{curves[i, j]:.6g}",
                         "p_fwe": f"{p_fwe[i, j]:.6g}", "cluster": k,
                         "cluster_p": f"{cluster_p[k - 1]:.6g}" if k else ""})
    datasets = {"r": curves, "p_fwe": p_fwe, "cluster": labels, "cluster_p": cluster_p}
    _save(args, rows, list(rows[0]), datasets, times, curves, names, labels, cluster_p,
          ylabel="RDM correlation")
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
                cluster_threshold=args.cluster_threshold, random_state=args.seed,
                n_jobs=args.n_jobs)
    except ValueError as exc:            # folds / groups that do not fit the stimuli
        raise CLIError(f"encode --time-resolved: {exc}") from None
    curves = np.stack(curves)
    rows = [{"layer": name, "time": f"{t:.6g}", "score": f"{curves[i, j]:.6g}"}
            for i, name in enumerate(layers) for j, t in enumerate(times)]
    fields = ["layer", "time", "score"]
    datasets = {"score": curves, "score_targets": np.stack(maps)}
    labels = cluster_p = None
    if test is not None:
        labels, cluster_p = test.cluster_labels, test.cluster_pvalue
        for row, (i, j) in zip(rows, np.ndindex(*curves.shape)):
            k = int(labels[i, j])
            row.update({"statistic": f"{test.observed[i, j]:.6g}",
                        "p": f"{test.pvalue[i, j]:.6g}", "p_fwe": f"{test.pvalue_fwe[i, j]:.6g}",
                        "cluster": k, "cluster_p": f"{cluster_p[k - 1]:.6g}" if k else ""})
        fields += ["statistic", "p", "p_fwe", "cluster", "cluster_p"]
        datasets.update({"statistic": test.observed, "pvalue": test.pvalue,
                         "pvalue_fwe": test.pvalue_fwe, "cluster": labels,
                         "cluster_p": cluster_p,
                         "cluster_threshold": np.float64(test.cluster_threshold),
                         "n_permutations": np.int64(test.n_permutations)})
    _save(args, rows, fields, datasets, times, curves, layers, labels, cluster_p,
          ylabel=f"{args.scoring} (mean over channels)")
    if test is not None and not args.quiet:
        n_sig = int((cluster_p < 0.05).sum())
        print(f"{n_sig} cluster(s) at FWE p < 0.05 (threshold {test.cluster_threshold:.4g}, "
              f"{test.n_permutations} permutations, cv {describe_cv(splitter)})",
              file=sys.stdout)
    return 0
