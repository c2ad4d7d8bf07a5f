"""Feature bands: which columns of X belong to which feature space (the one rule).

:func:`resolve_bands` turns a user's band specification into column indices. It is the one owner
of the rule for every front end that splits features into bands:
:class:`~neuroprobe.estimators.BandedRidgeEncoder` (every feature in a band: ``cover="all"``),
:func:`~neuroprobe.partition.variance_partitioning` (columns in no band are left out:
``cover="any"``) and the ``--bands`` flag of ``neuroprobe encode`` / ``neuroprobe partition``.

Accepted specs (the same everywhere):

* a feature-name prefix: ``"conv3:"`` selects the columns whose name starts with ``"conv3:"``,
  also after the ``"<step>__"`` prefixes a FeatureUnion / ColumnTransformer adds
  (``"cnn__conv3:0"``); ``"conv3"`` (no colon) means ``"conv3:"`` when such names exist, else
  every name starting with ``"conv3"``;
* a slice, a list / array of column indices (negative ones count from the end), a boolean mask
  of one entry per column, or a list of exact feature names;
* a list of such specs (listed prefixes name their band, ``"conv3"``; other specs are ``band0``,
  ``band1``, ...), or a dict ``name -> spec``;
* ``None``: one band per layer (the text before the first ``":"`` of every name, after any
  ``"<step>__"`` prefix) when every name has one, else one band ``"all"`` of every column.
"""

from __future__ import annotations

import numpy as np

from neuroprobe.exceptions import BandError

__all__ = ["COVER_RULES", "resolve_bands", "band_prefixes"]

#: ``"all"``: every column must be in a band; ``"any"``: columns in no band are allowed.
COVER_RULES = ("all", "any")


def _strip_step(name):
    """A feature name without the ``"<step>__"`` prefixes of FeatureUnion / ColumnTransformer."""
    return str(name).rsplit("__", 1)[-1]


def band_prefixes(feature_names, limit=20):
    """The distinct layer prefixes (``"conv3:"``) of feature names, in order of appearance."""
    if feature_names is None:
        return []
    out = list(dict.fromkeys(_strip_step(n).split(":", 1)[0] + ":"
                             for n in feature_names if ":" in _strip_step(n)))
    return out[:limit] + (["..."] if len(out) > limit else [])


def _startswith(names, stripped, key):
    return np.array([n.startswith(key) or s.startswith(key) for n, s in zip(names, stripped)],
                    dtype=bool)


def _prefix_columns(spec, names, label):
    if names is None:
        raise BandError(
            f"bands: band {label!r} is a feature-name prefix ({spec!r}) but X has no feature "
            "names; pass X as a pandas DataFrame (in a Pipeline: set_output(transform='pandas')), "
            "feature_names=, or bands as slices / column indices"
        )
    stripped = [_strip_step(n) for n in names]
    if spec.endswith(":"):
        hit = _startswith(names, stripped, spec)
    else:
        hit = _startswith(names, stripped, spec + ":")
        if not hit.any():
            hit = _startswith(names, stripped, spec)
    cols = np.flatnonzero(hit)
    if cols.size == 0:
        known = band_prefixes(names)
        raise BandError(
            f"bands: band {label!r}: prefix {spec!r} names no feature of X; the feature-name "
            f"prefixes are {known if known else '(none: names such as ' + str(names[:3]) + ')'}"
        )
    return cols


def _array_columns(spec, names, n_features, label):
    values = np.asarray(spec, dtype=object).ravel()
    if values.size and all(isinstance(v, str) for v in values):
        if names is None:
            raise BandError(f"bands: band {label!r} lists feature names but X has no feature "
                            "names; pass a DataFrame or feature_names=")
        index = {n: i for i, n in enumerate(names)}
        missing = [v for v in values if v not in index]
        if missing:
            raise BandError(f"bands: band {label!r} names features that are not in X: "
                            f"{missing[:5]}")
        return np.array([index[v] for v in values], dtype=np.intp)
    arr = np.asarray(spec)
    if arr.dtype == bool:
        if arr.shape != (n_features,):
            raise BandError(f"bands: band {label!r}: a boolean mask must have one entry per "
                            f"column ({n_features}); got shape {arr.shape}")
        return np.flatnonzero(arr)
    if arr.size == 0:
        return np.zeros(0, dtype=np.intp)
    if not np.issubdtype(arr.dtype, np.integer):
        raise BandError(f"bands: band {label!r}: expected a prefix, a slice, column indices, "
                        f"feature names or a boolean mask; got {spec!r}")
    arr = arr.ravel()
    if np.any(arr < -n_features) or np.any(arr >= n_features):
        raise BandError(f"bands: band {label!r} must hold column indices in [0, {n_features}); "
                        f"got {int(arr.min())} .. {int(arr.max())}")
    return np.arange(n_features)[arr]


def _columns(spec, names, n_features, label):
    """Sorted distinct column indices of one band spec."""
    if isinstance(spec, str):
        cols = _prefix_columns(spec, names, label)
    elif isinstance(spec, slice):
        cols = np.arange(n_features)[spec]
    else:
        cols = _array_columns(spec, names, n_features, label)
    if cols.size == 0:
        raise BandError(f"bands: band {label!r} ({spec!r}) names no feature of X ({n_features} "
                        f"columns; prefixes: {band_prefixes(names) or 'none'})")
    return np.unique(np.asarray(cols, dtype=np.intp))


def resolve_bands(bands, n_features=None, feature_names=None, *, cover="all"):
    """The columns of every feature band: ``{name: sorted int array}`` in band order.

    Parameters
    ----------
    bands : None, str, slice, list, tuple or dict
        See the module docstring: prefixes (``"conv3:"``), slices, column indices, boolean
        masks, feature names, a list of them or a dict ``name -> spec``; ``None``: one band per
        layer prefix (or one band ``"all"``).
    n_features : int, optional
        Number of columns of X (default: ``len(feature_names)``).
    feature_names : array-like of str, optional
        Names of the columns of X (needed by prefixes and name lists).
    cover : {"all", "any"}, default="all"
        ``"all"``: every column must belong to a band (banded ridge); ``"any"``: columns in no
        band are allowed (variance partitioning leaves them out of every model).

    Returns
    -------
    dict of str to ndarray of intp

    Raises
    ------
    BandError
        No band, a band that names no feature (the message names the band and lists the
        feature-name prefixes of X), overlapping bands, duplicate band names, a spec of the
        wrong kind, or (``cover="all"``) columns in no band.
    """
    if cover not in COVER_RULES:
        raise ValueError(f"cover must be one of {COVER_RULES}; got {cover!r}")
    names = None if feature_names is None else [str(n) for n in np.ravel(feature_names)]
    if n_features is None:
        if names is None:
            raise ValueError("resolve_bands needs n_features or feature_names")
        n_features = len(names)
    n_features = int(n_features)
    if names is not None and len(names) != n_features:
        raise BandError(f"feature_names has {len(names)} names but X has {n_features} columns")
    if bands is None:
        if names and all(":" in _strip_step(n) for n in names):
            owner = np.asarray([_strip_step(n).split(":", 1)[0] for n in names])
            return {layer: np.flatnonzero(owner == layer) for layer in dict.fromkeys(owner)}
        return {"all": np.arange(n_features)}
    if isinstance(bands, (str, slice)):
        bands = [bands]
    if isinstance(bands, dict):
        items = [(str(name), spec) for name, spec in bands.items()]
    elif isinstance(bands, (list, tuple)):
        items = [((b.rstrip(":") or b) if isinstance(b, str) else f"band{i}", b)
                 for i, b in enumerate(bands)]
    else:
        raise BandError(f"bands must be a dict name -> spec or a list of specs; got "
                        f"{type(bands).__name__}")
    if not items:
        raise BandError("bands is empty: give at least one band")
    if len({name for name, _ in items}) != len(items):
        raise BandError(f"band names must be distinct; got {[n for n, _ in items]}")
    out = {}
    owner = np.full(n_features, -1)
    for i, (label, spec) in enumerate(items):
        cols = _columns(spec, names, n_features, label)
        clash = owner[cols] >= 0
        if np.any(clash):
            other = items[int(owner[cols][clash][0])][0]
            raise BandError(
                f"bands: bands {other!r} and {label!r} overlap ({int(clash.sum())} shared "
                f"feature(s), e.g. column {int(cols[clash][0])}); each feature belongs to at "
                "most one band"
            )
        owner[cols] = i
        out[label] = cols
    rest = np.flatnonzero(owner < 0)
    if cover == "all" and rest.size:
        which = [names[j] for j in rest[:3]] if names is not None else [int(j) for j in rest[:3]]
        raise BandError(
            f"bands: {rest.size} feature(s) of X belong to no band (e.g. {which}); add a band "
            f"for them or drop them before the encoder (prefixes: "
            f"{band_prefixes(names) or 'none'})"
        )
    return out
