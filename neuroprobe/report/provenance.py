"""What produced each file of a results folder: the command, its parameters, the versions.

Every ``neuroprobe`` command that writes ``--out`` records itself in
``neuroprobe_provenance.json`` in the folder of its output (the output folder itself for commands
that write a folder): the command line as typed, every parsed parameter (defaults included: the
values actually used), the versions of neuroprobe and of the libraries that computed the numbers,
the date and the run time. :func:`neuroprobe.report.build` reads it to say which command produced
each section and to write the methods text from the parameters actually used.

A record is keyed by its output's file name, so re-running a command into the same ``--out``
replaces its record. The file is rewritten whole through a temporary file and a rename; two
commands finishing at the same instant in one folder may lose one record (the outputs are
unaffected).

Examples
--------
>>> from neuroprobe.report.provenance import read_provenance
>>> records = read_provenance("results/")  # doctest: +SKIP
>>> records["fc1_r.nii.gz"]["argv"]  # doctest: +SKIP
['encode', 'acts.act.h5', '--layer', 'fc1', ...]
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import sys
from importlib import metadata as _metadata
from pathlib import Path

from neuroprobe._utils import atomic_path

__all__ = ["PROVENANCE_FILE", "library_versions", "record_command", "read_provenance"]

#: The file name of a folder's provenance records.
PROVENANCE_FILE = "neuroprobe_provenance.json"

#: Distributions whose versions are recorded (those that compute or read the numbers).
LIBRARIES = ("neuroprobe", "numpy", "scipy", "scikit-learn", "torch", "torchvision", "nibabel",
             "h5py", "timm", "transformers", "open_clip_torch", "mne", "nilearn")


def library_versions(names=LIBRARIES):
    """``{distribution: version}`` of the installed ``names`` (absent ones left out), plus
    ``python``."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = _metadata.version(name)
        except _metadata.PackageNotFoundError:
            continue
    if "neuroprobe" not in out:  # running from a source tree that is not installed
        from neuroprobe._version import __version__

        out["neuroprobe"] = __version__
    return out


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _location(out, is_folder):
    out = Path(out).resolve()
    return (out, ".") if is_folder else (out.parent, out.name)


def record_command(args, argv, *, seconds=None, is_folder=False):
    """Record one finished command in its output folder's provenance file.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments (``args.command`` and ``args.out`` are used; every other
        attribute except callables is stored).
    argv : list of str
        The command line as given (without the program name).
    seconds : float, optional
        The command's run time.
    is_folder : bool
        ``--out`` is a folder (its record lives inside it, keyed ``"."``).

    Returns
    -------
    pathlib.Path or None
        The provenance file, or None when the command wrote no ``--out``.
    """
    out = getattr(args, "out", None)
    if out is None:
        return None
    folder, key = _location(out, is_folder)
    if not folder.is_dir():
        return None
    params = {k: _jsonable(v) for k, v in vars(args).items()
              if not callable(v) and k not in ("func",)}
    record = {
        "command": getattr(args, "command", None),
        "argv": [str(a) for a in argv],
        "parameters": params,
        "versions": library_versions(),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": None if seconds is None else round(float(seconds), 3),
        "platform": f"{platform.system()} {platform.machine()}, Python {sys.version.split()[0]}",
    }
    path = folder / PROVENANCE_FILE
    records = read_provenance(folder) if path.is_file() else {}
    records[key] = record
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_provenance(folder):
    """The provenance records of ``folder``: ``{output file name: record}`` (``{}`` if none).

    Raises
    ------
    ValueError
        The file exists but is not a provenance file (the message names it).
    """
    path = Path(folder) / PROVENANCE_FILE
    if not path.is_file():
        return {}
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a neuroprobe provenance file ({exc})") from None
    if not isinstance(records, dict):
        raise ValueError(f"{path}: expected a JSON object keyed by output file name")
    return records
