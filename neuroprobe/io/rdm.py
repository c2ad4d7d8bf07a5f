"""RDM files: neuroprobe's ``.rdm.h5`` (HDF5) and import of DNNBrain's ``.rdm.h5``.

neuroprobe layout (``attrs["format"] == "neuroprobe.rdm"``):

- dataset ``rdms``: (n_rdms, n_pairs) condensed RDMs in scipy ``pdist`` order (upper triangle, row
  by row), float32 or float64;
- dataset ``names``: one utf-8 name per RDM (layer, ROI, subject ...);
- dataset ``stim_ids``: utf-8 stimulus IDs, one per RDM row/column;
- root attrs: ``format``, ``n_stimuli``, ``metric``, ``neuroprobe_version`` and any user attrs
  (JSON-encoded when not scalar).

DNNBrain layout (``dnnbrain.io.fileio.RdmFile``): root attr ``type`` (``"bRDM"``: one dataset per
ROI of shape (n_pairs,); ``"dRDM"``: one dataset per layer of shape (n_iter, n_pairs)), each vector
the *lower* triangle of the square RDM in row-major order (``rdm[np.tri(n, k=-1, dtype=bool)]``).
That order differs from pdist's; :func:`read_dnnbrain_rdm` converts it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuroprobe._utils import atomic_h5

FORMAT = "neuroprobe.rdm"

__all__ = [
    "RDMData",
    "save_rdms",
    "load_rdms",
    "read_dnnbrain_rdm",
    "lower_to_condensed",
    "describe",
]


@dataclass
class RDMData:
    """RDMs read from a file.

    Attributes
    ----------
    rdms : ndarray of shape (n_rdms, n_pairs)
        Condensed RDMs in pdist order.
    names : list of str
    stim_ids : ndarray of str or None
    attrs : dict
    """

    rdms: np.ndarray
    names: list
    stim_ids: np.ndarray | None = None
    attrs: dict = field(default_factory=dict)

    @property
    def n_stimuli(self):
        from neuroprobe.solvers.rdm import n_from_pairs

        return n_from_pairs(self.rdms.shape[1])

    def __getitem__(self, name):
        """The condensed RDM called ``name`` (``KeyError`` lists the names)."""
        if name not in self.names:
            raise KeyError(f"no RDM named {name!r}; available: {self.names}")
        return self.rdms[self.names.index(name)]


def _str_dataset(group, name, values):
    import h5py

    values = [str(v) for v in values]
    group.create_dataset(name, data=np.array(values, dtype=object), dtype=h5py.string_dtype())


def save_rdms(path, rdms, names=None, stim_ids=None, metric=None, attrs=None):
    """Write RDMs to an HDF5 file atomically (temporary file, then rename).

    Parameters
    ----------
    path : str or Path
    rdms : array of shape (m,), (k, m), (n, n) or (k, n, n)
        One or several RDMs, condensed or square.
    names : list of str, optional
        One name per RDM (default ``rdm0``, ``rdm1`` ...).
    stim_ids : sequence of str, optional
        One ID per stimulus (RDM row).
    metric : str, optional
        Dissimilarity used (stored as an attribute).
    attrs : dict, optional
        Extra attributes (non-scalars are stored as JSON).
    """

    from neuroprobe._version import __version__
    from neuroprobe.solvers.rdm import n_from_pairs, to_condensed

    V = np.atleast_2d(to_condensed(rdms, "rdms"))
    n = n_from_pairs(V.shape[1])
    names = [f"rdm{i}" for i in range(V.shape[0])] if names is None else [str(x) for x in names]
    if len(names) != V.shape[0]:
        raise ValueError(f"names has {len(names)} entries for {V.shape[0]} RDMs")
    if stim_ids is not None and len(stim_ids) != n:
        raise ValueError(f"stim_ids has {len(stim_ids)} entries; the RDMs have {n} stimuli")
    with atomic_h5(path) as f:  # built in memory: a full disk is one clean error
        f.attrs["format"] = FORMAT
        f.attrs["n_stimuli"] = n
        f.attrs["neuroprobe_version"] = __version__
        if metric is not None:
            f.attrs["metric"] = str(metric)
        for key, value in (attrs or {}).items():
            f.attrs[key] = value if np.isscalar(value) else json.dumps(value)
        dtype = V.dtype if V.dtype in (np.float32, np.float64) else np.float64
        f.create_dataset("rdms", data=V.astype(dtype), compression="gzip", shuffle=True)
        _str_dataset(f, "names", names)
        if stim_ids is not None:
            _str_dataset(f, "stim_ids", stim_ids)
    return Path(path)


def _decode(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def load_rdms(path):
    """Read RDMs written by :func:`save_rdms`, or a DNNBrain ``.rdm.h5`` file.

    Returns
    -------
    RDMData
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"RDM file not found: {path}")
    with h5py.File(path, "r") as f:
        fmt = f.attrs.get("format")
        if fmt is None and "type" in f.attrs:
            return read_dnnbrain_rdm(path)
        if fmt != FORMAT or "rdms" not in f:
            raise ValueError(
                f"{path} is neither a neuroprobe RDM file (attrs['format'] == {FORMAT!r} and a "
                "'rdms' dataset) nor a DNNBrain .rdm.h5 file (attrs['type'] bRDM/dRDM)"
            )
        rdms = f["rdms"][()]
        names = _decode(f["names"][()])
        stim_ids = np.array(_decode(f["stim_ids"][()])) if "stim_ids" in f else None
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    return RDMData(rdms, names, stim_ids, attrs)


def lower_to_condensed(lower, n=None):
    """Convert DNNBrain's row-major lower-triangle vectors (..., m) to pdist order."""
    from neuroprobe.solvers.rdm import n_from_pairs

    lower = np.asarray(lower)
    n = n or n_from_pairs(lower.shape[-1])
    rows, cols = np.nonzero(np.tri(n, k=-1, dtype=bool))  # DNNBrain order: (1,0), (2,0), (2,1) ...
    # entry (r, c), r > c, is the pdist entry (c, r)
    pos = cols * n - cols * (cols + 1) // 2 + (rows - cols - 1)
    out = np.empty_like(lower)
    out[..., pos] = lower
    return out


def read_dnnbrain_rdm(path):
    """Import a DNNBrain ``.rdm.h5`` file (``dnnbrain.io.fileio.RdmFile``).

    A ``bRDM`` file gives one RDM per ROI (named by the ROI); a ``dRDM`` file gives ``n_iter`` RDMs
    per layer, named ``"<layer>"`` when ``n_iter == 1`` else ``"<layer>#<iter>"``. Vectors are
    converted from DNNBrain's lower-triangle order to pdist order.

    Returns
    -------
    RDMData
        ``attrs["type"]`` is ``"bRDM"`` or ``"dRDM"``; no stimulus IDs (DNNBrain stores none).
    """
    import h5py

    path = Path(path)
    with h5py.File(path, "r") as f:
        rdm_type = f.attrs.get("type")
        rdm_type = rdm_type.decode() if isinstance(rdm_type, bytes) else rdm_type
        if rdm_type not in ("bRDM", "dRDM"):
            raise ValueError(
                f"{path}: not a DNNBrain .rdm.h5 file (attrs['type'] must be 'bRDM' or 'dRDM'; "
                f"got {rdm_type!r})"
            )
        names, rows = [], []
        for key, ds in f.items():
            data = ds[()]
            if rdm_type == "bRDM":
                if data.ndim != 1:
                    raise ValueError(f"{path}: bRDM dataset {key!r} must be 1-D; got {data.shape}")
                names.append(key)
                rows.append(data)
            else:
                if data.ndim != 2:
                    raise ValueError(f"{path}: dRDM dataset {key!r} must be 2-D; got {data.shape}")
                for it, row in enumerate(data):
                    names.append(key if data.shape[0] == 1 else f"{key}#{it}")
                    rows.append(row)
    if not rows:
        raise ValueError(f"{path}: the file holds no RDM")
    lengths = {r.size for r in rows}
    if len(lengths) > 1:
        raise ValueError(f"{path}: RDMs of different lengths {sorted(lengths)}")
    rdms = lower_to_condensed(np.stack(rows))
    return RDMData(rdms, names, None, {"type": rdm_type, "source": "dnnbrain"})


def describe(path):
    """Human-readable summary of an RDM file (used by ``neuroprobe info``)."""
    data = load_rdms(path)
    kind = "DNNBrain " + data.attrs["type"] if data.attrs.get("source") == "dnnbrain" else (
        "neuroprobe RDMs")
    names = ", ".join(data.names[:10]) + (" ..." if len(data.names) > 10 else "")
    lines = [
        f"{path}: {kind}, {data.rdms.shape[0]} RDM(s) of {data.n_stimuli} stimuli "
        f"({data.rdms.shape[1]} pairs, {data.rdms.dtype})",
        f"  names: {names}",
    ]
    if data.attrs.get("metric"):
        lines.append(f"  metric: {data.attrs['metric']}")
    if data.stim_ids is not None:
        lines.append(f"  stimuli: {', '.join(data.stim_ids[:5])}"
                     + (" ..." if data.n_stimuli > 5 else ""))
    return "\n".join(lines)
