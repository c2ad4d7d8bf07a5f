"""RSAScorer: an estimator whose score is the similarity of a model RDM with a brain RDM."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, validate_data

from neuroprobe._utils import renamed_y
from neuroprobe._validation import StrOptions, check_params, fit_context
from neuroprobe.io.rdm import RDMData
from neuroprobe.rsa import _ALIASES, check_method, compute_rdm, to_condensed
from neuroprobe.solvers.rdm import COMPARE_METHODS, n_from_pairs


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


def _resolve_y(y, kwargs, method):
    """``y``, or ``Y=`` (deprecated keyword, :func:`neuroprobe._utils.renamed_y`)."""
    unknown = set(kwargs) - {"Y"}
    if unknown:
        raise TypeError(f"RSAScorer.{method}() got an unexpected keyword argument "
                        f"{sorted(unknown)[0]!r}")
    return renamed_y(y, kwargs.get("Y"), f"RSAScorer.{method}", stacklevel=4)


class RSAScorer(BaseEstimator):
    """Representational similarity between model features ``X`` and brain responses ``y``.

    ``score(X, y)`` is the comparison (``comparison``) of the RDM of ``X`` with the RDM of ``y``
    (or with ``target_rdm``), so an RSAScorer can end a :class:`~sklearn.pipeline.Pipeline` and
    :class:`~sklearn.model_selection.GridSearchCV` can pick the layer whose RDM best matches the
    brain's. It implements the fast permutation protocol used by
    :class:`neuroprobe.estimators.PermutationTest` (stimulus-label permutations, vectorised).

    With a fixed ``target_rdm`` (e.g. a published RDM of all stimuli), ``y`` names the stimuli
    of the rows of ``X``: their IDs (matched with ``stim_ids``) or their row indices in
    ``target_rdm``. The scorer then compares the RDM of ``X`` with the rows and columns of
    ``target_rdm`` for these stimuli, so cross-validation over stimuli works::

        search = GridSearchCV(Pipeline([("dnn", extractor),
                                        ("rsa", RSAScorer(target_rdm=it_rdm))]),
                              {"dnn__layers": [["conv1"], ["fc2"]]}, cv=KFold(4, shuffle=True))
        search.fit(stimuli, y=np.arange(len(stimuli)))   # or y=stimuli.ids with stim_ids=

    Parameters
    ----------
    metric : str, default="correlation"
        Dissimilarity of the model RDM (see :func:`neuroprobe.rsa.compute_rdm`).
    comparison : str, default="spearman"
        RDM comparison (see :func:`neuroprobe.rsa.compare_rdms`).
    target_rdm : array of shape (m,), (n, n), (k, m) or (k, n, n), or RDMData, optional
        Fixed brain RDM(s) of ``n`` stimuli; then ``y`` is the stimulus IDs / indices of the
        rows of ``X`` (or ``None`` when ``X`` holds all ``n`` stimuli in the RDM's order). An
        RDMData (:func:`neuroprobe.io.rdm.load_rdms`) brings its stored stimulus IDs.
    stim_ids : sequence of str, optional
        Stimulus IDs of the rows of ``target_rdm``; needed when ``y`` holds IDs rather than
        integer row indices.
    target_metric : str, optional
        Dissimilarity of the brain RDM computed from ``y`` (default: ``metric``; for a single
        target column, where correlation and cosine distances are undefined, ``"euclidean"``).
    feature_groups : dict or list of column indexers, optional
        One model RDM per group of columns of ``X`` (e.g. one per layer, with the slices of
        ``DNNFeatureExtractor.feature_slices_``); default: all columns, one RDM.
    target_groups : dict or list of column indexers, optional
        One brain RDM per group of columns of ``y`` (e.g. ROIs).
    backend : {"numpy", "torch"}, default="numpy"
    device : str, default="cpu"

    Attributes
    ----------
    model_rdms_ : ndarray of shape (n_models, n_pairs)
        Model RDMs of the ``X`` given to ``fit`` (condensed, pdist order).
    target_rdms_ : ndarray of shape (n_targets, n_pairs)
        Brain RDMs of the stimuli of the fit.
    model_rdm_, target_rdm_ : ndarray of shape (n_pairs,)
        The first of each (convenience for the single-RDM case).
    model_names_, target_names_ : list of str
    n_stimuli_ : int
    n_features_in_ : int

    Notes
    -----
    With several model or target RDMs, ``score`` returns the mean over all (model, target)
    pairs and ``score_targets`` each of them, model-major (``i * n_targets + t``).
    The keyword ``Y=`` of ``fit`` / ``score`` / ``score_matrix`` / ``score_targets`` is
    deprecated (``y=``); it still works for one release, with a ``FutureWarning``.
    """

    _parameter_constraints = {
        "metric": [str, callable],
        "comparison": [StrOptions(set(COMPARE_METHODS) | set(_ALIASES))],
        "target_rdm": ["array-like", RDMData, None],
        "target_metric": [str, callable, None],
        "feature_groups": [dict, list, tuple, None],
        "target_groups": [dict, list, tuple, None],
        "backend": [StrOptions({"numpy", "torch"})],
        "device": "no_validation",  # str or torch.device: checked by the backend (DeviceError)
        "stim_ids": ["array-like", None],
    }

    def __init__(self, metric="correlation", comparison="spearman", target_rdm=None,
                 target_metric=None, feature_groups=None, target_groups=None,
                 backend="numpy", device="cpu", stim_ids=None):
        self.metric = metric
        self.comparison = comparison
        self.target_rdm = target_rdm
        self.target_metric = target_metric
        self.feature_groups = feature_groups
        self.target_groups = target_groups
        self.backend = backend
        self.device = device
        self.stim_ids = stim_ids

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

    def _fixed_target(self):
        """(condensed stack, stim_ids or None) of ``target_rdm``."""
        rdm, ids = self.target_rdm, self.stim_ids
        if hasattr(rdm, "rdms") and hasattr(rdm, "stim_ids"):  # RDMData
            from neuroprobe.rsa import check_same_ids

            rdm, ids = rdm.rdms, check_same_ids(ids, rdm.stim_ids, "target_rdm (stim_ids)")
        T = np.atleast_2d(to_condensed(rdm, "target_rdm"))
        n = n_from_pairs(T.shape[1])
        if ids is not None and len(ids) != n:
            raise ValueError(f"stim_ids has {len(ids)} entries but target_rdm has {n} stimuli")
        return T, ids

    def _target_rows(self, y, n, n_target, ids):
        """Row indices of ``target_rdm`` for the stimuli ``y`` of the ``n`` rows of ``X``."""
        if y is None:
            if n_target != n:
                raise ValueError(
                    f"target_rdm has {n_target} stimuli but X has {n} rows. When X holds a "
                    "subset of the stimuli (e.g. a cross-validation fold), pass their stimulus "
                    "IDs or row indices of target_rdm as y, e.g. "
                    "GridSearchCV(...).fit(stimuli, y=np.arange(len(stimuli))), or "
                    "y=stimuli.ids with RSAScorer(stim_ids=<IDs of the target_rdm rows>)"
                )
            return None
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(
                f"with target_rdm, y must be the stimulus IDs or row indices of the rows of X "
                f"(1-D, {n} entries); got shape {y.shape} (brain responses go in y without "
                "target_rdm)"
            )
        if y.shape[0] != n:
            raise ValueError(f"y has {y.shape[0]} stimulus IDs but X has {n} rows")
        from neuroprobe.io.ids import align_ids

        if ids is not None:
            return align_ids(y, ids, what="target_rdm (stim_ids)", reference="y", subset=True)
        if not np.issubdtype(y.dtype, np.integer):
            if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
                y = y.astype(np.intp)
            else:
                raise ValueError(
                    "y holds stimulus IDs but RSAScorer has no stim_ids to find them in "
                    "target_rdm: give stim_ids=<IDs of the target_rdm rows>, or pass integer "
                    "row indices of target_rdm as y"
                )
        if y.min() < 0 or y.max() >= n_target:
            raise ValueError(f"y: row indices must be in [0, {n_target}) (the stimuli of "
                             f"target_rdm); got {int(y.min())}..{int(y.max())}")
        return align_ids(y, np.arange(n_target), what="target_rdm", reference="y",
                         subset=True)

    def _target_rdms(self, y, n):
        if self.target_rdm is not None:
            from neuroprobe.rsa import select_rdms

            T, ids = self._fixed_target()
            rows = self._target_rows(y, n, n_from_pairs(T.shape[1]), ids)
            if rows is not None:
                T = select_rdms(T, rows)
            names = [f"target{i}" for i in range(T.shape[0])] if T.shape[0] > 1 else ["target"]
            return names, T
        if y is None:
            raise ValueError(
                "RSAScorer needs y (brain responses, n_stimuli x n_voxels) or target_rdm"
            )
        Y = check_array(y, ensure_2d=False, dtype=(np.float64, np.float32), input_name="y")
        if Y.ndim == 1:
            Y = Y[:, None]
        if Y.shape[0] != n:
            raise ValueError(f"y has {Y.shape[0]} rows but X has {n}; one row per stimulus")
        names, groups = _groups(self.target_groups, Y.shape[1], "target_group")
        metric = self.target_metric or self.metric
        parts = [Y[:, g] for g in groups]
        if self.target_metric is None and metric in ("correlation", "cosine") and any(
                p.shape[1] == 1 for p in parts):
            metric = "euclidean"  # one value per stimulus: |difference| (r / cosine undefined)
        T = compute_rdm(parts, metric, backend=self.backend, device=self.device)
        return (names or ["y"]), T

    # -- estimator API ------------------------------------------------------------------------
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, **kwargs):
        """Compute and store the model RDM(s) of ``X`` and the brain RDM(s) of ``y``.

        Parameters
        ----------
        X : array of shape (n_stimuli, n_features)
        y : array of shape (n_stimuli, n_voxels), or (n_stimuli,) stimulus IDs / indices
            Brain responses; with ``target_rdm``, the IDs (or row indices) of the stimuli of
            ``X`` in ``target_rdm``, or None when ``X`` holds all its stimuli in order.

        Returns
        -------
        self
        """
        y = _resolve_y(y, kwargs, "fit")
        X = validate_data(self, X, dtype=(np.float64, np.float32), ensure_min_samples=3)
        if X.shape[1] == 1 and self.metric == "correlation":
            raise ValueError(
                "X has 1 feature(s): the correlation distance between single values is "
                "undefined; use metric='euclidean' for one feature per stimulus"
            )
        self.model_names_, self.model_rdms_ = self._model_rdms(X)
        self.target_names_, self.target_rdms_ = self._target_rdms(y, X.shape[0])
        self.model_rdm_, self.target_rdm_ = self.model_rdms_[0], self.target_rdms_[0]
        self.n_stimuli_ = X.shape[0]
        return self

    def score_matrix(self, X, y=None, **kwargs):
        """Comparison of each model RDM of ``X`` with each brain RDM: (n_models, n_targets).

        ``y`` gives the brain RDMs of these stimuli (brain responses, or with ``target_rdm`` the
        stimulus IDs / indices); without it the fitted ``target_rdms_`` are used (then ``X`` must
        hold the stimuli of the fit, in the same order).
        """
        from neuroprobe.solvers.rdm import compare

        y = _resolve_y(y, kwargs, "score_matrix")
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        _, models = self._model_rdms(X)
        if y is None and n_from_pairs(self.target_rdms_.shape[1]) == X.shape[0]:
            targets = self.target_rdms_
        elif y is None and self.target_rdm is None:
            raise ValueError(
                f"X has {X.shape[0]} stimuli but the fitted target RDM has "
                f"{self.n_stimuli_}; pass y for these stimuli"
            )
        else:
            _, targets = self._target_rdms(y, X.shape[0])
        return compare(models, targets, check_method(self.comparison),
                       backend=self.backend, device=self.device)

    def score_targets(self, X, y=None, **kwargs):
        """Comparison of every (model RDM, brain RDM) pair, model-major: (n_models * n_targets,)."""
        y = _resolve_y(y, kwargs, "score_targets")
        return self.score_matrix(X, y).ravel()

    def score(self, X, y=None, **kwargs):
        """RDM similarity of ``X`` with ``y`` (or the fitted target RDM): one float.

        With several RDMs, the mean over all (model, target) pairs.
        """
        y = _resolve_y(y, kwargs, "score")
        return float(np.mean(self.score_matrix(X, y)))

    def _permutation_scores(self, X, Y, permutations, *, cv=None, groups=None):
        """Observed comparisons and their null under stimulus-label permutations.

        Permutation ``k`` uses ``Y[permutations[k]]``: the brain RDM with its rows and columns
        permuted together (also for a fixed ``target_rdm``, whose rows are first those of the
        stimulus IDs / indices ``Y`` when given). ``cv`` and ``groups`` are ignored
        (groups only shape the permutations, drawn by the caller).

        Returns
        -------
        observed : ndarray of shape (n_models * n_targets,)
        null : ndarray of shape (n_permutations, n_models * n_targets)
        """
        from neuroprobe.solvers.permutation import rsa_null

        check_params(self)  # PermutationTest calls this without fit
        method = check_method(self.comparison)
        X = check_array(X, dtype=(np.float64, np.float32), input_name="X")
        _, models = self._model_rdms(X)
        _, targets = self._target_rdms(Y, X.shape[0])
        return rsa_null(models, targets, permutations, method,
                        backend=self.backend, device=self.device)
