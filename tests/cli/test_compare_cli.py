"""`neuroprobe partition | compare` in-process on tiny files (arrays and a NIfTI series)."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neuroprobe.io.activations import write_activations


def _main(*args):
    from neuroprobe.cli.main import main

    try:
        return main([str(a) for a in args])
    except SystemExit as exc:  # --help
        return exc.code


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """conv3 carries signal A + shared S, conv5 carries B + S; 8 voxels; 4 runs of 30."""
    d = tmp_path_factory.mktemp("cmp")
    rng = np.random.default_rng(0)
    n = 120
    A, B, S = (rng.standard_normal((n, 2)) for _ in range(3))
    acts = {"conv3": np.c_[A, S].astype(np.float32), "conv5": np.c_[B, S].astype(np.float32),
            "fc": rng.standard_normal((n, 3)).astype(np.float32)}
    ids = [f"s{i:03d}" for i in range(n)]
    write_activations(d / "net.act.h5", acts, ids, model="tiny")
    Y = np.c_[A @ [[1.0] * 4, [1.0] * 4], B @ [[1.0] * 4, [1.0] * 4]] + S.sum(1, keepdims=True)
    Y = Y + 0.5 * rng.standard_normal((n, 8))
    np.save(d / "Y.npy", Y.astype(np.float32))
    np.save(d / "runs.npy", np.repeat(np.arange(4), 30))
    img = nib.Nifti1Image(Y.T.reshape(2, 2, 2, n).astype(np.float32), np.eye(4))
    img.to_filename(d / "bold.nii.gz")
    return d, Y


def test_help_has_examples(capsys):
    for cmd in ("partition", "compare"):
        assert _main(cmd, "--help") == 0
        assert "example" in capsys.readouterr().out


def test_partition_writes_one_map_per_component_and_the_table(study, capsys):
    from neuroprobe.partition import variance_partitioning

    d, Y = study
    out = d / "part.csv"
    assert _main("partition", d / "net.act.h5", "--band", "conv3", "--band", "conv5",
                 "--targets", d / "Y.npy", "--groups", d / "runs.npy", "--alphas", "0.1,10",
                 "--out", out) == 0
    printed = capsys.readouterr().out
    assert "3 models (2 bands) x 4 folds" in printed
    table = pd.read_csv(out)
    assert set(table.component) == {"unique:conv3", "unique:conv5", "shared:conv3&conv5",
                                    "r2:conv3", "r2:conv5", "r2:conv3+conv5"}
    unique3 = np.load(d / "part_unique_conv3.npy")
    shared = np.load(d / "part_shared_conv3-conv5.npy")
    assert unique3.shape == (8,) and np.load(d / "part_r2_conv3-conv5.npy").shape == (8,)
    # the same numbers as the Python API with the same settings (leave-one-run-out)
    from sklearn.model_selection import LeaveOneGroupOut

    from neuroprobe.estimators.encoding import VoxelwiseEncoder
    from neuroprobe.io.activations import read_layers_2d

    feats = read_layers_2d(d / "net.act.h5", ["conv3", "conv5"])
    vp = variance_partitioning(
        VoxelwiseEncoder(alphas=[0.1, 10.0], scoring="r2", cv=LeaveOneGroupOut()),
        np.hstack([feats["conv3"], feats["conv5"]]), np.load(d / "Y.npy"),
        {"conv3": slice(0, 4), "conv5": slice(4, 8)}, groups=np.load(d / "runs.npy"))
    np.testing.assert_allclose(unique3, vp.components[0], rtol=1e-5)
    np.testing.assert_allclose(shared, vp.components[2], rtol=1e-5)
    # planted: voxels 0-3 are conv3's (A), 4-7 conv5's (B), all share S
    assert np.all(unique3[:4] > 0.2) and np.all(np.abs(unique3[4:]) < 0.1)
    assert np.all(shared > 0.05)


def test_partition_writes_brain_maps(study, capsys):
    d, _ = study
    out = d / "brain.csv"
    assert _main("partition", d / "net.act.h5", "--band", "conv3", "--band", "conv5",
                 "--targets", d / "bold.nii.gz", "--cv", "3", "--alphas", "1", "--out", out) == 0
    img = nib.load(d / "brain_unique_conv5.nii.gz")
    assert img.shape == (2, 2, 2)
    values = np.asarray(img.dataobj).reshape(-1)
    table = pd.read_csv(out)
    np.testing.assert_allclose(values, table[table.component == "unique:conv5"].value,
                               rtol=1e-5)


def test_compare_layers(study, capsys):
    d, _ = study
    out = d / "cmp.csv"
    assert _main("compare", d / "net.act.h5", "--layer", "conv3", "--layer", "fc",
                 "--layer", "conv5", "--targets", d / "Y.npy", "--groups", d / "runs.npy",
                 "--cv", "4", "--alphas", "0.1,10", "--n-bootstrap", "500",
                 "--n-permutations", "49", "--scheme", "circular", "--out", out) == 0
    table = pd.read_csv(out).set_index(["model_a", "model_b"])
    assert table.loc[("conv3", "fc"), "ci_low"] > 0  # conv3 predicts, fc does not
    assert {"pvalue_holm", "pvalue_fdr_bh"} <= set(table.columns)
    layers = pd.read_csv(d / "cmp_layers.csv", index_col=0)
    assert list(layers.index) == ["conv3", "fc", "conv5"]
    assert layers.loc["fc", "n_significant"] == 0 and layers.loc["conv3", "n_significant"] > 0
    assert "paired bootstrap over 120 stimuli" in capsys.readouterr().out


def test_errors(study, capsys):
    d, _ = study
    assert _main("partition", d / "net.act.h5", "--band", "conv3", "--targets", d / "Y.npy",
                 "--out", d / "x.csv") == 1
    assert "at least two --band" in capsys.readouterr().err
    assert _main("compare", d / "net.act.h5", "--layer", "conv3", "--layer", "fc", "--targets",
                 d / "Y.npy", "--unit", "runs", "--out", d / "x.csv") == 1
    assert "--unit runs needs --groups" in capsys.readouterr().err
    assert _main("partition", d / "net.act.h5", "--band", "conv3", "--band", "conv5",
                 "--targets", d / "Y.npy", "--out", d / "x.npy") == 1
