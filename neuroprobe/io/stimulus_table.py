"""Stimulus tables (CSV / TSV): parse the text into typed columns, and format cells back.

This is the file format under :meth:`neuroprobe.StimulusSet.from_csv` and
:meth:`~neuroprobe.StimulusSet.write_csv` (and the DNNBrain importer,
:mod:`neuroprobe.io.dnnbrain`). It returns columns -- lists of text cells and numpy arrays --
never a ``StimulusSet``: building the set (ids, paths, modality, files) is the job of
:mod:`neuroprobe.stimuli`, which sits above ``io``.

Typing rule of :func:`parse_column` (the format of the stimulus CSV): a column whose non-empty
cells are all integers becomes ``int64`` (``float64`` with NaN when it has empty cells); all
numbers -> ``float64`` with NaN for empty cells; anything else stays text (``str``, empty cells
-> ``""``). A column with no value at all is float NaN. ``force_float`` columns (``onset``,
``duration``) must be numeric.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroprobe.exceptions import StimulusError

__all__ = ["StimulusTable", "format_cell", "listing", "parse_column", "parse_columns",
           "read_table", "text_array", "write_table"]

N_LISTED = 5  # how many offending items an error message lists

INT_RE = re.compile(r"^[+-]?\d+$")
FLOAT_RE = re.compile(
    r"^[+-]?((\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|nan|inf|infinity)$", re.IGNORECASE
)


def listing(items, n=N_LISTED):
    """``'a', 'b', ... (3 more)``: the first ``n`` items of an error message."""
    items = [str(i) for i in items]
    shown = ", ".join(repr(i) for i in items[:n])
    return shown + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def text_array(values):
    """A ``str`` numpy array of ``values`` (an empty one for no values)."""
    return np.array([str(v) for v in values], dtype=str) if len(values) else np.array([], dtype=str)


def parse_column(name, cells, *, force_float=False, source=None, lines=None):
    """Turn a list of stripped text cells into an int64, float64 or str array (module doc).

    Parameters
    ----------
    name : str
        Column name (for the error message).
    cells : list of str
    force_float : bool, default=False
        The column must be numeric: float64, or a :class:`~neuroprobe.exceptions.StimulusError`
        naming the first non-numeric cell.
    source : str, optional
        File name for the error message.
    lines : list of int, optional
        Line number of each cell (else the message gives the row).

    Returns
    -------
    ndarray
    """
    nonempty = [c for c in cells if c != ""]
    if not nonempty:
        return np.full(len(cells), np.nan)
    if not force_float and all(INT_RE.match(c) for c in nonempty):
        if len(nonempty) == len(cells):
            try:
                return np.array([int(c) for c in cells], dtype=np.int64)
            except OverflowError:
                pass
        return np.array([float(c) if c != "" else np.nan for c in cells], dtype=np.float64)
    if all(FLOAT_RE.match(c) for c in nonempty):
        return np.array([float(c) if c != "" else np.nan for c in cells], dtype=np.float64)
    if force_float:
        bad = next(i for i, c in enumerate(cells) if c != "" and not FLOAT_RE.match(c))
        where = f"line {lines[bad]}" if lines is not None else f"row {bad}"
        raise StimulusError(
            f"{source or 'stimulus table'}: column {name!r} must be numeric (seconds); "
            f"{where} has {cells[bad]!r}"
        )
    return text_array(cells)


def parse_columns(columns, *, float_columns=(), source=None, lines=None):
    """:func:`parse_column` over a dict ``name -> cells``; ``float_columns`` are forced float."""
    return {
        name: parse_column(
            name, cells, force_float=name in float_columns, source=source, lines=lines
        )
        for name, cells in columns.items()
    }


def format_cell(value):
    """One cell of a written table: NaN as empty, floats at full precision (``repr``)."""
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else repr(float(value))
    if isinstance(value, (np.integer, np.bool_)):
        return str(value.item())
    return str(value)


@dataclass
class StimulusTable:
    """The text of a stimulus table: ``columns`` (header order, name -> stripped cells) and the
    file line of each row (``lines``), read from ``source``."""

    columns: dict
    lines: list
    source: str


def _header(reader, source, required):
    header = None
    for row in reader:
        if any(cell.strip() for cell in row):
            header = [cell.strip() for cell in row]
            break
    if header is None:
        raise StimulusError(f"{source}: the stimulus CSV is empty (no header row)")
    if header[0].startswith(("type=", "title=", "path=")):
        raise StimulusError(
            f"{source} looks like a DNNBrain .stim.csv file; read it with "
            "neuroprobe.stimuli.read_dnnbrain_stim"
        )
    while header and header[-1] == "":
        header.pop()
    counts = Counter(header)
    dup = [h for h, c in counts.items() if c > 1]
    if dup or "" in counts:
        raise StimulusError(
            f"{source}: header has duplicate or empty column names: {listing(dup or [''])}"
        )
    missing = [c for c in required if c not in counts]
    if missing:
        hint = " (DNNBrain files: use read_dnnbrain_stim)" if "stimID" in counts else ""
        raise StimulusError(
            f"{source}: missing required column(s) {listing(missing)}; found columns "
            f"{listing(header, n=20)}. A stimulus CSV needs "
            f"{' and '.join(repr(c) for c in required)}{hint} (or 'stim_id' and 'text' for "
            "text stimuli)."
        )
    return header


def _rows(reader, source, n_cols):
    rows, lines = [], []
    for row in reader:
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if len(cells) > n_cols and not any(cells[n_cols:]):
            cells = cells[:n_cols]
        if len(cells) != n_cols:
            raise StimulusError(
                f"{source}: line {reader.line_num} has {len(cells)} cells; the header "
                f"has {n_cols} columns"
            )
        rows.append(cells)
        lines.append(reader.line_num)
    return rows, lines


def text_table_required(path, required):
    """The required columns of a stimulus CSV: ``required``, or ``("stim_id", "text")`` for a
    text table (a ``text`` column and no ``path`` column: the cells are the stimuli)."""
    path = Path(path)
    if not path.is_file():
        return tuple(required)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, newline="", encoding="utf-8-sig") as f:
        for row in csv.reader(f, delimiter=delimiter):
            if any(cell.strip() for cell in row):
                header = {cell.strip() for cell in row}
                if "text" in header and "path" not in header:
                    return tuple(c for c in required if c != "path") + ("text",)
                break
    return tuple(required)


def read_table(path, *, required=()):
    """Read a stimulus CSV (``.tsv``: tab-separated) into its text columns.

    Python's ``csv`` module reads it (standard quoting; UTF-8, a byte-order mark is tolerated).
    Cells are stripped; blank lines are skipped; trailing empty cells beyond the header are
    ignored.

    Parameters
    ----------
    path : str or path-like
    required : sequence of str
        Columns that must be present, with no empty cell.

    Returns
    -------
    StimulusTable

    Raises
    ------
    neuroprobe.exceptions.StimulusError
        Missing file, no header, duplicate / empty column names, missing required columns,
        a row with the wrong number of cells (its line), no rows, an empty required cell.
    """
    path = Path(path)
    source = os.fspath(path)
    if not path.is_file():
        raise StimulusError(f"stimulus CSV not found: {source!r}")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = _header(reader, source, required)
        rows, lines = _rows(reader, source, len(header))
    if not rows:
        raise StimulusError(f"{source}: empty stimulus set (the CSV has a header but no rows)")
    columns = {name: [r[j] for r in rows] for j, name in enumerate(header)}
    for name in required:
        empty = [ln for ln, v in zip(lines, columns[name]) if v == ""]
        if empty:
            raise StimulusError(f"{source}: empty {name!r} cell on line(s) {listing(empty)}")
    return StimulusTable(columns, lines, source)


def write_table(path, header, rows):
    """Write ``rows`` (lists of values, formatted by :func:`format_cell`) under ``header``.

    ``.tsv`` is tab-separated, anything else comma-separated; written atomically.
    """
    from neuroprobe._utils import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        writer.writerow(header)
        for row in rows:
            writer.writerow([format_cell(v) for v in row])
