"""RSAScorer: an estimator whose score is the similarity of a model RDM with a brain RDM."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, validate_data

from neuroprobe.rsa import check_method, compute_rdm, to_condensed
from neuroprobe.solvers.rdm import n_from_pairs


def _groups(groups, n_columns, name):
    """Normalise ``feature_groups`` / ``target_groups`` to (names, list of column indexers)."""
    if groups is None:
        return None, [slice(None)]
    if isinstance(groups, dict):
        names, index = [str(k) for k in groups], list(groups.values())
    else:
        index = list(groups)
        names = [f"{name}{i}" for i in range(len(index))]
    if not index:
        raise ValueError(f"{name}s is empty")
    checked = []
    for key, idx in zip(names, index):
        if isinstance(idx, slice):
            if len(range(*idx.indices(n_columns))) == 0:
                raise ValueError(f"{name}s[{key!r}] selects no column of {n_columns}")
            checked.append(idx)
            continue
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (n_columns,):
                raise ValueError(
                    f"{name}s[{key!r}]: a boolean mask needs {n_columns} entries; got {idx.shape}"
                )
            idx = np.flatnonzero(idx)
        if idx.size == 0 or idx.min() < -n_columns or idx.max() >= n_columns:
            raise ValueError(
                f"{name}s[{key!r}] must select columns among {n_columns}; got {idx.tolist()[:5]}..."
            )
        checked.append(idx)
    return names, checked


class RSAScorer(BaseEstimator):
    """Representational similarity between model features ``X`` and brain responses ``Y``.

    ``score(X, Y)`` is the comparison (``comparison``) of the RDM of ``X`` with the RDM of ``Y``
    (or with ``target_rdm``), so an RSAScorer can end a :class:`~sklearn.pipeline.Pipeline` and
    :class:`~sklearn.model_selection.GridSearchCV` can pick the layer whose RDM best matches the
    brain's. It implements the fast permutation protocol used by
    :class:`neuroprobe.estimators.PermutationTest` (stimulus-label permutations, vectorised).

    Parameters
    ----------
    metric : str, default="correlation"
        Dissimilarity of the model RDM (see :func:`neuroprobe.rsa.compute_rdm`).
    comparison : str, default="spearman"
        RDM comparison (see :func:`neuroprobe.rsa.compare_rdms`).
    target_rdm : array of shape (m,), (n, n), (k, m) or (k, n, n), optional
        Fixed brain RDM(s); when given, ``Y`` is not needed.
    target_metric : str, optional
        Dissimilarity of the brain RDM computed from ``Y`` (default: ``metric``).
    feature_groups : dict or list of column indexers, optional
        One model RDM per group of columns of ``X`` (e.g. one per layer, with the slices of
        ``DNNFeatureExtractor.feature_slices_``); default: all columns, one RDM.
    target_groups : dict or list of column indexers, optional
        One brain RDM per group of columns of ``Y`` (e.g. ROIs).
    backend : {"numpy", "torch"}, default="numpy"
    device : str, default="cpu"

    Attributes
    ----------
    model_rdms_ : ndarray of shape (n_models, n_pairs)
        Model RDMs of the ``X`` given to ``fit`` (condensed, pdist order).
    target_rdms_ : ndarray of shape (n_targets, n_pairs)
        Brain RDMs.
    model_rdm_, target_rdm_ : ndarray of shape (n_pairs,)
        The first of each (convenience for the single-RDM case).
    model_names_, target_names_ : list of str
    n_stimuli_ : int
    n_features_in_ : int

    Notes
    -----
    With several model or target RDMs, ``score`` returns the mean over all (model, target)
    pairs and ``score_targets`` each of them, model-major (``i * n_targets + t``).
    """

    def __init__(self, metric="correlation", comparison="spearman", target_rdm=None,
                 target_metric=None, feature_groups=None, target_groups=None,
                 backend="numpy", device="cpu"):
        self.metric = metric
        self.comparison = comparison
        self.target_rdm = target_rdm
        self.target_metric = target_metric
        self.feature_groups = feature_groups
        self.target_groups = target_groups
        self.backend = backend
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.target_tags.multi_output = True
        tags.input_tags.allow_nan = False
        return tags

    # -- helpers ------------------------------------------------------------------------------
    def _model_rdms(self, X):
        names, groups = _groups(self.feature_groups, X.shape[1], "feature_group")
        rdms = compute_rdm([X[:, g] for g in groups], self.metric,
                           backend=self.backend, device=self.device)
        return (names or ["X"]), rdms

    def _target_rdms(self, Y, n):
        if Y is None:
            if self.target_rdm is None:
                raise ValueError(
                    "RSAScorer needs Y (brain responses, n_stimuli x n_voxels) or target_rdm"
                )
            T = np.atleast_2d(to_condensed(self.target_rdm, "target_rdm"))
            if n_from_pairs(T.shape[1]) != n:
                raise ValueError(
                    f"target_rdm has {n_from_pairs(T.shape[1])} stimuli but X has {n} rows"
                )
            names = [f"target{i}" for i in range(T.shape[0])] if T.shape[0] > 1 else ["target"]
            return names, T
        Y = check_array(Y, ensure_2d=False, dtype=(np.float64, np.float32), input_name="Y")
        if Y.ndim == 1:
            Y = Y[:, None]
        if Y.shape[0] != n:
            raise ValueError(f"Y has {Y.shape[0]} rows but X has {n}; one row per stimulus")
        names, groups = _groups(self.target_groups, Y.shape[1], "target_group")
        metric = self.target_metric or self.metric
        T = compute_rdm([Y[:, g] for g in groups], metric,
                        backend=self.backend, device=self.device)
        return (names or ["Y"]), T

    # -- estimator API ------------------------------------------------------------------------
    def fit(self, X, Y=None):
        """Compute and store the model RDM(s) of ``X`` and the brain RDM(s) of ``Y``.

        Parameters
        ----------
        X : array of shape (n_stimuli, n_features)
        Y : array of shape (n_stimuli, n_voxels), optional
            Brain responses; not needed with ``target_rdm``.

        Returns
        -------
        self
        """
        check_method(self.comparison)
        X = validate_data(self, X, dtype=(np.float64, np.float32), ensure_min_samples=3)
        self.model_names_, self.model_rdms_ = self._model_rdms(X)
        self.target_names_, self.target_rdms_ = self._target_rdms(Y, X.shape[0])
        self.model_rdm_, self.target_rdm_ = self.model_rdms_[0], self.target_rdms_[0]
        self.n_stimuli_ = X.shape[0]
        return self

    def score_matrix(self, X, Y=None):
        """Comparison of each model RDM of ``X`` with each brain RDM: (n_models, n_targets).

        ``Y`` gives the brain RDMs of these stimuli; without it the fitted ``target_rdms_`` are
        used (then ``X`` must hold the stimuli of the fit, in the same order).
        """
        from neuroprobe.solvers.rdm import compare

        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        _, models = self._model_rdms(X)
        if Y is None:
            targets = self.target_rdms_
            if n_from_pairs(targets.shape[1]) != X.shape[0]:
                raise ValueError(
                    f"X has {X.shape[0]} stimuli but the fitted target RDM has "
                    f"{self.n_stimuli_}; pass Y for these stimuli"
                )
        else:
            _, targets = self._target_rdms(Y, X.shape[0])
        return compare(models, targets, check_method(self.comparison),
                       backend=self.backend, device=self.device)

    def score_targets(self, X, Y=None):
        """Comparison of every (model RDM, brain RDM) pair, model-major: (n_models * n_targets,)."""
        return self.score_matrix(X, Y).ravel()

    def score(self, X, Y=None):
        """RDM similarity of ``X`` with ``Y`` (or the fitted target RDM): one float.

        With several RDMs, the mean over all (model, target) pairs.
        """
        return float(np.mean(self.score_matrix(X, Y)))

    def _permutation_scores(self, X, Y, permutations, *, cv=None, groups=None):
        """Observed comparisons and their null under stimulus-label permutations.

        Permutation ``k`` uses ``Y[permutations[k]]``: the brain RDM with its rows and columns
        permuted together (also for a fixed ``target_rdm``). ``cv`` and ``groups`` are ignored
        (groups only shape the permutations, drawn by the caller).

        Returns
        -------
        observed : ndarray of shape (n_models * n_targets,)
        null : ndarray of shape (n_permutations, n_models * n_targets)
        """
        from neuroprobe.solvers.permutation import rsa_null

        method = check_method(self.comparison)
        X = check_array(X, dtype=(np.float64, np.float32), input_name="X")
        _, models = self._model_rdms(X)
        _, targets = self._target_rdms(Y, X.shape[0])
        return rsa_null(models, targets, permutations, method,
                        backend=self.backend, device=self.device)
