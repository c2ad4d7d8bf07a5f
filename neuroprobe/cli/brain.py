"""``neuroprobe roi`` (ROI signals / voxels to HDF5 or CSV) and ``neuroprobe hrf`` (regressors)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from neuroprobe._utils import atomic_h5, atomic_path
from neuroprobe.cli.main import CLIError, add_command

ROI_EXAMPLE = """example:
  neuroprobe roi sub-01_betas.nii.gz --mask aparc+aseg.nii.gz --lut FreeSurferColorLUT.txt \\
      --labels ctx-lh-fusiform ctx-rh-fusiform --summary mean --out fusiform.csv
  neuroprobe roi sub-01.dtseries.nii --labels CORTEX_LEFT --out lh.h5
  neuroprobe roi lh.func.gii rh.func.gii --pair --out surf.h5
"""

HRF_EXAMPLE = """example:
  neuroprobe hrf --features alexnet.act.h5 --layer fc7 --events run-1_events.csv \\
      --tr 2 --n-scans 240 --hrf-model spm+derivative --out run-1_fc7_regressors.h5
  (events CSV: columns onset[, duration][, stim_id]; with stim_id, feature rows are picked by
  stimulus ID, so a stimulus may be shown several times)
"""


_COMMANDS = {  # help, description and epilog of each subcommand
    "roi": dict(
        help="extract ROI signals or voxels from brain images to HDF5/CSV",
        description="Mask brain images (NIfTI, CIFTI-2, GIFTI, MGH/MGZ) with BrainMasker and "
        "write the (n_samples, n_voxels or n_regions) array.",
        epilog=ROI_EXAMPLE,
    ),
    "hrf": dict(
        help="convolve per-event features with an HRF into scan regressors",
        description="Per-event features (an .act.h5 layer, .npy or .csv) + event timing -> "
        "regressors sampled at the scans (HRFConvolver).",
        epilog=HRF_EXAMPLE,
    ),
}


def register(subparsers):
    """Add the ``roi`` and ``hrf`` subcommands."""
    p = add_command(subparsers, "roi", run_roi, {}, **_COMMANDS["roi"])
    p.add_argument("images", nargs="+", help="image files, concatenated along samples")
    p.add_argument("--mask", nargs="+", default=None,
                   help="binary mask or label atlas (two files for a GIFTI pair)")
    p.add_argument("--labels", nargs="+", default=None,
                   help="labels to keep: values, names, CIFTI structures, or 'all'")
    p.add_argument("--lut", default=None, help="FreeSurfer-style lookup table of a volume atlas")
    p.add_argument("--summary", choices=["mean", "max", "std"], default=None,
                   help="one value per region instead of voxels")
    p.add_argument("--pair", action="store_true",
                   help="images are GIFTI (left, right) hemisphere pairs, two files each")
    p.add_argument("--dataset", default="Y", help="HDF5 dataset name (default: Y)")
    p.add_argument("--ids", default=None,
                   help="stimulus IDs of the samples, one per row (FILE.npy, FILE.npz:KEY, "
                   "FILE.txt, FILE.csv[:COLUMN], events.tsv[:COLUMN]); stored as 'stim_ids' in "
                   "the .h5 output so encode / rdm / decode align rows by ID (.h5 output only)")

    p = add_command(subparsers, "hrf", run_hrf, {}, **_COMMANDS["hrf"])
    p.add_argument("--features", required=True, help=".act.h5 (with --layer), .npy or .csv")
    p.add_argument("--layer", default=None, help="layer of an .act.h5 file")
    p.add_argument("--events", required=True,
                   help="events CSV or StimulusSet CSV with onset[, duration][, stim_id]")
    p.add_argument("--tr", type=float, required=True, help="repetition time (s)")
    p.add_argument("--n-scans", type=int, required=True, help="number of scans")
    p.add_argument("--hrf-model", default="spm",
                   help="spm, spm+derivative, spm+derivative+dispersion, or a kernel .npy/.txt "
                   "sampled every tr/oversampling s (default: spm)")
    p.add_argument("--oversampling", type=int, default=50)
    p.add_argument("--slice-time-ref", type=float, default=0.0)
    p.add_argument("--dataset", default="X", help="HDF5 dataset name (default: X)")


# --------------------------------------------------------------------------- output
def _write_table(array, names, out, dataset, attrs=None):
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        import h5py

        with atomic_h5(out) as fh:  # built in memory: a full disk is one clean error
            dset = fh.create_dataset(dataset, data=np.asarray(array, np.float32))
            for key, value in (attrs or {}).items():
                dset.attrs[key] = value
            fh.create_dataset(f"{dataset}_feature_names", data=np.asarray(names, dtype=object),
                              dtype=h5py.string_dtype())
    elif suffix == ".csv":
        with atomic_path(out, suffix=".csv") as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(list(names))
            for row in np.asarray(array, np.float32):
                writer.writerow([repr(float(v)) for v in row])
    else:
        raise CLIError(f"--out {out}: expected a .h5/.hdf5 or .csv file")
    return out


# --------------------------------------------------------------------------- roi
def run_roi(args):
    """Run ``neuroprobe roi``."""
    from neuroprobe.transformers.brain import BrainMasker

    images = list(args.images)
    if args.pair:
        if len(images) % 2:
            raise CLIError(f"--pair needs an even number of images, got {len(images)}")
        images = [tuple(images[i : i + 2]) for i in range(0, len(images), 2)]
    mask = None
    if args.mask:
        if len(args.mask) > 2:
            raise CLIError("--mask takes one file, or two for a GIFTI pair")
        mask = args.mask[0] if len(args.mask) == 1 else tuple(args.mask)
    if args.lut:
        if mask is None:
            raise CLIError("--lut needs --mask (the atlas it describes)")
        mask = (mask, args.lut)
    labels = args.labels
    if labels == ["all"]:
        labels = "all"
    masker = BrainMasker(mask_img=mask, labels=labels, summary=args.summary)
    source = images[0] if len(images) == 1 else images
    out = Path(args.out)
    ids = None
    if args.ids:
        from neuroprobe.io.ids import read_ids

        if out.suffix.lower() not in (".h5", ".hdf5"):
            raise CLIError(f"--ids needs an .h5 --out (the IDs are stored beside the data); "
                           f"got {out}")
        ids = read_ids(args.ids, "--ids")
    if out.suffix.lower() in (".h5", ".hdf5"):
        masker.fit(source)  # streams the data once to find NaN voxels
        try:
            masker.transform_to_h5(source, out, dataset=args.dataset, stim_ids=ids)
        except ValueError as exc:
            if ids is None:
                raise
            raise CLIError(f"--ids {args.ids}: {exc}") from None
        shape = (None, masker.n_features_out_)
    else:
        Y = masker.fit_transform(source)
        _write_table(Y, masker.get_feature_names_out(), out, args.dataset)
        shape = Y.shape
    if not args.quiet:
        print(f"wrote {out} ({masker.n_features_out_} columns"
              f"{'' if shape[0] is None else f', {shape[0]} samples'})")
    return 0


# --------------------------------------------------------------------------- hrf
def _read_csv_rows(path):
    path = Path(path)
    if not path.exists():
        raise CLIError(f"file not found: {path}")
    with open(path, newline="") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",\t;")
        except csv.Error:
            dialect = csv.excel
        return [row for row in csv.reader(fh, dialect) if row]


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_events(path):
    """Read onsets, durations and stimulus IDs (or None) from an events / StimulusSet CSV."""
    rows = _read_csv_rows(path)
    if not rows:
        raise CLIError(f"{path}: empty events file")
    header = [h.strip() for h in rows[0]]
    if "onset" not in header:
        raise CLIError(f"{path}: events CSV needs an 'onset' column; columns are {header}")
    col = {name: i for i, name in enumerate(header)}
    body = rows[1:]

    def numbers(name):
        try:
            return np.array([float(r[col[name]]) for r in body])
        except (ValueError, IndexError) as exc:
            raise CLIError(f"{path}: column {name!r} must be numeric ({exc})") from None

    onsets = numbers("onset")
    durations = numbers("duration") if "duration" in col else np.zeros(len(body))
    ids = None
    for key in ("stim_id", "stimulus", "stim"):
        if key in col:
            ids = np.array([r[col[key]] for r in body])
            break
    return onsets, durations, ids


def read_features(path, layer=None):
    """Features (n, n_features) float32 and row IDs (or None) from .act.h5, .npy or .csv."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".h5", ".hdf5")):
        from neuroprobe.io.activations import open_activations

        if layer is None:
            with open_activations(path) as f:
                raise CLIError(f"{path}: pass --layer, one of {f.layers}")
        with open_activations(path) as f:
            data = f.read(layer)
            ids = np.asarray(f.stim_ids, dtype=str)
        return data.reshape(len(data), -1), ids
    if name.endswith(".npy"):
        if not path.exists():
            raise CLIError(f"features file not found: {path}")
        data = np.load(path)
        if data.ndim == 1:
            data = data[:, None]
        return np.asarray(data, np.float32).reshape(len(data), -1), None
    if name.endswith((".csv", ".tsv", ".txt")):
        rows = _read_csv_rows(path)
        if rows and not all(_is_number(v) for v in rows[0][1:] or rows[0]):
            rows = rows[1:]
        ids = None
        if rows and not _is_number(rows[0][0]):
            ids = np.array([r[0] for r in rows])
            rows = [r[1:] for r in rows]
        try:
            data = np.array([[float(v) for v in r] for r in rows], dtype=np.float32)
        except ValueError as exc:
            raise CLIError(f"{path}: features must be numeric ({exc})") from None
        return data, ids
    raise CLIError(f"--features {path}: expected .act.h5, .npy or .csv")


def _hrf_model(text):
    path = Path(text)
    if path.suffix.lower() in (".npy", ".txt", ".csv"):
        if not path.exists():
            raise CLIError(f"HRF kernel file not found: {path}")
        if path.suffix.lower() == ".npy":
            return np.load(path)
        return np.loadtxt(path, delimiter="," if path.suffix.lower() == ".csv" else None)
    return " + ".join(part.strip() for part in text.split("+"))


def run_hrf(args):
    """Run ``neuroprobe hrf``."""
    from neuroprobe.transformers.hrf import HRFConvolver

    features, feature_ids = read_features(args.features, args.layer)
    onsets, durations, event_ids = read_events(args.events)
    if event_ids is not None and feature_ids is not None:
        index = {sid: i for i, sid in enumerate(feature_ids)}
        missing = [s for s in event_ids if s not in index]
        if missing:
            raise CLIError(
                f"{args.events}: {len(missing)} stimulus IDs are not in {args.features} "
                f"(first: {missing[0]!r})"
            )
        features = features[[index[s] for s in event_ids]]
    elif len(features) != len(onsets):
        raise CLIError(
            f"{args.features} has {len(features)} rows but {args.events} has {len(onsets)} "
            "events (add a stim_id column to pick feature rows by stimulus)"
        )
    model = _hrf_model(args.hrf_model)
    conv = HRFConvolver(tr=args.tr, n_scans=args.n_scans, onsets=onsets, durations=durations,
                        hrf_model=model, oversampling=args.oversampling,
                        slice_time_ref=args.slice_time_ref)
    X = conv.fit_transform(features)
    base = [f"{args.layer}:f{i}" if args.layer else f"f{i}" for i in range(features.shape[1])]
    names = conv.get_feature_names_out(base)
    attrs = {"tr": args.tr, "n_scans": args.n_scans, "hrf_model": json.dumps(
        args.hrf_model), "oversampling": args.oversampling, "slice_time_ref": args.slice_time_ref}
    out = _write_table(X, names, args.out, args.dataset, attrs)
    if not args.quiet:
        print(f"wrote {out} ({X.shape[0]} scans x {X.shape[1]} regressors)")
    return 0
