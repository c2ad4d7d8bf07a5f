"""Searchlight neighbourhoods on volumes (spheres) and surfaces (geodesic discs)."""

from neuroprobe.searchlight.neighbourhoods import Neighbourhoods
from neuroprobe.searchlight.surface import surface_neighbourhoods
from neuroprobe.searchlight.volume import volume_neighbourhoods

__all__ = ["Neighbourhoods", "volume_neighbourhoods", "surface_neighbourhoods"]
