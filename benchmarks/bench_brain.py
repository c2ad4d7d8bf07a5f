"""Brain IO benchmark: a small ROI out of a large 4-D NIfTI, BrainMasker vs whole-file loads.

Each method runs in its own subprocess so that its peak RSS is its own. References: nibabel's
``get_fdata()`` (float64 whole load, the common idiom), ``np.asarray(img.dataobj)`` (whole load in
the stored dtype) and nilearn's ``NiftiMasker`` when nilearn is installed (optional). Also times
``HRFConvolver`` against a per-feature ``np.convolve`` loop. Writes the ``brain`` section of
RESULTS.md.

Usage: ``python benchmarks/bench_brain.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _results import machine, write_section  # noqa: E402


def peak_rss_mb():
    """Peak RSS of this process image (VmHWM, reset at exec, unlike ru_maxrss which a child
    inherits from its parent) in MiB."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(ln.split()[1]) / 1024 for ln in fh if ln.startswith("VmHWM"))
    except (OSError, StopIteration):  # pragma: no cover - not Linux
        from _results import peak_rss_mb as fallback

        return fallback()


def _worker(method, data_path, mask_path):
    import nibabel as nib

    if method == "BrainMasker":
        from neuroprobe.transformers.brain import BrainMasker
    elif method == "nilearn NiftiMasker":
        from nilearn.maskers import NiftiMasker
    base = peak_rss_mb()
    mask = np.asarray(nib.load(mask_path).dataobj).astype(bool)
    t0 = time.perf_counter()
    if method == "BrainMasker":
        Y = BrainMasker(mask_path).fit(None).transform(data_path)
    elif method == "nibabel get_fdata":
        Y = nib.load(data_path).get_fdata()[mask].T
    elif method == "nibabel dataobj (whole)":
        Y = np.asarray(nib.load(data_path).dataobj)[mask].T
    elif method == "nilearn NiftiMasker":
        Y = NiftiMasker(mask_path).fit().transform(data_path)
    else:
        raise ValueError(method)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "peak_mb": peak_rss_mb(), "base_mb": base,
                      "checksum": float(np.asarray(Y, np.float64).sum()), "shape": Y.shape}))


def _run(method, data_path, mask_path, in_process=False):
    if in_process:  # --quick: no subprocess start-up; RSS is not per method
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            _worker(method, str(data_path), str(mask_path))
        result = json.loads(buf.getvalue().strip().splitlines()[-1])
        result["peak_mb"] = result["base_mb"] = float("nan")
        return result
    out = subprocess.run(
        [sys.executable, __file__, "--worker", method, str(data_path), str(mask_path)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _hrf_bench(n_events, n_features, n_scans):
    from neuroprobe.transformers import HRFConvolver
    from neuroprobe.transformers.hrf import spm_hrf

    rng = np.random.default_rng(0)
    tr, ov = 2.0, 50
    onsets = np.sort(rng.uniform(0, n_scans * tr - 40, n_events))
    feats = rng.standard_normal((n_events, n_features)).astype(np.float32)
    t0 = time.perf_counter()
    X = HRFConvolver(tr, n_scans, onsets=onsets, durations=np.ones(n_events),
                     oversampling=ov).fit_transform(feats)
    ours = time.perf_counter() - t0
    # reference: boxcar per feature on the fine grid, np.convolve, sample at scans
    t0 = time.perf_counter()
    dt = tr / ov
    h = spm_hrf(dt)
    n_fine = n_scans * ov
    a = np.rint(onsets / dt).astype(int)
    b = np.maximum(np.rint((onsets + 1.0) / dt).astype(int), a + 1)
    ref = np.empty_like(X)
    for f in range(n_features):
        box = np.zeros(n_fine)
        for e in range(n_events):
            box[a[e] : b[e]] += feats[e, f]
        ref[:, f] = np.convolve(box, h)[: n_fine : ov]
    naive = time.perf_counter() - t0
    assert np.allclose(X, ref, rtol=1e-3, atol=1e-4)
    return ours, naive


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a few seconds)")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(*args.worker)
    import nibabel as nib

    shape = (32, 32, 20, 40) if args.quick else (80, 80, 48, 150)
    roi = 4 if args.quick else 6
    methods = ["BrainMasker", "nibabel get_fdata", "nibabel dataobj (whole)"]
    try:
        import nilearn  # noqa: F401

        methods.append("nilearn NiftiMasker")
    except ImportError:
        pass
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        data = rng.standard_normal(shape).astype(np.float32)
        affine = np.diag([2.0, 2.0, 2.0, 1.0])
        mask = np.zeros(shape[:3], np.uint8)
        c = [s // 2 for s in shape[:3]]
        mask[c[0] : c[0] + roi, c[1] : c[1] + roi, c[2] : c[2] + roi] = 1
        mask_path = Path(tmp) / "roi.nii"
        nib.Nifti1Image(mask, affine).to_filename(mask_path)
        suffixes = (".nii",) if args.quick else (".nii", ".nii.gz")
        for suffix in suffixes:
            nib.Nifti1Image(data, affine).to_filename(Path(tmp) / f"bold{suffix}")
        del data  # keep the parent small while the workers run
        for suffix in suffixes:
            path = Path(tmp) / f"bold{suffix}"
            size_mb = path.stat().st_size / 2**20
            results = {m: _run(m, path, mask_path, args.quick) for m in methods}
            sums = {round(r["checksum"], 1) for r in results.values()}
            assert len(sums) == 1, f"methods disagree: {results}"
            ref = results["nibabel get_fdata"]
            for m, r in results.items():
                rows.append(
                    f"| {suffix} ({size_mb:.0f} MB) | {m} | {r['seconds']:.3f} | "
                    f"{ref['seconds'] / r['seconds']:.2f}x | {r['peak_mb'] - r['base_mb']:.0f} | "
                    f"{r['peak_mb']:.0f} |"
                )
    n_ev, n_feat, n_scans = (40, 200, 100) if args.quick else (200, 4096, 400)
    ours, naive = _hrf_bench(n_ev, n_feat, n_scans)
    md = [
        "## Brain IO (BrainMasker) and HRF convolution",
        "",
        f"Machine: {machine()} (shared, loaded by other jobs: timings are noisy).",
        f"Command: `python benchmarks/bench_brain.py{' --quick' if args.quick else ''}`",
        "",
        f"ROI of {roi}x{roi}x{roi} voxels out of a 4-D float32 NIfTI of shape {shape}; "
        + ("--quick: all methods in one process, RSS not measured. " if args.quick else
           "each method in its own subprocess. ")
        + "'speed-up' is relative to nibabel get_fdata; 'extra RSS' is the peak RSS minus the "
        "RSS after imports.",
        "",
        "| file | method | seconds | speed-up | extra RSS (MiB) | peak RSS (MiB) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        ("nilearn is not installed here, so NiftiMasker is not measured."
         if "nilearn NiftiMasker" not in methods else ""),
        "",
        f"HRFConvolver, {n_ev} events x {n_feat} features -> {n_scans} scans (SPM HRF, "
        f"oversampling 50): {ours:.3f} s vs {naive:.3f} s for a per-feature np.convolve loop "
        f"({naive / ours:.0f}x).",
    ]
    text = "\n".join(md)
    write_section("brain", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
