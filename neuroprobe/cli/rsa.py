"""``neuroprobe rdm`` (compute RDMs) and ``neuroprobe rsa`` (compare them, with inference)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from neuroprobe.cli.main import CLIError, add_common_arguments

RDM_EPILOG = """\
examples:
  # one RDM per layer of an activation file (from 'neuroprobe extract')
  neuroprobe rdm alexnet.act.h5 --layer conv1 --layer fc7 --metric correlation --out alexnet.rdm.h5
  # RDM of brain responses (n_stimuli x n_voxels) stored in .npy, averaging categories
  neuroprobe rdm roi_betas.npy --conditions stimuli.csv:category --out roi.rdm.h5
"""

RSA_EPILOG = """\
RDM sources: FILE.rdm.h5 (neuroprobe or DNNBrain; FILE.rdm.h5:NAME for one RDM), FILE.npy,
FILE.npz:KEY, FILE.h5:DATASET; condensed (m,) or square (n, n) RDMs, or stacks of them.
example:
  neuroprobe rsa --model alexnet.rdm.h5 --target rdms.npz:hIT \\
      --noise-ceiling rdms.npz:hIT_subject_session --n-permutations 10000 --out rsa.csv
"""


def register(subparsers):
    """Add the ``rdm`` and ``rsa`` subcommands."""
    import argparse

    p = subparsers.add_parser(
        "rdm", help="compute representational dissimilarity matrices",
        description="Compute RDMs from DNN activations (.act.h5) or arrays (.npy/.npz/.h5).",
        epilog=RDM_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="activation file (.act.h5) or array file (.npy, .npz, .h5)")
    p.add_argument("--layer", action="append", default=None,
                   help="layer of an .act.h5 file (repeatable; default: all layers)")
    p.add_argument("--dataset", action="append", default=None,
                   help="array name in an .npz/.h5 file (repeatable; default: all 2-D+ arrays)")
    p.add_argument("--metric", default="correlation",
                   help="correlation, cosine, euclidean, sqeuclidean, mahalanobis or any scipy "
                        "pdist metric (default: correlation)")
    p.add_argument("--conditions", default=None,
                   help="CSV:COLUMN with one row per stimulus: average patterns per condition")
    p.add_argument("--zscore", action="store_true", help="standardise each feature first")
    p.add_argument("--backend", default="numpy", choices=["numpy", "torch"])
    add_common_arguments(p)
    p.set_defaults(func=run_rdm)

    p = subparsers.add_parser(
        "rsa", help="compare RDMs with permutation p-values and a noise ceiling",
        description="Compare model RDMs with target (brain) RDMs; stimulus-label permutation "
                    "p-values (family-wise over all pairs) and a noise ceiling; CSV output.",
        epilog=RSA_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", action="append", required=True, help="model RDM source (repeatable)")
    p.add_argument("--target", action="append", required=True,
                   help="target RDM source (repeatable)")
    p.add_argument("--method", default="spearman",
                   help="pearson, spearman, kendall_tau_a, kendall_tau_b, rho_a, cosine")
    p.add_argument("--n-permutations", type=int, default=1000,
                   help="stimulus-label permutations (0: no p-values; default 1000)")
    p.add_argument("--noise-ceiling", default=None,
                   help="subject RDMs (n_subjects, ...) for the noise ceiling; 4-D arrays "
                        "(subjects, sessions, n, n) are averaged over sessions")
    p.add_argument("--n-bootstrap", type=int, default=0,
                   help="bootstrap resamples of stimuli for noise-ceiling intervals")
    p.add_argument("--backend", default="numpy", choices=["numpy", "torch"])
    add_common_arguments(p)
    p.set_defaults(func=run_rsa)


# ------------------------------------------------------------------------------------- input
def _split_spec(spec):
    path, _, key = str(spec).partition(":")
    if key and not Path(path).exists() and Path(spec).exists():  # a colon in the file name
        return spec, None
    return path, key or None


def _read_arrays(path, keys=None):
    """Named arrays of an .npy / .npz / .h5 file."""
    path = Path(path)
    if not path.exists():
        raise CLIError(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if keys:
            raise CLIError(f"{path}: a .npy file holds one array; no name can be selected")
        return {path.stem: np.load(path)}
    if suffix == ".npz":
        with np.load(path) as z:
            names = keys or [k for k in z.files if z[k].ndim >= 2]
            missing = [k for k in names if k not in z.files]
            if missing:
                raise CLIError(f"{path}: no array {missing[0]!r}; available: {z.files}")
            return {k: z[k] for k in names}
    if suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as f:
            available = [k for k, v in f.items() if isinstance(v, h5py.Dataset)]
            names = keys or [k for k in available if f[k].ndim >= 2]
            missing = [k for k in names if k not in available]
            if missing:
                raise CLIError(f"{path}: no dataset {missing[0]!r}; available: {available}")
            return {k: f[k][()] for k in names}
    raise CLIError(f"{path}: unsupported file type (expected .act.h5, .rdm.h5, .npy, .npz, .h5)")


def _read_conditions(spec, n):
    path, column = _split_spec(spec)
    if column is None:
        raise CLIError("--conditions must be CSV:COLUMN")
    if not Path(path).exists():
        raise CLIError(f"--conditions: file not found: {path}")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or column not in rows[0]:
        raise CLIError(f"--conditions: {path} has no column {column!r}; "
                       f"columns: {list(rows[0]) if rows else []}")
    values = np.array([r[column] for r in rows])
    if values.size != n:
        raise CLIError(f"--conditions: {path} has {values.size} rows for {n} stimuli")
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
    else:
        if args.layer:
            raise CLIError("--layer applies to .act.h5 files; use --dataset for arrays")
        arrays = _read_arrays(path, args.dataset)
        if not arrays:
            raise CLIError(f"{path}: no 2-D array found")
    n = {a.shape[0] for a in arrays.values()}
    if len(n) > 1:
        raise CLIError(f"{path}: arrays have different numbers of rows (stimuli): {sorted(n)}")
    n = n.pop()
    conditions = _read_conditions(args.conditions, n) if args.conditions else None
    if conditions is not None:
        stim_ids = list(np.unique(conditions))
    rdms = _rdms_or_refuse({k: np.asarray(v).reshape(n, -1) for k, v in arrays.items()},
                           args, conditions, stim_ids)
    save_rdms(args.out, rdms, names=list(arrays), stim_ids=stim_ids, metric=args.metric,
              attrs={"source": str(path), "zscore": bool(args.zscore)})
    if not args.quiet:
        print(f"wrote {len(arrays)} RDM(s) of {rdms.shape[1]} pairs to {args.out}")
    return 0


def _load_rdm_source(spec):
    """(names, condensed RDM stack) from an RDM source string."""
    from neuroprobe.io.rdm import load_rdms
    from neuroprobe.rsa import to_condensed

    path, key = _split_spec(spec)
    if path.endswith(".rdm.h5") or path.endswith(".rdm.hdf5"):
        if not Path(path).exists():
            raise CLIError(f"file not found: {path}")
        data = load_rdms(path)
        if key:
            return [key], data[key][None]
        return list(data.names), data.rdms
    arrays = _read_arrays(path, [key] if key else None)
    names, rows = [], []
    for name, array in arrays.items():
        V = np.atleast_2d(to_condensed(np.asarray(array, dtype=np.float64), name))
        names += [name] if V.shape[0] == 1 else [f"{name}[{i}]" for i in range(V.shape[0])]
        rows.append(V)
    return names, np.vstack(rows)


def _load_sources(specs):
    names, rows = [], []
    for spec in specs:
        n, r = _load_rdm_source(spec)
        names += n
        rows.append(r)
    lengths = {r.shape[1] for r in rows}
    if len(lengths) > 1:
        raise CLIError(f"RDMs of different sizes in {specs}")
    return names, np.vstack(rows)


def run_rsa(args):
    """Compare RDMs; write one CSV row per (model, target) pair."""
    from neuroprobe._utils import atomic_path
    from neuroprobe.rsa import compare_rdms, noise_ceiling, permutation_test_rdms

    model_names, models = _load_sources(args.model)
    target_names, targets = _load_sources(args.target)
    if models.shape[1] != targets.shape[1]:
        raise CLIError(f"model RDMs have {models.shape[1]} pairs, target RDMs "
                       f"{targets.shape[1]}: not the same stimuli")
    if args.n_permutations > 0:
        res = permutation_test_rdms(models, targets, args.method, args.n_permutations,
                                    random_state=args.seed, n_jobs=args.n_jobs,
                                    backend=args.backend, device=args.device)
        score, pvalue, pvalue_fwe = res["score"], res["pvalue"], res["pvalue_fwe"]
    else:
        score = np.atleast_2d(compare_rdms(models, targets, args.method, backend=args.backend,
                                           device=args.device))
        pvalue = pvalue_fwe = np.full_like(score, np.nan)
    nc = None
    if args.noise_ceiling:
        path, key = _split_spec(args.noise_ceiling)
        subjects = (_read_arrays(path, [key] if key else None))
        if len(subjects) != 1:
            raise CLIError("--noise-ceiling must name one array (FILE.npz:KEY)")
        nc = noise_ceiling(next(iter(subjects.values())), args.method,
                           n_bootstrap=args.n_bootstrap, random_state=args.seed)
    header = ["model", "target", "method", "score", "pvalue", "pvalue_fwe", "n_permutations"]
    if nc is not None:
        header += ["noise_ceiling_lower", "noise_ceiling_upper"]
        if nc.lower_ci is not None:
            header += ["lower_ci_low", "lower_ci_high", "upper_ci_low", "upper_ci_high"]
    with atomic_path(args.out) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for i, m in enumerate(model_names):
            for t, name in enumerate(target_names):
                row = [m, name, args.method, f"{score[i, t]:.6g}", f"{pvalue[i, t]:.6g}",
                       f"{pvalue_fwe[i, t]:.6g}", args.n_permutations]
                if nc is not None:
                    row += [f"{nc.lower:.6g}", f"{nc.upper:.6g}"]
                    if nc.lower_ci is not None:
                        row += [f"{v:.6g}" for v in (*nc.lower_ci, *nc.upper_ci)]
                writer.writerow(row)
    if not args.quiet:
        print(f"wrote {len(model_names) * len(target_names)} comparison(s) to {args.out}")
    return 0
