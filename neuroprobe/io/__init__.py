"""Files only, no statistics: activation stores, brain images, RDM files.

``DESCRIBERS`` maps a file-name suffix to ``"module:function"``; the function takes a path and
returns a human-readable summary (used by ``neuroprobe info FILE``). Other file kinds add their
entry here.
"""

from __future__ import annotations

import importlib

DESCRIBERS = {
    ".act.h5": "neuroprobe.io.activations:describe",
    ".act.h5.partial": "neuroprobe.io.activations:describe",
    ".rdm.h5": "neuroprobe.io.rdm:describe",
    ".h5": "neuroprobe.io:describe_hdf5",
    ".hdf5": "neuroprobe.io:describe_hdf5",
    ".npy": "neuroprobe.io:describe_npy",
    ".npz": "neuroprobe.io:describe_npz",
}


def describe(path):
    """Summary of a neuroprobe file, chosen by its suffix (see ``DESCRIBERS``).

    Activation files (also unfinished ``.partial`` ones) and RDM files have their own summary;
    any other HDF5 file neuroprobe writes (saliency maps, optimal stimuli, ROI and HRF features,
    targets, out-of-core models), ``.npy`` maps and ``.npz`` files (``reduce``, confusion
    matrices) are listed dataset by dataset with their attributes.
    """
    name = str(path)
    for suffix in sorted(DESCRIBERS, key=len, reverse=True):
        if name.lower().endswith(suffix):
            module, func = DESCRIBERS[suffix].split(":")
            return getattr(importlib.import_module(module), func)(path)
    raise ValueError(
        f"cannot describe {name!r}: unknown file kind; known suffixes: {', '.join(DESCRIBERS)}"
    )


def _value(value, width=70):
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    text = str(value.tolist() if hasattr(value, "tolist") else value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _array_line(name, shape, dtype):
    return f"    {name:<28} {str(tuple(shape)):<22} {dtype}"


def describe_hdf5(path):
    """Summary of any HDF5 file: root attributes, then every dataset (shape, dtype, attributes).

    The kind is named from the attributes neuroprobe writes (``format``, ``kind``, ``method``,
    ``estimator``, ...).
    """
    import h5py

    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        from neuroprobe._utils import io_cause

        raise OSError(f"cannot open {path} as HDF5: {io_cause(exc)}") from exc
    with fh:
        if "layers" in fh and "stim_ids" in fh and "n_done" in fh.attrs:
            from neuroprobe.io.activations import describe as describe_act

            return describe_act(path)
        attrs = dict(fh.attrs)
        from neuroprobe.io import rdm as _rdm

        if _value(attrs.get("format", "")) == _rdm.FORMAT or (
            _value(attrs.get("type", "")) in ("bRDM", "dRDM")
        ):
            return _rdm.describe(path)
        kind = next(
            (_value(attrs[k]) for k in ("format", "kind", "method", "estimator", "type")
             if k in attrs),
            None,
        )
        lines = [f"{path}: HDF5 file" + (f" ({kind})" if kind else "")]
        for key, value in attrs.items():
            lines.append(f"  {key}: {_value(value)}")
        lines.append("  datasets:")
        items = []
        fh.visititems(lambda name, obj: items.append((name, obj)))
        for name, obj in items:
            if isinstance(obj, h5py.Dataset):
                lines.append(_array_line(name, obj.shape, obj.dtype))
                for key, value in obj.attrs.items():
                    lines.append(f"      {key}: {_value(value)}")
        return "\n".join(lines)


def describe_npy(path):
    """Summary of a ``.npy`` array (shape, dtype, and finite range) without loading it whole."""
    import numpy as np

    arr = np.load(path, mmap_mode="r", allow_pickle=False)
    lines = [f"{path}: NumPy array", _array_line("array", arr.shape, arr.dtype)]
    if arr.dtype.kind in "fiu" and arr.size:
        data = np.asarray(arr, dtype=np.float64).ravel()
        finite = np.isfinite(data)
        if finite.any():
            lines.append(
                f"  values: min {data[finite].min():.6g}, max {data[finite].max():.6g}, "
                f"{int((~finite).sum())} NaN/inf of {data.size}"
            )
    return "\n".join(lines)


def describe_npz(path):
    """Summary of an ``.npz`` file: every array with its shape and dtype."""
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        lines = [f"{path}: NumPy .npz archive ({len(data.files)} arrays)"]
        for name in data.files:
            arr = data[name]
            line = _array_line(name, arr.shape, arr.dtype)
            if arr.dtype.kind == "U" and arr.ndim == 1:
                line += f"  ({', '.join(map(str, arr[:3]))}{', ...' if arr.size > 3 else ''})"
            lines.append(line)
    return "\n".join(lines)
