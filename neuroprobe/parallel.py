"""Moved to :mod:`neuroprobe.transformers.sharded`; this module re-exports it."""

from neuroprobe.transformers.sharded import _extract_shard, _shards, extract_to_file_sharded

__all__ = ["extract_to_file_sharded", "_extract_shard", "_shards"]
