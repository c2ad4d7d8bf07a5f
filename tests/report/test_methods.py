"""Generated methods text: it names the parameters actually used (change one, the text changes)."""

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from neuroprobe.estimators import PermutationTest, RSAScorer, VoxelwiseEncoder
from neuroprobe.report.methods import (
    REFERENCES,
    Methods,
    describe_command,
    describe_estimator,
    methods_paragraph,
    references_list,
    versions_paragraph,
)
from neuroprobe.transformers import DNNFeatureExtractor, PCAReducer

#: (kind, base parameters, parameter changed, new value, text the new value must produce)
CHANGES = [
    ("encode", {"alphas": "1,10,100", "inner_cv": 3, "cv": 4}, "alphas", "2,20", "2, 20"),
    ("encode", {"alphas": "1,10", "inner_cv": 3, "cv": 4}, "inner_cv", 7, "7-fold"),
    ("encode", {"alphas": "1,10", "inner_cv": 3, "cv": 4}, "cv", 9, "9-fold cross-validation"),
    ("encode", {"scoring": "correlation"}, "scoring", "r2", "(r2 between"),
    ("encode", {"penalty": "l2"}, "penalty", "l1", "lasso"),
    ("encode", {"penalty": "l2"}, "penalty", None, "ordinary least squares"),
    ("encode", {"n_permutations": 0}, "n_permutations", 500, "500 stimulus permutations"),
    ("encode", {"layer": "conv3"}, "layer", "fc6", "from fc6"),
    ("extract", {"model": "alexnet", "layers": ["conv3"]}, "model", "resnet18", "resnet18"),
    ("extract", {"model": "alexnet", "layers": ["conv3"]}, "layers", ["fc6", "fc7"],
     "layers fc6 and fc7"),
    ("extract", {"model": "alexnet", "weights": "DEFAULT"}, "weights", "random(seed=3)",
     "randomly initialised"),
    ("extract", {"model": "alexnet"}, "pooling", "mean", "pooled (mean)"),
    ("rdm", {"metric": "correlation"}, "metric", "euclidean", "Euclidean distance"),
    ("rdm", {"zscore": False}, "zscore", True, "z-scoring"),
    ("rsa", {"method": "spearman"}, "method", "kendall", "Kendall"),
    ("rsa", {"n_permutations": 0}, "n_permutations", 321, "321 permutations"),
    ("rsa", {}, "noise_ceiling", "subjects.npz", "noise ceiling"),
    ("probe", {"cv": 5}, "cv", 3, "3-fold"),
    ("reduce", {"n_components": 10}, "n_components", 25, "25 principal components"),
    ("hrf", {"tr": 2.0, "n_scans": 100}, "tr", 1.5, "TR = 1.5 s"),
]


@pytest.mark.parametrize("kind, base, key, value, expected", CHANGES,
                         ids=[f"{c[0]}-{c[2]}-{c[3]}" for c in CHANGES])
def test_changing_one_parameter_changes_the_text(kind, base, key, value, expected):
    before = methods_paragraph(kind, **base).text
    after = methods_paragraph(kind, **{**base, key: value}).text
    assert after != before
    assert expected in after
    assert expected not in before


def test_describe_command_prefers_the_files_own_metadata():
    record = {"command": "extract", "parameters": {"model": "alexnet", "weights": "DEFAULT",
                                                   "layers": ["conv1"]}}
    text = describe_command(record).text
    assert "default pretrained weights" in text
    # the file says which weights were really used (a resolved identity)
    text = describe_command(record, {"weights": "random(seed=3)", "n_stimuli": 92}).text
    assert "random(seed=3)" in text and "92 stimuli" in text
    assert describe_command({"command": "layers", "parameters": {}}) is None


def test_describe_estimator_reads_a_pipeline_step_by_step():
    pipe = make_pipeline(DNNFeatureExtractor("alexnet", layers=["conv3"]), PCAReducer(20),
                         VoxelwiseEncoder(alphas=[1.0, 10.0], cv=3))
    text = describe_estimator(pipe).text
    assert text.index("conv3") < text.index("20 principal") < text.index("1, 10")
    assert "3-fold" in text
    pipe.set_params(pcareducer__n_components=35, voxelwiseencoder__cv=6)
    text2 = describe_estimator(pipe).text
    assert "35 principal" in text2 and "6-fold" in text2 and "20 principal" not in text2


def test_describe_estimator_wrappers_and_generic_steps():
    test = PermutationTest(VoxelwiseEncoder(), n_permutations=250, cv=KFold(4))
    m = describe_estimator(test)
    assert "250 permutations" in m.text and "ridge" in m.text and "maxstat" in m.references
    rsa = describe_estimator(RSAScorer(metric="euclidean", comparison="pearson")).text
    assert "Euclidean" in rsa and "Pearson" in rsa
    probe = describe_estimator(make_pipeline(StandardScaler(),
                                             LogisticRegression(C=0.5, max_iter=300))).text
    # only the parameters that differ from the defaults are named
    assert "C=0.5" in probe and "max_iter=300" in probe and "tol=" not in probe
    grid = GridSearchCV(VoxelwiseEncoder(), {"cv": [2, 3]}, cv=4)
    assert "Grid search over {'cv': [2, 3]}" in describe_estimator(grid).text


def test_references_are_known_and_cited_once_in_order():
    m = Methods("a", ["rsa", "sklearn"]) + Methods("b", ["sklearn", "maxstat"])
    assert m.text == "a b" and m.references == ["rsa", "sklearn", "maxstat"]
    assert references_list(m.references) == [REFERENCES[k] for k in m.references]
    with pytest.raises(KeyError, match="unknown reference 'nope'"):
        references_list(["nope"])
    with pytest.raises(ValueError, match="no methods text for analysis 'nope'; known"):
        methods_paragraph("nope")


def test_versions_paragraph_lists_what_it_is_given():
    text = versions_paragraph({"neuroprobe": "9.9", "python": "3.11.7", "torch": "2.14.1"})
    assert text == "Software: neuroprobe 9.9 (Python 3.11.7; torch 2.14.1)."
