"""`neuroprobe encode --bands --partition`: band and component maps equal the Python API."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import LeaveOneGroupOut

from neuroprobe.io.activations import write_activations

N_RUNS, PER_RUN = 4, 30
ALPHAS = [0.01, 1.0, 100.0]


def _main(*args):
    from neuroprobe.cli.main import main

    try:
        return main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Two layers; voxels 0-2 driven by conv3 only, 3-5 by fc1 only, 6-8 by a latent both
    layers carry (shared), 9 by nothing."""
    d = tmp_path_factory.mktemp("partition")
    rng = np.random.default_rng(0)
    n = N_RUNS * PER_RUN
    shared = rng.standard_normal((n, 2))
    a, b = rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
    conv3 = np.hstack([a, shared])
    fc1 = np.hstack([b, shared, rng.standard_normal((n, 1))])
    ids = [f"s{i:03d}" for i in range(n)]
    write_activations(d / "net.act.h5", {"conv3": conv3.astype(np.float32),
                                         "fc1": fc1.astype(np.float32)}, ids, model="tiny")
    Y = np.hstack([a @ rng.standard_normal((3, 3)), b @ rng.standard_normal((3, 3)),
                   shared @ rng.standard_normal((2, 3)), np.zeros((n, 1))])
    Y = Y + 0.5 * rng.standard_normal(Y.shape)
    np.save(d / "bold.npy", Y.astype(np.float32))
    runs = np.repeat(np.arange(N_RUNS), PER_RUN)
    pd.DataFrame({"stim_id": ids, "run": runs}).to_csv(d / "runs.csv", index=False)
    X = np.hstack([conv3, fc1]).astype(np.float32)
    return d, X, Y.astype(np.float32), runs


def _reference(X, Y, runs):
    from sklearn.base import clone

    from neuroprobe import BandedRidgeEncoder
    from neuroprobe.partition import variance_partitioning

    names = [f"conv3:{i}" for i in range(5)] + [f"fc1:{i}" for i in range(6)]
    enc = BandedRidgeEncoder(bands=["conv3:", "fc1:"], feature_names=names, alphas=ALPHAS,
                             cv="leave-one-run-out", scoring="r2", random_state=0)
    split = []
    for tr, te in LeaveOneGroupOut().split(X, None, runs):
        est = clone(enc).fit(X[tr], Y[tr], groups=runs[tr])
        split.append(est.score_targets(X[te], Y[te], split=True))
    vp = variance_partitioning(enc, pd.DataFrame(X, columns=names), Y, ["conv3", "fc1"],
                               groups=runs, cv=LeaveOneGroupOut())
    return np.mean(split, axis=0), vp


def test_partition_maps_equal_the_python_api(study, capsys):
    from neuroprobe.report.results import find_results

    d, X, Y, runs = study
    out = d / "banded.npy"
    rc = _main("encode", d / "net.act.h5", "--bands", "conv3", "fc1", "--partition",
               "--runs", f"{d / 'runs.csv'}:run", "--targets", d / "bold.npy",
               "--scoring", "r2", "--alphas", ",".join(map(str, ALPHAS)), "--out", out)
    assert rc == 0, capsys.readouterr().err
    split, vp = _reference(X, Y, runs)
    files = {"band-conv3": split[0], "band-fc1": split[1],
             "unique-conv3": vp.components[0], "unique-fc1": vp.components[1],
             "shared-conv3+fc1": vp.components[2]}
    for tag, ref in files.items():
        np.testing.assert_allclose(np.load(d / f"banded_{tag}.npy"), ref, rtol=1e-5,
                                   atol=1e-6, err_msg=tag)
    # the planted structure: unique / shared variance where it was put
    uc, uf, sh = (np.load(d / f"banded_{t}.npy") for t in
                  ("unique-conv3", "unique-fc1", "shared-conv3+fc1"))
    assert uc[:3].min() > 0.2 and uf[3:6].min() > 0.2 and sh[6:9].min() > 0.15
    assert np.abs(uc[3:]).max() < 0.1 and np.abs(uf[:3]).max() < 0.1
    # the band shares sum to the banded model's R2 map (same outer folds)
    np.testing.assert_allclose(split.sum(axis=0), np.load(out), atol=1e-5)
    # the tidy table: one row per map, negatives counted, not hidden
    table = pd.read_csv(d / "banded_partition.csv", index_col="component")
    assert list(table.index) == ["band:conv3", "band:fc1", "unique:conv3", "unique:fc1",
                                 "shared:conv3+fc1"]
    for (_, row), ref in zip(table.iterrows(), files.values()):
        assert row["n_positive"] == int(np.sum(ref > 0))
        assert row["n_negative"] == int(np.sum(ref < 0))
        assert row["mean"] == pytest.approx(float(np.mean(ref)), abs=1e-5)
    assert table["n_negative"].sum() > 0  # the empty voxel: noise around 0, kept
    meta = json.loads((d / "banded.json").read_text())
    assert meta["maps"] == ["banded.npy"] + [f"banded_{t}.npy" for t in files]
    assert meta["partition"]["table"] == ["banded_partition.csv"]
    # the report still recognises the encode run: every map belongs to it
    (result,) = [r for r in find_results(d) if r.kind == "encode"]
    assert {p.name for p in result.files} == set(meta["maps"]) | {"banded.json"}


def test_partition_nifti_maps(study, tmp_path):
    nib = pytest.importorskip("nibabel")
    d, X, Y, runs = study
    vol = np.zeros((2, 5, 1, Y.shape[0]), np.float32)
    vol.reshape(10, -1)[:] = Y.T
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "bold.nii.gz")
    rc = _main("encode", d / "net.act.h5", "--bands", "conv3", "fc1", "--partition",
               "--runs", f"{d / 'runs.csv'}:run", "--targets", tmp_path / "bold.nii.gz",
               "--scoring", "r2", "--alphas", ",".join(map(str, ALPHAS)),
               "--out", tmp_path / "map.nii.gz")
    assert rc == 0
    split, vp = _reference(X, Y, runs)
    img = nib.load(tmp_path / "map_shared-conv3+fc1.nii.gz")
    assert img.shape == (2, 5, 1)
    flat = img.get_fdata().reshape(10)
    keep = np.isfinite(flat)  # the all-zero voxel is dropped by the masker
    np.testing.assert_allclose(flat[keep], vp.components[2][keep], rtol=1e-5, atol=1e-6)
    band = nib.load(tmp_path / "map_band-fc1.nii.gz").get_fdata().reshape(10)
    np.testing.assert_allclose(band[keep], split[1][keep], rtol=1e-5, atol=1e-6)


def test_partition_bad_arguments(study, capsys):
    d = study[0]
    common = ["--targets", d / "bold.npy", "--out", d / "x.npy"]
    assert _main("encode", d / "net.act.h5", "--layer", "fc1", "--partition", *common) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--partition needs --bands" in err[0]
    assert _main("encode", d / "net.act.h5", "--bands", "fc1", "--partition", *common) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "at least two --bands" in err[0]
