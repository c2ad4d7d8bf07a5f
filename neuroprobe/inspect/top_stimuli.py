"""Top stimuli: the k stimuli that drive each unit most, streamed over stimulus sets of any size."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroprobe.exceptions import LayerError, UnitError
from neuroprobe.inspect.units import check_metric

__all__ = ["TopStimuli", "top_stimuli", "merge_top_k"]

_FEATURE = re.compile(r"^c(?P<c>\d+)(?::y(?P<y>\d+):x(?P<x>\d+))?$|^u(?P<u>\d+)$")


@dataclass
class TopStimuli:
    """Result of :func:`top_stimuli`.

    Attributes
    ----------
    layer : str
    units : list of str
        Unit labels (``"c3"`` for a channel, ``"c3:y1:x2"`` for one position).
    indices : ndarray of int (n_units, k)
        Row of each top stimulus in the stimulus set, best first.
    values : ndarray of float32 (n_units, k)
        Their activations (the metric of the unit).
    ids : ndarray of str (n_units, k)
        Their stimulus IDs.
    metric : str
    """

    layer: str
    units: list
    indices: np.ndarray
    values: np.ndarray
    ids: np.ndarray
    metric: str

    def to_rows(self):
        """One dict per (unit, rank) with layer, unit, rank, stim_id, index and value."""
        rows = []
        for u, unit in enumerate(self.units):
            for r in range(self.indices.shape[1]):
                rows.append({"layer": self.layer, "unit": unit, "rank": r + 1,
                             "stim_id": str(self.ids[u, r]), "index": int(self.indices[u, r]),
                             "value": float(self.values[u, r])})
        return rows

    def save(self, folder):
        """Write ``top_stimuli.csv`` (the rows of :meth:`to_rows`) into ``folder``.

        Returns
        -------
        list of Path
            The files written.
        """
        from pathlib import Path

        from neuroprobe.io.arrays import write_table

        fields = ["layer", "unit", "rank", "stim_id", "index", "value"]
        return [write_table(Path(folder) / "top_stimuli.csv", self.to_rows(), fields)]


def merge_top_k(best_values, best_indices, values, indices, k):
    """Merge a batch into running top-k lists.

    Parameters
    ----------
    best_values, best_indices : ndarray (n_units, m)
        Current best values and stimulus indices (m <= k).
    values : ndarray (n_units, b)
        The batch's values.
    indices : ndarray (b,)
        The batch's stimulus indices.
    k : int

    Returns
    -------
    values, indices : ndarray (n_units, min(k, m + b))
        Sorted by decreasing value; ties keep the lower stimulus index first (as a stable
        argsort of ``-values`` over the whole set would).
    """
    n_units = values.shape[0]
    all_v = np.concatenate([best_values, values], axis=1)
    batch_i = np.broadcast_to(indices, (n_units, len(indices)))
    all_i = np.concatenate([best_indices, batch_i], axis=1)
    order = np.lexsort((all_i, -all_v.astype(np.float64)), axis=1)[:, :k]
    return np.take_along_axis(all_v, order, 1), np.take_along_axis(all_i, order, 1)


def _parse_units(units, n_channels, layer, shape_text, channel_ids):
    """Normalise ``units`` to a list of (channel position, row or None, col or None)."""
    if units is None:
        return [(c, None, None) for c in range(n_channels)]
    if isinstance(units, (int, np.integer)) or (
        isinstance(units, tuple) and len(units) == 3 and all(isinstance(u, int) for u in units)
    ):
        units = [units]
    out = []
    for unit in units:
        if isinstance(unit, (tuple, list)):
            if len(unit) != 3:
                raise UnitError(f"unit {unit!r} of layer {layer!r}: expected channel or "
                                "(channel, row, col)")
            c, y, x = (int(v) for v in unit)
        else:
            c, y, x = int(unit), None, None
        if c not in channel_ids:
            raise UnitError(
                f"channel {c} is out of range for layer {layer!r}: its activations have shape "
                f"{shape_text}"
                + ("" if len(channel_ids) == n_channels and max(channel_ids) == n_channels - 1
                   else f" (stored channels: {sorted(channel_ids)[:20]})")
            )
        out.append((channel_ids[c], y, x))
    return out


class _Layout:
    """How one layer's per-stimulus features map onto (channel, position)."""

    def __init__(self, layer, columns, channels, positions, shape_text, channel_ids):
        self.layer = layer
        self.columns = columns  # (n_channels, n_positions) column index into the row
        self.positions = positions  # list of (y, x) or None per position
        self.shape_text = shape_text
        self.channel_ids = channel_ids  # original channel number -> channel position
        self.n_channels = columns.shape[0]

    def unit_columns(self, parsed, metric):
        """Column array (n_units, n_pos) per unit and a label per unit."""
        cols, labels = [], []
        for cpos, y, x in parsed:
            chan = [c for c, p in self.channel_ids.items() if p == cpos][0]
            if y is None:
                cols.append(self.columns[cpos])
                labels.append(f"c{chan}")
            else:
                if self.positions[0] is None or (y, x) not in self.positions:
                    raise UnitError(
                        f"unit (channel={chan}, row={y}, col={x}) is out of range for layer "
                        f"{self.layer!r}: its activations have shape {self.shape_text}"
                    )
                p = self.positions.index((y, x))
                cols.append(self.columns[cpos, p : p + 1])
                labels.append(f"c{chan}:y{y}:x{x}")
        width = max(len(c) for c in cols)
        padded = np.stack([np.resize(c, width) for c in cols])  # repeats: max/mean unchanged
        counts = np.array([len(c) for c in cols])
        return padded, counts, labels


def _layout_from_names(names, layer):
    prefix = f"{layer}:"
    idx = [i for i, n in enumerate(names) if n.startswith(prefix)]
    if not idx:
        layers = sorted({n.split(":", 1)[0] for n in names})
        raise LayerError(
            f"layer {layer!r} is not extracted by this extractor; its layers: {layers}"
        )
    chans, pos = {}, {}
    for i in idx:
        m = _FEATURE.match(names[i][len(prefix):])
        if m is None:
            raise UnitError(f"cannot read feature name {names[i]!r} (layer {layer!r})")
        if m.group("u") is not None:
            c, p = int(m.group("u")), None
        else:
            c = int(m.group("c"))
            p = None if m.group("y") is None else (int(m.group("y")), int(m.group("x")))
        chans.setdefault(c, []).append(i)
        pos.setdefault(c, []).append(p)
    channel_list = sorted(chans)
    columns = np.array([chans[c] for c in channel_list])
    positions = pos[channel_list[0]]
    n_pos = len(positions)
    shape_text = f"({len(channel_list)} channels" + (
        f" x {n_pos} positions)" if positions[0] is not None else ")"
    )
    return _Layout(layer, columns, channel_list, positions, shape_text,
                   {c: k for k, c in enumerate(channel_list)})


def _layout_from_file(shape, layer_attrs, layer):
    row_shape = tuple(shape[1:])
    native = layer_attrs.get("native_shape")
    channels = layer_attrs.get("channels")
    if len(row_shape) == 1:
        n_c = row_shape[0]
        if not layer_attrs.get("pooled", False) and native and len(native) > 1:
            # flattened maps
            n_c = int(native[0]) if channels is None else len(channels)
            hw = int(np.prod(native[1:]))
            columns = np.arange(n_c * hw).reshape(n_c, hw)
            positions = ([(y, x) for y in range(native[1]) for x in range(native[2])]
                         if len(native) == 3 else [None] * hw)
        else:
            columns = np.arange(n_c).reshape(n_c, 1)
            positions = [None]
    else:
        n_c = row_shape[0]
        hw = int(np.prod(row_shape[1:]))
        columns = np.arange(n_c * hw).reshape(n_c, hw)
        positions = ([(y, x) for y in range(row_shape[1]) for x in range(row_shape[2])]
                     if len(row_shape) == 3 else [None] * hw)
    ids = list(channels) if channels is not None else list(range(n_c))
    shape_text = str(tuple(native) if native else row_shape)
    return _Layout(layer, columns, ids, positions, shape_text, {c: k for k, c in enumerate(ids)})


def top_stimuli(source, stimuli=None, layer=None, units=None, k=5, *, metric="mean",
                chunk_size=256):
    """The k stimuli with the highest activation per unit, streamed in chunks.

    Parameters
    ----------
    source : fitted DNNFeatureExtractor, or path to an ``.act.h5`` file
        An extractor computes the activations of ``stimuli`` chunk by chunk; a file is read chunk
        by chunk.
    stimuli : StimulusSet, paths, array, optional
        The stimuli (required with an extractor; with a file, optional, only to check that they
        match the file's stimulus IDs).
    layer : str
        Layer as named in the extractor / file (optional when there is only one).
    units : int, list of int or list of (channel, row, col), optional
        Channels (scored by ``metric`` over space) or single units. Default: every channel.
    k : int
        Number of stimuli per unit.
    metric : {"mean", "max"}
        How a channel's map is summarised per stimulus: its spatial mean (the default, as for
        every inspection function) or its spatial max.
    chunk_size : int
        Stimuli per chunk; memory stays bounded whatever the number of stimuli.

    Returns
    -------
    TopStimuli
    """
    check_metric(metric)
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = int(k)
    if isinstance(source, (str, Path)):
        return _from_file(Path(source), stimuli, layer, units, k, metric, chunk_size)
    if not hasattr(source, "transform"):
        raise TypeError(
            "source must be a fitted DNNFeatureExtractor or the path of an .act.h5 file, not "
            f"{type(source).__name__}"
        )
    if stimuli is None:
        raise ValueError("top_stimuli with an extractor needs the stimuli")
    from neuroprobe.stimuli import as_stimulus_set

    stimset = as_stimulus_set(stimuli)
    names = [str(n) for n in source.get_feature_names_out()]
    if layer is None:
        layers = list(dict.fromkeys(n.split(":", 1)[0] for n in names))
        if len(layers) != 1:
            raise ValueError(f"the extractor has several layers {layers}; pass layer=")
        layer = layers[0]
    layout = _layout_from_names(names, layer)
    parsed = _parse_units(units, layout.n_channels, layer, layout.shape_text, layout.channel_ids)
    cols, counts, labels = layout.unit_columns(parsed, metric)
    chunks = (
        (start, np.asarray(source.transform(stimset[start : start + chunk_size])))
        for start in range(0, len(stimset), chunk_size)
    )
    best_v, best_i = _scan(chunks, cols, counts, metric, k)
    return TopStimuli(layer, labels, best_i, best_v, np.asarray(stimset.ids)[best_i], metric)


def _scan(chunks, cols, counts, metric, k):
    n_units = len(cols)
    best_v = np.empty((n_units, 0), np.float32)
    best_i = np.empty((n_units, 0), np.int64)
    for start, block in chunks:
        block = np.asarray(block, dtype=np.float32).reshape(len(block), -1)
        sub = block[:, cols]  # (b, n_units, n_pos)
        if metric == "max":
            vals = sub.max(axis=2)
        else:
            width = cols.shape[1]
            vals = sub.mean(axis=2) if np.all(counts == width) else np.stack(
                [sub[:, u, : counts[u]].mean(axis=1) for u in range(n_units)], axis=1
            )
        idx = np.arange(start, start + len(block), dtype=np.int64)
        best_v, best_i = merge_top_k(best_v, best_i, vals.T, idx, k)
    return best_v.astype(np.float32), best_i


def _from_file(path, stimuli, layer, units, k, metric, chunk_size):
    from neuroprobe.io.activations import open_activations

    with open_activations(path) as f:
        if layer is None:
            if len(f.layers) != 1:
                raise ValueError(f"{path} holds several layers {f.layers}; pass layer=")
            layer = f.layers[0]
        shape = f.shape(layer)
        layout = _layout_from_file(shape, f.layer_attrs(layer), layer)
        parsed = _parse_units(units, layout.n_channels, layer, layout.shape_text,
                              layout.channel_ids)
        cols, counts, labels = layout.unit_columns(parsed, metric)
        ids = np.asarray(f.stim_ids)
        if stimuli is not None:
            from neuroprobe.stimuli import as_stimulus_set

            given = np.asarray(as_stimulus_set(stimuli).ids)
            if len(given) != len(ids) or np.any(given != ids):
                raise ValueError(f"the stimuli do not match the stimulus IDs stored in {path}")
        n = shape[0]
        step = max(1, min(chunk_size, n // 2)) if n > 1 else 1
        chunks = ((s, f.read(layer, np.arange(s, min(n, s + step)))) for s in range(0, n, step))
        best_v, best_i = _scan(chunks, cols, counts, metric, k)
    return TopStimuli(layer, labels, best_i, best_v, ids[best_i], metric)
