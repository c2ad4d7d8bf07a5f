"""``neuroprobe demo``: the embedded study end to end (no download, no data needed)."""

from __future__ import annotations

import argparse

from neuroprobe.cli.main import CLIError, add_common_arguments

EPILOG = """\
example:
  neuroprobe demo --out neuroprobe_demo           # full study, under a minute on 2 CPU cores
  neuroprobe demo --out /tmp/demo --quick         # smaller study, about 10 seconds

The study: generated shape pictures -> a small CNN trained for a few seconds -> simulated fMRI
responses of several subjects driven by ONE known layer (conv3), written as NIfTI -> extraction of
every layer, PCA, decoding, voxelwise encoding with permutation p-values, RSA with a noise
ceiling, top stimuli and saliency. Writes report.html / report.md with PNG figures and
results.json, and prints a summary naming the layer the study recovered (exit status 3 if it
is not the planted layer).
"""


def register(subparsers):
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser(
        "demo",
        help="run a complete study on generated data and write an HTML/Markdown report",
        description="Run a complete neuroprobe study on generated stimuli, a small trained "
        "network and simulated brains; write a report with figures.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(p, out=True, out_required=False)
    p.set_defaults(out="neuroprobe_demo")
    p.add_argument("--quick", action="store_true",
                   help="fewer stimuli, subjects and permutations (under 30 s)")
    p.add_argument("--embed-images", action="store_true",
                   help="embed the figures in report.html (one self-contained file)")
    p.set_defaults(func=run)


def run(args):
    """Run the demo study; print its summary."""
    from pathlib import Path

    from neuroprobe.demo import run_demo

    if args.device not in ("cpu", "auto"):
        raise CLIError(f"--device {args.device}: the demo runs on the CPU (use --device cpu)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out}: exists and is not a folder")
    result = run_demo(out, quick=args.quick, seed=args.seed, n_jobs=args.n_jobs,
                      verbose=not args.quiet, embed_images=args.embed_images)
    if args.quiet:
        print(result["summary"])
    print(f"report: {result['paths']['report_html']}")
    return 0 if result["recovered_layer"] == result["planted_layer"] else 3
