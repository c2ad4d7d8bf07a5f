"""PermutationTest: permutation p-values, with family-wise control, for any estimator."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils import check_array, get_tags

from neuroprobe._progress import progress
from neuroprobe._sklearn_compat import (
    _check_feature_names,
    _check_n_features,
    _num_samples,
    _safe_indexing,
)
from neuroprobe._validation import HasMethods, Integral, Interval, StrOptions, fit_context
from neuroprobe.exceptions import ExchangeabilityWarning, ZeroVarianceWarning
from neuroprobe.solvers.permutation import (
    SCHEMES,
    check_n_stimuli,
    draw_permutations,
    fwe_pvalues,
    pvalues,
    run_chunks,
)


def _split_scorer(estimator, X_test, Y_test):
    """``statistic="split"`` on the generic path: each band's share of the held-out R^2."""
    return estimator.score_targets(X_test, Y_test, split=True)


def _score_fold(estimator, X_test, Y_test, scorer, multi):
    if scorer is not None:
        return np.asarray(scorer(estimator, X_test, Y_test), dtype=np.float64)
    if multi and hasattr(estimator, "score_targets"):
        return np.asarray(estimator.score_targets(X_test, Y_test), dtype=np.float64)
    return np.asarray(estimator.score(X_test, Y_test), dtype=np.float64)


def _cv_statistic(estimator, X, Y, cv, groups, scorer, multi):
    """Mean over CV folds of the held-out score (sklearn ``_permutation_test_score``)."""
    scores = []
    for train, test in cv.split(X, Y, groups):
        est = clone(estimator).fit(_safe_indexing(X, train), _safe_indexing(Y, train))
        scores.append(_score_fold(est, _safe_indexing(X, test), _safe_indexing(Y, test),
                                  scorer, multi))
    return np.mean(scores, axis=0)


def _generic_null(estimator, X, Y, permutations, cv, groups, scorer, multi):
    """Refit the estimator on each permutation of ``Y`` (rows)."""
    return np.stack([
        np.atleast_1d(_cv_statistic(estimator, X, _safe_indexing(Y, p), cv, groups, scorer, multi))
        for p in progress(permutations, desc="permutations (refits)", unit="perm")
    ])


def _chunk(sizes, seeds, estimator, Xs, Y, groups, cv, scorer, multi, fast, scheme, block_size,
           split=False):
    """Null statistics of several permutation chunks (drawn from their own seeds) in one call.

    ``Xs`` is a list of feature matrices (one, or one per layer of
    :func:`neuroprobe.comparison.permutation_test_layers`): every one meets the same
    permutations. Returns one ``(observed, null)`` per entry of ``Xs``.
    """
    n = _num_samples(Xs[0])
    permutations = np.concatenate([
        draw_permutations(n, size, groups=groups, seed=seed, scheme=scheme, block_size=block_size)
        for size, seed in zip(sizes, seeds)
    ])
    out = []
    for X in Xs:
        if fast:
            extra = {"split": True} if split else {}
            observed, null = estimator._permutation_scores(X, Y, permutations, cv=cv,
                                                           groups=groups, **extra)
            out.append((np.atleast_1d(np.asarray(observed, np.float64)),
                        np.asarray(null, np.float64)))
            continue
        # the refits on permuted rows meet the same constant targets as the observed fit, which
        # warns about them once: their warnings would only repeat it for every fold and
        # permutation
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ZeroVarianceWarning)
            out.append((None, _generic_null(estimator, X, Y, permutations, cv, groups, scorer,
                                            multi)))
    return out


def _takes_split(estimator):
    """Whether ``estimator._permutation_scores`` computes split statistics (``split=``)."""
    method = getattr(estimator, "_permutation_scores", None)
    return method is not None and "split" in inspect.signature(method).parameters


def _grouped(cv):
    """Whether ``cv`` is a group splitter (LeaveOneGroupOut, GroupKFold, ...)."""
    return cv is not None and "Group" in type(cv).__name__


class PermutationTest(MetaEstimatorMixin, BaseEstimator):
    """Permutation test of an estimator's score, per target and family-wise.

    ``fit(X, Y, groups=None)`` computes the observed statistic and its null distribution over
    ``n_permutations`` permutations of the rows of ``Y`` (within ``groups`` when given, e.g. runs),
    then one-sided p-values ``(#{null >= observed} + 1) / (n_permutations + 1)`` per target and
    family-wise p-values from the maximum statistic across targets (voxels, or layers x ROIs for
    RSA).

    Estimators defining ``_permutation_scores(X, Y, permutations, *, cv=None, groups=None)``
    (:class:`~neuroprobe.estimators.RSAScorer`, :class:`~neuroprobe.estimators.VoxelwiseEncoder`,
    :class:`~neuroprobe.estimators.BandedRidgeEncoder`: the fold decompositions of the
    hyperparameters chosen on the observed data, reused by every permutation) take a fast path;
    any other estimator is refit on each permutation, which for one target is
    :func:`sklearn.model_selection.permutation_test_score` (same statistic: mean over CV folds of
    the held-out score).

    Time series (fMRI scans of movies, stories) are autocorrelated: shuffling their rows breaks
    the autocorrelation and gives an anti-conservative null. ``scheme="circular"`` rotates each
    run (``groups``) by a random shift and ``scheme="block"`` shuffles contiguous blocks of
    ``block_size`` rows within each run; both keep the autocorrelation. With the default
    ``scheme=None`` (an iid shuffle) and grouped CV (``groups`` given, or a group splitter such
    as ``LeaveOneGroupOut``) an :class:`~neuroprobe.exceptions.ExchangeabilityWarning` is
    issued: pass ``scheme="shuffle"`` to state that the samples are exchangeable (one beta per
    stimulus, grouped by run), or a time-series scheme. The fast path takes any scheme
    (the permutations are row indices; the folds and their decompositions are unchanged).

    Permutations are drawn in chunks of fixed size, each from its own seed derived from
    ``random_state``; chunks run through joblib (``n_jobs``, or a dask / ray backend with
    ``joblib.parallel_config``), and the results do not depend on the number of workers.

    Parameters
    ----------
    estimator : estimator
    n_permutations : int, default=1000
    cv : int, cross-validation generator or iterable, optional
        An int is turned into neuroprobe's default splitter
        (:func:`neuroprobe.model_selection.default_cv`: shuffled ``KFold``, ``StratifiedKFold``
        for classifiers, grouped with ``groups``, seeded by ``random_state``), the splitter of
        ``neuroprobe encode --n-permutations``. Generic path: ``None`` is 5 folds; pass
        ``KFold(k)`` for ``permutation_test_score``'s unshuffled folds. Fast path: ``None`` keeps
        the estimator's own ``cv`` (ignored by RSAScorer).
    scoring : str or callable, optional
        Generic path scorer; default: ``estimator.score_targets`` for multi-target ``Y`` when the
        estimator has it, else ``estimator.score``. A callable may return an array (e.g. a
        banded model's per-band split scores ``est.score_targets(X, Y, split=True).ravel()``):
        each entry gets its p-value, family-wise over all of them.
    random_state : int, RandomState or None
        Master seed of the permutations and of the default splitter's shuffling (``None``:
        random permutations, folds seeded by 0).
    n_jobs : int, optional
        Parallel permutation chunks (joblib).
    scheme : {"shuffle", "circular", "block"} or None, default=None
        How rows are permuted (within ``groups``, see
        :func:`neuroprobe.solvers.permutation.draw_permutations`). ``None``: ``"shuffle"``,
        with an :class:`~neuroprobe.exceptions.ExchangeabilityWarning` under grouped CV.
    block_size : int, optional
        Rows per block of ``scheme="block"`` (required there; e.g. 10-20 scans, longer than the
        autocorrelation of the data).
    statistic : {"score", "split"}, default="score"
        ``"score"``: the estimator's score (above). ``"split"``: for banded models
        (:class:`~neuroprobe.estimators.BandedRidgeEncoder`), each band's share of the held-out
        explained variance (the product measure of ``score_targets(split=True)`` of the band
        predictions centred on the held-out rows: a band of weight 0 scores 0), one p-value per
        band and target; the family-wise p-values take the maximum over targets within each
        band (one family per band). A BandedRidgeEncoder takes its fast path (the statistic
        of ``cross_val_score_targets``: each outer fold's hyperparameters chosen on its
        training rows of the observed data, then kept for every permutation; see its
        ``_permutation_scores``); another estimator with ``score_targets(X, y, split=True)``
        is refit per permutation and scored with it. Permuting ``y`` breaks its relation to
        every band at once: a band's p-value tests its share against no relation at all, not
        its gain over the other bands (a band correlated with a predictive band can share its
        credit).

    Attributes
    ----------
    score_ : float or ndarray of shape (n_targets,), or (n_bands, n_targets) (``"split"``)
    null_distribution_ : ndarray of shape (n_permutations,) or (n_permutations, n_targets), or
        (n_permutations, n_bands, n_targets) (``"split"``)
    pvalue_ : float or ndarray of shape (n_targets,), or (n_bands, n_targets) (``"split"``)
    pvalue_fwe_ : float or ndarray of shape (n_targets,), or (n_bands, n_targets) (``"split"``)
        Max-statistic family-wise p-values (equal to ``pvalue_`` for one target); with
        ``"split"`` the maximum is over the targets of each band.
    fast_path_ : bool
        Whether the estimator's ``_permutation_scores`` was used.
    n_targets_ : int
    n_features_in_ : int
        Number of columns of ``X`` (array inputs).
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "n_permutations": [Interval(Integral, 1, None, closed="left")],
        "cv": ["cv_object", None],
        "scoring": [str, callable, None],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "scheme": [StrOptions(set(SCHEMES)), None],
        "block_size": [Interval(Integral, 1, None, closed="left"), None],
        "statistic": [StrOptions({"score", "split"})],
    }

    def __init__(self, estimator, n_permutations=1000, cv=None, scoring=None, random_state=None,
                 n_jobs=None, scheme=None, block_size=None, statistic="score"):
        self.estimator = estimator
        self.n_permutations = n_permutations
        self.cv = cv
        self.scoring = scoring
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.scheme = scheme
        self.block_size = block_size
        self.statistic = statistic

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.target_tags.required = inner.target_tags.required
        tags.target_tags.multi_output = inner.target_tags.multi_output
        return tags

    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, groups=None, *, Y=None):
        """Run the test.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        y : array of shape (n_samples,) or (n_samples, n_targets), optional
            (optional only for an RSAScorer with ``target_rdm``). Never modified.
        groups : array of shape (n_samples,), optional
            Permute only within groups (runs: each run shuffled, shifted or block-permuted on
            its own, as ``scheme`` says); also passed to the CV splitter.
        Y : deprecated
            Former name of ``y`` (a FutureWarning; removed in the next release).

        Returns
        -------
        self
        """
        from neuroprobe._utils import renamed_y

        Y = renamed_y(y, Y, "PermutationTest.fit")
        if len(getattr(X, "shape", ())) == 2:  # arrays (a StimulusSet or paths pass as they are)
            _check_n_features(self, X, reset=True)
            _check_feature_names(self, X, reset=True)
        (observed, null), fast = self._run([X], Y, groups)
        self._set_results(observed[0], null[0], fast)
        return self

    def _run(self, Xs, Y, groups):
        """Observed statistics and nulls of every feature matrix in ``Xs``, one set of
        permutations for all (the same permutation of ``Y`` meets every ``X``).

        Returns ``((observed_list, null_list), fast)``.
        """
        n = _num_samples(Xs[0])
        for i, X in enumerate(Xs[1:], 1):
            check_n_stimuli(n, _num_samples(X), "feature set 0", f"feature set {i}")
        if Y is not None:
            check_n_stimuli(n, _num_samples(Y))
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (n,):
                raise ValueError(f"groups must have one label per sample ({n}); got {groups.shape}")
        if self.scheme == "block" and self.block_size is None:
            raise ValueError("PermutationTest(scheme='block') needs block_size= (rows per block)")
        split = self.statistic == "split"
        fast = hasattr(self.estimator, "_permutation_scores") and (
            not split or _takes_split(self.estimator))
        if split:
            self._check_split()
        estimator = clone(self.estimator)
        multi = Y is not None and np.ndim(Y) == 2 and np.shape(Y)[1] > 1
        scorer = None
        cv = self._splitter(estimator, Y, groups, fast)
        self._check_scheme(estimator, cv, groups)
        if not fast:
            if Y is None:
                raise ValueError(
                    f"{type(estimator).__name__} requires y to be passed, but the target y is None"
                )
            Xs = [check_array(X, accept_sparse=["csr", "csc"], dtype=None, input_name="X")
                  for X in Xs]
            if not isinstance(Y, np.ndarray) and hasattr(Y, "shape"):
                # an h5py.Dataset: the generic path refits on permuted rows (fancy indexing),
                # which h5py cannot serve, so read it once (only the fast paths stream)
                Y = np.asarray(Y)
            cv = check_cv(cv, Y, classifier=is_classifier(estimator))
            if split:
                scorer = _split_scorer
            elif self.scoring is not None:
                scorer = check_scoring(estimator, scoring=self.scoring)
        scheme = self.scheme or "shuffle"
        results = run_chunks(_chunk, self.n_permutations, self.random_state, self.n_jobs,
                             (estimator, Xs, Y, groups, cv, scorer, multi, fast, scheme,
                              self.block_size, split))
        chunks = results
        nulls = [np.concatenate([task[i][1] for task in chunks], axis=0) for i in range(len(Xs))]
        if fast:
            observed = [chunks[0][i][0] for i in range(len(Xs))]
        else:
            observed = [np.atleast_1d(_cv_statistic(estimator, X, Y, cv, groups, scorer, multi))
                        for X in Xs]
        return (observed, nulls), fast

    def _check_split(self):
        """``statistic="split"`` needs split scores and excludes ``scoring``."""
        if self.scoring is not None:
            raise ValueError("PermutationTest: statistic='split' scores each band's share of "
                             f"the R^2; scoring={self.scoring!r} cannot be given with it")
        est = self.estimator
        if _takes_split(est):
            return
        score_targets = getattr(est, "score_targets", None)
        if score_targets is None or "split" not in inspect.signature(score_targets).parameters:
            raise ValueError(
                "PermutationTest(statistic='split') needs a banded model (an estimator whose "
                f"score_targets takes split=True, e.g. BandedRidgeEncoder); got "
                f"{type(est).__name__}")

    def _check_scheme(self, estimator, cv, groups):
        """Warn about an iid shuffle (``scheme=None``) under grouped CV (time series)."""
        if self.scheme is not None:
            return
        inner = estimator.get_params(deep=False).get("cv") if hasattr(estimator, "get_params") \
            else None
        if groups is not None or _grouped(cv) or _grouped(inner):
            warnings.warn(
                "PermutationTest shuffles rows independently (scheme=None) under grouped "
                "cross-validation: if the samples are a time series (fMRI scans, runs as groups) "
                "the shuffle breaks their autocorrelation and the p-values are too small. Pass "
                "scheme='circular' or scheme='block' (with block_size=) for time series, or "
                "scheme='shuffle' if the samples are exchangeable (e.g. one beta per stimulus).",
                ExchangeabilityWarning,
                stacklevel=5,
            )

    def _splitter(self, estimator, Y, groups, fast):
        """``self.cv`` with an int (or, generic path, ``None``) made the default splitter."""
        from neuroprobe._cv import default_cv

        if self.cv is None and fast:
            return None  # the estimator's own cv
        one_target = Y is not None and (np.ndim(Y) == 1 or np.shape(Y)[1] == 1)
        classifier = is_classifier(estimator) and one_target
        return default_cv(self.cv, None if not classifier else np.ravel(Y), groups,
                          self.random_state, classifier=classifier)

    def _set_results(self, observed, null, fast):
        if self.statistic == "split":  # (n_bands, n_targets): one family per band
            observed = np.asarray(observed, dtype=np.float64)
            observed = observed.reshape(observed.shape[0], -1)
            null = np.asarray(null, dtype=np.float64).reshape((null.shape[0],) + observed.shape)
            self.n_targets_ = observed.shape[1]
            self.fast_path_ = bool(fast)
            self.score_, self.null_distribution_ = observed, null
            self.pvalue_ = pvalues(observed, null)
            self.pvalue_fwe_ = np.stack([fwe_pvalues(observed[b], null[:, b])
                                         for b in range(observed.shape[0])])
            return
        observed = np.asarray(observed, dtype=np.float64).ravel()
        null = np.asarray(null, dtype=np.float64).reshape(null.shape[0], -1)
        p = pvalues(observed, null)
        p_fwe = fwe_pvalues(observed, null)
        self.n_targets_ = observed.size
        self.fast_path_ = bool(fast)
        if observed.size == 1:
            self.score_ = float(observed[0])
            self.null_distribution_ = null[:, 0]
            self.pvalue_ = float(p[0])
            self.pvalue_fwe_ = float(p_fwe[0])
        else:
            self.score_ = observed
            self.null_distribution_ = null
            self.pvalue_ = p
            self.pvalue_fwe_ = p_fwe

    def _null_from_permutations(self, X, Y, permutations, groups=None):
        """Null statistics for explicit ``permutations`` (n_permutations, n_samples).

        Same computation as ``fit``'s, for tests and for users bringing their own permutations.
        """
        estimator = clone(self.estimator)
        split = self.statistic == "split"
        if split:
            self._check_split()
        if hasattr(estimator, "_permutation_scores") and (not split or _takes_split(estimator)):
            cv = self._splitter(estimator, Y, groups, True)
            extra = {"split": True} if split else {}
            return estimator._permutation_scores(X, Y, permutations, cv=cv, groups=groups,
                                                 **extra)[1]
        multi = np.ndim(Y) == 2 and np.shape(Y)[1] > 1
        cv = check_cv(self._splitter(estimator, Y, groups, False), Y,
                      classifier=is_classifier(estimator))
        scorer = check_scoring(estimator, scoring=self.scoring) if self.scoring else None
        if split:
            scorer = _split_scorer
        return _generic_null(estimator, X, Y, permutations, cv, groups, scorer, multi)
