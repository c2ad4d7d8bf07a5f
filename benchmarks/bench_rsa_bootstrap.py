"""Benchmark: bootstrap_rsa (dual bootstrap) vs rsatoolbox eval_dual_bootstrap.

Default size (the issue's): 1,000 bootstraps, 92 stimuli, 10 fixed models, 8 subjects,
spearman. rsatoolbox runs ``--ref-bootstraps`` samples (default 100) and its time is
extrapolated linearly to ``--n-bootstrap`` (its loop costs the same per sample). Before the
times are reported, neuroprobe's per-sample evaluations are checked against rsatoolbox's on
the same indices (rsatoolbox's sampler replays ours).

    python benchmarks/bench_rsa_bootstrap.py [--n-bootstrap 1000] [--ref-bootstraps 100]
        [--method spearman] [--write]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._results import machine, write_section  # noqa: E402

THEIRS = {"pearson": "corr", "cosine": "cosine", "spearman": "spearman", "rho_a": "rho-a"}


def data(n=92, n_subjects=8, n_models=10, seed=0):
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 10))
    subjects = np.stack([pdist(latent + rng.standard_normal((n, 10)))
                         for _ in range(n_subjects)])
    models = np.stack([pdist(latent + s * rng.standard_normal((n, 10)))
                       for s in np.linspace(0.3, 3, n_models)])
    return models, subjects


def rsatoolbox_dual(models, subjects, method, subj, stim):
    import rsatoolbox.inference.evaluate as ev
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    state = {"b": 0}

    def replay(data, rdm_descriptor="index", pattern_descriptor="index"):
        b = state["b"]
        state["b"] += 1
        return (data.subsample("index", subj[b]).subsample_pattern("index", stim[b]),
                subj[b], stim[b])

    original, trange = ev.bootstrap_sample, ev.tqdm.trange
    ev.bootstrap_sample, ev.tqdm.trange = replay, range
    try:
        mods = [ModelFixed(f"m{i}", RDMs(m)) for i, m in enumerate(models)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ev.eval_dual_bootstrap(mods, RDMs(subjects), method=THEIRS[method],
                                          N=len(subj))
    finally:
        ev.bootstrap_sample, ev.tqdm.trange = original, trange


def main(argv=None):
    from neuroprobe.rsa_inference import bootstrap_rsa
    from neuroprobe.solvers.rsa_bootstrap import draw_indices

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-bootstrap", type=int, default=1000)
    ap.add_argument("--ref-bootstraps", type=int, default=100)
    ap.add_argument("--n-stimuli", type=int, default=92)
    ap.add_argument("--n-models", type=int, default=10)
    ap.add_argument("--n-subjects", type=int, default=8)
    ap.add_argument("--method", default="spearman", choices=list(THEIRS))
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    models, subjects = data(args.n_stimuli, args.n_subjects, args.n_models)
    subj, stim = draw_indices(args.n_subjects, args.n_stimuli, args.n_bootstrap, "both",
                              np.random.RandomState(0))
    t = time.perf_counter()
    ours = bootstrap_rsa(models, subjects, args.method, "both", indices=(subj, stim))
    t_ours = time.perf_counter() - t
    n_ref = min(args.ref_bootstraps, args.n_bootstrap)
    t = time.perf_counter()
    ref = rsatoolbox_dual(models, subjects, args.method, subj[:n_ref], stim[:n_ref])
    t_ref_part = time.perf_counter() - t
    np.testing.assert_allclose(ours.evaluations[:n_ref], ref.evaluations[:, :, 0, 0, :],
                               rtol=1e-9, atol=1e-12)
    t_ref = t_ref_part * args.n_bootstrap / n_ref
    load = os.getloadavg()[0]
    print(f"bootstrap_rsa: {t_ours:.2f} s for {args.n_bootstrap} samples")
    print(f"rsatoolbox eval_dual_bootstrap: {t_ref_part:.2f} s for {n_ref} samples -> "
          f"{t_ref:.1f} s for {args.n_bootstrap} (extrapolated)")
    print(f"ratio {t_ref / t_ours:.1f}x; load average {load:.2f}")
    if args.write:
        write_section("rsa_bootstrap", f"""
## rsa_bootstrap: dual bootstrap (subjects and stimuli) of fixed model RDMs

Machine: {machine()} (2 shared AMD EPYC cores, other work running; absolute times are noisy,
the ratio is from the same run). Load average at the end: {load:.2f}.

Size: {args.n_bootstrap} bootstrap samples, {args.n_stimuli} stimuli, {args.n_models} models,
{args.n_subjects} subjects, `{args.method}`; per sample the three bootstraps of
`eval_dual_bootstrap` (both, subjects only, stimuli only) with the noise ceiling in each.
Values checked equal to rsatoolbox's on the same indices (rtol 1e-9) before timing.

| | time | note |
|---|---|---|
| `bootstrap_rsa(..., unit="both")` (numpy) | {t_ours:.2f} s | all {args.n_bootstrap} samples |
| rsatoolbox `eval_dual_bootstrap` | {t_ref:.1f} s | {t_ref_part:.1f} s for {n_ref} samples, \
extrapolated linearly |
| ratio | **{t_ref / t_ours:.0f}x** | |

`python benchmarks/bench_rsa_bootstrap.py --write` (defaults are the issue's size).
""")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
