"""CPU time of neuroprobe's hot paths, for comparing two checkouts of the package.

Run it once per checkout, alternating, and compare the printed JSON::

    for c in old new; do PYTHONPATH=$c python benchmarks/compare_checkouts.py; done

(one BLAS thread, best of 2-3 calls each; the table in RESULTS.md, section
``architecture_2026_12``, is the median of three such alternating runs).
"""

import json
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits


def cpu_time(func, reps=3):
    """Best CPU time of ``reps`` calls of ``func``."""
    best = float("inf")
    for _ in range(reps):
        start = time.process_time()
        func()
        best = min(best, time.process_time() - start)
    return best


def main():
    from neuroprobe import DNNFeatureExtractor, PermutationTest, VoxelwiseEncoder, compute_rdm
    from neuroprobe.rsa import permutation_test_rdms

    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 100)).astype(np.float32)
    Y = rng.standard_normal((500, 5000)).astype(np.float32)
    Xk = rng.standard_normal((200, 2000)).astype(np.float32)
    A, B = rng.standard_normal((92, 500)), rng.standard_normal((92, 300))
    ra, rb = compute_rdm(A), compute_rdm(B)
    images = rng.integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    ext = DNNFeatureExtractor("alexnet", layers=["conv3", "fc2"], weights=None, random_state=0,
                              batch_size=16)
    try:
        ext.set_params(cache=False)  # checkouts before the in-process cache have no such parameter
    except ValueError:
        pass
    perm = PermutationTest(VoxelwiseEncoder(), n_permutations=100, random_state=0)
    cases = {
        "ridge primal 500x100x5k": (lambda: VoxelwiseEncoder().fit(X, Y), 3),
        "ridge kernel 200x2000x2k": (lambda: VoxelwiseEncoder().fit(Xk, Y[:200, :2000]), 3),
        "permtest ridge 100 perms": (lambda: perm.fit(X[:200], Y[:200, :500]), 2),
        "compute_rdm 92x500": (lambda: compute_rdm(A), 3),
        "permutation_test_rdms 1000": (
            lambda: permutation_test_rdms(ra, rb, n_permutations=1000, random_state=0), 2),
        "alexnet 32 imgs 2 layers": (lambda: ext.fit_transform(images), 2),
    }
    with threadpool_limits(1):
        out = {name: cpu_time(func, reps) for name, (func, reps) in cases.items()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
