"""``neuroprobe partition | compare``: variance partitioning between layers, layer comparisons.

Inputs are read as ``neuroprobe encode`` reads them (an ``.act.h5`` file, ``--targets`` arrays or
brain images with ``--mask``, stimulus IDs aligned, ``--groups`` runs); the commands call
:func:`neuroprobe.partition.variance_partitioning`, :func:`neuroprobe.comparison.compare_scores`,
:func:`neuroprobe.comparison.heldout_scores` and
:func:`neuroprobe.comparison.permutation_test_layers`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from neuroprobe.cli.encoding import (
    _read_layers,
    _read_vector,
    _rows_by_ids,
    _Targets,
    _zero_variance_lines,
)
from neuroprobe.cli.main import add_command
from neuroprobe.exceptions import CLIError

PARTITION_EPILOG = """\
examples:
  # unique and shared variance of two layers in every voxel of a mask, leave-one-run-out
  neuroprobe partition alexnet.act.h5 --band conv3 --band conv5 --targets bold.nii.gz \\
      --mask vtc_mask.nii.gz --groups runs.csv:run --out partition.csv
  # writes partition.csv (component, kind, bands, voxel, value) and one map per component:
  # partition_unique_conv3.nii.gz, partition_unique_conv5.nii.gz,
  # partition_shared_conv3-conv5.nii.gz, and the union R2 maps partition_r2_conv3.nii.gz, ...

values:
  Components are held-out R2 (mean over the outer folds) split by inclusion-exclusion over the
  2^k - 1 unions of the k bands (k bands: 2^k - 1 models per fold). Negative estimates are
  written as they are (noise, or a larger model overfitting), not clipped.
"""

COMPARE_EPILOG = """\
examples:
  # which layer predicts the voxels best: paired bootstrap over stimuli of the per-stimulus
  # held-out pattern correlation, Holm and BH corrected over the pairs of layers
  neuroprobe compare alexnet.act.h5 --layer conv3 --layer conv4 --layer conv5 \\
      --targets betas.h5:Y --out compare.csv
  # runs as the units, and family-wise permutation p-values over layers x voxels
  # (circular shifts within runs for time series): also writes compare_layers.csv
  neuroprobe compare alexnet.act.h5 --layer conv3 --layer conv5 --targets bold.nii.gz \\
      --mask vtc.nii.gz --groups runs.csv:run --unit runs --n-permutations 1000 \\
      --scheme circular --out compare.csv
"""


def _inputs(args, layers):
    """Features of ``layers`` (rows in the targets' order), the targets and the groups."""
    feats, stim_ids = _read_layers(args.input, layers)
    targets = _Targets(args.targets, args.mask, args.dataset)
    n_rows = next(iter(feats.values())).shape[0]
    index = _rows_by_ids(targets, args.targets, args.target_ids, stim_ids, n_rows,
                         "--target-ids")
    if index is not None:
        feats = {k: v[index] for k, v in feats.items()}
        stim_ids = [stim_ids[i] for i in index]
    groups = _read_vector(args.groups, stim_ids, "--groups") if args.groups else None
    return feats, targets, groups


def _encoder(args):
    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    alphas = [float(a) for a in args.alphas.split(",")] if args.alphas else None
    backend = "torch" if args.device != "cpu" else "numpy"
    cv = args.inner_cv
    if args.groups and cv is None:
        from sklearn.model_selection import LeaveOneGroupOut

        cv = LeaveOneGroupOut()
    return VoxelwiseEncoder(alphas=alphas, cv=cv if cv is not None else 5, scoring=args.scoring,
                            backend=backend, device=args.device)


def _map_suffix(targets):
    """The file ending of the maps: the targets' image format, else ``.npy``."""
    if targets.masker is None:
        return ".npy"
    name = targets.path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else targets.path.suffix


def _component_file(out, name, suffix):
    """``partition.csv`` + ``shared:conv3&conv5`` -> ``partition_shared_conv3-conv5<suffix>``."""
    kind, members = name.split(":", 1)
    tag = members.replace("&", "-").replace("+", "-")
    return out.with_name(f"{out.stem}_{kind}_{tag}{suffix}")


# --------------------------------------------------------------------------- partition
def run_partition(args):
    with _zero_variance_lines(args):
        return _run_partition(args)


def _run_partition(args):
    from neuroprobe._utils import atomic_path, check_output_path
    from neuroprobe.io.arrays import write_table
    from neuroprobe.partition import _component_name, _union_name, variance_partitioning
    from neuroprobe.solvers.partition import subset_masks

    if len(args.band or []) < 2:
        raise CLIError("partition needs at least two --band layers")
    if len(set(args.band)) != len(args.band):
        raise CLIError(f"--band: each layer once; got {args.band}")
    feats, targets, groups = _inputs(args, args.band)
    out = Path(args.out)
    try:
        k = len(args.band)
        suffix = _map_suffix(targets)
        X = np.hstack([feats[b] for b in args.band])
        edges = np.cumsum([0] + [feats[b].shape[1] for b in args.band])
        bands = {b: slice(int(edges[i]), int(edges[i + 1])) for i, b in enumerate(args.band)}
        if targets.masker is None:
            Y = np.asarray(targets.Y[:, :] if hasattr(targets.Y, "id") else targets.Y)
        else:
            Y = np.asarray(targets.Y)
        masks = subset_masks(k)
        names = ([_component_name(args.band, m) for m in masks]
                 + [_union_name(args.band, m) for m in masks])
        for name in names:  # folders and permissions, before the fits
            check_output_path(_component_file(out, name, suffix))
        vp = variance_partitioning(_encoder(args), X, Y, bands, groups=groups, cv=args.cv,
                                   random_state=args.seed, n_jobs=args.n_jobs)
        files = {_component_file(out, name, suffix): values
                 for name, values in vp.maps().items()}
        with contextlib.ExitStack() as stack:  # every file to a temporary name, then renamed
            for path, values in files.items():
                tmp = stack.enter_context(atomic_path(path, suffix=targets.tmp_suffix(path)))
                targets.write_map(values, path, f"neuroprobe partition {path.stem[-60:]}", tmp)
            tmp = stack.enter_context(atomic_path(out, suffix=".csv"))
            write_table(tmp, vp.to_frame().set_index("component"), atomic=False)
    finally:
        targets.close()
    print(vp.summary().to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"{2**k - 1} models ({k} bands) x {vp.r2_folds.shape[0]} folds; wrote {out} and "
          f"{len(files)} maps ({_component_file(out, 'unique:' + args.band[0], suffix).name}, "
          "...)")


# --------------------------------------------------------------------------- compare
def run_compare(args):
    with _zero_variance_lines(args):
        return _run_compare(args)


def _run_compare(args):
    from neuroprobe._utils import atomic_path
    from neuroprobe.comparison import compare_scores, heldout_scores, permutation_test_layers
    from neuroprobe.io.arrays import write_table
    from neuroprobe.model_selection import default_cv

    if len(args.layer or []) < 2:
        raise CLIError("compare needs at least two --layer")
    if args.unit == "runs" and not args.groups:
        raise CLIError("--unit runs needs --groups (the run of each stimulus)")
    if args.scheme == "block" and not args.block_size:
        raise CLIError("--scheme block needs --block-size")
    feats, targets, groups = _inputs(args, args.layer)
    out = Path(args.out)
    layers_out = out.with_name(f"{out.stem}_layers.csv")
    try:
        Y = np.asarray(targets.Y[:, :] if hasattr(targets.Y, "id") else targets.Y)
        enc = _encoder(args)
        splitter = default_cv(args.cv, None, groups, args.seed, classifier=False)
        per_stim = {layer: heldout_scores(enc, X, Y, cv=splitter, groups=groups,
                                          metric=args.metric)
                    for layer, X in feats.items()}
        table = compare_scores(per_stim, unit=args.unit,
                               groups=groups if args.unit == "runs" else None,
                               n_bootstrap=args.n_bootstrap, random_state=args.seed)
        summary = None
        if args.n_permutations:
            test = permutation_test_layers(
                enc, feats, Y, groups=groups, n_permutations=args.n_permutations,
                scheme=args.scheme, block_size=args.block_size, random_state=args.seed,
                n_jobs=args.n_jobs, alpha=args.alpha)
            summary = test.summary
            summary.insert(0, "mean_heldout_per_stimulus",
                           [float(np.nanmean(per_stim[layer])) for layer in summary.index])
    finally:
        targets.close()
    with contextlib.ExitStack() as stack:
        write_table(stack.enter_context(atomic_path(out, suffix=".csv")), table.set_index(
            "model_a"), atomic=False)
        if summary is not None:
            write_table(stack.enter_context(atomic_path(layers_out, suffix=".csv")), summary,
                        atomic=False)
    shown = table[["model_a", "model_b", "difference", "ci_low", "ci_high", "pvalue_holm",
                   "pvalue_fdr_bh"]]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if summary is not None:
        print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    wrote = [str(out)] + ([str(layers_out)] if summary is not None else [])
    print(f"paired bootstrap over {table.n_units.iloc[0]} {args.unit} "
          f"({args.n_bootstrap} resamples); wrote {', '.join(wrote)}")


# --------------------------------------------------------------------------- parsers
def _add_inputs(p):
    p.add_argument("input", help="activation file (.act.h5)")
    p.add_argument("--targets", required=True,
                   help="brain responses: .npy, .npz[:KEY], .h5[:DATASET], NIfTI/CIFTI/GIFTI/MGH")
    p.add_argument("--dataset", default=None, help="dataset in an .h5/.npz targets file")
    p.add_argument("--target-ids", default=None,
                   help="stimulus IDs of the target rows (as in 'neuroprobe encode')")
    p.add_argument("--mask", default=None, help="mask / atlas image for brain targets")
    p.add_argument("--groups", help="FILE.csv:COLUMN or .npy: runs (folds never split a run)")
    p.add_argument("--inner-cv", type=int, default=None,
                   help="folds choosing the alphas in each training set (default 5; "
                   "leave-one-run-out with --groups)")
    p.add_argument("--alphas", default=None, help="comma-separated ridge alphas")


def register(subparsers):
    """Add the ``partition`` and ``compare`` subcommands."""
    p = add_command(subparsers, "partition", run_partition, {},
                    help="unique and shared variance of layers (variance partitioning)",
                    description="Held-out R2 of every union of the --band layers, split into the "
                    "variance unique to each layer and shared by each set of layers, per voxel.",
                    epilog=PARTITION_EPILOG)
    _add_inputs(p)
    p.add_argument("--band", action="append", required=True,
                   help="a layer of the activation file (repeat: 2 or more)")
    p.add_argument("--cv", type=int, default=None,
                   help="outer folds (default: leave-one-run-out with --groups, else 5 shuffled)")
    p.add_argument("--scoring", default="r2", choices=["r2", "correlation"],
                   help="score choosing the alphas (default r2, the partitioned score)")

    c = add_command(subparsers, "compare", run_compare, {},
                    help="compare layers: paired bootstrap, FWE over layers x voxels",
                    description="Pairwise comparison of layers' held-out encoding scores (paired "
                    "bootstrap, Holm / BH corrected) and, with --n-permutations, family-wise "
                    "p-values across layers x voxels and a per-layer summary.",
                    epilog=COMPARE_EPILOG)
    _add_inputs(c)
    c.add_argument("--layer", action="append", required=True, help="a layer (repeat: 2 or more)")
    c.add_argument("--cv", type=int, default=5, help="folds of the held-out predictions")
    c.add_argument("--scoring", default="correlation", choices=["correlation", "r2"])
    c.add_argument("--metric", default=None,
                   choices=["correlation", "neg_squared_error"],
                   help="per-stimulus score (default: pattern correlation over the voxels)")
    c.add_argument("--unit", default="stimuli", choices=["stimuli", "runs"],
                   help="units of the paired bootstrap (runs: stimuli averaged per --groups)")
    c.add_argument("--n-bootstrap", type=int, default=10_000)
    c.add_argument("--n-permutations", type=int, default=0,
                   help="permutation test of every layer, FWE over layers x voxels")
    c.add_argument("--scheme", default=None, choices=["shuffle", "circular", "block"],
                   help="permutations (within --groups): circular/block for time series")
    c.add_argument("--block-size", type=int, default=None)
    c.add_argument("--alpha", type=float, default=0.05, help="FWE threshold of the summary")
