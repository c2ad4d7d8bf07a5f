"""Searchlights on volumes (spheres), surfaces (geodesic discs) and CIFTI files, and the
:class:`Searchlight` estimator (RSA or encoding maps with FWE p-values)."""

from neuroprobe.searchlight.estimator import Searchlight
from neuroprobe.searchlight.neighbourhoods import Neighbourhoods
from neuroprobe.searchlight.spaces import (
    cifti_neighbourhoods,
    line_neighbourhoods,
    load_mesh,
    masker_neighbourhoods,
)
from neuroprobe.searchlight.surface import surface_neighbourhoods
from neuroprobe.searchlight.volume import volume_neighbourhoods

__all__ = ["Neighbourhoods", "volume_neighbourhoods", "surface_neighbourhoods", "Searchlight",
           "masker_neighbourhoods", "cifti_neighbourhoods", "line_neighbourhoods", "load_mesh"]
