"""Run every benchmark and refresh ``benchmarks/RESULTS.md``.

Usage (from the repository root)::

    python benchmarks/run.py            # every benchmark at full size (long)
    python benchmarks/run.py --quick    # every benchmark at tiny sizes (smoke run)
    python benchmarks/run.py --only scaling rsa

Each ``benchmarks/bench_*.py`` script runs in its own subprocess (``--quick`` passed through) and
writes its own section of RESULTS.md; its output goes to ``benchmarks/_out/<name>.log``. A failing
script is reported and the others still run. Afterwards this script rewrites the header of
RESULTS.md (machine, library versions, date, which scripts ran, how long, whether they succeeded)
and draws the scaling plots (``benchmarks/scaling_*.png``) from ``benchmarks/scaling.json``, the
curves written by ``bench_scaling.py``. ``benchmarks/gpu_check.py`` is not run here (it needs a
CUDA machine); it writes the ``gpu`` section itself.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LIBRARIES = ("numpy", "scipy", "scikit-learn", "torch", "torchvision", "himalaya", "rsatoolbox",
             "h5py", "nibabel", "joblib", "dask", "distributed")
SECTION_MARK = "<!-- section:"


def scripts(only=None):
    """The benchmark scripts, by name (``bench_<name>.py``)."""
    found = {p.stem[len("bench_"):]: p for p in sorted(HERE.glob("bench_*.py"))}
    if only:
        unknown = sorted(set(only) - set(found))
        if unknown:
            raise SystemExit(f"unknown benchmark(s) {unknown}; available: {sorted(found)}")
        found = {k: v for k, v in found.items() if k in only}
    return found


def versions():
    out = []
    for name in LIBRARIES:
        try:
            out.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def run_one(name, path, quick, timeout):
    """Run one script; return (status, seconds)."""
    log_dir = HERE / "_out"
    log_dir.mkdir(exist_ok=True)
    cmd = [sys.executable, str(path)] + (["--quick"] if quick else [])
    print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    with open(log_dir / f"{name}.log", "w") as log:
        try:
            rc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                timeout=timeout).returncode
            status = "ok" if rc == 0 else f"failed (exit {rc})"
        except subprocess.TimeoutExpired:
            status = f"timed out after {timeout:.0f}s"
    seconds = time.perf_counter() - t0
    print(f"   {status} in {seconds:.0f}s (log: benchmarks/_out/{name}.log)", flush=True)
    return status, seconds


def make_plots():
    """Scaling plots from scaling.json (see bench_scaling.py); returns the PNG paths."""
    import json

    curves_path = HERE / "scaling.json"
    if not curves_path.exists():
        return []
    sys.path.insert(0, str(HERE))
    from bench_scaling import plot_curves

    return plot_curves(json.loads(curves_path.read_text()), HERE)


def header(results, quick, pngs):
    from benchmarks._results import machine

    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        "# neuroprobe benchmark results",
        "",
        "Each section below is written by its benchmark script (`python benchmarks/bench_*.py`); "
        "`python benchmarks/run.py [--quick]` runs them all and rewrites this header. Figures are "
        "ratios against a reference tool measured in the same run. The `gpu` section comes from "
        "`benchmarks/gpu_check.py` on a CUDA machine.",
        "",
        f"Last `benchmarks/run.py{' --quick' if quick else ''}`: {now:%Y-%m-%d %H:%M} UTC.",
        "",
        f"Machine: {machine()}. This machine is shared with other jobs while the benchmarks "
        "run: absolute times are noisy; read the ratios.",
        "",
        f"Libraries: {versions()}.",
        "",
        "| benchmark | status | run time (s) |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {status} | {sec:.0f} |" for name, (status, sec) in results.items()]
    if pngs:
        lines += ["", "Scaling plots (from `bench_scaling.py`):", ""]
        lines += [f"![{p.stem}]({p.name})" for p in pngs]
    return "\n".join(lines) + "\n"


def rewrite_header(text):
    """Replace everything before the first section of RESULTS.md with ``text``."""
    from benchmarks._results import RESULTS

    old = RESULTS.read_text() if RESULTS.exists() else ""
    i = old.find(SECTION_MARK)
    body = old[i:] if i >= 0 else ""
    RESULTS.write_text(text + ("\n" + body if body else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes in every script")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these benchmarks (bench_NAME.py)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per script (default 600 with --quick, 5400 without)")
    args = parser.parse_args(argv)
    timeout = args.timeout or (600 if args.quick else 5400)
    results = {}
    for name, path in scripts(args.only).items():
        results[name] = run_one(name, path, args.quick, timeout)
    pngs = []
    try:
        pngs = make_plots()
    except Exception as exc:  # plots are a bonus: report, do not fail the run
        print(f"scaling plots not drawn: {type(exc).__name__}: {exc}", flush=True)
    rewrite_header(header(results, args.quick, pngs))
    failed = [n for n, (s, _) in results.items() if s != "ok"]
    print(f"RESULTS.md header rewritten; {len(results) - len(failed)}/{len(results)} benchmarks "
          f"ok{'; failed: ' + ', '.join(failed) if failed else ''}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
