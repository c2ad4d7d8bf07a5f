"""Time-resolved meta-estimators: :class:`TimeResolved` (one estimator per time window of the
brain data, RSA vectorised) and :class:`TemporalGeneralization` (train at t1, test at t2);
:func:`permutation_test_time_resolved`: stimulus-permutation nulls of encoding time courses
(ridge fast path) and :func:`permutation_test_time_resolved_rsa`: of RSA time courses (the
fused time-resolved RSA, stimulus-permutation null of the window RDMs), both with max-statistic,
cluster-mass and optional TFCE FWE over layers x time, one- or two-sided."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils.metaestimators import available_if

from .._validation import HasMethods, Interval, fit_context
from ..io.epochs import EpochData
from ..solvers.adjacency import check_adjacency
from ..solvers.permutation import (
    chunk_seeds,
    chunk_sizes,
    draw_permutations,
    run_chunks,
    run_seeded_chunks,
)
from ..solvers.temporal import (
    cluster_fwe_pvalues,
    cluster_h0,
    cluster_masses,
    compare_rdms,
    n_windows,
    permutation_null,
    searchlight_rsa,
    tfce,
    tfce_default_step,
    tfce_h0,
    tfce_pvalues,
    time_resolved_rsa,
    window_rdms,
)

__all__ = ["TimeResolved", "TemporalGeneralization", "permutation_test_time_resolved",
           "permutation_test_time_resolved_rsa", "TemporalPermutationResult"]


def _brain(y, what="y"):
    """Brain data as a float array (n_stimuli, n_channels, n_times)."""
    data = y.data if isinstance(y, EpochData) else np.asarray(y, dtype=np.float64)
    if data.ndim != 3:
        raise ValueError(f"{what}: expected brain data (n_stimuli, n_channels, n_times) or an "
                         f"EpochData; got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{what}: brain data hold NaN/inf values")
    return data


def _unit_scale(Y):
    """A global scale of the brain data (their RMS; 1 for all zeros). The encoder works in
    float32: sensor units (1e-13 T) would underflow its products of sums of squares, and every
    score (correlation, r2, explained variance) is invariant to a global scale of the targets."""
    scale = float(np.sqrt(np.mean(np.square(Y))))
    return scale if scale > 0 and np.isfinite(scale) else 1.0


def _centres(n_times, radius, step):
    return np.arange(radius, radius + n_windows(n_times, radius), step)


class TimeResolved(MetaEstimatorMixin, BaseEstimator):
    """Apply an estimator at every time window of time-resolved brain data.

    ``fit(X, y)``: ``X`` the model features (n_stimuli, n_features), ``y`` the brain data
    (n_stimuli, n_channels, n_times) or an :class:`~neuroprobe.io.epochs.EpochData`. At each
    window centre ``t`` the estimator sees ``y[:, :, t - r : t + r + 1]`` flattened to
    (n_stimuli, n_channels * (2r + 1)). For an :class:`~neuroprobe.estimators.RSAScorer` without a
    fixed target RDM, the window RDMs, ranks and comparisons come from one fused pass over chunks
    of windows (:func:`~neuroprobe.solvers.temporal.time_resolved_rsa`, fast path). For a
    :class:`~neuroprobe.estimators.VoxelwiseEncoder` whose targets are fitted independently
    (per-target alphas, or OLS), every window's channels are stacked as targets of one fit
    (channels x windows in the encoder's target batches, one decomposition of ``X`` per fold),
    which equals fitting a clone per window. That path also serves
    :class:`~neuroprobe.estimators.PermutationTest` (``_permutation_scores``: the encoder's
    ridge fast path on the stacked windows, one statistic per target and window) and
    :func:`permutation_test_time_resolved` (curves per layer, cluster-mass FWE over time).

    Parameters
    ----------
    estimator : estimator with ``fit`` and ``score``
        ``score_targets`` is used when present.
    temporal_radius : int, default=0
        Half-width of the window in samples (as mne-rsa's, after conversion to samples).
    step : int, default=1
        Samples between window centres.
    spatial_neighbours : array-like of bool of shape (n_centres, n_channels), optional
        Channel-neighbourhood searchlight (RSA fast path only): one curve per model and centre,
        as mne-rsa's ``spatial_radius`` (neighbourhoods from
        :func:`neuroprobe.solvers.temporal.channel_neighbourhoods`).
    n_jobs : int or None, default=None
        Threads of the RSA fast path and the searchlight (chunks of windows: copy, Gram
        products, ranks; joblib's convention, None: 1, -1: all cores). Results do not depend
        on it.

    Attributes
    ----------
    times_ : ndarray of int
        Sample index of each window centre.
    estimators_ : list of estimators (generic path only)
    estimator_ : estimator (batched encoder path only)
        The one encoder fitted on the windows stacked as targets, in units of ``y_scale_``.
    y_scale_ : float (batched encoder path only)
        RMS of the brain data of ``fit``: ``estimator_`` is fitted on (and ``score_targets``
        scores) the data divided by it, which changes no score and keeps float32 accurate for
        sensor units (MEG in tesla).
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "score"])],
        "temporal_radius": [Interval(Integral, 0, None, closed="left")],
        "step": [Interval(Integral, 1, None, closed="left")],
        "spatial_neighbours": ["array-like", None],
        "n_jobs": [Integral, None],
    }

    def __init__(self, estimator, temporal_radius=0, step=1, spatial_neighbours=None,
                 n_jobs=None):
        self.estimator = estimator
        self.temporal_radius = temporal_radius
        self.step = step
        self.spatial_neighbours = spatial_neighbours
        self.n_jobs = n_jobs

    def _fast(self):
        from .rsa import RSAScorer

        est = self.estimator
        return (isinstance(est, RSAScorer) and est.target_rdm is None and est.target_groups is None
                and (est.target_metric or est.metric) in ("correlation", "sqeuclidean",
                                                          "euclidean")
                and est.comparison in ("spearman", "pearson"))

    def _batched(self):
        from .encoding import VoxelwiseEncoder

        est = self.estimator
        return isinstance(est, VoxelwiseEncoder) and (est.alpha_per_target
                                                      or not est._solver().tuned)

    def _stacked(self, Y, times=None):
        """Every window's (channel x lag) columns side by side: (n, n_windows * c * width)."""
        r = self.temporal_radius
        times = self.times_ if times is None else times
        view = np.lib.stride_tricks.sliding_window_view(Y, 2 * r + 1, axis=2)  # (n, c, w, width)
        view = view[:, :, times - r]
        return np.ascontiguousarray(view.transpose(0, 2, 1, 3)).reshape(Y.shape[0], -1)

    def _window(self, Y, t):
        r = self.temporal_radius
        return Y[:, :, t - r:t + r + 1].reshape(Y.shape[0], -1)

    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, groups=None):
        """Fit one estimator per window (or, for RSA, store the model RDMs). Returns self.

        ``groups`` (one label per stimulus, optional) is passed on to the estimator's ``fit``
        (e.g. the grouped inner folds of a :class:`~neuroprobe.estimators.VoxelwiseEncoder`).
        """
        Y = _brain(y)
        extra = {} if groups is None else {"groups": np.asarray(groups)}
        X = np.asarray(X)
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"y: {Y.shape[0]} stimuli but X has {X.shape[0]}")
        self.times_ = _centres(Y.shape[2], self.temporal_radius, self.step)
        if self.spatial_neighbours is not None and not self._fast():
            raise ValueError("spatial_neighbours: the channel searchlight needs an RSAScorer "
                             "without a fixed target RDM (correlation/euclidean metric, "
                             "spearman/pearson comparison)")
        if self._fast():
            self.rsa_ = clone(self.estimator).fit(X, self._window(Y, self.times_[0]))
        elif self._batched():
            self.y_scale_ = _unit_scale(Y)
            self.estimator_ = clone(self.estimator).fit(X, self._stacked(Y / self.y_scale_),
                                                        **extra)
        else:
            self.estimators_ = [clone(self.estimator).fit(X, self._window(Y, t), **extra)
                                for t in self.times_]
        return self

    def _has_permutation_path(self):
        return (self._batched() and self.spatial_neighbours is None
                and hasattr(self.estimator, "_permutation_scores"))

    @available_if(lambda self: self._has_permutation_path())
    def _permutation_scores(self, X, Y, permutations, *, cv=None, groups=None):
        """Observed and permuted statistics of every (target, window): the encoder's fast path.

        The windows are stacked as targets (as in ``fit``) and handed to the encoder's
        ``_permutation_scores`` (:meth:`VoxelwiseEncoder._permutation_scores
        <neuroprobe.estimators.VoxelwiseEncoder>`: each fold's decomposition of ``X`` is
        reused, the rows of the brain data are permuted, nothing is refitted). Permutation
        ``k`` relabels stimuli as ``Y[permutations[k]]``, the same for every channel and time,
        so the nulls of all windows (and, called once per layer with the same permutations, of
        all layers) are jointly valid for max-statistic and cluster FWE.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_features)
        Y : ndarray of shape (n_stimuli, n_channels, n_times) or EpochData
        permutations : int array of shape (n_permutations, n_stimuli)
        cv, groups : optional
            The folds of the statistic (default: the encoder's ``cv``).

        Returns
        -------
        observed : ndarray of shape (n_targets * n_windows,)
            Target-major, as ``score_targets(...).ravel()`` (targets: channels x lags).
        null : ndarray of shape (n_permutations, n_targets * n_windows)
        """
        Y = _brain(Y)
        X = np.asarray(X)
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"y: {Y.shape[0]} stimuli but X has {X.shape[0]}")
        times = _centres(Y.shape[2], self.temporal_radius, self.step)
        observed, null = clone(self.estimator)._permutation_scores(   # scores: scale-free
            X, self._stacked(Y / _unit_scale(Y), times), permutations, cv=cv, groups=groups)
        nw, k = len(times), len(permutations)
        observed = np.asarray(observed, dtype=np.float64).reshape(nw, -1).T.ravel()
        null = np.asarray(null, dtype=np.float64).reshape(k, nw, -1).transpose(0, 2, 1)
        return observed, null.reshape(k, -1)

    def score_targets(self, X, y):
        """Score curves: ndarray of shape (n_targets, n_windows)."""
        Y = _brain(y)
        X = np.asarray(X)
        if self._fast():
            est = self.rsa_
            _, models = est._model_rdms(X)
            metric = est.target_metric or est.metric
            if self.spatial_neighbours is not None:       # (models, centres, windows)
                r = searchlight_rsa(Y, models, np.asarray(self.spatial_neighbours, bool),
                                    self.temporal_radius, metric, est.comparison,
                                    n_jobs=self.n_jobs)
                r = r[:, :, self.times_ - self.temporal_radius]
                return r.reshape(-1, r.shape[2])
            r = time_resolved_rsa(Y, models, self.temporal_radius, metric, est.comparison,
                                  n_jobs=self.n_jobs)          # fused: RDMs never stored
            return r[:, self.times_ - self.temporal_radius]
        if self._batched():
            scores = self.estimator_.score_targets(X, self._stacked(Y / self.y_scale_))
            return np.asarray(scores, dtype=np.float64).reshape(len(self.times_), -1).T
        cols = []
        for est, t in zip(self.estimators_, self.times_):
            w = self._window(Y, t)
            s = est.score_targets(X, w) if hasattr(est, "score_targets") else est.score(X, w)
            cols.append(np.atleast_1d(np.asarray(s, dtype=np.float64)))
        return np.stack(cols, axis=1)

    def score(self, X, y):
        """Mean of the score curves (the summary for GridSearchCV over layers)."""
        return float(np.mean(self.score_targets(X, y)))


class TemporalGeneralization(MetaEstimatorMixin, BaseEstimator):
    """Train at every time point t1, test at every t2 (as MNE's ``GeneralizingEstimator``).

    ``X``: brain data (n_trials, n_channels, n_times); ``y``: labels / targets per trial.

    Parameters
    ----------
    estimator : estimator with ``fit`` and ``score``

    Attributes
    ----------
    estimators_ : list of n_times fitted estimators
    """

    _parameter_constraints = {"estimator": [HasMethods(["fit", "score"])]}

    def __init__(self, estimator):
        self.estimator = estimator

    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit one estimator per time point. Returns self."""
        X = _brain(X, "X")
        self.estimators_ = [clone(self.estimator).fit(X[:, :, t], y) for t in range(X.shape[2])]
        return self

    def score(self, X, y):
        """Generalisation matrix: ndarray of shape (n_train_times, n_test_times)."""
        X = _brain(X, "X")
        if X.shape[2] != len(self.estimators_):
            raise ValueError(f"X: {X.shape[2]} time points but fitted on {len(self.estimators_)}")
        return np.array([[est.score(X[:, :, t], y) for t in range(X.shape[2])]
                         for est in self.estimators_])


# --------------------------------------------------------------------------- time-course statistics
@dataclass
class TemporalPermutationResult:
    """Encoding or RSA time courses with their stimulus-permutation inference.

    Arrays of the curves have shape ``(n_layers, n_windows)`` (``average=True``, and RSA: one
    curve per model RDM) or ``(n_layers, n_targets, n_windows)`` (encoding per channel,
    ``average=False``). All p-values are of the tested ``tail``: the statistic itself (1), its
    negation (-1) or its absolute value (0).

    Attributes
    ----------
    layers : list of str
    centres : ndarray of int of shape (n_windows,)
        Sample index of each window centre (``TimeResolved.times_``).
    times : ndarray of shape (n_windows,) or None
        Seconds of the window centres (EpochData input), else None.
    observed : ndarray
        The statistic. Encoding: held-out score of each target (mean over the folds) at its
        best alpha (the ridge fast path's statistic), averaged over targets when ``average``.
        RSA: the comparison of each model RDM with each window's brain RDM.
    null : ndarray of shape (n_permutations,) + observed.shape, or None
        None when the test reduced its null as it was drawn (``keep_null=False``).
    pvalue : ndarray
        Uncorrected ``(1 + #{null >= observed}) / (1 + n_permutations)`` (oriented by
        ``tail``).
    pvalue_fwe : ndarray
        Max-statistic FWE over every layer, (target) and window.
    cluster_labels : ndarray of int
        Clusters of adjacent supra-threshold windows of each curve, or with ``adjacency`` of
        each layer's (target, window) samples, joined across adjacent channels (0: none);
        cluster ``k`` has p-value ``cluster_pvalue[k - 1]``.
    cluster_pvalue : ndarray of shape (n_clusters,)
        Cluster-mass FWE over layers (x targets) x time
        (:func:`neuroprobe.solvers.temporal.cluster_fwe`).
    cluster_threshold : float
        A magnitude: clusters of ``observed > threshold`` (tail 1), ``< -threshold`` (-1) or
        both, apart (0).
    n_permutations : int
    tail : {1, 0, -1}
    tfce_scores : ndarray or None
        Signed TFCE scores of the observed curves
        (:func:`neuroprobe.solvers.temporal.tfce`), when TFCE was asked for.
    tfce_pvalue : ndarray or None
        TFCE FWE p-value of every sample, the max score over layers (x targets) x time of each
        permutation (:func:`neuroprobe.solvers.temporal.tfce_fwe`).
    tfce : dict or None
        The TFCE parameters used (``start``, ``step``, ``h_power``, ``e_power``; ``step``
        resolved when defaulted).
    h0_max, h0_cluster : ndarray of shape (n_permutations,)
        The permutation distributions of the FWE p-values (mne.stats' ``H0``): each
        permutation's max statistic over layers (x targets) x time and its max cluster mass
        (0 without a cluster), oriented by ``tail``.
    h0_tfce : ndarray of shape (n_permutations,) or None
        Each permutation's max TFCE score, oriented by ``tail`` (with TFCE).
    """

    layers: list
    centres: np.ndarray
    times: np.ndarray | None
    observed: np.ndarray
    null: np.ndarray | None
    pvalue: np.ndarray
    pvalue_fwe: np.ndarray
    cluster_labels: np.ndarray
    cluster_pvalue: np.ndarray
    cluster_threshold: float
    n_permutations: int
    tail: int = 1
    tfce_scores: np.ndarray | None = None
    tfce_pvalue: np.ndarray | None = None
    tfce: dict | None = None
    h0_max: np.ndarray | None = None
    h0_cluster: np.ndarray | None = None
    h0_tfce: np.ndarray | None = None


_TFCE_KEYS = ("start", "step", "h_power", "e_power")


def _check_tail(tail):
    if isinstance(tail, bool) or tail not in (1, 0, -1):
        raise ValueError(f"tail: expected 1 (above chance), 0 (two-sided) or -1 (below); "
                         f"got {tail!r}")
    return int(tail)


def _check_tfce(tfce):
    """``tfce`` as a dict of TFCE options (None: no TFCE; True: the defaults)."""
    if tfce is None or tfce is False:
        return None
    if tfce is True:
        return {}
    if not isinstance(tfce, dict):
        raise ValueError(f"tfce: expected None, True or a dict with keys among {_TFCE_KEYS}; "
                         f"got {tfce!r}")
    unknown = sorted(set(tfce) - set(_TFCE_KEYS))
    if unknown:
        raise ValueError(f"tfce: unknown keys {unknown}; expected keys among {_TFCE_KEYS}")
    return dict(tfce)


def _oriented(x, tail):
    return np.abs(x) if tail == 0 else (-x if tail == -1 else x)


def _options(observed, null_sample, tail, cluster_threshold, tfce):
    """The cluster-forming threshold (default: the 95th percentile of the oriented
    ``null_sample``) and the TFCE options (None: no TFCE; ``step`` defaulted from
    ``observed``)."""
    if cluster_threshold is None:
        cluster_threshold = float(np.nanquantile(_oriented(null_sample, tail), 0.95))
    if tfce is None:
        return float(cluster_threshold), None
    opts = {"start": 0.0, "step": None, "h_power": 2.0, "e_power": 0.5, **tfce}
    try:
        opts = {key: None if v is None else float(v) for key, v in opts.items()}
    except (TypeError, ValueError):
        raise ValueError(f"tfce: expected numbers for {_TFCE_KEYS}; got {tfce!r}") from None
    if opts["step"] is None:
        opts["step"] = tfce_default_step(observed, opts["start"], tail)
    return float(cluster_threshold), opts


def _reduce(observed, null, tail, threshold, opts, adjacency=None):
    """What the p-values need of a (chunk of the) null ``(k, *observed.shape)``: the count of
    null values at least the observed one (every sample), and each permutation's max
    statistic, max cluster mass and max TFCE score (None without TFCE)."""
    k, nw = len(null), observed.shape[-1]
    o, n = _oriented(observed, tail), _oriented(null, tail)
    count = (n >= o[None]).sum(axis=0)
    mx = np.fmax.reduce(n.reshape(k, -1), axis=1)         # NaN-ignoring, as fwe_pvalues
    if adjacency is not None:                             # (k, rows, targets, windows)
        curves = null.reshape(k, -1, *observed.shape[-2:])
    else:
        curves = null.reshape(k, -1, nw)
    return (count, mx, cluster_h0(curves, threshold, tail, adjacency),
            None if opts is None else tfce_h0(curves, **opts, tail=tail, adjacency=adjacency))


def _max_over_layers(maxima):
    """Per-permutation maxima (max statistic, cluster mass, TFCE) of the same permutations in
    several layers, as one: their elementwise max (NaN-ignoring)."""
    mx, cl, tf = maxima[0]
    for m, k, t in maxima[1:]:
        mx, cl = np.fmax(mx, m), np.fmax(cl, k)
        tf = None if tf is None else np.fmax(tf, t)
    return mx, cl, tf


def _inference(observed, tail, threshold, opts, count, h0_max, h0_cluster, h0_tfce,
               adjacency=None):
    """p-values, clusters and TFCE of curves ``observed`` (..., n_windows) from the reduction
    of their null (:func:`_reduce`) as the fields of :class:`TemporalPermutationResult`."""
    k = len(h0_max)
    o = _oriented(observed, tail)
    missing = np.isnan(observed)
    p = (count + 1.0) / (k + 1.0)
    p_fwe = (1.0 + (h0_max[:, None] >= o.reshape(1, -1)).sum(axis=0)).reshape(o.shape) / (k + 1)
    p[missing], p_fwe[missing] = np.nan, np.nan
    rows = observed.reshape(-1, *observed.shape[-2:]) if adjacency is not None else \
        observed.reshape(-1, observed.shape[-1])
    labels, masses = cluster_masses(rows, threshold, tail, adjacency)
    fields = {"pvalue": p, "pvalue_fwe": p_fwe, "tail": tail,
              "cluster_labels": labels.reshape(observed.shape),
              "cluster_pvalue": np.asarray(cluster_fwe_pvalues(masses, h0_cluster, tail),
                                           dtype=np.float64),
              "cluster_threshold": float(threshold), "h0_max": h0_max, "h0_cluster": h0_cluster}
    if opts is not None:
        scores = tfce(rows, **{key: opts[key] for key in _TFCE_KEYS}, tail=tail,
                      adjacency=adjacency)
        pt = tfce_pvalues(scores, h0_tfce, tail).reshape(observed.shape)
        pt[missing] = np.nan
        fields.update(tfce_scores=scores.reshape(observed.shape), tfce_pvalue=pt, tfce=opts,
                      h0_tfce=h0_tfce)
    return fields


def _full_inference(observed, null, tail, cluster_threshold, tfce, adjacency=None):
    """:func:`_inference` of a whole null ``(n_permutations, *observed.shape)``."""
    threshold, opts = _options(observed, null, tail, cluster_threshold, tfce)
    return _inference(observed, tail, threshold, opts,
                      *_reduce(observed, null, tail, threshold, opts, adjacency), adjacency)


def _layer_nulls(size, seed, estimator, Xs, Y, cv, groups, scheme, block_size, average):
    """(layer index, observed, null) of every layer for one chunk of ``size`` permutations
    drawn from ``seed`` (as ``PermutationTest``'s chunks); per-target statistics averaged over
    targets with ``average``: ``(n_windows,)`` and ``(size, n_windows)`` per layer, else
    ``(n_targets, n_windows)`` and ``(size, n_targets, n_windows)``."""
    n, nw = Y.shape[0], len(_centres(Y.shape[2], estimator.temporal_radius, estimator.step))
    perms = draw_permutations(n, size, groups=groups, seed=seed, scheme=scheme,
                              block_size=block_size)
    for i, X in enumerate(Xs):
        obs, null = estimator._permutation_scores(X, Y, perms, cv=cv, groups=groups)
        obs, null = obs.reshape(-1, nw), null.reshape(size, -1, nw)
        if average:
            with warnings.catch_warnings():   # an all-NaN window (constant data) stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                obs, null = np.nanmean(obs, axis=0), np.nanmean(null, axis=1)
        yield i, obs, null


def _null_chunks(sizes, seeds, *args):
    """Observed curves and nulls of every layer for the permutation chunks of one task."""
    n_layers = len(args[1])                       # args: (estimator, Xs, Y, ...)
    observed, nulls = [None] * n_layers, [[] for _ in range(n_layers)]
    for size, seed in zip(sizes, seeds):
        for i, obs, null in _layer_nulls(size, seed, *args):
            observed[i] = obs if observed[i] is None else observed[i]
            nulls[i].append(null)
    return observed, [np.concatenate(v) for v in nulls]


def _reduced_chunks(sizes, seeds, observed, tail, threshold, opts, adjacency, *args):
    """The reduction (:func:`_reduce`) of the null of every layer for the chunks of one task:
    the summed counts ``(n_layers, ...)`` and, per chunk, the per-permutation maxima over all
    layers; never more than one layer's null of one chunk in memory."""
    count, maxima = None, []
    for size, seed in zip(sizes, seeds):
        counts, layer_maxima = [None] * len(observed), []
        for i, _, null in _layer_nulls(size, seed, *args):
            counts[i], *m = _reduce(observed[i], null, tail, threshold, opts, adjacency)
            layer_maxima.append(m)
        count = np.stack(counts) if count is None else count + np.stack(counts)
        maxima.append(_max_over_layers(layer_maxima))
    return count, maxima


def _target_adjacency(adjacency, n_channels, radius, average):
    """The channel adjacency as one of the encoding targets (channel x lag, channel-major):
    the lags of a channel are neighbours of each other and of its neighbours' lags."""
    from scipy import sparse

    if average:
        raise ValueError("adjacency: spatio-temporal clusters are over channels; pass "
                         "average=False (a test per channel)")
    A = check_adjacency(adjacency, n_channels)
    width = 2 * int(radius) + 1
    if width == 1:
        return A
    block = sparse.kron(A + sparse.eye_array(n_channels, dtype=bool),
                        np.ones((width, width), bool))
    return check_adjacency(block, n_channels * width)


def permutation_test_time_resolved(estimator, X, y, *, n_permutations=1000, cv=5, groups=None,
                                   average=True, keep_null=True, cluster_threshold=None,
                                   adjacency=None, tfce=None, tail=1, random_state=None,
                                   n_jobs=None, scheme="shuffle", block_size=None):
    """Stimulus-permutation test of encoding time courses, FWE over layers x time.

    For every layer, the statistic at each window is the held-out score of every target
    (channel x lag) at its best alpha, i.e. the max over ``alphas`` of the mean over the ``cv``
    folds (the statistic of :class:`~neuroprobe.estimators.PermutationTest`'s ridge fast
    path), averaged over targets with ``average=True``. Its null permutes the stimuli (rows of
    the brain data) with the same permutation for every layer, channel and time, reusing each
    fold's decomposition of the features: no refit per permutation. From the joint null come
    uncorrected p-values, max-statistic FWE p-values and cluster-mass FWE p-values of the
    clusters of adjacent windows above ``cluster_threshold`` (the cluster functions of the
    time-resolved RSA, :func:`neuroprobe.solvers.temporal.cluster_fwe`) and, with ``tfce``,
    TFCE FWE p-values of every sample, one-sided (``tail=1``: scores above chance) or as
    ``tail`` says.

    Parameters
    ----------
    estimator : TimeResolved
        Over a :class:`~neuroprobe.estimators.VoxelwiseEncoder` with ``penalty="l2"`` (or
        ``None``, OLS) and per-target alphas (its batched path).
    X : array-like of shape (n_stimuli, n_features), or dict of str to such arrays
        Features of one layer, or of several (``{name: X}``: one curve per layer).
    y : ndarray of shape (n_stimuli, n_channels, n_times) or EpochData
        Brain data, rows in the order of ``X``'s rows.
    n_permutations : int, default=1000
    cv : int or cross-validation splitter, default=5
        Folds of the statistic; an int is :func:`neuroprobe.model_selection.default_cv`
        (shuffled ``KFold`` seeded by ``random_state``, ``GroupKFold`` with ``groups``).
    groups : array-like of shape (n_stimuli,), optional
        Group labels: grouped folds, and stimuli are permuted within groups.
    average : bool, default=True
        Average the statistic over targets (one curve per layer); ``False``: one curve per
        layer and target, FWE over layers x targets x time (a kept null takes ``8 *
        n_permutations * n_layers * n_targets * n_windows`` bytes: 5.9 GB for 1,000
        permutations of 8 layers x 306 channels x 301 windows; see ``keep_null``).
    keep_null : bool, default=True
        Keep the whole null in the result (``null``). ``False``: each chunk of permutations is
        reduced as it is drawn to what the p-values need (the count of null values at least
        the observed one at every sample, and each permutation's max statistic, max cluster
        mass and max TFCE score over layers x targets x time), so memory does not grow with
        ``n_permutations``: the first chunk of every layer (``8 * chunk * n_layers *
        n_targets * n_windows`` bytes, ``chunk = max(64, n_permutations / 32)``), drawn in the
        caller (it gives the observed curves and the default threshold), then one layer's
        chunk at a time on each of the ``n_jobs`` workers. ``null`` is then None and every
        p-value equals that of ``keep_null=True`` with the same cluster threshold.
    cluster_threshold : float, optional
        Cluster-forming threshold on the statistic, a magnitude (clusters of values above it,
        below its negation for ``tail=-1``, either for ``tail=0``); default: the 95th
        percentile of the null (of ``|null|`` for ``tail=0``, of ``-null`` for ``tail=-1``;
        as ``neuroprobe rsa --time-resolved``), with ``keep_null=False`` of the first chunk's
        null (its ``max(64, n_permutations / 32)`` permutations of every layer, target and
        window: the threshold is fixed before the other chunks are reduced).
    adjacency : array-like or sparse matrix of shape (n_channels, n_channels), optional
        With ``average=False``: spatio-temporal clusters, samples connected in time or across
        adjacent channels at the same window (mne.stats' ``adjacency``, e.g. from
        ``mne.channels.find_ch_adjacency``; :mod:`neuroprobe.solvers.adjacency`). With a
        temporal radius the targets are channel x lag: the lags of one channel are neighbours
        of each other and of the lags of adjacent channels. TFCE is then spatio-temporal too
        (extents of clusters over channels x time, as mne.stats').
    tfce : dict, True or None
        Also threshold-free cluster enhancement: ``dict(start=0, step=None, h_power=2,
        e_power=0.5)`` (any subset; True: all defaults) for
        :func:`neuroprobe.solvers.temporal.tfce_fwe`; ``step=None`` is 1/50 of the most
        extreme observed value in the tested tail (negative for ``tail=-1``, as mne.stats).
    tail : {1, 0, -1}, default=1
        1: scores above chance; -1: below; 0: two-sided (``|statistic|``; clusters of either
        sign apart, their ``|mass|``; TFCE of both signs, ``|score|``).
    random_state : int, RandomState or None
        Master seed of the permutation chunks (the same permutations as
        ``PermutationTest(random_state=...)``) and of the default folds.
    n_jobs : int, optional
        Permutation chunks in parallel (joblib); results do not depend on it.
    scheme : {"shuffle", "circular", "block"}, default="shuffle"
        How stimuli are permuted (within ``groups``; see
        :func:`neuroprobe.solvers.permutation.draw_permutations`). Trial-averaged stimuli are
        exchangeable: ``"shuffle"``.
    block_size : int, optional
        Rows per block of ``scheme="block"``.

    Returns
    -------
    TemporalPermutationResult

    Examples
    --------
    >>> import numpy as np
    >>> from neuroprobe import TimeResolved, VoxelwiseEncoder
    >>> from neuroprobe.estimators.temporal import permutation_test_time_resolved
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((30, 4))
    >>> Y = rng.standard_normal((30, 3, 12))
    >>> Y[:, :, 5:8] += (X @ rng.standard_normal((4, 3)))[:, :, None]
    >>> res = permutation_test_time_resolved(TimeResolved(VoxelwiseEncoder(alphas=[1.0, 10.0])),
    ...                                      {"conv": X}, Y, n_permutations=99, random_state=0)
    >>> res.observed.shape, bool(res.cluster_pvalue.min() < 0.05)
    ((1, 12), True)
    """
    from .._cv import default_cv
    from ..solvers.permutation import check_n_stimuli

    tail, tfce = _check_tail(tail), _check_tfce(tfce)
    if not isinstance(estimator, TimeResolved) or not hasattr(estimator, "_permutation_scores"):
        raise ValueError("estimator: expected a TimeResolved over a VoxelwiseEncoder with "
                         "per-target alphas (penalty 'l2' or None), whose ridge fast path the "
                         f"null uses; got {estimator!r}")
    if int(n_permutations) < 1:
        raise ValueError(f"n_permutations: expected an int >= 1; got {n_permutations!r}")
    layers = dict(X) if isinstance(X, dict) else {"layer": X}
    if not layers:
        raise ValueError("X: expected at least one layer")
    Y = _brain(y)
    Xs = [np.asarray(v) for v in layers.values()]
    for name, v in zip(layers, Xs):
        check_n_stimuli(v.shape[0], Y.shape[0], f"X[{name!r}]", "y")
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (Y.shape[0],):
            raise ValueError(f"groups: expected one label per stimulus ({Y.shape[0]}); got "
                             f"shape {groups.shape}")
    if adjacency is not None:
        adjacency = _target_adjacency(adjacency, Y.shape[1], estimator.temporal_radius,
                                      average)
    splitter = default_cv(cv, None, groups, random_state, classifier=False)
    est = clone(estimator)
    args = (est, Xs, Y, splitter, groups, scheme, block_size, average)
    if keep_null:
        tasks = run_chunks(_null_chunks, int(n_permutations), random_state, n_jobs, args)
        observed = np.stack(tasks[0][0])                               # (layers, [targets,] w)
        null = np.stack([np.concatenate([t[1][i] for t in tasks]) for i in range(len(Xs))],
                        axis=1)
        fields = _full_inference(observed, null, tail, cluster_threshold, tfce, adjacency)
    else:
        sizes = chunk_sizes(int(n_permutations))
        seeds = chunk_seeds(random_state, len(sizes))
        first, null = _null_chunks(sizes[:1], seeds[:1], *args)        # in the caller
        observed, null = np.stack(first), np.stack(null, axis=1)
        threshold, opts = _options(observed, null, tail, cluster_threshold, tfce)
        count, *maxima = _reduce(observed, null, tail, threshold, opts, adjacency)
        del first, null
        maxima = [maxima]
        for c, m in run_seeded_chunks(_reduced_chunks, sizes[1:], seeds[1:], n_jobs,
                                      (observed, tail, threshold, opts, adjacency) + args):
            count = count + c
            maxima.extend(m)
        h0 = [np.concatenate(v) if v[0] is not None else None for v in zip(*maxima)]
        null = None
        fields = _inference(observed, tail, threshold, opts, count, *h0, adjacency)
    centres = _centres(Y.shape[2], estimator.temporal_radius, estimator.step)
    seconds = np.asarray(y.times)[centres] if isinstance(y, EpochData) else None
    return TemporalPermutationResult(
        layers=list(layers), centres=centres, times=seconds, observed=observed, null=null,
        n_permutations=int(n_permutations), **fields)


def _model_rdms(model_rdms, n):
    """Names and condensed (n_models, n_pairs) model RDMs of ``n`` stimuli."""
    from ..solvers.rdm import to_condensed

    m = n * (n - 1) // 2
    items = model_rdms.items() if isinstance(model_rdms, dict) else [(None, model_rdms)]
    rows, names = [], []
    for key, value in items:
        what = "model_rdms" if key is None else f"model_rdms[{key!r}]"
        try:
            rdms = np.atleast_2d(to_condensed(value, what))
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
        if rdms.ndim != 2 or rdms.shape[1] != m:
            raise ValueError(f"{what}: expected RDMs of the {n} stimuli of brain ({m} pairs); "
                             f"got shape {np.shape(value)}")
        if not np.all(np.isfinite(rdms)):
            raise ValueError(f"{what}: the RDMs hold NaN/inf values")
        rows.append(rdms)
        names += ([f"model{i}" for i in range(len(rdms))] if key is None
                  else [str(key)] if len(rdms) == 1
                  else [f"{key}[{j}]" for j in range(len(rdms))])
    if not rows:
        raise ValueError("model_rdms: expected at least one model RDM")
    M = np.vstack(rows)
    return names, M


def permutation_test_time_resolved_rsa(model_rdms, brain, *, temporal_radius=0,
                                       metric="correlation", comparison="spearman",
                                       n_permutations=1000, cluster_threshold=None, tfce=None,
                                       tail=1, random_state=None, n_jobs=None):
    """Stimulus-permutation test of RSA time courses, FWE over models (layers) x time.

    The observed curves compare each model RDM with the brain RDM of every window of
    ``2 * temporal_radius + 1`` samples (:func:`neuroprobe.solvers.temporal.window_rdms`, then
    :func:`~neuroprobe.solvers.temporal.compare_rdms`: equal to the fused
    :func:`~neuroprobe.solvers.temporal.time_resolved_rsa` to 1e-12; the window RDMs are
    computed once and serve the null too), or window RDMs given directly (e.g. the mean of
    every subject's). The null relabels the stimuli of every model RDM with the same
    permutation for all models and windows
    (:func:`neuroprobe.solvers.temporal.permutation_null`), so it is jointly valid over models x
    time: uncorrected p-values, max-statistic FWE p-values, cluster-mass FWE p-values of the
    clusters of adjacent windows beyond ``cluster_threshold``
    (:func:`~neuroprobe.solvers.temporal.cluster_fwe`) and, with ``tfce``, TFCE FWE p-values of
    every sample (:func:`~neuroprobe.solvers.temporal.tfce_fwe`).

    Parameters
    ----------
    model_rdms : array-like of shape (n_models, n_pairs), (n_pairs,) or (n_models, n, n), or
        dict of str to RDMs. Condensed or square RDMs of the brain's stimuli, in its row
        order; a dict names the curves (else ``model0``, ``model1``, ...).
    brain : ndarray of shape (n_stimuli, n_channels, n_times), EpochData, or ndarray of shape
        (n_windows, n_pairs)
        Brain data, or their condensed window RDMs already computed (a 2-D array: e.g. the
        mean over subjects of ``window_rdms(subject_data, temporal_radius)``, the usual group
        RDM when sensors differ between subjects; ``metric`` is then not used).
    temporal_radius : int, default=0
        Half-width of the window in samples (with window RDMs: the radius they were computed
        with, which places the window centres).
    metric : {"correlation", "sqeuclidean", "euclidean"}, default="correlation"
        Distance of the brain patterns.
    comparison : {"spearman", "pearson"}, default="spearman"
    n_permutations : int, default=1000
    cluster_threshold : float, optional
        Cluster-forming threshold on the curves, a magnitude (clusters of values above it,
        below its negation for ``tail=-1``, either for ``tail=0``); default: the 95th
        percentile of the null (of ``|null|`` for ``tail=0``, of ``-null`` for ``tail=-1``).
    tfce : dict, True or None
        Also threshold-free cluster enhancement: ``dict(start=0, step=None, h_power=2,
        e_power=0.5)`` (any subset; True: all defaults). ``step=None`` is 1/50 of the most
        extreme observed value in the tested tail (RDM correlations are ~0.01-0.3, unlike
        t values), negative for ``tail=-1`` (as mne.stats: ``start <= 0``, ``step < 0``).
    tail : {1, 0, -1}, default=1
        1: correlations above chance; -1: below; 0: two-sided.
    random_state : int, numpy Generator, RandomState or None
        Seed of the permutations (``numpy.random.default_rng``; the permutations of
        ``permutation_null(..., random_state=random_state)``; a ``RandomState`` gives the seed,
        drawn from it).
    n_jobs : int, optional
        Threads of the window RDMs and of the fused RSA (results do not depend on it).

    Returns
    -------
    TemporalPermutationResult
        ``layers``: the model names; ``observed``: (n_models, n_windows).

    Examples
    --------
    >>> import numpy as np
    >>> from neuroprobe.estimators.temporal import permutation_test_time_resolved_rsa
    >>> from neuroprobe.rsa import compute_rdm
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((20, 5))
    >>> Y = rng.standard_normal((20, 8, 30))
    >>> Y[:, :, 10:16] += (X @ rng.standard_normal((5, 8)))[:, :, None]
    >>> res = permutation_test_time_resolved_rsa({"layer": compute_rdm(X, "correlation")}, Y,
    ...                                          n_permutations=99, tfce=True, random_state=0)
    >>> res.observed.shape, bool(res.tfce_pvalue[0, 12] < 0.05)
    ((1, 30), True)
    """
    tail, tfce = _check_tail(tail), _check_tfce(tfce)
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, Integral) \
            or n_permutations < 1:
        raise ValueError(f"n_permutations: expected an int >= 1; got {n_permutations!r}")
    if isinstance(temporal_radius, bool) or not isinstance(temporal_radius, Integral) \
            or temporal_radius < 0:
        raise ValueError(f"temporal_radius: expected an int >= 0 (samples); got "
                         f"{temporal_radius!r}")
    if comparison not in ("spearman", "pearson"):
        raise ValueError(f"comparison: expected 'spearman' or 'pearson'; got {comparison!r}")
    r = int(temporal_radius)
    if not isinstance(brain, EpochData) and np.ndim(brain) == 2:     # window RDMs
        brain_rdms = np.asarray(brain, dtype=np.float64)
        if not np.all(np.isfinite(brain_rdms)):
            raise ValueError("brain: the window RDMs hold NaN/inf values")
        n = int(round((1 + np.sqrt(1 + 8 * brain_rdms.shape[1])) / 2))
        if n * (n - 1) // 2 != brain_rdms.shape[1] or n < 3:
            raise ValueError(f"brain: a 2-D array is read as condensed window RDMs "
                             f"(n_windows, n_pairs); {brain_rdms.shape[1]} is not a number of "
                             "pairs n (n - 1) / 2 of n >= 3 stimuli")
    else:
        Y = _brain(brain, "brain")
        n = Y.shape[0]
        brain_rdms = window_rdms(Y, r, metric, n_jobs=n_jobs)
    names, M = _model_rdms(model_rdms, n)
    observed = compare_rdms(M, brain_rdms, comparison)
    null = permutation_null(M, brain_rdms, int(n_permutations), comparison,
                            random_state=random_state)
    centres = np.arange(r, r + observed.shape[1])
    seconds = np.asarray(brain.times)[centres] if isinstance(brain, EpochData) else None
    return TemporalPermutationResult(
        layers=names, centres=centres, times=seconds, observed=observed, null=null,
        n_permutations=int(n_permutations),
        **_full_inference(observed, null, tail, cluster_threshold, tfce))
