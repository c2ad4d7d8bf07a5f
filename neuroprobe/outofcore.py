"""Deprecated: moved to :mod:`neuroprobe.estimators.outofcore` (removed in the next release)."""

import warnings

from neuroprobe.estimators.outofcore import *  # noqa: F403
from neuroprobe.estimators.outofcore import (  # noqa: F401
    __all__,
    _block_columns,
    _Columns,
    _default_block,
    fit_to_hdf5,
    load_encoder,
    score_targets_hdf5,
)

warnings.warn(
    "neuroprobe.outofcore moved to neuroprobe.estimators.outofcore; the old path will be "
    "removed in the next release",
    DeprecationWarning,
    stacklevel=2,
)
