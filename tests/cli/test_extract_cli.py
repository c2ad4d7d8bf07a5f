"""neuroprobe extract / layers / info on a generated folder of images."""

import numpy as np
import pytest
from PIL import Image

from neuroprobe.cli.main import main
from neuroprobe.io.activations import open_activations
from neuroprobe.transformers.extraction import DNNFeatureExtractor


@pytest.fixture
def stim_csv(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    rows = ["stim_id,path,label"]
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), np.uint8)).save(folder / f"s{i}.png")
        rows.append(f"s{i},imgs/s{i}.png,{i % 2}")
    csv = tmp_path / "stims.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def test_extract_info_and_layers(stim_csv, tmp_path, capsys):
    out = tmp_path / "acts.act.h5"
    code = main(
        [
            "extract",
            "--model",
            "squeezenet1_1",
            "--weights",
            "none",
            "--seed",
            "2",
            "--layers",
            "features.3",
            "classifier.1",
            "--stimuli",
            str(stim_csv),
            "--out",
            str(out),
            "--pooling",
            "max",
            "--batch-size",
            "2",
            "--quiet",
        ]
    )
    assert code == 0 and out.exists()
    from neuroprobe.stimuli import StimulusSet

    stims = StimulusSet.from_csv(stim_csv)
    ext = DNNFeatureExtractor(
        "squeezenet1_1", weights=None, layers=["features.3", "classifier.1"], pooling="max",
        random_state=2
    )
    expected = ext.fit_transform(stims)
    with open_activations(out) as f:
        assert list(f.stim_ids) == ["s0", "s1", "s2"]
        assert "seed=2" in f.attrs["weights_id"] and f.attrs["pooling"] == "max"
        got = np.concatenate([f.read(la).reshape(3, -1) for la in f.layers], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "squeezenet1_1" in text and "features.3" in text and "complete" in text

    assert main(["layers", "--model", "alexnet", "--input-shape", "3", "64", "64"]) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if ln.startswith("features.10 "))
    assert "[256, 3, 3]" in line and "conv5" in line


def test_cli_errors_are_one_line(stim_csv, tmp_path, capsys):
    code = main(
        [
            "extract",
            "--model",
            "alexnet",
            "--weights",
            "none",
            "--layers",
            "conv9",
            "--stimuli",
            str(stim_csv),
            "--out",
            str(tmp_path / "a.act.h5"),
            "--quiet",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "conv9" in err and "conv5" in err and len(err.strip().splitlines()) == 1
    assert main(["info", str(tmp_path / "missing.act.h5")]) == 1
    assert (
        main(
            [
                "extract",
                "--model",
                "alexnet",
                "--layers",
                "conv1",
                "--stimuli",
                str(tmp_path / "none.csv"),
                "--out",
                str(tmp_path / "b.act.h5"),
            ]
        )
        == 1
    )
    assert "none.csv" in capsys.readouterr().err


def test_help_has_examples(capsys):
    for cmd in ("extract", "layers", "info"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "example" in capsys.readouterr().out
