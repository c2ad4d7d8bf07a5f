"""neuroprobe rdm --method crossnobis --runs, neuroprobe rsa --bootstrap."""

import csv

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from neuroprobe.cli.main import main
from neuroprobe.io.rdm import load_rdms


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _design(tmp_path, n_cond=6, n_runs=3, p=20):
    rng = np.random.default_rng(0)
    cond = np.tile([f"c{i}" for i in range(n_cond)], n_runs)
    runs = np.repeat(np.arange(n_runs), n_cond)
    X = rng.standard_normal((n_cond, p))[np.tile(np.arange(n_cond), n_runs)]
    X = X + 0.5 * rng.standard_normal(X.shape)
    np.save(tmp_path / "betas.npy", X)
    with open(tmp_path / "design.csv", "w") as fh:
        fh.write("condition,run\n" + "".join(f"{c},{r}\n" for c, r in zip(cond, runs)))
    return X, cond, runs


def test_rdm_crossnobis_from_csv_columns(tmp_path):
    from neuroprobe.rsa import compute_rdm

    X, cond, runs = _design(tmp_path)
    out = tmp_path / "cn.rdm.h5"
    assert main(["rdm", str(tmp_path / "betas.npy"), "--method", "crossnobis",
                 "--conditions", f"{tmp_path / 'design.csv'}:condition",
                 "--runs", f"{tmp_path / 'design.csv'}:run", "--out", str(out),
                 "--quiet"]) == 0
    data = load_rdms(out)
    np.testing.assert_allclose(data.rdms[0], compute_rdm(X, "crossnobis", conditions=cond,
                                                         cv_groups=runs), rtol=1e-12)
    assert list(data.stim_ids) == sorted(set(cond))
    assert data.attrs.get("metric", "crossnobis") == "crossnobis"


def test_rdm_crossnobis_errors_name_the_flag(tmp_path, capsys):
    _design(tmp_path)
    args = ["rdm", str(tmp_path / "betas.npy"), "--method", "crossnobis", "--conditions",
            f"{tmp_path / 'design.csv'}:condition", "--out", str(tmp_path / "x.rdm.h5")]
    assert main(args) != 0
    assert "--runs" in capsys.readouterr().err
    with open(tmp_path / "one.csv", "w") as fh:  # a single run: nothing to cross-validate
        fh.write("run\n" + "0\n" * 18)
    assert main(args + ["--runs", f"{tmp_path / 'one.csv'}:run"]) != 0
    assert "crossnobis" in capsys.readouterr().err


def _subjects(tmp_path, n=14, n_subj=5):
    rng = np.random.default_rng(7)
    signal = rng.standard_normal((n, 4))
    subj = np.stack([squareform(pdist(signal + rng.standard_normal((n, 4))))
                     for _ in range(n_subj)])
    np.savez(tmp_path / "brain.npz", subj=subj)
    models = np.stack([pdist(signal + 0.5 * rng.standard_normal((n, 4))),
                       pdist(rng.standard_normal((n, 4)))])
    np.save(tmp_path / "models.npy", models)
    return models, subj


@pytest.mark.parametrize("unit", ["both", "subjects"])
def test_rsa_bootstrap_csv_equals_api(tmp_path, unit):
    from neuroprobe.rsa import to_condensed
    from neuroprobe.rsa_inference import bootstrap_rsa

    models, subj = _subjects(tmp_path)
    out = tmp_path / "boot.csv"
    assert main(["rsa", "--model", str(tmp_path / "models.npy"), "--target",
                 f"{tmp_path / 'brain.npz'}:subj", "--bootstrap", unit, "--n-bootstrap", "60",
                 "--method", "pearson", "--seed", "3", "--out", str(out), "--quiet"]) == 0
    rows = _read_csv(out)
    ref = bootstrap_rsa(models, to_condensed(subj), "pearson", unit, 60, random_state=3)
    assert [r["kind"] for r in rows] == ["model", "model", "difference"]
    assert [r["model"] for r in rows] == ["models[0]", "models[1]", "models[0]"]
    assert rows[2]["other"] == "models[1]"
    for i in range(2):
        assert float(rows[i]["estimate"]) == pytest.approx(ref.mean[i], rel=1e-5)
        assert float(rows[i]["ci_low"]) == pytest.approx(ref.ci[i, 0], rel=1e-5, abs=1e-6)
        assert float(rows[i]["pvalue"]) == pytest.approx(ref.pvalue_zero[i], rel=1e-4,
                                                         abs=1e-12)
        assert float(rows[i]["pvalue_noise_ceiling"]) == pytest.approx(
            ref.pvalue_noise_ceiling[i], rel=1e-4, abs=1e-12)
    assert float(rows[2]["pvalue"]) == pytest.approx(ref.pvalue_pairwise[0, 1], rel=1e-4)
    assert float(rows[2]["pvalue_fwe"]) == pytest.approx(ref.pvalue_pairwise_fwe[0, 1],
                                                         rel=1e-4)
    assert rows[0]["unit"] == unit and rows[0]["n_bootstrap"] == "60"


def test_rsa_bootstrap_needs_subject_targets(tmp_path, capsys):
    models, subj = _subjects(tmp_path)
    np.save(tmp_path / "group.npy", subj.mean(0))
    assert main(["rsa", "--model", str(tmp_path / "models.npy"), "--target",
                 str(tmp_path / "group.npy"), "--bootstrap", "both", "--out",
                 str(tmp_path / "b.csv")]) != 0
    assert "subject RDMs" in capsys.readouterr().err
    assert main(["rsa", "--model", str(tmp_path / "models.npy"), "--target",
                 f"{tmp_path / 'brain.npz'}:subj", "--bootstrap", "both", "--method",
                 "kendall_tau_a", "--out", str(tmp_path / "b.csv")]) != 0
    assert "supports" in capsys.readouterr().err


def test_rdm_poisson_cv_from_csv_columns(tmp_path):
    from neuroprobe.rsa import compute_rdm

    X, cond, runs = _design(tmp_path)
    counts = np.abs(np.round(3 * X))
    np.save(tmp_path / "counts.npy", counts)
    out = tmp_path / "p.rdm.h5"
    assert main(["rdm", str(tmp_path / "counts.npy"), "--method", "poisson_cv",
                 "--conditions", f"{tmp_path / 'design.csv'}:condition",
                 "--runs", f"{tmp_path / 'design.csv'}:run", "--out", str(out),
                 "--quiet"]) == 0
    np.testing.assert_allclose(load_rdms(out).rdms[0],
                               compute_rdm(counts, "poisson_cv", conditions=cond,
                                           cv_groups=runs), rtol=1e-12)
