"""The report writer (Markdown + HTML) and the study figures of neuroprobe.plotting."""

import base64

import numpy as np
import pytest

from neuroprobe import plotting
from neuroprobe.report import Section, format_value, markdown_table, write_report

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def figure_file(tmp_path):
    fig = plotting.plot_layer_profile(["a", "b"], [0.1, 0.2])
    return plotting.save_figure(fig, tmp_path / "figures" / "f.png")


def test_write_report_links_figures_and_tables(tmp_path, figure_file):
    sections = [
        Section("Decoding <by> layer", ["First `code` paragraph.", "Second & last."],
                figures=[("figures/f.png", "accuracy | by layer")],
                table=(["layer", "accuracy", "p"], [["conv1", 0.41234, 1e-5], ["fc|2", 0.9, 1]]),
                code="neuroprobe probe acts.act.h5 --out probe.csv"),
    ]
    paths = write_report(tmp_path, "Study <1>", sections, summary="line one\nline `two`")
    md, html = paths["markdown"].read_text(), paths["html"].read_text()
    # Markdown: heading, summary quote, table with escaped pipes and formatted numbers, image
    assert md.startswith("# Study <1>\n")
    assert "> line one\n> line `two`" in md
    assert "| conv1 | 0.412 | 1.0e-05 |" in md and "| fc\\|2 | 0.900 | 1 |" in md
    assert "![accuracy | by layer](figures/f.png)" in md
    assert "```bash\nneuroprobe probe acts.act.h5 --out probe.csv\n```" in md
    # HTML: escaped text, inline code, linked image, table cells
    assert "<h1>Study &lt;1&gt;</h1>" in html and "<h2>Decoding &lt;by&gt; layer</h2>" in html
    assert "<p>First <code>code</code> paragraph.</p>" in html and "Second &amp; last." in html
    assert '<img src="figures/f.png"' in html and "<td>0.412</td>" in html
    assert html.count("<tr>") == 3
    # absolute figure paths inside the folder become relative links
    paths = write_report(tmp_path, "t", [Section("s", figures=[(figure_file, "c")])], name="abs")
    assert '<img src="figures/f.png"' in paths["html"].read_text()


def test_relative_report_folder_links_relative_to_the_report(tmp_path, monkeypatch):
    """A report folder given relative to the working directory (``--out neuroprobe_demo``) links
    its figures relative to the report file: it opens wherever it is moved."""
    import re
    import shutil

    monkeypatch.chdir(tmp_path)
    fig = plotting.save_figure(plotting.plot_layer_profile(["a", "b"], [0.1, 0.2]),
                               "study/figures/f.png")
    sections = [Section("s", figures=[(fig.absolute(), "absolute"),
                                      ("figures/f.png", "relative to the report folder")])]
    write_report("study", "t", sections)
    shutil.move("study", "moved_away")
    html = (tmp_path / "moved_away" / "report.html").read_text()
    md = (tmp_path / "moved_away" / "report.md").read_text()
    links = re.findall(r'src="([^"]+)"', html) + re.findall(r"\]\(([^)]+)\)", md)
    assert links == ["figures/f.png"] * 4
    assert all((tmp_path / "moved_away" / link).is_file() for link in links)


def test_embedded_images_make_one_self_contained_file(tmp_path, figure_file):
    html = write_report(tmp_path, "t", [Section("s", figures=[("figures/f.png", "c")])],
                        embed_images=True)["html"].read_text()
    start = html.index("data:image/png;base64,") + len("data:image/png;base64,")
    data = base64.b64decode(html[start : html.index('"', start)])
    assert data == figure_file.read_bytes()


def test_missing_figure_or_bad_table_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        write_report(tmp_path, "t", [Section("s", figures=[("nope.png", "c")])])
    with pytest.raises(ValueError, match="row 0 has 1 cells"):
        write_report(tmp_path, "t", [Section("s", table=(["a", "b"], [[1]]))])
    with pytest.raises(TypeError, match="Section"):
        write_report(tmp_path, "t", ["not a section"])
    assert not list(tmp_path.glob("report.*"))


def test_format_value_and_markdown_table():
    assert format_value(0.5) == "0.500" and format_value(3) == "3" and format_value(True) == "True"
    assert format_value(float("nan")) == "nan" and format_value(2e-7) == "2.0e-07"
    assert format_value(np.float32(0.25)) == "0.250" and format_value(np.int64(7)) == "7"
    assert markdown_table(["a"], [[1]]).splitlines() == ["| a |", "|---|", "| 1 |"]


# ------------------------------------------------------------------------------ study figures
def _png(fig, path):
    plotting.save_figure(fig, path)
    return path.read_bytes()[:8] == PNG


def test_layer_and_rsa_profiles(tmp_path):
    layers = ["conv1", "conv2", "fc"]
    fig = plotting.plot_layer_profile(layers, [0.2, 0.5, 0.7], errors=[0.1, 0.1, 0.1],
                                      chance=0.25, highlight="conv2", ylabel="acc", title="t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == layers
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.2, 0.5, 0.7])
    assert _png(fig, tmp_path / "a.png")
    fig = plotting.plot_rsa_profile(layers, [0.1, 0.4, 0.2], ceiling=(0.3, 0.6),
                                    pvalues=[0.5, 0.01, 0.2], highlight="conv2")
    ax = fig.axes[0]
    np.testing.assert_allclose([b.get_height() for b in ax.patches[:3]], [0.1, 0.4, 0.2])
    assert [t.get_text() for t in ax.texts] == ["*"]  # one significant layer
    assert _png(fig, tmp_path / "b.png")
    with pytest.raises(ValueError, match="one entry per layer"):
        plotting.plot_layer_profile(layers, [0.1, 0.2])


def test_rdm_grid_and_volume_slices(tmp_path):
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(0)
    rdm = pdist(rng.normal(size=(6, 3)))
    fig = plotting.plot_rdm_grid({"a": rdm, "b": rdm}, order=np.arange(6)[::-1], ncols=2)
    img = fig.axes[0].images[0].get_array()
    assert img.shape == (6, 6) and np.all(np.diag(img) == 0) and img.max() <= 1
    assert _png(fig, tmp_path / "r.png")
    vol = np.zeros((5, 5, 5))
    vol[2, 2, 1] = vol[1, 3, 3] = 1.0
    fig = plotting.plot_volume_slices(vol, axis=2, outline=vol > 0)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["slice 1", "slice 3"]  # the slices holding non-zero values
    assert _png(fig, tmp_path / "v.png")
    with pytest.raises(ValueError, match="3-D"):
        plotting.plot_volume_slices(np.zeros((3, 3)))
