"""Tests of HRFConvolver against an independent brute-force convolution."""

import math

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroprobe.transformers import HRFConvolver

TR, OV = 2.0, 50
DT = TR / OV


def double_gamma(t, peak=6.0, under=16.0, disp=1.0, ratio=6.0):
    """SPM canonical HRF written out: t^(a-1) e^(-t/s) / (Gamma(a) s^a), peak minus undershoot/6."""
    out = np.zeros_like(t)
    pos = t > 0
    tp = t[pos]
    a1, s1 = peak / disp, disp
    g1 = np.exp((a1 - 1) * np.log(tp) - tp / s1 - math.lgamma(a1) - a1 * math.log(s1))
    g2 = np.exp((under - 1) * np.log(tp) - tp - math.lgamma(under))
    out[pos] = g1 - g2 / ratio
    return out


def kernel(onset=0.0, disp=1.0):
    t = np.arange(int(np.ceil(32 / DT)) + 1) * DT - onset
    h = double_gamma(t, disp=disp)
    return h / h.sum()


def brute_force(onsets, durations, features, n_scans, h, ref=0.0):
    """Boxcar per event on the fine grid, np.convolve per event and feature, sample at scans."""
    n_fine = n_scans * OV + 400
    out = np.zeros((n_scans, features.shape[1]))
    for e, (on, du) in enumerate(zip(onsets, durations)):
        box = np.zeros(n_fine)
        a = int(round((on - ref) / DT))
        b = max(int(round((on + du - ref) / DT)), a + 1)
        box[a:b] = 1.0
        resp = np.convolve(box, h)[:n_fine]
        for f in range(features.shape[1]):
            out[:, f] += features[e, f] * resp[np.arange(n_scans) * OV]
    return out


@pytest.fixture()
def design():
    rng = np.random.default_rng(0)
    onsets = np.sort(rng.choice(np.arange(2, 150) * 0.4, 12, replace=False))  # on the grid
    durations = rng.choice([0.0, 0.4, 2.0, 4.8], 12)
    features = rng.standard_normal((12, 5))
    return onsets, durations, features


def test_spm_regressors_equal_brute_force(design):
    onsets, durations, features = design
    conv = HRFConvolver(TR, 90, onsets=onsets, durations=durations, oversampling=OV)
    X = conv.fit_transform(features)
    assert X.shape == (90, 5) and X.dtype == np.float32
    ref = brute_force(onsets, durations, features, 90, kernel())
    np.testing.assert_allclose(X, ref, rtol=1e-4, atol=1e-6)
    assert np.abs(ref).max() > 0.01  # non-trivial


def test_derivatives_and_dispersion_equal_brute_force(design):
    onsets, durations, features = design
    conv = HRFConvolver(TR, 90, onsets=onsets, durations=durations,
                        hrf_model="SPM+derivative + dispersion", oversampling=OV)
    X = conv.fit_transform(features)
    assert X.shape == (90, 15) and conv.n_basis_ == 3
    h = kernel()
    bases = [h, h - kernel(onset=1.0), (h - kernel(disp=1.01)) / 0.01]
    for b, hb in enumerate(bases):
        ref = brute_force(onsets, durations, features, 90, hb)
        np.testing.assert_allclose(X[:, 5 * b : 5 * b + 5], ref, rtol=1e-4, atol=1e-6)
    names = conv.get_feature_names_out()
    assert list(names[[0, 5, 10]]) == ["x0", "x0_derivative", "x0_dispersion"]


def test_slice_time_ref_and_user_kernel(design):
    onsets, durations, features = design
    user = np.random.default_rng(1).random(300)
    conv = HRFConvolver(TR, 80, onsets=onsets, durations=durations, hrf_model=user,
                        oversampling=OV, slice_time_ref=0.5)
    X = conv.fit_transform(features)
    ref = brute_force(onsets, durations, features, 80, user, ref=0.5 * TR)
    np.testing.assert_allclose(X, ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(conv.frame_times_, np.arange(80) * TR + 1.0)


def test_long_block_plateaus_at_amplitude():
    conv = HRFConvolver(TR, 60, onsets=[0.0], durations=[100.0], oversampling=OV)
    X = conv.fit_transform(np.array([[3.0]]))
    np.testing.assert_allclose(X[30:50, 0], 3.0, rtol=2e-3)  # HRF sums to one


def test_vectorised_over_many_features_matches_per_feature(design):
    onsets, durations, _ = design
    feats = np.random.default_rng(2).standard_normal((12, 2000)).astype(np.float32)
    conv = HRFConvolver(TR, 90, onsets=onsets, durations=durations).fit(feats)
    X = conv.transform(feats)
    for f in (0, 777, 1999):
        single = HRFConvolver(TR, 90, onsets=onsets, durations=durations).fit_transform(
            feats[:, [f]])
        np.testing.assert_allclose(X[:, f], single[:, 0], rtol=1e-5, atol=1e-6)
    # design_ times features is the whole computation (one matrix product)
    np.testing.assert_allclose(X, conv.design_[0] @ feats, rtol=1e-4, atol=1e-5)


class _Events:
    def __init__(self, **cols):
        self.cols = cols

    def column(self, name):
        if name not in self.cols:
            raise KeyError(f"no column {name!r}; available: {list(self.cols)}")
        return np.asarray(self.cols[name])


def test_onsets_from_stimulus_set(design):
    onsets, durations, features = design
    direct = HRFConvolver(TR, 90, onsets=onsets, durations=durations).fit_transform(features)
    via = HRFConvolver(TR, 90, stimuli=_Events(onset=onsets, duration=durations))
    np.testing.assert_array_equal(via.fit_transform(features), direct)
    no_dur = HRFConvolver(TR, 90, stimuli=_Events(onset=onsets)).fit_transform(features)
    np.testing.assert_array_equal(
        no_dur, HRFConvolver(TR, 90, onsets=onsets).fit_transform(features))
    with pytest.raises(ValueError, match="no 'onset' column"):
        HRFConvolver(TR, 90, stimuli=_Events(time=onsets)).fit(features)


def test_onsets_from_real_stimulus_set(tmp_path, design):
    stimuli = pytest.importorskip("neuroprobe.stimuli")
    onsets, durations, features = design
    csv = tmp_path / "events.csv"
    lines = ["stim_id,path,onset,duration"] + [
        f"s{i},img{i}.png,{o},{d}" for i, (o, d) in enumerate(zip(onsets, durations))]
    csv.write_text("\n".join(lines) + "\n")
    try:
        stim = stimuli.StimulusSet.from_csv(csv, check_files=False)
    except TypeError:  # pragma: no cover - older signature
        stim = stimuli.StimulusSet.from_csv(csv)
    direct = HRFConvolver(TR, 90, onsets=onsets, durations=durations).fit_transform(features)
    np.testing.assert_allclose(HRFConvolver(TR, 90, stimuli=stim).fit_transform(features), direct)


def test_continuous_default_design():
    feats = np.random.default_rng(3).standard_normal((40, 3))
    X = HRFConvolver(TR, None).fit_transform(feats)
    ref = brute_force(np.arange(40) * TR, np.full(40, TR), feats, 40, kernel())
    np.testing.assert_allclose(X, ref, rtol=1e-4, atol=1e-6)


def test_bad_input_messages(design):
    onsets, durations, features = design
    with pytest.raises(ValueError, match="features have 11 rows but there are 12 events"):
        HRFConvolver(TR, 90, onsets=onsets).fit(features[:11])
    conv = HRFConvolver(TR, 90, onsets=onsets).fit(features)
    with pytest.raises(ValueError, match="fitted for 12 events"):
        conv.transform(np.vstack([features, features]))
    with pytest.raises(ValueError, match="hrf_model 'glover'"):
        HRFConvolver(TR, 90, onsets=onsets, hrf_model="glover").fit(features)
    with pytest.raises(ValueError, match="durations must be >= 0"):
        HRFConvolver(TR, 90, onsets=onsets, durations=-durations - 1).fit(features)
    with pytest.raises(ValueError, match="n_scans is required"):
        HRFConvolver(TR, None, onsets=onsets).fit(features)
    with pytest.raises(ValueError, match="durations has 3 values"):
        HRFConvolver(TR, 90, onsets=onsets, durations=[1, 2, 3]).fit(features)


_SHAPE_REASON = ("the output has one row per scan, fixed at fit from the event timing: "
                 "transforming a different number or order of rows is meaningless")


@parametrize_with_checks(
    [HRFConvolver(tr=1.0, n_scans=None)],
    expected_failed_checks=lambda est: {
        "check_methods_sample_order_invariance": _SHAPE_REASON,
        "check_methods_subset_invariance": _SHAPE_REASON,
        "check_fit_idempotent": _SHAPE_REASON,
    },
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_every_event_outside_the_run_is_refused(design):
    """Onsets in milliseconds used to give an all-zero design without a word."""
    onsets, durations, features = design
    conv = HRFConvolver(TR, n_scans=120, onsets=onsets * 1000, durations=durations)
    with pytest.raises(ValueError) as err:
        conv.fit(features)
    text = str(err.value)
    assert f"onsets span {onsets.min() * 1000:g} to {onsets.max() * 1000:g} s" in text
    assert "120 scans x tr 2 s = 240 s" in text and "milliseconds" in text
    assert f"would span {onsets.min():g} to {onsets.max():g} s" in text
    # in seconds the same events give the brute-force regressors
    got = HRFConvolver(TR, n_scans=120, onsets=onsets, durations=durations).fit_transform(features)
    np.testing.assert_allclose(got, brute_force(onsets, durations, features, 120, kernel()),
                               rtol=1e-5, atol=1e-6)
    assert np.abs(got).max() > 0


def test_events_partly_outside_the_run_warn_and_are_ignored(design):
    onsets, durations, features = design
    late = onsets.copy()
    late[[3, 7]] = [500.0, 612.5]  # after the 240 s run
    with pytest.warns(UserWarning, match=r"2 of 12 events lie outside the run \(0 to 240 s.*"
                                         r"onsets 500, 612.5 s"):
        got = HRFConvolver(TR, n_scans=120, onsets=late, durations=durations).fit_transform(
            features)
    keep = np.ones(12, bool)
    keep[[3, 7]] = False
    ref = brute_force(onsets[keep], durations[keep], features[keep], 120, kernel())
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"tr": 0.0}, r"The 'tr' parameter of HRFConvolver must be a float in the range "
                      r"\(0\.0, inf\)\. Got 0\.0 instead"),
        ({"tr": "2"}, r"The 'tr' parameter of HRFConvolver .* Got '2' instead"),
        ({"n_scans": 0}, r"The 'n_scans' parameter of HRFConvolver must be an int in the range "
                         r"\[1, inf\) or None\. Got 0 instead"),
        ({"n_scans": 2.5}, r"The 'n_scans' parameter of HRFConvolver .* Got 2\.5 instead"),
        ({"oversampling": 0}, r"The 'oversampling' parameter of HRFConvolver must be an int in "
                              r"the range \[1, inf\)\. Got 0 instead"),
        ({"slice_time_ref": 1.5}, r"The 'slice_time_ref' parameter of HRFConvolver must be a "
                                  r"float in the range \[0\.0, 1\.0\]\. Got 1\.5 instead"),
        ({"stimuli": [1, 2]}, r"The 'stimuli' parameter of HRFConvolver must be an object "
                              r"implementing 'column' or None"),
    ],
)
def test_bad_parameters_sklearn_wording(params, pattern):
    kwargs = {"tr": TR, "n_scans": 40, **params}
    with pytest.raises(ValueError, match=pattern):
        HRFConvolver(**kwargs).fit(np.ones((40, 2)))
