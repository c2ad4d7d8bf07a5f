"""One style, atomic saving in PNG (300 dpi) / SVG / PDF, the plotted numbers as CSV beside."""

import csv

import matplotlib
import numpy as np
import pytest
from PIL import Image

from neuroprobe import plotting
from neuroprobe.plotting import _style


def _line_figure():
    fig, ax = plotting.new_figure(figsize=(2.0, 1.5))
    ax.plot([0, 1, 2], [3.0, 1.0, 2.0])
    return fig


def test_png_is_300_dpi_by_default_and_dpi_stays_a_parameter(tmp_path):
    fig = _line_figure()
    path = plotting.save_figure(fig, tmp_path / "a.png")
    with Image.open(path) as img:
        assert img.size == (600, 450)  # 2 x 1.5 inches at 300 dpi
    path = plotting.save_figure(fig, tmp_path / "b.png", dpi=100)  # old callers pass dpi=
    with Image.open(path) as img:
        assert img.size == (200, 150)


def test_svg_and_pdf_by_suffix_text_stays_text(tmp_path):
    fig = _line_figure()
    fig.axes[0].set_title("layer profile")
    svg = plotting.save_figure(fig, tmp_path / "a.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "layer profile" in svg  # svg.fonttype = none: a text element, not paths
    assert plotting.save_figure(fig, tmp_path / "a.pdf").read_bytes()[:5] == b"%PDF-"
    with pytest.raises(ValueError, match=r"a\.xyz.*unknown image format"):
        plotting.save_figure(fig, tmp_path / "a.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "a.svg"]


def test_save_with_data_writes_the_table_beside_the_image(tmp_path):
    fig = _line_figure()
    table = {"layer": ["conv1", "conv2", "fc"], "score": np.array([0.1, 0.25, 0.5])}
    out = plotting.save_figure_with_data(fig, tmp_path / "fig.png", table, formats=["svg"])
    assert out["data"] == tmp_path / "fig.csv" and out["svg"] == tmp_path / "fig.svg"
    with open(out["data"]) as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["layer", "score"]
    assert [r[0] for r in rows[1:]] == table["layer"]
    np.testing.assert_array_equal([float(r[1]) for r in rows[1:]], table["score"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.csv", "fig.png", "fig.svg"]


def test_save_with_data_refuses_ragged_or_missing_tables_before_writing(tmp_path):
    fig = _line_figure()
    with pytest.raises(ValueError, match="different lengths"):
        plotting.save_figure_with_data(fig, tmp_path / "f.png", {"a": [1, 2], "b": [1]})
    with pytest.raises(ValueError, match="carries none"):
        plotting.save_figure_with_data(fig, tmp_path / "f.png")
    assert list(tmp_path.iterdir()) == []


def test_figure_functions_attach_their_table():
    fig = plotting.plot_layer_ci(["a", "b"], [0.1, 0.2], [0.0, 0.1], [0.2, 0.3])
    table = plotting.figure_table(fig)
    np.testing.assert_array_equal(table["value"], [0.1, 0.2])
    np.testing.assert_array_equal(table["lower"], [0.0, 0.1])


def test_style_context_restores_rcparams_and_apply_style_sets_fonts():
    before = dict(matplotlib.rcParams)
    with plotting.style():
        assert matplotlib.rcParams["font.size"] == plotting.FONT["size"]
        assert matplotlib.rcParams["axes.spines.top"] is False
    assert matplotlib.rcParams["font.size"] == before["font.size"]
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    ax.set_title("t")
    ax.set_xlabel("x")
    ax.plot([0, 1], label="a")
    ax.legend()
    plotting.apply_style(fig)
    assert ax.title.get_fontsize() == plotting.FONT["title"]
    assert ax.xaxis.label.get_fontsize() == plotting.FONT["label"]
    assert not ax.spines["top"].get_visible() and not ax.get_legend().get_frame_on()
    fig, ax = plotting.new_figure()
    line, = ax.plot([0, 1])
    assert matplotlib.colors.same_color(line.get_color(), _style.PALETTE[0])
