"""``neuroprobe view-map``: writes the image (PNG 300 dpi / SVG / PDF) and the shown voxels as
CSV, thresholded by --pvalues; bad input is one line naming the file."""

import csv

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from neuroprobe import plotting
from neuroprobe.cli.main import main

pytest.importorskip("nilearn")

AFFINE = np.array([[4.0, 0, 0, -20], [0, 4.0, 0, -40], [0, 0, 4.0, -20], [0, 0, 0, 1]])


@pytest.fixture()
def maps(tmp_path):
    rng = np.random.default_rng(0)
    r = rng.uniform(0.1, 1.0, (10, 10, 10)).astype(np.float32)
    p = rng.uniform(0, 0.5, (10, 10, 10)).astype(np.float32)
    nib.Nifti1Image(r, AFFINE).to_filename(tmp_path / "r.nii.gz")
    nib.Nifti1Image(p, AFFINE).to_filename(tmp_path / "p.nii.gz")
    nib.Nifti1Image(p[:, :, :8], AFFINE).to_filename(tmp_path / "p8.nii.gz")
    return tmp_path, r, p


def _rows(path):
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return rows


def test_view_map_writes_png_and_the_shown_voxels(maps, capsys):
    d, r, p = maps
    code = main(["view-map", str(d / "r.nii.gz"), "--pvalues", str(d / "p.nii.gz"),
                 "--alpha", "0.05", "--out", str(d / "out" / "r.png"), "--dpi", "50"])
    assert code == 0
    out = capsys.readouterr().out
    assert f"wrote {d / 'out' / 'r.png'}" in out and f"wrote {d / 'out' / 'r.csv'}" in out
    with Image.open(d / "out" / "r.png") as img:
        assert img.size[0] > 200
    rows = _rows(d / "out" / "r.csv")
    ijk = np.array([[int(x[k]) for k in "ijk"] for x in rows])
    shown = np.zeros(r.shape, bool)
    shown[tuple(ijk.T)] = True
    np.testing.assert_array_equal(shown, p < 0.05)  # the CLI thresholds as the API does
    np.testing.assert_allclose([float(x["value"]) for x in rows], r[tuple(ijk.T)], rtol=1e-6)
    fig = plotting.plot_map(d / "r.nii.gz", pvalues=d / "p.nii.gz")
    assert len(plotting.figure_table(fig)["value"]) == len(rows)


def test_view_map_svg_default_out_and_compare(maps, capsys):
    d, _, _ = maps
    assert main(["view-map", str(d / "r.nii.gz"), "--kind", "glass",
                 "--out", str(d / "g.svg"), "--no-table"]) == 0
    assert "<svg" in (d / "g.svg").read_text() and not (d / "g.csv").exists()
    assert main(["view-map", str(d / "r.nii.gz"), "--kind", "slices"]) == 0
    assert (d / "r.png").exists() and (d / "r.csv").exists()  # beside the map
    assert main(["view-map", str(d / "r.nii.gz"), "--compare", str(d / "p.nii.gz"),
                 "--labels", "conv1", "fc7", "--out", str(d / "two.pdf"), "--no-table"]) == 0
    assert (d / "two.pdf").read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize("args, message", [
    (["{d}/r.nii.gz", "--pvalues", "{d}/p8.nii.gz", "--out", "{d}/x.png"],
     "pvalues {d}/p8.nii.gz has shape (10, 10, 8) but the map {d}/r.nii.gz has shape "
     "(10, 10, 10)"),
    (["{d}/missing.nii.gz", "--out", "{d}/x.png"], "MAP '{d}/missing.nii.gz': no such file"),
    (["{d}/r.nii.gz", "--out", "{d}/x.jpg"], "--out {d}/x.jpg: expected a .png, .svg, .pdf"),
])
def test_view_map_bad_input_is_one_line_naming_the_file(maps, capsys, args, message):
    d, _, _ = maps
    code = main(["view-map", *[a.format(d=d) for a in args]])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0].startswith("neuroprobe view-map: error: ")
    assert message.format(d=d) in err[0]
    assert not (d / "x.png").exists()
