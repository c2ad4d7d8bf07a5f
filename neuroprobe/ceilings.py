"""Noise ceilings for encoding models, and accuracy normalised by them.

Responses to repeated presentations of the same (test) stimuli, ``Y_repeats`` of shape
``(n_repeats, n_samples, n_targets)``, tell how much of each target's variance is driven by the
stimulus at all, and so the best accuracy any model could reach:

- :func:`explainable_variance` (the gallantlab voxelwise tutorials' EV, bias-corrected): the
  ceiling of R^2; ``sqrt(EV)`` that of the correlation with one repeat;
- :func:`correlation_ceiling` (CCmax, Hsu et al. 2004 / Schoppe et al. 2016): the ceiling of the
  correlation with the mean response over repeats;
- :func:`ncsnr` and :func:`nsd_noise_ceiling` (Allen et al. 2022, the Natural Scenes Dataset).

:func:`normalize_scores` divides an accuracy map by a ceiling map; the encoders'
``score_targets(X, y, normalize=ev)`` does the same in one call, and
:class:`~neuroprobe.transformers.selection.ExplainableVarianceSelector` keeps the targets with
enough explainable variance. The formulas are in :mod:`neuroprobe.solvers.ceiling`.
"""

from __future__ import annotations

import numpy as np

from neuroprobe._utils import check_finite
from neuroprobe.solvers import ceiling as _ceiling

__all__ = [
    "check_repeats",
    "explainable_variance",
    "correlation_ceiling",
    "ncsnr",
    "nsd_noise_ceiling",
    "normalize_scores",
    "NORMALIZATIONS",
]

#: ``kind`` of :func:`normalize_scores` -> what it computes.
NORMALIZATIONS = {
    "correlation/ev": "r / sqrt(EV)",
    "correlation/ccmax": "r / CCmax",
    "r2/ev": "R2 / EV",
}


def check_repeats(Y_repeats, name="Y_repeats"):
    """``Y_repeats`` as a float array (n_repeats, n_samples, n_targets), checked.

    A 2-D array ``(n_repeats, n_samples)`` is one target. Raises ``ValueError`` naming
    ``name`` for another number of dimensions, fewer than 2 repeats or samples, non-numeric
    data, NaN or infinite values. The input is never copied or modified.
    """
    Y = np.asarray(Y_repeats)
    if Y.ndim == 2:
        Y = Y[:, :, None]
    if Y.ndim != 3:
        raise ValueError(
            f"{name} must have shape (n_repeats, n_samples, n_targets), got shape {Y.shape}"
        )
    if not (np.issubdtype(Y.dtype, np.floating) or np.issubdtype(Y.dtype, np.integer)):
        raise ValueError(f"{name} must be numeric, got dtype {Y.dtype}")
    if Y.shape[0] < 2:
        raise ValueError(
            f"{name} has {Y.shape[0]} repeat(s); a noise ceiling needs at least 2 repeated "
            "presentations of the same stimuli (axis 0)"
        )
    if Y.shape[1] < 2:
        raise ValueError(f"{name} has {Y.shape[1]} sample(s) per repeat; at least 2 are needed")
    if Y.shape[2] < 1:
        raise ValueError(f"{name} has no target (axis 2 is empty)")
    check_finite(Y, name)
    return Y if np.issubdtype(Y.dtype, np.floating) else Y.astype(np.float64)


def explainable_variance(Y_repeats, *, bias_correction=True, do_zscore=True):
    """Explainable variance of each target (``voxelwise_tutorials.utils.explainable_variance``).

    ``ev = var_t(mean_r Y) / mean_r var_t(Y)`` on each repeat's z-scored time course, then
    ``ev - (1 - ev) / (n_repeats - 1)`` when ``bias_correction`` (see
    :func:`neuroprobe.solvers.ceiling.explainable_variance`).

    Parameters
    ----------
    Y_repeats : array-like (n_repeats, n_samples, n_targets)
        Responses to ``n_repeats`` presentations of the same ``n_samples`` stimuli / scans.
    bias_correction : bool, default=True
    do_zscore : bool, default=True

    Returns
    -------
    ndarray (n_targets,)
        Estimated fraction of a single repeat's variance that the stimulus drives; the ceiling
        of R^2 when predicting one repeat. NaN for constant targets.
    """
    Y = check_repeats(Y_repeats)
    return _ceiling.explainable_variance(Y, bias_correction, do_zscore)


def correlation_ceiling(Y_repeats):
    """CCmax of each target: ``sqrt(SP / Var(mean response))`` (Schoppe et al. 2016).

    ``SP = (Var(sum_n R_n) - sum_n Var(R_n)) / (N (N - 1))``; 0 where ``SP <= 0``. The ceiling
    of the correlation between a prediction and the mean response over the repeats.

    Parameters
    ----------
    Y_repeats : array-like (n_repeats, n_samples, n_targets)

    Returns
    -------
    ndarray (n_targets,)
    """
    return _ceiling.ccmax(check_repeats(Y_repeats))


def ncsnr(Y_repeats, *, zscore=True):
    """NSD noise-ceiling SNR of each target (Allen et al. 2022).

    ``sqrt(max(0, 1 - s2)) / sqrt(s2)`` with ``s2`` the mean over stimuli of the variance
    across repeats (ddof=1) of the z-scored betas (see :func:`neuroprobe.solvers.ceiling.ncsnr`).

    Parameters
    ----------
    Y_repeats : array-like (n_repeats, n_samples, n_targets)
        Single-trial betas: ``n_repeats`` trials of each of ``n_samples`` stimuli.
    zscore : bool, default=True
        Z-score each target over all trials first (False: betas already z-scored per session).
    """
    return _ceiling.ncsnr(check_repeats(Y_repeats), zscore)


def nsd_noise_ceiling(Y_repeats, *, n_average=1, zscore=True):
    """NSD noise ceiling in percent: ``100 * ncsnr^2 / (ncsnr^2 + 1 / n_average)``.

    Parameters
    ----------
    Y_repeats : array-like (n_repeats, n_samples, n_targets)
    n_average : int, default=1
        Number of trials averaged in the responses the model is scored on.
    zscore : bool, default=True

    Returns
    -------
    ndarray (n_targets,) in [0, 100]
    """
    if isinstance(n_average, bool) or not isinstance(n_average, (int, np.integer)) or (
        n_average < 1
    ):
        raise ValueError(f"n_average must be a positive integer, got {n_average!r}")
    return _ceiling.nsd_noise_ceiling(ncsnr(Y_repeats, zscore=zscore), n_average)


def normalize_scores(scores, ceiling, kind="correlation/ev"):
    """Accuracy as a fraction of each target's noise ceiling.

    Parameters
    ----------
    scores : array-like (n_targets,)
        Held-out accuracies (Pearson r or R^2).
    ceiling : array-like (n_targets,)
        The matching ceiling: explainable variance for ``"correlation/ev"`` and ``"r2/ev"``,
        CCmax for ``"correlation/ccmax"``.
    kind : {"correlation/ev", "correlation/ccmax", "r2/ev"}
        ``r / sqrt(EV)``, ``r / CCmax`` (Schoppe's CCnorm) or ``R2 / EV``.

    Returns
    -------
    ndarray (n_targets,) float64
        NaN where the ceiling is not positive (no measurable signal: the ratio is undefined,
        and dividing by a tiny ceiling would manufacture huge normalised scores) or NaN.
    """
    if kind not in NORMALIZATIONS:
        raise ValueError(f"kind must be one of {sorted(NORMALIZATIONS)}, got {kind!r}")
    scores = np.asarray(scores, dtype=np.float64)
    ceiling = np.asarray(ceiling, dtype=np.float64)
    if scores.shape != ceiling.shape:
        raise ValueError(
            f"scores and ceiling must have the same shape (one ceiling per target), got "
            f"{scores.shape} and {ceiling.shape}"
        )
    denom = np.sqrt(np.where(ceiling > 0, ceiling, np.nan)) if kind == "correlation/ev" else (
        np.where(ceiling > 0, ceiling, np.nan)
    )
    return scores / denom
