"""resolve_bands: one rule (neuroprobe.bands) behind both old import paths; specs, cover, errors."""

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import FunctionTransformer

from neuroprobe.bands import resolve_bands
from neuroprobe.estimators.banded import resolve_bands as banded_resolve
from neuroprobe.exceptions import BandError
from neuroprobe.partition import resolve_bands as partition_resolve

NAMES = np.array(["conv3:0", "conv3:1", "conv30:0", "fc1:0", "fc1:1"])


def _lists(out):
    return {k: v.tolist() for k, v in out.items()}


def test_the_same_forms_give_the_same_columns_everywhere():
    specs = [
        (["conv3", "conv30:", "fc1"], {"conv3": [0, 1], "conv30": [2], "fc1": [3, 4]}),
        ({"a": slice(0, 3), "b": [4, 3]}, {"a": [0, 1, 2], "b": [3, 4]}),
        ({"a": np.array([1, 0, 1, 0, 0], bool), "b": [-2, -1], "c": ["conv3:1"]},
         {"a": [0, 2], "b": [3, 4], "c": [1]}),
    ]
    for spec, expected in specs:
        assert _lists(resolve_bands(spec, 5, NAMES)) == expected
        assert _lists(banded_resolve(spec, NAMES, 5)) == expected  # cover="all" holds here
        assert _lists(partition_resolve(spec, 5, NAMES)) == expected
    # None: one band per layer prefix
    assert _lists(resolve_bands(None, 5, NAMES)) == {"conv3": [0, 1], "conv30": [2],
                                                     "fc1": [3, 4]}
    assert _lists(resolve_bands(None, 3)) == {"all": [0, 1, 2]}


def test_prefixes_survive_feature_union_and_column_transformer_names():
    df = pd.DataFrame(np.zeros((3, 4)), columns=["conv3:0", "conv3:1", "fc1:0", "fc1:1"])
    union = FeatureUnion([("cnn", FunctionTransformer(feature_names_out="one-to-one")),
                          ("copy", FunctionTransformer(feature_names_out="one-to-one"))])
    names = union.fit(df).get_feature_names_out()
    assert names[0] == "cnn__conv3:0"
    got = _lists(resolve_bands(["conv3:", "fc1"], len(names), names))
    assert got == {"conv3": [0, 1, 4, 5], "fc1": [2, 3, 6, 7]}


def test_cover_rule():
    with pytest.raises(BandError, match=r"1 feature\(s\) of X belong to no band.*'fc1:1'"):
        resolve_bands({"a": "conv3", "b": [2, 3]}, 5, NAMES, cover="all")
    with pytest.raises(BandError, match="belong to no band"):
        banded_resolve({"a": "conv3", "b": [2, 3]}, NAMES, 5)
    out = partition_resolve({"a": "conv3", "b": [2, 3]}, 5, NAMES)
    assert _lists(out) == _lists(resolve_bands({"a": "conv3", "b": [2, 3]}, 5, NAMES,
                                               cover="any"))
    with pytest.raises(ValueError, match="cover"):
        resolve_bands(["conv3"], 5, NAMES, cover="some")


@pytest.mark.parametrize("resolve", [
    lambda b, n, names=None: resolve_bands(b, n, names),
    lambda b, n, names=None: banded_resolve(b, names, n),
    lambda b, n, names=None: partition_resolve(b, n, names),
])
def test_the_same_errors_everywhere(resolve):
    # a prefix naming nothing: the band is named and the valid prefixes listed
    with pytest.raises(BandError, match=r"band 'conv4'.*names no feature.*'conv3:', "
                                        r"'conv30:', 'fc1:'"):
        resolve(["conv4", "conv3", "conv30", "fc1"], 5, NAMES)
    with pytest.raises(BandError, match="'a' and 'b' overlap"):
        resolve({"a": slice(0, 3), "b": [2, 3, 4]}, 5, NAMES)
    with pytest.raises(BandError, match="no feature names"):
        resolve(["conv3:"], 5)
    with pytest.raises(BandError, match=r"\[0, 5\)"):
        resolve({"a": [5]}, 5)
    with pytest.raises(BandError, match="empty"):
        resolve({}, 5)
    with pytest.raises(BandError, match="boolean mask"):
        resolve({"a": np.ones(3, bool)}, 5)
    with pytest.raises(BandError, match="band 'a'.*names no feature"):
        resolve({"a": slice(5, 9), "b": slice(0, 5)}, 5)
    with pytest.raises(BandError, match="not in X"):
        resolve({"a": ["conv9:0"]}, 5, NAMES)
