"""``neuroprobe searchlight``: RSA or encoding searchlight maps of volume / surface data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroprobe.cli.main import add_command, from_io
from neuroprobe.exceptions import CLIError

EPILOG = """\
Data: brain images with one volume / map per stimulus (NIfTI 4-D or a list of 3-D volumes,
GIFTI .func.gii with --mesh, CIFTI .dscalar.nii / .dtseries.nii with --mesh LEFT --mesh RIGHT for
its cortices), read through BrainMasker (--mask restricts centres and members). The maps are
written in the data's format (one map per model; NaN off the centres); with --n-permutations a
family-wise (max-statistic over centres) p-value map is written beside --out (<stem>_pfwe).
Models: RDM files [NAME=]FILE.rdm.h5[:RDM] (neuroprobe / DNNBrain), FILE.npy, FILE.npz:KEY,
FILE.h5:DATASET (condensed or square RDMs, or stacks); stored stimulus IDs are matched with
--ids (the IDs of the data's rows). Encoding: --features FILE[:KEY] (n_stimuli x n_features) or
an activation file FILE.act.h5 with --layer.
examples:
  neuroprobe searchlight betas.nii.gz --mask brain.nii.gz --radius 6 \\
      --model alexnet.rdm.h5:fc7 --ids stimuli.csv:stim_id --n-permutations 1000 --out rsa.nii.gz
  neuroprobe searchlight lh.betas.func.gii --mesh lh.pial.surf.gii --radius 10 \\
      --model model.npy --out lh.rsa.func.gii
  neuroprobe searchlight betas.nii.gz --analysis encoding --features alexnet.act.h5 \\
      --layer fc7 --radius 3 --radius-unit voxels --out r2.nii.gz
"""


def register(subparsers):
    """Add the ``searchlight`` subcommand."""
    p = add_command(subparsers, "searchlight", run_searchlight, {},
                    help="RSA or encoding searchlight maps (volumes, surfaces, CIFTI)",
                    description="A score for every searchlight (spheres in volumes, geodesic "
                                "discs on surfaces): RDM comparison with model RDMs or a "
                                "cross-validated ridge encoding score; FWE p-values by "
                                "stimulus permutations.", epilog=EPILOG)
    p.add_argument("data", help="brain images, one sample per stimulus (NIfTI, GIFTI, CIFTI)")
    p.add_argument("--mask", default=None, help="mask image in the space of the data")
    p.add_argument("--mesh", action="append", default=None,
                   help="surface mesh (.surf.gii or FreeSurfer surface) of GIFTI data, or of "
                        "the CIFTI cortices (left first; repeat for the right)")
    p.add_argument("--analysis", default="rsa", choices=["rsa", "encoding"])
    p.add_argument("--radius", type=float, default=6.0,
                   help="searchlight radius (mm; voxels with --radius-unit voxels; default 6)")
    p.add_argument("--radius-unit", default="mm", choices=["mm", "voxels"])
    p.add_argument("--model", action="append", default=None,
                   help="model RDM source [NAME=]FILE[:KEY] (repeatable; --analysis rsa)")
    p.add_argument("--ids", default=None,
                   help="stimulus IDs of the data's rows (FILE.npy, FILE.txt, FILE.csv[:COLUMN])")
    p.add_argument("--metric", default="correlation",
                   choices=["correlation", "euclidean", "sqeuclidean", "crossnobis"])
    p.add_argument("--comparison", default="spearman",
                   help="RDM comparison: spearman, pearson, rho_a, cosine, kendall_tau_a/b")
    p.add_argument("--conditions", default=None,
                   help="CSV:COLUMN: condition of every row (averaged; crossnobis: required)")
    p.add_argument("--runs", default=None, help="CSV:COLUMN: run of every row (crossnobis)")
    p.add_argument("--features", default=None,
                   help="--analysis encoding: FILE[:KEY] features (n_stimuli x n_features)")
    p.add_argument("--layer", default=None, help="layer of an .act.h5 --features file")
    p.add_argument("--alpha", type=float, default=1.0, help="ridge penalty (default 1)")
    p.add_argument("--cv", type=int, default=5, help="encoding folds (default 5)")
    p.add_argument("--scoring", default="r2", choices=["r2", "correlation"])
    p.add_argument("--n-permutations", type=int, default=0,
                   help="stimulus permutations for FWE p-values (default 0: none)")
    p.add_argument("--backend", default="numpy", choices=["numpy", "torch"])


_SUFFIXES = {"nifti": (".nii", ".nii.gz"), "mgh": (".mgz", ".mgh"),
             "cifti": (".dscalar.nii",), "gifti": (".gii",)}


def _check_out(out, masker):
    suffixes = _SUFFIXES.get(masker.format_)
    if suffixes is None:
        raise CLIError("a GIFTI pair gives two maps: run one hemisphere at a time")
    if not out.name.lower().endswith(suffixes):
        raise CLIError(f"--out {out}: {masker.format_} data give maps written as "
                       f"{' / '.join(suffixes)}")


def _pfwe_path(out):
    name = out.name
    for suffix in (".dscalar.nii", ".func.gii", ".shape.gii", ".nii.gz", ".nii", ".gii",
                   ".mgz", ".mgh"):
        if name.lower().endswith(suffix):
            return out.with_name(name[: -len(suffix)] + "_pfwe" + name[-len(suffix):])
    return out.with_name(name + "_pfwe")


def _read_models(specs):
    """RDMData of all ``--model`` sources (aligned to the first source with stimulus IDs)."""
    from neuroprobe.io.arrays import read_target_array, split_spec
    from neuroprobe.io.ids import align_ids
    from neuroprobe.io.rdm import RDMData, load_rdms
    from neuroprobe.rsa import select_rdms, to_condensed

    stacks, names, ref_ids = [], [], None
    for spec in specs:
        name, _, rest = spec.rpartition("=") if "=" in spec.split(":")[0] else ("", "", spec)
        path, key = split_spec(rest)
        if not Path(path).exists():
            raise CLIError(f"--model: file not found: {path}")
        if str(path).lower().endswith((".rdm.h5", ".rdm.hdf5")):
            data = from_io(load_rdms, path)
            rdms = data.rdms if key is None else data[key][None]
            rdm_names = data.names if key is None else [key]
            ids = data.stim_ids
        else:
            arr, ids = from_io(read_target_array, path, key)
            rdms = np.atleast_2d(from_io(to_condensed, np.asarray(arr, np.float64), "--model"))
            rdm_names = [name or Path(path).name.split(".")[0]] if rdms.shape[0] == 1 else [
                f"{name or Path(path).name.split('.')[0]}[{i}]" for i in range(rdms.shape[0])]
        if name and key is None and len(rdm_names) == 1:
            rdm_names = [name]
        if ids is not None and ref_ids is None:
            ref_ids = np.asarray(ids).astype(str)
        elif ids is not None:
            rdms = select_rdms(rdms, from_io(align_ids, ref_ids, np.asarray(ids).astype(str),
                                             what=f"--model {spec}", reference="--model"))
        stacks.append(np.asarray(rdms, np.float64))
        names += list(rdm_names)
    sizes = {s.shape[1] for s in stacks}
    if len(sizes) > 1:
        raise CLIError(f"--model: the RDMs have different numbers of stimuli ({sorted(sizes)} "
                       "pairs)")
    return RDMData(np.concatenate(stacks), names, ref_ids)


def _features(args, n_rows):
    from neuroprobe.io.arrays import read_target_array, split_spec

    path, key = split_spec(args.features)
    if str(path).lower().endswith(".act.h5"):
        from neuroprobe.io.activations import read_layers_2d

        if args.layer is None:
            raise CLIError("--layer is required with an .act.h5 --features file")
        layers = from_io(read_layers_2d, path, [args.layer])
        F = np.asarray(layers[args.layer] if isinstance(layers, dict) else layers[0])
    else:
        F, _ = from_io(read_target_array, path, key)
        F = np.asarray(F)
    F = F.reshape(F.shape[0], -1)
    if F.shape[0] != n_rows:
        raise CLIError(f"--features has {F.shape[0]} rows but the data have {n_rows} samples")
    return F


def run_searchlight(args):
    """Fit a :class:`~neuroprobe.searchlight.Searchlight` and write its maps."""
    from neuroprobe._utils import atomic_path
    from neuroprobe.io.arrays import read_column
    from neuroprobe.io.ids import read_ids
    from neuroprobe.searchlight import Searchlight
    from neuroprobe.transformers.brain import BrainMasker

    out = Path(args.out)
    data = Path(args.data)
    if not data.exists():
        raise CLIError(f"data: file not found: {data}")
    masker = BrainMasker(mask_img=args.mask)
    X = from_io(masker.fit_transform, str(data))
    _check_out(out, masker)
    ids = from_io(read_ids, args.ids, "--ids") if args.ids else None
    if ids is not None and len(ids) != X.shape[0]:
        raise CLIError(f"--ids: {len(ids)} IDs for the {X.shape[0]} samples of {data.name}")
    fit = {"stim_ids": ids}
    if args.conditions:
        fit["conditions"] = from_io(read_column, args.conditions, ids, "--conditions",
                                    numeric=False)
    if args.runs:
        fit["cv_groups"] = from_io(read_column, args.runs, ids, "--runs", numeric=False)
    mesh = None
    if args.mesh and masker.format_ == "gifti":
        if len(args.mesh) != 1:
            raise CLIError(f"--mesh: GIFTI data of one hemisphere need one mesh; got "
                           f"{len(args.mesh)}")
        mesh = args.mesh[0]
    elif args.mesh:  # CIFTI: the left cortex first, then the right one
        mesh = dict(zip(("CORTEX_LEFT", "CORTEX_RIGHT"), args.mesh))
    y, models = None, None
    if args.analysis == "rsa":
        if not args.model:
            raise CLIError("--analysis rsa needs --model RDM sources")
        models = _read_models(args.model)
    else:
        if not args.features:
            raise CLIError("--analysis encoding needs --features")
        y = _features(args, X.shape[0])
        fit = {}
    sl = Searchlight(analysis=args.analysis, radius=args.radius, radius_unit=args.radius_unit,
                     masker=masker, mesh=mesh, metric=args.metric, comparison=args.comparison,
                     model_rdms=models, alpha=args.alpha, cv=args.cv, scoring=args.scoring,
                     n_permutations=args.n_permutations, random_state=args.seed,
                     backend=args.backend, device=args.device, n_jobs=args.n_jobs)
    from_io(sl.fit, X, y, **fit)
    what = args.analysis if args.analysis == "encoding" else f"rsa {args.comparison}"
    targets = [(out, "score", f"searchlight {what}, r={args.radius:g} {args.radius_unit}")]
    if sl.pvalues_fwe_ is not None:
        targets.append((_pfwe_path(out), "pvalue_fwe",
                        f"searchlight FWE p ({args.n_permutations} permutations)"))
    for path, kind, text in targets:
        img = sl.to_image(kind, description=text)
        suffix = "".join(path.suffixes[-2:])
        with atomic_path(path, suffix=suffix) as tmp:
            img.to_filename(str(tmp))
        print(f"wrote {path} ({kind}: {text})")
    names = masker.get_feature_names_out()
    for k, name in enumerate(sl.model_names_):
        best = int(np.nanargmax(sl.score_map_[:, k]))
        line = (f"{name}: {len(sl.centers_)} centres, max {sl.score_map_[best, k]:.4g} at "
                f"{names[sl.centers_[best]]}")
        if sl.pvalues_fwe_ is not None:
            line += f", min FWE p {np.nanmin(sl.pvalues_fwe_[:, k]):.4g}"
        print(line)
    return 0
