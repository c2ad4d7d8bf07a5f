"""The demo study: :func:`run_demo` as a sequence of short steps over the public API.

Each step reads what earlier steps left on a :class:`_Study` and adds its own results:
:func:`_stimuli`, :func:`_network`, :func:`_extract`, :func:`_reduce`, :func:`_brain`,
:func:`_probe`, :func:`_encode`, :func:`_rsa`, :func:`_inspect`, :func:`_figures`,
:func:`_summarise`, :func:`_write`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from neuroprobe.demo.data import save_stimuli, simulate_brain, write_brain
from neuroprobe.models.shapes_cnn import CATEGORIES, LAYERS, TRAINING, make_shapes, shapes_cnn
from neuroprobe.report.methods import Methods, describe_estimator, methods_paragraph

__all__ = ["PLANTED_LAYER", "run_demo"]

#: The layer whose principal components drive the simulated voxels.
PLANTED_LAYER = "conv3"

# Sizes of the full demo and of ``--quick``.
_CONFIG = {
    False: dict(n_per_category=60, n_train_per_category=TRAINING[False]["n_per_category"],
                epochs=TRAINING[False]["epochs"], n_subjects=4, n_permutations=1000,
                n_components=40, n_components_probe=20, top_k=6),
    True: dict(n_per_category=30, n_train_per_category=TRAINING[True]["n_per_category"],
               epochs=TRAINING[True]["epochs"], n_subjects=3, n_permutations=100,
               n_components=40, n_components_probe=20, top_k=4),
}


class _Log:
    """Timed progress messages (``verbose``) and the timing of each step."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.start = time.perf_counter()
        self.last = self.start
        self.timings = {}

    def step(self, name, message):
        now = time.perf_counter()
        self.timings[name] = round(now - self.last, 3)
        self.last = now
        if self.verbose:
            print(f"[{now - self.start:6.1f}s] {message}", flush=True)

    @property
    def total(self):
        return round(time.perf_counter() - self.start, 3)


class _Study(SimpleNamespace):
    """State of one run: settings (``out``, ``cfg``, ``seed``...), ``paths``, step results."""


def run_demo(out="neuroprobe_demo", quick=False, seed=0, *, n_jobs=None, verbose=True,
             embed_images=False):
    """Run the embedded study end to end and write its report.

    Parameters
    ----------
    out : str or Path
        Output folder (created); holds ``report.md``, ``report.html``, ``figures/``, the stimuli,
        the activation file, the simulated NIfTI files and the result maps.
    quick : bool
        Fewer stimuli, subjects and permutations, shorter training (about 4x faster).
    seed : int
        Seed of everything (stimuli, network, simulation, CV splits, permutations).
    n_jobs : int, optional
        Parallel permutation chunks (joblib).
    verbose : bool
        Print progress and the summary.
    embed_images : bool
        Embed the figures in the HTML report.

    Notes
    -----
    The arrays of the demo are small, so BLAS and torch run on one thread (more threads only add
    overhead here, and on a busy machine oversubscription slows them down many times);
    ``n_jobs`` runs permutation chunks in parallel processes.

    Returns
    -------
    dict
        ``planted_layer``, ``recovered_layer`` (encoding), ``rsa_best_layer``,
        ``decoding_best_layer``, ``layers``, ``decoding_accuracy`` / ``encoding_score`` /
        ``encoding_n_significant`` / ``rsa_score`` / ``rsa_pvalue_fwe`` (dicts layer -> value),
        ``noise_ceiling`` (lower, upper), ``n_stimuli``, ``n_voxels``, ``n_roi_voxels``,
        ``n_responsive_voxels`` (significant for at least one layer; the encoding profile
        averages over them),
        ``roi_recall`` (fraction of ROI voxels significant for the recovered layer),
        ``false_positive_voxels`` (significant voxels outside the ROI), ``top_stimuli``,
        ``paths`` (report, figures, data files), ``timings`` (seconds per step), ``seconds``,
        ``summary`` (the printed text).
    """
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            return _run_study(out, quick, seed, n_jobs, verbose, embed_images)
    finally:
        torch.set_num_threads(threads)


def _run_study(out, quick, seed, n_jobs, verbose, embed_images):
    out = Path(out).absolute()  # the returned paths stay valid if the caller changes directory
    (out / "figures").mkdir(parents=True, exist_ok=True)
    study = _Study(out=out, cfg=_CONFIG[bool(quick)], quick=bool(quick), seed=int(seed),
                   n_jobs=n_jobs, verbose=verbose, embed_images=embed_images,
                   log=_Log(verbose), layers=list(LAYERS), paths={}, methods=[])
    for step in _STEPS:
        step(study)
    return study.result


# ------------------------------------------------------------------------------------------
# Data, network, extraction, reduction
# ------------------------------------------------------------------------------------------
def _stimuli(s):
    """Generated pictures, written as PNG files and ``stimuli.csv``."""
    s.images, s.labels = make_shapes(s.cfg["n_per_category"], seed=s.seed)
    s.stimuli = save_stimuli(s.images, s.labels, s.out / "stimuli")
    s.stimuli.write_csv(s.out / "stimuli.csv")
    s.paths["stimuli"] = s.out / "stimuli.csv"
    s.log.step("stimuli", f"generated {len(s.stimuli)} pictures of {len(CATEGORIES)} shape "
                          f"categories ({', '.join(CATEGORIES)})")


def _network(s):
    """The trained shapes-cnn, its weights saved as ``shapes_cnn.pt``."""
    import torch

    from neuroprobe._utils import atomic_path

    s.spec = shapes_cnn("trained", s.seed, quick=s.quick)
    s.paths["weights"] = s.out / "shapes_cnn.pt"
    with atomic_path(s.paths["weights"], suffix=".pt") as tmp:
        torch.save(s.spec.module.state_dict(), tmp)
    s.log.step("network", f"trained the demo CNN ({', '.join(s.layers)}) on "
                          f"{s.cfg['n_train_per_category'] * len(CATEGORIES)} other generated "
                          "pictures")


def _extract(s):
    """Every layer extracted once to ``activations.act.h5``."""
    from neuroprobe import DNNFeatureExtractor

    s.act_path = s.out / "activations.act.h5"
    if s.act_path.exists():
        s.act_path.unlink()
    s.extractor = DNNFeatureExtractor(s.spec, layers=s.layers, batch_size=64).fit(s.stimuli)
    s.extractor.extract_to_file(s.stimuli, s.act_path)
    s.methods.append((s.act_path.name, methods_paragraph(
        "extract", model="shapes-cnn", weights="trained in the demo (shapes_cnn.pt)",
        layers=s.layers, n_stimuli=len(s.stimuli))))
    s.paths["activations"] = s.act_path
    s.log.step("extract", f"extracted {len(s.layers)} layers in one pass -> {s.act_path.name}")


def _reduce(s):
    """Whitened principal components of each layer (ActivationReader -> PCAReducer)."""
    from sklearn.pipeline import make_pipeline

    from neuroprobe import ActivationReader, PCAReducer

    s.comps, s.slices, start = {}, {}, 0
    for layer in s.layers:
        width = s.extractor.feature_slices_[layer].stop - s.extractor.feature_slices_[layer].start
        pipe = make_pipeline(
            ActivationReader(s.act_path, layer),
            PCAReducer(n_components=min(s.cfg["n_components"], width), whiten=True,
                       svd_solver="full", random_state=s.seed))
        s.comps[layer] = pipe.fit_transform(s.stimuli.ids).astype(np.float32)
        s.slices[layer] = slice(start, start + s.comps[layer].shape[1])
        start += s.comps[layer].shape[1]
    s.X_all = np.hstack([s.comps[layer] for layer in s.layers])
    s.methods.append(("PCA", Methods(
        f"Each layer's activations were reduced separately to at most {s.cfg['n_components']} "
        "whitened principal components (PCAReducer).", ["pca"])))
    s.log.step("pca", f"PCA per layer: up to {s.cfg['n_components']} whitened components each")


def _brain(s):
    """Simulated subjects driven by the planted layer, written as NIfTI and read back."""
    from neuroprobe import BrainMasker

    s.sim = simulate_brain(s.comps[PLANTED_LAYER], n_subjects=s.cfg["n_subjects"],
                           seed=s.seed + 1)
    files = write_brain(s.sim, s.out / "brain")
    s.paths.update({f"brain_{k}": v for k, v in files.items() if k != "subjects"})
    s.paths["brain_subjects"] = files["subjects"]
    s.masker = BrainMasker(files["brain_mask"]).fit()
    roi_masker = BrainMasker(files["roi"]).fit()
    s.Y = np.mean([s.masker.transform(p) for p in files["subjects"]], axis=0)
    s.roi_subjects = [roi_masker.transform(p) for p in files["subjects"]]
    s.roi_cols = np.isin(s.masker.columns_, roi_masker.columns_)
    s.log.step("brain", f"simulated {s.cfg['n_subjects']} subjects: {s.masker.n_voxels_} brain "
                        f"voxels, {int(s.roi_cols.sum())} driven by {PLANTED_LAYER} (NIfTI, read "
                        "back with BrainMasker)")


# ------------------------------------------------------------------------------------------
# Analyses
# ------------------------------------------------------------------------------------------
def _probe(s):
    """Category decoding per layer: probe_layers on the raw activations, PCA inside each fold."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from neuroprobe import PCAReducer, probe_layers

    # a full SVD of these short, wide matrices (n_stimuli x up to 8192) is faster than the
    # randomized solver that "auto" picks for them
    estimator = make_pipeline(
        PCAReducer(n_components=s.cfg["n_components_probe"], svd_solver="full",
                   random_state=s.seed),
        StandardScaler(), LogisticRegression(max_iter=1000))
    table = probe_layers(str(s.act_path), s.labels, layers=list(s.layers), estimator=estimator,
                         cv=5, random_state=s.seed, n_jobs=s.n_jobs)
    s.decoding = {layer: float(table.loc[layer, "mean_score"]) for layer in s.layers}
    s.decoding_sd = {layer: float(table.loc[layer, "std_score"]) for layer in s.layers}
    s.methods.append(("decoding", describe_estimator(estimator)))
    s.chance = 1.0 / len(CATEGORIES)
    s.log.step("probe", "decoding accuracy: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                          s.decoding.items()))


def _encode(s):
    """Per layer: PermutationTest(VoxelwiseEncoder) -> CV score and FWE p-value of each voxel."""
    from sklearn.model_selection import KFold

    from neuroprobe import PermutationTest, VoxelwiseEncoder

    cv = KFold(5, shuffle=True, random_state=s.seed)
    s.enc_score, s.enc_p = {}, {}
    for layer, X in s.comps.items():
        test = PermutationTest(VoxelwiseEncoder(alphas=np.logspace(-1, 4, 11), cv=cv),
                               n_permutations=s.cfg["n_permutations"], random_state=s.seed,
                               n_jobs=s.n_jobs).fit(X, s.Y)
        s.enc_score[layer] = np.asarray(test.score_, dtype=np.float64)
        s.enc_p[layer] = np.asarray(test.pvalue_fwe_, dtype=np.float64)
    s.enc_sig = {layer: p < 0.05 for layer, p in s.enc_p.items()}
    s.methods.append(("encoding", describe_estimator(test)))
    s.recovered, s.enc_mean, s.responsive = _recovered_layer(s.layers, s.enc_score, s.enc_sig)
    s.log.step("encode", "encoding (mean r over responsive voxels): "
               + ", ".join(f"{k} {v:.2f}" for k, v in s.enc_mean.items()))
    _write_maps(s)


def _recovered_layer(layers, scores, significant):
    """Layer with the highest mean encoding score over voxels significant for any layer."""
    any_sig = np.any(np.stack([significant[layer] for layer in layers]), axis=0)
    voxels = any_sig if any_sig.any() else np.ones_like(any_sig)
    means = {layer: float(np.mean(scores[layer][voxels])) for layer in layers}
    return max(layers, key=lambda layer: means[layer]), means, voxels


def _write_maps(s):
    """NIfTI maps of each layer's encoding score and FWE p-value, in ``maps/`` (atomically)."""
    from neuroprobe._utils import atomic_path

    maps_dir = s.out / "maps"
    maps_dir.mkdir(exist_ok=True)
    for layer in s.layers:
        r_img = s.masker.inverse_transform(s.enc_score[layer].astype(np.float32))
        p_img = s.masker.inverse_transform(  # NaN outside the ROI: no "significant" voxel there
            s.enc_p[layer].astype(np.float32), fill=np.nan,
            description="neuroprobe demo: FWE p (max-stat); NaN=outside the ROI")
        for image, name in ((r_img, f"encoding_r_{layer}"), (p_img, f"encoding_pfwe_{layer}")):
            with atomic_path(maps_dir / f"{name}.nii.gz", suffix=".nii.gz") as tmp:
                image.to_filename(tmp)
    s.paths["maps"] = maps_dir


def _rsa(s):
    """Layer RDMs vs each subject's ROI RDM (mean, SEM), noise ceiling, FWE p-values."""
    from neuroprobe import PermutationTest, RSAScorer, compute_rdm, noise_ceiling

    s.subject_rdms = compute_rdm(s.roi_subjects, "correlation")
    s.ceiling = noise_ceiling(s.subject_rdms, "spearman")
    s.scorer = RSAScorer(metric="correlation", comparison="spearman", feature_groups=s.slices,
                         target_rdm=s.subject_rdms).fit(s.X_all)
    matrix = s.scorer.score_matrix(s.X_all)  # (n_layers, n_subjects)
    s.rsa_mean = matrix.mean(axis=1)
    s.rsa_sem = matrix.std(axis=1, ddof=1) / np.sqrt(matrix.shape[1])
    test = PermutationTest(
        RSAScorer(metric="correlation", comparison="spearman", feature_groups=s.slices,
                  target_rdm=s.subject_rdms.mean(axis=0)),
        n_permutations=s.cfg["n_permutations"], random_state=s.seed, n_jobs=s.n_jobs,
    ).fit(s.X_all)
    s.rsa_p = np.atleast_1d(test.pvalue_fwe_)
    s.methods.append(("RSA", describe_estimator(test)))
    s.rsa_best = s.layers[int(np.argmax(s.rsa_mean))]
    s.log.step("rsa", "RSA (mean Spearman over subjects): "
               + ", ".join(f"{k} {v:.2f}" for k, v in zip(s.layers, s.rsa_mean))
               + f"; noise ceiling [{s.ceiling.lower:.2f}, {s.ceiling.upper:.2f}]")


def _inspect(s):
    """Top stimuli and guided saliency of the 3 most variable units of the recovered layer."""
    from neuroprobe.inspect import saliency, top_stimuli
    from neuroprobe.io.activations import open_activations

    with open_activations(s.act_path) as f:
        acts = f.read(s.recovered)
    unit_axis = tuple(range(2, acts.ndim))
    channel_var = (acts.max(axis=unit_axis) if unit_axis else acts).var(axis=0)
    units = sorted(np.argsort(channel_var)[::-1][:3].tolist())
    s.top = top_stimuli(s.act_path, s.stimuli, layer=s.recovered, units=units,
                        k=s.cfg["top_k"], metric="max")
    s.best = [int(s.top.indices[u, 0]) for u in range(len(units))]
    s.saliency = np.concatenate([
        saliency(s.spec, s.images[[i]], (s.recovered, int(c)), method="guided")
        for i, c in zip(s.best, units)
    ])
    s.log.step("inspect", f"top stimuli and saliency of {s.recovered} units {units}")


# ------------------------------------------------------------------------------------------
# Figures, summary, report
# ------------------------------------------------------------------------------------------
def _figures(s):
    """The report's PNG figures, in ``figures/``."""
    from neuroprobe import plotting

    s.figs = {}
    for name, figure in [*_profile_figures(s), *_rsa_and_unit_figures(s)]:
        s.figs[name] = plotting.save_figure(figure, s.out / "figures" / f"{name}.png")
    s.paths["figures"] = s.figs
    s.log.step("figures", f"{len(s.figs)} figures in {s.out / 'figures'}")


def _profile_figures(s):
    """Stimuli, decoding and encoding by layer, and the encoding map (yields name, figure)."""
    from neuroprobe import plotting

    examples = np.stack([np.flatnonzero(s.labels == k)[:6] for k in range(len(CATEGORIES))])
    yield "stimuli", plotting.plot_top_stimuli(
        s.images[examples], unit_labels=list(CATEGORIES), ids=np.asarray(s.stimuli.ids)[examples])
    yield "decoding", plotting.plot_layer_profile(
        s.layers, [s.decoding[k] for k in s.layers], errors=[s.decoding_sd[k] for k in s.layers],
        chance=s.chance, highlight=PLANTED_LAYER,
        ylabel="decoding accuracy", title="Category decoding by layer")
    yield "encoding", plotting.plot_layer_profile(
        s.layers, [s.enc_mean[k] for k in s.layers], highlight=PLANTED_LAYER,
        ylabel="mean CV correlation", title="Voxelwise encoding by layer")
    r_img = s.masker.inverse_transform(s.enc_score[s.recovered].astype(np.float32))
    sig_img = s.masker.inverse_transform(s.enc_sig[s.recovered].astype(np.float32))
    roi = s.sim.roi_mask
    centre = int(round(np.mean(np.nonzero(roi)[2])))
    yield "encoding_map", plotting.plot_volume_slices(
        r_img, axis=2, slices=[max(0, centre - 2), centre, min(roi.shape[2] - 1, centre + 2)],
        outline=np.asarray(sig_img.dataobj) > 0.5, vmin=0, vmax=1,
        title=f"Encoding accuracy of {s.recovered} (cyan: FWE p < 0.05)",
        colorbar_label="CV correlation")


def _rsa_and_unit_figures(s):
    """RDMs, RSA against the noise ceiling, top stimuli and saliency (yields name, figure)."""
    from neuroprobe import plotting

    order = np.argsort(s.labels, kind="stable")
    rdms = {"brain (mean of subjects)": s.subject_rdms.mean(axis=0)}
    rdms.update({layer: s.scorer.model_rdms_[i] for i, layer in enumerate(s.layers)})
    yield "rdms", plotting.plot_rdm_grid(
        rdms, order=order, ncols=4, title="RDMs (stimuli sorted by category; rank scaled)")
    yield "rsa", plotting.plot_rsa_profile(
        s.layers, s.rsa_mean, ceiling=s.ceiling, errors=s.rsa_sem, pvalues=s.rsa_p,
        highlight=PLANTED_LAYER, ylabel="Spearman correlation",
        title="RSA by layer against the noise ceiling")
    yield "top_stimuli", plotting.plot_top_stimuli(
        s.images[s.top.indices], values=s.top.values,
        unit_labels=[f"{s.recovered}:{u}" for u in s.top.units])
    yield "saliency", plotting.plot_saliency(
        s.images[s.best], s.saliency,
        titles=[f"{s.recovered}:{u} top stimulus" for u in s.top.units])


def _summarise(s):
    """The result dict (every number of the report) and the printed summary."""
    recovered, sig = s.recovered, s.enc_sig[s.recovered]
    roi_recall = float(np.mean(sig[s.roi_cols])) if s.roi_cols.any() else 0.0
    s.result = {
        "planted_layer": PLANTED_LAYER, "layers": s.layers, "quick": s.quick, "seed": s.seed,
        "recovered_layer": recovered,
        "rsa_best_layer": s.rsa_best,
        "decoding_best_layer": max(s.layers, key=lambda k: s.decoding[k]),
        "decoding_accuracy": s.decoding,
        "encoding_score": s.enc_mean,
        "encoding_n_significant": {k: int(v.sum()) for k, v in s.enc_sig.items()},
        "rsa_score": dict(zip(s.layers, s.rsa_mean.tolist())),
        "rsa_pvalue_fwe": dict(zip(s.layers, s.rsa_p.tolist())),
        "noise_ceiling": (float(s.ceiling.lower), float(s.ceiling.upper)),
        "n_stimuli": len(s.stimuli),
        "n_voxels": int(s.masker.n_voxels_),
        "n_roi_voxels": int(s.roi_cols.sum()),
        "n_responsive_voxels": int(s.responsive.sum()),
        "roi_recall": roi_recall,
        "false_positive_voxels": int(np.sum(sig[~s.roi_cols])),
        "top_stimuli": {"layer": recovered, "units": list(s.top.units),
                        "ids": s.top.ids.tolist(), "values": s.top.values.tolist()},
    }
    s.result["summary"] = _summary_text(s.result, s.chance)


def _summary_text(r, chance):
    """The four lines printed at the end of the study (and shown atop the report)."""
    recovered, planted = r["recovered_layer"], r["planted_layer"]
    best_dec, rsa_best = r["decoding_best_layer"], r["rsa_best_layer"]
    lower, upper = r["noise_ceiling"]
    return "\n".join([
        f"Recovered layer: {recovered} (planted: {planted}) -- "
        + ("the study found the planted layer." if recovered == planted
           else "MISMATCH with the planted layer."),
        f"Encoding: {recovered} explains the voxels best (mean CV r "
        f"{r['encoding_score'][recovered]:.2f}); {r['encoding_n_significant'][recovered]} voxels "
        f"significant (FWE p < 0.05), {r['roi_recall']:.0%} of the {r['n_roi_voxels']} ROI "
        f"voxels, {r['false_positive_voxels']} outside.",
        f"RSA: best layer {rsa_best} (Spearman {r['rsa_score'][rsa_best]:.2f}, FWE p "
        f"{r['rsa_pvalue_fwe'][rsa_best]:.3g}); noise ceiling [{lower:.2f}, {upper:.2f}].",
        f"Decoding: categories are best decoded from {best_dec} "
        f"({r['decoding_accuracy'][best_dec]:.2f}, chance {chance:.2f}).",
    ])


def _write(s):
    """The Markdown/HTML report and ``results.json``; prints the summary if verbose."""
    from neuroprobe._utils import atomic_path
    from neuroprobe.demo._report import report_sections
    from neuroprobe.report import write_report

    result, summary = s.result, s.result["summary"]
    report = write_report(s.out, "neuroprobe demo study",
                          report_sections(result, s.cfg, s.figs, s.out, s.methods),
                          summary=summary,
                          embed_images=s.embed_images)
    s.paths["report_markdown"], s.paths["report_html"] = report["markdown"], report["html"]
    result["paths"] = s.paths
    s.log.step("report", f"report: {report['html']}")
    result["timings"] = dict(s.log.timings)
    result["seconds"] = s.log.total
    with atomic_path(s.out / "results.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(_jsonable(result), indent=2))
    if s.verbose:
        print(summary, flush=True)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


#: The steps of :func:`run_demo`, in order.
_STEPS = (_stimuli, _network, _extract, _reduce, _brain, _probe, _encode, _rsa, _inspect,
          _figures, _summarise, _write)
