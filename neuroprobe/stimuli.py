"""Stimulus sets: which stimuli a study presented, where their files are, and their attributes.

A :class:`StimulusSet` is the ``X`` of a neuroprobe pipeline. It holds stimulus IDs, file paths (or
an in-memory array of images, or texts), one modality and per-stimulus attributes (label,
condition, ...).
It indexes like a 1-D array -- ``stimset[train_idx]`` is a smaller ``StimulusSet`` and no file is
read -- so scikit-learn's splitters, ``cross_validate`` and ``GridSearchCV`` accept it as ``X``.
Files are decoded only on demand, by :meth:`StimulusSet.load` through :func:`neuroprobe.media.load`.

Stimulus CSV format (:meth:`StimulusSet.from_csv`), read with Python's ``csv`` module (standard
quoting; UTF-8, a byte-order mark is tolerated; a ``.tsv`` file is read tab-separated)::

    stim_id,path,label,condition,onset
    face01,images/face01.png,1,face,0.0
    house01,/data/stims/house01.png,0,"house, large",2.5

- ``stim_id`` and ``path`` are required; ``path`` is relative to the CSV's folder or absolute.
- ``modality`` (``image``/``audio``/``video``/``text``) is optional; without it the modality is
  inferred from the file extensions (``.txt``: text). A set holds a single modality.
- Text stimuli: a ``text`` column instead of ``path`` holds the texts themselves (a text set,
  :meth:`StimulusSet.from_texts`); ``.txt`` files in ``path`` are read as UTF-8 text.
- Every other column becomes an attribute. A column whose non-empty cells are all integers
  becomes ``int64`` (``float64`` with NaN when it has empty cells); all numbers -> ``float64``
  with NaN for empty cells; anything else stays text (``str``, empty cells -> ``""``).
  ``onset`` and ``duration`` are always float. A column with no value at all is float NaN.
  Cells are stripped of surrounding whitespace. Blank lines are skipped; trailing empty cells
  beyond the header are ignored.

The file formats are parsed in :mod:`neuroprobe.io.stimulus_table` (this CSV) and
:mod:`neuroprobe.io.dnnbrain` (DNNBrain's ``.stim.csv``), which return columns; this module
builds the set from them.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from neuroprobe.exceptions import StimulusError  # noqa: F401 (re-exported)
from neuroprobe.io.stimulus_table import listing as _listing
from neuroprobe.io.stimulus_table import text_array as _text_array

__all__ = ["StimulusError", "StimulusSet", "as_stimulus_set", "read_dnnbrain_stim"]

_MODALITIES = ("image", "audio", "video", "text")
_REQUIRED = ("stim_id", "path")
_FLOAT_COLUMNS = ("onset", "duration")



def _readonly(array):
    array = np.array(array, copy=True)
    array.flags.writeable = False
    return array


# ---------------------------------------------------------------------------------------------
# ids, modality, files


def _default_ids(paths):
    """File stems; if those collide, paths relative to their common folder (then with suffix)."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    parent = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else ""
    rel = [Path(os.path.relpath(p, parent)).as_posix() for p in paths]
    no_suffix = [r[: -len(Path(r).suffix)] if Path(r).suffix else r for r in rel]
    if len(set(no_suffix)) == len(no_suffix):
        return no_suffix
    return rel


def _infer_modality(paths, names=None):
    """One modality for all paths from their extensions, or StimulusError (unknown / mixed)."""
    from neuroprobe.media import modality_from_path

    examples = {}
    unknown = []
    by_suffix = {}
    for i, path in enumerate(paths):
        suffix = os.path.splitext(path)[1]
        if suffix not in by_suffix:
            by_suffix[suffix] = modality_from_path(path, default=None)
        modality = by_suffix[suffix]
        if modality is None:
            unknown.append(path)
        else:
            examples.setdefault(modality, path if names is None else f"{names[i]} ({path})")
    if unknown:
        modality_from_path(unknown[0])  # raises with the list of known extensions
    return _single_modality(examples)


def _single_modality(examples):
    if len(examples) > 1:
        shown = "; ".join(f"{m}, e.g. {ex}" for m, ex in examples.items())
        raise StimulusError(
            f"mixed modalities in one stimulus set: {shown}. A StimulusSet holds one modality: "
            "split the stimuli into one set per modality."
        )
    return next(iter(examples))


def _absolute(path, base):
    """``path`` made absolute against ``base`` and normalised (``~`` expanded)."""
    path = os.fspath(path)
    if path.startswith("~"):
        path = os.path.expanduser(path)
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(base, path))


def _check_files(paths, root=None, source=None):
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        where = f"{source}: " if source else ""
        rel = f" (relative paths are resolved against {root})" if root else ""
        raise StimulusError(
            f"{where}{len(missing)} of {len(paths)} stimulus file(s) not found: "
            f"{_listing(missing)}{rel}"
        )


def _normalise_key(key, n):
    """An index key -> slice or int64 array of positions (validated against ``n``)."""
    if isinstance(key, tuple):
        rest = key[1:]
        if len(key) == 0 or any(r is not Ellipsis for r in rest) or len(rest) > 1:
            raise IndexError(f"a StimulusSet is 1-D; cannot index it with {key!r}")
        key = key[0]
    if key is Ellipsis:
        return slice(None)
    if isinstance(key, slice):
        return key
    if isinstance(key, (str, bytes)):
        raise TypeError(
            f"cannot index a StimulusSet with the string {key!r}; use .column(name) for a "
            "column or .indices_of(ids) to look stimuli up by id"
        )
    if isinstance(key, (bool, np.bool_)):
        raise IndexError("cannot index a StimulusSet with a scalar boolean")
    if isinstance(key, (int, np.integer)):
        key = int(key)
        if not -n <= key < n:
            raise IndexError(f"index {key} is out of bounds for a StimulusSet of {n} stimuli")
        return np.array([key % n], dtype=np.int64)
    if hasattr(key, "detach"):  # torch tensor
        key = key.detach().cpu().numpy()
    key = np.asarray(key)
    if key.ndim != 1:
        raise IndexError(f"index arrays for a StimulusSet must be 1-D, got shape {key.shape}")
    if key.dtype == bool:
        if key.shape[0] != n:
            raise IndexError(f"boolean mask of length {key.shape[0]} for {n} stimuli")
        return np.flatnonzero(key)
    if key.size == 0:
        return np.array([], dtype=np.int64)
    if not np.issubdtype(key.dtype, np.integer):
        raise IndexError(f"StimulusSet indices must be integers or booleans, got {key.dtype}")
    key = key.astype(np.int64)
    bad = key[(key < -n) | (key >= n)]
    if bad.size:
        raise IndexError(f"index {int(bad[0])} is out of bounds for a StimulusSet of {n} stimuli")
    return np.where(key < 0, key + n, key)


def _texts(data):
    """A 1-D ``str`` array of the texts ``data`` (StimulusError naming a non-string entry)."""
    if isinstance(data, str) or (hasattr(data, "ndim") and data.ndim != 1):
        raise StimulusError("texts must be a 1-D sequence of strings (one per stimulus)")
    values = list(data)
    bad = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if bad:
        raise StimulusError(
            f"texts must be strings; entry {bad[0]} is {type(values[bad[0]]).__name__}"
        )
    if not values:
        raise StimulusError("empty stimulus set: no texts were given")
    return _text_array(values)


def _check_array_data(data):
    """Validate the ``data`` of an array-backed set; return its type tag ("uint8", "float" or
    "text")."""
    shape = tuple(data.shape)
    dtype = str(data.dtype)
    if getattr(data.dtype, "kind", "") == "U":
        if len(shape) != 1:
            raise StimulusError(f"texts must be a 1-D sequence of strings; got shape {shape}")
        return "text"
    if dtype in ("uint8", "torch.uint8"):
        ok = len(shape) == 3 or (len(shape) == 4 and shape[-1] in (1, 3, 4))
        if not ok:
            raise StimulusError(
                f"uint8 image arrays must be (n, H, W) or (n, H, W, 3); got shape {shape}"
            )
        return "uint8"
    if "float" in dtype:
        if len(shape) != 4:
            raise StimulusError(
                "float image arrays must be preprocessed tensors of shape (n, C, H, W); "
                f"got shape {shape}"
            )
        return "float"
    raise StimulusError(
        f"image arrays must be uint8 (n, H, W[, 3]) or float (n, C, H, W); got dtype {dtype}"
    )


# ---------------------------------------------------------------------------------------------


class StimulusSet:
    """An ordered set of stimuli (files or in-memory images) with IDs and attributes.

    Parameters
    ----------
    paths : sequence of str or path-like, optional
        Stimulus files. Relative paths are resolved against ``root``; stored absolute.
    data : array or torch.Tensor, optional
        In-memory images instead of files: uint8 ``(n, H, W, 3)`` / ``(n, H, W)`` raw images or a
        float ``(n, C, H, W)`` tensor that is already preprocessed. Exactly one of ``paths`` and
        ``data`` must be given.
    ids : sequence of str, optional
        Unique stimulus IDs. Default: file stems (made unique, see :meth:`from_folder`) for files,
        ``"0", "1", ...`` for arrays.
    attributes : dict of str -> array-like, optional
        Per-stimulus columns (label, condition, onset, ...), each of length ``n``.
    modality : {"image", "audio", "video"}, optional
        Default: inferred from the file extensions (``"image"`` for arrays).
    root : str or path-like, optional
        Folder that relative ``paths`` are relative to (default: the current directory).
    check_files : bool, default=True
        Raise at construction if any file is missing (listing the first few). ``False`` defers
        the check to decoding time.
    info : dict, optional
        Free-form metadata (e.g. the header of a DNNBrain ``.stim.csv``), kept by indexing.

    Attributes
    ----------
    ids : ndarray of str, shape (n,)
    paths : list of str or None
        Absolute file paths (``None`` for an array-backed set).
    data : ndarray, torch.Tensor or None
    modality : str
    attributes : dict of str -> ndarray
    shape : tuple ``(n,)``
    info : dict

    Examples
    --------
    >>> stims = StimulusSet.from_csv("stimuli.csv")  # doctest: +SKIP
    >>> train = stims[np.arange(10)]  # no file is read  # doctest: +SKIP
    >>> image = stims.load(0)  # PIL RGB image  # doctest: +SKIP
    """

    def __init__(
        self,
        paths=None,
        *,
        data=None,
        ids=None,
        attributes=None,
        modality=None,
        root=None,
        check_files=True,
        info=None,
    ):
        if (paths is None) == (data is None):
            raise StimulusError("give exactly one of `paths` (files) or `data` (an image array)")
        if paths is not None:
            if isinstance(paths, (str, os.PathLike)):
                raise StimulusError(
                    f"`paths` must be a sequence of files, got the single path {paths!r}; use "
                    "StimulusSet.from_folder / from_csv for a folder or a CSV"
                )
            base = os.path.abspath(os.path.expanduser(os.fspath(root))) if root else os.getcwd()
            abs_paths = [_absolute(p, base) for p in paths]
            n = len(abs_paths)
            if n == 0:
                raise StimulusError("empty stimulus set: no stimulus paths were given")
            if modality is None:
                modality = _infer_modality(abs_paths)
            if check_files:
                _check_files(abs_paths, root=base if root else None)
            self._paths = np.array(abs_paths, dtype=object)
            self._data = None
            self.root = base
            default_ids = _default_ids(abs_paths) if ids is None else None
        else:
            if modality == "text":
                data = _texts(data)
            elif not hasattr(data, "shape"):
                data = np.asarray(data)
            n = int(data.shape[0]) if len(data.shape) else 0
            if n == 0:
                raise StimulusError("empty stimulus set: the image array has no rows")
            kind = _check_array_data(data)
            if kind == "text":
                modality = "text"
            elif modality not in (None, "image"):
                raise StimulusError(
                    f"array stimulus sets are images or texts; got modality={modality!r}"
                )
            else:
                modality = "image"
            self._paths = None
            self._data = data
            self.root = None
            default_ids = [str(i) for i in range(n)] if ids is None else None
        if modality not in _MODALITIES:
            raise StimulusError(f"unknown modality {modality!r}; expected one of {_MODALITIES}")
        self.modality = modality
        self._ids = _readonly(_text_array(default_ids if ids is None else list(ids)))
        if self._ids.shape != (n,):
            raise StimulusError(f"got {self._ids.shape[0]} ids for {n} stimuli")
        duplicated = [k for k, c in Counter(self._ids.tolist()).items() if c > 1]
        if duplicated:
            raise StimulusError(f"duplicate stimulus id(s): {_listing(duplicated)}")
        if "" in set(self._ids.tolist()):
            raise StimulusError("stimulus ids must not be empty strings")
        self._attributes = {}
        for name, values in (attributes or {}).items():
            values = np.asarray(values)
            if values.shape != (n,):
                raise StimulusError(
                    f"attribute {name!r} has shape {values.shape}; expected ({n},) for {n} stimuli"
                )
            if values.dtype.kind in "OS":
                values = _text_array(values.tolist())
            if name in ("stim_id", "path", "modality"):
                raise StimulusError(f"{name!r} is a reserved column name, not an attribute")
            self._attributes[str(name)] = _readonly(values)
        self.info = dict(info or {})

    # -- construction helpers ----------------------------------------------------------------

    @classmethod
    def _from_parts(cls, paths, data, ids, attributes, modality, root, info):
        """Build without validation (used by indexing: everything is already consistent)."""
        new = cls.__new__(cls)
        new._paths, new._data, new._ids = paths, data, ids
        new._attributes, new.modality, new.root, new.info = attributes, modality, root, info
        return new

    @classmethod
    def from_texts(cls, texts, *, ids=None, attributes=None):
        """A text set: one stimulus per string (sentences, passages, captions).

        Parameters
        ----------
        texts : sequence of str
        ids : sequence of str, optional
            Default ``"0", "1", ...``.
        attributes : dict of str -> array-like, optional

        Returns
        -------
        StimulusSet
            ``modality == "text"``; :meth:`load` returns the string (a
            :class:`~neuroprobe.media.text.Text` carrying its ID).
        """
        return cls(data=texts, ids=ids, attributes=attributes, modality="text")

    @classmethod
    def from_csv(cls, path, *, modality=None, check_files=True):
        """Read a stimulus CSV (format in the module docstring).

        Parameters
        ----------
        path : str or path-like
            The CSV (``.tsv``: tab-separated).
        modality : str, optional
            Overrides the ``modality`` column / extension inference.
        check_files : bool, default=True
            Raise if listed files are missing.

        Returns
        -------
        StimulusSet

        Raises
        ------
        StimulusError
            Missing file or required columns (named), duplicate ids (named), malformed rows
            (line number), mixed modalities (an example of each), no rows, missing stimuli.
        """
        from neuroprobe.io.stimulus_table import parse_columns, read_table, text_table_required

        table = read_table(path, required=text_table_required(path, _REQUIRED))
        columns, lines, source = dict(table.columns), table.lines, table.source
        if "path" not in columns:  # a text set: the `text` column holds the stimuli
            ids = columns.pop("stim_id")
            dup = [k for k, c in Counter(ids).items() if c > 1]
            if dup:
                raise StimulusError(f"{source}: duplicate stim_id value(s): {_listing(dup)}")
            texts = columns.pop("text")
            columns.pop("modality", None)
            attributes = parse_columns(
                columns, float_columns=_FLOAT_COLUMNS, source=source, lines=lines
            )
            return cls.from_texts(texts, ids=ids, attributes=attributes)
        ids = columns.pop("stim_id")
        dup = [k for k, c in Counter(ids).items() if c > 1]
        if dup:
            raise StimulusError(f"{source}: duplicate stim_id value(s): {_listing(dup)}")
        root = os.path.dirname(os.path.abspath(source))
        paths = [_absolute(p, root) for p in columns.pop("path")]
        modality = cls._csv_modality(
            columns.pop("modality", None), paths, ids, lines, modality, source
        )
        attributes = parse_columns(
            columns, float_columns=_FLOAT_COLUMNS, source=source, lines=lines
        )
        if check_files:
            _check_files(paths, root=root, source=source)
        return cls(
            paths, ids=ids, attributes=attributes, modality=modality, root=root, check_files=False
        )

    @staticmethod
    def _csv_modality(cells, paths, ids, lines, modality, source):
        if modality is not None:
            return modality
        from neuroprobe.media import modality_from_path

        examples = {}
        by_suffix = {}
        for i, path in enumerate(paths):
            value = cells[i].lower() if cells is not None else ""
            if value and value not in _MODALITIES:
                raise StimulusError(
                    f"{source}: line {lines[i]} has modality {cells[i]!r}; expected one of "
                    f"{_MODALITIES}"
                )
            if not value:
                suffix = os.path.splitext(path)[1]
                if suffix not in by_suffix:
                    by_suffix[suffix] = modality_from_path(path, default=None)
                value = by_suffix[suffix]
                if value is None:
                    raise StimulusError(
                        f"{source}: cannot tell the modality of {path!r} (line {lines[i]}) from "
                        "its extension; add a 'modality' column or pass modality="
                    )
            examples.setdefault(value, f"{ids[i]!r} ({path})")
        try:
            return _single_modality(examples)
        except StimulusError as err:
            raise StimulusError(f"{source}: {err}") from None

    @classmethod
    def from_folder(
        cls, folder, modality=None, extensions=None, recursive=False, *, check_files=True
    ):
        """All stimulus files of a folder, sorted by relative path.

        Parameters
        ----------
        folder : str or path-like
        modality : {"image", "audio", "video", "text"}, optional
            Keep only files of this modality (default: all known extensions; the files found
            must then share one modality; ``.txt`` files count only in a folder without image,
            audio or video files, so notes beside the media are ignored).
        extensions : sequence of str, optional
            Keep only these extensions (``[".png", "jpg"]``, case-insensitive) instead of the
            modality's known ones. Hidden files (``.name``) are skipped.
        recursive : bool, default=False
            Also search subfolders.

        Returns
        -------
        StimulusSet
            IDs are the file stems; where stems collide (subfolders, ``a.png`` + ``a.jpg``),
            the paths relative to ``folder``, without and then with the extension.
        """
        from neuroprobe.media import EXTENSIONS, modality_from_path

        folder = Path(os.path.abspath(Path(folder).expanduser()))
        if not folder.is_dir():
            raise StimulusError(f"stimulus folder not found: {os.fspath(folder)!r}")
        if extensions is not None:
            if isinstance(extensions, str):
                extensions = [extensions]
            wanted = {("." + e.lstrip(".")).lower() for e in extensions}
        elif modality is not None:
            if modality not in _MODALITIES:
                raise StimulusError(f"unknown modality {modality!r}; expected one of {_MODALITIES}")
            wanted = set(EXTENSIONS[modality])
        else:
            wanted = set().union(*EXTENSIONS.values())
        pattern = "**/*" if recursive else "*"
        files = sorted(
            (
                p
                for p in folder.glob(pattern)
                if p.suffix.lower() in wanted
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(folder).parts)
            ),
            key=lambda p: p.relative_to(folder).as_posix(),
        )
        if modality is None and extensions is None:  # [text] .txt notes beside media files
            media = [p for p in files if p.suffix.lower() not in EXTENSIONS["text"]]
            files = media or files
        if not files:
            what = modality or "stimulus"
            raise StimulusError(
                f"empty stimulus set: no {what} files with extensions {sorted(wanted)} in "
                f"{os.fspath(folder)!r}" + ("" if recursive else " (recursive=False)")
            )
        if modality is None:
            examples = {}
            for p in files:
                m = modality_from_path(p, default=None)
                if m is None:
                    raise StimulusError(
                        f"cannot tell the modality of {os.fspath(p)!r}; pass modality="
                    )
                examples.setdefault(m, os.fspath(p))
            modality = _single_modality(examples)
        rel = [p.relative_to(folder) for p in files]
        ids = [p.stem for p in rel]
        if len(set(ids)) != len(ids):
            ids = [p.with_suffix("").as_posix() for p in rel]
            if len(set(ids)) != len(ids):
                ids = [p.as_posix() for p in rel]
        return cls(
            [os.fspath(p) for p in files],
            ids=ids,
            modality=modality,
            root=os.fspath(folder),
            check_files=check_files,
        )

    @classmethod
    def from_paths(cls, paths, *, ids=None, modality=None, attributes=None, check_files=True):
        """A set from a list of files (relative paths: relative to the current directory).

        IDs default to the file stems (made unique as in :meth:`from_folder`).
        """
        return cls(
            list(paths), ids=ids, modality=modality, attributes=attributes, check_files=check_files
        )

    @classmethod
    def from_array(cls, array, ids=None, *, attributes=None):
        """A set of in-memory images.

        Parameters
        ----------
        array : ndarray or torch.Tensor
            uint8 ``(n, H, W, 3)`` or ``(n, H, W)`` raw images (also ``(n, H, W, 1|4)``, converted
            like the image files of that mode), or a float ``(n, C, H, W)`` tensor that is
            already preprocessed (used as is by feature extractors).
        ids : sequence of str, optional
            Default ``"0", "1", ...``.
        """
        return cls(data=array, ids=ids, attributes=attributes)

    # -- array behaviour ---------------------------------------------------------------------

    def __len__(self):
        return int(self._ids.shape[0])

    @property
    def shape(self):
        """``(n,)``: lets scikit-learn treat the set as a 1-D array (``_num_samples``)."""
        return (len(self),)

    def __getitem__(self, key):
        """Subset by int, slice, int array, boolean mask or ``(key, ...)``; reads no file.

        An int gives a set of one stimulus (use :meth:`load` for the decoded stimulus).
        """
        index = _normalise_key(key, len(self))
        paths = None if self._paths is None else self._paths[index]
        data = None
        if self._data is not None:
            if isinstance(index, slice) or isinstance(self._data, np.ndarray):
                data = self._data[index]
            else:  # torch tensor
                import torch

                data = self._data[torch.as_tensor(index, dtype=torch.long)]
        ids = self._ids[index]
        ids.flags.writeable = False
        attributes = {}
        for name, values in self._attributes.items():
            values = values[index]
            values.flags.writeable = False
            attributes[name] = values
        return self._from_parts(
            paths, data, ids, attributes, self.modality, self.root, dict(self.info)
        )

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "a StimulusSet cannot be converted to a numpy array: turn stimuli into features "
            "first (e.g. a DNNFeatureExtractor as the first pipeline step), or use .ids / "
            ".column(name)"
        )

    def __iter__(self):
        """Iterate over one-stimulus sets (``stimset[i]`` for each i)."""
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        parts = [f"n={len(self)}", f"modality={self.modality!r}"]
        if self._data is not None:
            parts.append(f"data={self._data.dtype}{tuple(self._data.shape)}")
        elif self.root:
            parts.append(f"root={self.root!r}")
        if self._attributes:
            names = list(self._attributes)
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            parts.append(f"attributes=[{shown}]")
        return f"StimulusSet({', '.join(parts)})"

    # -- accessors ---------------------------------------------------------------------------

    @property
    def ids(self):
        """Stimulus IDs, ndarray of str (read-only)."""
        return self._ids

    @property
    def paths(self):
        """Absolute file paths (list of str), or None for an array-backed set."""
        return None if self._paths is None else list(self._paths)

    @property
    def data(self):
        """The image array (or the ``str`` array of a text set) of an array-backed set, else
        None."""
        return self._data

    @property
    def texts(self):
        """The texts of a text set built from strings (ndarray of str), else None."""
        return self._data if self.modality == "text" else None

    @property
    def attributes(self):
        """Dict name -> read-only ndarray of the attribute columns (a new dict each call)."""
        return dict(self._attributes)

    @property
    def columns(self):
        """Names accepted by :meth:`column`."""
        base = ["stim_id", "modality"] if self._paths is None else ["stim_id", "path", "modality"]
        if self.texts is not None:
            base = ["stim_id", "text", "modality"]
        return base + list(self._attributes)

    def column(self, name):
        """One column as an ndarray: ``"stim_id"``, ``"path"``, ``"modality"`` or an attribute.

        Raises
        ------
        KeyError
            Unknown name; the message lists the available columns.
        """
        if name == "stim_id":
            return self._ids
        if name == "path" and self._paths is not None:
            return self._paths.astype(str)
        if name == "text" and self.texts is not None:
            return self._data
        if name == "modality":
            return np.full(len(self), self.modality)
        if name in self._attributes:
            return self._attributes[name]
        raise KeyError(f"no column {name!r}; available columns: {self.columns}")

    def indices_of(self, ids):
        """Positions of the given stimulus IDs (int64 array); KeyError lists unknown IDs."""
        lookup = {k: i for i, k in enumerate(self._ids.tolist())}
        ids = [ids] if isinstance(ids, str) else [str(i) for i in ids]
        unknown = [i for i in ids if i not in lookup]
        if unknown:
            raise KeyError(f"unknown stimulus id(s): {_listing(unknown)}")
        return np.array([lookup[i] for i in ids], dtype=np.int64)

    # -- decoding ----------------------------------------------------------------------------

    def load(self, i, **options):
        """Decode stimulus ``i`` (an int position).

        Returns
        -------
        PIL.Image.Image (RGB) for images; ``(waveform float32 (n,), sample_rate)`` for audio;
        ``(frames uint8 (T, H, W, 3), fps)`` for video (see :func:`neuroprobe.media.load`).
        For array sets: a PIL RGB image for uint8 data, the ``(C, H, W)`` torch.Tensor row for
        float data.

        ``options`` go to the decoder (e.g. ``background=(255, 255, 255)`` for images).
        """
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"load() takes one integer position, got {type(i).__name__}")
        (i,) = _normalise_key(int(i), len(self))
        if self.modality == "text":  # a str carrying its ID (named in truncation warnings)
            from neuroprobe.media.text import Text

            if self._data is not None:
                return Text(str(self._data[int(i)]), stim_id=self._ids[i])
            from neuroprobe.media import load

            return Text(load(self._paths[i], "text", **options), stim_id=self._ids[i])
        if self._data is None:
            from neuroprobe.media import load

            return load(self._paths[i], self.modality, **options)
        row = self._data[int(i)]
        if _check_array_data(self._data) == "float":
            import torch

            return torch.as_tensor(row)
        from PIL import Image

        from neuroprobe.media.image import to_rgb

        row = np.asarray(row.cpu() if hasattr(row, "cpu") else row)
        if row.ndim == 3 and row.shape[-1] == 1:
            row = row[..., 0]
        image = Image.fromarray(np.ascontiguousarray(row))
        return to_rgb(image, **options)

    # -- export --------------------------------------------------------------------------------

    def to_frame(self):
        """A pandas DataFrame with columns stim_id, path (file sets), modality and attributes."""
        try:
            import pandas as pd
        except ImportError as err:  # pragma: no cover - pandas is a test dependency
            raise ImportError("StimulusSet.to_frame() needs pandas: pip install pandas") from err
        return pd.DataFrame({name: self.column(name) for name in self.columns})

    def write_csv(self, path):
        """Write a stimulus CSV that :meth:`from_csv` reads back to an identical set.

        Paths inside the CSV's folder are written relative to it, others absolute; NaN is
        written as an empty cell; floats with full precision. The file is written atomically.
        Array-backed sets have no files and cannot be written.
        """
        from neuroprobe.io.stimulus_table import write_table

        if self._paths is None and self.texts is None:
            raise StimulusError("an array-backed StimulusSet has no files to list in a CSV")
        folder = os.path.dirname(os.path.abspath(path))
        names = self.columns
        columns = [self.column(name) for name in names]

        def cell(name, value):
            if name == "path":
                rel = os.path.relpath(value, folder)
                return value if rel.startswith("..") else Path(rel).as_posix()
            return value

        if self.texts is not None:  # `text` column; the modality follows from it
            names, columns = names[:2] + names[3:], columns[:2] + columns[3:]
        rows = ([cell(n, values[i]) for n, values in zip(names, columns)] for i in range(len(self)))
        write_table(path, names, rows)


# ---------------------------------------------------------------------------------------------


def as_stimulus_set(X):
    """Coerce ``X`` into a :class:`StimulusSet`: the one input rule of every front end.

    Parameters
    ----------
    X : StimulusSet, path, list of paths, array, tensor or DataFrame
        A StimulusSet (returned as is); a folder (:meth:`StimulusSet.from_folder`), a stimulus
        CSV / TSV (:meth:`StimulusSet.from_csv`) or a DNNBrain ``.stim.csv``
        (:func:`read_dnnbrain_stim`); one stimulus file; a list/array of file paths; a uint8
        ``(n, H, W[, 3])`` or float ``(n, C, H, W)`` array or tensor; a pandas DataFrame with
        ``stim_id`` and ``path`` columns.

    Returns
    -------
    StimulusSet

    Raises
    ------
    StimulusError
        A path that does not exist (named), or what the readers above raise.
    TypeError
        Anything else.
    """
    if isinstance(X, StimulusSet):
        return X
    if isinstance(X, (str, os.PathLike)):
        path = os.fspath(X)
        if os.path.isdir(path):
            return StimulusSet.from_folder(path)
        if not os.path.exists(path):
            raise StimulusError(f"stimuli {path!r}: no such file or folder")
        if path.lower().endswith(".stim.csv"):
            return read_dnnbrain_stim(path)
        if path.lower().endswith((".csv", ".tsv")):
            return StimulusSet.from_csv(path)
        return StimulusSet.from_paths([path])
    if hasattr(X, "columns") and hasattr(X, "iloc"):
        missing = [c for c in _REQUIRED if c not in X.columns]
        if missing:
            raise StimulusError(f"DataFrame is missing required column(s) {_listing(missing)}")
        attributes = {c: X[c].to_numpy() for c in X.columns if c not in (*_REQUIRED, "modality")}
        modality = None
        if "modality" in X.columns:
            values = sorted(set(X["modality"].astype(str)))
            if len(values) > 1:
                raise StimulusError(f"mixed modalities in one stimulus set: {values}")
            modality = values[0]
        return StimulusSet(
            list(X["path"]),
            ids=list(X["stim_id"].astype(str)),
            attributes=attributes,
            modality=modality,
        )
    if hasattr(X, "detach") or (isinstance(X, np.ndarray) and X.dtype.kind in "uifb"):
        return StimulusSet.from_array(X)
    if isinstance(X, (list, tuple, np.ndarray)):
        if len(X) == 0:
            raise StimulusError("empty stimulus set: got an empty list")
        if all(isinstance(x, (str, os.PathLike)) for x in X):
            return StimulusSet.from_paths(X)
        return StimulusSet.from_array(np.asarray(X))
    raise TypeError(
        "cannot make a StimulusSet from a "
        f"{type(X).__name__}; expected a StimulusSet, file paths, a folder, a CSV or an image array"
    )


# ---------------------------------------------------------------------------------------------
# DNNBrain legacy format


def read_dnnbrain_stim(path, *, check_files=True, frames="video"):
    """Read DNNBrain's legacy ``.stim.csv`` file into a :class:`StimulusSet`.

    The format (DNNBrain ``dnnbrain.io.fileio.StimulusFile``)::

        type=image
        path=parent_dir_of_images
        title=optional key=value lines (kept in ``stimset.info``)
        data=stimID,onset,duration,label,condition,acc,RT
        pic1.png,0,1,0,cat,0.4,0.5
        sub/pic2.png,1,1,1,dog,0.6,0.4

    The column names follow ``data=`` on the same line (DNNBrain); a ``data=`` line with nothing
    after it followed by a header row is accepted too. Blank lines are skipped. As in DNNBrain,
    ``label`` is an integer, ``condition`` text and the other columns float (text where a column
    is not numeric); ``onset``/``duration``/``label``/``condition`` and extra columns become
    attributes.

    ``type=image``: ``stimID`` is the image path relative to ``path``; it becomes both the stimulus
    id and (joined to ``path``) the file. Windows ``\\`` separators are converted on POSIX.

    ``type=video``: ``path`` is one video file and each row is a frame; ``stimID`` is DNNBrain's
    1-based frame number. With ``frames="video"`` (default) the result is a video-modality set
    whose rows all point at that file, with an int ``frame`` attribute (1-based); ``load(i)``
    decodes the whole clip, frame ``stimset.column("frame")[i] - 1`` of which is the stimulus.
    With ``frames="images"`` the video is decoded once (needs :mod:`neuroprobe.media.video`) and
    the selected frames are returned as an array-backed image set with the same ids/attributes.

    A relative ``path=`` is resolved against the ``.stim.csv`` file's folder, falling back on
    the current directory (what DNNBrain used) when only that exists. ``type=audio`` (one file per
    row, like images) is accepted as an extension of the format.

    Parameters
    ----------
    path : str or path-like
    check_files : bool, default=True
    frames : {"video", "images"}, default="video"
        Only for ``type=video``, see above.

    Returns
    -------
    StimulusSet
        With ``info`` holding the header ``key=value`` pairs (``type``, ``path``, ``title`` ...).
    """
    from neuroprobe.io.dnnbrain import read_stim

    if frames not in ("video", "images"):
        raise ValueError(f"frames must be 'video' or 'images', got {frames!r}")
    stim = read_stim(path)
    paths = stim.paths()
    if check_files:
        _check_files(sorted(set(paths)) if stim.kind == "video" else paths,
                     root=None if stim.kind == "video" else stim.root, source=stim.source)
    if stim.kind != "video" or frames == "video":
        return StimulusSet(
            paths,
            ids=stim.stim_ids,
            attributes=stim.attributes,
            modality=stim.kind,
            root=None if stim.kind == "video" else stim.root,
            check_files=False,
            info=stim.info,
        )
    from neuroprobe.media import load

    frame = stim.attributes["frame"]
    clip, _fps = load(stim.root, "video")
    if frame.max() > len(clip):
        raise StimulusError(
            f"{stim.source}: frame {int(frame.max())} requested but {stim.root!r} has "
            f"{len(clip)} frames"
        )
    return StimulusSet(
        data=np.asarray(clip)[frame - 1], ids=stim.stim_ids, attributes=stim.attributes,
        info=stim.info,
    )
