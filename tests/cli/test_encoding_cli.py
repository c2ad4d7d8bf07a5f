"""`neuroprobe reduce | probe | encode | decode` run in a subprocess on tiny files."""

import subprocess
import sys

import numpy as np
import pytest

from neuroprobe.io.activations import write_activations


def _cli(*args):
    """The real command line, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "neuroprobe", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _main(*args, capsys=None):
    """The same entry point in-process (cheaper; used for the quick checks)."""
    from neuroprobe.cli.main import main

    try:
        return main([str(a) for a in args])
    except SystemExit as exc:  # --help
        return exc.code


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    d = tmp_path_factory.mktemp("enc")
    rng = np.random.RandomState(0)
    n = 40
    labels = np.repeat(["animate", "inanimate"], n // 2)
    acts = {
        "conv1": rng.randn(n, 2, 3, 3).astype(np.float32),
        "fc": (rng.randn(n, 6) + 3 * (labels == "animate")[:, None]).astype(np.float32),
    }
    ids = [f"s{i:02d}" for i in range(n)]
    write_activations(d / "net.act.h5", acts, ids, model="tiny")
    # stimuli.csv in another order: labels are aligned by stim_id
    order = rng.permutation(n)
    with open(d / "stimuli.csv", "w") as fh:
        fh.write("stim_id,animacy\n")
        for i in order:
            fh.write(f"{ids[i]},{labels[i]}\n")
    W = rng.randn(6, 12)
    Y = acts["fc"] @ W + 0.5 * rng.randn(n, 12)
    Y[:, 5] = 0.0  # a constant voxel
    np.save(d / "Y.npy", Y.astype(np.float32))
    np.save(d / "labels.npy", labels)
    return d, acts, labels, Y


def test_help_has_examples(capsys):
    for cmd in ("reduce", "probe", "encode", "decode"):
        assert _main(cmd, "--help") == 0
        assert "example" in capsys.readouterr().out


def test_reduce_per_layer(study):
    d, acts, _, _ = study
    assert (
        _main(
            "reduce", d / "net.act.h5", "--n-components", "3", "--per-layer", "--out", d / "pca.npz"
        )
        == 0
    )
    z = np.load(d / "pca.npz")
    assert z["X"].shape == (40, 6)
    assert list(z["feature_names"][:3]) == ["conv1:pc0", "conv1:pc1", "conv1:pc2"]
    from sklearn.decomposition import PCA

    ref = PCA(3).fit_transform(acts["fc"].astype(np.float64))
    np.testing.assert_allclose(np.abs(z["X"][:, 3:]), np.abs(ref), atol=1e-4)


def test_probe_aligns_labels_by_stim_id(study):
    d, _, _, _ = study
    assert (
        _main(
            "probe",
            d / "net.act.h5",
            "--labels",
            f"{d / 'stimuli.csv'}:animacy",
            "--cv",
            "4",
            "--out",
            d / "probe.csv",
        )
        == 0
    )
    import pandas as pd

    table = pd.read_csv(d / "probe.csv", index_col=0)
    assert list(table.index) == ["conv1", "fc"]
    assert table.loc["fc", "mean_score"] > 0.9  # planted: fc separates the classes
    assert np.load(d / "probe.confusion.npz")["confusion/fc"].sum() == 40


def test_encode_map_equals_python_api(study):
    d, acts, _, Y = study
    out = _cli(
        "encode",
        d / "net.act.h5",
        "--layer",
        "fc",
        "--targets",
        d / "Y.npy",
        "--cv",
        "4",
        "--alphas",
        "0.1,10,1000",
        "--out",
        d / "map.npy",
    )
    assert out.returncode == 0, out.stderr
    from neuroprobe.estimators.encoding import VoxelwiseEncoder
    from neuroprobe.model_selection import cross_val_score_targets

    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        ref = np.nanmean(
            cross_val_score_targets(
                VoxelwiseEncoder(alphas=[0.1, 10, 1000]), acts["fc"], Y.astype(np.float32), cv=4
            ),
            axis=0,
        )
    got = np.load(d / "map.npy")
    np.testing.assert_allclose(got, ref, atol=1e-5, equal_nan=True)
    assert np.isnan(got[5]) and np.nanmin(got) > 0.8


def test_encode_permutation_pvalue_maps_equal_python_api(study, tmp_path):
    d, acts, _, Y = study
    Y = Y.astype(np.float32).copy()
    Y[:, 5] = np.random.RandomState(1).randn(len(Y))  # a voxel with no signal
    np.save(tmp_path / "Y.npy", Y)
    args = ["--layer", "fc", "--targets", tmp_path / "Y.npy", "--cv", "4", "--alphas", "0.1,10"]
    assert (
        _main("encode", d / "net.act.h5", *args, "--n-permutations", "40", "--seed", "3",
              "--out", tmp_path / "map.npy")
        == 0
    )
    from neuroprobe.estimators.encoding import VoxelwiseEncoder
    from neuroprobe.estimators.permutation import PermutationTest

    ref = PermutationTest(
        VoxelwiseEncoder(alphas=[0.1, 10]), n_permutations=40, cv=4, random_state=3
    ).fit(acts["fc"], Y)
    p = np.load(tmp_path / "map_pvalue.npy")
    p_fwe = np.load(tmp_path / "map_pvalue_fwe.npy")
    np.testing.assert_allclose(p, ref.pvalue_)
    np.testing.assert_allclose(p_fwe, ref.pvalue_fwe_)
    planted = np.arange(12) != 5
    assert np.all(p_fwe[planted] == 1 / 41) and p_fwe[5] > 0.05


def test_encode_pls_map_equals_python_api(study, tmp_path):
    d, acts, _, Y = study
    Y = np.delete(Y, 5, axis=1).astype(np.float32)  # PLS scales targets: no constant column
    np.save(tmp_path / "Y.npy", Y)
    assert (
        _main("encode", d / "net.act.h5", "--layer", "fc", "--targets", tmp_path / "Y.npy",
              "--model", "pls", "--n-components", "3", "--cv", "4", "--out", tmp_path / "pls.npy")
        == 0
    )
    from neuroprobe.estimators.encoding import PLSEncoder
    from neuroprobe.model_selection import cross_val_score_targets

    ref = cross_val_score_targets(PLSEncoder(n_components=3), acts["fc"], Y, cv=4).mean(axis=0)
    np.testing.assert_allclose(np.load(tmp_path / "pls.npy"), ref, atol=1e-5)


def test_encode_nifti_map_and_decode(study, tmp_path):
    nib = pytest.importorskip("nibabel")
    pytest.importorskip("neuroprobe.transformers.brain")
    d, _, _, Y = study
    vol = np.zeros((3, 2, 2, 40), np.float32)
    vol.reshape(12, 40)[:] = Y.T
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "bold.nii.gz")
    out = _cli(
        "encode",
        d / "net.act.h5",
        "--layer",
        "fc",
        "--targets",
        tmp_path / "bold.nii.gz",
        "--cv",
        "4",
        "--alphas",
        "1,100",
        "--out",
        tmp_path / "map.nii.gz",
    )
    assert out.returncode == 0, out.stderr
    img = nib.load(tmp_path / "map.nii.gz")
    assert img.shape == (3, 2, 2) and np.nanmax(img.get_fdata()) > 0.8
    labels = np.load(d / "labels.npy")
    assert (
        _main(
            "decode",
            tmp_path / "bold.nii.gz",
            "--labels",
            d / "labels.npy",
            "--cv",
            "4",
            "--out",
            tmp_path / "dec.csv",
        )
        == 0
    )
    import pandas as pd

    from neuroprobe.model_selection import probe_layers

    ref = probe_layers({"brain": Y.astype(np.float32)}, labels, cv=4, random_state=0)
    got = pd.read_csv(tmp_path / "dec.csv", index_col=0)
    assert got.loc["brain", "mean_score"] == pytest.approx(ref.loc["brain", "mean_score"])


def test_cli_and_python_defaults_give_the_same_numbers(study, tmp_path):
    """Issue 13: CLI probe shuffled, Python plain KFold (0.74 vs 0.64 on the ordered 92 images).

    The study's stimuli are in category order (animate first); no --cv, no --seed anywhere.
    """
    import json
    import warnings

    import pandas as pd

    from neuroprobe.estimators.encoding import VoxelwiseEncoder
    from neuroprobe.model_selection import cross_val_score_targets, probe_layers

    d, acts, labels, Y = study
    out = _cli("probe", d / "net.act.h5", "--labels", d / "labels.npy", "--out", tmp_path / "p.csv")
    assert out.returncode == 0, out.stderr
    assert "StratifiedKFold(n_splits=5, random_state=0, shuffle=True)" in out.stdout
    got = pd.read_csv(tmp_path / "p.csv", index_col=0)
    ref = probe_layers(str(d / "net.act.h5"), labels)
    for layer in ("conv1", "fc"):
        cli_scores = np.array(got.loc[layer, "scores"].split(), dtype=float)
        np.testing.assert_allclose(cli_scores, ref.loc[layer, "scores"], rtol=1e-5)
        assert got.loc[layer, "cv"] == ref.loc[layer, "cv"]
    assert ref.loc["fc", "cv"] == "StratifiedKFold(n_splits=5, random_state=0, shuffle=True)"

    out = _cli("encode", d / "net.act.h5", "--layer", "fc", "--targets", d / "Y.npy",
               "--out", tmp_path / "map.npy")
    assert out.returncode == 0, out.stderr
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmean(
            cross_val_score_targets(VoxelwiseEncoder(), acts["fc"], Y.astype(np.float32)), axis=0
        )
    np.testing.assert_allclose(np.load(tmp_path / "map.npy"), expected, atol=1e-5,
                               equal_nan=True)
    meta = json.loads((tmp_path / "map.json").read_text())
    assert meta["cv"] == "KFold(n_splits=5, random_state=0, shuffle=True)"
    assert meta["inner_cv"].startswith("KFold(n_splits=5, shuffle=False)")
    assert meta["maps"] == ["map.npy"] and meta["seed"] == 0


def test_errors_are_one_line(study, capsys):
    d, _, _, _ = study
    code = _main(
        "encode",
        d / "net.act.h5",
        "--layer",
        "nope",
        "--targets",
        d / "Y.npy",
        "--out",
        d / "x.npy",
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "nope" in err and "fc" in err and len(err.strip().splitlines()) == 1
    assert not (d / "x.npy").exists()


# -- stimulus identity of the targets -----------------------------------------------------------
def test_encode_aligns_targets_by_stimulus_ids(study, tmp_path, capsys):
    """Shuffled brain rows gave r ~ 0 with exit 0; stored or given IDs now align them."""
    from neuroprobe.io.targets import read_target_ids, write_targets

    d, _, _, Y = study
    ids = np.array([f"s{i:02d}" for i in range(40)])
    order = np.random.default_rng(0).permutation(40)
    np.save(tmp_path / "Ys.npy", Y[order].astype(np.float32))
    common = ["--layer", "fc", "--cv", "4", "--alphas", "0.1,10,1000"]
    # no IDs: a warning, rows by position (the wrong answer the issue reports)
    assert _main("encode", d / "net.act.h5", *common, "--targets", tmp_path / "Ys.npy",
                 "--out", tmp_path / "wrong.npy") == 0
    assert "has no stimulus IDs" in capsys.readouterr().err
    wrong = np.load(tmp_path / "wrong.npy")
    assert np.nanmean(wrong) < 0.4
    # IDs from a CSV column (e.g. a BIDS events file's stim_id)
    (tmp_path / "events.tsv").write_text("onset\tstim_id\n" + "\n".join(
        f"{2 * k}\t{ids[i]}" for k, i in enumerate(order)) + "\n")
    assert _main("encode", d / "net.act.h5", *common, "--targets", tmp_path / "Ys.npy",
                 "--target-ids", tmp_path / "events.tsv", "--out", tmp_path / "csv.npy") == 0
    by_csv = np.load(tmp_path / "csv.npy")
    assert np.nanmin(by_csv) > 0.8  # the planted map (voxel 5 is constant: NaN)
    # IDs stored in the targets file by write_targets
    write_targets(tmp_path / "Ys.h5", Y[order], stim_ids=ids[order])
    assert list(read_target_ids(tmp_path / "Ys.h5")) == list(ids[order])
    assert _main("encode", d / "net.act.h5", *common, "--targets", tmp_path / "Ys.h5",
                 "--out", tmp_path / "h5.npy") == 0
    np.testing.assert_allclose(np.load(tmp_path / "h5.npy"), by_csv, atol=1e-5, equal_nan=True)
    # different stimulus sets are refused, naming the first mismatching IDs
    bad = ids[order].astype(object)
    bad[0] = "x99"
    np.save(tmp_path / "bad_ids.npy", bad.astype(str))
    capsys.readouterr()
    assert _main("encode", d / "net.act.h5", *common, "--targets", tmp_path / "Ys.npy",
                 "--target-ids", tmp_path / "bad_ids.npy", "--out", tmp_path / "x.npy") == 1
    err = capsys.readouterr().err
    assert "'x99'" in err and f"'{ids[order][0]}'" in err
    assert not (tmp_path / "x.npy").exists()


def test_decode_labels_aligned_by_ids(study, tmp_path):
    d, acts, labels, _ = study
    ids = np.array([f"s{i:02d}" for i in range(40)])
    order = np.random.default_rng(1).permutation(40)
    np.savez(tmp_path / "brain.npz", Y=acts["fc"][order], stim_ids=ids[order])
    out = tmp_path / "dec.csv"
    assert _main("decode", tmp_path / "brain.npz", "--labels", f"{d / 'stimuli.csv'}:animacy",
                 "--cv", "4", "--out", out) == 0
    import pandas as pd

    assert pd.read_csv(out, index_col=0)["mean_score"].iloc[0] > 0.9  # planted classes
    np.save(tmp_path / "brain.npy", acts["fc"][order])
    np.save(tmp_path / "ids.npy", ids[order])
    assert _main("decode", tmp_path / "brain.npy", "--ids", tmp_path / "ids.npy", "--labels",
                 f"{d / 'stimuli.csv'}:animacy", "--cv", "4", "--out", out) == 0
    assert pd.read_csv(out, index_col=0)["mean_score"].iloc[0] > 0.9
