"""``neuroprobe report`` / ``neuroprobe.report.build`` on the outputs of CLI commands run here.

A small study is run with the command line (extract, probe, rdm, encode with permutations, roi,
decode, rsa) into one folder; the report built from it must show every output with its
producing command, numbers equal to the files', figures that are real PNG images embedded in a
valid HTML page, and methods text that follows the parameters actually used.
"""

import base64
import csv
import io
import re
import shutil

import numpy as np
import pytest

from neuroprobe.cli.main import main
from neuroprobe.exceptions import ReportError
from neuroprobe.report import build, find_results, read_provenance


def _cli(*args):
    code = main([str(a) for a in args])
    assert code == 0, f"neuroprobe {args[0]} exited {code}"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from PIL import Image

    from neuroprobe.demo import CATEGORIES, make_shapes, simulate_brain, write_brain
    from neuroprobe.stimuli import StimulusSet

    d = tmp_path_factory.mktemp("report_study")
    images, labels = make_shapes(4, seed=0)
    (d / "stimuli").mkdir()
    paths = []
    for i, image in enumerate(images):
        paths.append(str(d / "stimuli" / f"s{i:02d}.png"))
        Image.fromarray(image).save(paths[-1])
    ids = [f"s{i:02d}" for i in range(len(images))]
    StimulusSet.from_paths(paths, ids=ids, attributes={
        "category": np.asarray([CATEGORIES[k] for k in labels])}).write_csv(d / "stimuli.csv")
    sim = simulate_brain(np.random.default_rng(0).normal(size=(len(images), 3)), n_subjects=1,
                         seed=0)
    brain = write_brain(sim, d / "brain")
    r = d / "results"
    r.mkdir()
    bold = brain["subjects"][0]
    _cli("extract", "--model", "shapes-cnn", "--weights", "none", "--seed", "3", "--layers",
         "conv2", "fc1", "--stimuli", d / "stimuli.csv", "--out", r / "acts.act.h5", "--quiet")
    _cli("probe", r / "acts.act.h5", "--labels", f"{d / 'stimuli.csv'}:category", "--cv", "4",
         "--out", r / "probe.csv", "--quiet")
    _cli("rdm", r / "acts.act.h5", "--layer", "conv2", "--layer", "fc1", "--out",
         r / "dnn.rdm.h5", "--quiet")
    _cli("encode", r / "acts.act.h5", "--layer", "fc1", "--targets", bold, "--mask",
         brain["brain_mask"], "--cv", "4", "--inner-cv", "3", "--alphas", "1,10,100",
         "--n-permutations", "20", "--out", r / "fc1_r.nii.gz", "--quiet")
    _cli("roi", bold, "--mask", brain["roi"], "--out", r / "roi.h5", "--quiet")
    _cli("decode", bold, "--mask", brain["roi"], "--labels", f"{d / 'stimuli.csv'}:category",
         "--cv", "4", "--out", r / "decode.csv", "--quiet")
    _cli("rdm", r / "roi.h5", "--out", r / "brain.rdm.h5", "--quiet")
    _cli("rsa", "--model", r / "dnn.rdm.h5", "--target", r / "brain.rdm.h5",
         "--n-permutations", "50", "--out", r / "rsa.csv", "--quiet")
    report = build(r, d / "report")
    return {"dir": d, "results": r, "report": report, "brain": brain}


def _section(report, title_start):
    found = [s for s in report["sections"] if s.title.startswith(title_start)]
    assert len(found) == 1, [s.title for s in report["sections"]]
    return found[0]


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_command_left_a_provenance_record_with_its_parameters(study):
    records = read_provenance(study["results"])
    assert {"acts.act.h5", "probe.csv", "dnn.rdm.h5", "fc1_r.nii.gz", "roi.h5", "decode.csv",
            "brain.rdm.h5", "rsa.csv"} <= set(records)
    enc = records["fc1_r.nii.gz"]
    assert enc["command"] == "encode"
    assert enc["argv"][:2] == ["encode", str(study["results"] / "acts.act.h5")]
    assert enc["parameters"]["alphas"] == "1,10,100"
    assert enc["parameters"]["inner_cv"] == 3
    assert enc["versions"]["numpy"] == np.__version__


def test_each_output_gets_a_section_naming_its_command(study):
    kinds = {r.name: r.kind for r in find_results(study["results"])}
    assert kinds == {"acts.act.h5": "activations", "dnn.rdm.h5": "rdm",
                     "brain.rdm.h5": "rdm", "probe.csv": "probe", "decode.csv": "decode",
                     "fc1_r.nii.gz": "encode", "rsa.csv": "rsa", "roi.h5": "other"}
    report = study["report"]
    for title, command in (("Network activations: acts.act.h5", "extract"),
                           ("Linear probes by layer: probe.csv", "probe"),
                           ("Decoding from the brain: decode.csv", "decode"),
                           ("Encoding maps: fc1_r.nii.gz", "encode"),
                           ("Representational similarity analysis: rsa.csv", "rsa")):
        sec = _section(report, title)
        assert sec.source == f"`neuroprobe {command}`"
        assert sec.code.startswith(f"neuroprobe {command} ")


def test_tables_and_figure_numbers_equal_the_files(study):
    report, r = study["report"], study["results"]
    probe = _rows(r / "probe.csv")
    sec = _section(report, "Linear probes by layer")
    assert [row[0] for row in sec.table[1]] == [p["layer"] for p in probe]
    np.testing.assert_allclose([row[1] for row in sec.table[1]],
                               [float(p["mean_score"]) for p in probe])
    fig_csv = _rows(sec.figures[0][0].with_suffix(".csv"))
    np.testing.assert_allclose([float(x["mean_score"]) for x in fig_csv],
                               [float(p["mean_score"]) for p in probe])
    rsa = _rows(r / "rsa.csv")
    sec = _section(report, "Representational similarity analysis")
    np.testing.assert_allclose([row[2] for row in sec.table[1]], [float(x["score"]) for x in rsa],
                               rtol=1e-6)
    # the encoding map's figure numbers are the map's non-zero voxels, at their indices
    import nibabel as nib

    vol = nib.load(r / "fc1_r.nii.gz").get_fdata()
    sec = _section(report, "Encoding maps")
    cells = _rows(sec.figures[0][0].with_suffix(".csv"))
    got = np.array([float(c["correlation"]) for c in cells])
    idx = tuple(np.array([[int(c[k]) for c in cells] for k in "ijk"]))
    np.testing.assert_allclose(got, vol[idx], rtol=1e-6)
    assert len(cells) == int(np.count_nonzero(np.isfinite(vol) & (vol != 0)))
    pfwe = nib.load(r / "fc1_r_pvalue_fwe.nii.gz").get_fdata()
    inside = np.isfinite(vol) & (vol != 0)
    n_sig = int(np.sum(np.nan_to_num(pfwe[inside], nan=1.0) <= 0.05))
    assert f"{n_sig} target(s) significant at FWE p <= 0.05" in " ".join(sec.paragraphs())
    # the histogram's numbers: every target's score and its FWE p-value
    hist = _rows(sec.figures[1][0].with_suffix(".csv"))
    np.testing.assert_allclose([float(h["correlation"]) for h in hist], vol[inside], rtol=1e-6)
    np.testing.assert_allclose([float(h["pvalue_fwe"]) for h in hist],
                               np.nan_to_num(pfwe[inside], nan=1.0), rtol=1e-6)


def test_html_is_valid_self_contained_and_every_image_is_a_real_png(study):
    html5lib = pytest.importorskip("html5lib")
    from PIL import Image

    page = study["report"]["html"].read_bytes()
    html5lib.HTMLParser(strict=True).parse(page)  # raises on any parse error
    srcs = re.findall(rb'<img src="([^"]+)"', page)
    assert len(srcs) == len(study["report"]["figures"]) >= 5
    for src in srcs:
        assert src.startswith(b"data:image/png;base64,")  # embedded: works offline and moved
        image = Image.open(io.BytesIO(base64.b64decode(src.split(b",", 1)[1])))
        assert image.size[0] > 50 and image.size[1] > 50


def test_markdown_links_resolve_after_moving_the_report(study, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(study["report"]["markdown"].parent, moved)
    text = (moved / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links and all(not link.startswith("/") and (moved / link).is_file() for link in links)


def test_methods_text_follows_the_parameters_used(study, tmp_path):
    report = study["report"]
    enc = " ".join(_section(report, "Encoding maps").paragraphs())
    assert "among 1, 10, 100" in enc and "20 stimulus permutations" in enc
    assert "KFold(n_splits=3" in enc  # the inner splitter recorded in the sidecar
    methods = " ".join(_section(report, "Methods").paragraphs())
    assert "layers conv2 and fc1 of the network shapes-cnn" in methods
    assert "random(seed=3)" in methods  # the weights identity stored in the .act.h5
    refs = " ".join(_section(report, "References").paragraphs())
    assert "Kriegeskorte" in refs and "Nichols" in refs
    # run encode again with other alphas: the report's text changes with them
    r2 = tmp_path / "results"
    shutil.copytree(study["results"], r2, ignore=shutil.ignore_patterns("report"))
    b = study["brain"]
    _cli("encode", r2 / "acts.act.h5", "--layer", "fc1", "--targets", b["subjects"][0],
         "--mask", b["brain_mask"], "--cv", "4", "--inner-cv", "2", "--alphas", "5,50",
         "--out", r2 / "fc1_r.nii.gz", "--quiet")
    enc2 = " ".join(_section(build(r2), "Encoding maps").paragraphs())
    assert "among 5, 50" in enc2 and "1, 10, 100" not in enc2
    assert "KFold(n_splits=2" in enc2 and "permutations" not in enc2


def test_a_folder_with_nothing_known_is_refused_naming_it(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ReportError, match=r"results folder .*: nothing a report knows"):
        build(tmp_path)
    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("neuroprobe report: error:") and str(tmp_path) in err
    assert main(["report", str(tmp_path / "missing")]) == 1
    assert "not a folder" in capsys.readouterr().err


def test_an_unreadable_result_names_its_file(tmp_path):
    (tmp_path / "rsa.csv").write_text("source,model,target_source,target,method,score\n")
    with pytest.raises(ReportError, match=r"rsa\.csv: the table has no rows"):
        build(tmp_path)


def test_cli_report_prints_what_it_wrote(study, capsys, tmp_path):
    assert main(["report", str(study["results"]), "--out", str(tmp_path / "rep"),
                 "--link-images"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "rep" / "report.html") in out
    page = (tmp_path / "rep" / "report.html").read_text()
    assert 'src="figures/' in page and "data:image" not in page


def test_report_in_a_headless_browser_has_no_errors_and_sized_images(study):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="no headless browser here (pip install playwright && "
        "playwright install chromium to run this check)")
    errors = []
    with sync_api.sync_playwright() as p:
        try:
            browser = p.chromium.launch()
        except Exception as exc:  # noqa: BLE001 - the browser binary is not installed
            pytest.skip(f"chromium not installed for playwright: {exc}")
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(study["report"]["html"].as_uri())
        sizes = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        browser.close()
    assert not errors
    assert sizes and all(s > 0 for s in sizes)
