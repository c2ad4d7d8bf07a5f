"""Set-theoretic variance partitioning: unique and shared components from the R2 of every union.

With ``k`` feature bands there are ``2^k - 1`` non-empty unions ``U`` of bands and as many atoms
of their Venn diagram: the atom ``S`` (a non-empty set of bands) is the variance explained by
every band of ``S`` and by no band outside it (de Heer et al. 2017; Lescroart et al. 2015). The
R2 of a union is the sum of the atoms it touches, ``R2(U) = sum_{S : S & U != {}} a(S)``, so with
``g(W) = R2(all) - R2(all \\ W)`` (the atoms inside ``W``) the atoms follow by Möbius inversion on
the subset lattice::

    a(S) = sum_{W subset of S} (-1)^(|S| - |W|) g(W)

For two bands: ``unique(A) = R2(AB) - R2(B)``, ``shared(AB) = R2(A) + R2(B) - R2(AB)``. The atoms
sum to ``R2(all)``. Estimates from held-out R2 can be negative (noise, overfitting of the larger
models); they are returned as they are.

Subsets are bit masks: band ``i`` is bit ``i``; row ``m - 1`` of an R2 array is the union of
mask ``m`` (``m = 1 .. 2^k - 1``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["subset_masks", "mask_bands", "mobius_matrix", "partition_components", "UnionBlocks",
           "union_ridge_scores"]


def subset_masks(k):
    """The ``2^k - 1`` non-empty subsets of ``k`` bands as bit masks ``1 .. 2^k - 1``."""
    if k < 1:
        raise ValueError(f"variance partitioning needs at least one band; got {k}")
    return np.arange(1, 2**k, dtype=np.int64)


def mask_bands(mask, k):
    """Indices of the bands in bit mask ``mask`` (ascending)."""
    return [i for i in range(k) if (int(mask) >> i) & 1]


def mobius_matrix(k):
    """The ``(2^k - 1, 2^k - 1)`` matrix ``C`` with ``atoms = C @ r2`` (rows: atom masks,
    columns: union masks, both ``1 .. 2^k - 1``); integer entries."""
    masks = subset_masks(k)
    full = int(masks[-1])
    size = masks.size
    # g = G @ r2 with g(W) = r2(full) - r2(full \ W) (r2 of the empty union is 0)
    g = np.zeros((size, size), dtype=np.int64)
    g[:, full - 1] = 1
    for w in masks:
        rest = full & ~int(w)
        if rest:
            g[w - 1, rest - 1] -= 1
    # a(S) = sum_{W subset S} (-1)^{|S|-|W|} g(W)
    mu = np.zeros((size, size), dtype=np.int64)
    popcount = np.array([bin(int(m)).count("1") for m in masks])
    for s in masks:
        sub = masks[(masks & s) == masks]  # every non-empty W subset of S
        mu[s - 1, sub - 1] = (-1) ** (popcount[s - 1] - popcount[sub - 1])
    return mu @ g


def partition_components(r2):
    """The atoms of the variance partition from the R2 of every union of bands.

    Parameters
    ----------
    r2 : array of shape (2^k - 1, ...) (e.g. (2^k - 1, n_targets))
        Row ``m - 1`` holds the R2 of the union of bit mask ``m`` (band ``i`` is bit ``i``).

    Returns
    -------
    atoms : ndarray of the shape of ``r2``
        Row ``m - 1``: the variance explained by exactly the bands of mask ``m`` (unique to one
        band when ``m`` has one bit, shared by several otherwise); they sum to the R2 of the full
        union (last row of ``r2``). Negative estimates are kept.
    """
    r2 = np.asarray(r2, dtype=np.float64)
    size = r2.shape[0]
    k = int(np.log2(size + 1))
    if 2**k - 1 != size:
        raise ValueError(f"r2 must have 2^k - 1 rows (one per non-empty union of k bands); got "
                         f"{size}")
    c = mobius_matrix(k).astype(np.float64)
    return (c @ r2.reshape(size, -1)).reshape(r2.shape)


# --------------------------------------------------------------------------- shared ridge fits
def _union_kinds(sizes, masks, n_train, solver="auto"):
    """``"primal"`` / ``"kernel"`` of every union (ridge's rule on the union's width)."""
    out = []
    for m in masks:
        p = sum(sizes[i] for i in mask_bands(m, len(sizes)))
        out.append(solver if solver != "auto" else ("primal" if p <= n_train else "kernel"))
    return out


class UnionBlocks:
    """The per-band blocks of one training set that every union of bands reuses.

    * primal unions: one centred cross-product ``X_c^T X_c`` of the columns of the bands that
      appear in some primal union, and each inner fold's training part (the full product minus
      the held-out rows' part, as :func:`neuroprobe.solvers.ridge.make_plan`); a union takes
      its block sub-matrix.
    * kernel unions: one centred Gram matrix ``K_b`` per band (and ``(X_b - m_b) m_b``, and the
      cross kernel ``K_b(test, train)`` of the held-out rows); a union sums its bands' blocks,
      ``K_S = sum_{b in S} K_b`` (centring is linear in the columns).

    Each union still needs its own eigendecompositions: the eigenvectors of ``A + B`` are not a
    function of those of ``A`` and ``B`` unless they commute, so one ``eigh`` per union per fold
    (``p_S^3`` primal, ``n_train^3`` kernel) is the part that cannot be shared.
    """

    def __init__(self, X, bands, folds, masks, *, fit_intercept=True, backend, dtype=np.float32,
                 X_test=None, solver="auto"):
        from neuroprobe.solvers import ridge as _ridge

        be = backend
        X = np.asarray(X, dtype=dtype)
        n, p = X.shape
        self.backend, self.dtype, self.fit_intercept = be, np.dtype(dtype), fit_intercept
        self.bands = [np.asarray(b, dtype=np.intp) for b in bands]
        self.masks = np.asarray(masks)
        self.folds = [(np.asarray(tr), np.asarray(te)) for tr, te in folds]
        self.kinds = _union_kinds([b.size for b in self.bands], self.masks, n, solver)
        self.x_mean = X.mean(axis=0) if fit_intercept else np.zeros(p, dtype=dtype)
        self.X = X
        k = len(self.bands)
        primal_bands = sorted({i for m, kind in zip(self.masks, self.kinds) if kind == "primal"
                               for i in mask_bands(m, k)})
        kernel_bands = sorted({i for m, kind in zip(self.masks, self.kinds) if kind == "kernel"
                               for i in mask_bands(m, k)})
        # primal: one cross-product of the columns of the primal unions' bands
        self.cols_p = (np.concatenate([self.bands[i] for i in primal_bands])
                       if primal_bands else np.zeros(0, dtype=np.intp))
        self.pos = np.full(p, -1, dtype=np.intp)
        self.pos[self.cols_p] = np.arange(self.cols_p.size)
        self.fold_parts = []
        if primal_bands:
            xg = be.asarray(X[:, self.cols_p] - self.x_mean[self.cols_p] if fit_intercept
                            else X[:, self.cols_p])
            self.xg = xg
            self.gram = xg.T @ xg
            for train, test in self.folds:
                x_te = xg[be.asarray(test)]
                sub = self.gram - x_te.T @ x_te
                n_tr = len(train)
                mx = -x_te.sum(axis=0) / n_tr if fit_intercept else 0 * x_te[0]
                if fit_intercept:
                    sub = sub - n_tr * (mx[:, None] * mx[None, :])
                self.fold_parts.append((sub, mx))
        # kernel: one centred Gram matrix per band (and its test cross kernel)
        self.kernels, self.mean_proj, self.cross = {}, {}, {}
        for i in kernel_bands:
            cols = self.bands[i]
            xb = be.asarray(X[:, cols])
            self.kernels[i], self.mean_proj[i] = _ridge._kernel_gram(
                be, xb, self.x_mean[cols], fit_intercept)
            if X_test is not None:  # numpy, in X_test's dtype, as VoxelwiseEncoder.predict
                from neuroprobe.solvers.backend import get_backend

                xt = np.asarray(X_test)
                xt = xt[:, cols].astype(np.result_type(xt.dtype, dtype), copy=False)
                self.cross[i] = _ridge.centred_cross_gram(get_backend("numpy"), xt, X[:, cols],
                                                          self.x_mean[cols])

    def columns(self, mask):
        """The columns of the union of ``mask`` (its bands side by side, in band order)."""
        return np.concatenate([self.bands[i] for i in mask_bands(mask, len(self.bands))])

    def plan(self, index):
        """The :class:`~neuroprobe.solvers.ridge.RidgePlan` (inner folds and full data) of
        union ``masks[index]``, as :func:`~neuroprobe.solvers.ridge.make_plan` builds it on the
        union's columns, from the shared blocks."""
        from neuroprobe.solvers import ridge as R

        be = self.backend
        mask = int(self.masks[index])
        cols = self.columns(mask)
        if self.kinds[index] == "primal":
            at = be.asarray(self.pos[cols])
            xg = self.xg[:, at]
            rp = R.RidgePlan(be, xg, self.x_mean[cols], "primal", [],
                             fit_intercept=self.fit_intercept)
            rp.full_eigvals, rp.full_eigvecs = R._eigh(be, self.gram[at][:, at])
            for (train, test), (sub, mx) in zip(self.folds, self.fold_parts):
                s, v = R._eigh(be, sub[at][:, at])
                rp.folds.append(R.primal_fold(train, test, s, v, mx[at], xg[be.asarray(test)]))
            return rp
        members = mask_bands(mask, len(self.bands))
        gram = self.kernels[members[0]]
        proj = self.mean_proj[members[0]]
        for i in members[1:]:
            gram = gram + self.kernels[i]
            proj = None if proj is None else proj + self.mean_proj[i]
        # (the plan's X is only read for its number of rows: no copy of the union's columns)
        rp = R.RidgePlan(be, be.asarray(self.X), self.x_mean[cols], "kernel", [],
                         fit_intercept=self.fit_intercept, centred=False, mean_proj=proj)
        rp.full_eigvals, rp.full_eigvecs = R._eigh(be, gram)
        rp.full_proj = rp.full_eigvecs
        for train, test in self.folds:  # as make_plan: slice, centre on the training rows
            tr, te = be.asarray(train), be.asarray(test)
            k_tr, k_te = gram[tr][:, tr], gram[te][:, tr]
            if self.fit_intercept:
                r = k_tr.mean(axis=1)
                m = r.mean()
                k_tr = k_tr - r[:, None] - r[None, :] + m
                k_te = k_te - k_te.mean(axis=1, keepdims=True) - r[None, :] + m
            s, u = R._eigh(be, k_tr)
            rp.folds.append(R.FoldDecomposition(train, test, "kernel", s, u, k_te @ u))
        return rp

    def cross_kernel(self, index):
        """``(X_test,S - m_S)(X_S - m_S)^T`` of a kernel union: the sum of its bands'."""
        members = mask_bands(int(self.masks[index]), len(self.bands))
        out = self.cross[members[0]]
        for i in members[1:]:
            out = out + self.cross[i]
        return out


def union_ridge_scores(X_train, Y_train, X_test, Y_test, bands, masks, folds, alphas, *,
                       scoring="r2", fit_intercept=True, backend, dtype=np.float32, batch=None,
                       solver="auto"):
    """Held-out R2 of ridge on every union of bands, alphas chosen per target by inner CV.

    The same fits as :class:`~neuroprobe.estimators.VoxelwiseEncoder` (``penalty="l2"``, one
    alpha per target chosen by ``scoring`` over the inner ``folds``, refit on all of
    ``X_train``) on the columns of each union, then scored on ``(X_test, Y_test)``, but from
    the blocks of :class:`UnionBlocks`: one cross-product (primal) or one Gram matrix per band
    (kernel) for all ``2^k - 1`` unions instead of one per union.

    Parameters
    ----------
    X_train, X_test : ndarray (n, p) and (n_test, p)
    Y_train, Y_test : ndarray (n, t) and (n_test, t)
    bands : list of int arrays
        Columns of every band (disjoint).
    masks : array of int
        The unions (bit masks, :func:`subset_masks`).
    folds : list of (train, test)
        Inner folds over the rows of ``X_train`` (choose the alphas).
    alphas : array of float
    scoring : {"r2", "correlation", "explained_variance"}
        Chooses the alphas; the result is the held-out R2.
    fit_intercept : bool
    backend : backend of :func:`neuroprobe.solvers.backend.get_backend`
    dtype : numpy dtype of the fits
    batch : int, optional
        Targets per batch (default: from the memory budget).
    solver : {"auto", "primal", "kernel"}

    Returns
    -------
    r2 : ndarray (len(masks), t), float64
    const : bool ndarray (t,)
        Targets constant in ``Y_train`` (their inner scores are NaN; largest alpha).
    """
    from neuroprobe.solvers import ridge as R
    from neuroprobe.solvers.scoring import score_predictions

    be = backend
    dtype = np.dtype(dtype)
    X_test = np.asarray(X_test)
    Y_train = np.asarray(Y_train)
    Y_test = np.asarray(Y_test, dtype=np.float64)
    n, t = Y_train.shape[0], Y_train.shape[1]
    alphas = np.asarray(alphas, dtype=np.float64)
    blocks = UnionBlocks(X_train, bands, folds, masks, fit_intercept=fit_intercept, backend=be,
                         dtype=dtype, X_test=X_test, solver=solver)
    if batch is None:
        max_test = max(len(te) for _, te in folds)
        per = R.batch_bytes_per_target(n, min(n, X_train.shape[1]), len(alphas), max_test,
                                       min(n, X_train.shape[1]), dtype.itemsize)
        batch = R.auto_batch_size(t, per, be.free_memory() // 2)
    out = np.empty((len(blocks.masks), t))
    const = np.zeros(t, dtype=bool)
    eps = float(np.finfo(np.result_type(X_test.dtype, dtype)).eps)
    alphas_be = be.asarray(alphas.astype(dtype))
    kinds = blocks.kinds
    batches = [slice(i, min(i + batch, t)) for i in range(0, t, batch)]

    def centred(sl):  # as ridge.cv_batch: a new centred array, the constant targets
        y = np.asarray(Y_train[:, sl], dtype=dtype)
        y_mean = y.mean(axis=0) if fit_intercept else np.zeros(y.shape[1], dtype=dtype)
        if fit_intercept:
            y = y - y_mean
        return be.asarray(y), y_mean, ~(np.abs(y).max(axis=0) > 0)

    def score(index, sl, pred):
        out[index, sl] = score_predictions(Y_test[:, sl], np.asarray(pred, np.float64), "r2",
                                           eps=eps)

    def best(scores, c):
        scores[:, c] = np.nan
        return alphas[R.best_alpha_index(scores)]

    # primal unions: X^T y of all their columns (and of each inner fold's held-out rows) once
    # per target batch, sliced per union
    primal = [i for i, kind in enumerate(kinds) if kind == "primal"]
    if primal:
        plans = {i: blocks.plan(i) for i in primal}
        at = {i: be.asarray(blocks.pos[blocks.columns(int(blocks.masks[i]))]) for i in primal}
        x_te = {i: X_test[:, blocks.columns(int(blocks.masks[i]))].astype(
            np.result_type(X_test.dtype, dtype), copy=False) for i in primal}
        for sl in batches:
            yb, y_mean, c = centred(sl)
            const[sl] |= c
            xty = blocks.xg.T @ yb
            xty_te = [blocks.xg[be.asarray(te)].T @ yb[be.asarray(te)] for _, te in blocks.folds]
            for i in primal:
                plan, j = plans[i], at[i]
                scores = R.cv_scores(plan, yb, alphas_be, scoring, xty=xty[j],
                                     xty_test=[x[j] for x in xty_te])
                chosen = best(scores, c)
                coef = be.to_numpy(R.refit(plan, yb, be.asarray(chosen.astype(dtype)),
                                           xty=xty[j])).astype(dtype, copy=False)
                intercept = y_mean - plan.x_mean @ coef
                score(i, sl, x_te[i] @ coef.astype(x_te[i].dtype, copy=False) + intercept)
    # kernel unions: the sum of their bands' Gram matrices, one union at a time
    for i in (i for i, kind in enumerate(kinds) if kind == "kernel"):
        plan = blocks.plan(i)
        cross = blocks.cross_kernel(i)
        for sl in batches:
            yb, y_mean, c = centred(sl)
            const[sl] |= c
            chosen = best(R.cv_scores(plan, yb, alphas_be, scoring), c)
            dual = be.to_numpy(R.refit_dual(plan, yb, be.asarray(chosen.astype(dtype))))
            # as VoxelwiseEncoder.predict: K(test, train) dual + y_mean
            score(i, sl, cross @ dual.astype(dtype, copy=False) + y_mean)
    return out, const
