"""The in-process activation cache of DNNFeatureExtractor (cache=True, the default)."""

import threading

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from torch import nn

from neuroprobe.transformers import _activation_cache
from neuroprobe.transformers._activation_cache import MemoryActivationCache, memory_identity
from neuroprobe.transformers.extraction import DNNFeatureExtractor
from tests._tolerance import assert_allclose_dtype

LAYERS = ["1", "3", "5", "7"]


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
        nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5),
    )


def _counting(net):
    """``net`` with a pre-hook counting the stimuli it is run on.

    The hook is marked as part of the network's definition (it leaves the outputs unchanged), as
    :func:`neuroprobe.models.hooks.add_forward_hook` marks its hooks: an unmarked hook makes the
    extractor bypass its caches (see ``test_transient_hooks_bypass_the_cache``)."""
    count = [0]

    def hook(mod, args):
        count[0] += len(args[0])

    hook._neuroprobe_permanent = True
    net.register_forward_pre_hook(hook)
    return net, count


def test_transient_hooks_bypass_the_cache(X):
    """An ablation (a forward hook that changes an output) must not be served cached features."""
    import torch

    net = _net()
    ext = DNNFeatureExtractor(net, layers=["7"], pooling="mean", batch_size=16)
    plain = ext.fit_transform(X)
    module = dict(ext.model_.module.named_modules())["3"]
    handle = module.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    try:
        ablated = ext.transform(X)
    finally:
        handle.remove()
    assert not np.allclose(ablated, plain)
    np.testing.assert_array_equal(ext.transform(X), plain)  # hook gone: cached rows again


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    cache = MemoryActivationCache()
    monkeypatch.setattr(_activation_cache, "ACTIVATIONS", cache)
    from neuroprobe.transformers import extraction

    monkeypatch.setattr(extraction, "ACTIVATIONS", cache)
    return cache


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).standard_normal((48, 3, 12, 12)).astype(np.float32)


def test_cache_hit_equals_uncached_bit_exactly(X, fresh_cache):
    net, count = _counting(_net())
    ext = DNNFeatureExtractor(net, layers=["3", "7"], pooling="mean", batch_size=7)
    first = ext.fit_transform(X)
    assert count[0] == 48 and len(fresh_cache) == 96  # per layer, per stimulus
    again = clone(ext).fit_transform(X)  # a clone: same cache
    assert count[0] == 48
    off = clone(ext).set_params(cache=False).fit_transform(X)
    assert count[0] == 96
    np.testing.assert_array_equal(first, off)
    np.testing.assert_array_equal(again, off)
    assert again.flags.writeable and not np.shares_memory(first, again)
    # rows of a subset come from the cache, equal to the network's rows for that subset
    sub = ext.transform(X[10:30])
    assert count[0] == 96
    np.testing.assert_array_equal(sub, clone(ext).set_params(cache=False).fit_transform(X[10:30]))
    # a multi-layer candidate reuses single-layer entries; channels are selected after the cache
    one = clone(ext).set_params(layers=["7"], channels={"7": [1, 3]}).fit_transform(X)
    assert count[0] == 116
    np.testing.assert_array_equal(one, first[:, [4 + 1, 4 + 3]])


def test_grid_search_over_layers_forwards_each_stimulus_once_per_layer(X):
    y = np.random.default_rng(1).standard_normal(48)
    grid = {"dnn__layers": [[la] for la in LAYERS]}
    counts, scores = {}, {}
    for cache in (False, True):
        net, count = _counting(_net())
        pipe = Pipeline([("dnn", DNNFeatureExtractor(net, pooling="max", cache=cache)),
                         ("ridge", Ridge())])
        search = GridSearchCV(pipe, grid, cv=KFold(3)).fit(X, y)
        counts[cache], scores[cache] = count[0], search.cv_results_["mean_test_score"]
    assert counts[False] == 624  # 4 candidates x 3 folds x 48 + the refit's 48
    assert counts[True] == 48 * len(LAYERS)  # 192: each layer once per stimulus
    np.testing.assert_array_equal(scores[True], scores[False])
    # prefetch with every candidate layer: one pass per stimulus for the whole search
    net, count = _counting(_net(seed=5))
    dnn = DNNFeatureExtractor(net, pooling="max").prefetch(X, layers=LAYERS)
    GridSearchCV(Pipeline([("dnn", dnn), ("ridge", Ridge())]), grid, cv=KFold(3)).fit(X, y)
    assert count[0] == 48


def test_key_changes_with_weights_seed_file_and_inplace_change(X, tmp_path):
    net, count = _counting(_net())
    base = DNNFeatureExtractor(net, layers=["7"])
    a = base.fit_transform(X)
    # other weights in the module (another seed): another key
    other = DNNFeatureExtractor(_counting(_net(seed=1))[0], layers=["7"]).fit_transform(X)
    assert not np.allclose(a, other)
    # a weights file, then the same path rewritten with other weights
    path = tmp_path / "w.pt"
    torch.save(_net(seed=2).state_dict(), path)
    from_file = clone(base).set_params(weights=str(path))
    b = from_file.fit_transform(X)
    assert count[0] == 96
    torch.save(_net(seed=3).state_dict(), path)
    c = clone(from_file).fit_transform(X)
    assert count[0] == 144 and not np.allclose(b, c)
    # weights changed in place after fit: transform sees the change
    with torch.no_grad():
        from_file.model_.module[-1].bias.add_(1.0)
    d = from_file.transform(X)
    assert count[0] == 192
    np.testing.assert_allclose(d, b + 1.0, rtol=1e-5, atol=1e-5)


def test_key_changes_with_array_content_pooling_and_preprocessing(X):
    net, count = _counting(_net())
    ext = DNNFeatureExtractor(net, layers=["3"], pooling="mean")
    ext.fit_transform(X)
    changed = X.copy()
    changed[5] += 1.0
    out = clone(ext).fit_transform(changed)
    assert count[0] == 49  # only the changed stimulus runs again
    ref = clone(ext).set_params(cache=False).fit_transform(changed)
    keep = np.arange(48) != 5
    np.testing.assert_array_equal(out[keep], ref[keep])  # same batches as the uncached run
    # stimulus 5 ran alone, not in a batch of 32: a batch of another size may round differently
    # in the last bits (as an uncached run with another batch_size does)
    assert_allclose_dtype(out[5], ref[5], n_terms=4 * 9 * 2)
    assert not np.allclose(out[5], ext.transform(X[5:6])[0])
    clone(ext).set_params(pooling="max").fit_transform(X)
    assert count[0] == 49 + 48 + 48
    ext._fit_model()
    spec = ext.model_
    key = memory_identity(spec, "mean", torch.device("cpu"))
    spec.preprocess_info = dict(spec.preprocess_info or {}, resize=999)
    assert memory_identity(spec, "mean", torch.device("cpu")) != key
    assert memory_identity(ext.model_, "mean", "cuda") != memory_identity(ext.model_, "mean", "cpu")


def test_memory_bound_evicts_least_recently_used(X, monkeypatch, fresh_cache):
    row_bytes = 4 * 4 * 8 * 8  # layer "3": (4, 8, 8) float32, unpooled
    monkeypatch.setenv("NEUROPROBE_MEMORY_BUDGET", str(20 * row_bytes))
    net, count = _counting(_net())
    ext = DNNFeatureExtractor(net, layers=["3"], batch_size=8)
    ref = clone(ext).set_params(cache=False).fit_transform(X)
    np.testing.assert_array_equal(ext.fit_transform(X), ref)
    assert fresh_cache.nbytes <= 20 * row_bytes and len(fresh_cache) == 20  # the last 20 rows
    count[0] = 0
    np.testing.assert_array_equal(ext.transform(X[-16:]), ref[-16:])  # the most recent: kept
    assert count[0] == 0
    np.testing.assert_array_equal(ext.transform(X[:8]), ref[:8])  # evicted: computed again
    assert count[0] == 8 and fresh_cache.nbytes <= 20 * row_bytes
    small = MemoryActivationCache(max_bytes=10)
    small.view("k").save("m", ["a"], np.zeros((1, 4), np.float32), (4,))  # 16 bytes > 10
    assert len(small) == 0


def test_off_switch_and_disk_cache(X, tmp_path, fresh_cache):
    net, count = _counting(_net())
    ext = DNNFeatureExtractor(net, layers=["5"], cache=False)
    ext.fit_transform(X)
    ext.transform(X)
    assert count[0] == 96 and len(fresh_cache) == 0
    with pytest.raises(ValueError, match="prefetch needs a cache"):
        ext.prefetch(X)
    with pytest.raises(ValueError, match="The 'cache' parameter of DNNFeatureExtractor"):
        clone(ext).set_params(cache="yes").fit(X)
    disk = clone(ext).set_params(memory=str(tmp_path), cache=True)
    a = disk.fit_transform(X)
    assert count[0] == 144 and len(fresh_cache) == 0  # memory= replaces the in-process cache
    assert len(list((tmp_path / "neuroprobe_activations").rglob("*.npy"))) == 48
    np.testing.assert_array_equal(clone(disk).fit_transform(X), a)
    assert count[0] == 144


def test_threads_share_the_cache_and_compute_once(X):
    net, count = _counting(_net())
    base = DNNFeatureExtractor(net, layers=["3", "5"], pooling="l2", batch_size=5)
    ref = clone(base).set_params(cache=False).fit_transform(X)
    count[0] = 0
    out = [None] * 4

    def work(k):
        out[k] = clone(base).fit_transform(X)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert count[0] == 48
    for res in out:
        np.testing.assert_array_equal(res, ref)
