"""Benchmark of the Searchlight estimator (issue 17, section 5).

1. Volume RSA searchlight, radius 3 voxels, on a 64x64x40 grid (an ellipsoid brain mask filling
   the box), 92 conditions, one model RDM: neuroprobe (all centres) against rsatoolbox
   ``get_volume_searchlight`` + ``get_searchlight_RDMs`` + ``evaluate_models_searchlight``
   (``eval_fixed``). rsatoolbox's RDM and evaluation steps run on a random subset of centres
   (``--ref-centres``) and are extrapolated per centre to all centres (its per-centre cost is
   constant: one ``calc_rdm`` and one ``eval_fixed`` per centre); its neighbourhood search runs
   on the whole mask. Values are compared at the subset's centres.
2. The same with 100 stimulus permutations (max-statistic FWE), ours only.
3. A fsaverage5 surface searchlight (20,484 vertices, 10 mm geodesic discs on the pial meshes
   that nilearn ships), 92 conditions: neighbourhoods and map timed.
4. A volume encoding searchlight (ridge, 5-fold, 20 features) on the same grid.

Run: ``python benchmarks/bench_searchlight.py [--ref-centres 300] [--backend torch --device
cuda] [--no-write]``. Peak memory: tracemalloc peak of each step (numpy buffers are traced).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc

import numpy as np


def _brain(shape=(64, 64, 40)):
    g = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"), -1)
    return (g**2).sum(-1) < 1


def _timed(fn, what=""):
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    if what:
        print(f"  {what}: {dt:.1f} s, peak {peak:.0f} MiB", file=sys.stderr, flush=True)
    return out, dt, peak


def bench_volume(args):
    from rsatoolbox.inference import eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.util.searchlight import (
        evaluate_models_searchlight,
        get_searchlight_RDMs,
        get_volume_searchlight,
    )

    from neuroprobe.rsa import compute_rdm
    from neuroprobe.searchlight import Searchlight, volume_neighbourhoods

    mask = _brain()
    cols = np.flatnonzero(mask)
    r = np.random.default_rng(0)
    n = 92
    X = r.normal(size=(n, cols.size)).astype(np.float32)
    model = compute_rdm(r.normal(size=(n, 10)))
    rows = {}
    nb, t_nb, m_nb = _timed(lambda: volume_neighbourhoods(mask, 3.0).to_columns(cols),
                            "ours: neighbourhoods")
    for method, ours in (("corr", "pearson"), ("spearman", "spearman")):
        sl, t_map, m_map = _timed(lambda ours=ours: Searchlight(
            neighbourhoods=nb, model_rdms=model, comparison=ours, backend=args.backend,
            device=args.device).fit(X), f"ours: map ({ours})")
        rows[method] = dict(t_nb=t_nb, t_map=t_map, peak=max(m_nb, m_map), sl=sl)
    # rsatoolbox: neighbourhoods on the whole mask, RDMs and evaluation on a subset of centres
    if args.skip_ref_neighbourhoods:
        t_ref_nb = float("nan")
        centers, neighbors = cols, [cols[nb.members(i)] for i in range(len(nb))]
    else:
        (centers, neighbors), t_ref_nb, _ = _timed(lambda: get_volume_searchlight(
            mask, radius=3, threshold=1.0, truncate_at_boundary=True),
            "rsatoolbox: get_volume_searchlight")
    assert np.array_equal(centers, cols[nb.centers])
    sub = np.sort(r.choice(len(centers), args.ref_centres, replace=False))
    full = np.zeros((n, mask.size), np.float64)
    full[:, cols] = X
    for method, row in rows.items():
        def ref(method=method):
            rdms = get_searchlight_RDMs(full, centers[sub], [neighbors[i] for i in sub],
                                        np.arange(n), method="correlation", verbose=False)
            res = evaluate_models_searchlight(rdms, ModelFixed("m", RDMs(model[None])),
                                              eval_fixed, method=method)
            return np.array([np.squeeze(e.evaluations) for e in res])

        values, t_sub, m_ref = _timed(ref, f"rsatoolbox: RDMs + eval ({method}, subset)")
        ours = row["sl"].score_map_[sub, 0]
        row.update(t_ref_nb=t_ref_nb, t_ref_map=t_sub / len(sub) * len(centers),
                   t_ref_sub=t_sub, peak_ref=m_ref,
                   err=float(np.nanmax(np.abs(ours - values))))
    # FWE with 100 permutations (ours)
    _, t_perm, m_perm = _timed(lambda: Searchlight(
        neighbourhoods=nb, model_rdms=model, n_permutations=100, random_state=0,
        backend=args.backend, device=args.device).fit(X), "ours: 100 permutations")
    # encoding searchlight
    F = r.normal(size=(n, 20))
    _, t_enc, m_enc = _timed(lambda: Searchlight(
        "encoding", neighbourhoods=nb, backend=args.backend, device=args.device).fit(X, F),
        "ours: encoding")
    return dict(mask=int(mask.sum()), n_centres=len(nb), size=int(np.median(nb.sizes)),
                rows=rows, t_perm=t_perm, m_perm=m_perm, t_enc=t_enc, m_enc=m_enc)


def bench_surface(args):
    from nilearn.datasets import load_fsaverage

    from neuroprobe.rsa import compute_rdm
    from neuroprobe.searchlight import Searchlight, load_mesh, surface_neighbourhoods
    from neuroprobe.searchlight.spaces import concat_neighbourhoods

    pial = load_fsaverage("fsaverage5")["pial"]
    meshes = [load_mesh(pial.parts[h]) for h in ("left", "right")]
    n_lh = meshes[0][0].shape[0]

    def neighbourhoods():
        parts = [(surface_neighbourhoods(c, f, 10.0), np.arange(len(c)) + off)
                 for (c, f), off in zip(meshes, (0, n_lh))]
        return concat_neighbourhoods(parts, n_lh + meshes[1][0].shape[0])

    nb, t_nb, m_nb = _timed(neighbourhoods, "ours: fsaverage5 discs")
    r = np.random.default_rng(1)
    X = r.normal(size=(92, nb.shape[0])).astype(np.float32)
    model = compute_rdm(r.normal(size=(92, 10)))
    _, t_map, m_map = _timed(lambda: Searchlight(
        neighbourhoods=nb, model_rdms=model, backend=args.backend, device=args.device).fit(X),
        "ours: fsaverage5 map")
    return dict(n=nb.shape[0], size=int(np.median(nb.sizes)), t_nb=t_nb, t_map=t_map,
                peak=max(m_nb, m_map))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref-centres", type=int, default=300)
    p.add_argument("--backend", default="numpy")
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip-ref-neighbourhoods", action="store_true",
                   help="do not time rsatoolbox's get_volume_searchlight (use ours)")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    from benchmarks._results import machine, write_section

    load = os.getloadavg()
    vol = bench_volume(args)
    surf = bench_surface(args)
    lines = [
        f"Machine: {machine()}; backend {args.backend} ({args.device}); load average "
        f"{load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (2 shared cores: "
        "absolute times are noisy, ratios are from the same run).",
        "",
        f"Volume RSA searchlight: 64x64x40 grid, ellipsoid mask of {vol['mask']} voxels "
        f"(= {vol['n_centres']} centres), radius 3 voxels (median {vol['size']} voxels per "
        "sphere, mask-restricted), 92 conditions, correlation-distance RDMs, float32 data. "
        f"rsatoolbox's RDM + evaluation steps timed on {args.ref_centres} random centres and "
        "extrapolated per centre to all centres; its neighbourhoods on the whole mask.",
        "",
        "| comparison | neuroprobe neighbourhoods + map (s) | rsatoolbox neighbourhoods + "
        "RDMs/eval, extrapolated (s) | ratio | max abs diff | peak traced MiB (ours / "
        "rsatoolbox subset) |",
        "|---|---|---|---|---|---|",
    ]
    for method, row in vol["rows"].items():
        ours = row["t_nb"] + row["t_map"]
        ref = row["t_ref_nb"] + row["t_ref_map"]
        lines.append(
            f"| {method} | {row['t_nb']:.1f} + {row['t_map']:.1f} = {ours:.1f} | "
            f"{row['t_ref_nb']:.1f} + {row['t_ref_map']:.0f} = {ref:.0f} "
            f"({row['t_ref_sub']:.1f} s for {args.ref_centres} centres) | "
            f"**{ref / ours:.0f}x** (map alone {row['t_ref_map'] / row['t_map']:.0f}x) | "
            f"{row['err']:.1e} | {row['peak']:.0f} / {row['peak_ref']:.0f} |")
    lines += [
        "",
        f"- Spearman with 100 stimulus permutations (max-statistic FWE over all centres; the "
        f"model RDM is permuted, nothing refitted): {vol['t_perm']:.1f} s, peak "
        f"{vol['m_perm']:.0f} MiB.",
        f"- Encoding searchlight (ridge alpha=1, 5-fold, 20 features, pooled R2 per sphere): "
        f"{vol['t_enc']:.1f} s for all centres, peak {vol['m_enc']:.0f} MiB.",
        f"- fsaverage5 surface searchlight: {surf['n']} vertices (both hemispheres, pial), "
        f"10 mm geodesic discs (median {surf['size']} vertices), 92 conditions: neighbourhoods "
        f"{surf['t_nb']:.1f} s + map {surf['t_map']:.1f} s, peak {surf['peak']:.0f} MiB.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("searchlight", "## searchlight (issue 17, section 5)\n\n" + text)


if __name__ == "__main__":
    main()
