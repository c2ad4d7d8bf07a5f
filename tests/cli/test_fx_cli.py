"""neuroprobe layers --nodes / extract with 'fx:' layers."""

import numpy as np
import pytest
from PIL import Image

from neuroprobe.cli.main import main
from neuroprobe.io.activations import open_activations
from neuroprobe.stimuli import StimulusSet
from neuroprobe.transformers.extraction import DNNFeatureExtractor
from tests._tolerance import assert_allclose_dtype

pytestmark = pytest.mark.filterwarnings("ignore:model .* RANDOM:UserWarning")


def test_layers_nodes_and_extract_fx(tmp_path, capsys):
    assert main(["layers", "--model", "squeezenet1_1", "--weights", "none", "--nodes",
                 "--input-shape", "3", "64", "64"]) == 0
    listing = capsys.readouterr().out
    assert "fx:features.3.cat" in listing and "fx:features.3.cat" in listing
    rng = np.random.default_rng(0)
    for k in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), np.uint8)).save(tmp_path / f"{k}.png")
    out = tmp_path / "fx.act.h5"
    assert main(["extract", "--model", "squeezenet1_1", "--weights", "none", "--layers",
                 "fx:features.3.cat", "features.4", "--stimuli", str(tmp_path), "--out", str(out),
                 "--pooling", "mean", "--quiet"]) == 0
    ext = DNNFeatureExtractor("squeezenet1_1", weights=None, pooling="mean",
                              layers=["fx:features.3.cat", "features.4"])
    want = ext.fit_transform(StimulusSet.from_folder(tmp_path))
    with open_activations(out) as f:
        stored = np.concatenate([f.read("fx:features.3.cat"), f.read("features.4")], axis=1)
    assert_allclose_dtype(stored, want, n_terms=512)
