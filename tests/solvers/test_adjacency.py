"""Spatio-temporal clusters: the graph labelling equals a brute-force flood fill, no adjacency
equals the time-only clusters, and the sign-flip test equals mne.stats'
spatio_temporal_cluster_1samp_test on the same data."""

import numpy as np
import pytest
from scipy import sparse

from neuroprobe.solvers.adjacency import check_adjacency, label_clusters
from neuroprobe.solvers.temporal import (
    cluster_fwe,
    cluster_h0,
    cluster_masses,
    permutation_cluster_1samp,
)


def _random_adjacency(c, p, seed):
    rng = np.random.default_rng(seed)
    A = rng.random((c, c)) < p
    A = A | A.T
    np.fill_diagonal(A, False)
    return A


def _flood(mask, A):
    """Brute force: a flood fill from every unlabelled sample in raster order."""
    rows, c, t = mask.shape
    labels = np.zeros(mask.shape, int)
    k = 0
    for r in range(rows):
        for i in range(c):
            for j in range(t):
                if not mask[r, i, j] or labels[r, i, j]:
                    continue
                k += 1
                stack = [(i, j)]
                labels[r, i, j] = k
                while stack:
                    a, b = stack.pop()
                    nbrs = [(a, b - 1), (a, b + 1)] + [(o, b) for o in np.flatnonzero(A[a])]
                    for x, y in nbrs:
                        if 0 <= y < t and mask[r, x, y] and not labels[r, x, y]:
                            labels[r, x, y] = k
                            stack.append((x, y))
    return labels, k


@pytest.mark.parametrize("shape, p, seed", [((3, 6, 9), 0.3, 0), ((2, 10, 15), 0.15, 1),
                                            ((1, 1, 12), 0.0, 2), ((4, 7, 1), 0.5, 3)])
def test_labels_equal_a_flood_fill(shape, p, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < 0.45
    A = _random_adjacency(shape[1], p, seed)
    nodes, lab, k = label_clusters(mask, check_adjacency(A, shape[1]))
    ref, k_ref = _flood(mask, A)
    got = np.zeros(mask.size, int)
    got[nodes] = lab + 1
    assert k == k_ref
    np.testing.assert_array_equal(got.reshape(shape), ref)   # same numbering: raster order


def test_masses_and_h0_equal_brute_force():
    rng = np.random.default_rng(5)
    A = _random_adjacency(8, 0.25, 5)
    obs = rng.standard_normal((2, 8, 20))          # 2 layers x 8 channels x 20 times
    null = rng.standard_normal((30, 2, 8, 20))
    for tail in (1, 0, -1):
        labels, masses = cluster_masses(obs, 1.0, tail, adjacency=A)
        ref_masses = []
        for sign in {1: [1], -1: [-1], 0: [1, -1]}[tail]:
            lab, k = _flood(sign * obs > 1.0, A)
            ref_masses += [obs[lab == m].sum() for m in range(1, k + 1)]
        np.testing.assert_allclose(masses, ref_masses, rtol=1e-12)
        assert labels.max() == len(masses)
        h0 = cluster_h0(null, 1.0, tail, adjacency=A)
        ref = []
        for perm in null:
            best = 0.0
            for sign in {1: [1], -1: [-1], 0: [1, -1]}[tail]:
                lab, k = _flood(sign * perm > 1.0, A)
                best = max([best] + [sign * perm[lab == m].sum() for m in range(1, k + 1)])
            ref.append(best)
        np.testing.assert_allclose(h0, ref, rtol=1e-12)
        _, p = cluster_fwe(obs, null, 1.0, tail, adjacency=A)
        oriented = np.abs(ref_masses) if tail == 0 else tail * np.asarray(ref_masses)
        np.testing.assert_allclose(p, (1 + (np.asarray(ref)[None] >= oriented[:, None]
                                             - 1e-12).sum(1)) / 31)


def test_no_neighbours_equal_time_only_clusters():
    rng = np.random.default_rng(6)
    stat = rng.standard_normal((3, 5, 40)).cumsum(axis=2) * 0.5
    for tail in (1, 0, -1):
        lab_t, m_t = cluster_masses(stat, 1.0, tail)
        lab_s, m_s = cluster_masses(stat, 1.0, tail, adjacency=np.zeros((5, 5), bool))
        assert m_s == m_t                               # bit for bit (the same sums' order)
        np.testing.assert_array_equal(lab_s, lab_t)
        null = rng.standard_normal((7, 3, 5, 40)).cumsum(axis=3) * 0.5
        np.testing.assert_array_equal(cluster_h0(null, 1.0, tail, np.eye(5)),
                                      cluster_h0(null, 1.0, tail))


def _both(mne, X, thr_mne, thr, tail, A):
    """mne's exact spatio-temporal sign-flip test (subjects x times x channels) and ours
    (subjects x channels x times) on the same data."""
    ref = mne.stats.spatio_temporal_cluster_1samp_test(
        X.transpose(0, 2, 1), threshold=thr_mne, n_permutations="all", tail=tail,
        adjacency=sparse.coo_matrix(A), out_type="mask", verbose=False)
    return ref, permutation_cluster_1samp(X, thr, "all", tail, adjacency=A)


@pytest.mark.parametrize("tail", [0, 1, -1])
def test_sign_flip_test_equals_mne_spatio_temporal(tail):
    mne = pytest.importorskip("mne")
    rng = np.random.default_rng(7)
    n, c, t = 8, 6, 25
    A = _random_adjacency(c, 0.4, 7)
    X = rng.standard_normal((n, c, t))
    X[:, :3, 8:14] += 1.4
    X[:, 2:5, 18:22] -= 1.3
    thr = 2.0
    (t_mne, clusters, p_mne, h0_mne), (t_obs, labels, p, h0) = _both(
        mne, X, -thr if tail == -1 else thr, thr, tail, A)         # mne: a signed threshold
    np.testing.assert_allclose(t_obs, t_mne.T, rtol=1e-10)
    masses_mne = np.array([t_mne[m].sum() for m in clusters])
    masses = np.array([t_obs[labels == k].sum() for k in range(1, labels.max() + 1)])
    assert len(clusters) == labels.max() >= 2
    order, order_mne = np.argsort(masses), np.argsort(masses_mne)
    np.testing.assert_allclose(masses[order], masses_mne[order_mne], rtol=1e-10)
    # the same clusters (as sample sets), the same null: equal p-values (mne drops the
    # identity flip of the exact set: up to 1.5 flips of 2 ** 8)
    sets = sorted(tuple(np.flatnonzero(labels.T.ravel() == k)) for k in range(1, len(masses) + 1))
    assert sets == sorted(tuple(np.flatnonzero(m.ravel())) for m in clusters)
    assert set(np.round(np.abs(h0_mne), 8)) <= set(np.round(np.abs(h0), 8))
    np.testing.assert_allclose(p[order], np.asarray(p_mne)[order_mne], atol=2.5 / len(h0))
    assert min(p) < 0.05


def test_bad_adjacency():
    with pytest.raises(ValueError, match=r"adjacency: expected a \(4, 4\)"):
        check_adjacency(np.ones((3, 3)), 4)
    asym = np.zeros((3, 3), bool)
    asym[0, 1] = True
    with pytest.raises(ValueError, match="symmetric"):
        check_adjacency(asym, 3)
    with pytest.raises(ValueError, match="n_channels, n_times"):
        cluster_masses(np.zeros(10), 1.0, 1, adjacency=np.zeros((1, 1)))
    with pytest.raises(ValueError, match="TFCE"):
        permutation_cluster_1samp(np.ones((4, 3, 5)), dict(start=0, step=0.1), 8,
                                  adjacency=np.eye(3))
    A = check_adjacency(sparse.csr_matrix(np.eye(3) + np.eye(3, k=1) + np.eye(3, k=-1)), 3)
    assert A.nnz == 4 and not A.diagonal().any()       # the diagonal dropped


def test_tfce_with_adjacency_equals_a_brute_force_sum():
    from neuroprobe.solvers.temporal import tfce

    rng = np.random.default_rng(9)
    A = _random_adjacency(6, 0.3, 9)
    stat = rng.standard_normal((2, 6, 12)).cumsum(axis=2) * 0.7
    start, step, hp, ep = 0.0, 0.25, 2.0, 0.5
    for tail in (1, 0, -1):
        got = tfce(stat, start if tail != -1 else -start, step if tail != -1 else -step,
                   hp, ep, tail=tail, adjacency=A)
        ref = np.zeros_like(stat)
        for sign in {1: [1], -1: [-1], 0: [1, -1]}[tail]:
            s = sign * stat
            for i, h in enumerate(np.arange(start, s.max(), step)):
                lab, k = _flood(s > h, A)
                for m in range(1, k + 1):
                    ref[lab == m] += sign * (lab == m).sum() ** ep * abs(h) ** hp * (
                        abs(h) if i == 0 else step)
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    # no neighbours: the time-only TFCE
    np.testing.assert_allclose(tfce(stat, 0.0, 0.25, adjacency=np.zeros((6, 6))),
                               tfce(stat, 0.0, 0.25), rtol=1e-12)


@pytest.mark.parametrize("tail", [0, 1])
def test_tfce_sign_flip_test_equals_mne_spatio_temporal(tail):
    mne = pytest.importorskip("mne")
    rng = np.random.default_rng(10)
    n, c, t = 7, 5, 14
    A = _random_adjacency(c, 0.4, 10)
    X = rng.standard_normal((n, c, t))
    X[:, :3, 4:9] += 1.5
    thr = dict(start=0.0, step=0.4)
    (t_mne, _, p_mne, h0_mne), (t_obs, labels, p, h0) = _both(mne, X, thr, thr, tail, A)
    from neuroprobe.solvers.temporal import tfce

    scores = tfce(t_obs, **thr, tail=tail, adjacency=A)
    np.testing.assert_allclose(scores, t_mne.T, rtol=1e-9, atol=1e-9)   # mne's TFCE t_obs
    assert set(np.round(np.abs(h0_mne), 6)) <= set(np.round(np.abs(h0), 6))
    np.testing.assert_allclose(p, np.asarray(p_mne).reshape(t, c).T, atol=2.5 / len(h0))
    assert p.min() < 0.05
