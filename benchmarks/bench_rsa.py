"""RSA and inference benchmark: RDMs, vectorised permutation tests, comparisons, a real case.

Usage (from the repository root)::

    python benchmarks/bench_rsa.py [--quick] [--data /work/shared/data/kriegeskorte92]
                                   [--backend torch --device cuda] [--md-out FILE] [--no-write]

Measures, in one run, each figure against a reference measured in the same run:

1. ``compute_rdm`` (correlation, float32) on 5000 x 4096 vs scipy ``pdist`` (run on a subset of rows
   and extrapolated by the number of pairs) and vs one sgemm ``X @ X.T`` of the same shape (the
   floor);
2. a 10,000-permutation stimulus-label RSA test (spearman) on 92 and 1000 stimuli vs a Python loop
   over ``scipy.stats.spearmanr`` (loop timed on a subset of permutations, extrapolated);
3. the ``VoxelwiseEncoder`` permutation fast path vs ``sklearn.model_selection.
   permutation_test_score`` (RidgeCV per target, timed on a few permutations, extrapolated);
4. ``compare_rdms`` vs ``rsatoolbox.rdm.compare`` for every shared method;
5. the real case: RDMs of the layers of a random-weight AlexNet on the 92 Kriegeskorte images vs
   human IT, with permutation p-values (FWE across layers) and the noise ceiling.

Writes the ``rsa`` section of ``benchmarks/RESULTS.md`` (unless ``--no-write``).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._results import machine, peak_rss_mb, write_section  # noqa: E402


def timeit(fn, repeat=1):
    best = np.inf
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def fmt(seconds):
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.1f} ms"


# ------------------------------------------------------------------------------ 1. compute_rdm
def bench_rdm(args, lines):
    from scipy.spatial.distance import pdist

    from neuroprobe.rsa import compute_rdm

    n, p = (1000, 512) if args.quick else (5000, 4096)
    n_sub = n if args.quick else 1500
    X = np.random.default_rng(0).standard_normal((n, p)).astype(np.float32)
    t_ours, ours = timeit(lambda: compute_rdm(X, "correlation"), repeat=2)
    t_gemm, _ = timeit(lambda: X @ X.T, repeat=2)
    t_sub, ref = timeit(lambda: pdist(X[:n_sub], "correlation"))
    t_pdist = t_sub * (n * (n - 1)) / (n_sub * (n_sub - 1))
    sub_pairs = n_sub * (n_sub - 1) // 2
    i, j = np.triu_indices(n_sub, 1)
    rows_ours = ours[i * n - i * (i + 1) // 2 + (j - i - 1)]  # ours, restricted to the subset
    err = float(np.abs(rows_ours - ref).max())
    how = "measured" if n_sub == n else f"{n_sub} rows measured, extrapolated by pairs"
    lines += [
        f"### compute_rdm: {n} x {p} float32, correlation distance",
        "",
        "| method | time | vs ours |",
        "|---|---|---|",
        f"| neuroprobe `compute_rdm` (numpy) | {fmt(t_ours)} | 1.0 |",
        f"| one sgemm `X @ X.T` (floor) | {fmt(t_gemm)} | {t_gemm / t_ours:.2f} |",
        f"| scipy `pdist` ({how}) | {fmt(t_pdist)} | {t_pdist / t_ours:.1f} |",
    ]
    if args.backend == "torch":
        import torch

        def run():
            return compute_rdm(X, "correlation", backend="torch", device=args.device)

        run()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t_t, out_t = timeit(run, repeat=3)
        lines.append(f"| neuroprobe `compute_rdm` (torch, {args.device}, incl. transfers) "
                     f"| {fmt(t_t)} | {t_t / t_ours:.2f} |")
        err = max(err, float(np.abs(out_t[: sub_pairs] - ours[: sub_pairs]).max()))
    lines += ["", f"Max abs difference vs pdist (float32 vs float64): {err:.1e}.", ""]


# ------------------------------------------------------------------ 2. RSA permutation test
def bench_rsa_permutations(args, lines):
    from scipy.spatial.distance import pdist
    from scipy.stats import spearmanr

    from neuroprobe.estimators import PermutationTest, RSAScorer

    n_perm = 1000 if args.quick else 10000
    sizes = (92, 300) if args.quick else (92, 1000)
    lines += [
        f"### Stimulus-label permutation test, spearman, {n_perm} permutations",
        "",
        "| stimuli | neuroprobe `PermutationTest(RSAScorer)` | Python loop over `spearmanr` "
        "(extrapolated) | speed-up |",
        "|---|---|---|---|",
    ]
    backends = [("numpy", "cpu")] + ([("torch", args.device)] if args.backend == "torch" else [])
    diffs = []
    for n in sizes:
        rng = np.random.default_rng(n)
        X = rng.standard_normal((n, 256)).astype(np.float32)
        Y = rng.standard_normal((n, 100)).astype(np.float32)
        cells, nulls = [], []
        for backend, device in backends:
            est = RSAScorer(backend=backend, device=device)
            t_ours, test = timeit(lambda est=est, X=X, Y=Y: PermutationTest(
                est, n_permutations=n_perm, random_state=0).fit(X, Y))
            cells.append((backend, device, t_ours))
            nulls.append(test.null_distribution_)
        if len(nulls) > 1:
            diffs.append(float(np.abs(nulls[1] - nulls[0]).max()))
        model, target = pdist(X, "correlation"), pdist(Y, "correlation")
        sq = np.zeros((n, n))
        sq[np.triu_indices(n, 1)] = target
        sq = sq + sq.T
        i, j = np.triu_indices(n, 1)
        n_loop = 200 if n <= 100 else 10
        perms = [rng.permutation(n) for _ in range(n_loop)]

        def loop(perms=perms, model=model, sq=sq, i=i, j=j):
            return [spearmanr(model, sq[p[i], p[j]])[0] for p in perms]

        t_loop, _ = timeit(loop)
        t_loop *= n_perm / n_loop
        t_numpy = cells[0][2]
        extra = "".join(f"; torch {d}: {fmt(t)}" for b, d, t in cells[1:])
        lines.append(f"| {n} | {fmt(t_numpy)}{extra} | {fmt(t_loop)} ({n_loop} measured) "
                     f"| {t_loop / t_numpy:.0f}x |")
    if diffs:
        lines += ["", f"Null distributions, torch ({args.device}, float32) vs numpy (float64), "
                  f"same seed: max abs difference {max(diffs):.1e}."]
    lines.append("")


# --------------------------------------------------------------- 3. encoder permutation test
def bench_encoder_permutations(args, lines):
    try:
        from neuroprobe.estimators.encoding import VoxelwiseEncoder
    except ImportError:
        lines += ["### Encoder permutation test", "", "(encoding.py not available)", ""]
        return
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, permutation_test_score

    from neuroprobe.estimators import PermutationTest

    n, p, t = (200, 50, 20) if args.quick else (500, 200, 100)
    n_perm = 100 if args.quick else 1000
    alphas = np.logspace(-2, 4, 7)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, p)).astype(np.float32)
    W = rng.standard_normal((p, t)) * (rng.random(t) < 0.3)
    Y = (X @ W + 3 * rng.standard_normal((n, t))).astype(np.float32)
    est = VoxelwiseEncoder(alphas=alphas, cv=5)
    t_ours, test = timeit(lambda: PermutationTest(est, n_permutations=n_perm,
                                                  random_state=0).fit(X, Y))
    n_ref = 3
    t_ref, _ = timeit(lambda: permutation_test_score(
        RidgeCV(alphas=alphas), X, Y[:, 0], cv=KFold(5), n_permutations=n_ref, random_state=0))
    t_ref = t_ref / (n_ref + 1) * (n_perm + 1) * t
    n_sig = int(np.sum(test.pvalue_fwe_ <= 0.05))
    lines += [
        f"### Encoder permutation test: {n} samples x {p} features x {t} targets, "
        f"{n_perm} permutations, 5-fold CV, {alphas.size} alphas",
        "",
        "| method | time | speed-up |",
        "|---|---|---|",
        f"| neuroprobe `PermutationTest(VoxelwiseEncoder)` (fast path, all targets) "
        f"| {fmt(t_ours)} | {t_ref / t_ours:.0f}x |",
        f"| sklearn `permutation_test_score(RidgeCV)` per target ({n_ref} permutations x 1 target "
        f"measured, extrapolated to {n_perm} x {t}) | {fmt(t_ref)} | 1 |",
        "",
        f"Targets with a planted effect: {int(np.sum(np.any(W != 0, axis=0)))}; FWE-significant "
        f"at 0.05: {n_sig}. (The statistics differ slightly: ours is max over alphas of the mean "
        "CV score, sklearn's RidgeCV picks alpha by leave-one-out inside each fold.)",
        "",
    ]


# ------------------------------------------------------------------ 4. rsatoolbox comparisons
def bench_rsatoolbox(args, lines):
    try:
        from rsatoolbox.data import Dataset
        from rsatoolbox.rdm import RDMs, calc_rdm, compare
    except ImportError:
        lines += ["### rsatoolbox", "", "(rsatoolbox not installed)", ""]
        return
    from neuroprobe.rsa import compare_rdms, compute_rdm

    n, k = (92, 20)
    rng = np.random.default_rng(1)
    A = rng.random((k, n * (n - 1) // 2))
    B = rng.random((k, n * (n - 1) // 2))
    names = {"pearson": "corr", "spearman": "spearman", "cosine": "cosine", "rho_a": "rho-a",
             "kendall_tau_b": "kendall", "kendall_tau_a": "tau-a"}
    lines += [
        f"### RDM comparisons vs rsatoolbox: {k} x {k} pairs of RDMs of {n} stimuli",
        "",
        "| method (ours / rsatoolbox) | neuroprobe | rsatoolbox | speed-up | max abs diff |",
        "|---|---|---|---|---|",
    ]
    for ours, theirs in names.items():
        kk = 5 if ours.startswith("kendall") else k
        t_ours, a = timeit(lambda o=ours, kk=kk: compare_rdms(A[:kk], B[:kk], o), repeat=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_ref, b = timeit(lambda th=theirs, kk=kk: compare(RDMs(A[:kk]), RDMs(B[:kk]), th),
                              repeat=2)
        size = f" ({kk} x {kk})" if kk != k else ""
        lines.append(f"| {ours} / {theirs}{size} | {fmt(t_ours)} | {fmt(t_ref)} "
                     f"| {t_ref / t_ours:.1f}x | {np.abs(a - b).max():.1e} |")
    n2, p2 = (500, 512) if args.quick else (2000, 4096)
    X = rng.standard_normal((n2, p2))
    t_ours, a = timeit(lambda: compute_rdm(X, "correlation"))
    t_ref, b = timeit(lambda: calc_rdm(Dataset(X), method="correlation").get_vectors()[0])
    lines += [f"| RDM `correlation`, {n2} x {p2} float64 | {fmt(t_ours)} | {fmt(t_ref)} "
              f"| {t_ref / t_ours:.1f}x | {np.abs(a - b).max():.1e} |", ""]


# ---------------------------------------------------------------------------- 5. real case
def _alexnet_features(data, layers, quick):
    """Activations of a random-weight AlexNet: DNNFeatureExtractor, else torchvision + hooks."""
    import csv

    with open(data / "stimuli.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    paths = [str(data / r["path"]) for r in rows]
    try:
        from neuroprobe import DNNFeatureExtractor

        ext = DNNFeatureExtractor("alexnet", weights=None, layers=list(layers), random_state=0,
                                  batch_size=32)
        F = ext.fit_transform(paths)
        return {name: F[:, ext.feature_slices_[name]] for name in layers}, "DNNFeatureExtractor"
    except Exception as exc:  # noqa: BLE001 - fall back, and say so in the results
        import torch
        import torchvision
        from PIL import Image

        torch.manual_seed(0)
        net = torchvision.models.alexnet(weights=None).eval()
        mods = dict(net.named_modules())
        modules = {"conv1_relu": "features.1", "conv2_relu": "features.4",
                   "conv3_relu": "features.7", "conv4_relu": "features.9",
                   "conv5_relu": "features.11", "fc1_relu": "classifier.2",
                   "fc2_relu": "classifier.5", "fc3": "classifier.6"}
        out = {}
        hooks = [mods[modules[name]].register_forward_hook(
            lambda m, i, o, name=name: out.__setitem__(name, o.detach().clone().flatten(1)))
            for name in layers]
        tf = torchvision.transforms.Compose([
            torchvision.transforms.Resize(224), torchvision.transforms.ToTensor(),
            torchvision.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
        x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths])
        with torch.no_grad():
            net(x)
        for h in hooks:
            h.remove()
        return ({k: out[k].numpy() for k in layers},
                f"torchvision + forward hooks (DNNFeatureExtractor failed: {exc!r:.80})")


def bench_real(args, lines):
    data = Path(args.data)
    if not (data / "rdms.npz").exists():
        lines += ["### Real case", "", f"(no data at {data})", ""]
        return
    from neuroprobe.estimators import PermutationTest, RSAScorer
    from neuroprobe.rsa import compute_rdm, noise_ceiling

    layers = ["conv1_relu", "conv2_relu", "conv3_relu", "conv4_relu", "conv5_relu", "fc1_relu",
              "fc2_relu", "fc3"]
    t0 = time.perf_counter()
    feats, how = _alexnet_features(data, layers, args.quick)
    t_feat = time.perf_counter() - t0
    rdms = np.load(data / "rdms.npz")
    hit = rdms["hIT"]
    n_perm = 1000 if args.quick else 10000
    n_boot = 100 if args.quick else 1000
    X = np.hstack([feats[k] for k in layers])
    bounds = np.cumsum([0] + [feats[k].shape[1] for k in layers])
    groups = {k: slice(int(a), int(b)) for k, a, b in zip(layers, bounds[:-1], bounds[1:])}
    t0 = time.perf_counter()
    test = PermutationTest(RSAScorer(target_rdm=hit, feature_groups=groups),
                           n_permutations=n_perm, random_state=0).fit(X)
    t_test = time.perf_counter() - t0
    t0 = time.perf_counter()
    nc = noise_ceiling(rdms["hIT_subject_session"], "spearman", n_bootstrap=n_boot,
                       random_state=0)
    t_nc = time.perf_counter() - t0
    model_rdms = compute_rdm([feats[k] for k in layers])
    lines += [
        "### Real case: random-weight AlexNet layers vs human IT (Kriegeskorte et al. 2008, "
        "92 images)",
        "",
        f"Features: {how}, {t_feat:.1f} s for 92 images. Model RDMs: correlation distance; "
        f"comparison: spearman; {n_perm} stimulus-label permutations ({t_test:.1f} s for all "
        f"{len(layers)} layers), family-wise p-values by max statistic across layers. Noise "
        f"ceiling from `hIT_subject_session` (4 subjects, sessions averaged), {n_boot} "
        f"bootstrap resamples of the stimuli ({t_nc:.1f} s): lower {nc.lower:.3f} "
        f"[{nc.lower_ci[0]:.3f}, {nc.lower_ci[1]:.3f}], upper {nc.upper:.3f} "
        f"[{nc.upper_ci[0]:.3f}, {nc.upper_ci[1]:.3f}].",
        "",
        "| layer | features | spearman r with hIT | p | p (FWE) |",
        "|---|---|---|---|---|",
    ]
    for i, k in enumerate(layers):
        lines.append(f"| {k} | {feats[k].shape[1]} | {test.score_[i]:.3f} | "
                     f"{test.pvalue_[i]:.4f} | {test.pvalue_fwe_[i]:.4f} |")
    from neuroprobe.rsa import compare_rdms

    mit = compare_rdms(rdms["mIT"], hit)
    lines += ["", f"For scale: monkey IT vs human IT spearman r = {mit:.3f}. Random weights: low "
              "correlations are expected (the paper's trained AlexNet reaches ~0.2-0.3); the point "
              "is the full path (features -> RDMs -> permutation test -> noise ceiling) on real "
              f"data. Model RDM matrix shape: {model_rdms.shape}.", ""]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "kriegeskorte92"))
    parser.add_argument("--backend", default="numpy", choices=["numpy", "torch"],
                        help="also time the torch backend on --device")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--md-out", default=None, help="also write the Markdown to this file")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument("--include", default=None,
                        help="Markdown file (e.g. --md-out of a run on another machine) to append")
    parser.add_argument("--only", default=None,
                        help="comma-separated parts: rdm,perm,encoder,rsatoolbox,real")
    args = parser.parse_args(argv)
    parts = {"rdm": bench_rdm, "perm": bench_rsa_permutations,
             "encoder": bench_encoder_permutations, "rsatoolbox": bench_rsatoolbox,
             "real": bench_real}
    chosen = args.only.split(",") if args.only else list(parts)
    cmd = "python benchmarks/bench_rsa.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "## RSA and permutation inference",
        "",
        f"Machine: {machine()}. Command: `{cmd.strip()}`. The machine is shared with other jobs "
        "(loaded: timings are noisy; ratios are measured in the same run).",
        "",
    ]
    t0 = time.perf_counter()
    for name in chosen:
        t = time.perf_counter()
        parts[name](args, lines)
        print(f"[bench_rsa] {name}: {time.perf_counter() - t:.1f} s", flush=True)
    lines.append(f"Total {time.perf_counter() - t0:.0f} s, peak RSS {peak_rss_mb():.0f} MiB.")
    if args.include:
        text = Path(args.include).read_text().replace("## RSA and permutation inference", "")
        lines += ["", "### Run on another machine (GPU), same script", "",
                  text.replace("\n### ", "\n#### ").strip()]
    md = "\n".join(lines)
    print(md)
    if args.md_out:
        Path(args.md_out).write_text(md + "\n")
    if not args.no_write:
        write_section("rsa", md)


if __name__ == "__main__":
    main()
