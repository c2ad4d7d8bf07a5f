"""``neuroprobe reduce | probe | encode | decode``: PCA, probes, encoding maps, decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroprobe.cli import temporal
from neuroprobe.cli.main import CLIError, add_command, from_io
from neuroprobe.io.arrays import (
    read_column,
    read_target_array,
    split_spec,
    write_array,
    write_table,
)

BRAIN_SUFFIXES = (".nii", ".nii.gz", ".mgz", ".mgh", ".gii")
# map images per BrainMasker.format_ (CIFTI maps are .dscalar.nii)
_IMAGE_SUFFIXES = {"nifti": (".nii", ".nii.gz"), "mgh": (".mgz", ".mgh"), "cifti": (".nii",),
                   "gifti": (".gii",)}

REDUCE_EPILOG = """\
example:
  # 50 principal components of each of two layers (fitted on all stimuli: for a cross-validated
  # study put PCAReducer inside the Pipeline instead, see the docs)
  neuroprobe reduce alexnet.act.h5 --layer conv5 --layer fc2 --n-components 50 --per-layer \\
      --out alexnet_pca.npz
"""

PROBE_EPILOG = """\
example:
  # animate vs inanimate accuracy of each layer (5-fold, confusion matrices in the .npz)
  neuroprobe probe alexnet.act.h5 --labels stimuli.csv:animacy --cv 5 --out probe.csv
"""

ENCODE_EPILOG = """\
examples:
  # per-voxel encoding accuracy map of a layer, written in the format of the brain input
  neuroprobe encode alexnet.act.h5 --layer conv5 --targets sub-01_betas.nii.gz \\
      --mask vtc_mask.nii.gz --cv 5 --out conv5_r.nii.gz
  # targets in an HDF5 dataset (streamed in batches); map saved as .npy
  neuroprobe encode alexnet.act.h5 --layer fc2 --targets betas.h5:Y --out fc2_r.npy
  # with permutation p-values: also writes conv5_r_pvalue.nii.gz and conv5_r_pvalue_fwe.nii.gz
  neuroprobe encode alexnet.act.h5 --layer conv5 --targets sub-01_betas.nii.gz \\
      --mask vtc_mask.nii.gz --n-permutations 1000 --out conv5_r.nii.gz
  # multivariate PLS encoding of the whole region
  neuroprobe encode alexnet.act.h5 --layer conv5 --targets betas.h5:Y --model pls \\
      --n-components 10 --out conv5_pls_r.npy
  # banded ridge over two layers, and what each explains: also writes banded_r2_band-conv3,
  # banded_r2_band-fc1 (each band's share of the R2), banded_r2_unique-conv3,
  # banded_r2_unique-fc1, banded_r2_shared-conv3+fc1 (variance partitioning) .nii.gz and the
  # summary banded_r2_partition.csv (mean, median, counts > 0 and < 0 of every map)
  neuroprobe encode alexnet.act.h5 --bands conv3 fc1 --partition --runs runs.csv:run \\
      --targets bold.nii.gz --mask vtc_mask.nii.gz --scoring r2 --out banded_r2.nii.gz

values in the maps:
  Brain-image maps (score and p-values) are NaN outside the mask and at voxels dropped for
  NaN/inf data, so a threshold such as p <= 0.05 never selects them; the header (NIfTI
  descrip) says what the map holds. With brain targets, --out .npy / .csv saves the vector of
  the mask's voxels (mask order) instead of an image.
  A constant prediction (e.g. at the largest alpha) scores r = 0, as in himalaya; a target
  constant in a fold's held-out samples is NaN there and the map averages the other folds
  (one warning per cause; --quiet hides them).
  p-values (ridge, ols): the permutation statistic is the --cv-fold CV score at its best alpha
  (max over --alphas, chosen on the same folds), not the map's nested outer-CV score; its null
  is computed the same way, so the p-values are valid. pls, lasso: the map's own statistic.
  --bands: the statistic is the map's own (nested) score, each outer fold's band weights and
  alpha chosen once and kept for every permutation; also writes OUT_<layer>_pvalue(_fwe), the
  p-values of each band's share of the held-out explained variance (FWE per band). Use
  --scheme circular (or block) with --runs for scans.
  p_fwe: max statistic over voxels. A voxel whose score is undefined has p = NaN.
  --partition: band maps are each band's share of the held-out R2 of the banded model (they
  sum to its R2); unique / shared maps are the atoms of variance partitioning (the banded
  model refitted on every union of bands). Negative estimates are written as they are.
"""

DECODE_EPILOG = """\
example:
  # decode stimulus categories from the voxels of a mask
  neuroprobe decode sub-01_betas.nii.gz --mask vtc_mask.nii.gz \\
      --labels stimuli.csv:category --cv 5 --out decode.csv
"""


# --------------------------------------------------------------------------- inputs
def _is_brain(path):
    name = path.name.lower()
    return any(name.endswith(s) for s in BRAIN_SUFFIXES)


def _read_vector(spec, stim_ids=None, what="--labels"):
    """Labels / values / groups from ``file.csv:COLUMN``, ``.npy`` or ``.txt``."""
    import sys

    def warn(message):
        print(f"neuroprobe: warning: {message}", file=sys.stderr)

    return from_io(read_column, spec, stim_ids, what, warn)


def _read_layers(path, layers):
    from neuroprobe.io.activations import read_layers_2d

    return read_layers_2d(path, layers, with_ids=True)


class _Targets:
    """Targets of ``encode`` / ``decode``: arrays through :mod:`neuroprobe.io.arrays`, brain
    images through :class:`~neuroprobe.transformers.brain.BrainMasker` (maps written back with
    its ``inverse_transform``)."""

    def __init__(self, spec, mask=None, dataset=None):
        path, key = split_spec(spec, dataset)
        path = Path(path)
        if not path.exists():
            raise CLIError(f"--targets: file not found: {path}")
        self.path, self.masker, self.ids = path, None, None
        if _is_brain(path):
            from neuroprobe.transformers.brain import BrainMasker

            self.masker = BrainMasker(mask_img=mask)
            self.Y = self.masker.fit_transform(str(path))
        else:
            self.Y, self.ids = from_io(read_target_array, path, key)
        if mask is not None and self.masker is None:
            self.close()
            raise CLIError("--mask applies to brain images only")

    def check_out(self, out):
        """Refuse an ``--out`` suffix the map cannot be written as (before any computation)."""
        out = Path(out)
        name = out.name.lower()
        vector = (".npy", ".csv")
        if self.masker is None:
            if not name.endswith(vector):
                raise CLIError(f"--out {out}: with {self.path.name} targets the map is written "
                               "as .npy or .csv")
            return
        fmt = self.masker.format_
        images = _IMAGE_SUFFIXES.get(fmt, ())
        if name.endswith(vector) or (images and name.endswith(images)):
            return
        image_text = (f"{' / '.join(images)} (an image like the targets, NaN outside the mask)"
                      if images else "no single image (a GIFTI pair: use the Python API)")
        raise CLIError(
            f"--out {out}: with {fmt} targets the map is written as {image_text}, or .npy / .csv "
            f"(the vector of the {self.masker.n_features_out_} voxels in the mask, in mask order)"
        )

    def tmp_suffix(self, out):
        """Suffix of the temporary file a map for ``out`` is written to (same format)."""
        out = Path(out)
        suffix = "".join(out.suffixes[-2:]) if self.masker is not None else out.suffix
        return suffix or ".npy"

    def write_map(self, values, out, description=None, tmp=None):
        """Write a per-target map: an image like the input (brain), else .npy / .csv.

        Images have NaN outside the mask and at voxels dropped for NaN/inf data, and
        ``description`` in their header (NIfTI ``descrip``); ``.npy`` / ``.csv`` hold the vector
        (one value per kept voxel, in mask order). With ``tmp`` the map is written there in the
        format of ``out`` (the caller renames it); otherwise to a temporary file renamed onto
        ``out``.
        """
        from neuroprobe._utils import atomic_path

        out = Path(out)
        if tmp is None:
            with atomic_path(out, suffix=self.tmp_suffix(out)) as tmp:
                return self.write_map(values, out, description, tmp)
        if self.masker is not None and not out.name.lower().endswith((".npy", ".csv")):
            img = self.masker.inverse_transform(
                np.asarray(values, dtype=np.float32), fill=np.nan, description=description
            )
            if isinstance(img, tuple):
                raise CLIError("GIFTI pair maps need two outputs; use the Python API")
            img.to_filename(str(tmp))
            return
        write_array(tmp, values, atomic=False)

    def close(self):
        if hasattr(self.Y, "file"):  # an open HDF5 dataset
            self.Y.file.close()


def _rows_by_ids(targets, spec, ids_spec, stim_ids, n_rows, flag):
    """Index putting the activation rows in the order of the targets' stimulus IDs (or None).

    The targets' IDs come from ``ids_spec`` (``--target-ids`` / ``--ids``) or the targets file's
    ``stim_ids`` array. Without IDs the rows are matched by position (row counts checked).
    """
    import sys

    from neuroprobe.io.ids import align_ids, read_ids

    ids = read_ids(ids_spec, flag) if ids_spec else targets.ids
    if ids is None:
        if targets.Y.shape[0] != n_rows:
            raise CLIError(f"{spec} has {targets.Y.shape[0]} samples but the activations have "
                           f"{n_rows} stimuli")
        print(f"neuroprobe: warning: {spec} has no stimulus IDs: its rows are taken to be in the "
              f"order of the activation file (give {flag} FILE[:KEY] to check)", file=sys.stderr)
        return None
    if len(ids) != targets.Y.shape[0]:
        raise CLIError(f"{flag}: {len(ids)} stimulus IDs for the {targets.Y.shape[0]} rows of "
                       f"{spec}")
    try:
        return align_ids(ids, stim_ids, what="the activations", reference=f"--targets {spec}")
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _alphas(text):
    try:
        return np.array([float(a) for a in text.split(",")])
    except ValueError as exc:
        raise CLIError(f"--alphas: expected comma-separated numbers, got {text!r}") from exc


def _write_probe_table(table, out):
    from neuroprobe._utils import atomic_path

    out = Path(out)
    flat = table.copy()
    flat["scores"] = [" ".join(f"{v:.6g}" for v in s) for s in flat["scores"]]
    confusion = out.with_suffix(".confusion.npz")
    import contextlib

    with contextlib.ExitStack() as stack:  # both to temporary files, then both renamed
        write_table(stack.enter_context(atomic_path(out, suffix=".csv")), flat, atomic=False)
        if table.attrs.get("confusion"):
            arrays = {f"confusion/{k}": v for k, v in table.attrs["confusion"].items()}
            arrays["classes"] = np.asarray(table.attrs["classes"]).astype(str)
            tmp = stack.enter_context(atomic_path(confusion, suffix=".npz"))
            with open(tmp, "wb") as fh:  # a file object: np.savez adds no second suffix
                np.savez(fh, **arrays)
    if not table.attrs.get("confusion") and confusion.exists():
        confusion.unlink()  # confusion matrices of an earlier run: not of this table


# --------------------------------------------------------------------------- commands
def run_reduce(args):
    from neuroprobe.transformers.reduction import PCAReducer

    feats, stim_ids = _read_layers(args.input, args.layer)
    names = [f"{layer}:f{i}" for layer, X in feats.items() for i in range(X.shape[1])]
    X = np.hstack(list(feats.values()))
    k = args.n_components
    k = float(k) if "." in k else int(k)
    red = PCAReducer(
        n_components=k,
        standardize=args.standardize,
        per_layer=args.per_layer,
        random_state=args.seed,
    )
    import pandas as pd

    Z = red.fit_transform(pd.DataFrame(X, columns=names))
    from neuroprobe._utils import atomic_path

    with atomic_path(Path(args.out), suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                X=np.asarray(Z, dtype=np.float32),
                feature_names=red.get_feature_names_out().astype(str),
                stim_ids=np.asarray(stim_ids).astype(str),
                explained_variance_ratio=red.explained_variance_ratio_,
            )
    print(f"{X.shape[1]} features -> {Z.shape[1]} components; wrote {args.out}")


def run_probe(args):
    feats, stim_ids = _read_layers(args.input, args.layer)
    y = _read_vector(args.labels, stim_ids)
    groups = _read_vector(args.groups, stim_ids, "--groups") if args.groups else None
    _probe_and_write(feats, y, groups, args)


def _zero_variance_lines(args):
    """Context: ZeroVarianceWarnings as one stderr line each, none with ``--quiet``."""
    import contextlib
    import sys
    import warnings

    from neuroprobe.metrics import ZeroVarianceWarning

    @contextlib.contextmanager
    def context():
        with warnings.catch_warnings():
            shown = warnings.showwarning

            seen = set()

            def show(message, category, filename, lineno, file=None, line=None):
                if not issubclass(category, ZeroVarianceWarning):
                    return shown(message, category, filename, lineno, file, line)
                if not getattr(args, "quiet", False) and str(message) not in seen:
                    seen.add(str(message))
                    command = getattr(args, "command", None) or "encode"
                    print(f"neuroprobe {command}: warning: {message}", file=sys.stderr)

            warnings.showwarning = show
            warnings.simplefilter("always", ZeroVarianceWarning)
            yield

    return context()


def run_encode(args):
    _check_partition(args)
    temporal.refuse_tail_tfce(args)
    if args.brain is not None or args.targets is None:  # refuses a missing --targets
        return temporal.run_encode(args)
    with _zero_variance_lines(args):
        return _run_encode(args)


def _run_encode(args):
    from sklearn.model_selection import LeaveOneGroupOut

    from neuroprobe.model_selection import cross_val_score_targets, default_cv, describe_cv

    X, stim_ids, names = _encode_features(args)
    targets = _Targets(args.targets, args.mask, args.dataset)
    try:
        from neuroprobe._utils import check_output_path

        targets.check_out(args.out)
        outputs = [Path(args.out)] + _permutation_outputs(args)
        if args.partition:
            outputs.append(_sibling(args.out, "partition", ext=".csv"))
        for path in outputs:  # folder and permissions, before the long computation
            check_output_path(path)  # (the suffix was checked by check_out)
        X, names, groups = _time_axis(args, targets, X, stim_ids, names)
        enc = _encoder(args, names)
        splitter = (LeaveOneGroupOut() if args.runs else
                    default_cv(args.cv, None, groups, args.seed, classifier=False))
        scores = cross_val_score_targets(
            enc, X, targets.Y, cv=splitter, groups=groups, n_jobs=args.n_jobs
        )
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                acc = np.nanmean(scores, axis=0)
        maps = {Path(args.out): (acc, _map_description(args, "score"))}
        if args.n_permutations:
            test, pmaps = _permutation_maps(args, enc, X, targets.Y, groups, splitter)
            maps.update(pmaps)
        table = None
        if args.partition:
            parts, table = _partition_maps(args, enc, X, names, targets.Y, splitter, groups)
            maps.update(parts)
        written = _write_maps_together(targets, maps, args)
        extra = []
        if table is not None:
            extra.append(str(write_table(_sibling(args.out, "partition", ext=".csv"), table,
                                         atomic=True)))
        written.append(_write_cv_sidecar(args, splitter, enc, groups, written, extra))
        written += extra
    finally:
        targets.close()
    line = (
        f"{acc.size} targets, {args.scoring} mean {np.nanmean(acc):.4f}, "
        f"max {np.nanmax(acc):.4f}, cv {describe_cv(splitter)}"
    )
    if args.n_permutations:
        n_sig = int(np.sum(np.atleast_1d(test.pvalue_fwe_) <= 0.05))
        line += f"; {n_sig} significant at FWE p <= 0.05 ({args.n_permutations} permutations)"
    print(f"{line}; wrote {', '.join(written)}")


def _split_fold(estimator, X, Y, train, test, groups):
    """Each band's share of the held-out R2 on one split (``score_targets(split=True)``)."""
    from sklearn.base import clone

    est = clone(estimator)
    kw = {} if groups is None else {"groups": np.asarray(groups)[train]}
    est.fit(X[train], Y[train], **kw)
    return est.score_targets(X[test], Y[test], split=True)


def _partition_maps(args, enc, X, names, Y, splitter, groups):
    """``encode --partition``: one map per band (its split-R2 share, mean over the outer
    folds of the banded fit) and one per component of
    :func:`~neuroprobe.partition.variance_partitioning` (unique to each band, shared by each
    set of bands), as ``{path: (values, description)}``, and the tidy summary table."""
    import warnings

    import pandas as pd
    from joblib import Parallel, delayed
    from sklearn.model_selection import check_cv

    from neuroprobe.partition import variance_partitioning

    Y = np.asarray(Y[:, :] if hasattr(Y, "id") else Y)  # an HDF5 dataset: read once
    Y = Y.reshape(Y.shape[0], -1)
    layers = list(dict.fromkeys(args.bands))
    folds = [(np.sort(tr), np.sort(te)) for tr, te in check_cv(splitter).split(X, None, groups)]
    split = Parallel(n_jobs=args.n_jobs)(delayed(_split_fold)(enc, X, Y, tr, te, groups)
                                         for tr, te in folds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN targets stay NaN
        split = np.nanmean(np.asarray(split, dtype=np.float64), axis=0)
    vp = variance_partitioning(enc, X, Y, [f"{layer}:" for layer in layers], groups=groups,
                               cv=folds, feature_names=names, n_jobs=args.n_jobs)
    rows, maps = [], {}
    entries = [("band", layer, layer, split[i]) for i, layer in enumerate(layers)]
    for name, values in zip(vp.component_names, vp.components):
        kind, members = name.split(":", 1)
        entries.append((kind, members.replace("&", "+"), members.replace("&", "+"), values))
    for kind, tag, members, values in entries:
        path = _sibling(args.out, f"{kind}-{tag}")
        what = {"band": "split R2 of band", "unique": "unique R2 of",
                "shared": "shared R2 of"}[kind]
        maps[path] = (values, f"neuroprobe encode {what} {members}"[:66] + "; NaN=no data")
        finite = values[np.isfinite(values)]
        rows.append({
            "component": f"{kind}:{members}", "kind": kind, "bands": members, "file": path.name,
            "n_targets": int(finite.size),
            "mean": float(finite.mean()) if finite.size else np.nan,
            "median": float(np.median(finite)) if finite.size else np.nan,
            "min": float(finite.min()) if finite.size else np.nan,
            "max": float(finite.max()) if finite.size else np.nan,
            "n_positive": int(np.sum(finite > 0)), "n_negative": int(np.sum(finite < 0)),
            "fraction_negative": float(np.mean(finite < 0)) if finite.size else np.nan,
        })
    return maps, pd.DataFrame(rows).set_index("component")


def _check_partition(args):
    """``--partition`` needs ``--bands`` with at least two layers (one-line errors)."""
    if not getattr(args, "partition", False):
        return
    layers = list(dict.fromkeys(args.bands or []))
    if not layers:
        raise CLIError("--partition needs --bands LAYER LAYER ... (at least two layers)")
    if len(layers) < 2:
        raise CLIError(f"--partition needs at least two --bands layers; got one ({layers[0]})")
    if args.brain is not None:
        raise CLIError("--partition writes maps of --targets; it is not available with --brain")


def _permutation_outputs(args):
    """The p-value maps ``encode --n-permutations`` writes: ``OUT_pvalue``, ``OUT_pvalue_fwe``
    and, with ``--bands``, ``OUT_<layer>_pvalue`` / ``OUT_<layer>_pvalue_fwe`` per band."""
    if not args.n_permutations:
        return []
    names = ["pvalue", "pvalue_fwe"]
    for layer in dict.fromkeys(args.bands or ()):
        names += [f"{layer}_pvalue", f"{layer}_pvalue_fwe"]
    return [_sibling(args.out, n) for n in names]


def _permutation_maps(args, enc, X, Y, groups, splitter):
    """``(test, {path: (values, description)})``: the permutation p-value maps of ``encode``.

    The PermutationTest of the score map, permutations within ``groups`` by ``--scheme``; with
    ``--bands`` (BandedRidgeEncoder's fast path: the map's own nested statistic, each outer
    fold's hyperparameters kept for every permutation) also each band's split share
    (``statistic="split"``), family-wise per band."""
    from neuroprobe.estimators.permutation import PermutationTest

    if args.scheme == "block" and not args.block_size:
        raise CLIError("--scheme block needs --block-size (scans per block)")
    kw = dict(n_permutations=args.n_permutations, cv=splitter, random_state=args.seed,
              n_jobs=args.n_jobs, scheme=args.scheme, block_size=args.block_size)
    test = PermutationTest(enc, **kw).fit(X, Y, groups=groups)
    names = ("pvalue", test.pvalue_), ("pvalue_fwe", test.pvalue_fwe_)
    if not args.bands:
        return test, {_sibling(args.out, name): (np.atleast_1d(values),
                                                 _map_description(args, name))
                      for name, values in names}
    outer = "leave-one-run-out" if args.runs else f"{args.cv}-fold"
    maps = {_sibling(args.out, name): (np.atleast_1d(values),
                                       f"neuroprobe {'FWE ' * (name != 'pvalue')}p of the "
                                       f"{outer} score; NaN=no data")
            for name, values in names}
    split = PermutationTest(enc, statistic="split", **kw).fit(X, Y, groups=groups)
    for b, layer in enumerate(dict.fromkeys(args.bands)):
        for name, values in (("pvalue", split.pvalue_[b]), ("pvalue_fwe", split.pvalue_fwe_[b])):
            fwe = "FWE " if name == "pvalue_fwe" else ""
            maps[_sibling(args.out, f"{layer}_{name}")] = (
                values, f"neuroprobe {fwe}p of {layer[:20]} split share; NaN=no data")
    return test, maps


def _add_permutation_scheme(p):
    """``--scheme`` / ``--block-size`` of ``encode --n-permutations``."""
    p.add_argument("--scheme", default=None, choices=["shuffle", "circular", "block"],
                   help="permutations within --runs/--groups: circular shifts or blocks for "
                   "time series (scans), shuffle for exchangeable rows (betas)")
    p.add_argument("--block-size", type=int, default=None, help="scans per block (--scheme "
                   "block)")


def _encode_features(args):
    """``(X, stim_ids, names)`` of ``encode``: one ``--layer``, or the ``--bands`` layers side by
    side (feature names ``"<layer>:<i>"``, the bands' prefixes)."""
    if args.bands:
        if args.layer:
            raise CLIError("give either --layer (one layer) or --bands (several), not both")
        if args.model == "pls" or _penalty(args) != "l2":
            raise CLIError("--bands fits banded ridge: it needs --model ridge (the default)")
        layers = list(dict.fromkeys(args.bands))
    elif len(args.layer or []) != 1:
        raise CLIError("encode needs exactly one --layer (or --bands LAYER ...)")
    else:
        layers = args.layer
    feats, stim_ids = _read_layers(args.input, layers)
    X = np.hstack([feats[layer] for layer in layers]) if len(layers) > 1 else feats[layers[0]]
    names = [f"{layer}:{i}" for layer in layers for i in range(feats[layer].shape[1])]
    return X, stim_ids, names


def _time_axis(args, targets, X, stim_ids, names):
    """Rows of X matched to the targets: resampled to the scans (``--resample``) or aligned by
    stimulus ID; then FIR delays within runs (``--delays``). Returns ``(X, names, groups)``."""
    from neuroprobe.transformers.delays import Delayer
    from neuroprobe.transformers.resample import TimeResampler

    runs = _read_vector(args.runs, stim_ids, "--runs") if args.runs else None
    if args.runs and args.groups:
        raise CLIError("give either --runs (leave-one-run-out) or --groups, not both")
    if args.resample:
        if not (args.times and args.tr and args.n_scans):
            raise CLIError(f"--resample {args.resample} needs --times FILE:COLUMN (the time of "
                           "each activation row in its run), --tr and --n-scans")
        times = _read_vector(args.times, stim_ids, "--times")
        n_scans = args.n_scans[0] if len(args.n_scans) == 1 else args.n_scans
        try:
            res = TimeResampler(tr=args.tr, n_scans=n_scans, times=times, runs=runs,
                                method=args.resample).fit(X)
        except ValueError as exc:
            raise CLIError(f"--resample: {exc}") from None
        X = res.transform(X)
        runs = res.scan_runs_ if runs is not None else None
        if targets.Y.shape[0] != X.shape[0]:
            raise CLIError(f"--targets {args.targets} has {targets.Y.shape[0]} rows but "
                           f"--n-scans gives {X.shape[0]} scans")
        groups = runs
    else:
        index = _rows_by_ids(targets, args.targets, args.target_ids, stim_ids, X.shape[0],
                             "--target-ids")
        if index is not None:  # activations in the targets' stimulus order
            X, stim_ids = X[index], [stim_ids[i] for i in index]
            runs = runs[index] if runs is not None and len(runs) == len(index) else runs
        groups = runs if args.runs else (
            _read_vector(args.groups, stim_ids, "--groups") if args.groups else None)
    if args.runs and len(np.unique(runs)) < 2:
        raise CLIError("--runs: leave-one-run-out needs at least 2 runs; got 1")
    if args.delays:
        try:
            delayer = Delayer(delays=tuple(args.delays)).fit(X)
            X = delayer.transform(X, runs=runs)
        except ValueError as exc:
            raise CLIError(f"--delays: {exc}") from None
        names = list(delayer.get_feature_names_out(names))
    return X, names, groups


def _write_cv_sidecar(args, splitter, enc, groups, maps, tables=()):
    """``OUT.json`` beside the maps of ``encode``: the splitters and settings that made them."""
    import json

    from neuroprobe._utils import atomic_path
    from neuroprobe.model_selection import describe_cv

    inner = None
    if hasattr(enc, "alphas"):  # VoxelwiseEncoder: inner folds choose the alphas (its own rule)
        if isinstance(enc.cv, str):
            inner = f"{enc.cv} within each outer training set"
        elif enc.cv is None:
            inner = "leave-one-out"
        elif isinstance(enc.cv, int):
            kind = f"GroupKFold(n_splits={enc.cv})" if groups is not None else (
                f"KFold(n_splits={enc.cv}, shuffle=False)")
            inner = f"{kind} within each outer training set"
        else:
            inner = describe_cv(enc.cv)
    meta = {
        "command": "encode",
        "input": str(args.input),
        "layer": args.layer[0] if args.layer else None,
        "bands": args.bands,
        "delays": args.delays,
        "runs": args.runs,
        "resample": args.resample,
        "targets": str(args.targets),
        "model": args.model,
        "penalty": None if args.model == "pls" else _penalty(args),
        "scoring": args.scoring,
        "cv": describe_cv(splitter),
        "inner_cv": inner,
        "groups": args.groups,
        "seed": args.seed,
        "n_permutations": args.n_permutations,
        "maps": [Path(m).name for m in maps],
    }
    if getattr(args, "partition", False):
        meta["partition"] = {
            "bands": [Path(m).name for m in maps if "_band-" in Path(m).name],
            "components": [Path(m).name for m in maps
                           if "_unique-" in Path(m).name or "_shared-" in Path(m).name],
            "table": [Path(t).name for t in tables],
            "values": "band: each band's share of the held-out R2 of the banded model "
                      "(score_targets(split=True)); unique / shared: variance_partitioning "
                      "(held-out R2 of every union of bands, Moebius inversion); negative "
                      "estimates kept",
        }
    path = _sibling(args.out, "", ext=".json")
    with atomic_path(path, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=2) + "\n")
    return str(path)
def _map_description(args, kind):
    """The header description (NIfTI ``descrip``, at most 80 bytes) of an ``encode`` map."""
    score = {"correlation": "r", "r2": "R2"}.get(args.scoring, str(args.scoring))
    # ridge / ols permutations use the fast path: the CV score at its best alpha (not nested)
    fast = args.model != "pls" and _penalty(args) in ("l2", None)
    stat = f"{args.cv}-fold CV {score}" + (" at best alpha" if fast else "")
    outer = "leave-one-run-out" if getattr(args, "runs", None) else f"{args.cv} outer CV"
    text = {
        "score": f"neuroprobe encode {score}: mean of {outer} folds",
        "pvalue": f"neuroprobe perm. p of {stat}",
        "pvalue_fwe": f"neuroprobe FWE p (max-stat) of {stat}",
    }[kind]
    return f"{text}; NaN=no data"


def _penalty(args):
    """The ``penalty=`` of ``encode``: ``--penalty`` when given, else the one ``--model`` names."""
    from neuroprobe.estimators.encoding import _MODEL_TO_PENALTY

    penalty = getattr(args, "penalty", None)
    if penalty:
        return None if penalty == "none" else penalty
    return _MODEL_TO_PENALTY[args.model]


def _encoder(args, names=None):
    """The encoder of ``neuroprobe encode`` from its arguments."""
    from neuroprobe.estimators.encoding import PLSEncoder, VoxelwiseEncoder

    backend = args.backend or ("torch" if args.device != "cpu" else "numpy")
    if getattr(args, "bands", None):
        from neuroprobe.estimators.banded import BandedRidgeEncoder

        return BandedRidgeEncoder(
            bands=[f"{layer}:" for layer in dict.fromkeys(args.bands)],
            feature_names=names,
            alphas=_alphas(args.alphas) if args.alphas else None,
            cv="leave-one-run-out" if args.runs else args.inner_cv,
            scoring=args.scoring,
            backend=backend,
            device=args.device,
            random_state=args.seed,
        )
    if getattr(args, "runs", None):
        from sklearn.model_selection import LeaveOneGroupOut

        inner = LeaveOneGroupOut()
    else:
        inner = args.inner_cv
    if args.model == "pls":
        return PLSEncoder(
            n_components=args.n_components, scoring=args.scoring, backend=backend,
            device=args.device,
        )
    return VoxelwiseEncoder(
        alphas=_alphas(args.alphas) if args.alphas else None,
        cv=inner,
        scoring=args.scoring,
        penalty=_penalty(args),
        backend=backend,
        device=args.device,
    )


def _write_maps_together(targets, maps, args):
    """Write every map to a temporary file, then rename them all (a failure or an interrupt
    before the renames leaves the old files as they were). P-value maps of an earlier run
    beside ``--out`` that this run does not replace are removed: they belong to another score
    map."""
    import contextlib

    from neuroprobe._utils import atomic_path

    with contextlib.ExitStack() as stack:
        for out, (values, description) in maps.items():
            tmp = stack.enter_context(atomic_path(out, suffix=targets.tmp_suffix(out)))
            targets.write_map(values, out, description, tmp)
    for name in ("pvalue", "pvalue_fwe"):
        stale = _sibling(args.out, name)
        if stale not in maps and stale.exists():
            stale.unlink()
            print(f"removed {stale} (p-values of an earlier run, not of this score map)")
    return [str(p) for p in maps]


def _sibling(out, name, ext=None):
    """``conv5_r.nii.gz`` -> ``conv5_r_<name>.nii.gz`` (same folder, same format, or ``ext``)."""
    out = Path(out)
    suffixes = "".join(out.suffixes[-2:]) if out.name.endswith(".nii.gz") else out.suffix
    stem = out.name[: len(out.name) - len(suffixes)] if suffixes else out.name
    return out.with_name(f"{stem}{'_' + name if name else ''}{ext or suffixes}")


def run_decode(args):
    from neuroprobe.io.ids import read_ids

    targets = _Targets(args.input, args.mask, args.dataset)
    try:
        Y = np.asarray(targets.Y[:, :] if hasattr(targets.Y, "id") else targets.Y)
        ids = read_ids(args.ids, "--ids") if args.ids else targets.ids
    finally:
        targets.close()
    if ids is not None:
        ids = list(ids)
        if len(ids) != Y.shape[0]:
            raise CLIError(f"--ids: {len(ids)} stimulus IDs for the {Y.shape[0]} rows of "
                           f"{args.input}")
    y = _read_vector(args.labels, ids)
    groups = _read_vector(args.groups, ids, what="--groups") if args.groups else None
    _probe_and_write({"brain": Y}, y, groups, args)


def _probe_and_write(sources, y, groups, args):
    """``probe_layers`` on ``sources`` (name -> features), table written to ``--out`` and shown."""
    from neuroprobe.model_selection import probe_layers

    table = probe_layers(
        sources,
        y,
        cv=args.cv,
        scoring=args.scoring,
        groups=groups,
        random_state=args.seed,
        n_jobs=args.n_jobs,
    )
    _write_probe_table(table, args.out)
    print(table[["mean_score", "std_score", "n_features"]].to_string())
    print(f"cv: {table['cv'].iloc[0]}")


_CV_HELP = ("folds (default 5): shuffled, stratified for classes, seeded by --seed, grouped with "
            "--groups; the splitter is written in the CSV's cv column")
_LAYER_HELP = "layer (repeatable; default: all)"


def _model_choices():
    """``--model`` of ``encode``: the encoders' regression families, and PLS."""
    from neuroprobe.estimators.encoding import _MODELS

    return [*_MODELS, "pls"]


def _scoring_choices():
    """``--scoring`` of ``encode``: the per-target scorers of :mod:`neuroprobe.metrics`."""
    from neuroprobe.metrics import SCORERS

    return list(SCORERS)


_COMMANDS = {  # help, description and epilog of each subcommand
    "reduce": dict(
        help="PCA of DNN activations (per layer or joint)",
        description="Principal components of layers of an .act.h5 file.",
        epilog=REDUCE_EPILOG,
    ),
    "probe": dict(
        help="decode stimulus labels/values from each layer",
        description="Cross-validated decoding score of every layer.",
        epilog=PROBE_EPILOG,
    ),
    "encode": dict(
        help="per-voxel encoding accuracy map of a layer",
        description="Cross-validated voxelwise ridge encoding of brain "
        "responses from one layer; writes the mean held-out "
        "score of every voxel (NaN outside the mask).",
        epilog=ENCODE_EPILOG,
    ),
    "decode": dict(
        help="decode stimulus labels/values from brain data",
        description="Cross-validated decoding of labels or values from brain response patterns.",
        epilog=DECODE_EPILOG,
    ),
}


def _add_labels(p, labels_help, groups_help):
    """--labels, --groups and --cv of ``probe`` and ``decode``."""
    p.add_argument("--labels", required=True, help=labels_help)
    p.add_argument("--groups", help=groups_help)
    p.add_argument("--cv", type=int, default=5, help=_CV_HELP)


def _add_reduce(subparsers):
    p = add_command(subparsers, "reduce", run_reduce, {}, **_COMMANDS["reduce"])
    p.add_argument("input", help="activation file (.act.h5) from 'neuroprobe extract'")
    p.add_argument("--layer", action="append", help=_LAYER_HELP)
    p.add_argument(
        "--n-components",
        default="50",
        help="components (int), or fraction of variance (float in (0, 1))",
    )
    p.add_argument("--per-layer", action="store_true", help="reduce each layer separately")
    p.add_argument("--standardize", action="store_true", help="z-score features first")


def _add_probe(subparsers):
    p = add_command(subparsers, "probe", run_probe, {}, **_COMMANDS["probe"])
    p.add_argument("input", help="activation file (.act.h5)")
    p.add_argument("--layer", action="append", help=_LAYER_HELP)
    _add_labels(p, "FILE.csv:COLUMN (aligned by stim_id when present), .npy or .txt",
                "FILE.csv:COLUMN or .npy: groups (e.g. runs) for the folds")
    p.add_argument(
        "--scoring",
        default=None,
        help="accuracy (classes) / correlation (values) by default; any sklearn name",
    )


def _add_encode(subparsers):
    p = add_command(subparsers, "encode", run_encode, {}, **_COMMANDS["encode"])
    p.add_argument("input", help="activation file (.act.h5)")
    p.add_argument("--layer", action="append", help="the layer (or --bands)")
    p.add_argument("--bands", nargs="+", metavar="LAYER",
                   help="banded ridge over these layers (one regularisation per layer per "
                   "voxel, BandedRidgeEncoder) instead of one --layer")
    p.add_argument("--partition", action="store_true",
                   help="with --bands: also write one map per band (its share of the R2, "
                   "OUT_band-<layer>), per unique / shared component (variance partitioning: "
                   "OUT_unique-<layer>, OUT_shared-<a>+<b>) and a summary OUT_partition.csv")
    p.add_argument("--delays", nargs="+", type=int, metavar="K",
                   help="FIR delays in scans (e.g. 1 2 3 4), within runs (Delayer)")
    p.add_argument("--runs", metavar="FILE:COLUMN",
                   help="run of each activation row: leave-one-run-out CV (outer and inner), "
                   "delays and resampling within runs")
    p.add_argument("--resample", choices=["lanczos", "sinc", "average", "nearest"],
                   help="resample the activations from their --times to the scans "
                   "(TimeResampler); needs --times, --tr, --n-scans")
    p.add_argument("--times", metavar="FILE:COLUMN",
                   help="time (s) of each activation row from its run's first scan")
    p.add_argument("--tr", type=float, help="repetition time in seconds (--resample)")
    p.add_argument("--n-scans", type=int, nargs="+",
                   help="scans per run (one number, or one per run in sorted run order)")
    p.add_argument(
        "--targets",
        default=None,
        help="brain responses: .npy, .npz[:KEY], .h5[:DATASET], NIfTI/CIFTI/GIFTI/MGH",
    )
    p.add_argument("--dataset", default=None, help="dataset in an .h5/.npz targets file")
    p.add_argument(
        "--target-ids",
        default=None,
        help="stimulus IDs of the target rows (FILE.npy, FILE.npz:KEY, FILE.txt, "
        "FILE.csv[:COLUMN], events.tsv[:COLUMN]; default column stim_id); the activations are "
        "aligned to them. Default: the targets file's 'stim_ids' array (.h5/.npz), else rows "
        "are matched by position (with a warning)",
    )
    p.add_argument("--mask", default=None, help="mask / atlas image for brain targets")
    p.add_argument("--groups", help="FILE.csv:COLUMN or .npy: groups (runs) for the folds")
    p.add_argument(
        "--cv",
        type=int,
        default=5,
        help="outer folds of the map (default 5): shuffled KFold seeded by --seed, GroupKFold with "
        "--groups; recorded with the settings in OUT.json beside the maps",
    )
    p.add_argument(
        "--inner-cv",
        type=int,
        default=5,
        help="folds choosing alphas inside each outer training set (default 5; KFold, "
        "GroupKFold with --groups)",
    )
    p.add_argument("--alphas", default=None, help="comma-separated ridge alphas")
    p.add_argument(
        "--model",
        default="ridge",
        choices=_model_choices(),
        help="voxelwise ridge / ols (GLM) / lasso, or multivariate PLS (default ridge)",
    )
    p.add_argument("--penalty", choices=["l2", "l1", "none"], default=None,
                   help="VoxelwiseEncoder(penalty=): l2 (ridge), l1 (lasso) or none (OLS); "
                        "overrides --model ridge/ols/lasso")
    p.add_argument("--n-components", type=int, default=2, help="PLS components (default 2)")
    p.add_argument("--scoring", default="correlation", choices=_scoring_choices())
    p.add_argument(
        "--n-permutations",
        type=int,
        default=0,
        help="also write permutation p-value maps, uncorrected and family-wise (max statistic "
        "over voxels), as OUT_pvalue and OUT_pvalue_fwe; permutations within --groups; "
        "the statistic is described below. With --brain --time-resolved: p-values of the "
        "curves, max-statistic and cluster-mass FWE over layers x time (--cluster-threshold)",
    )
    _add_permutation_scheme(p)
    p.add_argument("--backend", default=None, choices=["numpy", "torch"],
                   help="array backend of the solver (default: torch when --device is not cpu, "
                   "else numpy)")
    temporal.add_arguments(p, "encode")  # --brain epochs.fif --time-resolved (layers x times)


def _add_decode(subparsers):
    p = add_command(subparsers, "decode", run_decode, {}, **_COMMANDS["decode"])
    p.add_argument("input", help="brain responses: .npy, .npz, .h5, NIfTI/CIFTI/GIFTI/MGH")
    p.add_argument("--dataset", default=None, help="dataset in an .h5/.npz file")
    p.add_argument("--mask", default=None, help="mask / atlas image for brain images")
    p.add_argument(
        "--ids",
        default=None,
        help="stimulus IDs of the input rows (FILE.npy, FILE.npz:KEY, FILE.txt, "
        "FILE.csv[:COLUMN], events.tsv[:COLUMN]); default: the file's 'stim_ids' array; "
        "--labels/--groups CSVs with a stim_id column are then matched by it",
    )
    _add_labels(p, "FILE.csv:COLUMN (aligned by stim_id with --ids), .npy or .txt",
                "FILE.csv:COLUMN or .npy: groups (runs) for the folds")
    p.add_argument("--scoring", default=None)


def register(subparsers):
    """Add the ``reduce``, ``probe``, ``encode`` and ``decode`` subcommands."""
    for add in (_add_reduce, _add_probe, _add_encode, _add_decode):
        add(subparsers)
