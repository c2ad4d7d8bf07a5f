"""The per-target scoring kernel: one score per target (voxel), vectorised over leading axes.

:func:`score_predictions` is the one implementation of the per-target scores; the solvers
(:mod:`neuroprobe.solvers.ridge`, :mod:`neuroprobe.solvers.lasso`) call it on backend arrays
(numpy or torch) and :mod:`neuroprobe.metrics` wraps it for user arrays. :data:`SCORINGS` is the
one table of score names: a new score is one more row.

Conventions (himalaya's): a target whose true values have zero variance scores NaN (undefined);
constant predictions correlate 0 with anything, so fold and target averages are over all of them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SCORINGS", "CONSTANT_RTOL", "score_predictions"]

# a prediction whose spread is below this many rounding errors of its mean is constant
CONSTANT_RTOL = 10.0


def _eps(x):
    """Machine epsilon of the dtype of ``x`` (numpy array or torch tensor)."""
    return float(np.finfo(np.float32 if str(x.dtype).endswith("float32") else np.float64).eps)


def _correlation(y_c, ss_y, bad_y, y, pred, eps):
    mean = pred.mean(axis=-2, keepdims=True)
    pred -= mean
    num = (pred * y_c).sum(axis=-2)
    ss_p = (pred * pred).sum(axis=-2)
    mean = mean[..., 0, :]
    tol = (CONSTANT_RTOL * (eps or _eps(pred))) ** 2 * pred.shape[-2]
    const = ~(ss_p > tol * (mean * mean))
    ok = ~const & ~bad_y
    out = num / ((ss_p * ss_y) ** 0.5 + ~ok)
    out[const] = 0.0
    return out, const & ~bad_y


def _r2(y_c, ss_y, bad_y, y, pred, eps):
    pred -= y
    ss_res = (pred * pred).sum(axis=-2)
    return 1.0 - ss_res / (ss_y + bad_y), ss_res < 0  # never constant-flagged


def _explained_variance(y_c, ss_y, bad_y, y, pred, eps):
    pred -= y
    pred -= pred.mean(axis=-2, keepdims=True)
    ss_res = (pred * pred).sum(axis=-2)
    return 1.0 - ss_res / (ss_y + bad_y), ss_res < 0  # never constant-flagged


#: score name -> kernel ``(y_c, ss_y, bad_y, y, pred, eps) -> (scores, constant predictions)``
SCORINGS = {
    "correlation": _correlation,
    "r2": _r2,
    "explained_variance": _explained_variance,
}


def check_scoring(scoring):
    """Raise a ValueError naming the options unless ``scoring`` is a row of :data:`SCORINGS`."""
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {tuple(SCORINGS)}; got {scoring!r}")


def score_predictions(y, pred, scoring="correlation", *, return_constant=False, eps=None):
    """Per-target scores of predictions, vectorised over any leading axes of ``pred``.

    Parameters
    ----------
    y : array (n_samples, n_targets)
        True values (numpy array or torch tensor).
    pred : array (..., n_samples, n_targets)
        Predictions; leading axes (e.g. alphas) broadcast. Modified in place.
    scoring : {"correlation", "r2", "explained_variance"}
    return_constant : bool
        Also return where the predictions are constant (correlation only; all False otherwise).
    eps : float, optional
        Rounding error of the predictions' original dtype (default: that of ``pred``).

    Returns
    -------
    scores : array (..., n_targets)
        Pearson correlation, coefficient of determination or explained variance per target. NaN
        where the true values have zero variance (the score is undefined). For correlation,
        constant predictions (e.g. at a very large alpha) score 0, as in himalaya's
        ``correlation_score``: a prediction whose spread is within ``CONSTANT_RTOL`` rounding
        errors of its mean (``||pred - mean|| <= CONSTANT_RTOL * eps * sqrt(n) * |mean|``, eps
        of its dtype) is constant, so rounding noise is never scored as a correlation.
    constant : bool array (..., n_targets)
        Only with ``return_constant``: the constant predictions (True where y also varies).
    """
    check_scoring(scoring)
    y_c = y - y.mean(axis=0, keepdims=True)
    ss_y = (y_c * y_c).sum(axis=0)
    bad_y = ~(ss_y > 0)
    out, const = SCORINGS[scoring](y_c, ss_y, bad_y, y, pred, eps)
    out[..., bad_y] = float("nan")
    return (out, const) if return_constant else out
