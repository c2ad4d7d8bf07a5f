"""Tests of the embedded demo: stimuli, network, brain simulation, report writer, the study."""

import json

import numpy as np
import pytest

from neuroprobe import demo


# ------------------------------------------------------------------------------ stimuli
def test_make_shapes_is_seeded_balanced_and_uint8():
    a, la = demo.make_shapes(5, seed=3)
    b, lb = demo.make_shapes(5, seed=3)
    c, _ = demo.make_shapes(5, seed=4)
    assert a.shape == (20, demo.IMAGE_SIZE, demo.IMAGE_SIZE, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, c)
    assert np.bincount(la).tolist() == [5, 5, 5, 5]


def test_make_shapes_draws_the_category_geometry():
    # A ring is hollow (its centre has the background colour); disks, squares and crosses
    # cover their centre.
    images, labels = demo.make_shapes(40, size=64, seed=0)
    for image, label in zip(images[:40], labels[:40]):
        border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
        background = np.median(border.astype(float), axis=0)  # shapes stay central
        fg = np.abs(image.astype(float) - background).sum(-1) > 100
        ys, xs = np.nonzero(fg)
        cy, cx = int(round(ys.mean())), int(round(xs.mean()))
        centre_is_fg = fg[cy - 1 : cy + 2, cx - 1 : cx + 2].mean() > 0.5
        if demo.CATEGORIES[label] == "ring":
            assert not centre_is_fg
        elif demo.CATEGORIES[label] in ("disk", "square", "cross"):
            assert centre_is_fg


def test_make_shapes_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n_per_category"):
        demo.make_shapes(0)
    with pytest.raises(ValueError, match="size"):
        demo.make_shapes(2, size=4)


# ------------------------------------------------------------------------------ network
def test_shapes_cnn_is_registered_seeded_and_loads_weights(tmp_path):
    import torch

    from neuroprobe.models import ModelError, build_model, list_layers

    a = build_model("shapes-cnn", weights=None, random_state=1)
    b = build_model("shapes-cnn", weights=None, random_state=1)
    c = build_model("shapes-cnn", weights=None, random_state=2)
    for pa, pb in zip(a.module.parameters(), b.module.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.module.conv1.weight, c.module.conv1.weight)
    names = [name for name, _ in list_layers("shapes-cnn")]
    assert all(layer in names for layer in demo.LAYERS)
    torch.save(c.module.state_dict(), tmp_path / "w.pt")
    d = build_model("shapes-cnn", weights=str(tmp_path / "w.pt"), random_state=1)
    assert torch.equal(d.module.conv1.weight, c.module.conv1.weight)
    with pytest.raises(ModelError, match="shapes-cnn weights"):
        build_model("shapes-cnn", weights="imagenet")


def test_preprocessing_standardises_each_picture():
    from PIL import Image

    images, _ = demo.make_shapes(1, seed=0)
    x = demo.ImageStandardizer()(Image.fromarray(images[0])).numpy()
    ref = images[0].astype(np.float64).transpose(2, 0, 1)
    ref = (ref - ref.mean()) / ref.std(ddof=1)
    np.testing.assert_allclose(x, ref, atol=1e-4)


# ------------------------------------------------------------------------------ brain
def test_simulated_voxels_follow_the_planted_map():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 5))
    sim = demo.simulate_brain(z, n_subjects=3, noise=0.5, seed=1)
    roi, brain = sim.roi_mask, sim.brain_mask
    assert roi.sum() > 50 and brain.sum() > roi.sum() and not np.any(roi & ~brain)
    zs = (z - z.mean(0)) / z.std(0)
    # Ground truth: the mean over subjects of the ROI voxels = 100 + gain * (z w) + noise / sqrt(3).
    mean = np.mean([d[roi].T for d in sim.data], axis=0)  # (n, n_roi)
    design = np.column_stack([np.ones(len(zs)), zs])
    coef = np.linalg.lstsq(design, mean, rcond=None)[0]
    np.testing.assert_allclose(coef[0], 100.0, atol=0.2)
    truth = sim.weights * sim.gain[roi]
    assert np.corrcoef(coef[1:].ravel(), truth.ravel())[0, 1] > 0.97
    # Outside the ROI: noise only (no relation to z), independent across subjects.
    outside = brain & ~roi
    y0, y1 = sim.data[0][outside].T, sim.data[1][outside].T
    r2 = 1 - ((y0 - design @ np.linalg.lstsq(design, y0, rcond=None)[0]) ** 2).sum(0) / (
        (y0 - y0.mean(0)) ** 2).sum(0)
    assert r2.mean() < 0.06  # expected 5 / 199 for pure noise
    assert abs(y0.std() - 0.5) < 0.03  # the noise level asked for
    assert abs(np.corrcoef(y0.ravel(), y1.ravel())[0, 1]) < 0.05
    assert np.all(sim.data[0][~brain] == 0)


def test_brain_files_read_back_through_brainmasker(tmp_path):
    from neuroprobe.transformers import BrainMasker

    sim = demo.simulate_brain(np.random.default_rng(0).normal(size=(12, 3)), n_subjects=2)
    files = demo.write_brain(sim, tmp_path)
    masker = BrainMasker(files["brain_mask"]).fit()
    Y = masker.transform(files["subjects"][1])
    np.testing.assert_allclose(Y, sim.data[1][sim.brain_mask].T, rtol=1e-6)
    back = masker.inverse_transform(Y[0])
    np.testing.assert_allclose(np.asarray(back.dataobj)[sim.brain_mask], Y[0])


# ------------------------------------------------------------------------------ the study
@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, demo.run_demo(out, quick=True, seed=0, verbose=False)


def test_quick_demo_recovers_the_planted_layer(quick_study):
    out, result = quick_study
    layers = result["layers"]
    assert result["planted_layer"] == demo.PLANTED_LAYER
    assert result["recovered_layer"] == demo.PLANTED_LAYER
    assert result["rsa_best_layer"] == demo.PLANTED_LAYER
    assert f"Recovered layer: {demo.PLANTED_LAYER} (planted: {demo.PLANTED_LAYER})" in (
        result["summary"])
    enc = result["encoding_score"]
    others = [enc[k] for k in layers if k != demo.PLANTED_LAYER]
    assert enc[demo.PLANTED_LAYER] > max(others) + 0.05
    # Family-wise inference: the ROI is found, the rest of the brain (noise only) is not.
    assert result["roi_recall"] > 0.9
    assert result["false_positive_voxels"] <= 2
    # RSA: the planted layer is significant and reaches the noise ceiling's lower bound region.
    assert result["rsa_pvalue_fwe"][demo.PLANTED_LAYER] < 0.05
    lower, upper = result["noise_ceiling"]
    assert 0 < lower < upper <= 1
    assert result["rsa_score"][demo.PLANTED_LAYER] > lower - 0.1
    # Decoding rises with depth (trained network): last layer far above the first and chance.
    dec = result["decoding_accuracy"]
    assert dec["fc2"] > dec["conv1"] + 0.15 and dec["fc2"] > 0.45


def test_quick_demo_writes_report_figures_and_data(quick_study):
    import nibabel as nib

    out, result = quick_study
    paths = result["paths"]
    md = paths["report_markdown"].read_text()
    html = paths["report_html"].read_text()
    for name, fig in paths["figures"].items():
        assert fig.is_file() and fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        rel = fig.relative_to(out).as_posix()
        assert f"]({rel})" in md and f'src="{rel}"' in html
    assert {"decoding", "encoding", "encoding_map", "rdms", "rsa", "top_stimuli",
            "saliency"} <= set(paths["figures"])
    assert result["summary"].splitlines()[0] in md
    # results.json holds the returned numbers
    saved = json.loads((out / "results.json").read_text())
    assert saved["recovered_layer"] == result["recovered_layer"]
    assert saved["encoding_score"] == pytest.approx(result["encoding_score"])
    # the NIfTI accuracy map of the recovered layer: high in the ROI, low elsewhere
    r_map = np.asarray(nib.load(out / "maps" / f"encoding_r_{demo.PLANTED_LAYER}.nii.gz").dataobj)
    roi = np.asarray(nib.load(paths["brain_roi"]).dataobj) > 0
    brain = np.asarray(nib.load(paths["brain_brain_mask"]).dataobj) > 0
    assert r_map[roi].mean() > 0.5 > r_map[brain & ~roi].mean() + 0.3
    # the activation file holds every layer for every stimulus
    from neuroprobe.io.activations import open_activations

    with open_activations(paths["activations"]) as f:
        assert f.layers == list(demo.LAYERS) and len(f.stim_ids) == result["n_stimuli"]
    # top stimuli are the argmax of the activations of each unit
    top = result["top_stimuli"]
    with open_activations(paths["activations"]) as f:
        acts = f.read(top["layer"])
        ids = list(f.stim_ids)
    for unit, unit_ids in zip(top["units"], top["ids"]):
        c = int(unit.lstrip("c"))
        values = acts[:, c].reshape(len(acts), -1).max(axis=1)
        assert unit_ids[0] == ids[int(np.argmax(values))]


# ------------------------------------------------------------------------------ layout
def test_the_network_and_the_registry_do_not_import_the_demo():
    import subprocess
    import sys

    code = ("import sys; from neuroprobe.models import build_model, list_layers; "
            "list_layers('shapes-cnn'); "
            "print(sorted(m for m in sys.modules if m.startswith('neuroprobe.demo')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_demo_package_functions_are_short_steps():
    import ast
    from pathlib import Path

    folder = Path(demo.__file__).parent
    long = []
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) else node.body
                n = body[-1].end_lineno - body[0].lineno + 1
                if n > 40:
                    long.append(f"{path.name}:{node.name} ({n} lines)")
    assert not long


def test_demo_names_are_the_network_module_names():
    from neuroprobe.models import shapes_cnn as module

    for name in ("CATEGORIES", "LAYERS", "IMAGE_SIZE", "make_shapes", "make_network",
                 "train_network", "shapes_cnn", "ImageStandardizer"):
        assert getattr(demo, name) is getattr(module, name)
