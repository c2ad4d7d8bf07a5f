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


# -- stimulus identity, levels, sources ---------------------------------------------------------
def _two_rdm_files(tmp_path, order):
    """The same network's RDM saved twice, the second with its stimuli in ``order``."""
    from neuroprobe.io.rdm import save_rdms

    rng = np.random.default_rng(5)
    X = rng.standard_normal((15, 6))
    ids = np.array([f"im{i:02d}" for i in range(15)])
    a = save_rdms(tmp_path / "a.rdm.h5", pdist(X, "correlation"), ["fc"], stim_ids=ids)
    b = save_rdms(tmp_path / "b.rdm.h5", pdist(X[order], "correlation"), ["fc"],
                  stim_ids=ids[order])
    return a, b, X, ids


def test_rsa_aligns_rdm_files_by_stimulus_ids(tmp_path):
    """Reversed stimulus order used to score far from 1 with exit 0; now the rows are aligned."""
    a, b, X, ids = _two_rdm_files(tmp_path, np.arange(15)[::-1])
    wrong = scipy_spearman(pdist(X, "correlation"), pdist(X[::-1], "correlation"))
    assert wrong < 0.5  # what the old command reported
    out = tmp_path / "rsa.csv"
    assert main(["rsa", "--model", str(a), "--target", str(b), "--n-permutations", "0",
                 "--out", str(out), "--quiet"]) == 0
    row = _read_csv(out)[0]
    assert float(row["score"]) == pytest.approx(1.0)
    assert (row["source"], row["target_source"], row["level"]) == ("a", "b", "group")


def test_rsa_refuses_different_stimulus_sets(tmp_path, capsys):
    from neuroprobe.io.rdm import save_rdms

    a, _, X, ids = _two_rdm_files(tmp_path, np.arange(15))
    other = ids.astype(object)
    other[3] = "zebra"
    save_rdms(tmp_path / "c.rdm.h5", pdist(X, "correlation"), ["fc"], stim_ids=other)
    assert main(["rsa", "--model", str(a), "--target", str(tmp_path / "c.rdm.h5"),
                 "--n-permutations", "0", "--out", str(tmp_path / "o.csv")]) == 1
    err = capsys.readouterr().err
    assert "'im03'" in err and "'zebra'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.csv").exists()


def test_rsa_target_ids_for_plain_arrays(tmp_path, capsys):
    a, _, X, ids = _two_rdm_files(tmp_path, np.arange(15))
    order = np.random.default_rng(0).permutation(15)
    np.save(tmp_path / "brain.npy", squareform(pdist(X[order], "correlation")))
    (tmp_path / "stim.csv").write_text("stim_id\n" + "\n".join(ids[order]) + "\n")
    out = tmp_path / "rsa.csv"
    # without IDs: a warning, positional join (the wrong number)
    assert main(["rsa", "--model", str(a), "--target", str(tmp_path / "brain.npy"),
                 "--n-permutations", "0", "--out", str(out), "--quiet"]) == 0
    assert "has no stimulus IDs" in capsys.readouterr().err
    assert float(_read_csv(out)[0]["score"]) < 0.9
    assert main(["rsa", "--model", str(a), "--target", str(tmp_path / "brain.npy"),
                 "--target-ids", str(tmp_path / "stim.csv"), "--n-permutations", "0",
                 "--out", str(out), "--quiet"]) == 0
    assert float(_read_csv(out)[0]["score"]) == pytest.approx(1.0)


def test_rsa_source_column_and_named_sources(tmp_path):
    a, b, _, _ = _two_rdm_files(tmp_path, np.arange(15))
    out = tmp_path / "rsa.csv"
    assert main(["rsa", "--model", f"seed0={a}", "--model", str(b), "--target", str(a),
                 "--n-permutations", "0", "--out", str(out), "--quiet"]) == 0
    rows = _read_csv(out)
    assert [(r["source"], r["model"]) for r in rows] == [("seed0", "fc"), ("b", "fc")]


def test_rsa_npz_without_key_lists_the_arrays(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "rdms.npz", hIT=squareform(pdist(rng.standard_normal((6, 3)))),
             subj=np.zeros((2, 2, 6, 6)), names=np.array(["s1", "s2"]))
    np.save(tmp_path / "m.npy", pdist(rng.standard_normal((6, 3))))
    assert main(["rsa", "--model", str(tmp_path / "m.npy"), "--target",
                 str(tmp_path / "rdms.npz"), "--out", str(tmp_path / "o.csv")]) == 1
    err = capsys.readouterr().err
    assert "name one as" in err and "hIT" in err and "subj" in err


def test_rsa_subject_level_targets_match_scipy(tmp_path, capsys):
    """A subjects x sessions x n x n --target (rejected before) gives subject-level rows."""
    import scipy.stats

    from neuroprobe.rsa import compare_rdms

    rng = np.random.default_rng(7)
    n, n_subj = 14, 5
    signal = rng.standard_normal((n, 4))
    subj = np.stack([[squareform(pdist(signal + rng.standard_normal((n, 4)), "correlation"))
                      for _ in range(2)] for _ in range(n_subj)])  # (5, 2, 14, 14)
    np.savez(tmp_path / "brain.npz", subj=subj)
    models = np.stack([pdist(signal + 0.5 * rng.standard_normal((n, 4)), "correlation"),
                       pdist(rng.standard_normal((n, 4)), "correlation")])
    np.save(tmp_path / "models.npy", models)
    out = tmp_path / "rsa.csv"
    assert main(["rsa", "--model", str(tmp_path / "models.npy"), "--target",
                 f"{tmp_path / 'brain.npz'}:subj", "--n-permutations", "99", "--out", str(out)
                 ]) == 0
    rows = _read_csv(out)
    per_subject = subj.mean(axis=1)
    nc = noise_ceiling(subj)
    for i in range(2):
        # independent: scipy's t-test and Wilcoxon over per-subject scipy Spearman values
        ref = np.array([scipy_spearman(models[i], squareform(s, checks=False))
                        for s in per_subject])
        mine = [r for r in rows if r["model"] == f"models[{i}]"]
        levels = [r["level"] for r in mine]
        assert levels == ["subject_mean", "group"] + ["subject"] * n_subj
        summary, group = mine[0], mine[1]
        np.testing.assert_allclose([float(r["score"]) for r in mine[2:]], ref, rtol=1e-5)
        assert float(summary["score"]) == pytest.approx(ref.mean(), rel=1e-5)
        assert float(summary["sem"]) == pytest.approx(scipy.stats.sem(ref), rel=1e-5)
        t = scipy.stats.ttest_1samp(ref, 0, alternative="greater")
        assert float(summary["t"]) == pytest.approx(t.statistic, rel=1e-5)
        assert float(summary["pvalue_t"]) == pytest.approx(t.pvalue, rel=1e-4)
        assert float(summary["pvalue_wilcoxon"]) == pytest.approx(
            scipy.stats.wilcoxon(ref, alternative="greater").pvalue, rel=1e-5)
        assert float(summary["pvalue_vs_ceiling"]) == pytest.approx(
            scipy.stats.ttest_1samp(ref, nc.lower, alternative="less").pvalue, rel=1e-4)
        assert summary["noise_ceiling_level"] == "subject"
        assert float(summary["noise_ceiling_lower"]) == pytest.approx(nc.lower, rel=1e-5)
        assert float(group["score"]) == pytest.approx(
            compare_rdms(models[i], per_subject.mean(0)), rel=1e-5)
        assert group["pvalue"] != "" and summary["pvalue"] == ""
    assert float(rows[0]["pvalue_t"]) < 0.05 < float(rows[7]["pvalue_t"])  # planted vs noise
    printed = capsys.readouterr().out
    assert "[subject_mean]" in printed and "+-" in printed


def test_rsa_subject_scores_match_rsatoolbox(tmp_path):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rng = np.random.default_rng(8)
    n = 10
    subj = np.stack([squareform(pdist(rng.standard_normal((n, 3)), "correlation"))
                     for _ in range(4)])
    np.savez(tmp_path / "brain.npz", subj=subj)
    model = pdist(rng.standard_normal((n, 3)), "correlation")
    np.save(tmp_path / "m.npy", model)
    out = tmp_path / "rsa.csv"
    assert main(["rsa", "--model", str(tmp_path / "m.npy"), "--target",
                 f"{tmp_path / 'brain.npz'}:subj", "--n-permutations", "0", "--out", str(out),
                 "--quiet"]) == 0
    rows = [r for r in _read_csv(out) if r["level"] == "subject"]
    data = rsatoolbox.rdm.RDMs(np.stack([squareform(s, checks=False) for s in subj]))
    ref = rsatoolbox.rdm.compare(rsatoolbox.rdm.RDMs(model[None]), data, "spearman")[0]
    np.testing.assert_allclose([float(r["score"]) for r in rows], ref, rtol=1e-5)
    # rsatoolbox's subject-level inference of a fixed model: same SEM and test against 0
    result = rsatoolbox.inference.eval_fixed(
        rsatoolbox.model.ModelFixed("m", rsatoolbox.rdm.RDMs(model[None])), data,
        method="spearman")
    summary = next(r for r in _read_csv(out) if r["level"] == "subject_mean")
    assert float(summary["score"]) == pytest.approx(np.mean(result.evaluations), rel=1e-5)
    assert float(summary["sem"]) == pytest.approx(result.get_sem()[0], rel=1e-5)
    assert float(summary["pvalue_t"]) == pytest.approx(result.test_zero()[0], rel=1e-4)


def test_rsa_warns_when_levels_differ(tmp_path, capsys):
    rng = np.random.default_rng(9)
    subj = np.stack([squareform(pdist(rng.standard_normal((8, 3)))) for _ in range(3)])
    np.savez(tmp_path / "brain.npz", group=subj.mean(0), subj=subj)
    np.save(tmp_path / "m.npy", pdist(rng.standard_normal((8, 3))))
    out = tmp_path / "rsa.csv"
    assert main(["rsa", "--model", str(tmp_path / "m.npy"), "--target",
                 f"{tmp_path / 'brain.npz'}:group", "--noise-ceiling",
                 f"{tmp_path / 'brain.npz'}:subj", "--n-permutations", "0", "--out", str(out),
                 "--quiet"]) == 0
    assert "noise ceiling is at subject level" in capsys.readouterr().err
    row = _read_csv(out)[0]
    assert (row["level"], row["noise_ceiling_level"]) == ("group", "subject")


def test_rdm_conditions_matched_by_stim_id(tmp_path):
    """A conditions CSV in another row order gave a wrong condition RDM (rows by position)."""
    from neuroprobe.io.activations import write_activations

    rng = np.random.default_rng(3)
    feats = rng.standard_normal((6, 4)).astype(np.float32)
    ids = [f"s{i}" for i in range(6)]
    labels = ["a", "a", "b", "b", "c", "c"]
    act = write_activations(tmp_path / "m.act.h5", {"fc": feats}, ids, model="toy")
    order = [5, 2, 0, 4, 1, 3]
    (tmp_path / "stim.csv").write_text("stim_id,category\n" + "\n".join(
        f"{ids[i]},{labels[i]}" for i in order) + "\n")
    out = tmp_path / "m.rdm.h5"
    assert main(["rdm", str(act), "--conditions", f"{tmp_path / 'stim.csv'}:category",
                 "--metric", "euclidean", "--out", str(out), "--quiet"]) == 0
    means = np.stack([feats[[0, 1]].mean(0), feats[[2, 3]].mean(0), feats[[4, 5]].mean(0)])
    np.testing.assert_allclose(load_rdms(out).rdms[0], pdist(means), rtol=1e-5)
    # a CSV missing a stimulus of the activations is refused, naming it
    (tmp_path / "short.csv").write_text("stim_id,category\ns0,a\ns1,a\n")
    assert main(["rdm", str(act), "--conditions", f"{tmp_path / 'short.csv'}:category",
                 "--out", str(out), "--quiet"]) == 1


def test_rdm_ids_for_arrays_are_stored_and_used(tmp_path):
    rng = np.random.default_rng(4)
    Y = rng.standard_normal((5, 3))
    np.savez(tmp_path / "roi.npz", Y=Y, stim_ids=np.array([f"s{i}" for i in range(5)]))
    out = tmp_path / "roi.rdm.h5"
    assert main(["rdm", str(tmp_path / "roi.npz"), "--out", str(out), "--quiet"]) == 0
    assert list(load_rdms(out).stim_ids) == [f"s{i}" for i in range(5)]
    (tmp_path / "ids.txt").write_text("\n".join(f"t{i}" for i in range(5)))
    np.save(tmp_path / "roi.npy", Y)
    assert main(["rdm", str(tmp_path / "roi.npy"), "--ids", str(tmp_path / "ids.txt"),
                 "--out", str(out), "--quiet"]) == 0
    assert list(load_rdms(out).stim_ids) == [f"t{i}" for i in range(5)]


def scipy_spearman(a, b):
    import scipy.stats

    return scipy.stats.spearmanr(a, b)[0]


def test_rsa_rows_are_model_major(tmp_path):
    rng = np.random.default_rng(10)
    np.save(tmp_path / "m.npy", np.stack([pdist(rng.standard_normal((7, 3))) for _ in range(2)]))
    np.save(tmp_path / "t.npy", np.stack([pdist(rng.standard_normal((7, 3))) for _ in range(3)]))
    out = tmp_path / "rsa.csv"
    assert main(["rsa", "--model", str(tmp_path / "m.npy"), "--target", str(tmp_path / "t.npy"),
                 "--n-permutations", "0", "--out", str(out), "--quiet"]) == 0
    assert [(r["model"], r["target"]) for r in _read_csv(out)] == [
        (f"m[{i}]", f"t[{t}]") for i in range(2) for t in range(3)]
