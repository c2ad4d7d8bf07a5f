"""neuroprobe layers / extract on an OpenCLIP model (a tiny architecture, random weights)."""

import numpy as np
import pytest
from PIL import Image

open_clip = pytest.importorskip("open_clip")

from neuroprobe.cli.main import main  # noqa: E402
from neuroprobe.io.activations import open_activations  # noqa: E402
from neuroprobe.stimuli import StimulusSet  # noqa: E402
from neuroprobe.transformers.extraction import DNNFeatureExtractor  # noqa: E402
from tests._tiny_clip import register_tiny_clip  # noqa: E402
from tests._tolerance import assert_allclose_dtype  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:model .* RANDOM:UserWarning")


def test_cli_layers_and_extract(tmp_path, capsys):
    model = f"open_clip:{register_tiny_clip(tmp_path)}"
    assert main(["layers", "--model", model, "--weights", "none"]) == 0
    listing = capsys.readouterr().out
    assert "visual.transformer.resblocks.1" in listing and "block1" in listing
    assert "embedding" in listing and "head" in listing
    assert main(["layers", "--model", model + "?tower=text", "--weights", "none"]) == 0
    assert "token_embedding" in capsys.readouterr().out
    stims = tmp_path / "stims"
    stims.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(stims / f"{k}.png")
    out = tmp_path / "clip.act.h5"
    code = main(["extract", "--model", model, "--weights", "none", "--seed", "0",
                 "--layers", "head", "block1", "--stimuli", str(stims), "--out", str(out),
                 "--pooling", "mean", "--quiet"])
    assert code == 0
    ext = DNNFeatureExtractor(model, weights=None, layers=["head", "block1"], pooling="mean",
                              random_state=0)
    want = ext.fit_transform(StimulusSet.from_folder(stims))
    with open_activations(out) as f:
        stored = np.concatenate([f.read("head"), f.read("block1")], axis=1)
        assert f.attrs["model"] == ext.model_.name
        assert "random(seed=0,open_clip=" in str(dict(f.attrs))
    assert_allclose_dtype(stored, want, n_terms=32)
