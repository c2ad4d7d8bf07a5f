"""WeightedRSA: an RDM model fitted as a non-negative combination of component RDMs."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from neuroprobe._validation import StrOptions, fit_context
from neuroprobe.io.rdm import RDMData
from neuroprobe.rsa import check_method
from neuroprobe.solvers import rsa_fit as _fit
from neuroprobe.solvers.rdm import compare, n_from_pairs


class WeightedRSA(BaseEstimator):
    """Non-negative weighted combination of component RDMs (rsatoolbox ``ModelWeighted``).

    The columns of ``X`` are split into groups (``feature_groups``, e.g. one per layer of a
    network, from ``DNNFeatureExtractor.feature_slices_``); each group gives one component
    RDM. ``fit`` finds the non-negative weights whose combination best matches the brain RDMs
    (rsatoolbox's ``fit_regress_nn`` with ``fitter="nnls"``, ``fit_optimize_positive`` with
    ``fitter="optimize"``; see :mod:`neuroprobe.solvers.rsa_fit`); ``score`` compares the
    weighted RDM of new stimuli with their brain RDMs, so ``cross_val_score`` over stimuli
    evaluates the fitted model on held-out stimuli::

        pipe = Pipeline([("dnn", extractor),
                         ("rsa", WeightedRSA(target_rdm=subject_rdms,
                                             feature_groups=extractor_slices))])
        cross_val_score(pipe, stimuli, np.arange(len(stimuli)), cv=KFold(4, shuffle=True))

    Cross-validation over subjects and stimuli together: :func:`neuroprobe.rsa_inference.\
crossval_weighted_rsa`.

    Parameters
    ----------
    metric : str, default="correlation"
        Dissimilarity of the component RDMs (see :func:`neuroprobe.rsa.compute_rdm`).
    comparison : {"pearson", "cosine", "corr_cov", "cosine_cov", "spearman", "rho_a"}, \
default="pearson"
        RDM comparison optimised and scored (rank methods need ``fitter="optimize"``).
    fitter : {"nnls", "optimize"}, default="nnls"
    target_rdm : array of shape (m,), (k, m), (n, n) or (k, n, n), or RDMData, optional
        Fixed brain RDMs (e.g. one per subject); then ``y`` holds the stimulus IDs / row
        indices of the rows of ``X`` (see :class:`~neuroprobe.estimators.RSAScorer`).
    stim_ids : sequence of str, optional
        Stimulus IDs of the rows of ``target_rdm``.
    target_metric : str, optional
        Dissimilarity of brain RDMs computed from ``y`` (default: ``metric``).
    feature_groups : dict or list of column indexers, optional
        One component RDM per group of columns of ``X``; default: one component.
    target_groups : dict or list of column indexers, optional
        One brain RDM per group of columns of ``y`` (e.g. subjects or ROIs).
    random_state : int, RandomState or None
        Random start of the search for rank comparisons.

    Attributes
    ----------
    coef_ : ndarray of shape (n_components,)
        Non-negative weights, unit norm.
    components_ : ndarray of shape (n_components, n_pairs)
        Component RDMs of the fit.
    component_names_ : list of str
    target_rdms_ : ndarray of shape (n_targets, n_pairs)
    rdm_ : ndarray of shape (n_pairs,)
        The fitted RDM, ``coef_ @ components_``.
    n_stimuli_, n_features_in_ : int
    """

    _parameter_constraints = {
        "metric": [str, callable],
        "comparison": [StrOptions(set(_fit.OPTIMIZE_METHODS) | {"corr"})],
        "fitter": [StrOptions(set(_fit.FITTERS))],
        "target_rdm": ["array-like", RDMData, None],
        "stim_ids": ["array-like", None],
        "target_metric": [str, callable, None],
        "feature_groups": [dict, list, tuple, None],
        "target_groups": [dict, list, tuple, None],
        "random_state": ["random_state"],
    }

    def __init__(self, metric="correlation", comparison="pearson", fitter="nnls",
                 target_rdm=None, stim_ids=None, target_metric=None, feature_groups=None,
                 target_groups=None, random_state=None):
        self.metric = metric
        self.comparison = comparison
        self.fitter = fitter
        self.target_rdm = target_rdm
        self.stim_ids = stim_ids
        self.target_metric = target_metric
        self.feature_groups = feature_groups
        self.target_groups = target_groups
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.target_tags.multi_output = True
        tags.input_tags.allow_nan = False
        return tags

    def _rdms(self):
        """The RDM builder shared with RSAScorer (same groups, targets and ID rules)."""
        from neuroprobe.estimators.rsa import RSAScorer

        return RSAScorer(metric=self.metric, target_rdm=self.target_rdm,
                         target_metric=self.target_metric, feature_groups=self.feature_groups,
                         target_groups=self.target_groups, stim_ids=self.stim_ids)

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the non-negative weights of the component RDMs of ``X`` to the brain RDMs.

        Parameters
        ----------
        X : array of shape (n_stimuli, n_features)
        y : array of shape (n_stimuli, n_voxels), or (n_stimuli,) stimulus IDs / indices
            Brain responses; with ``target_rdm``, the stimuli of the rows of ``X``.

        Returns
        -------
        self
        """
        method = check_method(self.comparison)
        allowed = _fit.NNLS_METHODS if self.fitter == "nnls" else _fit.OPTIMIZE_METHODS
        if method not in allowed:
            raise ValueError(f"comparison={self.comparison!r} cannot be fitted with "
                             f"fitter={self.fitter!r}; use one of {list(allowed)}")
        X = validate_data(self, X, dtype=(np.float64, np.float32), ensure_min_samples=3)
        builder = self._rdms()
        if X.shape[1] == 1 and self.metric == "correlation":
            raise ValueError("X has 1 feature(s): the correlation distance between single "
                             "values is undefined; use metric='euclidean'")
        self.component_names_, self.components_ = builder._model_rdms(X)
        _, self.target_rdms_ = builder._target_rdms(y, X.shape[0])
        self.coef_ = _fit.fit_weights(self.components_, self.target_rdms_, method,
                                      self.fitter,
                                      random_state=check_random_state(self.random_state))
        self.rdm_ = _fit.predict(self.coef_, self.components_)
        self.n_stimuli_ = X.shape[0]
        return self

    def predict_rdm(self, X):
        """The weighted RDM of the stimuli of ``X``: ``coef_ @ component RDMs`` (condensed)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        _, comps = self._rdms()._model_rdms(X)
        return _fit.predict(self.coef_, comps)

    def score_targets(self, X, y=None):
        """Comparison of the weighted RDM of ``X`` with each brain RDM: (n_targets,)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        pred = self.predict_rdm(X)
        if y is None and n_from_pairs(self.target_rdms_.shape[1]) == X.shape[0]:
            targets = self.target_rdms_
        elif y is None and self.target_rdm is None:
            raise ValueError(f"X has {X.shape[0]} stimuli but the fit had {self.n_stimuli_}; "
                             "pass y for these stimuli")
        else:
            _, targets = self._rdms()._target_rdms(y, X.shape[0])
        return compare(pred, targets, check_method(self.comparison)).ravel()

    def score(self, X, y=None):
        """Mean comparison of the weighted RDM of ``X`` with the brain RDMs: one float."""
        return float(np.mean(self.score_targets(X, y)))

    def get_feature_names_out(self, input_features=None):
        """Names of the components (one weight each)."""
        check_is_fitted(self)
        return np.asarray(self.component_names_, dtype=object)
