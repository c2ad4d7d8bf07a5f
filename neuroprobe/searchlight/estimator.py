"""Searchlight: an RSA or encoding score for every centre, with max-statistic FWE p-values."""

from __future__ import annotations

from contextlib import nullcontext
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import BaseEstimator
from sklearn.model_selection import check_cv
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from neuroprobe._progress import progress
from neuroprobe._utils import memory_budget
from neuroprobe._validation import HasMethods, Interval, StrOptions, fit_context
from neuroprobe.io.rdm import RDMData
from neuroprobe.searchlight import batched as _b
from neuroprobe.searchlight import encoding as _enc
from neuroprobe.searchlight.neighbourhoods import Neighbourhoods
from neuroprobe.searchlight.spaces import line_neighbourhoods, masker_neighbourhoods
from neuroprobe.solvers.rdm import COMPARE_METHODS, DOT_METHODS, n_from_pairs

__all__ = ["Searchlight"]

_COMPARISONS = set(COMPARE_METHODS) | {"corr", "correlation", "tau-a", "kendall", "rho-a"}


def _fwe(observed, null_max):
    """Max-statistic FWE p-values ``(#{max null >= observed} + 1) / (n_permutations + 1)``
    per model column; NaN where ``observed`` is NaN."""
    count = (null_max[:, None, :] >= observed[None]).sum(0)
    p = (count + 1.0) / (null_max.shape[0] + 1.0)
    p[np.isnan(observed)] = np.nan
    return p


def _average(X, conditions):
    labels, inverse = np.unique(conditions, return_inverse=True)
    sums = np.zeros((labels.size, X.shape[1]))
    np.add.at(sums, inverse, X)
    return (sums / np.bincount(inverse)[:, None]).astype(X.dtype, copy=False), labels


def _rsa_task(starts, nb, data, metric, remove_mean, method, PM, PP, n_models, backend, device,
              batch):
    """Observed comparisons of the centres of ``starts`` and the max of their null."""
    from neuroprobe.solvers.backend import get_backend

    be = get_backend(backend, device)
    dtype = (data[0] if isinstance(data, tuple) else data).dtype
    dtype = dtype if be.name == "numpy" and dtype == np.float32 else (
        np.float64 if be.name == "numpy" else np.float32)
    data = _b.column_major(data)
    data = tuple(be.asarray(d, dtype) for d in data) if isinstance(data, tuple) else \
        be.asarray(data, dtype)
    pm = be.asarray(PM, dtype)
    pp = None if PP is None else be.asarray(PP, dtype)
    observed, null_max = [], None
    # small per-batch products: one BLAS thread (threaded BLAS only adds synchronisation, which
    # stalls on a loaded machine); n_jobs parallelises over batches of centres
    limit = threadpool_limits(1, user_api="blas") if be.name == "numpy" else nullcontext()
    with limit:
        for s in progress(starts, desc="searchlight", unit="batch"):
            observed, null_max = _rsa_batch(s, min(s + batch, len(nb)), nb, data, metric,
                                            remove_mean, method, PM, pm, pp, n_models, be,
                                            observed, null_max)
    return np.concatenate(observed), null_max


def _rsa_batch(s, e, nb, data, metric, remove_mean, method, PM, pm, pp, n_models, be,
               observed, null_max):
    """One batch of centres ``s..e``: appends its comparisons, updates the null maximum."""
    from neuroprobe.solvers.rdm import compare

    index, valid, sizes = _b.gather_index(nb, s, e)
    with np.errstate(invalid="ignore", divide="ignore"):
        R = _b.batch_rdms(data, index, valid, sizes, metric, be, remove_mean=remove_mean)
        if method not in DOT_METHODS:  # Kendall: no dot-product form (a loop; slow)
            observed.append(compare(be.to_numpy(R), PM, method))
            return observed, null_max
        P = _b.prepare_rows(R, method, be)
        observed.append(np.asarray(be.to_numpy(P @ pm.T), dtype=np.float64))
        if pp is not None:
            null = be.to_numpy(P @ pp.T).reshape(e - s, -1, n_models)
            m = np.nanmax(np.where(np.isnan(null), -np.inf, null), axis=0)
            null_max = m if null_max is None else np.maximum(null_max, m)
    return observed, null_max


class Searchlight(BaseEstimator):
    """A score for every searchlight: an RDM comparison with model RDMs or an encoding score.

    ``fit(X, y)`` takes brain patterns ``X`` (n_stimuli, n_voxels), e.g. from
    :class:`~neuroprobe.transformers.BrainMasker`, and the model: features ``y`` of the same
    stimuli (or fixed ``model_rdms``). Every centre gets

    - ``analysis="rsa"``: the comparison (``comparison``) of the RDM of its members' patterns
      (``metric``; ``"crossnobis"`` with ``conditions`` / ``cv_groups`` and a diagonal
      ``noise`` precision) with every model RDM;
    - ``analysis="encoding"``: the cross-validated score of a ridge regression (penalty
      ``alpha``) from the features ``y`` to the centre's voxels: ``"r2"``, pooled over the
      members (``1 - sum SSE / sum SST``), or the members' mean ``"correlation"``.

    Centres are processed in batches: one gather of their members and batched Gram products (RSA),
    or per-voxel cross-validated predictions shared by every centre and summed over members by
    one sparse product (encoding); no loop over voxels or centres. With ``n_permutations``, the
    stimulus labels of the model are permuted (the model RDMs, not the data: nothing is refitted)
    and each centre's p-value is family-wise over centres (max statistic).

    Parameters
    ----------
    analysis : {"rsa", "encoding"}, default="rsa"
    radius : float, default=3.0
        Searchlight radius: mm (volumes through the affine, surfaces as geodesic distance),
        voxels with ``radius_unit="voxels"``; for plain columns (no ``masker`` and no
        ``neighbourhoods``) the columns are points on a line, the radius in columns.
    radius_unit : {"mm", "voxels"}, default="mm"
        Unit of ``radius`` for volume data.
    masker : BrainMasker, optional
        Fitted masker of the data: gives the geometry and writes the maps (:meth:`to_image`).
    mesh : optional
        Surface data: the mesh(es) the data were sampled on (a ``.surf.gii`` path, a
        ``(coordinates, faces)`` pair, a nilearn mesh; ``(lh, rh)`` for two hemispheres or the
        CIFTI cortices, or a dict by CIFTI structure).
    neighbourhoods : Neighbourhoods, optional
        Precomputed searchlights over the columns of ``X`` (overrides ``masker``'s geometry).
    stride : int, default=1
        Volume centres on a grid of this step.
    threshold : float, default=0.0
        Volume: minimum fraction of a sphere inside the mask for a centre.
    metric : {"correlation", "euclidean", "sqeuclidean", "crossnobis"}, default="correlation"
        Dissimilarity of the centres' RDMs.
    comparison : str, default="spearman"
        RDM comparison (:func:`neuroprobe.rsa.compare_rdms`). The Kendall taus have no
        dot-product form (a loop over centres; no permutations).
    model_rdms : array of shape (m,), (k, m), (n, n) or (k, n, n), or RDMData, optional
        Fixed model RDMs; then ``y`` may be None. An RDMData (or ``model_ids``) brings stimulus
        IDs, matched with ``stim_ids`` (or the condition labels) of the data.
    model_ids : sequence of str, optional
        Stimulus IDs of the rows of ``model_rdms``.
    model_metric : str, optional
        Dissimilarity of the model RDM computed from ``y`` (default ``"correlation"``,
        ``"euclidean"`` for a single feature).
    noise : array of shape (n_voxels,), optional
        Diagonal noise precision for ``metric="crossnobis"`` (e.g. ``1 / residual variance``).
    remove_mean : bool, default=False
        Crossnobis: subtract each pattern's mean over the centre's members.
    alpha : float, default=1.0
        Ridge penalty (``analysis="encoding"``).
    cv : int or splitter, default=5
        Folds of the encoding score (a partition of the stimuli, unshuffled KFold by default).
    scoring : {"r2", "correlation"}, default="r2"
    n_permutations : int, default=0
        Stimulus permutations for the FWE p-values (0: none).
    random_state : int, RandomState or None
    backend : {"numpy", "torch"}, default="numpy"
        torch computes in float32 on ``device``.
    device : str, default="cpu"
    n_jobs : int, optional
        joblib workers over batches of centres (RSA) or of permutations (encoding).
    batch_size : int, optional
        Centres per batch (default: from the memory budget).

    Attributes
    ----------
    neighbourhoods_ : Neighbourhoods
        Over the columns of ``X``.
    centers_ : ndarray of int
        Column of every centre.
    score_map_ : ndarray of shape (n_centers, n_models)
    pvalues_fwe_ : ndarray of shape (n_centers, n_models) or None
    null_max_ : ndarray of shape (n_permutations, n_models) or None
        Maximum over centres of every permutation's map.
    permutations_ : ndarray of shape (n_permutations, n_stimuli) or None
        Permutation ``k`` relabels stimulus ``i`` of the model as ``permutations_[k, i]`` (RSA:
        the model RDM of ``y[p]``; encoding: the data ``X[p]``).
    model_rdms_ : ndarray of shape (n_models, n_pairs) or None
    model_names_ : list of str
    n_features_in_ : int

    Notes
    -----
    ``score(X, y)`` is the maximum over centres (and models) of the map of ``(X, y)``: the
    statistic of the max-statistic test. The map itself is :meth:`score_map` /
    ``score_map_``; :meth:`to_image` writes it in the data's format (NIfTI / GIFTI / CIFTI).
    """

    _parameter_constraints = {
        "analysis": [StrOptions({"rsa", "encoding"})],
        "radius": [Interval(Real, 0, None, closed="neither")],
        "radius_unit": [StrOptions({"mm", "voxels"})],
        "masker": [HasMethods(["inverse_transform"]), None],
        "mesh": "no_validation",  # path, pair, mesh object or dict: checked by load_mesh
        "neighbourhoods": [Neighbourhoods, None],
        "stride": [Interval(Integral, 1, None, closed="left")],
        "threshold": [Interval(Real, 0, 1, closed="both")],
        "metric": [StrOptions(set(_b.BATCH_METRICS))],
        "comparison": [StrOptions(_COMPARISONS)],
        "model_rdms": ["array-like", RDMData, None],
        "model_ids": ["array-like", None],
        "model_metric": [str, None],
        "noise": ["array-like", None],
        "remove_mean": ["boolean"],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(_enc.ENCODING_SCORINGS))],
        "n_permutations": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        "backend": [StrOptions({"numpy", "torch"})],
        "device": "no_validation",  # checked by resolve_device (DeviceError)
        "n_jobs": [Integral, None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, analysis="rsa", radius=3.0, radius_unit="mm", masker=None, mesh=None,
                 neighbourhoods=None, stride=1, threshold=0.0, metric="correlation",
                 comparison="spearman", model_rdms=None, model_ids=None, model_metric=None,
                 noise=None, remove_mean=False, alpha=1.0, cv=5, scoring="r2",
                 n_permutations=0, random_state=None, backend="numpy", device="cpu",
                 n_jobs=None, batch_size=None):
        self.analysis = analysis
        self.radius = radius
        self.radius_unit = radius_unit
        self.masker = masker
        self.mesh = mesh
        self.neighbourhoods = neighbourhoods
        self.stride = stride
        self.threshold = threshold
        self.metric = metric
        self.comparison = comparison
        self.model_rdms = model_rdms
        self.model_ids = model_ids
        self.model_metric = model_metric
        self.noise = noise
        self.remove_mean = remove_mean
        self.alpha = alpha
        self.cv = cv
        self.scoring = scoring
        self.n_permutations = n_permutations
        self.random_state = random_state
        self.backend = backend
        self.device = device
        self.n_jobs = n_jobs
        self.batch_size = batch_size

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = self.analysis == "encoding" or self.model_rdms is None
        tags.target_tags.multi_output = True
        tags.input_tags.allow_nan = False
        return tags

    # ------------------------------------------------------------------ geometry
    def _geometry(self, n_columns):
        if self.neighbourhoods is not None:
            nb = self.neighbourhoods
            if nb.indices.size and nb.indices.max() >= n_columns:
                raise ValueError(f"neighbourhoods index column {int(nb.indices.max())} but X "
                                 f"has {n_columns} columns (map members to columns with "
                                 "Neighbourhoods.to_columns)")
        elif self.masker is not None:
            n_vox = getattr(self.masker, "n_voxels_", None)
            if n_vox is None:
                raise ValueError("masker must be a fitted BrainMasker (fit it on the data first)")
            if n_vox != n_columns:
                raise ValueError(f"X has {n_columns} columns but masker has {n_vox} voxels; "
                                 "X must be masker.transform(data)")
            nb = masker_neighbourhoods(self.masker, self.radius, mesh=self.mesh,
                                       radius_unit=self.radius_unit, stride=self.stride,
                                       threshold=self.threshold)
        else:
            nb = line_neighbourhoods(n_columns, self.radius)
        sizes = nb.sizes
        if np.any(sizes == 0):
            raise ValueError(f"neighbourhoods: {int(np.sum(sizes == 0))} centres have no member")
        if n_columns > 1 and sizes.max() < 2:
            unit = "columns" if self.masker is None else (
                "mm" if self.radius_unit == "mm" else "voxels")
            raise ValueError(f"radius={self.radius!r} ({unit}) gives searchlights of one voxel "
                             "(or vertex) each: no pattern to compare; use a larger radius "
                             "(volumes: larger than the voxel size)")
        return nb

    # ------------------------------------------------------------------ models
    def _data_and_ids(self, X, conditions, cv_groups, stim_ids):
        """RSA data (patterns or crossnobis fold means) and the IDs of the RDM's stimuli."""
        n = X.shape[0]
        for name, v in (("conditions", conditions), ("cv_groups", cv_groups),
                        ("stim_ids", stim_ids)):
            if v is not None and np.asarray(v).shape != (n,):
                raise ValueError(f"{name} must have one entry per row of X ({n}); got shape "
                                 f"{np.asarray(v).shape}")
        if self.metric == "crossnobis":
            from neuroprobe.solvers.crossnobis import fold_means

            if conditions is None or cv_groups is None:
                raise ValueError("metric='crossnobis' needs conditions= and cv_groups= (the "
                                 "condition and run of every row of X) in fit")
            labels, _, sums, counts = fold_means(X, np.asarray(conditions),
                                                 np.asarray(cv_groups))
            test = sums / counts[..., None]
            train = (sums.sum(0) - sums) / (counts.sum(0) - counts)[..., None]
            if self.noise is not None:
                w = np.asarray(self.noise, dtype=np.float64)
                if w.shape != (X.shape[1],):
                    raise ValueError(f"noise must be a diagonal precision with one value per "
                                     f"column of X ({X.shape[1]},); got shape {w.shape}")
                test = test * w
            return (train, test), labels.astype(str)
        if cv_groups is not None or self.noise is not None:
            raise ValueError("cv_groups= and noise= apply to metric='crossnobis' only")
        if conditions is not None:
            means, labels = _average(X, np.asarray(conditions))
            return means, labels.astype(str)
        return X, None if stim_ids is None else np.asarray(stim_ids).astype(str)

    def _models(self, y, n_rdm, ids, conditions):
        from neuroprobe.io.ids import align_ids
        from neuroprobe.rsa import compute_rdm, select_rdms, to_condensed

        if self.model_rdms is not None:
            src = self.model_rdms
            m_ids = src.stim_ids if isinstance(src, RDMData) else None
            names = list(src.names) if isinstance(src, RDMData) else None
            if self.model_ids is not None:
                m_ids = np.asarray(self.model_ids)
            M = np.atleast_2d(to_condensed(src.rdms if isinstance(src, RDMData) else src,
                                           "model_rdms")).astype(np.float64)
            names = names or [f"model{i}" for i in range(M.shape[0])]
        else:
            if y is None:
                raise ValueError("Searchlight requires y to be passed, but the target y is None "
                                 "(model features of the stimuli, or set model_rdms)")
            y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
            y = y.reshape(len(y), -1)
            if conditions is not None:
                y, _ = _average(y, np.asarray(conditions))
            if y.shape[0] != n_rdm:
                raise ValueError(f"y has {y.shape[0]} rows but X has {n_rdm} stimuli")
            metric = self.model_metric or ("euclidean" if y.shape[1] == 1 else "correlation")
            M, names, m_ids = np.atleast_2d(compute_rdm(y, metric)), ["y"], None
        n_model = n_from_pairs(M.shape[1])
        if m_ids is not None and ids is not None:
            if len(m_ids) != n_model:
                raise ValueError(f"model_rdms has {n_model} stimuli but {len(m_ids)} IDs")
            M = select_rdms(M, align_ids(ids, np.asarray(m_ids).astype(str),
                                         what="model_rdms", reference="the data's stim_ids"))
        elif n_model != n_rdm:
            raise ValueError(f"model_rdms are RDMs of {n_model} stimuli but the data have "
                             f"{n_rdm} (rows of X, or conditions); pass stim_ids= and model IDs "
                             "to match them by ID")
        if not np.all(np.isfinite(M)):
            raise ValueError("model_rdms contain NaN or infinite values")
        return M, names

    # ------------------------------------------------------------------ computation
    def _batch(self, nb, n, kmax, n_null):
        if self.batch_size is not None:
            return int(self.batch_size)
        per_centre = 8 * (4 * n * kmax + 3 * n * n + 3 * n * (n - 1) // 2 + 2 * n_null)
        if self.metric == "crossnobis":
            per_centre *= 4
        cap = 4096 if self.backend == "torch" else 64  # CPU: batches that stay in cache
        return int(np.clip(memory_budget() // 4 // per_centre, 1, cap))

    def _permutations(self, n):
        from neuroprobe.solvers.permutation import draw_permutations

        if not self.n_permutations:
            return None
        seed = check_random_state(self.random_state).randint(0, 2**31 - 1)
        return draw_permutations(n, self.n_permutations, seed=seed)

    def _run_rsa(self, X, y, nb, conditions, cv_groups, stim_ids, permute):
        from neuroprobe.rsa import check_method
        from neuroprobe.solvers.rdm import prepare

        method = check_method(self.comparison)
        data, ids = self._data_and_ids(X, conditions, cv_groups, stim_ids)
        n = (data[0] if isinstance(data, tuple) else data).shape[-2]
        if n < 3:
            raise ValueError(f"an RDM comparison needs at least 3 stimuli; got {n}")
        M, names = self._models(y, n, ids, conditions)
        perms = self._permutations(n) if permute else None
        if perms is not None and method not in DOT_METHODS:
            raise ValueError(f"comparison={self.comparison!r} has no fast permutation path; "
                             f"use one of {list(DOT_METHODS)} with n_permutations")
        PM = prepare(M, method) if method in DOT_METHODS else M
        PP = None if perms is None else _b.permuted_models(PM, perms)
        batch = self._batch(nb, n, int(nb.sizes.max()), 0 if PP is None else PP.shape[0])
        starts = np.arange(0, len(nb), batch)
        n_tasks = max(1, min(len(starts), effective_n_jobs(self.n_jobs)))
        out = Parallel(n_jobs=self.n_jobs)(
            delayed(_rsa_task)(part, nb, data, self.metric, self.remove_mean, method, PM, PP,
                               M.shape[0], self.backend, self.device, batch)
            for part in np.array_split(starts, n_tasks))
        observed = np.concatenate([o for o, _ in out])
        null_max = None
        if PP is not None:
            null_max = np.max(np.stack([m for _, m in out]), axis=0)
        return observed, null_max, M, names, perms

    def _run_encoding(self, X, y, nb, groups, permute):
        from neuroprobe.solvers.backend import get_backend

        if y is None:
            raise ValueError("Searchlight requires y to be passed, but the target y is None "
                             "(the features of the stimuli for analysis='encoding')")
        F = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        F = F.reshape(len(F), -1)
        if F.shape[0] != X.shape[0]:
            raise ValueError(f"y has {F.shape[0]} rows but X has {X.shape[0]}")
        folds = list(check_cv(self.cv).split(F, groups=groups))
        H = _enc.cv_hat_matrix(F, folds, self.alpha)
        S = _b.membership(nb, X.shape[1])
        be = get_backend(self.backend, self.device)
        dtype = X.dtype if be.name == "numpy" else np.float32
        Hb, Xb = be.asarray(H, dtype), be.asarray(X, dtype)

        def stats_of(Y):
            with np.errstate(invalid="ignore", divide="ignore"):
                a, b = _enc.voxel_statistics(Hb, Y, self.scoring, be)
            return (np.asarray(be.to_numpy(a), np.float64),
                    None if b is None else np.asarray(be.to_numpy(b), np.float64))

        observed = _enc.centre_scores(stats_of(Xb), S, nb.sizes, self.scoring)[0][:, None]
        null_max = None
        perms = self._permutations(X.shape[0]) if permute else None
        if perms is not None:
            chunk = max(1, int(memory_budget() // 8 // (8 * X.size)))

            def run(p):
                st = stats_of(Xb[be.asarray(p)])
                sc = _enc.centre_scores(st, S, nb.sizes, self.scoring)
                return np.nanmax(np.where(np.isnan(sc), -np.inf, sc), axis=1)

            parts = Parallel(n_jobs=self.n_jobs)(
                delayed(run)(perms[a:a + chunk]) for a in range(0, len(perms), chunk))
            null_max = np.concatenate(parts)[:, None]
        return observed, null_max, perms

    def _compute(self, X, y, fit_params, permute):
        nb = self._geometry(X.shape[1])
        conditions = fit_params.get("conditions")
        if self.analysis == "rsa":
            observed, null_max, M, names, perms = self._run_rsa(
                X, y, nb, conditions, fit_params.get("cv_groups"), fit_params.get("stim_ids"),
                permute)
        else:
            observed, null_max, perms = self._run_encoding(X, y, nb, fit_params.get("groups"),
                                                           permute)
            M, names = None, [self.scoring]
        return nb, observed, null_max, M, names, perms

    @staticmethod
    def _fit_params(conditions, cv_groups, stim_ids, groups):
        return {"conditions": conditions, "cv_groups": cv_groups, "stim_ids": stim_ids,
                "groups": groups}

    # ------------------------------------------------------------------ estimator API
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, conditions=None, cv_groups=None, stim_ids=None, groups=None):
        """Compute the searchlight map (and its FWE p-values with ``n_permutations``).

        Parameters
        ----------
        X : array of shape (n_samples, n_voxels)
            Brain patterns (``masker.transform`` of the images): one row per stimulus, or per
            (condition, run) observation with ``conditions`` / ``cv_groups``.
        y : array of shape (n_samples,) or (n_samples, n_features), optional
            Model features of the rows of ``X`` (RSA: their RDM is the model RDM, unless
            ``model_rdms`` is set; encoding: the predictors).
        conditions : array of shape (n_samples,), optional
            RSA: condition of each row; patterns (and ``y``) are averaged per condition and the
            RDM rows are the sorted conditions (their labels are the stimulus IDs).
        cv_groups : array of shape (n_samples,), optional
            Run of each row (``metric="crossnobis"``).
        stim_ids : array of shape (n_samples,), optional
            Stimulus IDs of the rows of ``X``, matched with the IDs of ``model_rdms``.
        groups : array of shape (n_samples,), optional
            Groups of the encoding folds (e.g. ``cv=GroupKFold()``).

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=(np.float64, np.float32), ensure_min_samples=3)
        params = self._fit_params(conditions, cv_groups, stim_ids, groups)
        nb, observed, null_max, M, names, perms = self._compute(X, y, params, permute=True)
        self.neighbourhoods_ = nb
        self.centers_ = nb.centers
        self.score_map_ = observed
        self.null_max_ = null_max
        self.pvalues_fwe_ = None if null_max is None else _fwe(observed, null_max)
        self.model_rdms_ = M
        self.model_names_ = names
        self.permutations_ = perms
        return self

    def score_map(self, X, y=None, *, conditions=None, cv_groups=None, stim_ids=None,
                  groups=None):
        """The map of new data ``X`` (same columns), ``(n_centers, n_models)``; no permutations."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32),
                          ensure_min_samples=3)
        params = self._fit_params(conditions, cv_groups, stim_ids, groups)
        return self._compute(X, y, params, permute=False)[1]

    def score(self, X, y=None, **fit_params):
        """Maximum over centres (and models) of the map of ``(X, y)``: one float."""
        with np.errstate(invalid="ignore"):
            values = self.score_map(X, y, **fit_params)
        finite = values[np.isfinite(values)]
        return float(finite.max()) if finite.size else float("nan")

    def to_image(self, what="score", model=None, *, masker=None, description=None):
        """The map as an image of the data's format (NIfTI / GIFTI / CIFTI), NaN off centres.

        Parameters
        ----------
        what : {"score", "pvalue_fwe"}
        model : int or str, optional
            One model (index or name); default all (one map per model).
        masker : BrainMasker, optional
            Default: the ``masker`` parameter.
        description : str, optional
            Stored in the image (see :meth:`BrainMasker.inverse_transform`).
        """
        check_is_fitted(self)
        masker = masker if masker is not None else self.masker
        if masker is None:
            raise ValueError("to_image needs a fitted BrainMasker (masker=) to write images")
        if what == "score":
            values = self.score_map_
        elif what == "pvalue_fwe":
            if self.pvalues_fwe_ is None:
                raise ValueError("no FWE p-values: fit with n_permutations > 0")
            values = self.pvalues_fwe_
        else:
            raise ValueError(f"what must be 'score' or 'pvalue_fwe'; got {what!r}")
        if model is not None:
            k = self.model_names_.index(model) if isinstance(model, str) else int(model)
            values = values[:, [k]]
        full = np.full((values.shape[1], self.n_features_in_), np.nan, np.float32)
        full[:, self.centers_] = values.T
        return masker.inverse_transform(full[0] if full.shape[0] == 1 else full, fill=np.nan,
                                        description=description)

    def get_feature_names_out(self, input_features=None):
        """Names of the map's columns (the models, or the encoding scoring)."""
        check_is_fitted(self)
        return np.asarray(self.model_names_, dtype=object)
