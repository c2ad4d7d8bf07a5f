"""``neuroprobe rdm`` (compute RDMs) and ``neuroprobe rsa`` (compare them, with inference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroprobe.cli import temporal
from neuroprobe.cli.main import CLIError, add_command, from_io
from neuroprobe.io.arrays import read_arrays, read_column, split_spec, write_table

RDM_EPILOG = """\
examples:
  # one RDM per layer of an activation file (from 'neuroprobe extract')
  neuroprobe rdm alexnet.act.h5 --layer conv1 --layer fc7 --metric correlation --out alexnet.rdm.h5
  # RDM of brain responses (n_stimuli x n_voxels) stored in .npy, averaging categories
  neuroprobe rdm roi_betas.npy --conditions stimuli.csv:category --out roi.rdm.h5
  # crossnobis RDM of GLM betas (one row per condition and run), runs from a CSV column
  neuroprobe rdm betas.npy --method crossnobis --conditions design.csv:condition \\
      --runs design.csv:run --out roi_crossnobis.rdm.h5
"""

RSA_EPILOG = """\
RDM sources: [NAME=]FILE.rdm.h5 (neuroprobe or DNNBrain; FILE.rdm.h5:RDM for one RDM), FILE.npy,
FILE.npz:KEY, FILE.h5:DATASET; condensed (m,) or square (n, n) RDMs, or stacks of them. NAME= (or
the file stem) fills the 'source' column. A --target array of subjects x n x n (or subjects x
sessions x n x n, averaged over sessions) is read as subject RDMs: rows 'subject' (one per
subject), 'subject_mean' (mean, SEM, one-sided t-test and Wilcoxon test across subjects > 0, t-test
below the lower noise ceiling) and 'group' (the mean subject RDM, permutation p-values); the
'level' column says which. The noise ceiling is always at subject level.
Stimulus IDs: .rdm.h5 files store them, .npz/.h5 files may hold a 'stim_ids' array; sources are
aligned to the first source with IDs (reordered; different stimulus sets are refused). Give IDs
for plain arrays with --model-ids / --target-ids (FILE.npy, FILE.npz:KEY, FILE.txt,
FILE.csv[:COLUMN], events.tsv[:COLUMN]; default column stim_id).
examples:
  neuroprobe rsa --model alexnet.rdm.h5 --target rdms.npz:hIT_subject_session \\
      --target-ids stimuli.csv:stim_id --n-permutations 10000 --out rsa.csv
  neuroprobe rsa --model seed0=a.rdm.h5 --model seed1=b.rdm.h5 --target roi.rdm.h5 --out rsa.csv
  # bootstrap over subjects and stimuli (estimates, CIs, model differences with FDR / FWE)
  neuroprobe rsa --model layers.rdm.h5 --target rdms.npz:hIT_subject_session \\
      --bootstrap both --n-bootstrap 1000 --method pearson --out rsa_bootstrap.csv
"""


_COMMANDS = {  # help, description and epilog of each subcommand
    "rdm": dict(
        help="compute representational dissimilarity matrices",
        description="Compute RDMs from DNN activations (.act.h5) or arrays (.npy/.npz/.h5).",
        epilog=RDM_EPILOG,
    ),
    "rsa": dict(
        help="compare RDMs with permutation p-values, a noise ceiling or bootstrap inference",
        description="Compare model RDMs with target (brain) RDMs; stimulus-label permutation "
                    "p-values (family-wise over all pairs) and a noise ceiling; CSV output.",
        epilog=RSA_EPILOG,
    ),
}


def register(subparsers):
    """Add the ``rdm`` and ``rsa`` subcommands."""

    p = add_command(subparsers, "rdm", run_rdm, {}, **_COMMANDS["rdm"])
    p.add_argument("input", help="activation file (.act.h5) or array file (.npy, .npz, .h5)")
    p.add_argument("--layer", action="append", default=None,
                   help="layer of an .act.h5 file (repeatable; default: all layers)")
    p.add_argument("--dataset", action="append", default=None,
                   help="array name in an .npz/.h5 file (repeatable; default: all 2-D+ arrays)")
    p.add_argument("--metric", default="correlation",
                   help="correlation, cosine, euclidean, sqeuclidean, mahalanobis or any scipy "
                        "pdist metric (default: correlation)")
    p.add_argument("--ids", default=None,
                   help="stimulus IDs of the rows of an array input (FILE.npy, FILE.npz:KEY, "
                        "FILE.txt, FILE.csv[:COLUMN], events.tsv[:COLUMN]); stored in the "
                        ".rdm.h5 (.npz/.h5 inputs: their 'stim_ids' array by default)")
    p.add_argument("--conditions", default=None,
                   help="CSV:COLUMN with one row per stimulus: average patterns per condition "
                        "(rows matched by the CSV's stim_id column when it has one)")
    p.add_argument("--zscore", action="store_true", help="standardise each feature first")
    p.add_argument("--backend", default="numpy", choices=["numpy", "torch"])
    _add_crossnobis_arguments(p)

    p = add_command(subparsers, "rsa", run_rsa, {}, **_COMMANDS["rsa"])
    p.add_argument("--model", action="append", required=True,
                   help="model RDM source [NAME=]FILE[:KEY] (repeatable)")
    p.add_argument("--target", action="append", default=None,
                   help="target RDM source [NAME=]FILE[:KEY] (repeatable); subjects [x sessions] "
                        "x n x n arrays give subject-level rows")
    p.add_argument("--model-ids", default=None,
                   help="stimulus IDs of model RDMs that do not store them (FILE[:KEY])")
    p.add_argument("--target-ids", default=None,
                   help="stimulus IDs of target RDMs that do not store them (FILE[:KEY], e.g. "
                        "stimuli.csv:stim_id)")
    p.add_argument("--method", default="spearman",
                   help="pearson, spearman, kendall_tau_a, kendall_tau_b, rho_a, cosine "
                        "(default: spearman)")
    p.add_argument("--n-permutations", type=int, default=1000,
                   help="stimulus-label permutations (0: no p-values; default 1000)")
    p.add_argument("--noise-ceiling", default=None,
                   help="subject RDMs (n_subjects, ...) for the noise ceiling; 4-D arrays "
                        "(subjects, sessions, n, n) are averaged over sessions (default: the "
                        "subjects of a subject-level --target)")
    p.add_argument("--n-bootstrap", type=int, default=0,
                   help="bootstrap resamples of stimuli for noise-ceiling intervals")
    p.add_argument("--backend", default="numpy", choices=["numpy", "torch"])
    _add_bootstrap_arguments(p)
    temporal.add_arguments(p, "rsa")  # --brain epochs.fif --time-resolved


# ------------------------------------------------------------------------------------- input
def _read_conditions(spec, n, stim_ids=None):
    """Condition labels of the ``n`` stimuli; aligned by the CSV's ``stim_id`` when both exist."""
    import sys

    if split_spec(spec)[1] is None:
        raise CLIError("--conditions must be CSV:COLUMN")

    def warn(message):
        print(f"neuroprobe rdm: warning: {message}", file=sys.stderr)

    values = from_io(read_column, spec, stim_ids, "--conditions", warn, numeric=False)
    if values.size != n:
        raise CLIError(f"--conditions: {spec} has {values.size} rows for {n} stimuli")
    return values


def _rdms_or_refuse(arrays, args, conditions, stim_ids):
    """compute_rdm, refusing constant patterns (undefined distances) with the stimuli named."""
    import warnings

    from neuroprobe.rsa import ConstantPatternError, ConstantPatternWarning, compute_rdm

    def refuse(problem):
        named = [str(stim_ids[i]) if stim_ids is not None else f"row {i}" for i in problem.rows]
        shown = ", ".join(named[:5]) + (", ..." if len(named) > 5 else "")
        what = "all zero" if args.metric == "cosine" else "constant over features"
        return CLIError(
            f"{problem.name}: {len(named)} pattern(s) are {what} ({shown}); "
            f"their {args.metric} distances are undefined (NaN). Use --metric euclidean, or leave "
            "those stimuli out"
        )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConstantPatternWarning)
        try:
            rdms = compute_rdm(arrays, args.metric, conditions=conditions, zscore=args.zscore,
                               backend=args.backend, device=args.device)
        except ConstantPatternError as exc:
            raise refuse(exc) from None
    for w in caught:
        if isinstance(w.message, ConstantPatternWarning):
            raise refuse(w.message)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return rdms


def run_rdm(args):
    """Compute RDMs and write them to an .rdm.h5 file."""
    from neuroprobe.io.rdm import save_rdms

    path = Path(args.input)
    stim_ids = None
    if path.name.endswith(".act.h5"):
        from neuroprobe.io.activations import open_activations

        with open_activations(path) as f:
            layers = args.layer or f.layers
            arrays = {layer: f.read(layer) for layer in layers}
            stim_ids = list(f.stim_ids)
        if args.ids:
            raise CLIError("--ids is for array inputs; an .act.h5 file stores its stimulus IDs")
    else:
        if args.layer:
            raise CLIError("--layer applies to .act.h5 files; use --dataset for arrays")
        arrays = from_io(read_arrays, path, args.dataset)
        if not arrays:
            raise CLIError(f"{path}: no 2-D array found")
        from neuroprobe.io.ids import IDS_KEY, read_ids

        if args.ids:
            stim_ids = list(read_ids(args.ids, "--ids"))
        elif path.suffix.lower() in (".npz", ".h5", ".hdf5"):
            try:  # the file's own 'stim_ids' array, if any
                stim_ids = list(read_ids(f"{path}:{IDS_KEY}", "--ids"))
            except KeyError:
                stim_ids = None
    n = {a.shape[0] for a in arrays.values()}
    if len(n) > 1:
        raise CLIError(f"{path}: arrays have different numbers of rows (stimuli): {sorted(n)}")
    n = n.pop()
    if stim_ids is not None and len(stim_ids) != n:
        raise CLIError(f"{path}: {len(stim_ids)} stimulus IDs for {n} rows")
    row_ids = stim_ids
    conditions = _read_conditions(args.conditions, n, stim_ids) if args.conditions else None
    if conditions is not None:
        stim_ids = list(np.unique(conditions))
    if args.metric in ("crossnobis", "poisson_cv"):
        rdms = _crossnobis_rdms(args, arrays, n, conditions, row_ids)
    else:
        rdms = _rdms_or_refuse({k: np.asarray(v).reshape(n, -1) for k, v in arrays.items()},
                               args, conditions, stim_ids)
    save_rdms(args.out, rdms, names=list(arrays), stim_ids=stim_ids, metric=args.metric,
              attrs={"source": str(path), "zscore": bool(args.zscore)})
    if not args.quiet:
        print(f"wrote {len(arrays)} RDM(s) of {rdms.shape[1]} pairs to {args.out}")
    return 0


class _Source:
    """RDMs of one ``--model`` / ``--target`` argument.

    ``rdms`` (k, m) are the RDMs compared at group level (for a subject-level target, the mean of
    its subject RDMs); ``subjects`` maps a target name to its (n_subjects, m) subject RDMs.
    """

    def __init__(self, spec, label, names, rdms, ids=None, subjects=None):
        self.spec, self.label, self.names, self.rdms = spec, label, names, rdms
        self.ids, self.subjects = ids, subjects or {}

    def select(self, index):
        from neuroprobe.rsa import select_rdms

        self.rdms = select_rdms(self.rdms, index)
        self.subjects = {k: select_rdms(v, index) for k, v in self.subjects.items()}


_SUFFIXES = (".rdm.h5", ".rdm.hdf5", ".npy", ".npz", ".h5", ".hdf5")


def _label_and_spec(spec):
    """``NAME=FILE[:KEY]`` -> (NAME, FILE[:KEY]); else (file stem, spec)."""
    text = str(spec)
    name, sep, rest = text.partition("=")
    if sep and name and "/" not in name and not Path(text).exists():
        return name, rest
    path, _ = split_spec(text)
    stem = Path(path).name
    for suffix in _SUFFIXES:
        if stem.lower().endswith(suffix):
            return stem[: -len(suffix)], text
    return stem, text


def _pick_array(path, key, flag):
    """One named array of an .npy / .npz / .h5 file (and its stored stimulus IDs, if any)."""
    from neuroprobe.io.ids import IDS_KEY

    path = Path(path)
    if not path.exists():
        raise CLIError(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if key:
            raise CLIError(f"{path}: a .npy file holds one array; no name can be selected")
        return path.stem, np.load(path), None
    if suffix == ".npz":
        with np.load(path) as z:
            candidates = [k for k in z.files if k != IDS_KEY and z[k].dtype.kind in "fiu"]
            arrays = {k: z[k] for k in ([key] if key else candidates) if k in z.files}
            ids = z[IDS_KEY] if IDS_KEY in z.files else None
            available = z.files
    elif suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as f:
            available = [k for k, v in f.items() if isinstance(v, h5py.Dataset)]
            names = [key] if key else [k for k in available
                                       if k != IDS_KEY and f[k].dtype.kind in "fiu"]
            arrays = {k: f[k][()] for k in names if k in available}
            ids = f[IDS_KEY][()] if IDS_KEY in available else None
    else:
        raise CLIError(f"{flag} {path}: unsupported file type (expected .rdm.h5, .npy, "
                       ".npz[:KEY], .h5[:DATASET])")
    if key and key not in arrays:
        raise CLIError(f"{flag} {path}: no array {key!r}; available: {', '.join(available)}")
    if not key:
        if len(arrays) != 1:
            raise CLIError(f"{flag} {path} holds {len(arrays) or 'no'} RDM arrays: name one as "
                           f"{path}:KEY; available: {', '.join(available)}")
    name, array = next(iter(arrays.items()))
    return name, array, ids


def _load_rdm_source(spec, flag="--model", ids_spec=None):
    """A :class:`_Source` from an RDM source string (see ``RSA_EPILOG``)."""
    from neuroprobe.io.ids import as_ids, read_ids
    from neuroprobe.io.rdm import load_rdms
    from neuroprobe.rsa import to_condensed

    label, spec = _label_and_spec(spec)
    path, key = split_spec(spec)
    subjects = None
    if path.endswith(".rdm.h5") or path.endswith(".rdm.hdf5"):
        if not Path(path).exists():
            raise CLIError(f"file not found: {path}")
        data = load_rdms(path)
        ids = data.stim_ids
        if key:
            names, rdms = [key], data[key][None]
        else:
            names, rdms = list(data.names), data.rdms
    else:
        name, array, ids = _pick_array(path, key, flag)
        array = np.asarray(array, dtype=np.float64)
        if flag == "--target" and array.ndim in (3, 4):  # subjects [x sessions] x n x n
            if array.shape[-1] != array.shape[-2]:
                raise CLIError(f"--target {spec}: a 3-D/4-D target must be subjects [x sessions] "
                               f"x n x n square RDMs; got shape {array.shape}")
            subj = to_condensed(array.mean(axis=1) if array.ndim == 4 else array, name)
            if subj.shape[0] < 2:
                raise CLIError(f"--target {spec}: subject-level RSA needs at least 2 subjects")
            subjects = {name: subj}
            names, rdms = [name], subj.mean(axis=0)[None]
        else:
            V = np.atleast_2d(to_condensed(array, name))
            names = [name] if V.shape[0] == 1 else [f"{name}[{i}]" for i in range(V.shape[0])]
            rdms = V
    from neuroprobe.solvers.rdm import n_from_pairs

    n = n_from_pairs(rdms.shape[1])
    if ids is None and ids_spec:
        ids = read_ids(ids_spec, f"{flag}-ids")
    if ids is not None:
        ids = as_ids(ids, f"{flag} {spec} stimulus IDs")
        if ids.size != n:
            raise CLIError(f"{flag} {spec}: {ids.size} stimulus IDs for RDMs of {n} stimuli")
    return _Source(spec, label, names, rdms, ids, subjects)


def _load_sources(args):
    """All model and target sources, aligned by stimulus IDs to the first source that has them."""
    import sys

    from neuroprobe.io.ids import align_ids

    models = [_load_rdm_source(s, "--model", args.model_ids) for s in args.model]
    targets = [_load_rdm_source(s, "--target", args.target_ids) for s in args.target]
    flagged = [("--model", m) for m in models] + [("--target", t) for t in targets]
    lengths = {src.rdms.shape[1] for _, src in flagged}
    with_ids = [(flag, src) for flag, src in flagged if src.ids is not None]
    if with_ids:
        ref_flag, ref = with_ids[0]
        for flag, src in flagged:
            if src is ref:
                continue
            if src.ids is None:
                print(f"neuroprobe rsa: warning: {flag} {src.spec} has no stimulus IDs; its "
                      f"rows are taken to be in the order of {ref_flag} {ref.spec} (give "
                      f"{flag}-ids FILE[:KEY] to check)", file=sys.stderr)
                continue
            try:
                src.select(align_ids(ref.ids, src.ids, what=f"{flag} {src.spec}",
                                     reference=f"{ref_flag} {ref.spec}"))
            except ValueError as exc:
                raise CLIError(str(exc)) from None
    elif len(lengths) > 1:
        raise CLIError(f"RDMs of different sizes in {[s.spec for _, s in flagged]}: not the "
                       "same stimuli")
    lengths = {src.rdms.shape[1] for _, src in flagged}
    if len(lengths) > 1:
        from neuroprobe.solvers.rdm import n_from_pairs

        sizes = sorted(n_from_pairs(m) for m in lengths)
        raise CLIError(f"model and target RDMs have different numbers of stimuli {sizes}: not "
                       "the same stimuli")
    return models, targets


def _fmt(v):
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.6g}"


_HEADER = ["source", "model", "target_source", "target", "level", "subject", "n_subjects",
           "method", "score", "sem", "t", "pvalue", "pvalue_fwe", "pvalue_t",
           "pvalue_wilcoxon", "pvalue_vs_ceiling", "n_permutations", "noise_ceiling_level",
           "noise_ceiling_lower", "noise_ceiling_upper"]
_CI_HEADER = ["lower_ci_low", "lower_ci_high", "upper_ci_low", "upper_ci_high"]


def _group_scores(args, models, targets):
    """(score, pvalue, pvalue_fwe) of every (model, target) pair of group RDMs."""
    from neuroprobe.rsa import compare_rdms, permutation_test_rdms

    if args.n_permutations > 0:
        res = permutation_test_rdms(models, targets, args.method, args.n_permutations,
                                    random_state=args.seed, n_jobs=args.n_jobs,
                                    backend=args.backend, device=args.device)
        return res["score"], res["pvalue"], res["pvalue_fwe"]
    score = np.atleast_2d(compare_rdms(models, targets, args.method, backend=args.backend,
                                       device=args.device))
    return score, np.full_like(score, np.nan), np.full_like(score, np.nan)


def _given_noise_ceiling(args, target_rows):
    """The ``--noise-ceiling`` of the subject RDMs given (or None)."""
    import sys

    from neuroprobe.rsa import noise_ceiling

    if not args.noise_ceiling:
        return None
    _, spec = _label_and_spec(args.noise_ceiling)
    path, key = split_spec(spec)
    _, subjects, _ = _pick_array(path, key, "--noise-ceiling")
    nc = noise_ceiling(subjects, args.method, n_bootstrap=args.n_bootstrap,
                       random_state=args.seed)
    if any(not src.subjects for src, _ in target_rows):
        print("neuroprobe rsa: warning: the noise ceiling is at subject level (each subject's "
              "RDM against the others') but a --target is one group RDM (level 'group'); for "
              "scores at the ceiling's level give the subject RDMs as --target "
              "FILE.npz:KEY (subjects [x sessions] x n x n)", file=sys.stderr)
    return nc


def _ceiling_cells(ceiling, with_ci):
    """The noise-ceiling cells of a CSV row."""
    if ceiling is None:
        return ["", "", ""] + ([""] * 4 if with_ci else [])
    cells = ["subject", _fmt(ceiling.lower), _fmt(ceiling.upper)]
    if with_ci:
        cells += ([_fmt(v) for v in (*ceiling.lower_ci, *ceiling.upper_ci)]
                  if ceiling.lower_ci is not None else [""] * 4)
    return cells


def _per_target(args, models, target_rows, nc, with_ci):
    """(noise-ceiling cells, subject RDMs, subject-level test) of each target."""
    from neuroprobe.rsa import noise_ceiling, subject_level_test

    out = []
    for src, name in target_rows:
        subj = src.subjects.get(name)
        ceiling = nc
        if subj is not None and ceiling is None:
            ceiling = noise_ceiling(subj, args.method, n_bootstrap=args.n_bootstrap,
                                    random_state=args.seed)
        test = None
        if subj is not None:
            test = subject_level_test(models, subj, args.method,
                                      None if ceiling is None else ceiling.lower,
                                      backend=args.backend, device=args.device)
        out.append((_ceiling_cells(ceiling, with_ci), subj, test))
    return out


def _table(args, model_rows, target_rows, scores, per_target):
    """The CSV rows: model-major, then target, then level (subject_mean, group, subject)."""
    score, pvalue, pvalue_fwe = scores
    table = []
    for i, (source, model) in enumerate(model_rows):
        for t, (src, name) in enumerate(target_rows):
            nc_cells, subj, test = per_target[t]
            key = [source, model, src.label, name]
            n_subj = "" if subj is None else str(subj.shape[0])
            if test is not None:
                table.append(key + ["subject_mean", "", n_subj, args.method,
                                    _fmt(test["mean"][i]), _fmt(test["sem"][i]),
                                    _fmt(test["t"][i]), "", "", _fmt(test["pvalue_t"][i]),
                                    _fmt(test["pvalue_wilcoxon"][i]),
                                    _fmt(test["pvalue_vs_ceiling"][i]), "", *nc_cells])
            table.append(key + ["group", "", n_subj, args.method, _fmt(score[i, t]), "", "",
                                _fmt(pvalue[i, t]), _fmt(pvalue_fwe[i, t]), "", "", "",
                                args.n_permutations, *nc_cells])
            if test is not None:
                for s_idx, value in enumerate(test["scores"][i]):
                    table.append(key + ["subject", str(s_idx), n_subj, args.method,
                                        _fmt(value), *[""] * 7, *nc_cells])
    return table


def _print_table(args, table):
    for row in table:
        if row[4] != "subject":
            print(f"{row[0]}:{row[1]} vs {row[2]}:{row[3]} [{row[4]}] {args.method} "
                  f"{row[8]}" + (f" +- {row[9]} (SEM), p_t {row[13]}" if row[9] else "")
                  + (f", p {row[11]}" if row[11] else "")
                  + (f"; noise ceiling (subject level) {row[18]}..{row[19]}"
                     if row[18] else ""))
    print(f"wrote {len(table)} row(s) to {args.out}")


def run_rsa(args):
    """Compare RDMs; write one CSV row per (model, target[, subject]) and level."""
    temporal.refuse_tail_tfce(args)
    if getattr(args, "bootstrap", None):
        return _run_bootstrap(args)
    if args.brain is not None or args.target is None:  # refuses a missing --target
        return temporal.run_rsa(args, _load_rdm_source)
    model_src, target_src = _load_sources(args)
    models = np.vstack([m.rdms for m in model_src])
    targets = np.vstack([t.rdms for t in target_src])
    model_rows = [(m.label, name) for m in model_src for name in m.names]
    target_rows = [(t, name) for t in target_src for name in t.names]
    scores = _group_scores(args, models, targets)
    nc = _given_noise_ceiling(args, target_rows)
    with_ci = nc is not None and nc.lower_ci is not None
    per_target = _per_target(args, models, target_rows, nc, with_ci)
    table = _table(args, model_rows, target_rows, scores, per_target)
    write_table(args.out, table, _HEADER + (_CI_HEADER if with_ci else []))
    if not args.quiet:
        _print_table(args, table)
    return 0


# ------------------------------------------------------------------------ crossnobis (rdm)
def _add_crossnobis_arguments(p):
    """``--method`` (alias of ``--metric``, e.g. ``crossnobis``) and ``--runs``."""
    import argparse

    p.add_argument("--method", dest="metric", default=argparse.SUPPRESS,
                   help="alias of --metric; 'crossnobis' and 'poisson_cv' (cross-validated) "
                        "need --conditions and --runs")
    p.add_argument("--runs", default=None,
                   help="CSV:COLUMN (or .npy / .txt) with the run (partition) of each row, for "
                        "--method crossnobis / poisson_cv (leave-one-run-out cross-validated "
                        "distances)")


def _crossnobis_rdms(args, arrays, n, conditions, row_ids):
    """Cross-validated (crossnobis, poisson_cv) RDMs of each array, conditions and runs from
    their columns."""
    import sys

    from neuroprobe.rsa import compute_rdm

    if conditions is None or not args.runs:
        raise CLIError(f"--method {args.metric} needs --conditions CSV:COLUMN (the condition "
                       "of each row) and --runs CSV:COLUMN (its run)")
    if args.zscore:
        raise CLIError(f"--zscore does not apply to --method {args.metric}")

    def warn(message):
        print(f"neuroprobe rdm: warning: {message}", file=sys.stderr)

    runs = from_io(read_column, args.runs, row_ids, "--runs", warn, numeric=False)
    if runs.size != n:
        raise CLIError(f"--runs: {args.runs} has {runs.size} rows for {n} rows of data")
    try:
        return np.stack([compute_rdm(np.asarray(v).reshape(n, -1), args.metric,
                                     conditions=conditions, cv_groups=runs)
                         for v in arrays.values()])
    except ValueError as exc:
        raise CLIError(f"--method {args.metric}: {exc}") from None


# ------------------------------------------------------------------------ bootstrap (rsa)
_BOOT_HEADER = ["model_source", "model", "other", "target_source", "target", "kind", "method",
                "unit", "estimate", "sem", "ci_low", "ci_high", "ci_percentile_low",
                "ci_percentile_high", "pvalue", "pvalue_fdr", "pvalue_fwe",
                "pvalue_noise_ceiling", "noise_ceiling_lower", "noise_ceiling_upper", "dof",
                "n_bootstrap", "n_valid"]


def _add_bootstrap_arguments(p):
    """``--bootstrap subjects|stimuli|both``."""
    p.add_argument("--bootstrap", default=None, choices=["subjects", "stimuli", "both"],
                   help="bootstrap inference over subjects, stimuli or both (dual bootstrap, "
                        "noise ceiling in every sample) for subject-level targets; writes one "
                        "row per model and per model pair (estimate, SEM, CIs, p-values vs 0 "
                        "and vs the lower noise ceiling, pairwise with FDR / FWE); "
                        "--n-bootstrap samples (default 1000), --method pearson, cosine, "
                        "spearman, rho_a, corr_cov or cosine_cov")


def _run_bootstrap(args):
    """``neuroprobe rsa --bootstrap UNIT``: bootstrap_rsa per subject-level target."""
    import warnings

    from neuroprobe.exceptions import BootstrapWarning
    from neuroprobe.rsa_inference import bootstrap_rsa

    model_src, target_src = _load_sources(args)
    models = np.vstack([m.rdms for m in model_src])
    names = [f"{m.label}:{name}" for m in model_src for name in m.names]
    rows_of = {f"{m.label}:{name}": (m.label, name) for m in model_src for name in m.names}
    targets = [(t, name, subj) for t in target_src for name, subj in t.subjects.items()]
    if not targets:
        raise CLIError("--bootstrap needs subject RDMs as --target (an array of subjects "
                       "[x sessions] x n x n, e.g. FILE.npz:KEY)")
    n_boot = args.n_bootstrap or 1000
    table = []
    for src, tname, subj in targets:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BootstrapWarning)
            res = from_io(bootstrap_rsa, models, subj, args.method, args.bootstrap, n_boot,
                          random_state=args.seed, names=names, backend=args.backend,
                          device=args.device)
        if not args.quiet:
            for w in caught:
                print(f"neuroprobe rsa: warning: {w.message}")
        for row in res.rows():
            source, model = rows_of[row["model"]]
            other = row["other"]
            table.append([source, model, rows_of[other][1] if other else "", src.label,
                          tname] + [row[k] if isinstance(row[k], str) else
                                    (str(row[k]) if isinstance(row[k], (int, np.integer))
                                     else _fmt(float(row[k]))) for k in _BOOT_HEADER[5:]])
        if not args.quiet:
            for i, name in enumerate(names):
                print(f"{name} vs {src.label}:{tname} [{args.bootstrap} bootstrap, "
                      f"{res.n_valid}/{res.n_bootstrap}] {res.method} {res.mean[i]:.4g} "
                      f"+- {res.sem[i]:.3g} (SEM), {100 * res.ci_level:.0f}% CI "
                      f"{res.ci[i, 0]:.4g}..{res.ci[i, 1]:.4g}, p {res.pvalue_zero[i]:.3g}, "
                      f"p vs lower noise ceiling {res.pvalue_noise_ceiling[i]:.3g}")
    write_table(args.out, table, _BOOT_HEADER)
    if not args.quiet:
        print(f"wrote {len(table)} row(s) to {args.out}")
    return 0
