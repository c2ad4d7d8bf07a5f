"""``neuroprobe report``: one HTML + Markdown report of a folder of neuroprobe outputs."""

from __future__ import annotations

from neuroprobe.cli.main import add_command
from neuroprobe.exceptions import CLIError

EPILOG = """\
example:
  neuroprobe extract --model alexnet --layers conv3 fc6 --stimuli stim.csv --out res/acts.act.h5
  neuroprobe rdm res/acts.act.h5 --out res/dnn.rdm.h5
  neuroprobe rsa --model res/dnn.rdm.h5 --target brain.rdm.h5 --out res/rsa.csv
  neuroprobe report res                   # -> res/report/report.html and report.md

The report has one section per output it recognises (activation files, RDM files, the maps of
'encode', the tables of 'probe', 'decode' and 'rsa'), each with its figures (PNG, with the
numbers beside them as CSV), the command that produced it and a methods paragraph written from
the parameters actually used; then the methods text in one place, the software versions and the
references to cite. The HTML embeds its figures: it opens offline and wherever it is moved.
"""


def register(subparsers):
    """Add the ``report`` subcommand."""
    p = add_command(
        subparsers, "report", run,
        help="one HTML/Markdown report (figures, methods text, references) of a results folder",
        description="Assemble the outputs of neuroprobe commands in RESULTS_DIR into one "
        "self-contained HTML file and a Markdown file, with generated methods text.",
        epilog=EPILOG, common={"out_required": False},
    )
    p.add_argument("results_dir", help="folder holding the outputs of neuroprobe commands")
    p.add_argument("--title", default=None, help="report title")
    p.add_argument("--link-images", action="store_true",
                   help="link the PNG files from the HTML instead of embedding them")


def run(args):
    """Build the report; print what was written."""
    from pathlib import Path

    from neuroprobe.exceptions import ReportError
    from neuroprobe.report import build

    if not Path(args.results_dir).is_dir():
        raise CLIError(f"RESULTS_DIR {args.results_dir}: not a folder")
    try:
        paths = build(args.results_dir, args.out, title=args.title,
                      embed_images=not args.link_images)
    except ReportError as exc:
        raise CLIError(str(exc)) from None
    if args.quiet:
        print(paths["html"])
        return 0
    folder = Path(paths["figures"][0]).parent if paths["figures"] else None
    print(f"{len(paths['sections'])} sections, {len(paths['figures'])} figures; wrote "
          f"{paths['html']} and {paths['markdown']}"
          + (f" (figures and their numbers in {folder})" if folder else ""))
    return 0
