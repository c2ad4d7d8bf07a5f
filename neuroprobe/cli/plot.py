"""``neuroprobe view-map``: draw a brain map (volume, surface, CIFTI) as PNG / SVG / PDF, with
the shown voxels as CSV beside it."""

from __future__ import annotations

from pathlib import Path

from neuroprobe.cli.main import add_command
from neuroprobe.exceptions import CLIError

VIEW_MAP_EXAMPLE = """example:
  neuroprobe view-map conv5_r.nii.gz --pvalues conv5_r_pvalue_fwe.nii.gz --alpha 0.05 \\
      --out conv5_r.png
  neuroprobe view-map lh.r.func.gii rh.r.func.gii --mesh fsaverage5 --kind flat --out r_flat.svg
  neuroprobe view-map sub-01_r.dscalar.nii --out r_cifti.pdf
  neuroprobe view-map conv1_r.nii.gz --compare fc7_r.nii.gz --labels conv1 fc7 --out best.png
(the shown voxels / vertices with their world coordinates and values go to FILE.csv beside the
image; a map is drawn on the MNI152 background and fsaverage meshes when nilearn is installed:
pip install 'neuroprobe[plot]')
"""

_SUFFIXES = (".png", ".svg", ".pdf")


def register(subparsers):
    """Add the ``view-map`` subcommand."""
    p = add_command(
        subparsers, "view-map", run_view_map, {"out": True, "out_required": False},
        help="draw a brain map (NIfTI, GIFTI, CIFTI) as PNG/SVG/PDF",
        description="Draw a brain map: a volume on the MNI152 background (ortho cuts or glass "
        "brain), a surface map on an fsaverage mesh (inflated or flat), a CIFTI dense map "
        "(surface and volume parts), thresholded by a p-value map; or two maps in one 2-D "
        "colour map (--compare).",
        epilog=VIEW_MAP_EXAMPLE,
    )
    p.add_argument("map", nargs="+", metavar="MAP",
                   help="the map: one file, or two GIFTI files (left, right hemisphere)")
    p.add_argument("--pvalues", nargs="+", default=None, metavar="P",
                   help="p-value map(s) of the same shape: only voxels with p < --alpha shown")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (0.05)")
    p.add_argument("--kind", default="auto",
                   choices=["auto", "stat", "glass", "slices", "surface", "flat"],
                   help="volume: stat (ortho cuts), glass, slices (plain matplotlib); "
                   "surface: surface (inflated, lateral + medial) or flat")
    p.add_argument("--mesh", default="fsaverage5", help="surface mesh (default: fsaverage5)")
    p.add_argument("--surface", default="inflated",
                   choices=["pial", "white_matter", "inflated", "sphere", "flat"])
    p.add_argument("--hemi", choices=["left", "right"], default=None,
                   help="hemisphere of a single GIFTI file without that metadata")
    p.add_argument("--threshold", type=float, default=None, help="hide |value| <= this")
    p.add_argument("--vmax", type=float, default=None, help="top of the colour scale")
    p.add_argument("--cmap", default=None, help="matplotlib colour map")
    p.add_argument("--title", default=None)
    p.add_argument("--compare", nargs="+", default=None, metavar="MAP_B",
                   help="a second map: draw both in one 2-D colour map (which explains a voxel "
                   "better)")
    p.add_argument("--labels", nargs=2, default=None, metavar=("A", "B"),
                   help="names of the two maps of --compare")
    p.add_argument("--dpi", type=int, default=300, help="PNG resolution (default: 300)")
    p.add_argument("--no-table", action="store_true", help="do not write the CSV beside")


def _source(files, what):
    if len(files) > 2:
        raise CLIError(f"{what} takes one file, or two GIFTI files (left, right)")
    for f in files:
        if not Path(f).exists():
            raise CLIError(f"{what} {f!r}: no such file")
    return files[0] if len(files) == 1 else tuple(files)


def _default_out(files):
    name = Path(files[0]).name
    for suffix in (".dscalar.nii", ".func.gii", ".shape.gii", ".nii.gz", ".nii", ".gii", ".mgz",
                   ".mgh"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return Path(files[0]).with_name(name + ".png")


def run_view_map(args):
    """Run ``neuroprobe view-map``."""
    from neuroprobe.plotting import (
        plot_map,
        plot_two_band_map,
        save_figure,
        save_figure_with_data,
    )

    out = Path(args.out) if args.out else _default_out(args.map)
    if out.suffix.lower() not in _SUFFIXES:
        raise CLIError(f"--out {out}: expected a {', '.join(_SUFFIXES)} file")
    source = _source(args.map, "MAP")
    if args.compare:
        if args.pvalues:
            raise CLIError("--pvalues cannot be combined with --compare")
        labels = tuple(args.labels) if args.labels else (Path(args.map[0]).name,
                                                         Path(args.compare[0]).name)
        fig = plot_two_band_map(source, _source(args.compare, "--compare"), labels=labels,
                                mesh=args.mesh, vmax=args.vmax, hemi=args.hemi,
                                title=args.title)
    else:
        pvalues = None if args.pvalues is None else _source(args.pvalues, "--pvalues")
        fig = plot_map(source, pvalues=pvalues, alpha=args.alpha, kind=args.kind,
                       mesh=args.mesh, surface=args.surface, threshold=args.threshold,
                       cmap=args.cmap, vmax=args.vmax, hemi=args.hemi, title=args.title)
    if args.no_table:
        written = [save_figure(fig, out, dpi=args.dpi)]
    else:
        saved = save_figure_with_data(fig, out, dpi=args.dpi)
        written = [saved["image"], saved["data"]]
    for path in written:
        print(f"wrote {path}")
    return 0
