"""neuroprobe rdm / neuroprobe rsa command lines."""

import csv

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from neuroprobe.cli.main import build_parser, main
from neuroprobe.io.rdm import load_rdms
from neuroprobe.rsa import noise_ceiling, permutation_test_rdms


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_rdm_from_activation_file(tmp_path):
    from neuroprobe.io.activations import write_activations

    rng = np.random.default_rng(0)
    layers = {"conv1": rng.standard_normal((8, 2, 3, 3)).astype(np.float32),
              "fc": rng.standard_normal((8, 5)).astype(np.float32)}
    ids = [f"im{i}" for i in range(8)]
    act = write_activations(tmp_path / "m.act.h5", layers, ids, model="toy")
    out = tmp_path / "m.rdm.h5"
    assert main(["rdm", str(act), "--layer", "fc", "--layer", "conv1", "--out", str(out),
                 "--quiet"]) == 0
    data = load_rdms(out)
    assert data.names == ["fc", "conv1"]
    assert list(data.stim_ids) == ids
    np.testing.assert_allclose(data["conv1"], pdist(layers["conv1"].reshape(8, -1),
                                                    "correlation"), atol=1e-5)


def test_rdm_refuses_constant_patterns_naming_the_stimuli(tmp_path, capsys):
    from neuroprobe.io.activations import write_activations

    rng = np.random.default_rng(0)
    fc = rng.standard_normal((8, 5)).astype(np.float32)
    fc[[2, 6]] = 0.0  # e.g. a ReLU layer silent for two images
    ids = [f"im{i}" for i in range(8)]
    act = write_activations(tmp_path / "m.act.h5", {"fc": fc, "dead": np.zeros((8, 3))}, ids)
    out = tmp_path / "m.rdm.h5"
    assert main(["rdm", str(act), "--layer", "fc", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    assert "fc: 2 pattern(s) are constant over features (im2, im6)" in err
    assert "--metric euclidean" in err
    assert main(["rdm", str(act), "--layer", "dead", "--out", str(out)]) == 1
    assert "dead: 8 pattern(s) are constant over features (im0, im1, im2, im3, im4, ...)" in (
        capsys.readouterr().err)
    assert main(["rdm", str(act), "--layer", "fc", "--metric", "euclidean", "--out", str(out),
                 "--quiet"]) == 0
    np.testing.assert_allclose(load_rdms(out)["fc"], pdist(fc, "euclidean"), rtol=1e-5)


def test_rdm_from_npy_with_conditions(tmp_path):
    rng = np.random.default_rng(1)
    Y = rng.standard_normal((6, 4))
    np.save(tmp_path / "roi.npy", Y)
    (tmp_path / "stim.csv").write_text("stim_id,category\n" + "\n".join(
        f"s{i},{'ab'[i % 2]}{i % 3}" for i in range(6)) + "\n")
    out = tmp_path / "roi.rdm.h5"
    assert main(["rdm", str(tmp_path / "roi.npy"), "--metric", "euclidean", "--conditions",
                 f"{tmp_path / 'stim.csv'}:category", "--out", str(out), "--quiet"]) == 0
    data = load_rdms(out)
    labels = np.array([f"{'ab'[i % 2]}{i % 3}" for i in range(6)])
    means = np.stack([Y[labels == c].mean(0) for c in np.unique(labels)])
    np.testing.assert_allclose(data.rdms[0], pdist(means, "euclidean"))
    assert list(data.stim_ids) == list(np.unique(labels))


def test_rsa_csv_with_pvalues_and_noise_ceiling(tmp_path):
    rng = np.random.default_rng(2)
    n = 12
    signal = rng.standard_normal((n, 4))
    subjects = np.stack([squareform(pdist(signal + 0.5 * rng.standard_normal((n, 4))))
                         for _ in range(4)])
    brain = subjects.mean(0)
    np.savez(tmp_path / "brain.npz", hIT=brain, subj=subjects)
    models = np.stack([pdist(signal), pdist(rng.standard_normal((n, 4)))])
    np.save(tmp_path / "models.npy", models)
    out = tmp_path / "rsa.csv"
    assert main(["rsa", "--model", str(tmp_path / "models.npy"), "--target",
                 f"{tmp_path / 'brain.npz'}:hIT", "--n-permutations", "199", "--seed", "3",
                 "--noise-ceiling", f"{tmp_path / 'brain.npz'}:subj", "--n-bootstrap", "20",
                 "--out", str(out), "--quiet"]) == 0
    rows = _read_csv(out)
    assert [r["model"] for r in rows] == ["models[0]", "models[1]"]
    expected = permutation_test_rdms(models, brain, "spearman", 199, random_state=3)
    for i, row in enumerate(rows):
        assert float(row["score"]) == pytest.approx(expected["score"][i, 0], rel=1e-5)
        assert float(row["pvalue"]) == pytest.approx(expected["pvalue"][i, 0], rel=1e-5)
        assert float(row["pvalue_fwe"]) == pytest.approx(expected["pvalue_fwe"][i, 0], rel=1e-5)
    assert float(rows[0]["pvalue"]) == pytest.approx(1 / 200)
    nc = noise_ceiling(subjects)
    assert float(rows[0]["noise_ceiling_lower"]) == pytest.approx(nc.lower, rel=1e-5)
    assert "upper_ci_high" in rows[0]


def test_permutation_test_rdms_matches_permutation_test():
    from neuroprobe.estimators import PermutationTest, RSAScorer

    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((9, 3)), rng.standard_normal((9, 5))
    target = pdist(Y, "correlation")
    a = permutation_test_rdms(pdist(X, "correlation"), target, n_permutations=50,
                              random_state=1)
    b = PermutationTest(RSAScorer(target_rdm=target), n_permutations=50, random_state=1).fit(X)
    np.testing.assert_allclose(a["null"][:, 0, 0], b.null_distribution_)
    assert a["pvalue"][0, 0] == pytest.approx(b.pvalue_)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["rsa", "--model", str(tmp_path / "missing.npy"), "--target",
                 str(tmp_path / "x.npy"), "--out", str(tmp_path / "o.csv")]) == 1
    err = capsys.readouterr().err
    assert "file not found" in err and "missing.npy" in err and len(err.strip().splitlines()) == 1
    np.save(tmp_path / "a.npy", np.zeros((5, 2)))
    assert main(["rdm", str(tmp_path / "a.npy"), "--layer", "fc", "--out",
                 str(tmp_path / "o.rdm.h5")]) == 1
    assert "--layer applies to .act.h5" in capsys.readouterr().err


def test_help_has_examples():
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices
    assert "neuroprobe rdm" in sub["rdm"].format_help()
    assert "neuroprobe rsa --model" in sub["rsa"].format_help()
