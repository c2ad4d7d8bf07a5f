"""PCAReducer: principal components of DNN activations, for the whole output or per layer.

Leakage note: DNNBrain's tutorial fitted PCA on the activations of *all* stimuli before
cross-validating the encoding model, so the components saw the test stimuli. Put
:class:`PCAReducer` inside a :class:`~sklearn.pipeline.Pipeline` (``make_pipeline(PCAReducer(),
VoxelwiseEncoder())``) and pass the pipeline to the cross-validation: PCA is then fitted on the
training folds only.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.decomposition import PCA, IncrementalPCA
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from neuroprobe._validation import Integral, Interval, Real, StrOptions, fit_context

__all__ = ["PCAReducer", "layer_of"]

_SOLVERS = ("auto", "full", "randomized", "incremental", "covariance_eigh", "arpack")


def layer_of(feature_name):
    """The layer of an extractor feature name: everything before the first ``":"``."""
    return str(feature_name).split(":", 1)[0]


class PCAReducer(TransformerMixin, BaseEstimator):
    """Reduce features to principal components (sklearn ``PCA`` / ``IncrementalPCA`` inside).

    Fit it inside a Pipeline so that the components are learned on training folds only
    (DNNBrain's tutorial fitted PCA on all stimuli, which leaks test information into the
    features).

    Parameters
    ----------
    n_components : int, float in (0, 1) or None, default=None
        Components kept (per layer with ``per_layer=True``); a float keeps the fraction of
        variance; ``None`` keeps ``min(n_samples, n_features)``. An int larger than a layer's
        rank is clipped to it.
    standardize : bool, default=False
        z-score every feature (``StandardScaler``) before PCA.
    whiten : bool, default=False
    svd_solver : {"auto", "full", "randomized", "covariance_eigh", "arpack", "incremental"}
        ``"incremental"`` uses ``IncrementalPCA`` with ``batch_size`` (activations that do not
        fit in memory, e.g. an ``h5py.Dataset``, are read in batches of rows).
    batch_size : int or None, default=None
        Rows per batch of ``"incremental"``.
    per_layer : bool, default=False
        Reduce each layer separately. Layers come from the feature names
        ``"<layer>:..."`` of :class:`~neuroprobe.DNNFeatureExtractor` output (a pandas DataFrame,
        e.g. after ``extractor.set_output(transform="pandas")``).
    random_state : int, RandomState or None, default=None
        For the randomized solver.

    Attributes
    ----------
    layers_ : list of str
        Layers in output order (``[""]`` when not ``per_layer``).
    pcas_ : list of fitted PCA / IncrementalPCA (one per layer)
    scalers_ : list of fitted StandardScaler or None
    layer_columns_ : list of int arrays, input columns of each layer
    n_components_ : list of int, components kept per layer
    explained_variance_ratio_ : ndarray, concatenated over layers
    n_features_in_, feature_names_in_
    """

    _parameter_constraints = {
        "n_components": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="neither"),
            None,
        ],
        "standardize": ["boolean"],
        "whiten": ["boolean"],
        "svd_solver": [StrOptions(set(_SOLVERS))],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "per_layer": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_components=None,
        standardize=False,
        whiten=False,
        svd_solver="auto",
        batch_size=None,
        per_layer=False,
        random_state=None,
    ):
        self.n_components = n_components
        self.standardize = standardize
        self.whiten = whiten
        self.svd_solver = svd_solver
        self.batch_size = batch_size
        self.per_layer = per_layer
        self.random_state = random_state

    def _groups(self):
        n = self.n_features_in_
        if not self.per_layer:
            return [""], [np.arange(n)]
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            raise ValueError(
                "per_layer=True needs feature names '<layer>:...' to find the layers: pass a "
                "pandas DataFrame (e.g. DNNFeatureExtractor(...).set_output(transform='pandas'))"
            )
        layers = list(dict.fromkeys(layer_of(n) for n in names))
        owner = np.array([layer_of(n) for n in names])
        return layers, [np.flatnonzero(owner == layer) for layer in layers]

    def _make_pca(self, n_samples, n_features):
        k = self.n_components
        limit = min(n_samples, n_features)
        if k is None:
            k = limit
        elif isinstance(k, Integral):
            k = min(int(k), limit)
        if self.svd_solver == "incremental":
            return IncrementalPCA(n_components=k, whiten=self.whiten, batch_size=self.batch_size)
        solver = self.svd_solver
        if solver == "full" or (isinstance(k, float)):
            solver = "full" if solver in ("auto", "full") else solver
        return PCA(
            n_components=k, whiten=self.whiten, svd_solver=solver, random_state=self.random_state
        )

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit one PCA (per layer with ``per_layer=True``) on X.

        Parameters
        ----------
        X : array-like or DataFrame (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        if self.svd_solver == "incremental" and not isinstance(
            self.n_components, (Integral, type(None))
        ):
            raise ValueError(
                "svd_solver='incremental' needs an int n_components (or None); got "
                f"n_components={self.n_components!r}"
            )
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        self.layers_, self.layer_columns_ = self._groups()
        self.pcas_, self.scalers_, self.n_components_ = [], [], []
        for cols in self.layer_columns_:
            block = X[:, cols]
            scaler = None
            if self.standardize:
                scaler = StandardScaler().fit(block)
                block = scaler.transform(block)
            pca = clone(self._make_pca(*block.shape)).fit(block)
            self.scalers_.append(scaler)
            self.pcas_.append(pca)
            self.n_components_.append(int(pca.n_components_))
        self.explained_variance_ratio_ = np.concatenate(
            [pca.explained_variance_ratio_ for pca in self.pcas_]
        )
        return self

    def transform(self, X):
        """Project X on the components; layers concatenated in ``layers_`` order.

        Returns
        -------
        ndarray (n_samples, sum(n_components_))
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        out = []
        for cols, scaler, pca in zip(self.layer_columns_, self.scalers_, self.pcas_):
            block = X[:, cols]
            if scaler is not None:
                block = scaler.transform(block)
            out.append(pca.transform(block))
        return np.hstack(out)

    def get_feature_names_out(self, input_features=None):
        """``pc<i>``, or ``<layer>:pc<i>`` per layer (so layers stay identifiable downstream)."""
        check_is_fitted(self)
        names = []
        for layer, k in zip(self.layers_, self.n_components_):
            prefix = f"{layer}:" if self.per_layer else ""
            names.extend(f"{prefix}pc{i}" for i in range(k))
        return np.asarray(names, dtype=object)
