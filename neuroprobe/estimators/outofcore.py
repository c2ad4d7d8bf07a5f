"""Out-of-core encoding: fit 100k+ targets block by block and keep ``coef_`` in an HDF5 file.

:class:`~neuroprobe.estimators.VoxelwiseEncoder` already streams target batches from an HDF5 ``Y``
(its peak memory is one batch plus ``coef_``). For whole-brain studies ``coef_`` itself
(``n_features x n_targets``) can outgrow memory: :func:`fit_to_hdf5` fits the encoder on blocks of
targets and writes each block's coefficients, intercepts, chosen alphas and CV scores into an HDF5
file as it goes, so peak memory is one block. :func:`load_encoder` gives back a fitted encoder for
any subset of targets, and :func:`score_targets_hdf5` scores every target on held-out data, block by
block.

Because each target's alpha is chosen from its own CV scores, a block-wise fit equals the fit on all
targets at once (tested); an encoder with one alpha shared by all targets
(``alpha_per_target=False``) is refused.

File layout (root of the HDF5 file): datasets ``coef`` (n_features, n_targets), ``intercept``
(n_targets,), ``best_alphas`` (n_targets,), ``cv_scores`` (n_alphas, n_targets), ``alphas``
(n_alphas,), optional ``feature_names``; attributes ``estimator``, ``params`` (JSON),
``n_features``, ``n_targets``, ``neuroprobe_version``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.base import clone

from neuroprobe._utils import atomic_path, memory_budget
from neuroprobe.io.targets import TargetView, column_view

__all__ = ["fit_to_hdf5", "load_encoder", "score_targets_hdf5"]

_RESTORED_PARAMS = ("scoring", "fit_intercept", "penalty", "dtype", "alpha_per_target", "alphas")


def _Columns(Y, cols):  # noqa: N802 (former class name of the column view)
    """Former name of the column view: ``TargetView(Y, cols=cols)``."""
    return TargetView(Y, cols=cols)


def _block_columns(Y, cols):
    return column_view(Y, cols)


def _check_estimator(estimator):
    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    if not isinstance(estimator, VoxelwiseEncoder):
        raise TypeError(
            "fit_to_hdf5 needs a VoxelwiseEncoder (one model per target, so that blocks of "
            f"targets can be fitted separately); got {type(estimator).__name__}"
        )
    if not estimator.alpha_per_target and estimator._solver().tuned:
        raise ValueError(
            "fit_to_hdf5 fits blocks of targets separately, which equals the whole fit only when "
            "each target chooses its own alpha: use alpha_per_target=True (or fit in memory)"
        )


def _default_block(n_features, n_targets, itemsize=4):
    # coef block + its copy + the encoder's own batches: keep a block to ~1/4 of the budget
    per_target = max(1, 3 * n_features * itemsize)
    return int(max(1, min(n_targets, memory_budget() // 4 // per_target)))


def _jsonable(value):
    return value.tolist() if hasattr(value, "tolist") else repr(value)


def _params_json(estimator):
    """Parameters as JSON; arrays become lists, other objects (CV splitters) their repr."""
    return json.dumps(estimator.get_params(deep=False), default=_jsonable, sort_keys=True)


def fit_to_hdf5(estimator, X, Y, path, *, groups=None, targets_per_block=None):
    """Fit a per-target encoder on blocks of targets, writing its results to an HDF5 file.

    Parameters
    ----------
    estimator : VoxelwiseEncoder
        Unfitted template (cloned for every block); its ``n_jobs``, ``backend`` and ``device``
        apply inside each block (target batches through joblib, or on the GPU).
    X : array-like of shape (n_samples, n_features)
    Y : array-like or h5py.Dataset of shape (n_samples, n_targets)
        Targets; an HDF5 dataset is read block by block (see
        :func:`neuroprobe.io.targets.open_targets`).
    path : str or path-like
        Output ``.h5`` file (written under a temporary name, renamed when complete).
    groups : array-like of shape (n_samples,), optional
        CV groups (e.g. runs), as in ``VoxelwiseEncoder.fit``.
    targets_per_block : int, optional
        Targets fitted at once (default: a quarter of the memory budget,
        :func:`neuroprobe._utils.memory_budget`, for the block's coefficients).

    Returns
    -------
    pathlib.Path
        The file, with datasets ``coef``, ``intercept``, ``best_alphas``, ``cv_scores``, ``alphas``.

    Examples
    --------
    >>> from neuroprobe.io.targets import open_targets            # doctest: +SKIP
    >>> Y = open_targets("bold.h5")                               # doctest: +SKIP
    >>> fit_to_hdf5(VoxelwiseEncoder(cv=5), X, Y, "encoder.h5")   # doctest: +SKIP
    """
    import h5py

    from neuroprobe._version import __version__

    _check_estimator(estimator)
    if len(getattr(Y, "shape", ())) != 2:
        Y = np.asarray(Y)
    if Y.ndim != 2:
        raise ValueError(f"Y must be 2-D (n_samples, n_targets); got shape {Y.shape}")
    n_targets = int(Y.shape[1])
    n_features = int(np.shape(X)[1]) if np.ndim(X) == 2 else None
    if n_features is None:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {np.shape(X)}")
    if targets_per_block is None:
        targets_per_block = _default_block(n_features, n_targets)
    if int(targets_per_block) < 1:
        raise ValueError(f"targets_per_block must be >= 1; got {targets_per_block}")
    block = int(targets_per_block)
    path = Path(path)
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as fh:
        for start in range(0, n_targets, block):
            cols = slice(start, min(n_targets, start + block))
            est = clone(estimator).fit(X, _block_columns(Y, cols), groups=groups)
            coef = np.asarray(est.coef_).reshape(n_features, -1)
            if start == 0:
                dtype = coef.dtype
                chunk = int(max(1, min(n_targets, (4 * 1024**2) // (n_features * dtype.itemsize))))
                fh.create_dataset("coef", (n_features, n_targets), dtype=dtype,
                                  chunks=(n_features, chunk))
                fh.create_dataset("intercept", (n_targets,), dtype=dtype)
                fh.create_dataset("best_alphas", (n_targets,), dtype=np.float64)
                fh.create_dataset("cv_scores", (len(est.alphas_), n_targets), dtype=np.float64)
                fh.create_dataset("alphas", data=np.asarray(est.alphas_, dtype=np.float64))
                if hasattr(est, "feature_names_in_"):
                    fh.create_dataset("feature_names", data=np.asarray(est.feature_names_in_,
                                                                       dtype=object),
                                      dtype=h5py.string_dtype("utf-8"))
                fh.attrs["estimator"] = type(est).__name__
                fh.attrs["params"] = _params_json(estimator)
                fh.attrs["n_features"] = n_features
                fh.attrs["n_targets"] = n_targets
                fh.attrs["neuroprobe_version"] = __version__
            fh["coef"][:, cols] = coef
            fh["intercept"][cols] = np.reshape(est.intercept_, -1)
            fh["best_alphas"][cols] = est.best_alphas_
            fh["cv_scores"][:, cols] = est.cv_scores_
            del est, coef
    return path


def _upgraded(params):
    """Parameters of a file written before ``model=`` became ``penalty=`` (model -> penalty)."""
    from neuroprobe.estimators.encoding import _MODEL_TO_PENALTY

    model = params.pop("model", "deprecated")
    if model in _MODEL_TO_PENALTY and "penalty" not in params:
        params["penalty"] = _MODEL_TO_PENALTY[model]
    return params


def _take(sel, dset, axis):
    """``dset`` indexed by ``sel`` along ``axis`` (h5py fancy indexing wants increasing indices)."""
    if isinstance(sel, slice):
        return dset[(slice(None),) * axis + (sel,)]
    sel = np.asarray(sel)
    if sel.dtype == bool:
        sel = np.flatnonzero(sel)
    sel = np.where(sel < 0, sel + dset.shape[axis], sel)
    unique, inverse = np.unique(sel, return_inverse=True)
    data = dset[(slice(None),) * axis + (unique,)]
    return np.take(data, inverse, axis=axis)


def _open(path):
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"encoder file not found: {path}")
    fh = h5py.File(path, "r")
    missing = [k for k in ("coef", "intercept", "best_alphas", "alphas") if k not in fh]
    if missing:
        fh.close()
        raise ValueError(f"{path} is not a fit_to_hdf5 file: missing dataset(s) {missing}")
    return fh


def load_encoder(path, targets=None):
    """A fitted :class:`~neuroprobe.estimators.VoxelwiseEncoder` for some targets of a file.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`fit_to_hdf5`.
    targets : slice, int array or None
        Targets (columns) to load; ``None``: all of them (the whole ``coef_`` in memory).

    Returns
    -------
    VoxelwiseEncoder
        With ``coef_``, ``intercept_``, ``best_alphas_``, ``cv_scores_``, ``alphas_`` of the
        selected targets; ``predict`` and ``score_targets`` work as after ``fit``.
    """
    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    with _open(path) as fh:
        params = _upgraded(json.loads(fh.attrs.get("params", "{}")))
        est = VoxelwiseEncoder()
        restored = {k: params[k] for k in _RESTORED_PARAMS
                    if k in params and not (isinstance(params[k], str) and "(" in params[k])}
        est.set_params(**restored)
        sel = slice(None) if targets is None else targets
        est.coef_ = _take(sel, fh["coef"], 1)
        est.intercept_ = _take(sel, fh["intercept"], 0)
        est.best_alphas_ = _take(sel, fh["best_alphas"], 0)
        if "cv_scores" in fh:
            est.cv_scores_ = _take(sel, fh["cv_scores"], 1)
        est.alphas_ = fh["alphas"][:]
        est.n_features_in_ = int(fh.attrs["n_features"])
        est.n_targets_ = est.coef_.shape[1]
        if "feature_names" in fh:
            est.feature_names_in_ = fh["feature_names"].asstr()[:].astype(object)
    return est


def score_targets_hdf5(path, X, Y, *, targets_per_block=None):
    """Held-out score of every target of a :func:`fit_to_hdf5` file, streamed by target blocks.

    Parameters
    ----------
    path : str or path-like
    X : array-like of shape (n_samples, n_features)
        Held-out features.
    Y : array-like or h5py.Dataset of shape (n_samples, n_targets)
        Held-out targets, same columns as in the fit.
    targets_per_block : int, optional

    Returns
    -------
    ndarray of shape (n_targets,)
        ``scoring`` of the fit (Pearson r or R^2) per target.
    """
    with _open(path) as fh:
        n_features, n_targets = (int(fh.attrs[k]) for k in ("n_features", "n_targets"))
    if Y.shape[1] != n_targets:
        raise ValueError(f"Y has {Y.shape[1]} targets; {path} holds {n_targets}")
    block = int(targets_per_block or _default_block(n_features, n_targets))
    out = np.empty(n_targets, dtype=np.float64)
    for start in range(0, n_targets, block):
        cols = slice(start, min(n_targets, start + block))
        est = load_encoder(path, cols)
        out[cols] = est.score_targets(X, _block_columns(Y, cols))
    return out
