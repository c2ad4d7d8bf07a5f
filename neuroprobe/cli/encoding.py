"""``neuroprobe reduce | probe | encode | decode``: PCA, probes, encoding maps, decoding."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from neuroprobe.cli.main import CLIError, add_common_arguments

BRAIN_SUFFIXES = (".nii", ".nii.gz", ".mgz", ".mgh", ".gii")

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
"""

DECODE_EPILOG = """\
example:
  # decode stimulus categories from the voxels of a mask
  neuroprobe decode sub-01_betas.nii.gz --mask vtc_mask.nii.gz \\
      --labels stimuli.csv:category --cv 5 --out decode.csv
"""


# --------------------------------------------------------------------------- inputs
def _split_key(spec, default=None):
    """``"file.h5:NAME"`` -> (path, NAME); a plain existing path -> (path, default)."""
    text = str(spec)
    if Path(text).exists():
        return Path(text), default
    if ":" in text:
        path, key = text.rsplit(":", 1)
        return Path(path), key
    return Path(text), default


def _is_brain(path):
    name = path.name.lower()
    return any(name.endswith(s) for s in BRAIN_SUFFIXES)


def _read_vector(spec, stim_ids=None, what="--labels"):
    """Labels / values / groups from ``file.csv:COLUMN``, ``.npy`` or ``.txt``."""
    path, key = _split_key(spec)
    if not path.exists():
        raise CLIError(f"{what}: file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".txt":
        return np.loadtxt(path, dtype=str)
    if suffix in (".csv", ".tsv"):
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ","))
        columns = list(rows[0]) if rows else []
        if key is None or key not in columns:
            raise CLIError(f"{what}: give a column as {path}:COLUMN; columns: {', '.join(columns)}")
        values = [r[key] for r in rows]
        if stim_ids is not None and "stim_id" in columns:
            order = {r["stim_id"]: i for i, r in enumerate(rows)}
            missing = [s for s in stim_ids if s not in order]
            if missing:
                raise CLIError(
                    f"{what}: {len(missing)} stimuli of the activations are not in "
                    f"{path} (first: {missing[0]!r})"
                )
            values = [values[order[s]] for s in stim_ids]
        try:
            return np.array([float(v) for v in values])
        except ValueError:
            return np.array(values)
    raise CLIError(f"{what}: expected FILE.csv:COLUMN, .tsv, .npy or .txt; got {path}")


def _read_layers(path, layers):
    from neuroprobe.io.activations import open_activations

    with open_activations(path) as reader:
        names = layers or reader.layers
        feats = {layer: reader.read(layer).reshape(len(reader.stim_ids), -1) for layer in names}
        return feats, list(reader.stim_ids)


class _Targets:
    """Targets from .npy (memory-mapped), .npz, .h5 (streamed dataset) or brain images."""

    def __init__(self, spec, mask=None, dataset=None):
        path, key = _split_key(spec, dataset)
        if not path.exists():
            raise CLIError(f"--targets: file not found: {path}")
        self.path, self.masker, self._file = path, None, None
        name = path.name.lower()
        if _is_brain(path):
            from neuroprobe.transformers.brain import BrainMasker

            self.masker = BrainMasker(mask_img=mask)
            self.Y = self.masker.fit_transform(str(path))
        elif name.endswith(".npy"):
            self.Y = np.load(path, mmap_mode="r")
        elif name.endswith(".npz"):
            with np.load(path) as data:
                key = key or next(iter(data.files))
                if key not in data.files:
                    raise CLIError(f"--targets: {key!r} not in {path}; arrays: {data.files}")
                self.Y = data[key]
        elif name.endswith((".h5", ".hdf5")):
            import h5py

            self._file = h5py.File(path, "r")
            key = key or "Y"
            if key not in self._file:
                names = list(self._file)
                self._file.close()
                raise CLIError(f"--targets: dataset {key!r} not in {path}; datasets: {names}")
            self.Y = self._file[key]
        else:
            raise CLIError(
                f"--targets: unsupported file {path} (.npy, .npz, .h5, NIfTI, CIFTI, GIFTI, MGH)"
            )
        if mask is not None and self.masker is None:
            raise CLIError("--mask applies to brain images only")

    def map_suffixes(self):
        """The output suffixes a map of these targets can have."""
        return BRAIN_SUFFIXES if self.masker is not None else (".npy", ".csv")

    def write_map(self, values, out, tmp=None):
        """Write a per-target map: an image like the input (brain), else .npy / .csv.

        With ``tmp`` the map is written there in the format of ``out`` (the caller renames it);
        otherwise to a temporary file renamed onto ``out``.
        """
        from neuroprobe._utils import atomic_path

        out = Path(out)
        if tmp is None:
            suffix = "".join(out.suffixes[-2:]) if self.masker is not None else out.suffix
            with atomic_path(out, suffix=suffix or ".npy") as tmp:
                return self.write_map(values, out, tmp)
        if self.masker is not None:
            img = self.masker.inverse_transform(np.asarray(values, dtype=np.float32))
            if isinstance(img, tuple):
                raise CLIError("GIFTI pair maps need two outputs; use the Python API")
            img.to_filename(str(tmp))
            return
        if out.suffix == ".csv":
            np.savetxt(
                tmp, np.asarray(values)[None] if np.ndim(values) == 1 else values, delimiter=","
            )
        else:
            with open(tmp, "wb") as fh:
                np.save(fh, np.asarray(values))

    def close(self):
        if self._file is not None:
            self._file.close()


def _alphas(text):
    try:
        return np.array([float(a) for a in text.split(",")])
    except ValueError as exc:
        raise CLIError(f"--alphas: expected comma-separated numbers, got {text!r}") from exc


def _write_table(table, out):
    from neuroprobe._utils import atomic_path

    out = Path(out)
    flat = table.copy()
    flat["scores"] = [" ".join(f"{v:.6g}" for v in s) for s in flat["scores"]]
    confusion = out.with_suffix(".confusion.npz")
    import contextlib

    with contextlib.ExitStack() as stack:  # both to temporary files, then both renamed
        tmp = stack.enter_context(atomic_path(out, suffix=".csv"))
        flat.to_csv(tmp)
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


def run_encode(args):
    from neuroprobe.estimators.permutation import PermutationTest
    from neuroprobe.model_selection import cross_val_score_targets

    if len(args.layer or []) != 1:
        raise CLIError("encode needs exactly one --layer")
    feats, stim_ids = _read_layers(args.input, args.layer)
    X = feats[args.layer[0]]
    targets = _Targets(args.targets, args.mask, args.dataset)
    try:
        from neuroprobe._utils import check_output_path

        outputs = [Path(args.out)] + (
            [_sibling(args.out, n) for n in ("pvalue", "pvalue_fwe")] if args.n_permutations else []
        )
        for path in outputs:  # before the long computation, not after it
            check_output_path(path, targets.map_suffixes())
        if targets.Y.shape[0] != X.shape[0]:
            raise CLIError(
                f"{args.targets} has {targets.Y.shape[0]} samples but layer "
                f"{args.layer[0]!r} has {X.shape[0]} stimuli"
            )
        groups = _read_vector(args.groups, stim_ids, "--groups") if args.groups else None
        enc = _encoder(args)
        scores = cross_val_score_targets(
            enc, X, targets.Y, cv=args.cv, groups=groups, n_jobs=args.n_jobs
        )
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                acc = np.nanmean(scores, axis=0)
        maps = {Path(args.out): acc}
        if args.n_permutations:
            test = PermutationTest(
                enc,
                n_permutations=args.n_permutations,
                cv=args.cv,
                random_state=args.seed,
                n_jobs=args.n_jobs,
            ).fit(X, targets.Y, groups=groups)
            for name, values in (("pvalue", test.pvalue_), ("pvalue_fwe", test.pvalue_fwe_)):
                maps[_sibling(args.out, name)] = np.atleast_1d(values)
        written = _write_maps_together(targets, maps, args)
    finally:
        targets.close()
    line = (
        f"{acc.size} targets, {args.scoring} mean {np.nanmean(acc):.4f}, "
        f"max {np.nanmax(acc):.4f}"
    )
    if args.n_permutations:
        n_sig = int(np.sum(np.atleast_1d(test.pvalue_fwe_) <= 0.05))
        line += f"; {n_sig} significant at FWE p <= 0.05 ({args.n_permutations} permutations)"
    print(f"{line}; wrote {', '.join(written)}")


def _encoder(args):
    """The encoder of ``neuroprobe encode`` from its arguments."""
    from neuroprobe.estimators.encoding import PLSEncoder, VoxelwiseEncoder

    backend = "torch" if args.device != "cpu" else "numpy"
    if args.model == "pls":
        return PLSEncoder(
            n_components=args.n_components, scoring=args.scoring, backend=backend,
            device=args.device,
        )
    return VoxelwiseEncoder(
        alphas=_alphas(args.alphas) if args.alphas else None,
        cv=args.inner_cv,
        scoring=args.scoring,
        model=args.model,
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
        for out, values in maps.items():
            suffix = "".join(out.suffixes[-2:]) if targets.masker is not None else out.suffix
            tmp = stack.enter_context(atomic_path(out, suffix=suffix or ".npy"))
            targets.write_map(values, out, tmp)
    for name in ("pvalue", "pvalue_fwe"):
        stale = _sibling(args.out, name)
        if stale not in maps and stale.exists():
            stale.unlink()
            print(f"removed {stale} (p-values of an earlier run, not of this score map)")
    return [str(p) for p in maps]


def _sibling(out, name):
    """``conv5_r.nii.gz`` -> ``conv5_r_<name>.nii.gz`` (same folder, same format)."""
    out = Path(out)
    suffixes = "".join(out.suffixes[-2:]) if out.name.endswith(".nii.gz") else out.suffix
    stem = out.name[: len(out.name) - len(suffixes)] if suffixes else out.name
    return out.with_name(f"{stem}_{name}{suffixes}")


def run_decode(args):
    targets = _Targets(args.input, args.mask, args.dataset)
    try:
        Y = np.asarray(targets.Y[:, :] if hasattr(targets.Y, "id") else targets.Y)
    finally:
        targets.close()
    y = _read_vector(args.labels)
    groups = _read_vector(args.groups, what="--groups") if args.groups else None
    _probe_and_write({"brain": Y}, y, groups, args)


def _probe_and_write(sources, y, groups, args):
    """``probe_layers`` on ``sources`` (name -> features), table written to ``--out`` and shown."""
    from neuroprobe.probing import probe_layers

    table = probe_layers(
        sources,
        y,
        cv=args.cv,
        scoring=args.scoring,
        groups=groups,
        random_state=args.seed,
        n_jobs=args.n_jobs,
    )
    _write_table(table, args.out)
    print(table[["mean_score", "std_score", "n_features"]].to_string())


def register(subparsers):
    """Add the ``reduce``, ``probe``, ``encode`` and ``decode`` subcommands."""
    raw = argparse.RawDescriptionHelpFormatter

    p = subparsers.add_parser(
        "reduce",
        help="PCA of DNN activations (per layer or joint)",
        description="Principal components of layers of an .act.h5 file.",
        epilog=REDUCE_EPILOG,
        formatter_class=raw,
    )
    p.add_argument("input", help="activation file (.act.h5) from 'neuroprobe extract'")
    p.add_argument("--layer", action="append", help="layer (repeatable; default: all)")
    p.add_argument(
        "--n-components",
        default="50",
        help="components (int), or fraction of variance (float in (0, 1))",
    )
    p.add_argument("--per-layer", action="store_true", help="reduce each layer separately")
    p.add_argument("--standardize", action="store_true", help="z-score features first")
    add_common_arguments(p)
    p.set_defaults(func=run_reduce)

    p = subparsers.add_parser(
        "probe",
        help="decode stimulus labels/values from each layer",
        description="Cross-validated decoding score of every layer.",
        epilog=PROBE_EPILOG,
        formatter_class=raw,
    )
    p.add_argument("input", help="activation file (.act.h5)")
    p.add_argument("--layer", action="append", help="layer (repeatable; default: all)")
    p.add_argument(
        "--labels",
        required=True,
        help="FILE.csv:COLUMN (aligned by stim_id when present), .npy or .txt",
    )
    p.add_argument("--groups", help="FILE.csv:COLUMN or .npy: groups (e.g. runs) for the folds")
    p.add_argument("--cv", type=int, default=5, help="folds (default 5)")
    p.add_argument(
        "--scoring",
        default=None,
        help="accuracy (classes) / correlation (values) by default; any sklearn name",
    )
    add_common_arguments(p)
    p.set_defaults(func=run_probe)

    p = subparsers.add_parser(
        "encode",
        help="per-voxel encoding accuracy map of a layer",
        description="Cross-validated voxelwise ridge encoding of brain "
        "responses from one layer; writes the mean held-out "
        "score of every voxel.",
        epilog=ENCODE_EPILOG,
        formatter_class=raw,
    )
    p.add_argument("input", help="activation file (.act.h5)")
    p.add_argument("--layer", action="append", required=True, help="the layer")
    p.add_argument(
        "--targets",
        required=True,
        help="brain responses: .npy, .npz[:KEY], .h5[:DATASET], NIfTI/CIFTI/GIFTI/MGH",
    )
    p.add_argument("--dataset", default=None, help="dataset in an .h5/.npz targets file")
    p.add_argument("--mask", default=None, help="mask / atlas image for brain targets")
    p.add_argument("--groups", help="FILE.csv:COLUMN or .npy: groups (runs) for the folds")
    p.add_argument("--cv", type=int, default=5, help="outer folds of the map (default 5)")
    p.add_argument("--inner-cv", type=int, default=5, help="folds choosing alphas (default 5)")
    p.add_argument("--alphas", default=None, help="comma-separated ridge alphas")
    p.add_argument(
        "--model",
        default="ridge",
        choices=["ridge", "ols", "lasso", "pls"],
        help="voxelwise ridge / ols (GLM) / lasso, or multivariate PLS (default ridge)",
    )
    p.add_argument("--n-components", type=int, default=2, help="PLS components (default 2)")
    p.add_argument("--scoring", default="correlation", choices=["correlation", "r2"])
    p.add_argument(
        "--n-permutations",
        type=int,
        default=0,
        help="also write permutation p-value maps, uncorrected and family-wise (max statistic "
        "over voxels), as OUT_pvalue and OUT_pvalue_fwe; permutations within --groups",
    )
    add_common_arguments(p)
    p.set_defaults(func=run_encode)

    p = subparsers.add_parser(
        "decode",
        help="decode stimulus labels/values from brain data",
        description="Cross-validated decoding of labels or values from brain response patterns.",
        epilog=DECODE_EPILOG,
        formatter_class=raw,
    )
    p.add_argument("input", help="brain responses: .npy, .npz, .h5, NIfTI/CIFTI/GIFTI/MGH")
    p.add_argument("--dataset", default=None, help="dataset in an .h5/.npz file")
    p.add_argument("--mask", default=None, help="mask / atlas image for brain images")
    p.add_argument("--labels", required=True, help="FILE.csv:COLUMN, .npy or .txt")
    p.add_argument("--groups", help="FILE.csv:COLUMN or .npy: groups (runs) for the folds")
    p.add_argument("--cv", type=int, default=5)
    p.add_argument("--scoring", default=None)
    add_common_arguments(p)
    p.set_defaults(func=run_decode)
