"""Deprecated: moved to :mod:`neuroprobe.models.finetune` (``finetune``, ``replace_head``, ...)."""

import warnings

from neuroprobe.models.finetune import FinetuneResult, finetune, replace_head, save_checkpoint

__all__ = ["FinetuneResult", "finetune", "replace_head", "save_checkpoint"]

warnings.warn(
    "neuroprobe.transfer is deprecated and will be removed in the next release; import from "
    "neuroprobe.models.finetune (or neuroprobe.finetune)",
    DeprecationWarning,
    stacklevel=2,
)
