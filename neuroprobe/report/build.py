"""A report for any study: the outputs of neuroprobe commands in a folder -> one HTML + Markdown.

:func:`build` finds what a results folder holds (:func:`neuroprobe.report.results.find_results`),
draws each result with the functions of :mod:`neuroprobe.plotting` (each figure saved beside the
CSV of the numbers it shows), writes a methods paragraph for each analysis from the parameters
actually used (:mod:`neuroprobe.report.methods`, reading the provenance records the CLI leaves),
and assembles it all with :func:`neuroprobe.report.write_report`: one self-contained HTML file
(figures embedded: it opens offline and wherever it is moved) and a Markdown file linking the PNG
files. ``neuroprobe report RESULTS_DIR`` calls it.

Examples
--------
>>> from neuroprobe.report import build
>>> paths = build("results/")  # doctest: +SKIP
>>> paths["html"]  # doctest: +SKIP
PosixPath('results/report/report.html')
"""

from __future__ import annotations

import csv
import shlex
from pathlib import Path

import numpy as np

from neuroprobe.exceptions import ReportError
from neuroprobe.report.document import Section, write_report
from neuroprobe.report.methods import (
    Methods,
    describe_command,
    methods_paragraph,
    references_list,
    versions_paragraph,
)
from neuroprobe.report.provenance import library_versions
from neuroprobe.report.results import find_results

__all__ = ["build", "closing_sections"]

_TITLES = {"activations": "Network activations", "rdm": "Representational dissimilarity matrices",
           "probe": "Linear probes by layer", "decode": "Decoding from the brain",
           "encode": "Encoding maps", "rsa": "Representational similarity analysis",
           "other": "Other outputs"}


def build(results_dir, out=None, *, title=None, embed_images=True, name="report"):
    """Build the report of a results folder.

    Parameters
    ----------
    results_dir : str or Path
        A folder holding the outputs of neuroprobe commands (``extract``, ``rdm``, ``probe``,
        ``decode``, ``encode``, ``rsa``, ...).
    out : str or Path, optional
        Report folder (default: ``<results_dir>/report``); figures go to ``<out>/figures``.
    title : str, optional
        Default: "neuroprobe report: <folder name>".
    embed_images : bool, default=True
        Embed the figures in the HTML (one self-contained file); the Markdown links them.
    name : str
        File name of the report without extension.

    Returns
    -------
    dict
        ``{"html": Path, "markdown": Path, "figures": [Path, ...], "sections": [Section, ...]}``.

    Raises
    ------
    ReportError
        The folder holds nothing a report knows, or one of its files cannot be read (the
        message names the file).
    """
    results_dir = Path(results_dir)
    results = find_results(results_dir)
    out = results_dir / "report" if out is None else Path(out)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    sections, methods, versions, written = [], [], [], []
    for result in results:
        try:
            section, paragraph, figs = _SECTIONS[result.kind](result, figures)
        except ReportError:
            raise
        except (OSError, ValueError, KeyError) as exc:
            raise ReportError(f"{result.path}: cannot be reported ({exc})") from exc
        if result.provenance is not None:
            section.code = "neuroprobe " + shlex.join(result.provenance.get("argv", []))
            section.source = f"`neuroprobe {result.provenance.get('command')}`"
            versions.append(result.provenance.get("versions") or {})
        else:
            section.source = ("no provenance record (written by the Python API or an older "
                              "neuroprobe): the methods text uses the file's own metadata")
        if paragraph is not None:
            section.text = [*section.paragraphs(), f"Methods. {paragraph.text}"]
            methods.append((result, paragraph))
        sections.append(section)
        written += figs
    sections += closing_sections([(r.name, m) for r, m in methods], versions)
    title = title or f"neuroprobe report: {results_dir.resolve().name}"
    summary = (f"{len(results)} result(s) in {results_dir}: "
               + ", ".join(f"{r.name} ({r.kind})" for r in results))
    paths = write_report(out, title, sections, summary=summary, name=name,
                         embed_images=embed_images)
    return {**paths, "figures": written, "sections": sections}


# ------------------------------------------------------------------------------ helpers
def _figure(fig, folder, stem, header, rows):
    """Save ``fig`` as PNG and the numbers it shows as CSV beside it; the PNG's path."""
    from neuroprobe.io.arrays import write_table
    from neuroprobe.plotting import save_figure

    png = save_figure(fig, folder / f"{stem}.png", dpi=150)
    write_table(folder / f"{stem}.csv", rows, list(header))
    return png


def _stem(result, suffix=""):
    base = result.name.split(".")[0]
    return f"{result.kind}_{base}{suffix}"


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _params(result):
    return dict((result.provenance or {}).get("parameters") or {})


def _methods(result, kind, **metadata):
    if result.provenance is not None:
        return describe_command({**result.provenance, "command": kind}, metadata)
    return methods_paragraph(kind, **metadata)


# ------------------------------------------------------------------------------ sections
def _activations(result, figures):
    m = result.metadata
    rows = [[layer, "x".join(str(s) for s in shape[1:]) or "1",
             int(np.prod(shape[1:])) if len(shape) > 1 else 1]
            for layer, shape in m["shapes"].items()]
    text = (f"{m['n_stimuli']} stimuli through {m['model']} (weights: {m['weights']}); "
            f"{len(rows)} layer(s) stored in `{result.name}`"
            + ("" if m.get("complete", True) else " (INCOMPLETE: an interrupted extraction)")
            + ".")
    kind = "words" if m.get("words") else "captions" if m.get("captions") else "extract"
    if kind == "words":
        text = (f"{m['n_stimuli']} words through {m['model']} (weights: {m['weights']}); "
                f"{len(rows)} layer(s) and the word timings "
                f"({', '.join(m['words'].get('columns') or [])}) stored in `{result.name}`"
                + ("" if m.get("complete", True) else " (INCOMPLETE: an interrupted run)") + ".")
    section = Section(_TITLES["activations"] + f": {result.name}", text,
                      table=(["layer", "shape per stimulus", "features"], rows))
    meta = {k: m.get(k) for k in ("model", "weights", "layers", "pooling", "preprocess",
                                  "n_stimuli")}
    meta.update(m.get("words") or m.get("captions") or {})
    return section, _methods(result, kind, **meta), []


def _rdm(result, figures):
    from neuroprobe.io.rdm import load_rdms
    from neuroprobe.plotting import plot_rdm_grid
    from neuroprobe.solvers.rdm import to_square

    data = load_rdms(result.path)
    squares = {n: to_square(data[n]) for n in data.names}
    fig = plot_rdm_grid(squares, title=result.name)
    n = data.n_stimuli
    iu = np.triu_indices(n, 1)
    rows = [[name, int(i), int(j), float(squares[name][i, j])]
            for name in data.names for i, j in zip(*iu, strict=True)]
    png = _figure(fig, figures, _stem(result), ["rdm", "i", "j", "dissimilarity"], rows)
    m = result.metadata
    section = Section(
        _TITLES["rdm"] + f": {result.name}",
        f"{len(data.names)} RDM(s) of {n} stimuli ({m.get('metric')}).",
        figures=[(png, f"RDMs of {result.name} (numbers: {Path(png).with_suffix('.csv').name})")],
        table=(["RDM", "mean dissimilarity", "min", "max"],
               [[k, float(np.mean(data[k])), float(np.min(data[k])), float(np.max(data[k]))]
                for k in data.names]))
    layer = _params(result).get("layer") or data.names
    meta = {"metric": m.get("metric"), "zscore": m.get("zscore"), "n_stimuli": n,
            "layer": layer}
    return section, _methods(result, "rdm", **meta), [png]


def _scores_by_layer(result, figures):
    from neuroprobe.plotting import plot_layer_profile

    rows = _read_csv(result.path)
    if not rows:
        raise ReportError(f"{result.path}: the table has no rows")
    layers = [r["layer"] for r in rows]
    mean = np.array([_float(r["mean_score"]) for r in rows])
    std = np.array([_float(r["std_score"]) for r in rows])
    params = _params(result)
    scoring = params.get("scoring") or "accuracy"
    fig = plot_layer_profile(layers, mean, errors=std, ylabel=scoring,
                             highlight=layers[int(np.nanargmax(mean))], title=result.name)
    png = _figure(fig, figures, _stem(result), ["layer", "mean_score", "std_score"],
                  [[ly, m, s] for ly, m, s in zip(layers, mean, std, strict=True)])
    kind = result.kind
    best = layers[int(np.nanargmax(mean))]
    section = Section(
        _TITLES[kind] + f": {result.name}",
        f"Best: {best} ({scoring} {np.nanmax(mean):.3f}); error bars: standard deviation over "
        "folds.",
        figures=[(png, f"Cross-validated {scoring} by layer (bars: SD over folds)")],
        table=(["layer", f"mean {scoring}", "SD", "features", "cv"],
               [[r["layer"], _float(r["mean_score"]), _float(r["std_score"]),
                 r.get("n_features", ""), r.get("cv", "")] for r in rows]))
    meta = {"cv": params.get("cv", rows[0].get("cv")), "scoring": scoring}
    if kind == "decode":
        meta["mask"] = params.get("mask")
    return section, _methods(result, kind, **meta), [png]


def _map_flat(path):
    """A map file's values (flat, all of them) and the 3-D array if it is a volume."""
    import nibabel as nib

    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz", ".mgh", ".mgz")):
        data = np.asarray(nib.load(path).get_fdata(), dtype=float)
        return data.ravel(), (data if data.ndim == 3 else None)
    if name.endswith(".gii"):
        img = nib.load(path)
        return np.concatenate([np.ravel(d.data) for d in img.darrays]).astype(float), None
    from neuroprobe.io.arrays import read_arrays

    if name.endswith(".csv"):
        return np.genfromtxt(path, delimiter=",", skip_header=1).ravel(), None
    arrays = read_arrays(path) if not name.endswith(".npy") else {"a": np.load(path)}
    return np.concatenate([np.ravel(a) for a in arrays.values()]).astype(float), None


def _kept(flat, volume):
    """The targets of a map: finite values (in a volume also non-zero: outside the mask)."""
    keep = np.isfinite(flat)
    return keep & (flat != 0) if volume is not None else keep


def _encode(result, figures):
    from neuroprobe.plotting import plot_score_histogram, plot_volume_slices

    meta = result.metadata
    maps = [p for p in result.files if p.suffix != ".json"]
    score_map = maps[0]
    read = [_map_flat(path) for path in maps]  # each map file read once
    flat, volume = read[0]
    keep = _kept(flat, volume)
    values = flat[keep]
    scoring = meta.get("scoring", "score")
    rows, figs, pvalues = [], [], None
    for path, (f, vol) in zip(maps, read, strict=True):
        v = f[_kept(f, vol)]
        rows.append([path.name, int(v.size), float(np.mean(v)) if v.size else float("nan"),
                     float(np.median(v)) if v.size else float("nan"),
                     float(np.max(v)) if v.size else float("nan")])
        if "pvalue_fwe" in path.name and f.shape == flat.shape:
            pvalues = np.where(np.isnan(f[keep]), 1.0, f[keep])
    if volume is not None:
        fig = plot_volume_slices(volume, title=f"{score_map.name}: {scoring}",
                                 colorbar_label=scoring)
        ijk = np.column_stack(np.unravel_index(np.flatnonzero(keep), volume.shape))
        png = _figure(fig, figures, _stem(result), ["i", "j", "k", scoring],
                      [[int(a), int(b), int(c), float(volume[a, b, c])] for a, b, c in ijk])
        figs.append((png, f"Cross-validated {scoring} per voxel (numbers: {png.stem}.csv)"))
    if values.size:
        fig = plot_score_histogram(values, pvalues=pvalues, xlabel=scoring,
                                   title=f"{score_map.name}")
        png = _figure(fig, figures, _stem(result, "_hist"),
                      [scoring] + (["pvalue_fwe"] if pvalues is not None else []),
                      [[float(x)] + ([float(q)] if pvalues is not None else [])
                       for x, q in zip(values, pvalues if pvalues is not None else values,
                                       strict=True)])
        figs.append((png, f"Distribution of {scoring} over targets"
                     + (" (coloured: FWE p < 0.05)" if pvalues is not None else "")
                     + f" (numbers: {png.stem}.csv)"))
    text = (f"Layer {meta.get('layer')}: {values.size} targets, mean {scoring} "
            f"{np.mean(values):.3f}, max {np.max(values):.3f}" if values.size else
            "The map holds no finite values.")
    if pvalues is not None:
        text += f"; {int(np.sum(pvalues <= 0.05))} target(s) significant at FWE p <= 0.05"
    section = Section(_TITLES["encode"] + f": {score_map.name}", text + ".", figures=figs,
                      table=(["map", "targets", "mean", "median", "max"], rows))
    params = {"layer": meta.get("layer"), "scoring": scoring, "cv": meta.get("cv"),
              "inner_cv": meta.get("inner_cv"), "penalty": meta.get("penalty"),
              "model": meta.get("model"), "n_permutations": meta.get("n_permutations"),
              "groups": meta.get("groups"), "n_targets": int(values.size)}
    return section, _methods(result, "encode", **params), [p for p, _ in figs]


def _rsa(result, figures):
    from neuroprobe.plotting import plot_rsa_profile

    rows = _read_csv(result.path)
    if not rows:
        raise ReportError(f"{result.path}: the table has no rows")
    group = [r for r in rows if r.get("level", "group") in ("group", "")] or rows
    targets = list(dict.fromkeys(r["target"] for r in group))
    figs, table = [], []
    for target in targets:
        part = [r for r in group if r["target"] == target]
        models = [r["model"] for r in part]
        scores = np.array([_float(r["score"]) for r in part])
        lower = _float(part[0].get("noise_ceiling_lower"))
        upper = _float(part[0].get("noise_ceiling_upper"))
        ceiling = (lower, upper) if np.isfinite(lower) and np.isfinite(upper) else None
        p_key = "pvalue_fwe" if any(r.get("pvalue_fwe") for r in part) else "pvalue"
        pvalues = np.array([_float(r.get(p_key)) for r in part])
        fig = plot_rsa_profile(models, scores, ceiling,
                               pvalues=pvalues if np.isfinite(pvalues).any() else None,
                               ylabel=f"{part[0].get('method', '')} correlation",
                               title=f"target {target}")
        stem = _stem(result, f"_{len(figs)}")
        png = _figure(fig, figures, stem, ["model", "score", p_key, "ceiling_lower",
                                           "ceiling_upper"],
                      [[m, s, p, lower, upper]
                       for m, s, p in zip(models, scores, pvalues, strict=True)])
        figs.append(png)
        table += [[target, r["model"], _float(r["score"]), _float(r.get("pvalue")),
                   _float(r.get("pvalue_fwe"))] for r in part]
    section = Section(
        _TITLES["rsa"] + f": {result.name}",
        f"{len(group)} model-target comparison(s) ({group[0].get('method')}); grey band: noise "
        "ceiling where given; stars: p <= 0.05 (FWE over models where permutations ran).",
        figures=[(p, f"RSA by model (numbers: {Path(p).with_suffix('.csv').name})")
                 for p in figs],
        table=(["target", "model", "score", "p", "p (FWE)"], table))
    params = _params(result)
    meta = {"method": group[0].get("method") or params.get("method"),
            "n_permutations": int(_float(group[0].get("n_permutations")) or 0)
            if group[0].get("n_permutations") else params.get("n_permutations", 0),
            "noise_ceiling": params.get("noise_ceiling") or (
                np.isfinite(_float(group[0].get("noise_ceiling_lower"))) or None)}
    return section, _methods(result, "rsa", **meta), figs


def _other(result, figures):
    record = result.provenance or {}
    section = Section(_TITLES["other"] + f": {result.name}",
                      f"Written by `neuroprobe {record.get('command')}`.")
    paragraph = describe_command(record) if record else None
    return section, paragraph, []


_SECTIONS = {"activations": _activations, "rdm": _rdm, "probe": _scores_by_layer,
             "decode": _scores_by_layer, "encode": _encode, "rsa": _rsa, "other": _other}


def closing_sections(methods, versions):
    """The sections "Methods" (every paragraph, to copy into a paper), "Software" and
    "References".

    Parameters
    ----------
    methods : list of (str, Methods)
        A name (file or analysis) and its methods paragraph, in report order.
    versions : list of dict
        ``{library: version}`` of each run (:func:`~neuroprobe.report.provenance.library_versions`);
        distinct ones are listed.

    Returns
    -------
    list of Section
    """
    refs = Methods("", ["sklearn"])
    paragraphs = []
    for name, paragraph in methods:
        paragraphs.append(f"{name}: {paragraph.text}")
        refs = refs + Methods("", paragraph.references)
    seen = {tuple(sorted(v.items())) for v in versions if v}
    software = [versions_paragraph(dict(v)) for v in sorted(seen)] or [
        versions_paragraph(library_versions()) + " (at report time: no provenance record)"]
    if len(seen) > 1:
        software.insert(0, "The results were produced with different software versions:")
    return [
        Section("Methods", paragraphs or "No analysis with a methods paragraph was found."),
        Section("Software", software),
        Section("References", references_list(refs.references)),
    ]
