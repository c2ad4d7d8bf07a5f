"""Benchmark of ``neuroprobe demo``: wall time against its budget, robustness across seeds.

Usage (from the repository root)::

    python benchmarks/bench_demo.py            # full demo, seeds 0-2, plus the quick demo
    python benchmarks/bench_demo.py --quick    # the quick demo, seed 0 only
    python benchmarks/bench_demo.py --no-write # print, do not touch RESULTS.md

Each run happens in a fresh subprocess (``python -m neuroprobe demo``), as a user would start it,
so the times include Python/torch start-up. Budgets (issue 8): full demo <= 180 s and
``--quick`` < 30 s on 2 CPU cores. There is no reference tool for this benchmark: the ratio
reported is time / budget. The per-step times come from the demo's ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._results import machine, write_section  # noqa: E402

BUDGET = {False: 180.0, True: 30.0}


def run(quick, seed, folder):
    out = Path(folder) / f"demo_{'quick' if quick else 'full'}_{seed}"
    cmd = [sys.executable, "-m", "neuroprobe", "demo", "--out", str(out), "--seed", str(seed),
           "--quiet"] + (["--quick"] if quick else [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    res = json.loads((out / "results.json").read_text())
    return {
        "mode": "quick" if quick else "full", "seed": seed, "wall": wall, "cpu": cpu,
        "rss_mb": after.ru_maxrss / 1024, "recovered": res["recovered_layer"],
        "rsa_best": res["rsa_best_layer"], "planted": res["planted_layer"],
        "enc": res["encoding_score"], "rsa": res["rsa_score"], "timings": res["timings"],
        "command": " ".join(["neuroprobe"] + cmd[3:]),
    }


def _margin(scores, planted):
    others = [v for k, v in scores.items() if k != planted]
    return scores[planted] - max(others)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="quick demo, one seed (~20 s)")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args(argv)

    plan = [(True, 0)] if args.quick else [(False, 0), (False, 1), (False, 2), (True, 0)]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for quick, seed in plan:
            r = run(quick, seed, folder)
            rows.append(r)
            print(f"{r['mode']:5} seed {seed}: {r['wall']:6.1f} s wall, {r['cpu']:6.1f} s CPU, "
                  f"recovered {r['recovered']} (RSA {r['rsa_best']}, planted {r['planted']}), "
                  f"encoding margin {_margin(r['enc'], r['planted']):.2f}, "
                  f"RSA margin {_margin(r['rsa'], r['planted']):.2f}", flush=True)
    lines = [
        f"Machine: {machine()}. The machine is shared with other jobs, so wall times vary; CPU "
        "time is the sum over the demo process (user + system).",
        "",
        "| mode | seed | wall (s) | budget (s) | wall / budget | CPU (s) | peak RSS (MiB) | "
        "recovered (encoding / RSA) | planted | encoding margin | RSA margin |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for r in rows:
        budget = BUDGET[r["mode"] == "quick"]
        lines.append(
            f"| {r['mode']} | {r['seed']} | {r['wall']:.1f} | {budget:.0f} | "
            f"{r['wall'] / budget:.2f} | {r['cpu']:.1f} | {r['rss_mb']:.0f} | "
            f"{r['recovered']} / {r['rsa_best']} | {r['planted']} | "
            f"{_margin(r['enc'], r['planted']):.2f} | {_margin(r['rsa'], r['planted']):.2f} |"
        )
    steps = rows[0]["timings"]
    lines += [
        "",
        "Margins: score of the planted layer minus the best other layer (mean CV correlation for "
        "encoding, mean Spearman over subjects for RSA).",
        "",
        f"Steps of the first run ({rows[0]['mode']}, seed {rows[0]['seed']}), seconds: "
        + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()) + ".",
        "",
        "Commands: " + "; ".join(f"`{r['command']}`" for r in rows)
        + ". Script: `python benchmarks/bench_demo.py" + (" --quick`" if args.quick else "`") + ".",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("demo", "## neuroprobe demo\n\n" + text)
    bad = [r for r in rows if r["recovered"] != r["planted"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
