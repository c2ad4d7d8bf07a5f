"""Benchmark of issue 19 section 2: bootstrap intervals of layer-RSA scores over stimuli.

``bootstrap_rdm_similarity`` (every resample a weighted correlation over the original pairs, one
matrix product per batch of resamples) against (a) a Python loop over resamples (subset the RDMs,
drop the copies of a stimulus, ``np.corrcoef``; the test's brute-force reference, checked equal
here) and (b) rsatoolbox's ``eval_bootstrap_pattern`` (method ``corr``, the reference tool's
stimulus bootstrap; timed only: it draws its own resamples).

    python benchmarks/bench_bootstrap.py [--stimuli 92] [--layers 8] [--boot 1000] [--write]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._results import machine, write_section  # noqa: E402


def _time(f, repeat=1):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def loop(models, target, idx):
    n = target.shape[0]
    p, q = np.triu_indices(n, 1)
    out = np.empty((len(idx), len(models)))
    for b, i in enumerate(idx):
        keep = i[p] != i[q]
        y = target[np.ix_(i, i)][p, q][keep]
        for m, model in enumerate(models):
            out[b, m] = np.corrcoef(model[np.ix_(i, i)][p, q][keep], y)[0, 1]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--stimuli", type=int, default=92)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    from neuroprobe.solvers.bootstrap import bootstrap_indices, bootstrap_rdm_similarity

    rng = np.random.default_rng(0)
    n, L, B = args.stimuli, args.layers, args.boot

    def rdm(x):
        return np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))

    base = rng.normal(size=(n, 10))
    target = rdm(base)
    models = np.stack([rdm(base + rng.normal(scale=s, size=base.shape))
                       for s in np.linspace(0.2, 3, L)])
    idx = bootstrap_indices(n, B, random_state=0)
    t_ours, ours = _time(lambda: bootstrap_rdm_similarity(models, target, idx), repeat=3)
    t_loop, ref = _time(lambda: loop(models, target, idx))
    diff = float(np.abs(ours - ref).max())
    assert diff < 1e-10, diff
    t_rsa = None
    try:
        import rsatoolbox

        data = rsatoolbox.rdm.RDMs(target[np.triu_indices(n, 1)][None])
        mods = [rsatoolbox.model.ModelFixed(f"l{k}", m[np.triu_indices(n, 1)])
                for k, m in enumerate(models)]
        t_rsa, _ = _time(lambda: rsatoolbox.inference.eval_bootstrap_pattern(
            mods, data, method="corr", N=B, boot_noise_ceil=False))
    except ImportError:
        pass
    rows = [("Python loop over resamples (np.corrcoef, same resamples; equal to "
             f"{diff:.0e})", f"{t_loop:.2f} s", f"{t_loop / t_ours:.0f}x")]
    if t_rsa is not None:
        rows.append(("rsatoolbox `eval_bootstrap_pattern(method='corr')`", f"{t_rsa:.2f} s",
                     f"{t_rsa / t_ours:.0f}x"))
    load = os.getloadavg()[0]
    md = [
        "### Bootstrap CIs of layer-RSA scores over stimuli "
        "(`python benchmarks/bench_bootstrap.py --write`)",
        "",
        f"{machine()}; 2 cores shared with other jobs, load average {load:.1f} (wall times "
        "noisy; ratios from the same run).",
        f"{n} stimuli x {L} layer RDMs x {B} resamples: `bootstrap_rdm_similarity` "
        f"**{t_ours * 1000:.0f} ms** (best of 3).",
        "",
        "| reference | reference time | neuroprobe speed-up |",
        "|---|---:|---:|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
    ]
    text = "\n".join(md)
    print(text)
    if args.write:
        write_section("bootstrap", text)


if __name__ == "__main__":
    main()
