"""Scaling: dask through joblib equals serial, torch equals numpy, HDF5 streaming equals in memory.

One dask ``LocalCluster`` (2 worker processes, 1 thread each, loopback only) serves the whole
module; every dask test checks that tasks really ran on its workers (task stream) and that the
results equal the serial run's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest

from neuroprobe.estimators.encoding import PLSEncoder, VoxelwiseEncoder
from neuroprobe.estimators.outofcore import fit_to_hdf5, load_encoder, score_targets_hdf5
from neuroprobe.estimators.permutation import PermutationTest
from neuroprobe.estimators.rsa import RSAScorer
from neuroprobe.io.targets import open_targets, write_targets
from tests._tolerance import assert_allclose_dtype

ALPHAS = [0.1, 10.0, 1000.0]


def _data(n=60, p=8, t=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, t)) * 0.5 + rng.standard_normal((n, t))
    return X.astype(np.float32), Y.astype(np.float32)


# --------------------------------------------------------------------------- dask cluster
def _warm():
    import neuroprobe.estimators.encoding  # noqa: F401
    import neuroprobe.estimators.permutation  # noqa: F401
    import neuroprobe.estimators.rsa  # noqa: F401


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, silence_logs=40,
        )
        client = distributed.Client(cluster)
    client.run(_warm)
    yield client
    client.close()
    cluster.close()


def on_dask(client, fn):
    """Run ``fn()`` with joblib's dask backend; return its result and the workers that ran tasks."""
    from distributed import get_task_stream

    with get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
        out = fn()
    workers = {task["worker"] for task in stream.data}
    assert workers, "no task ran on the dask cluster"
    return out, workers


def test_encoder_target_batches_on_dask_equal_serial(client):
    X, Y = _data(t=200)
    serial = VoxelwiseEncoder(alphas=ALPHAS, n_targets_batch=40).fit(X, Y)
    dist, workers = on_dask(
        client, lambda: VoxelwiseEncoder(alphas=ALPHAS, n_targets_batch=40, n_jobs=2).fit(X, Y)
    )
    assert len(workers) == 2  # 5 batches spread over both workers
    np.testing.assert_array_equal(dist.best_alphas_, serial.best_alphas_)
    np.testing.assert_allclose(dist.coef_, serial.coef_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dist.cv_scores_, serial.cv_scores_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dist.intercept_, serial.intercept_, rtol=1e-6, atol=1e-7)


def test_permutation_nulls_on_dask_equal_serial(client):
    X, Y = _data(n=40, t=6)
    groups = np.repeat(np.arange(4), 10)  # permute within runs
    # 130 permutations: chunks of 64, 64 and 2, each seeded from the master random_state
    enc = VoxelwiseEncoder(alphas=ALPHAS, cv=4)
    serial = PermutationTest(enc, n_permutations=130, random_state=3).fit(X, Y, groups=groups)
    dist, _ = on_dask(client, lambda: PermutationTest(
        enc, n_permutations=130, random_state=3, n_jobs=2).fit(X, Y, groups=groups))
    assert dist.fast_path_ and serial.fast_path_
    np.testing.assert_allclose(dist.null_distribution_, serial.null_distribution_, atol=1e-6)
    np.testing.assert_array_equal(dist.pvalue_, serial.pvalue_)
    # RSA fast path
    rsa_serial = PermutationTest(RSAScorer(), n_permutations=130, random_state=4).fit(X, Y)
    rsa_dist, _ = on_dask(client, lambda: PermutationTest(
        RSAScorer(), n_permutations=130, random_state=4, n_jobs=2).fit(X, Y))
    np.testing.assert_allclose(rsa_dist.null_distribution_, rsa_serial.null_distribution_,
                               atol=1e-12)
    assert rsa_dist.pvalue_ == rsa_serial.pvalue_


def test_layer_grid_search_on_dask_equals_serial(client, tmp_path):
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import Pipeline

    from neuroprobe.io.activations import write_activations
    from neuroprobe.transformers.extraction import ActivationReader

    rng = np.random.default_rng(1)
    n = 60
    layers = {f"conv{i}": rng.standard_normal((n, 3 + i, 2)).astype(np.float32)
              for i in range(1, 4)}
    Y = layers["conv2"].reshape(n, -1) @ rng.standard_normal((10, 30)) + rng.standard_normal(
        (n, 30))
    ids = np.array([f"s{i:03d}" for i in range(n)])
    path = write_activations(tmp_path / "acts.act.h5", layers, ids, model="toy")

    def search(n_jobs):
        pipe = Pipeline([("reader", ActivationReader(path, "conv1")),
                         ("enc", VoxelwiseEncoder(alphas=ALPHAS, cv=3))])
        return GridSearchCV(pipe, {"reader__layer": list(layers)}, cv=KFold(3),
                            n_jobs=n_jobs).fit(ids, Y)

    serial = search(None)
    dist, _ = on_dask(client, lambda: search(2))
    np.testing.assert_allclose(dist.cv_results_["mean_test_score"],
                               serial.cv_results_["mean_test_score"], rtol=1e-6)
    assert dist.best_params_ == serial.best_params_ == {"reader__layer": "conv2"}


@pytest.mark.slow  # the workers import torch (~20 s on a loaded 2-core machine)
def test_sharded_extraction_on_dask_equals_one_pass(client, tmp_path):
    torch = pytest.importorskip("torch")
    from neuroprobe.io.activations import open_activations
    from neuroprobe.transformers.extraction import DNNFeatureExtractor
    from neuroprobe.transformers.sharded import extract_to_file_sharded

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 5, 3),
                              torch.nn.Flatten(), torch.nn.Linear(80, 6))
    X = np.random.default_rng(0).standard_normal((22, 3, 8, 8)).astype(np.float32)
    ext = DNNFeatureExtractor(net, layers=["0", "4"], pooling=None, batch_size=4)
    one = ext.extract_to_file(X, tmp_path / "one.act.h5")
    sharded, workers = on_dask(client, lambda: extract_to_file_sharded(
        ext, X, tmp_path / "sharded.act.h5", shard_size=6, n_jobs=2))
    assert len(workers) == 2
    with open_activations(one) as a, open_activations(sharded) as b:
        assert a.layers == b.layers == ["0", "4"]
        np.testing.assert_array_equal(a.stim_ids, b.stim_ids)
        for layer in a.layers:
            # shards change the batch composition: equal up to float32 rounding
            np.testing.assert_allclose(b.read(layer), a.read(layer), rtol=1e-5, atol=1e-6)
            assert a.layer_attrs(layer) == b.layer_attrs(layer)
        drop = {"neuroprobe_version"}
        assert {k: v for k, v in a.attrs.items() if k not in drop} == {
            k: v for k, v in b.attrs.items() if k not in drop}
        assert b.attrs["complete"]


@pytest.mark.slow
def test_ray_backend_equals_serial():
    """The docs' ray recipe (skipped where ray is not installed, as in our CI)."""
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    X, Y = _data(n=40, t=6)
    enc = VoxelwiseEncoder(alphas=ALPHAS, cv=4)
    serial = PermutationTest(enc, n_permutations=130, random_state=3).fit(X, Y)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        register_ray()
        with joblib.parallel_config(backend="ray"):
            dist = PermutationTest(enc, n_permutations=130, random_state=3, n_jobs=2).fit(X, Y)
    finally:
        ray.shutdown()
    np.testing.assert_allclose(dist.null_distribution_, serial.null_distribution_, atol=1e-6)


# --------------------------------------------------------------------------- torch on the CPU
@pytest.fixture
def one_torch_thread():
    """torch's CPU thread pool spins on a loaded machine; one thread keeps these tests fast."""
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _assert_encoders_match(a, b, X, Y):
    same = a.best_alphas_ == b.best_alphas_
    assert same.mean() >= 0.95
    np.testing.assert_allclose(a.cv_scores_, b.cv_scores_, atol=2e-4)
    np.testing.assert_allclose(a.coef_[:, same], b.coef_[:, same], rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(a.score_targets(X, Y)[same], b.score_targets(X, Y)[same],
                               atol=2e-4)


def test_torch_cpu_permutation_fast_path_equals_numpy(one_torch_thread):
    # (encoder fits on torch are tested in tests/estimators/test_encoding.py, RSA nulls in
    # tests/solvers/test_permutation.py; this is the encoder's permutation fast path)
    X, Y = _data(t=5)
    kw = dict(n_permutations=40, random_state=0)
    p_ref = PermutationTest(VoxelwiseEncoder(alphas=ALPHAS, cv=3), **kw).fit(X, Y)
    p_got = PermutationTest(VoxelwiseEncoder(alphas=ALPHAS, cv=3, backend="torch"), **kw).fit(X, Y)
    assert p_got.fast_path_
    np.testing.assert_allclose(p_got.null_distribution_, p_ref.null_distribution_, atol=2e-4)
    np.testing.assert_allclose(p_got.score_, p_ref.score_, atol=2e-4)


# --------------------------------------------------------------------------- out of core
@pytest.fixture
def h5_targets(tmp_path):
    X, Y = _data(t=150)
    path = write_targets(tmp_path / "Y.h5", Y)
    dset = open_targets(path)
    yield X, Y, dset
    dset.file.close()


def test_write_targets_chunks_whole_columns_and_open_names_datasets(tmp_path):
    Y = np.arange(24.0).reshape(4, 6)
    path = write_targets(tmp_path / "t.h5", Y, targets_per_batch=4)
    dset = open_targets(path)
    assert dset.chunks[0] == 4 and dset.dtype == np.float32
    np.testing.assert_array_equal(dset[...], Y)
    dset.file.close()
    with pytest.raises(KeyError, match="datasets in the file: Y"):
        open_targets(path, "bold")
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        open_targets(tmp_path / "missing.h5")


def test_permutation_test_streams_hdf5_targets(tmp_path):
    # (encoder fit / score_targets on HDF5 targets: tests/estimators/test_encoding.py)
    X, Y = _data(t=40)
    dset = open_targets(write_targets(tmp_path / "Y.h5", Y))
    enc = VoxelwiseEncoder(alphas=ALPHAS, cv=3, n_targets_batch=16)  # 3 batches read from disk
    kw = dict(n_permutations=20, random_state=0)
    p_h5 = PermutationTest(enc, **kw).fit(X, dset)
    dset.file.close()
    p_mem = PermutationTest(enc, **kw).fit(X, Y)
    assert_allclose_dtype(p_h5.null_distribution_, p_mem.null_distribution_, n_terms=X.shape[0],
                          dtype=X.dtype)  # float32 fits, float64 scores
    np.testing.assert_array_equal(p_h5.pvalue_fwe_, p_mem.pvalue_fwe_)


def test_permutation_test_generic_path_reads_hdf5_targets(tmp_path):
    from sklearn.linear_model import Ridge

    X, Y = _data(t=3)
    dset = open_targets(write_targets(tmp_path / "Y.h5", Y))
    kw = dict(n_permutations=10, cv=3, random_state=0)
    p_h5 = PermutationTest(Ridge(), **kw).fit(X, dset)  # no fast path: refits on permuted rows
    dset.file.close()
    p_mem = PermutationTest(Ridge(), **kw).fit(X, Y)
    assert not p_h5.fast_path_
    np.testing.assert_allclose(p_h5.null_distribution_, p_mem.null_distribution_, rtol=1e-6)


def test_fit_to_hdf5_equals_whole_fit(h5_targets, tmp_path):
    X, Y, dset = h5_targets
    ref = VoxelwiseEncoder(alphas=ALPHAS, cv=4).fit(X, Y)
    path = fit_to_hdf5(VoxelwiseEncoder(alphas=ALPHAS, cv=4), X, dset, tmp_path / "enc.h5",
                       targets_per_block=64)  # 3 blocks, the last one partial
    full = load_encoder(path)
    # blocks of 64 targets vs all 150 at once: BLAS blocks the products differently, so the
    # float32 results agree up to rounding over the n = 60 samples (1.5e-8 apart on OpenBLAS
    # Haswell), not bit for bit
    n = X.shape[0]
    assert_allclose_dtype(full.coef_, ref.coef_, n_terms=n, dtype=X.dtype)
    assert_allclose_dtype(full.intercept_, ref.intercept_, n_terms=n, dtype=X.dtype)
    np.testing.assert_array_equal(full.best_alphas_, ref.best_alphas_)  # a discrete choice
    assert_allclose_dtype(full.cv_scores_, ref.cv_scores_, n_terms=n, dtype=X.dtype)
    assert_allclose_dtype(full.predict(X), ref.predict(X), n_terms=n, dtype=X.dtype)
    cols = [149, 3, 70]
    part = load_encoder(path, cols)
    np.testing.assert_array_equal(part.coef_, full.coef_[:, cols])  # read back from one file
    X_new, Y_new = _data(t=150, seed=5)
    np.testing.assert_allclose(score_targets_hdf5(path, X_new, Y_new, targets_per_block=50),
                               ref.score_targets(X_new, Y_new), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="alpha_per_target=True"):
        fit_to_hdf5(VoxelwiseEncoder(alpha_per_target=False), X, dset, tmp_path / "x.h5")
    with pytest.raises(TypeError, match="VoxelwiseEncoder"):
        fit_to_hdf5(PLSEncoder(), X, dset, tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


_RSS_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    from neuroprobe.estimators.encoding import VoxelwiseEncoder
    from neuroprobe.io.targets import open_targets

    def rss_kib(field):
        with open("/proc/self/status") as fh:
            return next(int(ln.split()[1]) for ln in fh if ln.startswith(field + ":"))

    mode, path = sys.argv[1:3]
    X = np.random.default_rng(0).standard_normal((400, 8)).astype(np.float32)
    Y = open_targets(path)
    VoxelwiseEncoder(alphas=[1.0], cv=3).fit(X[:, :2], Y[:, :10])  # warm the code paths
    try:  # reset the peak (VmHWM) to the current RSS
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        peak = lambda: rss_kib("VmHWM")
    except OSError:
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before = rss_kib("VmRSS")
    targets = Y[...] if mode == "whole" else Y
    est = VoxelwiseEncoder(alphas=[0.1, 10.0, 1000.0], cv=3).fit(X, targets)
    assert est.coef_.shape == (8, Y.shape[1])
    print(json.dumps({"increase_mib": (peak() - before) / 1024}))
""")


def _peak_increases(path, env):
    """Peak RSS increase (MiB) of a fit on Y loaded whole and streamed, in two subprocesses."""
    procs = {mode: subprocess.Popen([sys.executable, "-c", _RSS_SCRIPT, mode, str(path)],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
             for mode in ("whole", "streamed")}
    out = {}
    for mode, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, stderr
        out[mode] = json.loads(stdout.strip().splitlines()[-1])["increase_mib"]
    return out["whole"], out["streamed"]


@pytest.mark.slow  # two subprocesses importing sklearn: ~30 s on a loaded 2-core machine
def test_streamed_fit_of_50000_targets_needs_under_half_the_memory_of_loading_y(tmp_path):
    n, t = 400, 50_000
    rng = np.random.default_rng(0)
    path = tmp_path / "Y.h5"
    with __import__("h5py").File(path, "w") as fh:  # written in blocks: no 80 MB array here
        dset = fh.create_dataset("Y", (n, t), dtype="float32", chunks=(n, 2048))
        for a in range(0, t, 10_000):
            dset[:, a:a + 10_000] = rng.standard_normal((n, 10_000), dtype=np.float32)
    y_mib = n * t * 4 / 1024**2  # 76 MiB
    env = dict(os.environ, NEUROPROBE_MEMORY_BUDGET="16M", OMP_NUM_THREADS="1")
    whole, streamed = _peak_increases(path, env)
    assert whole >= 0.9 * y_mib, (whole, y_mib)  # the measurement sees Y loaded whole
    assert streamed < 0.5 * whole, (streamed, whole)
    assert streamed < 0.5 * y_mib, (streamed, y_mib)


# --------------------------------------------------------------------------- CUDA (skipped without)
@pytest.mark.gpu
def test_cuda_encoder_and_permutations_equal_numpy():
    X, Y = _data(n=200, p=30, t=300)
    ref = VoxelwiseEncoder(alphas=ALPHAS).fit(X, Y)
    got = VoxelwiseEncoder(alphas=ALPHAS, backend="torch", device="cuda").fit(X, Y)
    _assert_encoders_match(got, ref, X, Y)
    kw = dict(n_permutations=64, random_state=0)
    p_ref = PermutationTest(VoxelwiseEncoder(alphas=ALPHAS, cv=3), **kw).fit(X, Y[:, :20])
    p_got = PermutationTest(VoxelwiseEncoder(alphas=ALPHAS, cv=3, backend="torch",
                                             device="cuda"), **kw).fit(X, Y[:, :20])
    np.testing.assert_allclose(p_got.null_distribution_, p_ref.null_distribution_, atol=2e-4)
    r_ref = PermutationTest(RSAScorer(), **kw).fit(X, Y)
    r_got = PermutationTest(RSAScorer(backend="torch", device="cuda"), **kw).fit(X, Y)
    np.testing.assert_allclose(r_got.null_distribution_, r_ref.null_distribution_, atol=1e-5)


@pytest.mark.gpu
def test_cuda_rdms_and_fit_to_hdf5_equal_numpy(tmp_path):
    from neuroprobe.rsa import compare_rdms, compute_rdm

    X, Y = _data(n=100, p=40, t=200)
    a = compute_rdm(X)
    np.testing.assert_allclose(compute_rdm(X, backend="torch", device="cuda"), a, atol=1e-5)
    b = compute_rdm(Y)
    assert abs(compare_rdms(a, b, backend="torch", device="cuda") - compare_rdms(a, b)) < 1e-5
    path = fit_to_hdf5(VoxelwiseEncoder(alphas=ALPHAS, backend="torch", device="cuda"), X, Y,
                       tmp_path / "enc.h5", targets_per_block=70)
    _assert_encoders_match(load_encoder(path), VoxelwiseEncoder(alphas=ALPHAS).fit(X, Y), X, Y)
