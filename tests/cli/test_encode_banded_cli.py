"""`neuroprobe encode --bands --delays --runs --resample` equals the Python pipeline."""

import numpy as np
import pytest
from sklearn.model_selection import LeaveOneGroupOut

from neuroprobe.io.activations import write_activations

N_RUNS, FRAMES, SCANS, TR = 4, 40, 20, 2.0  # a frame per second, a scan every 2 s


def _main(*args):
    from neuroprobe.cli.main import main

    try:
        return main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    d = tmp_path_factory.mktemp("movie")
    rng = np.random.RandomState(0)
    n = N_RUNS * FRAMES
    acts = {"conv3": rng.randn(n, 5).astype(np.float32),
            "fc1": rng.randn(n, 8).astype(np.float32)}
    ids = [f"f{i:03d}" for i in range(n)]
    write_activations(d / "movie.act.h5", acts, ids, model="tiny")
    runs = np.repeat(np.arange(N_RUNS), FRAMES)
    onset = np.tile(np.arange(FRAMES, dtype=float), N_RUNS)
    with open(d / "frames.csv", "w") as fh:
        fh.write("stim_id,run,onset\n")
        for i in range(n):
            fh.write(f"{ids[i]},{runs[i]},{onset[i]}\n")
    from neuroprobe.transformers.delays import Delayer
    from neuroprobe.transformers.resample import TimeResampler

    X = np.hstack([acts["conv3"], acts["fc1"]])
    res = TimeResampler(tr=TR, n_scans=SCANS, times=onset, runs=runs).fit(X)
    Xs = res.transform(X)
    Xd = Delayer(delays=(1, 2)).fit_transform(Xs, runs=res.scan_runs_)
    Y = Xd @ rng.randn(Xd.shape[1], 6) * 0.3 + Xd[:, :5] @ rng.randn(5, 6) + rng.randn(len(Xd), 6)
    np.save(d / "bold.npy", Y.astype(np.float32))
    return d, acts, onset, runs, Y


def test_encode_bands_equals_python_pipeline(movie, capsys):
    from neuroprobe import BandedRidgeEncoder
    from neuroprobe.model_selection import cross_val_score_targets
    from neuroprobe.transformers.delays import Delayer
    from neuroprobe.transformers.resample import TimeResampler

    d, acts, onset, runs, Y = movie
    out = d / "banded_r2.npy"
    rc = _main("encode", d / "movie.act.h5", "--bands", "conv3", "fc1", "--delays", 1, 2,
               "--runs", f"{d / 'frames.csv'}:run", "--resample", "lanczos",
               "--times", f"{d / 'frames.csv'}:onset", "--tr", TR, "--n-scans", SCANS,
               "--targets", d / "bold.npy", "--scoring", "r2", "--alphas", "0.1,10,1000",
               "--out", out)
    assert rc == 0, capsys.readouterr().err
    assert "LeaveOneGroupOut" in capsys.readouterr().out
    X = np.hstack([acts["conv3"], acts["fc1"]])
    res = TimeResampler(tr=TR, n_scans=SCANS, times=onset, runs=runs).fit(X)
    names = [f"conv3:{i}" for i in range(5)] + [f"fc1:{i}" for i in range(8)]
    delayer = Delayer(delays=(1, 2)).fit(res.transform(X))
    Xd = delayer.transform(res.transform(X), runs=res.scan_runs_)
    enc = BandedRidgeEncoder(bands=["conv3:", "fc1:"], alphas=[0.1, 10, 1000],
                             feature_names=delayer.get_feature_names_out(names),
                             cv="leave-one-run-out", random_state=0)
    ref = cross_val_score_targets(enc, Xd, Y, cv=LeaveOneGroupOut(), groups=res.scan_runs_)
    np.testing.assert_allclose(np.load(out), ref.mean(axis=0), rtol=1e-5, atol=1e-6)
    import json

    meta = json.loads((d / "banded_r2.json").read_text())
    assert meta["bands"] == ["conv3", "fc1"] and meta["cv"].startswith("LeaveOneGroupOut")
    assert meta["inner_cv"].startswith("leave-one-run-out")


def test_encode_bands_bad_input(movie, capsys):
    d = movie[0]
    common = ["--targets", d / "bold.npy", "--out", d / "x.npy"]
    assert _main("encode", d / "movie.act.h5", "--bands", "conv3", "fc1", "--layer", "fc1",
                 *common) != 0
    assert "not both" in capsys.readouterr().err
    assert _main("encode", d / "movie.act.h5", "--bands", "conv3", "fc1", "--resample",
                 "lanczos", *common) != 0
    assert "needs --times" in capsys.readouterr().err
    assert _main("encode", d / "movie.act.h5", "--bands", "conv3", "nolayer", *common) != 0
    assert "nolayer" in capsys.readouterr().err


def test_encode_bands_permutations_equal_python_and_write_band_maps(movie, capsys):
    """--bands --n-permutations: the score's and each band's split-share p-values of
    PermutationTest over the BandedRidgeEncoder (fast path), circular shifts within runs."""
    from neuroprobe import BandedRidgeEncoder
    from neuroprobe.estimators.permutation import PermutationTest

    d, acts, onset, runs, Y = movie
    frames = f"{d / 'frames.csv'}"
    out = d / "perm_r.npy"
    _frames_bold(d, acts)
    rc = _main("encode", d / "movie.act.h5", "--bands", "conv3", "fc1", "--runs",
               f"{frames}:run", "--targets", d / "bold_frames.npy", "--scoring", "r2",
               "--alphas", "0.1,10,1000", "--n-permutations", 19, "--scheme", "circular",
               "--seed", 1, "--out", out)
    assert rc == 0, capsys.readouterr().err
    assert "significant at FWE" in capsys.readouterr().out
    X = np.hstack([acts["conv3"], acts["fc1"]])
    names = [f"conv3:{i}" for i in range(5)] + [f"fc1:{i}" for i in range(8)]
    enc = BandedRidgeEncoder(bands=["conv3:", "fc1:"], alphas=[0.1, 10, 1000],
                             feature_names=names, cv="leave-one-run-out", random_state=1)
    Yf = np.load(d / "bold_frames.npy")
    kw = dict(n_permutations=19, cv=LeaveOneGroupOut(), random_state=1, scheme="circular")
    score = PermutationTest(enc, **kw).fit(X, Yf, groups=runs)
    split = PermutationTest(enc, statistic="split", **kw).fit(X, Yf, groups=runs)
    np.testing.assert_allclose(np.load(d / "perm_r_pvalue_fwe.npy"), score.pvalue_fwe_)
    for b, layer in enumerate(["conv3", "fc1"]):
        np.testing.assert_allclose(np.load(d / f"perm_r_{layer}_pvalue.npy"), split.pvalue_[b])
        np.testing.assert_allclose(np.load(d / f"perm_r_{layer}_pvalue_fwe.npy"),
                                   split.pvalue_fwe_[b])
    assert _main("encode", d / "movie.act.h5", "--bands", "conv3", "fc1", "--runs",
                 f"{frames}:run", "--targets", d / "bold_frames.npy", "--n-permutations", 5,
                 "--scheme", "block", "--out", d / "x.npy") != 0
    assert "--block-size" in capsys.readouterr().err


def _frames_bold(d, acts):
    """Targets on the frames' rows (no resampling): conv3 drives them."""
    rng = np.random.RandomState(2)
    Y = acts["conv3"] @ rng.randn(5, 4) + rng.randn(len(acts["conv3"]), 4)
    np.save(d / "bold_frames.npy", Y.astype(np.float32))
