"""Paired bootstrap of model scores: neuroprobe's count-matrix product vs a loop over resamples.

92 stimuli (the Kriegeskorte set) and 1,000 stimuli, 8 models (layers), 10,000 resamples: every
pair's bootstrap differences, percentile CIs and p-values. Reference: the hand-made loop
(``for b in range(B): scores[idx[b]].mean(0)``) with the same indices, then the same pairwise
differences; results equal to rounding.
``python3 benchmarks/bench_compare.py [--write] [--quick]``.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._results import machine, write_section  # noqa: E402
from neuroprobe.solvers.bootstrap import bootstrap_indices, paired_bootstrap  # noqa: E402


def loop_bootstrap(scores, idx, confidence=0.95):
    boot = np.empty((idx.shape[0], scores.shape[1]))
    for b in range(idx.shape[0]):
        boot[b] = scores[idx[b]].mean(axis=0)
    a, c = np.triu_indices(scores.shape[1], 1)
    d = boot[:, a] - boot[:, c]
    tail = (1 - confidence) / 2
    return d, np.quantile(d, [tail, 1 - tail], axis=0)


def _best(fn, repeats=3):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(sizes=(92, 1000), n_models=8, n_bootstrap=10_000, write=False, repeats=3):
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        scores = rng.standard_normal((n, n_models))
        idx = bootstrap_indices(n, n_bootstrap, 0)
        t_loop, (d_loop, _) = _best(lambda s=scores, i=idx: loop_bootstrap(s, i), repeats)
        t_ours, res = _best(lambda s=scores, i=idx: paired_bootstrap(s, i), repeats)
        diff = float(np.abs(res["boot"] - d_loop).max())
        rows.append((n, t_ours, t_loop, diff))
        print(rows[-1], flush=True)
    lines = [
        "### Paired bootstrap of layer scores (`python benchmarks/bench_compare.py`)",
        "",
        f"{machine()}; shared machine, load average {os.getloadavg()[0]:.1f}; min of "
        f"{repeats} runs.",
        f"{n_models} models ({n_models * (n_models - 1) // 2} pairs), {n_bootstrap:,} resamples "
        "of the stimuli, percentile CIs and centred p-values. Reference: a Python loop over "
        "the resamples with the same indices.",
        "",
        "| stimuli | neuroprobe `paired_bootstrap` | loop | speed-up | max abs diff |",
        "|---:|---:|---:|---:|---:|",
    ]
    for n, t_ours, t_loop, diff in rows:
        lines.append(f"| {n} | {t_ours * 1e3:.1f} ms | {t_loop * 1e3:.1f} ms | "
                     f"**{t_loop / t_ours:.1f}x** | {diff:.1e} |")
    lines += ["", "One `bincount` gives the count of every stimulus in every resample; one "
              "(B x n) @ (n x models) product gives all resample means."]
    text = "\n".join(lines)
    print(text)
    if write:
        write_section("compare", text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="tiny sizes; writes nothing")
    args = parser.parse_args()
    if args.quick:
        main(sizes=(20,), n_bootstrap=200, repeats=1)
    else:
        main(write=args.write)
