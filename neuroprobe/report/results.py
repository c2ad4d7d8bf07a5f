"""What a results folder holds: the outputs of neuroprobe commands, recognised by their content.

:func:`find_results` lists the files of a folder that :func:`neuroprobe.report.build` knows how
to show, each as a :class:`Result` (its kind, its path, what the file says about itself and the
provenance record of the command that wrote it). Files are recognised by what they contain, not
by their names alone: an activation file by its ``layers`` group and ``stim_ids`` (the word
features of ``neuroprobe words`` and the image + caption embeddings of ``extract --captions`` by
its ``preprocess`` record, in ``metadata["words"]`` / ``metadata["captions"]``), an RDM file by
its ``format`` attribute, the maps of ``neuroprobe encode`` by the JSON sidecar that lists them,
probe/decoding and RSA tables by their CSV header.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from neuroprobe.exceptions import ReportError
from neuroprobe.report.provenance import PROVENANCE_FILE, read_provenance

__all__ = ["Result", "find_results", "KINDS"]

#: The kinds of output a report shows, in the order of its sections.
KINDS = ("activations", "rdm", "probe", "decode", "encode", "rsa", "other")

_SCORES_HEADER = ("layer", "mean_score", "std_score", "scores")
_RSA_HEADER = ("model", "target", "method", "score")


@dataclass
class Result:
    """One output of a results folder.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    path : pathlib.Path
    metadata : dict
        What the file says about itself (an activation file's model, weights and layers; an
        encode sidecar's settings and maps; an RDM file's metric).
    provenance : dict or None
        The record of the command that wrote it (:mod:`neuroprobe.report.provenance`).
    files : list of pathlib.Path
        The files it consists of (an encode run: its maps and sidecar).
    """

    kind: str
    path: Path
    metadata: dict = field(default_factory=dict)
    provenance: dict | None = None
    files: list = field(default_factory=list)

    @property
    def name(self):
        return self.path.name


def _csv_header(path):
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError):
        return []


def _h5_kind(path):
    """``("activations" | "rdm", metadata)`` for a neuroprobe HDF5 file, else None."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") in ("neuroprobe.rdm", b"neuroprobe.rdm"):
                return "rdm", None
            if "layers" in f and "stim_ids" in f:
                return "activations", None
    except OSError:
        return None
    return None


def _activation_metadata(path):
    from neuroprobe.io.activations import open_activations

    with open_activations(path, allow_incomplete=True) as f:
        shapes = {layer: list(f.shape(layer)) for layer in f.layers}
        attrs = dict(f.attrs)
        raw = attrs.get("preprocess") if isinstance(attrs.get("preprocess"), dict) else {}
        meta = {
            "model": attrs.get("model"),
            "weights": attrs.get("weights_id"),
            "layers": list(f.layers),
            "shapes": shapes,
            "pooling": attrs.get("pooling"),
            "preprocess": _preprocess_text(attrs.get("preprocess")),
            "n_stimuli": int(len(f.stim_ids)),
            "complete": bool(f.complete),
        }
        if raw.get("kind") == "word_features":  # neuroprobe words: one row per word
            meta["preprocess"] = None  # the tokenizer's description; the settings say more
            meta["words"] = {"context": raw.get("context"), "max_tokens": raw.get("max_tokens"),
                             "word_pooling": raw.get("word_pooling"), "columns": f.columns}
        elif "text_column" in raw and "image" in raw:  # CLIPEmbedder: image + caption layers
            meta["preprocess"] = None
            meta["captions"] = {"text_column": raw.get("text_column"),
                                "normalize": bool(raw.get("normalize"))}
        return meta


def _preprocess_text(value):
    if isinstance(value, dict):
        parts = [f"{k} {v}" for k, v in value.items() if v not in (None, "", [])]
        return ", ".join(parts) or None
    return value or None


def _rdm_metadata(path):
    from neuroprobe.io.rdm import load_rdms

    data = load_rdms(path)
    return {"metric": data.attrs.get("metric"), "zscore": bool(data.attrs.get("zscore", False)),
            "n_stimuli": int(data.n_stimuli), "names": list(data.names),
            "source": data.attrs.get("source")}


def _encode_sidecar(path):
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("command") != "encode" or "maps" not in meta:
        return None
    return meta


def find_results(folder):
    """The outputs of ``folder`` that a report can show, in section order.

    Parameters
    ----------
    folder : str or Path

    Returns
    -------
    list of Result

    Raises
    ------
    ReportError
        ``folder`` does not exist, is not a folder, or holds nothing a report knows (the message
        says what it looked for).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"results folder {folder}: not a folder")
    provenance = read_provenance(folder)
    results, claimed = [], set()
    for path in sorted(folder.glob("*.json")):
        meta = _encode_sidecar(path)
        if meta is None:
            continue
        maps = [folder / m for m in meta["maps"] if (folder / m).exists()]
        if not maps:
            continue
        first = maps[0]
        results.append(Result("encode", first, meta, provenance.get(first.name),
                              [*maps, path]))
        claimed.update(maps + [path])
    for path in sorted(folder.iterdir()):
        if path in claimed or not path.is_file() or path.name == PROVENANCE_FILE:
            continue
        if path.name.startswith(".") or path.name.endswith(".partial"):
            continue
        record = provenance.get(path.name)
        kind, meta = None, {}
        if path.suffix in (".h5", ".hdf5"):
            found = _h5_kind(path)
            if found is not None:
                kind = found[0]
                meta = (_activation_metadata(path) if kind == "activations"
                        else _rdm_metadata(path))
        elif path.suffix == ".csv":
            header = _csv_header(path)
            if tuple(header[:4]) == _SCORES_HEADER:
                command = (record or {}).get("command")
                kind = command if command in ("probe", "decode") else "probe"
            elif all(h in header for h in _RSA_HEADER):
                kind = "rsa"
        if kind is None and record is not None:
            kind = "other"
        if kind is not None:
            results.append(Result(kind, path, meta, record, [path]))
    if not results:
        raise ReportError(
            f"results folder {folder}: nothing a report knows is in it; expected the outputs of "
            "neuroprobe commands (an .act.h5 from 'extract', an .rdm.h5 from 'rdm', the maps and "
            "JSON sidecar of 'encode', the CSV tables of 'probe' / 'decode' / 'rsa', or files "
            f"listed in {PROVENANCE_FILE})"
        )
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(results, key=lambda r: (order[r.kind], r.name))
