"""CLI: every inspection subcommand writes its PNG figures and numbers into --out."""

import csv

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from neuroprobe.cli.main import main
from neuroprobe.models import build_model, register_model
from tests.inspect.conftest import make_tiny_cnn

MODEL = "tiny_cnn_cli_test"


def _factory(weights, random_state):
    seed = 0 if random_state is None else int(random_state)
    return build_model(make_tiny_cnn(seed=seed), weights=weights)


register_model(MODEL, _factory)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def stim_dir(tmp_path_factory):
    """Six 16 x 16 pictures (RGB, grayscale and RGBA files) and a CSV with labels."""
    root = tmp_path_factory.mktemp("stims")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        label = i % 2
        img = rng.integers(0, 120, (16, 16, 3), dtype=np.uint8)
        img[:, : 8 if label else 16] += 100
        name = f"s{i}.png"
        if i == 1:
            Image.fromarray(img[..., 0]).save(root / name)  # grayscale
        elif i == 2:
            Image.fromarray(np.dstack([img, np.full((16, 16), 255, np.uint8)])).save(root / name)
        else:
            Image.fromarray(img).save(root / name)
        rows.append({"stim_id": f"s{i}", "path": str(root / name), "label": ["a", "b"][label]})
    with open(root / "stims.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["stim_id", "path", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def _run(*argv):
    code = main([*argv, "--quiet"])
    assert code == 0, argv


def _png(path):
    assert path.read_bytes()[:4] == b"\x89PNG", path


BASE = ["--model", MODEL, "--weights", "none", "--seed", "0"]


def test_topstim(stim_dir, tmp_path):
    _run("topstim", *BASE, "--layer", "relu2", "--channels", "0", "3",
         "--stimuli", str(stim_dir / "stims.csv"), "--k", "3", "--out", str(tmp_path))
    _png(tmp_path / "top_stimuli.png")
    with open(tmp_path / "top_stimuli.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and rows[0]["unit"] == "c0" and rows[0]["rank"] == "1"
    values = [float(r["value"]) for r in rows[:3]]
    assert values == sorted(values, reverse=True)
    # the same from an .act.h5 file, without running the model
    from neuroprobe.stimuli import StimulusSet
    from neuroprobe.transformers import DNNFeatureExtractor

    stims = StimulusSet.from_csv(stim_dir / "stims.csv")
    ext = DNNFeatureExtractor(MODEL, layers=["relu2"], random_state=0).fit(stims)
    act = ext.extract_to_file(stims, tmp_path / "acts.act.h5")
    _run("topstim", "--activations", str(act), "--layer", "relu2", "--channels", "0", "3",
         "--stimuli", str(stim_dir / "stims.csv"), "--k", "3", "--out", str(tmp_path / "f"))
    with open(tmp_path / "f" / "top_stimuli.csv") as fh:
        from_file = list(csv.DictReader(fh))
    assert [r["stim_id"] for r in from_file] == [r["stim_id"] for r in rows]
    _png(tmp_path / "f" / "top_stimuli.png")


def test_saliency_and_view(stim_dir, tmp_path):
    _run("saliency", *BASE, "--layer", "conv3", "--channels", "1", "--method", "guided",
         "--stimuli", str(stim_dir), "--out", str(tmp_path / "sal"))
    _png(tmp_path / "sal" / "saliency_guided_c1.png")
    with h5py.File(tmp_path / "sal" / "saliency.h5") as f:
        assert f["c1"].shape == (6, 3, 16, 16)
    _run("view", *BASE, "--layer", "relu1", "--stimuli", str(stim_dir / "s1.png"),
         "--out", str(tmp_path / "view"))
    _png(tmp_path / "view" / "view_000.png")
    with h5py.File(tmp_path / "view" / "activations.h5") as f:
        assert f["activations"].shape == (1, 6, 16, 16)


def test_optstim_rf_minstim(stim_dir, tmp_path):
    _run("optstim", *BASE, "--layer", "relu2", "--channels", "0", "1", "--n-iter", "5",
         "--size", "16", "16", "--out", str(tmp_path / "opt"))
    _png(tmp_path / "opt" / "optimal_stimuli.png")
    with h5py.File(tmp_path / "opt" / "optimal_stimuli.h5") as f:
        assert f["images"].shape == (2, 3, 16, 16) and f["trace"].shape == (6, 2)
    _run("rf", *BASE, "--layer", "relu2", "--channels", "2", "--stimuli", str(stim_dir),
         "--window", "4", "--stride", "4", "--out", str(tmp_path / "rf"))
    _png(tmp_path / "rf" / "rf_occlusion_c2.png")
    _png(tmp_path / "rf" / "rf_upsampling_c2.png")
    with h5py.File(tmp_path / "rf" / "receptive_fields.h5") as f:
        assert f["occlusion/c2"].shape == (6, 4, 4) and f["upsampling/c2"].shape == (6, 16, 16)
    _run("minstim", *BASE, "--layer", "relu3", "--channels", "4", "--stimuli", str(stim_dir),
         "--n-segments", "9", "--parcellation", "grid", "--out", str(tmp_path / "min"))
    with open(tmp_path / "min" / "minimal_stimuli.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 6


def test_ablate_and_finetune(stim_dir, tmp_path):
    _run("ablate", *BASE, "--layer", "relu3", "--channels", "0", "1", "2",
         "--stimuli", str(stim_dir), "--out", str(tmp_path / "abl"))
    _png(tmp_path / "abl" / "lesion.png")
    with open(tmp_path / "abl" / "lesion.csv") as fh:
        assert [r["channel"] for r in csv.DictReader(fh)] == ["0", "1", "2"]
    _run("finetune", *BASE, "--stimuli", str(stim_dir / "stims.csv"), "--trainable", "all",
         "--epochs", "2", "--validation-fraction", "0.34", "--out", str(tmp_path / "ft"))
    _png(tmp_path / "ft" / "history.png")
    # the checkpoint loads by name
    spec = build_model(MODEL, weights=str(tmp_path / "ft" / "finetuned.pt"))
    ckpt = torch.load(tmp_path / "ft" / "finetuned.pt", weights_only=True)
    torch.testing.assert_close(spec.module.fc.weight, ckpt["state_dict"]["fc.weight"])


def test_errors_are_one_line(stim_dir, tmp_path, capsys):
    code = main(["saliency", *BASE, "--layer", "relu2", "--channels", "99",
                 "--stimuli", str(stim_dir), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "channel 99 is out of range" in err and "(8, 8, 8)" in err
    code = main(["view", *BASE, "--layer", "nope", "--stimuli", str(stim_dir),
                 "--out", str(tmp_path)])
    assert code == 1 and "unknown layer" in capsys.readouterr().err


def test_help_has_examples(capsys):
    for cmd in ("topstim", "saliency", "optstim", "rf", "minstim", "ablate", "finetune", "view"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "example:" in capsys.readouterr().out


def test_rf_minstim_several_channels_and_metric(stim_dir, tmp_path):
    """Several channels in one call equal the Python functions run one channel at a time, with
    the metric of --metric (mean by default, as in Python)."""
    from neuroprobe.inspect import minimal_stimulus, occlusion_map, resolve_model
    from neuroprobe.models.inputs import load_images
    from neuroprobe.stimuli import as_stimulus_set

    info = resolve_model(MODEL, random_state=0)
    x = load_images(as_stimulus_set(str(stim_dir)), info)
    for metric in (None, "max"):
        extra = [] if metric is None else ["--metric", metric]
        _run("rf", *BASE, "--layer", "relu3", "--channels", "2", "5", "7", "--stimuli",
             str(stim_dir), "--window", "4", "--stride", "4", "--method", "occlusion", *extra,
             "--out", str(tmp_path / f"rf{metric}"))
        with h5py.File(tmp_path / f"rf{metric}" / "receptive_fields.h5") as f:
            assert f.attrs["metric"] == (metric or "mean")
            for c in (2, 5, 7):
                ref = occlusion_map(info, x, ("relu3", c), window=4, stride=4,
                                    metric=metric or "mean")
                np.testing.assert_allclose(f[f"occlusion/c{c}"][...], ref, rtol=1e-4,
                                           atol=1e-6 * max(1.0, np.abs(ref).max()))
    with h5py.File(tmp_path / "rfNone" / "receptive_fields.h5") as a, \
            h5py.File(tmp_path / "rfmax" / "receptive_fields.h5") as b:
        assert not np.allclose(a["occlusion/c2"][...], b["occlusion/c2"][...])
    _run("minstim", *BASE, "--layer", "relu3", "--channels", "4", "6", "--stimuli",
         str(stim_dir), "--n-segments", "9", "--parcellation", "grid",
         "--out", str(tmp_path / "min"))
    with open(tmp_path / "min" / "minimal_stimuli.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and {r["metric"] for r in rows} == {"mean"}
    with h5py.File(tmp_path / "min" / "minimal_stimuli.h5") as f:
        for r in rows:
            i = int(r["stim_id"][1:])
            if r["note"]:
                continue
            alone = minimal_stimulus(info, x[i], ("relu3", int(r["channel"])), n_segments=9,
                                     method="grid")
            assert int(r["n_kept"]) == len(alone.kept)
            np.testing.assert_array_equal(f[f"masks/c{r['channel']}"][i], alone.mask)
