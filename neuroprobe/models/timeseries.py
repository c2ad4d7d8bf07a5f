"""Moved to :mod:`neuroprobe.transformers.timeseries`; this module re-exports it."""

from neuroprobe.transformers.timeseries import FeatureTimeSeries, extract_time_series

__all__ = ["FeatureTimeSeries", "extract_time_series"]
