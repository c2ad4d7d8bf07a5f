"""DNNBrain's legacy ``.stim.csv`` stimulus files: parse them into parts.

The format (DNNBrain ``dnnbrain.io.fileio.StimulusFile``)::

    type=image
    path=parent_dir_of_images
    title=optional key=value lines
    data=stimID,onset,duration,label,condition,acc,RT
    pic1.png,0,1,0,cat,0.4,0.5
    sub/pic2.png,1,1,1,dog,0.6,0.4

:func:`read_stim` returns the parts (:class:`DNNBrainStim`); :func:`neuroprobe.stimuli.
read_dnnbrain_stim` builds the ``StimulusSet`` from them (``io`` never imports ``stimuli``).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np

from neuroprobe.exceptions import StimulusError
from neuroprobe.io.stimulus_table import INT_RE, listing, parse_column, text_array

__all__ = ["DNNBrainStim", "read_stim"]

_KINDS = ("image", "video", "audio")
_FLOAT_COLUMNS = ("onset", "duration")


@dataclass
class DNNBrainStim:
    """The parts of a ``.stim.csv`` file.

    Attributes
    ----------
    kind : {"image", "video", "audio"}
        The ``type=`` line.
    info : dict of str -> str
        The header ``key=value`` lines (``type``, ``path``, ``title`` ...).
    root : str
        ``path=`` made absolute: the image folder, or the video file for ``type=video``.
    stim_ids : list of str
        The ``stimID`` cells.
    attributes : dict of str -> ndarray
        The other columns, typed as DNNBrain types them (``label`` int, ``condition`` text, the
        others float, text where not numeric); for ``type=video`` first an int ``frame``.
    lines : list of int
        The file line of each row.
    source : str
    """

    kind: str
    info: dict
    root: str
    stim_ids: list
    attributes: dict
    lines: list
    source: str

    def paths(self):
        """The file of each row: ``stimID`` joined to ``root`` (the video file for video)."""
        if self.kind == "video":
            return [self.root] * len(self.stim_ids)
        rel = [s.replace("\\", "/") if os.sep == "/" else s for s in self.stim_ids]
        return [os.path.normpath(os.path.join(self.root, r)) for r in rel]


def _numbered_lines(source):
    if not os.path.isfile(source):
        raise StimulusError(f"DNNBrain stimulus file not found: {source!r}")
    with open(source, encoding="utf-8-sig", newline="") as f:
        return [(n, line) for n, line in enumerate(f.read().splitlines(), 1) if line.strip()]


def _header_info(lines, data_at, source):
    info = {}
    for n, line in lines[:data_at]:
        if "=" not in line:
            raise StimulusError(f"{source}: line {n} {line!r} is not a key=value header line")
        key, value = line.split("=", 1)
        info[key.strip()] = value.strip()
    for key in ("type", "path"):
        if key not in info:
            raise StimulusError(f"{source}: the header has no {key}= line")
    if info["type"].lower() not in _KINDS:
        raise StimulusError(f"{source}: unsupported type={info['type']!r} (image, video or audio)")
    return info


def _data_rows(lines, data_at, source):
    """(header, rows of stripped cells, their line numbers) after ``data=``."""
    header_text = lines[data_at][1].strip()[len("data="):]
    body = lines[data_at + 1:]
    if not header_text.strip():
        if not body:
            raise StimulusError(f"{source}: no column names after 'data='")
        header_text, body = body[0][1], body[1:]
    header = [h.strip() for h in next(csv.reader([header_text]))]
    if "stimID" not in header:
        raise StimulusError(f"{source}: the data header {header} has no 'stimID' column")
    if len(set(header)) != len(header):
        raise StimulusError(f"{source}: duplicate column names in {header}")
    rows, line_nums = [], []
    for n, cells in zip((n for n, _ in body), csv.reader([line for _, line in body])):
        cells = [c.strip() for c in cells]
        if len(cells) != len(header):
            raise StimulusError(
                f"{source}: line {n} has {len(cells)} cells; 'data=' lists {len(header)} columns"
            )
        rows.append(cells)
        line_nums.append(n)
    if not rows:
        raise StimulusError(f"{source}: empty stimulus set (no rows after 'data=')")
    return header, rows, line_nums


def _typed(columns, source, line_nums):
    """DNNBrain's column types: ``label`` int, ``condition`` text, the others float."""
    attributes = {}
    for name, cells in columns.items():
        if name == "condition":
            attributes[name] = text_array(cells)
        elif name == "label":
            attributes[name] = parse_column(name, cells, source=source, lines=line_nums)
        else:
            attributes[name] = parse_column(
                name, cells, force_float=name in _FLOAT_COLUMNS, source=source, lines=line_nums
            )
            if attributes[name].dtype == np.int64:
                attributes[name] = attributes[name].astype(np.float64)  # DNNBrain: float
    return attributes


def _frames(stim_ids, line_nums, source):
    bad = [(n, s) for n, s in zip(line_nums, stim_ids) if not INT_RE.match(s) or int(s) < 1]
    if bad:
        raise StimulusError(
            f"{source}: type=video needs stimID to be a 1-based frame number; line {bad[0][0]} "
            f"has {bad[0][1]!r}"
        )
    return np.array([int(s) for s in stim_ids], dtype=np.int64)


def resolve_root(value, source):
    """``path=`` against the file's folder, falling back on the current directory (DNNBrain's
    rule) when only that exists."""
    value = os.path.expanduser(value)
    if os.path.isabs(value):
        return os.path.normpath(value)
    beside = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(source)), value))
    if not os.path.exists(beside) and os.path.exists(value):
        return os.path.abspath(value)
    return beside


def read_stim(path):
    """Parse a DNNBrain ``.stim.csv`` file (format in the module docstring).

    The column names follow ``data=`` on the same line; a ``data=`` line with nothing after it
    followed by a header row is accepted too. Blank lines are skipped.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    DNNBrainStim

    Raises
    ------
    neuroprobe.exceptions.StimulusError
        Missing file, no ``data=`` / ``type=`` / ``path=`` line, an unknown type, a malformed
        header line or row (its line number), duplicate ``stimID`` values, no rows; for
        ``type=video`` a ``stimID`` that is not a 1-based frame number.
    """
    source = os.fspath(path)
    lines = _numbered_lines(source)
    data_at = next(
        (k for k, (_, line) in enumerate(lines) if line.strip().startswith("data=")), None
    )
    if data_at is None:
        raise StimulusError(f"{source}: no 'data=' line; not a DNNBrain .stim.csv file")
    info = _header_info(lines, data_at, source)
    header, rows, line_nums = _data_rows(lines, data_at, source)
    columns = {name: [r[j] for r in rows] for j, name in enumerate(header)}
    stim_ids = columns.pop("stimID")
    dup = [k for k, c in Counter(stim_ids).items() if c > 1]
    if dup:
        raise StimulusError(f"{source}: duplicate stimID value(s): {listing(dup)}")
    attributes = _typed(columns, source, line_nums)
    kind = info["type"].lower()
    if kind == "video":
        attributes = {"frame": _frames(stim_ids, line_nums, source), **attributes}
    root = resolve_root(info["path"], source)
    return DNNBrainStim(kind, info, root, stim_ids, attributes, line_nums, source)
