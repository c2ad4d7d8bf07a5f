"""Per-target (per-voxel) scores, vectorised over targets, and their scikit-learn scorers.

``correlation_score``, ``r2_score`` and ``explained_variance_score`` take ``(n_samples,)`` or
``(n_samples, n_targets)`` arrays and return one value per target (a float for 1-D input); a target
whose true values have zero variance scores NaN (undefined); constant predictions correlate 0 with
anything (himalaya's convention), so fold and target averages are over all of them.

scikit-learn has no public registry of scorer names, so ``cross_validate(scoring="correlation")``
cannot be made to work without patching it. Use the scorer objects instead::

    from sklearn.model_selection import cross_validate
    from neuroprobe.metrics import correlation_scorer      # or get_scorer("correlation")
    cross_validate(encoder, X, Y, scoring=correlation_scorer)

(``scoring=None`` also works for neuroprobe encoders: their ``score`` uses their own ``scoring``.)
Each scorer returns the mean over targets (NaN-aware), one float as GridSearchCV needs; per-target
cross-validated scores come from :func:`neuroprobe.cross_val_score_targets`.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import get_scorer as _sk_get_scorer
from sklearn.metrics import make_scorer

from neuroprobe.exceptions import ZeroVarianceWarning  # noqa: F401 (re-exported)

__all__ = [
    "correlation_score",
    "r2_score",
    "explained_variance_score",
    "correlation_scorer",
    "r2_scorer",
    "explained_variance_scorer",
    "get_scorer",
    "SCORERS",
    "ZeroVarianceWarning",
]


def _fmt_alphas(alphas):
    vals = np.unique(np.asarray(alphas, dtype=float)) if alphas is not None else np.empty(0)
    if not vals.size:
        return ""
    shown = ", ".join(f"{a:g}" for a in vals[:3]) + (", ..." if vals.size > 3 else "")
    return f" (alpha = {shown})"


def zero_variance_message(kind, where, n, n_targets, alphas=None, folds=None):
    """The text of a :class:`ZeroVarianceWarning`."""
    samples = f"the {where} samples" + (f" of {folds[0]} of {folds[1]} fold(s)" if folds else "")
    if kind == "targets":
        return (f"{n} of {n_targets} target(s) have zero variance in {samples}; their scores "
                "there are NaN (undefined).")
    return (f"predictions are constant for {n} of {n_targets} target(s) in {samples}"
            f"{_fmt_alphas(alphas)}; scored 0 (no correlation), as himalaya does.")


def warn_zero_variance(kind, where, mask, alphas=None, folds=None, stacklevel=3):
    """Emit one :class:`ZeroVarianceWarning` for the True entries of ``mask`` (none if empty)."""
    mask = np.asarray(mask, dtype=bool)
    n = int(mask.sum())
    if not n:
        return
    text = zero_variance_message(kind, where, n, mask.size, alphas, folds)
    warnings.warn(ZeroVarianceWarning(text, kind, where, mask, alphas), stacklevel=stacklevel)


def _prepare(y_true, y_pred):
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape; got {y_true.shape} and {y_pred.shape}"
        )
    if y_true.ndim not in (1, 2):
        raise ValueError(f"expected 1-D or 2-D arrays; got shape {y_true.shape}")
    one_d = y_true.ndim == 1
    if one_d:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    return y_true, y_pred, one_d


def _finish(values, one_d):
    return float(values[0]) if one_d else values


def _per_target(scoring, y_true, y_pred):
    """The kernel :func:`neuroprobe.solvers.scoring.score_predictions` on float64 copies."""
    from neuroprobe.solvers.scoring import score_predictions

    dtype = np.asarray(y_pred).dtype
    eps = float(np.finfo(dtype if np.issubdtype(dtype, np.floating) else np.float64).eps)
    y_true, y_pred, one_d = _prepare(y_true, y_pred)
    out = score_predictions(y_true, y_pred.copy(), scoring, eps=eps)  # the kernel works in place
    return _finish(out, one_d)


def correlation_score(y_true, y_pred):
    """Pearson correlation between true and predicted values, per target.

    Parameters
    ----------
    y_true, y_pred : array-like (n_samples,) or (n_samples, n_targets)

    Returns
    -------
    float or ndarray (n_targets,)
        NaN where ``y_true`` has zero variance (undefined); 0 where the predictions are constant
        (as himalaya's ``correlation_score``), so that averages over folds or targets are over
        all of them. A prediction is constant when its spread is within rounding error of its
        mean (see :func:`neuroprobe.solvers.scoring.score_predictions`).
    """
    return _per_target("correlation", y_true, y_pred)


def r2_score(y_true, y_pred):
    """Coefficient of determination ``1 - SS_res / SS_tot`` per target (NaN if constant)."""
    return _per_target("r2", y_true, y_pred)


def explained_variance_score(y_true, y_pred):
    """``1 - Var(y_true - y_pred) / Var(y_true)`` per target (NaN for constant targets)."""
    return _per_target("explained_variance", y_true, y_pred)


def _mean_of(metric):
    def mean_score(y_true, y_pred):
        values = np.atleast_1d(metric(y_true, y_pred))
        if np.all(np.isnan(values)):
            return float("nan")
        return float(np.nanmean(values))

    mean_score.__name__ = f"mean_{metric.__name__}"
    mean_score.__doc__ = f"Mean over targets (NaN-aware) of :func:`{metric.__name__}`."
    return mean_score


mean_correlation_score = _mean_of(correlation_score)
mean_r2_score = _mean_of(r2_score)
mean_explained_variance_score = _mean_of(explained_variance_score)

correlation_scorer = make_scorer(mean_correlation_score)
r2_scorer = make_scorer(mean_r2_score)
explained_variance_scorer = make_scorer(mean_explained_variance_score)

PER_TARGET = {
    "correlation": correlation_score,
    "r2": r2_score,
    "explained_variance": explained_variance_score,
}

#: scorer objects, one per row of :data:`neuroprobe.solvers.scoring.SCORINGS`
SCORERS = {
    "correlation": correlation_scorer,
    "r2": r2_scorer,
    "explained_variance": explained_variance_scorer,
}


def get_scorer(scoring):
    """Return a scorer for ``scoring``: neuroprobe names first, then scikit-learn's.

    Parameters
    ----------
    scoring : str or callable
        ``"correlation"``, ``"r2"``, ``"explained_variance"`` (mean over targets of the per-target
        score), any scikit-learn scorer name, or a callable returned as is.
    """
    if callable(scoring):
        return scoring
    if scoring in SCORERS:
        return SCORERS[scoring]
    try:
        return _sk_get_scorer(scoring)
    except ValueError as exc:
        raise ValueError(
            f"unknown scoring {scoring!r}; neuroprobe scorers: {sorted(SCORERS)}, "
            "or any name of sklearn.metrics.get_scorer_names()"
        ) from exc
