"""What the encoders share: the opening of ``fit``, scoring, predicting, and target batches.

:class:`_EncoderMixin` gives :class:`~neuroprobe.estimators.VoxelwiseEncoder` and
:class:`~neuroprobe.estimators.PLSEncoder` their tags, their validation of ``X`` and ``y``
(:meth:`_EncoderMixin._validate_fit_data`), ``predict``, ``score`` and ``score_targets``.
:func:`run_batches` runs a pure solver worker (``neuroprobe.solvers``) over batches of target
columns through joblib, refusing non-finite batches, and merges the workers' dict results into
the caller's arrays.
"""

from __future__ import annotations

import numpy as np
from joblib import Parallel, delayed
from sklearn.utils.validation import check_is_fitted, validate_data

from neuroprobe._progress import progress
from neuroprobe._utils import check_finite, renamed_y
from neuroprobe.ceilings import normalize_scores
from neuroprobe.io.targets import as_targets, read_batch
from neuroprobe.metrics import warn_zero_variance
from neuroprobe.solvers.backend import get_backend
from neuroprobe.solvers.scoring import score_predictions

__all__ = ["_EncoderMixin", "run_batches"]


def _batches(n_targets, size):
    return [slice(i, min(i + size, n_targets)) for i in range(0, n_targets, size)]


def _bad_summary(y, start):
    """(count, first (row, column)) of non-finite values of a batch starting at column ``start``."""
    bad = ~np.isfinite(y)
    count = int(bad.sum())
    if not count:
        return 0, None
    r, c = np.argwhere(bad)[0]
    return count, (int(r), int(c) + start)


def _raise_non_finite(count, first, size, name="y"):
    raise ValueError(
        f"{name} contains {count} NaN or infinite value(s) out of {size}; the first at index "
        f"{first}. Remove or impute them before fitting."
    )


def _warn_constant(mask, where="fitted"):
    """One warning for the targets whose true values are constant in ``where`` samples."""
    warn_zero_variance("targets", where, mask, stacklevel=5)


def _resolve_dtype(dtype):
    """The numpy dtype of a ``dtype`` parameter (checked by ``_parameter_constraints``)."""
    return np.dtype(dtype if dtype is not None else np.float32)


def _target_scores(predict_batch, Y, scoring, dtype, batch, alphas=None, warn=True):
    """Per-target scores of ``predict_batch(cols)`` against ``Y``, in target batches.

    Returns ``(scores, constant_targets, constant_predictions)`` (bool masks). NaN scores are the
    targets constant in these samples; constant predictions score 0 (correlation). ``warn``:
    one :class:`~neuroprobe.metrics.ZeroVarianceWarning` per cause.
    """
    n_targets = Y.shape[1]
    out = np.empty(n_targets, dtype=np.float64)
    const_pred = np.zeros(n_targets, dtype=bool)
    be = get_backend("numpy")
    n_bad, first = 0, None
    for cols in _batches(n_targets, batch):
        y = read_batch(Y, cols, dtype)
        count, where = _bad_summary(y, cols.start)
        if count:
            n_bad += count
            first = first or where
            continue
        pred = predict_batch(cols).astype(dtype, copy=False)
        scores, const = score_predictions(y, pred.copy(), scoring, return_constant=True)
        out[cols], const_pred[cols] = be.to_numpy(scores), be.to_numpy(const)
    if n_bad:
        _raise_non_finite(n_bad, first, Y.shape[0] * n_targets)
    const_y = np.isnan(out)
    if warn:
        _warn_constant(const_y, "scored")
        chosen = None if alphas is None else np.asarray(alphas)[const_pred]
        warn_zero_variance("predictions", "scored", const_pred, chosen, stacklevel=5)
    return out, const_y, const_pred


class _EncoderMixin:
    """Tags, fit-time validation, score / score_targets / predict shared by the encoders
    (coef_ of shape (p, t))."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.required = True
        return tags

    def _validate_fit_data(self, X, Y):
        """The opening of ``fit``: ``(X, Y, was_1d, dtype)``, X validated (finite, at least two
        samples, sets ``n_features_in_``) and cast to ``dtype``; Y checked without a copy."""
        dtype = _resolve_dtype(self.dtype)
        X = validate_data(
            self,
            X,
            reset=True,
            dtype=[np.float64, np.float32],
            ensure_all_finite=False,
            ensure_min_samples=2,
        )
        check_finite(X, "X")
        X = X.astype(dtype, copy=False)
        Y, was_1d = as_targets(Y, X.shape[0], name="y")
        return X, Y, was_1d, dtype

    def _check_X(self, X, cast=True):
        X = validate_data(
            self, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite=False
        )
        check_finite(X, "X")
        return X.astype(self._coef_dtype(), copy=False) if cast else X

    def _coef_dtype(self):
        return self.coef_.dtype

    def _n_outputs(self):
        return 1 if self.coef_.ndim == 1 else self.coef_.shape[1]

    def _predict_columns(self, X, shift=True):
        """``cols -> X @ coef_[:, cols] + intercept_[cols]`` (X validated; no intercept when
        ``shift`` is False)."""
        coef = self.coef_.reshape(X.shape[1], -1)
        if not shift:
            return lambda cols: X @ coef[:, cols]
        intercept = np.reshape(self.intercept_, -1)
        return lambda cols: X @ coef[:, cols] + intercept[cols]

    def predict(self, X):
        """Predict the targets of new samples.

        Parameters
        ----------
        X : array-like (n_samples, n_features)

        Returns
        -------
        ndarray (n_samples, n_targets), or (n_samples,) when the model was fitted on 1-D y
            float64 for float64 ``X`` (also with ``dtype="float32"`` coefficients, which are then
            cast per target batch, so memory stays bounded), else the dtype of ``coef_``.
        """
        check_is_fitted(self)
        X = self._check_X(X, cast=False)
        dtype = np.result_type(X.dtype, self._coef_dtype())
        X = X.astype(dtype, copy=False)
        predict_columns = self._predict_columns(X)
        if self._coef_dtype() == dtype:
            pred = predict_columns(slice(None))
        else:  # float32 coefficients, float64 X: cast per target batch (bounded memory)
            n_out = self._n_outputs()
            pred = np.empty((X.shape[0], n_out), dtype=dtype)
            batch = max(1, int(2**24 // max(1, X.shape[1])))
            for cols in _batches(n_out, batch):
                pred[:, cols] = predict_columns(cols)
        if self._fitted_1d_output():
            pred = pred.reshape(X.shape[0])
        return pred

    def _fitted_1d_output(self):
        return np.ndim(self.intercept_) == 0

    def score_targets(self, X, y=None, *, Y=None, normalize=None):
        """Held-out score of every target (the encoding-accuracy map).

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        y : array-like or h5py.Dataset (n_samples, n_targets), or (n_samples,)
        Y : deprecated
            Former name of ``y`` (a FutureWarning; removed in the next release).
        normalize : array-like (n_targets,), optional
            Explainable variance of each target (:func:`neuroprobe.ceilings.explainable_variance`):
            return the score as a fraction of the noise ceiling, ``r / sqrt(EV)`` for
            ``scoring="correlation"``, ``score / EV`` otherwise
            (:func:`neuroprobe.ceilings.normalize_scores`; NaN where EV <= 0).

        Returns
        -------
        ndarray (n_targets,)
            ``scoring`` per target (Pearson r or R^2); NaN for targets with zero variance in
            these samples (undefined); a constant prediction (e.g. at a very large alpha) has
            correlation 0. One :class:`~neuroprobe.metrics.ZeroVarianceWarning` per cause
            counts them.
        """
        Y = renamed_y(y, Y, f"{type(self).__name__}.score_targets")
        scores = self._score_targets(X, Y)[0]
        if normalize is None:
            return scores
        kind = "correlation/ev" if self.scoring == "correlation" else "r2/ev"
        return normalize_scores(scores, normalize, kind=kind)

    def _score_targets(self, X, Y, warn=True):
        """``score_targets`` and the masks of constant targets and constant predictions."""
        check_is_fitted(self)
        X = self._check_X(X)
        Y, _ = as_targets(Y, X.shape[0], name="y")
        n_out = self._n_outputs()
        if Y.shape[1] != n_out:
            raise ValueError(f"y has {Y.shape[1]} targets; the model was fitted on {n_out}")
        dtype = self._coef_dtype()
        batch = max(1, int(2**26 // max(1, X.shape[0] + X.shape[1])))
        # correlation ignores the intercept: adding it would round a small prediction away
        predict_batch = self._predict_columns(X, shift=self.scoring != "correlation")
        alphas = getattr(self, "best_alphas_", None)
        alphas = None if alphas is None else np.reshape(alphas, -1)
        return _target_scores(predict_batch, Y, self.scoring, dtype, batch, alphas, warn)

    def score(self, X, y=None, *, Y=None):
        """Mean over targets (NaN-aware) of :meth:`score_targets`: one float (for GridSearchCV).

        Parameters
        ----------
        X, y, Y
            As in :meth:`score_targets` (``Y`` is the deprecated name of ``y``).

        Returns
        -------
        float
        """
        y = renamed_y(y, Y, f"{type(self).__name__}.score")
        scores = self.score_targets(X, y)
        if np.all(np.isnan(scores)):
            return float("nan")
        return float(np.nanmean(scores))




# --------------------------------------------------------------------------- target batches
def _checked(worker, y, cols, *args):
    """``worker(y, *args)`` (plus ``"cols"``) on a finite batch; ``{"bad": ...}`` otherwise."""
    count, where = _bad_summary(y, cols.start)
    if count:
        return {"cols": cols, "bad": (count, where)}
    result = worker(y, *args)
    result["cols"] = cols
    return result


def run_batches(worker, Y, batch, dtype, out, n_jobs=None, args=(), chosen=None):
    """Run ``worker(y, *args)`` on every batch of ``batch`` columns of ``Y`` and merge.

    Parameters
    ----------
    worker : callable
        A pure solver function of one finite target batch ``y`` (n_samples, t), its first
        argument, returning a dict
        of arrays whose last axis is the batch's targets.
    Y : 2-D array-like
    batch : int
    dtype : numpy dtype
        Of the batches read from ``Y``.
    out : dict of str to ndarray
        Result arrays with targets on the last axis; ``out[key][..., cols] = result[key]`` for
        every key a worker returns.
    n_jobs : int, optional
        joblib workers.
    args : tuple
        Further arguments of ``worker``.
    chosen : ndarray (n_targets,), optional
        Passed to the worker as its first argument after ``y``, sliced to the batch.

    Raises
    ------
    ValueError
        If ``Y`` holds non-finite values (counted over every batch, the first one located).
    """
    n_targets = Y.shape[1]

    def call(cols):
        extra = args if chosen is None else (chosen[cols], *args)
        return delayed(_checked)(worker, read_batch(Y, cols, dtype), cols, *extra)

    n_bad, first = 0, None
    tasks = (call(cols) for cols in _batches(n_targets, batch))
    n_batches = len(range(0, n_targets, batch)) if batch else 1
    results = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    for res in progress(results, total=n_batches, desc="target batches", unit="batch",
                        enabled=n_batches > 1):
        cols = res["cols"]
        if "bad" in res:
            n_bad += res["bad"][0]
            first = first or res["bad"][1]
            continue
        for key, array in out.items():
            if key in res:
                array[..., cols] = res[key]
    if n_bad:
        _raise_non_finite(n_bad, first, Y.shape[0] * n_targets)
