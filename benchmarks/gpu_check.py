"""One prepared script for a CUDA machine: torch-cuda equality with numpy, and speed.

Run from the repository root (no installation needed; the repository is put on ``sys.path``)::

    pip install --no-deps --no-index .whl/himalaya-*.whl       # optional reference
    python benchmarks/gpu_check.py --sizes full --out gpu.md

Checks (each caught and reported on its own, never aborting the run):

* ``VoxelwiseEncoder`` (k-fold primal, k-fold kernel, leave-one-out): ``coef_``, ``best_alphas_``,
  ``cv_scores_`` and ``score_targets`` of ``backend="torch", device=DEVICE`` against
  ``backend="numpy"``;
* ``VoxelwiseEncoder`` on the device streaming ``Y`` from an HDF5 file, and
  :func:`neuroprobe.outofcore.fit_to_hdf5` (``coef_`` written block by block);
* ``PLSEncoder``: ``coef_`` and predictions;
* ``compute_rdm`` (correlation, euclidean), ``compare_rdms`` (spearman, pearson, cosine, rho_a),
  ``RSAScorer.score``;
* ``PermutationTest`` fast paths (VoxelwiseEncoder, RSAScorer): observed scores and null
  distributions with the same ``random_state``.

Timings (the result arrays come back to numpy inside the timed call, so CUDA work is finished):
ridge CV over 10 alphas and 5 folds at ``n`` stimuli x ``p`` features x ``t`` targets for the numpy
backend, the torch backend on DEVICE and himalaya's ``RidgeCV`` on its ``torch_cuda`` backend;
``compute_rdm``; the permutation fast paths. The Markdown report is printed, written into the
``gpu`` section of ``benchmarks/RESULTS.md`` and, with ``--out``, into a file.

On a CPU-only machine ``--device cpu --quick`` exercises the same code paths with torch on the CPU
(and himalaya's ``torch`` backend).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

T0 = time.perf_counter()

SIZES = {
    "tiny": dict(eq_n=100, eq_p=20, eq_t=200, n=200, p=40, t=500, rdm_n=200, rdm_p=50,
                 perm_n=60, perm_p=10, perm_t=20, n_perm=16, rsa_n=40, rsa_perm=64),
    # equality checks (moderate), timings (large)
    "small": dict(eq_n=200, eq_p=40, eq_t=500, n=1000, p=200, t=5000, rdm_n=1000, rdm_p=500,
                  perm_n=120, perm_p=30, perm_t=200, n_perm=64, rsa_n=92, rsa_perm=200),
    "full": dict(eq_n=400, eq_p=80, eq_t=4000, n=5000, p=1000, t=50000, rdm_n=5000, rdm_p=1000,
                 perm_n=500, perm_p=100, perm_t=2000, n_perm=256, rsa_n=300, rsa_perm=1000),
}
ALPHAS = np.logspace(-2, 7, 10)


def log(msg):
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", flush=True)


def elapsed():
    return time.perf_counter() - T0


# --------------------------------------------------------------------------- results
class Report:
    """Collects equality checks and timings; renders Markdown."""

    def __init__(self):
        self.checks = []  # (name, status, detail)
        self.timings = []  # (task, size, {column: seconds or str})
        self.notes = []

    def check(self, name, fn):
        log(f"check {name} ...")
        t = time.perf_counter()
        try:
            ok, detail = fn()
            status = "PASS" if ok else "FAIL"
        except Exception as exc:  # report, never abort
            status, detail = "ERROR", f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
            traceback.print_exc()
        log(f"  {status} ({time.perf_counter() - t:.1f}s) {detail}")
        self.checks.append((name, status, detail))

    def markdown(self, header):
        lines = [header, "", "| check | result | detail |", "|---|---|---|"]
        lines += [f"| {n} | {s} | {d} |" for n, s, d in self.checks]
        if self.timings:
            cols = []
            for _, _, row in self.timings:
                cols += [c for c in row if c not in cols]
            lines += ["", "| task | size | " + " | ".join(cols) + " |",
                      "|---|---|" + "---|" * len(cols)]
            for task, size, row in self.timings:
                cells = [_fmt(row.get(c, "")) for c in cols]
                lines.append(f"| {task} | {size} | " + " | ".join(cells) + " |")
        if self.notes:
            lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines)


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _f64(a):
    return np.atleast_1d(np.asarray(a, dtype=np.float64))


def rel_err(got, ref):
    got, ref = _f64(got), _f64(ref)
    scale = max(float(np.nanmax(np.abs(ref))), 1e-12)
    diff = np.abs(got - ref)
    both_nan = np.isnan(got) & np.isnan(ref)
    diff[both_nan] = 0
    if np.isnan(diff).any():
        return float("inf")
    return float(diff.max() / scale) if diff.size else 0.0


def abs_err(got, ref):
    got, ref = _f64(got), _f64(ref)
    diff = np.abs(got - ref)
    diff[np.isnan(got) & np.isnan(ref)] = 0
    return float(np.nan_to_num(diff, nan=np.inf).max()) if diff.size else 0.0


def timed(fn, repeat=1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def sync(device):
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


# --------------------------------------------------------------------------- data
def regression_data(n, p, t, seed=0, snr=0.5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p), dtype=np.float32)
    W = rng.standard_normal((p, t), dtype=np.float32) / np.sqrt(p)
    Y = X @ W
    Y *= np.float32(snr)
    Y += rng.standard_normal((n, t), dtype=np.float32)
    return X, Y


# --------------------------------------------------------------------------- checks
def encoder_pair(device, X, Y, **params):
    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    ref = VoxelwiseEncoder(alphas=ALPHAS, backend="numpy", **params).fit(X, Y)
    got = VoxelwiseEncoder(alphas=ALPHAS, backend="torch", device=device, **params).fit(X, Y)
    return ref, got


def check_encoder(device, X, Y, **params):
    """coef_/cv_scores_/scores equal; best alphas equal except near-ties of the CV score."""
    ref, got = encoder_pair(device, X, Y, **params)
    e_cv = abs_err(got.cv_scores_, ref.cv_scores_)
    same = got.best_alphas_ == ref.best_alphas_
    # where the chosen alphas differ, both must be (near-)ties of the numpy CV curve
    idx = np.flatnonzero(~same)
    a_ref = np.searchsorted(ALPHAS, ref.best_alphas_[idx])
    a_got = np.searchsorted(ALPHAS, got.best_alphas_[idx])
    tie_gap = (float(np.max(np.abs(ref.cv_scores_[a_ref, idx] - ref.cv_scores_[a_got, idx])))
               if idx.size else 0.0)
    e_coef = rel_err(got.coef_[:, same], ref.coef_[:, same])
    e_icpt = rel_err(got.intercept_[same], ref.intercept_[same])
    s_ref = ref.score_targets(X, Y)
    s_got = got.score_targets(X, Y)
    e_score = abs_err(s_got[same], s_ref[same])
    ok = (e_cv < 2e-3 and same.mean() >= 0.95 and tie_gap < 2e-3 and e_coef < 2e-3
          and e_icpt < 2e-3 and e_score < 2e-3)
    detail = (f"cv_scores abs {e_cv:.1e}; best_alphas equal {same.mean():.4f} (ties gap "
              f"{tie_gap:.1e}); coef rel {e_coef:.1e}; intercept rel {e_icpt:.1e}; "
              f"score_targets abs {e_score:.1e}")
    return ok, detail


def check_hdf5(device, X, Y):
    """torch-DEVICE fit streaming Y from HDF5 (and fit_to_hdf5) vs numpy in memory."""
    import tempfile

    from neuroprobe.estimators.encoding import VoxelwiseEncoder
    from neuroprobe.estimators.outofcore import fit_to_hdf5, load_encoder
    from neuroprobe.io.targets import open_targets, write_targets

    ref = VoxelwiseEncoder(alphas=ALPHAS).fit(X, Y)
    with tempfile.TemporaryDirectory() as tmp:
        dset = open_targets(write_targets(Path(tmp) / "Y.h5", Y))
        got = VoxelwiseEncoder(alphas=ALPHAS, backend="torch", device=device,
                               n_targets_batch=max(1, Y.shape[1] // 4)).fit(X, dset)
        path = fit_to_hdf5(VoxelwiseEncoder(alphas=ALPHAS, backend="torch", device=device), X,
                           dset, Path(tmp) / "enc.h5", targets_per_block=max(1, Y.shape[1] // 3))
        blocks = load_encoder(path)
        dset.file.close()
    details, ok = [], True
    for name, est in (("streamed fit", got), ("fit_to_hdf5", blocks)):
        same = est.best_alphas_ == ref.best_alphas_
        e = rel_err(est.coef_[:, same], ref.coef_[:, same])
        ok &= same.mean() >= 0.95 and e < 2e-3
        details.append(f"{name}: best_alphas equal {same.mean():.4f}, coef rel {e:.1e}")
    return ok, "; ".join(details)


def check_pls(device, X, Y):
    from neuroprobe.estimators.encoding import PLSEncoder

    ref = PLSEncoder(n_components=3, dtype="float32").fit(X, Y)
    got = PLSEncoder(n_components=3, dtype="float32", backend="torch", device=device).fit(X, Y)
    e_coef = rel_err(got.coef_, ref.coef_)
    e_pred = rel_err(got.predict(X), ref.predict(X))
    return e_coef < 5e-3 and e_pred < 5e-3, f"coef rel {e_coef:.1e}; predict rel {e_pred:.1e}"


def check_rdm(device, n, p):
    from neuroprobe.rsa import compute_rdm

    X, _ = regression_data(n, p, 1, seed=3)
    details, ok = [], True
    for metric in ("correlation", "euclidean", "cosine"):
        ref = compute_rdm(X, metric)
        got = compute_rdm(X, metric, backend="torch", device=device)
        e = rel_err(got, ref)
        ok &= e < 1e-4
        details.append(f"{metric} rel {e:.1e}")
    return ok, "; ".join(details)


def check_compare(device, n):
    from neuroprobe.rsa import compare_rdms, compute_rdm

    rng = np.random.default_rng(4)
    A = compute_rdm(rng.standard_normal((3, n, 20)))
    B = compute_rdm(rng.standard_normal((4, n, 30)))
    details, ok = [], True
    for method in ("spearman", "pearson", "cosine", "rho_a"):
        ref = compare_rdms(A, B, method)
        got = compare_rdms(A, B, method, backend="torch", device=device)
        e = abs_err(got, ref)
        ok &= e < 1e-4
        details.append(f"{method} abs {e:.1e}")
    return ok, "; ".join(details)


def check_rsascorer(device, n):
    from neuroprobe.estimators.rsa import RSAScorer

    X, Y = regression_data(n, 50, 80, seed=5)
    ref = RSAScorer().fit(X, Y).score(X, Y)
    got = RSAScorer(backend="torch", device=device).fit(X, Y).score(X, Y)
    e = abs(got - ref)
    return e < 1e-4, f"score {ref:.5f} vs {got:.5f} (abs {e:.1e})"


def check_perm_encoder(device, n, p, t, n_perm):
    from neuroprobe.estimators.encoding import VoxelwiseEncoder
    from neuroprobe.estimators.permutation import PermutationTest

    X, Y = regression_data(n, p, t, seed=6)
    res = {}
    for be, dev in (("numpy", "cpu"), ("torch", device)):
        est = VoxelwiseEncoder(alphas=ALPHAS, backend=be, device=dev)
        res[be] = PermutationTest(est, n_permutations=n_perm, random_state=0).fit(X, Y)
    ref, got = res["numpy"], res["torch"]
    e_obs = abs_err(got.score_, ref.score_)
    e_null = abs_err(got.null_distribution_, ref.null_distribution_)
    ok = e_obs < 2e-3 and e_null < 2e-3 and got.fast_path_ and ref.fast_path_
    return ok, f"observed abs {e_obs:.1e}; null abs {e_null:.1e}; fast path {got.fast_path_}"


def check_perm_rsa(device, n, n_perm):
    from neuroprobe.estimators.permutation import PermutationTest
    from neuroprobe.estimators.rsa import RSAScorer

    X, Y = regression_data(n, 40, 60, seed=7)
    res = {}
    for be, dev in (("numpy", "cpu"), ("torch", device)):
        res[be] = PermutationTest(RSAScorer(backend=be, device=dev), n_permutations=n_perm,
                                  random_state=0).fit(X, Y)
    ref, got = res["numpy"], res["torch"]
    e_obs = abs_err(got.score_, ref.score_)
    e_null = abs_err(got.null_distribution_, ref.null_distribution_)
    ok = e_obs < 1e-4 and e_null < 1e-4 and got.fast_path_
    return ok, f"observed abs {e_obs:.1e}; null abs {e_null:.1e}; fast path {got.fast_path_}"


# --------------------------------------------------------------------------- timings
def time_ridge(report, device, n, p, t, budget_s):
    """numpy vs torch-DEVICE vs himalaya torch_cuda for RidgeCV(10 alphas, 5-fold)."""
    from sklearn.model_selection import KFold

    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    log(f"timing ridge n={n} p={p} t={t}: generating data")
    X, Y = regression_data(n, p, t, seed=1)
    cv = KFold(5)
    row = {}
    size = f"n={n}, p={p}, t={t}"

    def ours(backend, dev, Yt):
        est = VoxelwiseEncoder(alphas=ALPHAS, cv=cv, backend=backend, device=dev)
        est.fit(X, Yt)
        return est

    # torch on the device first (warm-up on a small slice: CUDA context, cuBLAS, cuSOLVER)
    try:
        ours("torch", device, Y[:, :256])
        sync(device)
        if str(device).startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats()
        sec, est_t = timed(lambda: ours("torch", device, Y))
        row[f"neuroprobe torch-{device} (s)"] = sec
        if str(device).startswith("cuda"):
            peak = torch.cuda.max_memory_allocated() / 1024**3
            row["ours: peak GPU memory (GiB)"] = f"{peak:.1f}"
        log(f"  neuroprobe torch-{device}: {sec:.2f}s")
    except Exception as exc:
        est_t = None
        row[f"neuroprobe torch-{device} (s)"] = f"error: {type(exc).__name__}"
        traceback.print_exc()
    # numpy: time a slice first, extrapolate if the whole would not fit the budget
    try:
        sub = min(t, max(1000, t // 10))
        sec_sub, _ = timed(lambda: ours("numpy", "cpu", Y[:, :sub]))
        estimate = sec_sub * t / sub
        left = budget_s - elapsed()
        if sub == t:
            row["neuroprobe numpy (s)"] = sec_sub
        elif estimate < min(90.0, 0.35 * left):
            sec, est_n = timed(lambda: ours("numpy", "cpu", Y))
            row["neuroprobe numpy (s)"] = sec
            if est_t is not None:
                report.check(f"ridge timing run: torch-{device} coef vs numpy ({size})",
                             lambda: _coef_agree(est_t, est_n))
        else:
            row["neuroprobe numpy (s)"] = f"{estimate:.3g} (extrapolated from t={sub})"
            report.notes.append(
                f"numpy ridge time at {size} extrapolated linearly from t={sub} "
                f"({sec_sub:.2f}s) to stay within the time budget."
            )
        log(f"  numpy: {row['neuroprobe numpy (s)']}")
    except Exception as exc:
        row["neuroprobe numpy (s)"] = f"error: {type(exc).__name__}"
        traceback.print_exc()
    # himalaya
    hb = "torch_cuda" if str(device).startswith("cuda") else "torch"
    try:
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV

        backend = set_backend(hb, on_error="raise")

        def hima(Yt):
            model = RidgeCV(alphas=ALPHAS, cv=cv, fit_intercept=True,
                            solver_params=dict(n_targets_batch=min(Yt.shape[1], 10000),
                                               n_alphas_batch=5,
                                               n_targets_batch_refit=min(Yt.shape[1], 10000)))
            model.fit(X, Yt)
            return backend.to_numpy(model.coef_)

        hima(Y[:, :256])
        sec, _ = timed(lambda: hima(Y))
        row[f"himalaya {hb} (s)"] = sec
        log(f"  himalaya {hb}: {sec:.2f}s")
        set_backend("numpy")
    except Exception as exc:
        row[f"himalaya {hb} (s)"] = f"error: {type(exc).__name__}: {str(exc)[:80]}"
        traceback.print_exc()
    _ratios(row, device, hb)
    report.timings.append(("VoxelwiseEncoder ridge CV (10 alphas, 5 folds)", size, row))


def _coef_agree(est_t, est_n):
    same = est_t.best_alphas_ == est_n.best_alphas_
    e = rel_err(est_t.coef_[:, same], est_n.coef_[:, same])
    detail = f"best_alphas equal {same.mean():.4f}; coef rel {e:.1e}"
    return same.mean() >= 0.99 and e < 2e-3, detail


def _ratios(row, device, hb=None):
    ours = row.get(f"neuroprobe torch-{device} (s)")
    numpy_s = row.get("neuroprobe numpy (s)")
    if isinstance(numpy_s, str) and "extrapolated" in numpy_s:
        numpy_s = float(numpy_s.split()[0])
    if isinstance(ours, float) and isinstance(numpy_s, float):
        row["speed-up vs numpy"] = f"{numpy_s / ours:.1f}x"
    hs = row.get(f"himalaya {hb} (s)") if hb else None
    if isinstance(ours, float) and isinstance(hs, float):
        row["himalaya time / ours"] = f"{hs / ours:.2f}"


def time_rdm(report, device, n, p):
    from neuroprobe.rsa import compute_rdm

    X, _ = regression_data(n, p, 1, seed=2)
    row = {}
    try:
        compute_rdm(X[:50], backend="torch", device=device)
        row[f"neuroprobe torch-{device} (s)"], _ = timed(
            lambda: compute_rdm(X, backend="torch", device=device), repeat=2)
    except Exception as exc:
        row[f"neuroprobe torch-{device} (s)"] = f"error: {type(exc).__name__}"
        traceback.print_exc()
    try:
        row["neuroprobe numpy (s)"], _ = timed(lambda: compute_rdm(X))
    except Exception as exc:
        row["neuroprobe numpy (s)"] = f"error: {type(exc).__name__}"
    _ratios(row, device)
    report.timings.append(("compute_rdm (correlation)", f"n={n}, p={p}", row))
    log(f"  compute_rdm: {row}")


def time_perm(report, device, kind, sizes):
    from neuroprobe.estimators.permutation import PermutationTest

    if kind == "encoder":
        from neuroprobe.estimators.encoding import VoxelwiseEncoder

        n, p, t, k = sizes["perm_n"], sizes["perm_p"], sizes["perm_t"], sizes["n_perm"]
        X, Y = regression_data(n, p, t, seed=8)

        def make(be, dev):
            return VoxelwiseEncoder(alphas=ALPHAS, backend=be, device=dev)

        size = f"n={n}, p={p}, t={t}, {k} perms"
    else:
        from neuroprobe.estimators.rsa import RSAScorer

        n, k = sizes["rsa_n"], sizes["rsa_perm"]
        X, Y = regression_data(n, 100, 200, seed=9)

        def make(be, dev):
            return RSAScorer(backend=be, device=dev)

        size = f"n={n}, {k} perms"
    row = {}
    for label, be, dev in ((f"neuroprobe torch-{device} (s)", "torch", device),
                           ("neuroprobe numpy (s)", "numpy", "cpu")):
        try:
            PermutationTest(make(be, dev), n_permutations=2, random_state=0).fit(X[:, :], Y)
            row[label], _ = timed(lambda be=be, dev=dev: PermutationTest(
                make(be, dev), n_permutations=k, random_state=0).fit(X, Y))
        except Exception as exc:
            row[label] = f"error: {type(exc).__name__}"
            traceback.print_exc()
    _ratios(row, device)
    name = f"PermutationTest({'VoxelwiseEncoder' if kind == 'encoder' else 'RSAScorer'})"
    report.timings.append((name, size, row))
    log(f"  {name}: {row}")


# --------------------------------------------------------------------------- main
def header(device):
    import torch

    try:
        from benchmarks._results import machine

        mach = machine()
    except Exception:
        mach = f"{platform.machine()}, Python {platform.python_version()}"
    gpu = "no CUDA"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = f"{props.name}, {props.total_memory / 1024**3:.0f} GiB"
    versions = []
    for name in ("torch", "sklearn", "scipy", "himalaya", "h5py"):
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except Exception:
            versions.append(f"{name} missing")
    return (
        f"GPU check (`benchmarks/gpu_check.py`, device={device}), "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.\n\n"
        f"Machine: {mach}. GPU: {gpu}. {', '.join(versions)}. Times are the best of the runs "
        "in seconds, results copied back to numpy inside the timed call; the CPU numpy times use "
        "all of this machine's cores."
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="torch device to check (default cuda)")
    parser.add_argument("--sizes", choices=sorted(SIZES), default="full")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (a CPU smoke test of every code path)")
    parser.add_argument("--out", help="also write the Markdown report to this file")
    parser.add_argument("--no-results", action="store_true",
                        help="do not write the gpu section of benchmarks/RESULTS.md (only CUDA "
                        "runs write it)")
    parser.add_argument("--budget", type=float, default=210.0,
                        help="seconds; long timings are extrapolated to stay within it")
    args = parser.parse_args(argv)
    sizes = SIZES["tiny" if args.quick else args.sizes]
    device = args.device
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    import torch

    log(f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}, "
        f"device={device}, sizes={'tiny' if args.quick else args.sizes}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        log("CUDA is not available: nothing to check on the GPU (use --device cpu to test)")
    report = Report()
    n, p, t = sizes["eq_n"], sizes["eq_p"], sizes["eq_t"]
    X, Y = regression_data(n, p, t, seed=0)
    Xk, Yk = regression_data(n // 4, 3 * n, t // 4, seed=10)  # p > n: kernel solver
    report.check("VoxelwiseEncoder 5-fold, primal", lambda: check_encoder(device, X, Y))
    report.check("VoxelwiseEncoder 5-fold, kernel (p > n)",
                 lambda: check_encoder(device, Xk, Yk))
    report.check("VoxelwiseEncoder leave-one-out (cv=None)",
                 lambda: check_encoder(device, X, Y[:, : t // 4], cv=None))
    report.check("VoxelwiseEncoder alpha_per_target=False, r2",
                 lambda: check_encoder(device, X, Y, alpha_per_target=False, scoring="r2"))
    report.check("VoxelwiseEncoder streaming Y from HDF5; fit_to_hdf5",
                 lambda: check_hdf5(device, X, Y))
    report.check("PLSEncoder (3 components)", lambda: check_pls(device, X, Y[:, :200]))
    report.check("compute_rdm", lambda: check_rdm(device, sizes["rdm_n"] // 4, 100))
    report.check("compare_rdms", lambda: check_compare(device, 60))
    report.check("RSAScorer.score", lambda: check_rsascorer(device, 80))
    report.check("PermutationTest fast path, VoxelwiseEncoder",
                 lambda: check_perm_encoder(device, 60, 10, 20, 16 if args.quick else 64))
    report.check("PermutationTest fast path, RSAScorer",
                 lambda: check_perm_rsa(device, 40, 64 if args.quick else 200))
    for name, fn in (
        ("ridge", lambda: time_ridge(report, device, sizes["n"], sizes["p"], sizes["t"],
                                     args.budget)),
        ("rdm", lambda: time_rdm(report, device, sizes["rdm_n"], sizes["rdm_p"])),
        ("perm-encoder", lambda: time_perm(report, device, "encoder", sizes)),
        ("perm-rsa", lambda: time_perm(report, device, "rsa", sizes)),
    ):
        if elapsed() > args.budget:
            report.notes.append(f"timing '{name}' skipped: time budget of {args.budget:.0f}s spent")
            log(f"skip timing {name}: budget spent")
            continue
        log(f"timing {name} ...")
        try:
            fn()
        except Exception as exc:
            report.notes.append(f"timing '{name}' failed: {type(exc).__name__}: {exc}")
            traceback.print_exc()
    n_fail = sum(s != "PASS" for _, s, _ in report.checks)
    report.notes.append(f"{len(report.checks) - n_fail}/{len(report.checks)} checks passed; "
                        f"total run time {elapsed():.0f}s.")
    md = report.markdown(header(device))
    print("\n" + md + "\n", flush=True)
    if args.out:
        Path(args.out).write_text(md + "\n")
        log(f"wrote {args.out}")
    if args.no_results or not device.startswith("cuda"):
        log("RESULTS.md left as is (--no-results, or not a CUDA run)")
    else:
        try:
            from benchmarks._results import write_section

            write_section("gpu", md)
            log("wrote the gpu section of benchmarks/RESULTS.md")
        except Exception as exc:
            log(f"could not write RESULTS.md: {exc}")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
