"""The batched searchlight engine: prepared rows with ties, permuted models, crossnobis options."""

import numpy as np
import pytest

from neuroprobe.crossnobis import crossnobis_rdm
from neuroprobe.rsa import compare_rdms
from neuroprobe.searchlight import Searchlight, line_neighbourhoods
from neuroprobe.searchlight.batched import permuted_models, prepare_rows
from neuroprobe.solvers.backend import get_backend
from neuroprobe.solvers.rdm import prepare


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("method", ["spearman", "rho_a", "pearson", "cosine"])
def test_prepare_rows_equals_solver_with_ties(backend, method):
    r = np.random.default_rng(0)
    R = r.integers(0, 6, size=(9, 45)).astype(np.float64)  # many ties
    R[3] = r.normal(size=45)  # one row without ties
    be = get_backend(backend)
    got = be.to_numpy(prepare_rows(be.asarray(R, np.float64), method, be))
    np.testing.assert_allclose(got, prepare(R, method), rtol=1e-12, atol=1e-12)


def test_permuted_models_are_models_of_permuted_stimuli():
    from scipy.spatial.distance import pdist

    r = np.random.default_rng(1)
    F = r.normal(size=(7, 3))
    M = np.stack([pdist(F), pdist(F, "cityblock")])
    perms = np.stack([r.permutation(7) for _ in range(4)])
    out = permuted_models(M, perms).reshape(4, 2, -1)
    for k, p in enumerate(perms):
        np.testing.assert_allclose(out[k, 0], pdist(F[p]))
        np.testing.assert_allclose(out[k, 1], pdist(F[p], "cityblock"))


def test_crossnobis_remove_mean_and_kendall_equal_direct():
    r = np.random.default_rng(2)
    nb = line_neighbourhoods(30, 4)
    cond, runs = np.tile(np.arange(6), 3), np.repeat(np.arange(3), 6)
    X = r.normal(size=(18, 30))
    model = r.random(15)
    sl = Searchlight(neighbourhoods=nb, metric="crossnobis", remove_mean=True,
                     comparison="kendall_tau_a", model_rdms=model).fit(
        X, conditions=cond, cv_groups=runs)
    for c in (0, 11, 29):
        d = crossnobis_rdm(X[:, nb.members(c)], cond, runs, remove_mean=True)
        assert sl.score_map_[c, 0] == pytest.approx(compare_rdms(d, model, "kendall_tau_a"))
