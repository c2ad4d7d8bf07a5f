"""Representational similarity analysis: RDMs, their comparison, and noise ceilings.

RDMs are condensed vectors in scipy ``pdist`` order (upper triangle, row by row) unless said
otherwise; :func:`to_square` and :func:`to_condensed` convert stacks of them.

Definitions follow rsatoolbox (see :mod:`neuroprobe.solvers.rdm` for the mapping table):
our ``"pearson"`` is its ``"corr"``, ``"spearman"`` its ``"spearman"``, ``"rho_a"`` its ``"rho-a"``,
``"kendall_tau_a"`` its ``"tau-a"``, ``"kendall_tau_b"`` its ``"kendall"``, ``"cosine"`` its
``"cosine"``. rsatoolbox's ``"euclidean"`` RDM is our ``"sqeuclidean"`` divided by the number of
features.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext as _nullcontext
from dataclasses import dataclass

import numpy as np

from neuroprobe._utils import check_finite
from neuroprobe.exceptions import ConstantPatternError, ConstantPatternWarning  # noqa: F401 (re-exported)
from neuroprobe.solvers import rdm as _rdm
from neuroprobe.solvers.rdm import to_condensed, to_square

__all__ = [
    "compute_rdm",
    "compare_rdms",
    "noise_ceiling",
    "window_noise_ceiling",
    "NoiseCeiling",
    "to_square",
    "to_condensed",
    "check_method",
    "permutation_test_rdms",
    "ConstantPatternWarning",
    "ConstantPatternError",
    "select_rdms",
    "subject_level_test",
]


_ALIASES = {
    "corr": "pearson",
    "correlation": "pearson",
    "tau-a": "kendall_tau_a",
    "tau_a": "kendall_tau_a",
    "kendall": "kendall_tau_b",
    "tau-b": "kendall_tau_b",
    "tau_b": "kendall_tau_b",
    "rho-a": "rho_a",
}


def check_method(method):
    """Canonical comparison name (rsatoolbox names accepted); ``ValueError`` lists the options."""
    name = _ALIASES.get(method, method)
    if name not in _rdm.COMPARE_METHODS:
        raise ValueError(
            f"method must be one of {list(_rdm.COMPARE_METHODS)} (or rsatoolbox's "
            f"{sorted(_ALIASES)}); got {method!r}"
        )
    return name


# --------------------------------------------------------------------------------------------
# square <-> condensed: to_condensed / to_square live in neuroprobe.solvers.rdm (re-exported)
# --------------------------------------------------------------------------------------------
def select_rdms(rdms, index):
    """Condensed RDMs of the stimuli ``index`` (in that order): rows and columns taken together.

    Parameters
    ----------
    rdms : array of shape (m,) or (k, m)
        Condensed RDMs of ``n`` stimuli.
    index : array of int of shape (n_out,)
        Stimuli to keep, in the new order (e.g. from :func:`neuroprobe.io.ids.align_ids`).

    Returns
    -------
    ndarray of shape (m_out,) or (k, m_out)
    """
    V = np.asarray(rdms)
    n = _rdm.n_from_pairs(V.shape[-1])
    index = np.asarray(index, dtype=np.intp)
    if index.ndim != 1 or (index.size and (index.min() < 0 or index.max() >= n)):
        raise ValueError(f"index must select stimuli among the {n} of the RDM")
    i, j = np.triu_indices(index.size, 1)
    a, b = np.minimum(index[i], index[j]), np.maximum(index[i], index[j])
    if np.any(a == b):
        raise ValueError("index selects a stimulus twice")
    return V[..., a * n - a * (a + 1) // 2 + (b - a - 1)]


def _rdm_and_ids(x, name):
    """(array, stim_ids or None) of an array or an :class:`~neuroprobe.io.rdm.RDMData`."""
    if hasattr(x, "rdms") and hasattr(x, "stim_ids"):
        return x.rdms, x.stim_ids
    return x, None


def check_same_ids(given, stored, name):
    """``given`` IDs, refused when they contradict the IDs ``stored`` with RDMs ``name``.

    Both are compared element-wise as strings (same stimuli in the same order); ``ValueError``
    names the first differing position. Returns the IDs to use (``given``, else ``stored``).
    """
    if given is None or stored is None:
        return given if given is not None else stored
    from neuroprobe.io.ids import as_ids

    g, s = as_ids(given, f"{name} IDs"), as_ids(stored, f"{name} stored IDs")
    if g.shape != s.shape or np.any(g != s):
        where = next((i for i, (x, y) in enumerate(zip(g, s)) if x != y), min(g.size, s.size))
        shown = (f"position {where}: {g[where]!r} given, {s[where]!r} stored"
                 if where < min(g.size, s.size) else f"{g.size} given, {s.size} stored")
        raise ValueError(
            f"{name}: the stimulus IDs given contradict the IDs stored with the RDMs "
            f"({shown}); these are RDMs of a different stimulus set or order. Drop the "
            "given IDs (the stored ones are used) or pass plain arrays")
    return g


def _aligned(a, b, ids, names=("a", "b")):
    """Condensed stacks of ``a`` and ``b`` with ``b`` in the stimulus order of ``a``."""
    a, ids_a = _rdm_and_ids(a, names[0])
    b, ids_b = _rdm_and_ids(b, names[1])
    if ids is not None:
        if len(ids) != 2:
            raise ValueError(f"ids must be a pair ({names[0]}_ids, {names[1]}_ids)")
        ids_a = check_same_ids(ids[0], ids_a, names[0])
        ids_b = check_same_ids(ids[1], ids_b, names[1])
    A, B = to_condensed(a, names[0]), to_condensed(b, names[1])
    if ids_a is not None and ids_b is not None:
        from neuroprobe.io.ids import align_ids

        for V, ids_v, nm in ((A, ids_a, names[0]), (B, ids_b, names[1])):
            if len(ids_v) != _rdm.n_from_pairs(V.shape[-1]):
                raise ValueError(f"{nm} has {_rdm.n_from_pairs(V.shape[-1])} stimuli but "
                                 f"{len(ids_v)} IDs")
        B = select_rdms(B, align_ids(ids_a, ids_b, what=names[1], reference=names[0]))
    return A, B


# --------------------------------------------------------------------------------------------
# compute_rdm
# --------------------------------------------------------------------------------------------
def _average_conditions(X, conditions):
    conditions = np.asarray(conditions)
    if conditions.shape != (X.shape[0],):
        raise ValueError(
            f"conditions must have one label per stimulus ({X.shape[0]}); got shape "
            f"{conditions.shape}"
        )
    labels, inverse = np.unique(conditions, return_inverse=True)
    sums = np.zeros((labels.size, X.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, X)
    return (sums / np.bincount(inverse)[:, None]).astype(X.dtype, copy=False), labels


def _check_constant_patterns(X, metric, name, labels):
    """Bool mask of the patterns whose ``metric`` distance is undefined; warn or raise.

    Correlation distance needs a pattern that varies over features, cosine one that is not all
    zero. Raises when fewer than two patterns are usable (every entry would be NaN).
    """
    if not (isinstance(metric, str) and metric in ("correlation", "cosine")):
        return None
    if metric == "correlation":
        const = np.ptp(X, axis=1) == 0 if X.shape[1] else np.ones(X.shape[0], bool)
        what = "constant over features"
    else:
        const = ~np.any(X != 0, axis=1)
        what = "all zero"
    if not const.any():
        return None
    rows = np.flatnonzero(const)
    names = [str(labels[i]) if labels is not None else str(i) for i in rows]
    shown = ", ".join(names[:5]) + (", ..." if len(rows) > 5 else "")
    kind = "conditions" if labels is not None else "rows"
    text = (f"{name}: {len(rows)} of {X.shape[0]} patterns are {what} ({kind} {shown}); their "
            f"{metric} distance is undefined")
    if X.shape[0] - len(rows) < 2:
        raise ConstantPatternError(
            f"{text}, so every entry of the RDM would be NaN. Use another metric (e.g. "
            "'euclidean') or check the input (a dead layer, blank images?)", rows, name)
    warnings.warn(ConstantPatternWarning(f"{text}: their RDM entries are NaN", rows, name),
                  stacklevel=4)
    return const


def _one_rdm(X, metric, conditions, zscore, backend, device, name, kwargs):
    X = np.asarray(X)
    if X.ndim == 1:
        raise ValueError(f"{name} must be 2-D (n_stimuli, n_features); got a 1-D array")
    X = X.reshape(X.shape[0], -1)
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    check_finite(X, name)
    labels = None
    if conditions is not None:
        X, labels = _average_conditions(X, conditions)
    if X.shape[0] < 2:
        raise ValueError(f"{name}: an RDM needs at least 2 stimuli; got {X.shape[0]}")
    if zscore:
        sd = X.std(axis=0)
        X = (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1)
    const = _check_constant_patterns(X, metric, name, labels)
    with np.errstate(invalid="ignore", divide="ignore") if const is not None else _nullcontext():
        out = _rdm.rdm(X, metric, backend=backend, device=device, **kwargs)
    if const is not None:  # NaN, not rounding noise, wherever a constant pattern takes part
        i, j = _rdm.pair_indices(X.shape[0])
        out[const[i] | const[j]] = np.nan
    return out


def _poisson_cv(X, conditions, cv_groups, kwargs):
    """Checked :func:`neuroprobe.solvers.rdm.poisson_cv` (one pattern matrix)."""
    unknown = set(kwargs) - {"prior_lambda", "prior_weight"}
    if unknown:
        raise TypeError(f"metric='poisson_cv' got unexpected keyword(s) {sorted(unknown)}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_observations, n_channels) for 'poisson_cv'; got "
                         f"shape {X.shape}")
    check_finite(X, "X")
    if np.any(X < 0):
        raise ValueError("X: metric='poisson_cv' needs non-negative data (counts or rates)")
    for name, v in (("conditions", conditions), ("cv_groups", cv_groups)):
        if v is None or np.asarray(v).shape != (X.shape[0],):
            raise ValueError(f"{name}: metric='poisson_cv' needs one label per row of X "
                             f"({X.shape[0]})")
    conditions, cv_groups = np.asarray(conditions), np.asarray(cv_groups)
    runs = np.unique(cv_groups)
    if runs.size < 2:
        raise ValueError(f"cv_groups: cross-validation needs at least 2 runs; got {runs.size}")
    labels = np.unique(conditions)
    for r in runs:
        missing = np.setdiff1d(labels, conditions[cv_groups == r])
        if missing.size:
            raise ValueError(f"cv_groups: run {r!r} lacks conditions {missing[:5].tolist()} "
                             "(every run needs every condition)")
    return _rdm.poisson_cv(X, conditions, cv_groups, **kwargs)[0]


def compute_rdm(X, metric="correlation", conditions=None, zscore=False, *, backend="numpy",
                device="cpu", cv_groups=None, noise=None, **metric_kwargs):
    """Representational dissimilarity matrix of the patterns in ``X``, condensed (pdist order).

    Parameters
    ----------
    X : array of shape (n_stimuli, n_features), a stack (k, n_stimuli, n_features), or a list /
        dict of arrays (e.g. layers x ROIs; feature counts may differ)
        Patterns, one row per stimulus. Items of a list / dict may have trailing axes (e.g.
        unpooled feature maps), which are flattened.
    metric : str or callable, default="correlation"
        ``"correlation"`` (1 - Pearson r), ``"cosine"``, ``"euclidean"``, ``"sqeuclidean"`` and
        ``"mahalanobis"`` are computed through one (blocked) matrix product; any other scipy
        ``pdist`` metric (or a callable) goes through ``pdist``.
    conditions : array of shape (n_stimuli,), optional
        Average the patterns of each condition first (DNNBrain's ``-cate``); the RDM rows are the
        sorted unique conditions.
    zscore : bool, default=False
        Standardise each feature across stimuli first.
    backend, device : str
        ``"numpy"`` or ``"torch"``; ``"cpu"`` or ``"cuda"`` (torch works in float32).
    **metric_kwargs
        Passed to the kernel (``VI=`` for mahalanobis, pdist keywords for other metrics).
    cv_groups, noise : optional
        For ``metric="crossnobis"``: the run of each row and the noise precision (see
        :func:`neuroprobe.crossnobis.crossnobis_rdm`; ``conditions`` is then required).
        ``metric="poisson_cv"`` (cross-validated KL divergence of Poisson rates, rsatoolbox's
        ``poisson_cv``; keywords ``prior_lambda=1``, ``prior_weight=0.1``) takes
        ``conditions`` and ``cv_groups`` too (see :func:`neuroprobe.solvers.rdm.poisson_cv`).

    Returns
    -------
    rdm : ndarray of shape (n_pairs,) for one input, (k, n_pairs) for a stack / list / dict
        float64 for float64 input on numpy, float32 otherwise.

    Notes
    -----
    The correlation distance of a pattern that is constant over features (cosine: all zero)
    is undefined: its entries are NaN, with a :class:`ConstantPatternWarning` naming the rows
    (or conditions); when fewer than two patterns are usable a :class:`ConstantPatternError`
    (a ``ValueError``) is raised.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroprobe.rsa import compute_rdm
    >>> compute_rdm(np.eye(3), "euclidean").round(3)
    array([1.414, 1.414, 1.414])
    """
    if isinstance(metric, str) and metric == "crossnobis":
        from neuroprobe.crossnobis import crossnobis_rdm

        return crossnobis_rdm(X, conditions, cv_groups, noise, **metric_kwargs)
    if isinstance(metric, str) and metric == "poisson_cv":
        if noise is not None:
            raise ValueError("noise= applies to metric='crossnobis' only; got "
                             "metric='poisson_cv'")
        return _poisson_cv(X, conditions, cv_groups, metric_kwargs)
    if cv_groups is not None or noise is not None:
        raise ValueError(f"cv_groups= and noise= apply to metric='crossnobis' only (cv_groups= "
                         f"also to 'poisson_cv'); got metric={metric!r}")
    kwargs = dict(metric_kwargs)
    if isinstance(X, dict):
        items = list(X.items())
    elif isinstance(X, (list, tuple)):
        items = [(f"X[{i}]", x) for i, x in enumerate(X)]
    else:
        arr = np.asarray(X)
        if arr.ndim == 3:
            items = [(f"X[{i}]", x) for i, x in enumerate(arr)]
        else:
            return _one_rdm(arr, metric, conditions, zscore, backend, device, "X", kwargs)
    if not items:
        raise ValueError("X is an empty collection of pattern matrices")
    out = [_one_rdm(x, metric, conditions, zscore, backend, device, str(name), kwargs)
           for name, x in items]
    sizes = {o.size for o in out}
    if len(sizes) > 1:
        raise ValueError(
            "all inputs of a stack must have the same number of stimuli; got RDM lengths "
            f"{sorted(sizes)}"
        )
    return np.stack(out)


# --------------------------------------------------------------------------------------------
# compare_rdms
# --------------------------------------------------------------------------------------------
def compare_rdms(a, b, method="spearman", *, ids=None, backend="numpy", device="cpu",
                 sigma_k=None):
    """Similarity of RDMs ``a`` and ``b``, defined exactly as rsatoolbox's ``compare``.

    Parameters
    ----------
    a, b : array of shape (m,), (n, n), (k, m) or (k, n, n), or RDMData
        One RDM or a stack of RDMs, condensed or square, or RDMs read by
        :func:`neuroprobe.io.rdm.load_rdms` (their stored stimulus IDs are used).
    method : {"spearman", "pearson", "kendall_tau_a", "kendall_tau_b", "rho_a", "cosine", \
"corr_cov", "cosine_cov"}
        rsatoolbox names (``"corr"``, ``"tau-a"``, ``"kendall"``, ``"rho-a"``) are accepted.
        ``"corr_cov"`` / ``"cosine_cov"`` are the correlation / cosine after whitening by the
        covariance of the RDM entries (Diedrichsen et al. 2020), as rsatoolbox's.
    ids : pair (ids_a, ids_b), optional
        Stimulus IDs of the rows of ``a`` and of ``b``. When both sources have IDs, ``b`` is
        reordered into the order of ``a``; different stimulus sets raise a ``ValueError``
        naming the first mismatching IDs. Without IDs the RDMs must be in the same order.
    backend, device : str
        Backend for the dot-product methods (all but the Kendall taus).
    sigma_k : array of shape (n,), optional
        Variances of the pattern estimates for the whitened methods (rsatoolbox's 1-D
        ``sigma_k``); default: equal variances.

    Returns
    -------
    float when ``a`` and ``b`` are single RDMs, else ndarray of shape (k_a, k_b).

    Examples
    --------
    >>> import numpy as np
    >>> from neuroprobe.rsa import compare_rdms
    >>> a = np.array([1.0, 2.0, 3.0, 2.0, 1.0, 4.0])
    >>> round(compare_rdms(a, 2 * a + 1, "corr_cov"), 6)
    1.0
    """
    method = check_method(method)
    A, B = _aligned(a, b, ids)
    single = A.ndim == 1 and B.ndim == 1
    A, B = np.atleast_2d(A), np.atleast_2d(B)
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"a and b must be RDMs of the same number of stimuli; got "
            f"{_rdm.n_from_pairs(A.shape[1])} and {_rdm.n_from_pairs(B.shape[1])}"
        )
    check_finite(A, "a")
    check_finite(B, "b")
    out = _rdm.compare(A, B, method, backend=backend, device=device, sigma_k=sigma_k)
    return float(out[0, 0]) if single else out


# --------------------------------------------------------------------------------------------
# noise ceiling
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NoiseCeiling:
    """Lower and upper bounds of the noise ceiling, with bootstrap intervals when asked.

    Attributes
    ----------
    lower, upper : float
    lower_ci, upper_ci : tuple of float or None
        Percentile bootstrap interval over stimuli.
    method : str
    n_subjects : int
    """

    lower: float
    upper: float
    lower_ci: tuple | None = None
    upper_ci: tuple | None = None
    method: str = "spearman"
    n_subjects: int = 0


def _pool_transform(V, method):
    """Per-subject transform before averaging (rsatoolbox ``inference_util.pool_rdm``)."""
    if method in ("pearson", "corr_cov"):
        V = V - V.mean(axis=1, keepdims=True)
        return V / V.std(axis=1, keepdims=True)
    if method in ("cosine", "cosine_cov"):
        return V / np.sqrt((V**2).mean(axis=1, keepdims=True))
    return _rdm.rank_rows(V)  # spearman, rho_a, kendall: averaged ranks


def _bounds(V, method):
    k = V.shape[0]
    T = _pool_transform(V, method)
    total = T.sum(axis=0)
    loo = (total[None, :] - T) / (k - 1)
    if method in ("pearson", "corr_cov"):  # rsatoolbox shifts the pooled RDM to be >= 0
        loo = loo - loo.min(axis=1, keepdims=True)
        pooled = total / k - (total / k).min()
    else:
        pooled = total / k
    lower = np.mean([_rdm.compare(loo[s], V[s], method)[0, 0] for s in range(k)])
    upper = np.mean(_rdm.compare(pooled, V, method))
    return float(lower), float(upper)


def noise_ceiling(rdms, method="spearman", n_bootstrap=0, ci=0.95, random_state=None):
    """Noise ceiling of subject RDMs (Nili et al. 2014), leave-one-subject-out.

    The upper bound is the mean similarity of each subject's RDM with the average of all subjects'
    RDMs; the lower bound with the average of the other subjects. Averaging follows rsatoolbox's
    ``boot_noise_ceiling`` (ranks averaged for rank methods, z-scores for pearson, RMS-normalised
    RDMs for cosine), so the bounds equal rsatoolbox's.

    Parameters
    ----------
    rdms : array of shape (n_subjects, m), (n_subjects, n, n) or (n_subjects, n_sessions, n, n)
        Subject RDMs; a 4-D array is averaged over sessions first.
    method : str, default="spearman"
        Comparison method (see :func:`compare_rdms`).
    n_bootstrap : int, default=0
        Bootstrap resamples of the stimuli for confidence intervals (0: none). Pairs of a
        stimulus with its own copy are left out of each resample.
    ci : float, default=0.95
        Coverage of the percentile interval.
    random_state : int, RandomState or None

    Returns
    -------
    NoiseCeiling
    """
    from sklearn.utils import check_random_state

    method = check_method(method)
    R = np.asarray(rdms, dtype=np.float64)
    if R.ndim == 4:
        R = R.mean(axis=1)
    V = to_condensed(R, "rdms")
    if V.ndim != 2 or V.shape[0] < 2:
        raise ValueError(f"rdms must hold at least 2 subject RDMs; got shape {R.shape}")
    check_finite(V, "rdms")
    lower, upper = _bounds(V, method)
    lower_ci = upper_ci = None
    if n_bootstrap:
        rng = check_random_state(random_state)
        sq = to_square(V)
        n = sq.shape[-1]
        i, j = np.triu_indices(n, 1)
        boots = np.empty((int(n_bootstrap), 2))
        for b in range(int(n_bootstrap)):
            idx = rng.randint(0, n, size=n)
            keep = idx[i] != idx[j]
            boots[b] = _bounds(sq[:, idx[i[keep]], idx[j[keep]]], method)
        q = [(1 - ci) / 2 * 100, (1 + ci) / 2 * 100]
        lower_ci = tuple(float(v) for v in np.nanpercentile(boots[:, 0], q))
        upper_ci = tuple(float(v) for v in np.nanpercentile(boots[:, 1], q))
    return NoiseCeiling(lower, upper, lower_ci, upper_ci, method, V.shape[0])


def window_noise_ceiling(subject_rdms, method="spearman"):
    """Noise ceiling of every time window of subject window RDMs (MEG / EEG RSA).

    Window by window, the bounds of :func:`noise_ceiling` (Nili et al. 2014, leave-one-subject-
    out; equal to rsatoolbox's ``boot_noise_ceiling``): the band to draw behind time-resolved
    RSA curves (``plot_time_courses(..., ceiling=(lower, upper))``). ``"spearman"`` and
    ``"pearson"``, the comparisons of time-resolved RSA, are computed for all subjects and
    windows at once (:func:`neuroprobe.solvers.temporal.window_noise_ceiling`); the other
    methods of :func:`compare_rdms` window by window.

    Parameters
    ----------
    subject_rdms : array of shape (n_subjects, n_windows, n_pairs) or (n_subjects, n_windows,
        n, n), or a list of one such array per subject
        Every subject's window RDMs (e.g. ``solvers.temporal.window_rdms(data, radius)`` of
        each subject, stacked), the same stimuli in the same order.
    method : str, default="spearman"
        Comparison method (see :func:`compare_rdms`); the one of the RSA curves.

    Returns
    -------
    lower, upper : ndarray of shape (n_windows,)
    """
    from neuroprobe.solvers.temporal import window_noise_ceiling as _window_ceiling

    method = check_method(method)
    if isinstance(subject_rdms, (list, tuple)):                  # one array per subject
        shapes = [np.shape(r) for r in subject_rdms]
        for s, shape in enumerate(shapes):
            if shape != shapes[0]:
                raise ValueError(
                    f"subject_rdms: subject {s} has window RDMs of shape {shape} but subject 0 "
                    f"{shapes[0]}; every subject needs the same windows and stimuli")
    R = np.asarray(subject_rdms, dtype=np.float64)
    if R.ndim == 4:
        R = to_condensed(R.reshape(-1, *R.shape[2:]), "subject_rdms").reshape(
            *R.shape[:2], -1)
    if R.ndim != 3:
        raise ValueError("subject_rdms: expected shape (n_subjects, n_windows, n_pairs) or "
                         f"(n_subjects, n_windows, n, n); got shape {R.shape}")
    if R.shape[0] < 2:
        raise ValueError("subject_rdms: a noise ceiling needs at least 2 subjects; got "
                         f"{R.shape[0]}")
    try:
        _rdm.n_from_pairs(R.shape[2])
    except ValueError as err:
        raise ValueError(f"subject_rdms: {err}") from None
    check_finite(R, "subject_rdms")
    if method in ("spearman", "pearson"):
        return _window_ceiling(R, method)
    bounds = np.array([_bounds(R[:, w], method) for w in range(R.shape[1])]).reshape(-1, 2)
    return bounds[:, 0].copy(), bounds[:, 1].copy()


# --------------------------------------------------------------------------------------------
# subject-level inference
# --------------------------------------------------------------------------------------------
def subject_level_test(models, subject_rdms, method="spearman", lower_ceiling=None, *,
                       ids=None, backend="numpy", device="cpu"):
    """Each model RDM against each subject's RDM, with tests across subjects.

    The per-subject comparisons are those of :func:`compare_rdms`; the tests are one-sided
    across subjects: a one-sample t-test and a Wilcoxon signed-rank test of the scores > 0
    (rsatoolbox's ``eval_fixed(...).test_zero()`` is the same t-test), and a one-sample t-test
    of the scores < ``lower_ceiling`` (is the model below the lower noise ceiling?).

    Parameters
    ----------
    models : array of shape (m,), (k, m), (n, n) or (k, n, n), or RDMData
    subject_rdms : array of shape (n_subjects, m), (n_subjects, n, n) or
        (n_subjects, n_sessions, n, n) (averaged over sessions)
    method : str, default="spearman"
    lower_ceiling : float, optional
        Lower bound of the noise ceiling (e.g. ``noise_ceiling(subject_rdms).lower``).
    ids : pair (model_ids, subject_ids), optional
        Stimulus IDs (see :func:`compare_rdms`).
    backend, device : str

    Returns
    -------
    dict of arrays of shape (k,): ``mean``, ``sem`` (ddof=1), ``t``, ``pvalue_t``,
    ``pvalue_wilcoxon``, ``pvalue_vs_ceiling`` (NaN without ``lower_ceiling``); and
    ``scores`` of shape (k, n_subjects).
    """
    import scipy.stats

    S = subject_rdms
    if not (hasattr(S, "rdms") and hasattr(S, "stim_ids")):
        S = np.asarray(S, dtype=np.float64)
        if S.ndim == 4:
            S = S.mean(axis=1)
        S = np.atleast_2d(to_condensed(S, "subject_rdms"))
        if S.shape[0] < 2:
            raise ValueError(f"subject_rdms must hold at least 2 subjects; got {S.shape[0]}")
    scores = np.atleast_2d(compare_rdms(models, S, method, ids=ids, backend=backend,
                                        device=device))
    k = scores.shape[1]
    with np.errstate(all="ignore"):
        t = scipy.stats.ttest_1samp(scores, 0.0, axis=1, alternative="greater")
        p_wil = np.array([scipy.stats.wilcoxon(row, alternative="greater").pvalue
                          if np.any(row != 0) else np.nan for row in scores])
        p_nc = (scipy.stats.ttest_1samp(scores, lower_ceiling, axis=1, alternative="less").pvalue
                if lower_ceiling is not None else np.full(len(scores), np.nan))
    return {
        "scores": scores,
        "mean": scores.mean(axis=1),
        "sem": scores.std(axis=1, ddof=1) / np.sqrt(k),
        "t": np.asarray(t.statistic),
        "pvalue_t": np.asarray(t.pvalue),
        "pvalue_wilcoxon": p_wil,
        "pvalue_vs_ceiling": np.asarray(p_nc),
    }


# --------------------------------------------------------------------------------------------
# permutation test on RDMs
# --------------------------------------------------------------------------------------------
def permutation_test_rdms(models, targets, method="spearman", n_permutations=1000,
                          random_state=None, n_jobs=None, *, ids=None, backend="numpy",
                          device="cpu"):
    """Stimulus-label permutation test of model RDMs against target RDMs, with FWE control.

    The same test as ``PermutationTest(RSAScorer(target_rdm=targets))`` (same chunks and seeds, so
    the same null for the same ``random_state``), for RDMs already computed.

    Parameters
    ----------
    models : array of shape (m,), (k_models, m), (n, n) or (k_models, n, n), or RDMData
    targets : array of shape (m,), (k_targets, m), (n, n) or (k_targets, n, n), or RDMData
    method : str, default="spearman"
    n_permutations : int, default=1000
    random_state : int, RandomState or None
    n_jobs : int, optional
        Permutation chunks in parallel (joblib).
    ids : pair (model_ids, target_ids), optional
        Stimulus IDs; the targets are reordered into the models' order (see
        :func:`compare_rdms`).
    backend, device : str

    Returns
    -------
    dict with ``score``, ``pvalue``, ``pvalue_fwe`` (arrays of shape (k_models, k_targets);
    FWE over all pairs: max statistic) and ``null`` (n_permutations, k_models, k_targets).
    """
    from neuroprobe.solvers.permutation import (
        check_n_stimuli,
        draw_permutations,
        fwe_pvalues,
        pvalues,
        rsa_null,
        run_chunks,
    )

    method = check_method(method)
    M, T = _aligned(models, targets, ids, ("models", "targets"))
    M, T = np.atleast_2d(M), np.atleast_2d(T)
    check_n_stimuli(_rdm.n_from_pairs(M.shape[1]), _rdm.n_from_pairs(T.shape[1]), "models",
                    "targets", unit="stimuli")
    check_finite(M, "models")
    check_finite(T, "targets")
    n = _rdm.n_from_pairs(M.shape[1])

    def chunk(sizes, seeds):
        perms = np.concatenate([draw_permutations(n, k, seed=s) for k, s in zip(sizes, seeds)])
        return rsa_null(M, T, perms, method, backend=backend, device=device)

    results = run_chunks(chunk, n_permutations, random_state, n_jobs)
    observed = results[0][0]
    null = np.concatenate([r[1] for r in results])
    shape = (M.shape[0], T.shape[0])
    return {
        "score": observed.reshape(shape),
        "pvalue": pvalues(observed, null).reshape(shape),
        "pvalue_fwe": fwe_pvalues(observed, null).reshape(shape),
        "null": null.reshape((-1, *shape)),
    }
