"""The sections of the demo's report (text, figures and tables of :func:`run_demo`'s result)."""

from __future__ import annotations

from pathlib import Path

from neuroprobe.models.shapes_cnn import CATEGORIES
from neuroprobe.report import Section
from neuroprobe.report.build import closing_sections
from neuroprobe.report.provenance import library_versions


def report_sections(result, cfg, figs, out, methods=()):
    """The report's sections, in order: design, decoding, encoding, RSA, inspection, files, then
    the generated methods text of the estimators that ran (``methods``: (name, Methods) pairs),
    the software versions and the references (the machinery of ``neuroprobe report``)."""
    def rel(name):
        return Path(figs[name]).relative_to(out).as_posix()

    return [
        _design(result, cfg, rel),
        _decoding(result, cfg, rel),
        _encoding(result, cfg, rel),
        _rsa(result, cfg, rel),
        _inspection(result, cfg, rel),
        _files(result),
        *closing_sections(list(methods), [library_versions()]),
    ]


def _design(result, cfg, rel):
    layers = result["layers"]
    return Section(
        "Study design",
        [
            f"{result['n_stimuli']} generated pictures ({cfg['n_per_category']} per category: "
            f"{', '.join(CATEGORIES)}; 64x64 RGB, random position, size, orientation, colours "
            "and pixel noise) went through a small CNN trained for a few seconds on other "
            f"generated pictures. Every layer ({', '.join(layers)}) was extracted once to "
            "`activations.act.h5` and reduced to "
            f"{cfg['n_components']} whitened principal components (PCAReducer).",
            f"Simulated fMRI: {cfg['n_subjects']} subjects, a 10x10x10 volume with "
            f"{result['n_voxels']} brain voxels; the {result['n_roi_voxels']} voxels of a "
            "spherical region of interest respond to the principal components of "
            f"{result['planted_layer']} through a planted linear map (shared by the subjects) "
            "plus independent Gaussian noise; the other voxels carry noise only. The volumes were "
            "written as 4-D NIfTI files (`brain/`) and read back with BrainMasker. The study "
            "below does not know which layer was planted: it must find it.",
        ],
        figures=[(rel("stimuli"), "Examples of the generated stimuli, one row per category")],
    )


def _decoding(result, cfg, rel):
    layers = result["layers"]
    return Section(
        "Decoding the categories by layer",
        f"PCA ({cfg['n_components_probe']} components, fitted inside each training fold) and "
        "multinomial logistic regression on each layer's activations, 5-fold cross-validated "
        f"accuracy (chance {1 / len(CATEGORIES):.2f}). Category information grows with depth; "
        "the brain region, however, follows an intermediate layer.",
        figures=[(rel("decoding"), "Decoding accuracy by layer (shaded: planted layer)")],
        table=(["layer", "accuracy"], [[k, result["decoding_accuracy"][k]] for k in layers]),
    )


def _encoding(result, cfg, rel):
    layers = result["layers"]
    return Section(
        "Voxelwise encoding by layer",
        f"Ridge regression per voxel (VoxelwiseEncoder, alphas chosen per voxel by 5-fold CV) "
        f"from each layer's components to the subject-averaged responses; statistic: "
        "cross-validated correlation at each voxel's best alpha (the same statistic on "
        f"permuted data gives the null); p-values from {cfg['n_permutations']} permutations of "
        "the stimuli (PermutationTest), family-wise over voxels (max statistic). The layer "
        "profile averages over the voxels significant for at least one layer. Maps of every "
        "layer are in `maps/` (NIfTI, via BrainMasker.inverse_transform).",
        figures=[
            (rel("encoding"), "Mean cross-validated correlation by layer"),
            (rel("encoding_map"),
             f"Encoding accuracy of {result['recovered_layer']}: axial slices of the "
             "NIfTI map"),
        ],
        table=(["layer", "mean r", "significant voxels"],
               [[k, result["encoding_score"][k], result["encoding_n_significant"][k]]
                for k in layers]),
    )


def _rsa(result, cfg, rel):
    layers = result["layers"]
    return Section(
        "Representational similarity by layer",
        "Correlation-distance RDMs of each layer's components and of each subject's ROI "
        "voxels; Spearman correlation of each layer RDM with each subject RDM (bars: mean "
        "and standard error over subjects); grey band: noise ceiling (lower: leave one "
        "subject out, upper: all subjects); stars: family-wise p < 0.05 over layers from "
        f"{cfg['n_permutations']} stimulus permutations of the subject-averaged RDM.",
        figures=[(rel("rdms"), "RDMs of the brain region and of every layer"),
                 (rel("rsa"), "RSA by layer against the noise ceiling")],
        table=(["layer", "Spearman (mean)", "p (FWE)"],
               [[k, result["rsa_score"][k], result["rsa_pvalue_fwe"][k]] for k in layers]),
    )


def _inspection(result, cfg, rel):
    return Section(
        "Inside the recovered layer: top stimuli and saliency",
        f"The {cfg['top_k']} stimuli that drive three units (channels, maximum over space) "
        f"of {result['recovered_layer']} most, and guided-backpropagation saliency of each "
        "unit for its top stimulus.",
        figures=[(rel("top_stimuli"), "Top stimuli per unit (value: activation)"),
                 (rel("saliency"), "Saliency of each unit for its top stimulus")],
    )


def _files(result):
    return Section(
        "Files",
        "`stimuli.csv` and `stimuli/` (the pictures), `shapes_cnn.pt` (trained weights), "
        "`activations.act.h5` (every layer), `brain/` (simulated NIfTI series, brain mask, "
        "ROI, planted gain), `maps/` (per-layer encoding accuracy and FWE p-value maps), "
        "`results.json` (all numbers of this report), `figures/`. The same study can be run "
        "step by step without programming with the commands below (from this folder).",
        code=cli_equivalents(result),
    )


def cli_equivalents(result):
    """The command lines doing the steps of the study on the demo's files (run in ``out``)."""
    layer = result["recovered_layer"]
    layers = " ".join(result["layers"])
    return "\n".join([
        f"neuroprobe demo --out . --seed {result['seed']}"
        + (" --quick" if result["quick"] else ""),
        "neuroprobe layers --model shapes-cnn --weights shapes_cnn.pt",
        f"neuroprobe extract --model shapes-cnn --weights shapes_cnn.pt --layers {layers} "
        "--stimuli stimuli.csv --out activations.act.h5",
        "neuroprobe info activations.act.h5",
        "neuroprobe probe activations.act.h5 --labels stimuli.csv:category --out probe.csv",
        f"neuroprobe encode activations.act.h5 --layer {layer} "
        "--targets brain/sub-01_responses.nii.gz --mask brain/brain_mask.nii.gz "
        f"--target-ids stimuli.csv --out {layer}_r.nii.gz",
        "neuroprobe roi brain/sub-01_responses.nii.gz --mask brain/roi.nii.gz "
        "--ids stimuli.csv --out roi.h5",
        "neuroprobe decode brain/sub-01_responses.nii.gz --mask brain/roi.nii.gz "
        "--ids stimuli.csv --labels stimuli.csv:category --out decode.csv",
        f"neuroprobe rdm activations.act.h5 --layer {layer} --out dnn.rdm.h5",
        "neuroprobe rdm roi.h5 --out roi.rdm.h5",
        "neuroprobe rsa --model dnn.rdm.h5 --target roi.rdm.h5 --n-permutations 1000 "
        "--out rsa.csv",
        f"neuroprobe topstim --activations activations.act.h5 --layer {layer} "
        "--stimuli stimuli.csv --out topstim/",
        f"neuroprobe saliency --model shapes-cnn --weights shapes_cnn.pt --layer {layer} "
        "--channels 0 --stimuli stimuli/ --out saliency/",
    ])
