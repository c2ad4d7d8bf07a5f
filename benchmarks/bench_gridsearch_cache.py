"""Benchmark of the in-process activation cache (issue 14, item 8).

``GridSearchCV`` over ``dnn__layers`` (4 single-layer candidates, 3 folds, 48 stimuli, AlexNet with
random weights, max pooling, then ridge): wall time and stimuli forwarded through the network
with ``cache=False`` (every candidate and fold runs the network), ``cache=True`` (the default) and
``cache=True`` after ``prefetch`` of every candidate layer. The cross-validated scores are checked
to be equal.

Usage::

    python benchmarks/bench_gridsearch_cache.py            # writes its section of RESULTS.md
    python benchmarks/bench_gridsearch_cache.py --quick    # 24 stimuli, no RESULTS.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._results import write_section  # noqa: E402

LAYERS = ["conv1", "conv3", "conv5", "fc2"]
MACHINE = "2026-12-02, 2-core AMD EPYC (shared with other jobs)"


def _run(mode, images, y, counter):
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import Pipeline

    from neuroprobe.transformers import _activation_cache
    from neuroprobe.transformers.extraction import DNNFeatureExtractor

    _activation_cache.ACTIVATIONS.clear()
    dnn = DNNFeatureExtractor("alexnet", weights=None, layers=["conv1"], pooling="max",
                              random_state=0, cache=mode != "off")
    counter[0] = 0
    start = time.perf_counter()
    if mode == "prefetch":
        dnn.prefetch(images, layers=LAYERS)
    search = GridSearchCV(Pipeline([("dnn", dnn), ("ridge", Ridge())]),
                          {"dnn__layers": [[la] for la in LAYERS]}, cv=KFold(3))
    search.fit(images, y)
    return time.perf_counter() - start, counter[0], search.cv_results_["mean_test_score"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import warnings

    from neuroprobe.transformers.extraction import DNNFeatureExtractor

    warnings.simplefilter("ignore", UserWarning)  # the random-weights warning
    n = 24 if args.quick else 48
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    y = rng.standard_normal(n)
    counter = [0]
    original = DNNFeatureExtractor._forward_batches

    def counting(self, source, indices, modules):
        counter[0] += len(indices)
        return original(self, source, indices, modules)

    DNNFeatureExtractor._forward_batches = counting
    try:
        _run("on", images[:4], y[:4], counter)  # warm-up: torch threads, model LRU
        rows = {mode: _run(mode, images, y, counter) for mode in ("off", "on", "prefetch")}
    finally:
        DNNFeatureExtractor._forward_batches = original
    for mode in ("on", "prefetch"):
        np.testing.assert_allclose(rows[mode][2], rows["off"][2], rtol=1e-5, atol=1e-6)
    base = rows["off"][0]
    lines = [
        "| cache | wall (s) | stimuli forwarded | speed-up vs cache=False |",
        "|---|---:|---:|---:|",
    ]
    names = {"off": "cache=False", "on": "cache=True (default)",
             "prefetch": "cache=True + prefetch(all candidate layers)"}
    for mode, (wall, count, _) in rows.items():
        lines.append(f"| {names[mode]} | {wall:.1f} | {count} | {base / wall:.1f}x |")
    table = "\n".join(lines)
    print(table)
    if args.quick:
        return
    write_section("gridsearch_cache", f"""## In-process activation cache: GridSearchCV over layers

Machine: {MACHINE}. `GridSearchCV(Pipeline([DNNFeatureExtractor("alexnet", weights=None,
pooling="max"), Ridge()]), {{"dnn__layers": {[[la] for la in LAYERS]}}}, cv=KFold(3))` on {n}
uint8 images (64x64, preprocessed to 224x224), refit included. "Stimuli forwarded" counts the
stimuli sent through the network. Mean CV scores are equal in the three modes (checked).

{table}

Script: `python benchmarks/bench_gridsearch_cache.py`.""")


if __name__ == "__main__":
    main()
