"""Inputs are never modified, and ``n_jobs=2`` equals ``n_jobs=1``, at realistic sizes.

joblib hands every argument over 1 MB to its worker processes as a read-only memmap, and dask
workers receive read-only buffers: a step that centres or scales its input in place fails there
("output array is read-only"), or, in the calling process, silently changes the caller's data.
Every test here uses inputs above that threshold (the (300, 3000) float32 targets are 3.6 MB, the
batches that reach the workers more than 1 MB: ``test_batches_reach_workers_read_only`` checks
the premise). The serial reference (``n_jobs=1``) runs on writable arrays; the parallel run
(``n_jobs=2``) on a ``setflags(write=False)`` array and on a read-only ``np.memmap``. Each parallel
result equals the serial one within tolerances scaled to float32 (batches and BLAS threads may
differ between the runs), and every input, writable or not, is bit-identical afterwards to a copy
taken before the call.
"""

from __future__ import annotations

import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge

from neuroprobe.estimators.encoding import PLSEncoder, VoxelwiseEncoder, read_batch
from neuroprobe.estimators.permutation import PermutationTest
from neuroprobe.estimators.rsa import RSAScorer
from neuroprobe.model_selection import cross_val_score_targets, probe_layers
from neuroprobe.rsa import compute_rdm, permutation_test_rdms

EPS32 = float(np.finfo(np.float32).eps)
TOL = 100 * EPS32  # ~1.2e-5: float32 results of different blockings / thread counts
KINDS = ["readonly", "memmap"]  # of the parallel runs' inputs; the serial runs' are writable
ALPHAS = np.logspace(-1, 4, 6)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 20), dtype=np.float32)
    W = rng.standard_normal((20, 3000), dtype=np.float32) * 0.3
    Y = (X @ W + rng.standard_normal((300, 3000), dtype=np.float32) + 5.0).astype(np.float32)
    assert Y.nbytes > 3 * 2**20
    return X, Y


def as_kind(kind, a, folder, name):
    """``a`` as a writable copy, a read-only copy, or a read-only memmap of a file."""
    if kind == "array":
        return a.copy()
    if kind == "readonly":
        b = a.copy()
        b.setflags(write=False)
        return b
    path = folder / f"{name}.npy"
    np.save(path, a)
    m = np.load(path, mmap_mode="r")
    assert isinstance(m, np.memmap) and not m.flags.writeable
    return m


_SERIAL = {}


def serial(key, fn, *arrays):
    """``fn(*copies)`` on writable copies of ``arrays``, once per ``key``; checks them unchanged."""
    if key not in _SERIAL:
        copies = [a.copy() for a in arrays]
        _SERIAL[key] = fn(*copies)
        for c, a in zip(copies, arrays):
            assert_unchanged(c, a)
    return _SERIAL[key]


@pytest.fixture(params=KINDS)
def inputs(request, data, tmp_path):
    """``(X, Y)`` in the parametrised kind; after the test, both are bit-identical to ``data``."""
    X0, Y0 = data
    X, Y = as_kind(request.param, X0, tmp_path, "X"), as_kind(request.param, Y0, tmp_path, "Y")
    yield X, Y
    assert_unchanged(X, X0)
    assert_unchanged(Y, Y0)


def assert_unchanged(arr, original):
    """Bit-exact: a step that modified its input in place (even by 1 ulp) fails here."""
    arr = np.asarray(arr)
    assert arr.dtype == original.dtype and arr.shape == original.shape
    assert arr.tobytes() == original.tobytes(), "an input array was modified in place"


def close(a, b, tol=TOL):
    """``a == b`` up to ``tol`` relative to the scale of ``b`` (float32 rounding)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(float(np.nanmax(np.abs(b))), 1e-30)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)


def assert_same_encoder(a, b):
    """Two VoxelwiseEncoder fits agree: CV scores, and alphas / coefficients where not tied.

    A target's alpha may legitimately flip where its two best CV scores are within rounding of
    each other (then the other alpha must be as good); everything else must match.
    """
    close(a.cv_scores_, b.cv_scores_)
    np.testing.assert_array_equal(a.alphas_, b.alphas_)
    if not b.alpha_per_target or b.penalty is None:
        # one alpha, by the mean score over 3000 targets (no near-tie here), or none (OLS)
        np.testing.assert_array_equal(a.best_alphas_, b.best_alphas_)
    else:
        cols = np.arange(b.cv_scores_.shape[1])
        chosen = np.searchsorted(b.alphas_, a.best_alphas_)
        # a's alpha is b's best up to rounding (the default grid's small alphas tie on this data)
        assert np.all(b.cv_scores_[chosen, cols] >= np.nanmax(b.cv_scores_, axis=0) - 4 * TOL)
    same = a.best_alphas_ == b.best_alphas_
    assert same.mean() > 0.9
    close(a.coef_[:, same], b.coef_[:, same])
    close(a.intercept_[same], b.intercept_[same])


def test_batches_reach_workers_read_only(data):
    """The premise: a 1000-target batch arrives in a joblib worker as a read-only memmap."""
    _, Y = data
    batch = read_batch(Y, slice(0, 1000), np.float32)
    assert batch.nbytes > 2**20
    flags = joblib.Parallel(n_jobs=2)(
        joblib.delayed(lambda b: (type(b).__name__, bool(b.flags.writeable)))(batch)
        for _ in range(2)
    )
    assert flags == [("memmap", False)] * 2


# --------------------------------------------------------------------------- VoxelwiseEncoder
ENCODERS = {
    # the case: default batches (one batch of all 3000 targets here)
    "default": dict(cv=4),
    "batches": dict(cv=4, alphas=ALPHAS, n_targets_batch=1000),
    "one_alpha": dict(cv=4, alphas=ALPHAS, n_targets_batch=1000, alpha_per_target=False),
    "loo": dict(cv=None, alphas=ALPHAS, n_targets_batch=1000),
    "no_intercept": dict(cv=4, alphas=ALPHAS, n_targets_batch=1000, fit_intercept=False),
    "ols": dict(cv=4, penalty=None, n_targets_batch=1000),
    "r2": dict(cv=4, alphas=ALPHAS, n_targets_batch=1000, scoring="r2"),
}


def _serial_encoder(name, data):
    return serial(("encoder", name), VoxelwiseEncoder(**ENCODERS[name], n_jobs=1).fit, *data)


@pytest.mark.parametrize("name", list(ENCODERS))
def test_voxelwise_encoder_parallel_equals_serial(name, inputs, data):
    X, Y = inputs
    par = VoxelwiseEncoder(**ENCODERS[name], n_jobs=2).fit(X, Y)
    assert_same_encoder(par, _serial_encoder(name, data))


def test_voxelwise_encoder_score_and_predict_leave_inputs(inputs, data):
    X, Y = inputs
    enc = _serial_encoder("batches", data)
    ref = serial("score_targets", enc.score_targets, *data)
    close(enc.score_targets(X, Y), ref)
    close(enc.predict(X), serial("predict", enc.predict, data[0]))


def test_lasso_parallel_equals_serial(tmp_path):
    """penalty="l1" (per-target coordinate descent: few targets, many rows): each of the two
    float64 target batches, (2000, 70), is 1.1 MB, so it reaches its worker as a memmap."""
    rng = np.random.default_rng(2)
    X0 = rng.standard_normal((2000, 20)).astype(np.float32)
    Y0 = (X0 @ rng.standard_normal((20, 140)) + rng.standard_normal((2000, 140))).astype(
        np.float32)
    kw = dict(penalty="l1", cv=2, alphas=[0.05], n_targets_batch=70)
    ref = serial("lasso", VoxelwiseEncoder(**kw).fit, X0, Y0)
    X, Y = as_kind("memmap", X0, tmp_path, "X"), as_kind("readonly", Y0, tmp_path, "Y")
    par = VoxelwiseEncoder(**kw, n_jobs=2).fit(X, Y)
    assert_unchanged(X, X0)
    assert_unchanged(Y, Y0)
    # float64 coordinate descent on the same batches: equal up to float64 rounding
    np.testing.assert_allclose(par.cv_scores_, ref.cv_scores_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(par.coef_, ref.coef_, rtol=1e-6, atol=1e-7)  # float32 coef_


def test_torch_backend_readonly_inputs(data, tmp_path):
    """torch must not share a read-only buffer (it would warn, and writes would be undefined)."""
    pytest.importorskip("torch")
    X0, Y0 = data[0], data[1][:, :1000]
    X, Y = as_kind("memmap", X0, tmp_path, "X"), as_kind("memmap", Y0, tmp_path, "Y")
    kw = dict(cv=4, alphas=ALPHAS, n_targets_batch=500)
    ref = VoxelwiseEncoder(**kw).fit(X0, Y0)
    for fit_intercept in (True, False):
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*not writable.*")
            enc = VoxelwiseEncoder(**kw, backend="torch", fit_intercept=fit_intercept).fit(X, Y)
        if fit_intercept:
            close(enc.cv_scores_, ref.cv_scores_, tol=1e-4)  # torch vs numpy float32 kernels
    assert_unchanged(X, X0)
    assert_unchanged(Y, np.ascontiguousarray(Y0))


# --------------------------------------------------------------------------- PLSEncoder
def test_pls_encoder_leaves_inputs(inputs, data):
    """PLSEncoder has no n_jobs; it centres and scales its own copies of target batches."""
    X, Y = inputs
    ref = serial("pls", PLSEncoder(n_components=3, n_targets_batch=1000).fit, *data)
    enc = PLSEncoder(n_components=3, n_targets_batch=1000).fit(X, Y)
    np.testing.assert_allclose(enc.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    close(enc.score_targets(X, Y), serial("pls_scores", ref.score_targets, *data))


# --------------------------------------------------------------------------- CV and permutations
@pytest.mark.parametrize(
    "estimator, n_jobs",
    [
        (VoxelwiseEncoder(cv=3, alphas=ALPHAS), 2),  # splits in parallel
        (VoxelwiseEncoder(cv=3, alphas=ALPHAS, n_jobs=2), None),  # each split's target batches
        (Ridge(alpha=10.0), 2),
    ],
    ids=["encoder_splits", "encoder_batches", "sklearn"],
)
def test_cross_val_score_targets_parallel_equals_serial(estimator, n_jobs, inputs, data):
    X, Y = inputs
    ref = serial(("cvst", type(estimator).__name__),
                 lambda X, Y: cross_val_score_targets(clone(estimator).set_params(n_jobs=None)
                                                      if hasattr(estimator, "n_jobs") else
                                                      estimator, X, Y, cv=4), *data)
    par = cross_val_score_targets(estimator, X, Y, cv=4, n_jobs=n_jobs)
    assert par.shape == (4, 3000)
    # scores are correlations in [-1, 1]; a flipped near-tie alpha moves a score by ~TOL
    np.testing.assert_allclose(par, ref, atol=4 * TOL)


def _assert_same_test(a, b, tol):
    np.testing.assert_allclose(a.score_, b.score_, atol=tol)
    np.testing.assert_allclose(a.null_distribution_, b.null_distribution_, atol=tol)
    # p-values count null >= observed: a count may differ only where the two are within `tol`
    step = 1.0 / (len(a.null_distribution_) + 1)
    assert np.all(np.abs(a.pvalue_ - b.pvalue_) <= step + 1e-12)
    assert np.mean(a.pvalue_ == b.pvalue_) > 0.95


# 65 permutations: chunks of 64 and 1, i.e. two tasks for two workers
@pytest.mark.parametrize(
    "make, n_targets, tol",
    [
        (lambda: VoxelwiseEncoder(cv=3, alphas=ALPHAS), 1000, 4 * TOL),  # fast path
        (lambda: Ridge(alpha=10.0), 1000, 1e-5),  # generic path: refits, float64 sklearn
        (lambda: RSAScorer(), 3000, 1e-6),  # fast path, RDMs of float32 patterns
    ],
    ids=["encoder_fast", "generic", "rsa_fast"],
)
def test_permutation_test_parallel_equals_serial(make, n_targets, tol, inputs, data):
    X, Y = inputs
    Y = Y[:, :n_targets]  # a view: still read-only where Y is
    kw = dict(n_permutations=65, cv=3, random_state=0)
    ref = serial(("perm", n_targets, type(make()).__name__),
                 PermutationTest(make(), **kw).fit, data[0], data[1][:, :n_targets])
    par = PermutationTest(make(), **kw, n_jobs=2).fit(X, Y)
    assert par.fast_path_ == ref.fast_path_ == (not isinstance(make(), Ridge))
    _assert_same_test(par, ref, tol)


def test_permutation_test_rdms_parallel_equals_serial(tmp_path):
    """520 stimuli: each condensed float64 RDM is 1.08 MB."""
    rng = np.random.default_rng(1)
    base = rng.standard_normal((520, 8))
    models0 = compute_rdm(np.stack([base + rng.standard_normal((520, 8)) for _ in range(2)]))
    targets0 = compute_rdm(base[None] + rng.standard_normal((1, 520, 8)))
    assert targets0.nbytes > 2**20
    models = as_kind("memmap", models0, tmp_path, "models")
    targets = as_kind("readonly", targets0, tmp_path, "targets")
    ref = serial("rdms", lambda m, t: permutation_test_rdms(m, t, n_permutations=65,
                                                            random_state=0), models0, targets0)
    par = permutation_test_rdms(models, targets, n_permutations=65, random_state=0, n_jobs=2)
    assert_unchanged(models, models0)
    assert_unchanged(targets, targets0)
    np.testing.assert_allclose(par["null"], ref["null"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(par["score"], ref["score"], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(par["pvalue"], ref["pvalue"])


def test_probe_layers_parallel_equals_serial(inputs, data):
    X, Y = inputs
    y0 = np.asarray(data[1][:, 0], dtype=np.float64)
    y = y0.copy()
    y.setflags(write=False)
    ref = serial("probe", lambda X, Y, y: probe_layers({"small": X, "wide": Y}, y, cv=4),
                 *data, y0)
    par = probe_layers({"small": X, "wide": Y}, y, cv=4, n_jobs=2)
    # StandardScaler + RidgeCV in float32 / float64 on the same folds
    np.testing.assert_allclose(np.stack(par["scores"]), np.stack(ref["scores"]), atol=1e-5)
    assert_unchanged(y, y0)


# --------------------------------------------------------------------------- feature extraction
def _net(torch):
    class InPlace(torch.nn.Module):
        """A module that scales its input in place, as a careless user module might."""

        def forward(self, x):
            return x.mul_(2.0)

    torch.manual_seed(0)
    return torch.nn.Sequential(InPlace(), torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())


def test_extraction_does_not_modify_stimuli(tmp_path):
    """Float stimuli (array, read-only memmap, tensor) reach the network as batch copies."""
    torch = pytest.importorskip("torch")
    from neuroprobe.transformers.extraction import DNNFeatureExtractor

    X0 = np.random.default_rng(0).standard_normal((40, 3, 16, 16)).astype(np.float32)
    ref = None
    for kind in ["array", *KINDS, "tensor"]:
        X = torch.from_numpy(X0.copy()) if kind == "tensor" else as_kind(kind, X0, tmp_path, "s")
        ext = DNNFeatureExtractor(_net(torch), layers=["4"], pooling=None, batch_size=16)
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*not writable.*")
            out = ext.fit_transform(X)
        assert_unchanged(X.numpy() if kind == "tensor" else X, X0)
        ref = out if ref is None else ref
        np.testing.assert_array_equal(out, ref)  # same batches, same process


@pytest.mark.slow  # the workers import torch
def test_sharded_extraction_parallel_equals_one_pass(tmp_path):
    """Two shards of (128, 3, 32, 32) float32 (1.5 MB each) go to the workers as memmaps."""
    torch = pytest.importorskip("torch")
    from neuroprobe.io.activations import open_activations
    from neuroprobe.parallel import extract_to_file_sharded
    from neuroprobe.transformers.extraction import DNNFeatureExtractor

    X0 = np.random.default_rng(0).standard_normal((256, 3, 32, 32)).astype(np.float32)
    X = as_kind("memmap", X0, tmp_path, "stimuli")
    ext = DNNFeatureExtractor(_net(torch), layers=["4"], pooling=None, batch_size=32)
    one = ext.extract_to_file(X0.copy(), tmp_path / "one.act.h5")
    sharded = extract_to_file_sharded(ext, X, tmp_path / "sharded.act.h5", n_shards=2, n_jobs=2)
    assert_unchanged(X, X0)
    with open_activations(one) as a, open_activations(sharded) as b:
        close(b.read("4"), a.read("4"))


# --------------------------------------------------------------------------- dask
@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, silence_logs=40,
        )
        client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.mark.slow  # starting 2 worker processes and shipping 3.6 MB arrays: ~20-40 s here
def test_dask_backend_equals_serial(dask_client, data, tmp_path):
    """The same fits under ``joblib.parallel_config(backend="dask")``: dask workers receive
    read-only buffers, like joblib's memmaps."""
    from distributed import get_task_stream

    X0, Y0 = data
    X, Y = as_kind("memmap", X0, tmp_path, "X"), as_kind("memmap", Y0, tmp_path, "Y")
    kw = ENCODERS["batches"]
    with get_task_stream(dask_client) as stream, joblib.parallel_config(backend="dask"):
        enc = VoxelwiseEncoder(**kw, n_jobs=2).fit(X, Y)
        cvs = cross_val_score_targets(VoxelwiseEncoder(cv=3, alphas=ALPHAS), X, Y, cv=4, n_jobs=2)
        perm = PermutationTest(VoxelwiseEncoder(cv=3, alphas=ALPHAS), n_permutations=65,
                               random_state=0, n_jobs=2).fit(X, Y[:, :1000])
    assert len({task["worker"] for task in stream.data}) == 2
    assert_unchanged(X, X0)
    assert_unchanged(Y, Y0)
    assert_same_encoder(enc, _serial_encoder("batches", data))
    ref = cross_val_score_targets(VoxelwiseEncoder(cv=3, alphas=ALPHAS), X0, Y0, cv=4)
    np.testing.assert_allclose(cvs, ref, atol=4 * TOL)
    ref = PermutationTest(VoxelwiseEncoder(cv=3, alphas=ALPHAS), n_permutations=65,
                          random_state=0).fit(X0, Y0[:, :1000])
    _assert_same_test(perm, ref, 4 * TOL)
