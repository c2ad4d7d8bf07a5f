"""Noise ceilings of repeated responses: explainable variance, CCmax, NSD noise-ceiling SNR.

Pure numpy, vectorised over targets (voxels, channels, units): every function takes the
responses to repeated presentations of the same stimuli as one array ``Y_repeats`` of shape
``(n_repeats, n_samples, n_targets)`` (already checked by :mod:`neuroprobe.ceilings`) and
returns one value per target. Targets are processed in column blocks so that the float64
temporaries stay bounded (``block`` targets at a time), never one voxel at a time.

References
----------
- Sahani, M. & Linden, J. F. (2003). How linear are auditory cortical responses? NIPS 15.
- Hsu, A., Borst, A. & Theunissen, F. E. (2004). Quantifying variability in neural responses
  and its application for the validation of model predictions. Network 15, 91-109.
- Schoppe, O., Harper, N. S., Willmore, B. D. B., King, A. J. & Schnupp, J. W. H. (2016).
  Measuring the performance of neural models. Front. Comput. Neurosci. 10, 10.
- Allen, E. J. et al. (2022). A massive 7T fMRI dataset to bridge cognitive neuroscience and
  artificial intelligence. Nat. Neurosci. 25, 116-126 (the NSD noise ceiling).
- gallantlab voxelwise tutorials, ``voxelwise_tutorials.utils.explainable_variance``
  (Dupre la Tour et al. 2022).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "explainable_variance",
    "signal_power",
    "ccmax",
    "ncsnr",
    "nsd_noise_ceiling",
]

_BLOCK = 8192


def _blocks(n_targets, block):
    return [slice(i, min(i + block, n_targets)) for i in range(0, n_targets, block)]


def _zscored_variances(data):
    """``(mean_var, var_mean)`` of the per-repeat z-scored ``data`` without forming it.

    ``z_r = (x_r - m_r) / s_r`` (ddof=0) has ``var_t(z_r, ddof=1) = T / (T - 1)`` exactly, and
    ``mean_r z_r = (1 / R) sum_r (x_r - m_r) / s_r``: one weighted sum of the centred repeats.
    """
    n_repeats, n_samples = data.shape[:2]
    x = np.array(data, dtype=np.float64)  # the one float64 copy of the block
    x -= x.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        inv_s = 1.0 / np.sqrt(np.einsum("rtv,rtv->rv", x, x) / n_samples)
        mean_z = np.einsum("rtv,rv->tv", x, inv_s) / n_repeats
    mean_var = np.where(np.isfinite(inv_s).all(axis=0), n_samples / (n_samples - 1), np.nan)
    return mean_var, mean_z.var(axis=0, ddof=1)


def _ev_block(data, bias_correction, do_zscore):
    if do_zscore:
        mean_var, var_mean = _zscored_variances(data)
    else:
        mean_var = data.var(axis=1, dtype=np.float64, ddof=1).mean(axis=0)
        var_mean = data.mean(axis=0).var(axis=0, dtype=np.float64, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ev = var_mean / mean_var
    if bias_correction:
        n_repeats = data.shape[0]
        ev = ev - (1 - ev) / (n_repeats - 1)
    return ev


def explainable_variance(Y_repeats, bias_correction=True, do_zscore=True, block=_BLOCK):
    """Explainable variance of each target (the voxelwise tutorials' formula, transcribed).

    With ``Y`` the responses, z-scored over samples within each repeat when ``do_zscore``
    (``scipy.stats.zscore(Y, axis=1)``, ddof=0), ``R`` repeats and variances over samples with
    ddof=1::

        mean_var = mean_r var_t(Y[r, :, v])          # total variance of one repeat
        var_mean = var_t(mean_r Y[r, :, v])          # variance of the mean response
        ev = var_mean / mean_var
        ev = ev - (1 - ev) / (R - 1)                 # if bias_correction (Sahani & Linden 2003)

    which is ``voxelwise_tutorials.utils.explainable_variance`` line for line (with the z-scored
    copy not formed: ``mean_var = T / (T - 1)`` exactly for z-scored series, and the mean
    response is one weighted sum of the centred repeats; equal up to rounding). The raw ratio is
    biased upwards by the noise left in the mean of ``R`` repeats (its expectation is
    ``s + (1 - s) / R`` for a signal fraction ``s``); the correction makes the estimate unbiased
    for ``s = var(signal) / (var(signal) + var(noise))`` (up to the ratio-of-means bias), and
    can be negative for noise-only targets.

    Parameters
    ----------
    Y_repeats : ndarray (n_repeats, n_samples, n_targets)
    bias_correction : bool
    do_zscore : bool
        Z-score each repeat's time course first (set False only for data already z-scored).
    block : int
        Targets processed at once.

    Returns
    -------
    ndarray (n_targets,) float64
        NaN for constant targets (0 / 0).
    """
    Y_repeats = np.asarray(Y_repeats)
    out = np.empty(Y_repeats.shape[2], dtype=np.float64)
    for cols in _blocks(Y_repeats.shape[2], block):
        out[cols] = _ev_block(Y_repeats[:, :, cols], bias_correction, do_zscore)
    return out


def _sp_block(data):
    """``(SP, Var(sum_n R_n))`` of a block (ddof=1), on one float64 copy."""
    n, n_samples = data.shape[:2]
    x = np.array(data, dtype=np.float64)
    var_sum = x.sum(axis=0).var(axis=0, ddof=1)
    x -= x.mean(axis=1, keepdims=True)
    sum_var = np.einsum("rtv,rtv->v", x, x) / (n_samples - 1)
    return (var_sum - sum_var) / (n * (n - 1)), var_sum


def signal_power(Y_repeats, block=_BLOCK):
    """Signal power of each target (Sahani & Linden 2003; Schoppe et al. 2016, eq. 2).

    ``SP = (Var(sum_n R_n) - sum_n Var(R_n)) / (N (N - 1))`` with ``R_n`` the response to
    repeat ``n`` of ``N`` and ``Var`` the variance over samples with ddof=1 (MATLAB's ``var``,
    as in Schoppe's ``calc_CCnorm.m``). The total power is ``TP = mean_n Var(R_n)`` and the
    noise power ``TP - SP``. Unbiased; negative for noise-only targets.

    Returns
    -------
    ndarray (n_targets,) float64
    """
    Y_repeats = np.asarray(Y_repeats)
    out = np.empty(Y_repeats.shape[2], dtype=np.float64)
    for cols in _blocks(Y_repeats.shape[2], block):
        out[cols] = _sp_block(Y_repeats[:, :, cols])[0]
    return out


def ccmax(Y_repeats, block=_BLOCK):
    """Correlation ceiling CCmax of each target (Hsu et al. 2004; Schoppe et al. 2016).

    ``CCmax = sqrt(SP / Var(y_mean))`` with ``SP`` from :func:`signal_power` (ddof=1) and
    ``Var(y_mean)`` the variance over samples of the mean response over repeats with ddof=0,
    exactly as Schoppe's reference ``calc_CCnorm.m``; ``CCmax = 0`` where ``SP <= 0`` (no
    measurable signal). ``CCnorm = CCabs / CCmax`` is the correlation with the mean response
    normalised by the best correlation any model could reach.

    Returns
    -------
    ndarray (n_targets,) float64 in [0, ~1]; NaN for constant targets.
    """
    Y_repeats = np.asarray(Y_repeats)
    n, n_samples, n_targets = Y_repeats.shape
    sp, v_mean = np.empty(n_targets), np.empty(n_targets)
    for cols in _blocks(n_targets, block):
        sp[cols], var_sum = _sp_block(Y_repeats[:, :, cols])
        # Var(mean) with ddof=0 = Var(sum, ddof=1) * (T - 1) / T / N^2
        v_mean[cols] = var_sum * (n_samples - 1) / n_samples / n**2
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sqrt(np.clip(sp, 0.0, None) / v_mean)
    return np.where(sp <= 0, 0.0, out)


def _noise_var_block(data, zscore):
    """``mean_t var_r(z)`` (ddof=1); z-scoring divides it by the variance over all trials
    (ddof=0), itself split into within- and between-stimulus sums of squares."""
    n_rep, n_samp = data.shape[:2]
    x = np.array(data, dtype=np.float64)  # the one float64 copy of the block
    mean_r = x.mean(axis=0)
    x -= mean_r
    within = np.einsum("rtv,rtv->v", x, x)
    noise = within / ((n_rep - 1) * n_samp)
    if not zscore:
        return noise
    between = n_rep * ((mean_r - mean_r.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return noise / ((within + between) / (n_rep * n_samp))


def ncsnr(Y_repeats, zscore=True, block=_BLOCK):
    """NSD noise-ceiling signal-to-noise ratio of each target (Allen et al. 2022).

    The betas of each target are z-scored over all trials (``n_repeats * n_samples``, ddof=0;
    NSD z-scores within each session: pass session-z-scored betas with ``zscore=False``);
    then::

        sigma2_noise = mean_samples var_repeats(beta)      (ddof=1)
        sigma_signal = sqrt(max(0, 1 - sigma2_noise))
        ncsnr = sigma_signal / sqrt(sigma2_noise)

    Returns
    -------
    ndarray (n_targets,) float64, >= 0 (inf for noise-free targets).
    """
    Y_repeats = np.asarray(Y_repeats)
    noise = np.empty(Y_repeats.shape[2], dtype=np.float64)
    for cols in _blocks(Y_repeats.shape[2], block):
        noise[cols] = _noise_var_block(Y_repeats[:, :, cols], zscore)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(np.maximum(0.0, 1.0 - noise)) / np.sqrt(noise)


def nsd_noise_ceiling(snr, n_average=1):
    """NSD noise ceiling in percent of variance: ``NC = 100 * ncsnr^2 / (ncsnr^2 + 1 / n)``.

    Allen et al. (2022), for responses averaged over ``n = n_average`` trials (the percentage of
    the variance of the ``n``-trial average that the signal could explain).

    Parameters
    ----------
    snr : ndarray (n_targets,)
        :func:`ncsnr`.
    n_average : int

    Returns
    -------
    ndarray (n_targets,) float64 in [0, 100]
    """
    snr = np.asarray(snr, dtype=np.float64)
    s2 = snr**2
    with np.errstate(invalid="ignore", divide="ignore"):
        nc = 100.0 * s2 / (s2 + 1.0 / n_average)
    return np.where(np.isinf(s2), 100.0, nc)
