"""Inference on RDM models: bootstrap over subjects / stimuli, cross-validated weighted models.

:func:`bootstrap_rsa` is one entry point for what rsatoolbox spreads over
``eval_bootstrap_rdm`` (``unit="subjects"``), ``eval_bootstrap_pattern`` (``"stimuli"``) and
``eval_dual_bootstrap`` (``"both"``): per-model estimates with SEMs and confidence intervals,
pairwise model differences (raw, FDR and FWE), tests against zero and against the lower noise
ceiling, the noise ceiling computed inside every sample. The per-sample arithmetic is
vectorised over samples (:mod:`neuroprobe.solvers.rsa_bootstrap`); on the same bootstrap
indices the estimates equal rsatoolbox's.

:func:`crossval_weighted_rsa` fits a non-negative weighted combination of component RDMs
(rsatoolbox ``ModelWeighted``) and evaluates it on held-out stimuli and subjects.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from neuroprobe._utils import check_finite
from neuroprobe.exceptions import BootstrapWarning
from neuroprobe.rsa import _aligned, check_method, to_condensed
from neuroprobe.solvers import rsa_bootstrap as _rb
from neuroprobe.solvers.rdm import n_from_pairs

__all__ = ["bootstrap_rsa", "BootstrapResult", "crossval_weighted_rsa", "UNITS"]

UNITS = ("subjects", "stimuli", "both")


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap inference on RDM models (see :func:`bootstrap_rsa`).

    Attributes
    ----------
    names : list of str
        Model names.
    method, unit : str
    n_bootstrap, n_valid : int
        Samples drawn, and samples used (see ``notes`` for those left out).
    mean, sem : ndarray of shape (n_models,)
        Mean evaluation and its bootstrap standard error.
    ci : ndarray of shape (n_models, 2)
        ``mean -+ sem * t_{dof}`` interval at ``ci_level`` (rsatoolbox's ``get_ci``).
    ci_percentile : ndarray of shape (n_models, 2)
        Percentile interval of the bootstrap evaluations.
    pvalue_zero : ndarray of shape (n_models,)
        One-sided t-test of the evaluation > 0.
    pvalue_noise_ceiling : ndarray of shape (n_models,)
        Two-sided t-test of the difference from the lower noise-ceiling bound.
    pvalue_pairwise, pvalue_pairwise_fdr, pvalue_pairwise_fwe : ndarray (n_models, n_models)
        Two-sided t-tests of model differences: raw, Benjamini-Hochberg FDR-adjusted and
        Bonferroni FWE-adjusted over the ``n_models * (n_models - 1) / 2`` pairs.
    noise_ceiling : ndarray of shape (2,)
        Mean lower and upper bound over the samples.
    dof : int
    ci_level : float
    evaluations : ndarray of shape (n_bootstrap, n_models) or (n_bootstrap, n_models, 3)
        Per-sample evaluations (NaN for samples left out); ``unit="both"`` holds the samples
        over both, subjects only and stimuli only, on the same indices.
    noise_ceilings : ndarray of shape (n_bootstrap, 2) or (n_bootstrap, 2, 3)
    notes : list of str
        What could not be estimated, and why.
    """

    names: list
    method: str
    unit: str
    n_bootstrap: int
    n_valid: int
    mean: np.ndarray
    sem: np.ndarray
    ci: np.ndarray
    ci_percentile: np.ndarray
    pvalue_zero: np.ndarray
    pvalue_noise_ceiling: np.ndarray
    pvalue_pairwise: np.ndarray
    pvalue_pairwise_fdr: np.ndarray
    pvalue_pairwise_fwe: np.ndarray
    noise_ceiling: np.ndarray
    dof: int
    ci_level: float
    evaluations: np.ndarray = field(repr=False)
    noise_ceilings: np.ndarray = field(repr=False)
    notes: list = field(default_factory=list)

    def rows(self):
        """One dict per model, then one per model pair (for a CSV table)."""
        out = []
        for i, name in enumerate(self.names):
            out.append({
                "model": name, "other": "", "kind": "model", "method": self.method,
                "unit": self.unit, "estimate": self.mean[i], "sem": self.sem[i],
                "ci_low": self.ci[i, 0], "ci_high": self.ci[i, 1],
                "ci_percentile_low": self.ci_percentile[i, 0],
                "ci_percentile_high": self.ci_percentile[i, 1],
                "pvalue": self.pvalue_zero[i], "pvalue_fdr": "", "pvalue_fwe": "",
                "pvalue_noise_ceiling": self.pvalue_noise_ceiling[i],
                "noise_ceiling_lower": self.noise_ceiling[0],
                "noise_ceiling_upper": self.noise_ceiling[1], "dof": self.dof,
                "n_bootstrap": self.n_bootstrap, "n_valid": self.n_valid,
            })
        a, b = np.triu_indices(len(self.names), 1)
        for i, j in zip(a, b):
            out.append({
                "model": self.names[i], "other": self.names[j], "kind": "difference",
                "method": self.method, "unit": self.unit,
                "estimate": self.mean[i] - self.mean[j], "sem": "", "ci_low": "",
                "ci_high": "", "ci_percentile_low": "", "ci_percentile_high": "",
                "pvalue": self.pvalue_pairwise[i, j],
                "pvalue_fdr": self.pvalue_pairwise_fdr[i, j],
                "pvalue_fwe": self.pvalue_pairwise_fwe[i, j], "pvalue_noise_ceiling": "",
                "noise_ceiling_lower": "", "noise_ceiling_upper": "", "dof": self.dof,
                "n_bootstrap": self.n_bootstrap, "n_valid": self.n_valid,
            })
        return out


def _subject_stack(subject_rdms):
    S = subject_rdms
    if hasattr(S, "rdms") and hasattr(S, "stim_ids"):
        return S
    S = np.asarray(S, dtype=np.float64)
    if S.ndim == 4:
        S = S.mean(axis=1)
    S = np.atleast_2d(to_condensed(S, "subject_rdms"))
    return S


def _check_indices(index, n_items, what):
    index = np.asarray(index)
    if index.ndim != 2 or index.shape[1] != n_items or not np.issubdtype(index.dtype,
                                                                          np.integer):
        raise ValueError(f"indices: the {what} index must be an int array of shape "
                         f"(n_bootstrap, {n_items}); got shape {index.shape}, "
                         f"dtype {index.dtype}")
    if index.min() < 0 or index.max() >= n_items:
        raise ValueError(f"indices: {what} indices must be in [0, {n_items})")
    return index.astype(np.int64)


def _tests(mean, model_var, diff_var, nc_var, nc_lower, dof, ci):
    import scipy.stats

    eps = np.finfo(float).eps
    k = mean.size
    sem = np.sqrt(np.maximum(model_var, 0))
    p_zero = scipy.stats.t.sf(mean / np.sqrt(np.maximum(model_var, eps)), dof)
    a, b = np.triu_indices(k, 1)
    t = (mean[a] - mean[b]) / np.sqrt(np.maximum(diff_var, eps))
    p_pair = 2 * scipy.stats.t.sf(np.abs(t), dof)
    t_nc = (mean - nc_lower) / np.sqrt(np.maximum(nc_var[:, 0], eps))
    p_nc = 2 * scipy.stats.t.sf(np.abs(t_nc), dof)
    q = scipy.stats.t.ppf((1 + ci) / 2, dof)

    def square(values):
        out = np.ones((k, k))
        out[a, b] = out[b, a] = values
        return out

    fdr = (scipy.stats.false_discovery_control(p_pair, method="bh") if p_pair.size
           else p_pair)
    fwe = np.minimum(1.0, p_pair * max(1, p_pair.size))
    ci_t = np.stack([mean - q * sem, mean + q * sem], axis=1)
    return sem, ci_t, p_zero, p_nc, square(p_pair), square(fdr), square(fwe)


def bootstrap_rsa(models, subject_rdms, method="pearson", unit="both", n_bootstrap=1000, *,
                  ci=0.95, random_state=None, indices=None, names=None, ids=None,
                  backend="numpy", device="cpu"):
    """Bootstrap inference on model RDMs over subjects, stimuli or both.

    Every bootstrap sample resamples subjects and / or stimuli with replacement; pairs of a
    stimulus with its own copy are left out of the sample's RDMs (rsatoolbox's correction
    for duplicated stimuli); the noise ceiling is recomputed inside every sample
    (leave-one-subject-out by subject identity). ``unit="both"`` is rsatoolbox's dual
    bootstrap: the same indices are evaluated over both, subjects only and stimuli only, and
    the three variances are combined into the variance of the two-factor design
    (small-sample formula of ``rsatoolbox.util.inference_util._dual_bootstrap``).

    Parameters
    ----------
    models : array of shape (m,), (k, m), (n, n) or (k, n, n), or RDMData
        Model RDMs (fixed: fit weighted models with :func:`crossval_weighted_rsa`).
    subject_rdms : array of shape (n_subjects, m), (n_subjects, n, n) or
        (n_subjects, n_sessions, n, n) (averaged over sessions), or RDMData
    method : {"pearson", "cosine", "spearman", "rho_a", "corr_cov", "cosine_cov"}, \
default="pearson"
        rsatoolbox names (``"corr"``, ``"rho-a"``) are accepted. The whitened comparisons
        of a sample with duplicated stimuli use rsatoolbox's whitening with missing entries.
    unit : {"subjects", "stimuli", "both"}, default="both"
    n_bootstrap : int, default=1000
    ci : float, default=0.95
        Coverage of the confidence intervals.
    random_state : int, RandomState or None
        Seeds the indices (per sample: subjects, then stimuli, by ``randint``).
    indices : tuple (subject_index, stimulus_index), optional
        Explicit bootstrap indices, int arrays of shape (n_bootstrap, n_subjects) and
        (n_bootstrap, n_stimuli) (``None`` for a unit not resampled); overrides
        ``n_bootstrap`` and ``random_state``.
    names : list of str, optional
        Model names (default ``model0``, ``model1``, ...).
    ids : pair (model_ids, subject_ids), optional
        Stimulus IDs; the subject RDMs are reordered into the models' order (see
        :func:`neuroprobe.rsa.compare_rdms`); different stimulus sets raise a ``ValueError``.
    backend, device : str
        ``"numpy"`` (float64) or ``"torch"`` (float32; ``"cuda"`` for the GPU).

    Returns
    -------
    BootstrapResult

    Notes
    -----
    Samples with fewer than 3 distinct stimuli, a single distinct subject, or an RDM that is
    constant on the sampled pairs (an undefined correlation) are left out, with a
    :class:`~neuroprobe.exceptions.BootstrapWarning` and a line in ``notes``; the estimates
    rest on ``n_valid`` samples, so p-values stay defined with few conditions (e.g. 5
    stimuli). Fewer than 2 usable samples raise a ``ValueError``. With ``unit="subjects"``
    the noise ceiling's covariance with the models enters the test against the ceiling (as
    in rsatoolbox's ``eval_bootstrap_pattern``; its ``eval_bootstrap_rdm`` leaves it out).

    Examples
    --------
    >>> res = bootstrap_rsa(model_rdms, subject_rdms, "spearman", unit="both",
    ...                     n_bootstrap=1000, random_state=0)  # doctest: +SKIP
    >>> res.mean, res.ci, res.pvalue_pairwise_fdr  # doctest: +SKIP
    """
    from sklearn.utils import check_random_state

    method = check_method(method)
    if method not in _rb.BOOTSTRAP_METHODS:
        raise ValueError(f"method: the bootstrap supports {list(_rb.BOOTSTRAP_METHODS)}; got "
                         f"{method!r}")
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}; got {unit!r}")
    M, S = _aligned(models, _subject_stack(subject_rdms), ids, ("models", "subject_rdms"))
    M, S = np.atleast_2d(M).astype(np.float64), np.atleast_2d(S).astype(np.float64)
    if M.shape[1] != S.shape[1]:
        raise ValueError(f"models have {n_from_pairs(M.shape[1])} stimuli but subject_rdms "
                         f"{n_from_pairs(S.shape[1])}: not the same stimuli")
    check_finite(M, "models")
    check_finite(S, "subject_rdms")
    n_subj, n = S.shape[0], n_from_pairs(S.shape[1])
    if n_subj < 2:
        raise ValueError(f"subject_rdms must hold at least 2 subjects (the noise ceiling is "
                         f"leave-one-subject-out); got {n_subj}")
    if n < 3:
        raise ValueError(f"RDMs of {n} stimuli: the bootstrap needs at least 3")
    names = list(names) if names is not None else [f"model{i}" for i in range(M.shape[0])]
    if len(names) != M.shape[0]:
        raise ValueError(f"names has {len(names)} entries for {M.shape[0]} models")
    if indices is None:
        subj_idx, stim_idx = _rb.draw_indices(n_subj, n, int(n_bootstrap), unit,
                                              check_random_state(random_state))
    else:
        subj_idx, stim_idx = indices
        want_s, want_n = unit in ("subjects", "both"), unit in ("stimuli", "both")
        if (subj_idx is not None) != want_s or (stim_idx is not None) != want_n:
            raise ValueError(f"indices: unit={unit!r} needs "
                             f"{'a subject' if want_s else 'no subject'} index and "
                             f"{'a stimulus' if want_n else 'no stimulus'} index")
        subj_idx = _check_indices(subj_idx, n_subj, "subject") if want_s else None
        stim_idx = _check_indices(stim_idx, n, "stimulus") if want_n else None
        sizes = {a.shape[0] for a in (subj_idx, stim_idx) if a is not None}
        if len(sizes) > 1:
            raise ValueError(f"indices: subject and stimulus indices have different numbers "
                             f"of samples {sorted(sizes)}")
    B = (subj_idx if subj_idx is not None else stim_idx).shape[0]
    cs = _rb.counts(subj_idx, n_subj) if subj_idx is not None else np.ones((B, n_subj), int)
    cn = _rb.counts(stim_idx, n) if stim_idx is not None else np.ones((B, n), int)
    ones_s, ones_n = np.ones_like(cs), np.ones_like(cn)
    if unit == "both":
        designs = [(cs, cn), (cs, ones_n), (ones_s, cn)]
    else:
        designs = [(cs, cn)]
    all_s = np.concatenate([d[0] for d in designs])
    all_n = np.concatenate([d[1] for d in designs])
    with np.errstate(divide="ignore", invalid="ignore"):
        ev, nc = _rb.evaluate_samples(M, S, all_s, all_n, method, backend=backend,
                                      device=device)
    T = len(designs)
    ev = ev.reshape(T, B, -1).transpose(1, 2, 0)  # (B, k, T)
    nc = nc.reshape(T, B, 2).transpose(1, 2, 0)  # (B, 2, T)
    few_stimuli = (cn > 0).sum(1) < 3
    undefined = ~(np.isfinite(ev).all(axis=(1, 2)) & np.isfinite(nc).all(axis=(1, 2)))
    valid = ~few_stimuli & ~undefined
    notes = []
    if few_stimuli.any():
        notes.append(f"{int(few_stimuli.sum())} of {B} samples had fewer than 3 distinct "
                     "stimuli and were left out")
    if (undefined & ~few_stimuli).any():
        notes.append(f"{int((undefined & ~few_stimuli).sum())} of {B} samples had an RDM "
                     "constant on the sampled pairs or a single distinct subject (undefined "
                     "comparison or noise ceiling) and were left out")
    n_valid = int(valid.sum())
    if n_valid < 2:
        raise ValueError(f"only {n_valid} of {B} bootstrap samples are usable ({'; '.join(notes)}"
                         "): the variance cannot be estimated. Use more samples, more "
                         "stimuli or unit='subjects'")
    if notes:
        warnings.warn(BootstrapWarning(f"bootstrap_rsa: {'; '.join(notes)}; the estimates "
                                       f"rest on {n_valid} samples"), stacklevel=2)
    ev[~valid], nc[~valid] = np.nan, np.nan
    matrix = np.concatenate([ev[valid], nc[valid]], axis=1)  # (Bv, k + 2, T)
    matrix = matrix - matrix.mean(axis=0, keepdims=True)
    cov = np.einsum("bit,bjt->tij", matrix, matrix) / (n_valid - 1)
    if unit == "both":
        def correction(v):
            return _rb.dual_variance(v, n_subj, n)

        dof = min(n_subj, n) - 1
    else:
        n_unit = n_subj if unit == "subjects" else n
        cov = cov[0]

        def correction(v):
            return v * n_unit / (n_unit - 1)

        dof = n_unit - 1
    model_var, diff_var, nc_var = _rb.split_variances(cov, correction)
    mean = ev[valid].mean(axis=2).mean(axis=0)
    nc_mean = nc[valid].mean(axis=(0, 2))
    sem, ci_t, p_zero, p_nc, p_pair, p_fdr, p_fwe = _tests(mean, model_var, diff_var, nc_var,
                                                           nc_mean[0], dof, ci)
    q = [(1 - ci) / 2, (1 + ci) / 2]
    ci_pct = np.quantile(ev[valid][:, :, 0], q, axis=0).T
    return BootstrapResult(
        names=names, method=method, unit=unit, n_bootstrap=B, n_valid=n_valid, mean=mean,
        sem=sem, ci=ci_t, ci_percentile=ci_pct, pvalue_zero=p_zero,
        pvalue_noise_ceiling=p_nc, pvalue_pairwise=p_pair, pvalue_pairwise_fdr=p_fdr,
        pvalue_pairwise_fwe=p_fwe, noise_ceiling=nc_mean, dof=int(dof), ci_level=float(ci),
        evaluations=ev if unit == "both" else ev[:, :, 0],
        noise_ceilings=nc if unit == "both" else nc[:, :, 0], notes=notes)


def crossval_weighted_rsa(components, subject_rdms, method="pearson", fitter="nnls", *,
                          n_folds_stimuli=2, n_folds_subjects=1, random_state=None, ids=None):
    """Cross-validated evaluation of a non-negative weighted combination of component RDMs.

    For every (stimulus fold, subject fold), the weights (rsatoolbox ``ModelWeighted``:
    ``fitter="nnls"`` is ``fit_regress_nn``, ``"optimize"`` is ``fit_optimize_positive``)
    are fitted on the other stimuli's pairs of the other subjects and the weighted RDM is
    compared with the held-out subjects' RDMs among the held-out stimuli.

    Parameters
    ----------
    components : array of shape (n_components, m) or (n_components, n, n), or RDMData
        Component RDMs (e.g. one per layer).
    subject_rdms : array of shape (n_subjects, m) or (n_subjects, n, n), or RDMData
    method : {"pearson", "cosine", "corr_cov", "cosine_cov", "spearman", "rho_a"}
    fitter : {"nnls", "optimize"}
    n_folds_stimuli, n_folds_subjects : int
        Folds along each axis (1: that axis is not split).
    random_state : int, RandomState or None
        Shuffles the fold assignment (and seeds the rank-method search).
    ids : pair (component_ids, subject_ids), optional
        Stimulus IDs (see :func:`neuroprobe.rsa.compare_rdms`).

    Returns
    -------
    dict with ``score`` (mean over folds), ``scores`` (n_folds_stimuli, n_folds_subjects),
    ``weights`` (n_folds_stimuli, n_folds_subjects, n_components) and ``weights_full``
    (the fit on all data).
    """
    from sklearn.utils import check_random_state

    from neuroprobe.solvers import rsa_fit as _fit

    method = check_method(method)
    C, S = _aligned(components, _subject_stack(subject_rdms), ids,
                    ("components", "subject_rdms"))
    C, S = np.atleast_2d(C), np.atleast_2d(S)
    n, n_subj = n_from_pairs(C.shape[1]), S.shape[0]
    if C.shape[1] != S.shape[1]:
        raise ValueError("components and subject_rdms must be RDMs of the same stimuli")
    if not 1 <= n_folds_stimuli <= n // 3:
        raise ValueError(f"n_folds_stimuli must be in [1, {n // 3}] (at least 3 stimuli per "
                         f"fold) for {n} stimuli; got {n_folds_stimuli}")
    if not 1 <= n_folds_subjects <= n_subj:
        raise ValueError(f"n_folds_subjects must be in [1, {n_subj}]; got {n_folds_subjects}")
    rng = check_random_state(random_state)
    stim = _fit.kfold_sets(n, n_folds_stimuli, rng)
    subj = _fit.kfold_sets(n_subj, n_folds_subjects, rng)
    scores, weights = _fit.crossval_scores(C, S, method, fitter, stim, subj, random_state=rng)
    full = _fit.fit_weights(C, S, method, fitter, random_state=rng)
    return {"score": float(scores.mean()), "scores": scores, "weights": weights,
            "weights_full": full}
