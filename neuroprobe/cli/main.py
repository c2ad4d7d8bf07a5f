"""Entry point of the ``neuroprobe`` command line."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import time

import neuroprobe.cli as _cli_pkg
from neuroprobe._version import __version__
from neuroprobe.exceptions import CLIError  # noqa: F401 (re-exported)


def add_common_arguments(parser, *, out=True, out_required=True):
    """Add the flags every subcommand shares: --out, --n-jobs, --device, --seed, --debug.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    out : bool
        Whether the subcommand writes output (adds ``--out``).
    out_required : bool
        Whether ``--out`` is required.
    """
    if out:
        parser.add_argument("--out", required=out_required, help="output file or folder")
    parser.add_argument("--n-jobs", type=int, default=None, help="parallel jobs (joblib)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser():
    """Build the argument parser from every command module of :mod:`neuroprobe.cli`."""
    parser = argparse.ArgumentParser(
        prog="neuroprobe",
        description="Map the representations of deep neural networks onto brains.",
        epilog="Run 'neuroprobe COMMAND --help' for the options and an example of each command.",
    )
    parser.add_argument("--version", action="version", version=f"neuroprobe {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(_cli_pkg.__path__), key=lambda m: m.name):
        if info.name in ("main",) or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"neuroprobe.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


#: Accepted ``--out`` endings per command, checked before the command runs (commands that write
#: a folder are in ``FOLDER_OUTPUTS``; the others are checked for a writable folder only).
OUT_SUFFIXES = {
    "extract": (".h5", ".hdf5"),
    "words": (".h5", ".hdf5"),
    "reduce": (".npz",),
    "probe": (".csv",),
    "decode": (".csv",),
    "rdm": (".h5", ".hdf5"),
    "rsa": (".csv",),
    "roi": (".h5", ".hdf5", ".csv"),
    "hrf": (".h5", ".hdf5", ".csv"),
    "partition": (".csv",),
    "compare": (".csv",),
}
FOLDER_OUTPUTS = {
    "demo", "topstim", "saliency", "optstim", "rf", "minstim", "ablate", "finetune", "view",
    "report",
}


def check_out(args):
    """Check ``--out`` (suffix, folder exists or can be made, writable) before any computation."""
    from neuroprobe._utils import check_output_folder, check_output_path

    out = getattr(args, "out", None)
    if out is None:
        return
    if args.command in FOLDER_OUTPUTS:
        check_output_folder(out)
    else:
        check_output_path(out, OUT_SUFFIXES.get(args.command))


def _one_line(exc):
    """The message of ``exc`` on one line: every line kept (the cause of an I/O error is often on
    the second one), whitespace collapsed; for KeyError the text without its quotes."""
    text = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)
    lines = [" ".join(line.split()) for line in str(text).strip().splitlines()]
    return " ".join(line for line in lines if line) or type(exc).__name__


def add_command(subparsers, name, func=None, common=None, **kwargs):
    """A subcommand parser whose description and epilog keep their line breaks.

    ``func`` is the function the command runs; ``common`` (a dict of keyword arguments, ``{}``
    for the defaults) adds the shared flags of :func:`add_common_arguments`.
    """
    import argparse

    p = subparsers.add_parser(name, formatter_class=argparse.RawDescriptionHelpFormatter,
                              **kwargs)
    if common is not None:
        add_common_arguments(p, **common)
    if func is not None:
        p.set_defaults(func=func)
    return p


def weights_argument(value):
    """``--weights``: None for ``none`` / ``random`` (random weights), else the value."""
    if value is None or str(value).lower() in ("none", "random"):
        return None
    return value


def load_stimuli(path, what="--stimuli"):
    """The :class:`~neuroprobe.stimuli.StimulusSet` of a CSV, a folder, a DNNBrain ``.stim.csv``
    or an image file (:func:`neuroprobe.stimuli.as_stimulus_set`), refusing a missing path."""
    import os

    from neuroprobe.stimuli import as_stimulus_set

    if not os.path.exists(path):
        raise CLIError(f"{what} {path!r}: no such file or folder")
    return as_stimulus_set(os.path.abspath(path))


def from_io(func, *args, **kwargs):
    """``func(*args, **kwargs)`` with a file-reading error (``ValueError``, ``KeyError``,
    ``FileNotFoundError``) re-raised as a :class:`CLIError` with the same message."""
    try:
        return func(*args, **kwargs)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise CLIError(str(message)) from None


def _record(args, argv, seconds):
    """Record the finished command in its output folder's provenance file (what ``neuroprobe
    report`` reads to say which command made a file and to write its methods text)."""
    from neuroprobe.report.provenance import record_command

    out = getattr(args, "out", None)
    if out is None:
        return
    is_folder = args.command in FOLDER_OUTPUTS or os.path.isdir(out)
    record_command(args, argv, seconds=seconds, is_folder=is_folder)


def main(argv=None):
    """Run the command line; return the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    debug = args.debug or "--debug" in argv
    from neuroprobe._progress import progress_enabled, set_progress

    progress_before = progress_enabled()
    if getattr(args, "quiet", False):
        set_progress(False)  # --quiet: no bar anywhere, restored when the command ends
    try:
        check_out(args)
        started = time.perf_counter()
        result = args.func(args)
        _record(args, argv, time.perf_counter() - started)
    except KeyboardInterrupt:
        print("neuroprobe: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one-line message is the contract
        if debug:
            raise
        text = _one_line(exc)
        print(f"neuroprobe {args.command}: error: {type(exc).__name__}: {text}", file=sys.stderr)
        if getattr(exc, "hdf5_failed", False):
            # HDF5 failed in the middle of a write (disk full, file-size limit): it cannot close
            # that file, and its exit handler would crash the interpreter (segmentation fault).
            # The message is out; end the process without the library's teardown.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        return 1
    finally:
        set_progress(progress_before)
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
