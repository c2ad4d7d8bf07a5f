"""estimators/outofcore (moved from neuroprobe.outofcore); the lazy view io.targets.TargetView."""

import importlib
import json
import sys
import warnings

import numpy as np
import pytest

from neuroprobe.io.targets import TargetRows, TargetView, column_view


def test_old_module_path_warns_and_reexports():
    from neuroprobe.estimators import outofcore

    sys.modules.pop("neuroprobe.outofcore", None)
    with pytest.warns(DeprecationWarning, match="neuroprobe.estimators.outofcore"):
        old = importlib.import_module("neuroprobe.outofcore")
    for name in ("fit_to_hdf5", "load_encoder", "score_targets_hdf5", "_Columns"):
        assert getattr(old, name) is getattr(outofcore, name)


def test_target_view_rows_and_columns_equal_numpy_indexing():
    Y = np.arange(60.0).reshape(6, 10)
    rows = np.array([4, 0, 2])
    np.testing.assert_array_equal(TargetView(Y, rows)[:, 2:7], Y[rows][:, 2:7])
    np.testing.assert_array_equal(np.asarray(TargetRows(Y, rows)), Y[rows])
    cols = TargetView(Y, cols=slice(3, 9))
    assert cols.shape == (6, 6) and len(cols) == 6
    np.testing.assert_array_equal(cols[:, 1:4], Y[:, 4:7])
    np.testing.assert_array_equal(np.asarray(cols, dtype=np.float32), Y[:, 3:9])
    both = TargetView(TargetView(Y, cols=slice(2, 8)), rows)
    np.testing.assert_array_equal(np.asarray(both), Y[rows][:, 2:8])
    assert column_view(Y, slice(1, 3)).base is not None  # numpy: a view, no copy
    with pytest.raises(IndexError, match="start:stop"):
        cols[:, [0, 1]]
    with pytest.raises(IndexError, match="view\\[:, columns\\] only"):
        cols[0, 1:2]
    from neuroprobe.estimators.outofcore import _Columns

    np.testing.assert_array_equal(np.asarray(_Columns(Y, slice(0, 2))), Y[:, :2])


def test_files_written_with_model_load_as_penalty(tmp_path):
    h5py = pytest.importorskip("h5py")
    from neuroprobe.estimators import VoxelwiseEncoder
    from neuroprobe.estimators.outofcore import fit_to_hdf5, load_encoder

    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4))
    Y = X @ rng.standard_normal((4, 6))
    path = fit_to_hdf5(VoxelwiseEncoder(penalty=None, cv=3, dtype="float64"), X, Y,
                       tmp_path / "enc.h5", targets_per_block=4)
    with h5py.File(path, "r+") as fh:  # a file of the previous release
        params = json.loads(fh.attrs["params"])
        params.pop("penalty")
        params["model"] = "ols"
        fh.attrs["params"] = json.dumps(params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        est = load_encoder(path)
    assert est.penalty is None and est.model == "deprecated"
    np.testing.assert_allclose(est.predict(X), Y, atol=1e-8)
    with pytest.raises(ValueError, match="alpha_per_target=True"):
        fit_to_hdf5(VoxelwiseEncoder(alpha_per_target=False), X, Y, tmp_path / "b.h5")
    fit_to_hdf5(VoxelwiseEncoder(penalty=None, alpha_per_target=False), X, Y, tmp_path / "c.h5")
