"""Every ``neuroprobe`` subcommand end to end in a subprocess, on one tiny study.

Each command's output is read back and compared with the Python API on the same inputs; the error
style (one line ``neuroprobe CMD: error: ...``, non-zero exit, no traceback) is checked for every
subcommand. The other engineers test their own commands in detail; this file checks that the
commands work together and behave alike.
"""

import csv
import json
import os
import subprocess
import sys

import h5py
import nibabel as nib
import numpy as np
import pytest

from neuroprobe.cli.main import build_parser

#: The workflows of the issue, plus the inspection commands.
EXPECTED = {
    "extract", "layers", "reduce", "probe", "encode", "decode", "rdm", "rsa", "hrf", "roi",
    "info", "demo", "topstim", "saliency", "optstim", "rf", "minstim", "ablate", "finetune",
    "view", "report", "words",
}
#: Commands that only print (no --out) — the rest share --out / --n-jobs / --device / --seed.
PRINT_ONLY = {"layers", "info"}


# one BLAS/OpenMP thread per subprocess: the arrays are tiny, and the test machine is shared
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _cli(*args, check=True, timeout=600, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "neuroprobe", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=ENV, cwd=cwd)
    if check:
        assert proc.returncode == 0, f"neuroprobe {args[0]} failed:\n{proc.stderr[-3000:]}"
    return proc


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """16 generated pictures with a category column, and simulated NIfTI responses to them."""
    from neuroprobe.demo import CATEGORIES, make_shapes, simulate_brain, write_brain
    from neuroprobe.stimuli import StimulusSet

    d = tmp_path_factory.mktemp("cli_all")
    images, labels = make_shapes(4, seed=0)
    from PIL import Image

    (d / "stimuli").mkdir()
    paths, ids = [], []
    for i, image in enumerate(images):
        ids.append(f"s{i:02d}")
        paths.append(str(d / "stimuli" / f"s{i:02d}.png"))
        Image.fromarray(image).save(paths[-1])
    cats = np.asarray([CATEGORIES[k] for k in labels])
    StimulusSet.from_paths(paths, ids=ids, attributes={"category": cats}).write_csv(
        d / "stimuli.csv")
    sim = simulate_brain(np.random.default_rng(0).normal(size=(len(images), 3)), n_subjects=2,
                         seed=0)
    brain = write_brain(sim, d / "brain")
    return {"dir": d, "csv": d / "stimuli.csv", "labels": cats, "ids": ids, "brain": brain,
            "images": images}


@pytest.fixture(scope="module")
def acts(study):
    """``neuroprobe extract`` once; the other commands read its file."""
    out = study["dir"] / "acts.act.h5"
    _cli("extract", "--model", "shapes-cnn", "--weights", "none", "--seed", "3",
         "--layers", "conv2", "fc1", "--stimuli", study["csv"], "--out", out, "--quiet")
    return out


# --------------------------------------------------------------------------------- style
def test_every_workflow_has_a_subcommand_with_an_example_and_the_common_flags():
    subs = _subparsers()
    missing = EXPECTED - set(subs)
    assert not missing, f"missing subcommands: {sorted(missing)}"
    for name, parser in subs.items():
        assert parser.epilog and "example" in parser.epilog.lower(), name
        flags = {opt for action in parser._actions for opt in action.option_strings}
        if name not in PRINT_ONLY:
            assert {"--out", "--n-jobs", "--device", "--seed", "--quiet"} <= flags, name


def _bad_arguments(name, study):
    """A call of each command with a wrong input file: must fail with a one-line message."""
    missing = study["dir"] / "does_not_exist.act.h5"
    out = study["dir"] / "bad_out"
    inspect = ["--model", "shapes-cnn", "--weights", "none", "--layer", "no_such_layer",
               "--channels", "0", "--stimuli", study["csv"], "--out", out]
    return {
        "extract": ["--model", "shapes-cnn", "--weights", "none", "--layers", "conv1",
                    "--stimuli", missing, "--out", out],
        "layers": ["--model", "no_such_model_xyz"],
        "info": [missing],
        "reduce": [missing, "--out", out],
        "probe": [missing, "--labels", f"{study['csv']}:category", "--out", out],
        "encode": [missing, "--layer", "fc1", "--targets", missing, "--out", out],
        "decode": [missing, "--labels", f"{study['csv']}:category", "--out", out],
        "partition": [missing, "--band", "fc1", "--band", "conv1", "--targets", missing,
                      "--out", study["dir"] / "bad.csv"],
        "compare": [missing, "--layer", "fc1", "--layer", "conv1", "--targets", missing,
                    "--out", study["dir"] / "bad.csv"],
        "rdm": [missing, "--out", out],
        "rsa": ["--model", missing, "--target", missing, "--out", out],
        "hrf": ["--features", missing, "--events", missing, "--tr", "2", "--n-scans", "10",
                "--out", out],
        "roi": [missing, "--out", out],
        "searchlight": [missing, "--model", missing, "--out", study["dir"] / "sl.nii.gz"],
        "demo": ["--quick", "--out", study["csv"]],  # --out is a file, not a folder
        "topstim": inspect + ["--k", "2"],
        "saliency": inspect,
        "optstim": ["--model", "shapes-cnn", "--weights", "none", "--layer", "no_such_layer",
                    "--channels", "0", "--out", out],
        "rf": inspect,
        "minstim": inspect,
        "ablate": inspect,
        "finetune": ["--model", "shapes-cnn", "--weights", "none", "--stimuli", missing,
                     "--out", out],
        "view": inspect,
        "report": [study["dir"] / "no_such_results_folder"],
        "view-map": [missing, "--out", study["dir"] / "bad_map.png"],
        "words": [study["dir"] / "no_such_transcript.csv", "--model", "hf:gpt2", "--layers",
                  "block0", "--out", study["dir"] / "bad_words.act.h5"],
    }.get(name)


def test_bad_arguments_give_one_line_errors_for_every_command(study, capsys):
    from neuroprobe.cli.main import main

    for name in sorted(_subparsers()):
        args = _bad_arguments(name, study)
        assert args is not None, f"no bad-argument case for new subcommand {name!r}: add one"
        code = main([name, *map(str, args)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code not in (0, None), name
        assert len(err) == 1, f"{name}: expected one line on stderr, got {err}"
        assert err[0].startswith(f"neuroprobe {name}: error: "), err[0]
        assert "Traceback" not in err[0]


def test_time_resolved_tail_and_tfce_bad_values_one_line(study, capsys):
    """--tail / --tfce of rsa and encode --time-resolved: bad values fail before any file is
    read, with one line naming the flag."""
    from neuroprobe.cli.main import main

    missing = study["dir"] / "does_not_exist"
    cases = {"rsa": ["--model", missing, "--brain", f"{missing}-epo.fif", "--time-resolved"],
             "encode": [f"{missing}.act.h5", "--layer", "fc1", "--brain", f"{missing}-epo.fif",
                        "--time-resolved", "--n-permutations", "10"]}
    for flags in (["--tfce", "abc"], ["--tfce", "0,0.1,2"], ["--tfce", "0,0"],
                  ["--tfce", "0,nan"], ["--tail", "-1", "--tfce", "0,0.1"],
                  ["--tail", "0", "--tfce", "-1"], ["--tfce", "0", "--n-permutations", "0"]):
        for name, args in cases.items():
            code = main([name, *map(str, args), *flags, "--out", str(study["dir"] / "x.csv")])
            err = capsys.readouterr().err.strip().splitlines()
            assert code not in (0, None) and len(err) == 1, (name, flags, err)
            assert err[0].startswith(f"neuroprobe {name}: error: CLIError: --tfce"), err[0]
    # without --brain the flags would be ignored: refused
    for name, args in (("rsa", ["--model", missing, "--target", missing]),
                       ("encode", [f"{missing}.act.h5", "--layer", "fc1", "--targets", missing])):
        for flags in (["--tail", "0"], ["--tfce", "0"]):
            code = main([name, *map(str, args), *flags, "--out", str(study["dir"] / "x.csv")])
            err = capsys.readouterr().err.strip().splitlines()
            assert code not in (0, None) and len(err) == 1 and "--time-resolved" in err[0], err


def test_encode_partition_needs_two_bands_one_line(study, capsys):
    from neuroprobe.cli.main import main

    missing = study["dir"] / "does_not_exist.act.h5"
    for flags, text in ((["--layer", "fc1"], "--partition needs --bands"),
                        (["--bands", "fc1"], "at least two --bands")):
        code = main(["encode", str(missing), *flags, "--partition", "--targets", str(missing),
                     "--out", str(study["dir"] / "bad_out.npy")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code not in (0, None) and len(err) == 1, err
        assert err[0].startswith("neuroprobe encode: error: ") and text in err[0], err[0]


def test_usage_errors_and_debug_in_a_subprocess(study):
    # argparse errors: exit 2, the last line names the command and the problem, no traceback
    proc = _cli("encode", "--layer", "fc1", check=False)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("neuroprobe encode: error:") and "required" in last
    assert "Traceback" not in proc.stderr
    # runtime errors: exit 1 and one line; --debug shows the traceback
    proc = _cli("info", study["dir"] / "nothing.act.h5", check=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "nothing.act.h5" in proc.stderr
    proc = _cli("--debug", "info", study["dir"] / "nothing.act.h5", check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


# --------------------------------------------------------------------------------- DNN side
def test_layers_extract_info_match_the_python_api(study, acts):
    from neuroprobe.io.activations import open_activations
    from neuroprobe.models import build_model, list_layers
    from neuroprobe.stimuli import StimulusSet
    from neuroprobe.transformers import DNNFeatureExtractor

    proc = _cli("layers", "--model", "shapes-cnn", "--weights", "none")
    printed = [line.split()[0] for line in proc.stdout.strip().splitlines()[1:]]
    assert printed == [name for name, _ in list_layers("shapes-cnn")]

    stimuli = StimulusSet.from_csv(study["csv"])
    ref = DNNFeatureExtractor(
        build_model("shapes-cnn", weights=None, random_state=3), layers=["conv2", "fc1"]
    )
    X = ref.fit_transform(stimuli)
    with open_activations(acts) as f:
        assert list(f.stim_ids) == study["ids"]
        got = np.hstack([f.read(k).reshape(len(f.stim_ids), -1) for k in ("conv2", "fc1")])
    np.testing.assert_allclose(got, X, rtol=1e-5, atol=1e-5)

    info = _cli("info", acts).stdout
    assert "conv2" in info and "fc1" in info and "16" in info


def test_reduce_probe_rdm_rsa_match_the_python_api(study, acts):
    from neuroprobe.io.activations import open_activations
    from neuroprobe.io.rdm import load_rdms
    from neuroprobe.model_selection import probe_layers
    from neuroprobe.rsa import compare_rdms, compute_rdm, noise_ceiling

    d = study["dir"]
    with open_activations(acts) as f:
        fc1 = f.read("fc1").reshape(16, -1)
        conv2 = f.read("conv2").reshape(16, -1)

    _cli("reduce", acts, "--layer", "fc1", "--n-components", "3", "--out", d / "pca.npz",
         "--quiet")
    z = np.load(d / "pca.npz")
    from sklearn.decomposition import PCA

    ref = PCA(3).fit_transform(fc1.astype(np.float64))
    np.testing.assert_allclose(np.abs(z["X"]), np.abs(ref), atol=1e-3)

    _cli("probe", acts, "--labels", f"{study['csv']}:category", "--cv", "4", "--seed", "0",
         "--out", d / "probe.csv", "--quiet")
    rows = {r[next(iter(r))]: r for r in _read_csv(d / "probe.csv")}
    table = probe_layers(str(acts), study["labels"], cv=4, random_state=0)
    for layer in ("conv2", "fc1"):
        assert float(rows[layer]["mean_score"]) == pytest.approx(table.loc[layer, "mean_score"])

    _cli("rdm", acts, "--layer", "conv2", "--layer", "fc1", "--out", d / "dnn.rdm.h5", "--quiet")
    rdms = load_rdms(d / "dnn.rdm.h5")
    np.testing.assert_allclose(rdms["fc1"], compute_rdm(fc1, "correlation"), atol=1e-5)
    np.testing.assert_allclose(rdms["conv2"], compute_rdm(conv2, "correlation"), atol=1e-5)

    # a "brain" target RDM and two subjects' RDMs
    rng = np.random.default_rng(1)
    z = (fc1 - fc1.mean(0)) / (fc1.std(0) + 1e-6)
    brain = z @ rng.normal(size=(fc1.shape[1], 30)) + 0.3 * rng.normal(size=(16, 30))
    subjects = np.stack([compute_rdm(brain + rng.normal(size=brain.shape)) for _ in range(3)])
    target = compute_rdm(brain)
    np.savez(d / "brain_rdms.npz", roi=target, subjects=subjects)
    _cli("rsa", "--model", d / "dnn.rdm.h5", "--target", f"{d / 'brain_rdms.npz'}:roi",
         "--noise-ceiling", f"{d / 'brain_rdms.npz'}:subjects", "--n-permutations", "200",
         "--seed", "0", "--out", d / "rsa.csv", "--quiet")
    result = {r["model"]: r for r in _read_csv(d / "rsa.csv")}
    for layer, x in (("conv2", conv2), ("fc1", fc1)):
        expected = compare_rdms(compute_rdm(x, "correlation"), target, "spearman")
        assert float(result[layer]["score"]) == pytest.approx(expected, abs=1e-4)
    nc = noise_ceiling(subjects, "spearman")
    assert float(result["fc1"]["noise_ceiling_lower"]) == pytest.approx(nc.lower, abs=1e-5)
    assert float(result["fc1"]["noise_ceiling_upper"]) == pytest.approx(nc.upper, abs=1e-5)
    assert float(result["fc1"]["pvalue"]) < 0.05  # the brain was built from fc1


# --------------------------------------------------------------------------------- brain side
def test_roi_encode_decode_hrf_match_the_python_api(study, acts):

    from neuroprobe.estimators import VoxelwiseEncoder
    from neuroprobe.io.activations import open_activations
    from neuroprobe.model_selection import cross_val_score_targets, probe_layers
    from neuroprobe.transformers import BrainMasker, HRFConvolver

    d, brain = study["dir"], study["brain"]
    bold = brain["subjects"][0]

    _cli("roi", bold, "--mask", brain["roi"], "--out", d / "roi.h5", "--quiet")
    Y_roi = BrainMasker(brain["roi"]).fit_transform(bold)
    with h5py.File(d / "roi.h5", "r") as f:
        np.testing.assert_allclose(f["Y"][...], Y_roi, rtol=1e-6)
    _cli("roi", bold, "--mask", brain["roi"], "--summary", "mean", "--out", d / "roi_mean.csv",
         "--quiet")
    with open(d / "roi_mean.csv") as fh:
        text = fh.read()
    assert f"{Y_roi.mean(axis=1)[0]:.3f}"[:6] in text

    with open_activations(acts) as f:
        fc1 = f.read("fc1").reshape(16, -1)
    _cli("encode", acts, "--layer", "fc1", "--targets", bold, "--mask", brain["brain_mask"],
         "--cv", "4", "--inner-cv", "3", "--alphas", "1,10,100", "--out", d / "fc1_r.nii.gz",
         "--quiet")
    masker = BrainMasker(brain["brain_mask"]).fit()
    Y = masker.transform(bold)
    enc = VoxelwiseEncoder(alphas=[1, 10, 100], cv=3)
    expected = np.nanmean(cross_val_score_targets(enc, fc1, Y, cv=4), axis=0)
    img = nib.load(d / "fc1_r.nii.gz")
    assert img.shape == nib.load(brain["brain_mask"]).shape
    got = masker.transform([img])[0]
    np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(expected), atol=1e-4)

    _cli("decode", bold, "--mask", brain["roi"], "--labels", f"{study['csv']}:category",
         "--cv", "4", "--seed", "0", "--out", d / "decode.csv", "--quiet")
    row = _read_csv(d / "decode.csv")[0]
    table = probe_layers({"brain": Y_roi}, study["labels"], cv=4, random_state=0)
    assert float(row["mean_score"]) == pytest.approx(table["mean_score"].iloc[0])

    # events: each stimulus shown once, every 4 s, in reverse order (rows picked by stim_id)
    order = list(reversed(study["ids"]))
    with open(d / "events.csv", "w") as fh:
        fh.write("onset,duration,stim_id\n")
        fh.writelines(f"{4 * i},1,{sid}\n" for i, sid in enumerate(order))
    _cli("hrf", "--features", acts, "--layer", "fc1", "--events", d / "events.csv", "--tr", "2",
         "--n-scans", "40", "--out", d / "regressors.h5", "--quiet")
    conv = HRFConvolver(tr=2, n_scans=40, onsets=4.0 * np.arange(16), durations=np.ones(16))
    ref = conv.fit_transform(fc1[[study["ids"].index(s) for s in order]])
    with h5py.File(d / "regressors.h5", "r") as f:
        data = f[next(k for k in f if f[k].ndim == 2)][...]
    np.testing.assert_allclose(data, ref, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------- inside the DNN
@pytest.mark.slow  # ten subprocesses (~30 s)
def test_inspection_commands_run_and_match_the_python_api(study):
    import torch

    from neuroprobe.inspect import saliency, top_stimuli
    from neuroprobe.models import build_model
    from neuroprobe.stimuli import StimulusSet
    from neuroprobe.transformers import DNNFeatureExtractor

    d = study["dir"]
    base = ["--model", "shapes-cnn", "--weights", "none", "--seed", "5", "--quiet"]
    stimuli = StimulusSet.from_csv(study["csv"])
    spec = build_model("shapes-cnn", weights=None, random_state=5)

    _cli("topstim", *base, "--layer", "conv2", "--channels", "0", "3", "--k", "3",
         "--stimuli", study["csv"], "--out", d / "topstim")
    rows = _read_csv(d / "topstim" / "top_stimuli.csv")
    ext = DNNFeatureExtractor(spec, layers=["conv2"]).fit(stimuli[:1])
    ref = top_stimuli(ext, stimuli, "conv2", units=[0, 3], k=3)
    assert [r["stim_id"] for r in rows] == [str(i) for i in ref.ids.ravel()]
    assert (d / "topstim" / "top_stimuli.png").is_file()

    two = d / "two.csv"
    with open(study["csv"]) as fh:
        two.write_text("".join(fh.readlines()[:3]))
    _cli("saliency", *base, "--layer", "conv2", "--channels", "1", "--method", "vanilla",
         "--stimuli", two, "--out", d / "saliency")
    with h5py.File(d / "saliency" / "saliency.h5", "r") as f:
        maps = f["c1"][...]
    expected = saliency(spec, StimulusSet.from_csv(two), ("conv2", 1), method="vanilla")
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)

    _cli("view", *base, "--layer", "conv1", "--stimuli", two, "--out", d / "view")
    with h5py.File(d / "view" / "activations.h5", "r") as f:
        view = f["activations"][...]
    with torch.no_grad():
        x = torch.stack([spec.preprocess(StimulusSet.from_csv(two).load(i)) for i in range(2)])
        conv1 = spec.module.conv1(x).numpy()
    np.testing.assert_allclose(view.reshape(conv1.shape), conv1, rtol=1e-4, atol=1e-5)

    _cli("ablate", *base, "--layer", "conv3", "--channels", "0", "1", "--stimuli", two,
         "--output-layer", "fc2", "--out", d / "ablate")
    assert len(_read_csv(d / "ablate" / "lesion.csv")) == 2

    _cli("rf", *base, "--layer", "conv2", "--channels", "0", "--stimuli", two, "--window", "16",
         "--stride", "16", "--out", d / "rf")
    with h5py.File(d / "rf" / "receptive_fields.h5", "r") as f:
        assert len(f.keys()) >= 1
    _cli("minstim", *base, "--layer", "conv2", "--channels", "0", "--stimuli", two,
         "--n-segments", "8", "--parcellation", "grid", "--out", d / "minstim")
    assert len(_read_csv(d / "minstim" / "minimal_stimuli.csv")) == 2
    _cli("optstim", *base, "--layer", "conv2", "--channels", "0", "--n-iter", "5",
         "--size", "64", "64", "--out", d / "optstim")
    assert (d / "optstim" / "optimal_stimuli.png").is_file()
    _cli("finetune", *base, "--stimuli", study["csv"], "--target", "category", "--epochs", "1",
         "--batch-size", "8", "--out", d / "finetune")
    ckpt = d / "finetune" / "finetuned.pt"
    assert ckpt.is_file()
    # the checkpoint feeds back into extract (finetune -> extract consistency)
    _cli("extract", "--model", "shapes-cnn", "--weights", ckpt, "--layers", "fc2",
         "--stimuli", two, "--out", d / "ft.act.h5", "--quiet")


# --------------------------------------------------------------------------------- demo
@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_cli") / "demo"
    # a relative --out, as README's command writes it
    proc = _cli("demo", "--quick", "--out", "demo", "--seed", "0", "--quiet", cwd=out.parent)
    return out, proc


def test_demo_quick_names_the_planted_layer_and_writes_its_report(demo_run):
    from neuroprobe.demo import PLANTED_LAYER

    out, proc = demo_run
    assert f"Recovered layer: {PLANTED_LAYER} (planted: {PLANTED_LAYER})" in proc.stdout
    for name in ("report.html", "report.md", "results.json", "activations.act.h5"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert results["recovered_layer"] == PLANTED_LAYER
    html = (out / "report.html").read_text()
    for fig in results["paths"]["figures"].values():
        assert (out / "figures").as_posix() in fig and fig.endswith(".png")
    assert html.count("<img ") == len(results["paths"]["figures"])
    # the demo's files are ordinary neuroprobe inputs: its activations go through `info` and
    # its trained weights through `extract`
    assert "conv3" in _cli("info", out / "activations.act.h5").stdout
    two = out / "two.csv"
    with open(out / "stimuli.csv") as fh:
        two.write_text("".join(fh.readlines()[:3]))
    _cli("extract", "--model", "shapes-cnn", "--weights", out / "shapes_cnn.pt", "--layers",
         "conv3", "--stimuli", two, "--out", out / "again.act.h5", "--quiet")
    from neuroprobe.io.activations import open_activations

    with open_activations(out / "again.act.h5") as a, \
            open_activations(out / "activations.act.h5") as b:
        np.testing.assert_allclose(a.read("conv3"), b.read("conv3", [0, 1]), rtol=1e-5,
                                   atol=1e-5)


def test_demo_report_links_resolve_after_moving_its_folder(demo_run, tmp_path):
    """The report of a demo run with a relative ``--out`` opens wherever its folder is moved:
    every image and link is relative to the report file (not to the working directory)."""
    import re
    import shutil
    from urllib.parse import unquote

    out, _ = demo_run
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(out, moved)
    try:
        html = (moved / "report.html").read_text()
        md = (moved / "report.md").read_text()
        links = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"\]\(([^)]+)\)", md)
        images = [u for u in links if u.endswith(".png")]
        assert len(images) >= 2 * 7, links  # every figure, in both reports
        for link in links:
            if re.match(r"[a-z]+:", link) or link.startswith("#"):  # web links, anchors
                assert not link.startswith("file:"), link
                continue
            target = (moved / unquote(link)).resolve()
            assert target.is_file(), f"broken link {link!r} in the moved report"
            assert target.is_relative_to(moved.resolve()), link
    finally:
        shutil.move(moved, out)


@pytest.mark.slow  # a dozen subprocesses (~30 s)
def test_the_commands_listed_in_the_demo_report_work(demo_run):
    import shlex

    out, _ = demo_run
    md = (out / "report.md").read_text()
    block = md[md.index("```bash\n") + len("```bash\n"):]
    commands = [line for line in block[: block.index("```")].splitlines() if line.strip()]
    assert len(commands) >= 10
    for line in commands:
        args = shlex.split(line)
        assert args[0] == "neuroprobe"
        if args[1] == "demo":
            continue  # already run
        proc = subprocess.run([sys.executable, "-m", "neuroprobe", *args[1:]], cwd=out,
                              capture_output=True, text=True, timeout=600, env=ENV)
        assert proc.returncode == 0, f"{line}\n{proc.stderr[-2000:]}"
        assert "no stimulus IDs" not in proc.stderr, f"{line}\n{proc.stderr[-2000:]}"
    # the ROI signals carry the stimulus IDs of stimuli.csv (so rdm / rsa join by ID)
    from neuroprobe.io.targets import read_target_ids

    with open(out / "stimuli.csv", newline="") as fh:
        expected = [row["stim_id"] for row in csv.DictReader(fh)]
    assert list(read_target_ids(out / "roi.h5")) == expected
    # and they reproduce the study's files: the re-extracted activations equal the demo's
    from neuroprobe.io.activations import open_activations

    with open_activations(out / "activations.act.h5") as f:
        assert f.layers == ["conv1", "conv2", "conv3", "conv4", "fc1", "fc2"]
    for name in ("probe.csv", "conv3_r.nii.gz", "roi.h5", "decode.csv", "dnn.rdm.h5",
                 "roi.rdm.h5", "rsa.csv"):
        assert (out / name).is_file(), name
    rsa = _read_csv(out / "rsa.csv")[0]
    assert float(rsa["pvalue"]) < 0.05  # conv3 vs the ROI of the first subject
    r_map = np.asarray(nib.load(out / "conv3_r.nii.gz").dataobj)
    roi = np.asarray(nib.load(out / "brain" / "roi.nii.gz").dataobj) > 0
    brain = np.asarray(nib.load(out / "brain" / "brain_mask.nii.gz").dataobj) > 0
    # one subject (noisier than the demo's subject average): still clearly above the rest
    assert r_map[roi].mean() > r_map[brain & ~roi].mean() + 0.25
