"""Figures (matplotlib).

Every function takes arrays and returns a :class:`matplotlib.figure.Figure`; nothing touches
pyplot's global state or the backend (figures are built with ``Figure()`` and drawn by the Agg
canvas), so they work in scripts, servers and tests alike. Save with :func:`save_figure`.

One file per family: ``_style`` (construction and saving), ``network`` (inside the network),
``study`` (layer profiles, RDMs), ``volume`` (brain slices), ``temporal`` (curves over time,
peak latencies, temporal generalisation).
"""

from neuroprobe.plotting._style import save_figure, to_rgb_image
from neuroprobe.plotting.network import (
    plot_activation_maps,
    plot_lesion,
    plot_minimal_stimulus,
    plot_optimal_stimuli,
    plot_receptive_fields,
    plot_saliency,
    plot_top_stimuli,
    plot_training_history,
)
from neuroprobe.plotting.study import plot_layer_profile, plot_rdm_grid, plot_rsa_profile
from neuroprobe.plotting.temporal import (
    plot_peak_latencies,
    plot_temporal_generalization,
    plot_time_courses,
)
from neuroprobe.plotting.volume import plot_volume_slices

__all__ = [
    "save_figure",
    "to_rgb_image",
    "plot_activation_maps",
    "plot_saliency",
    "plot_top_stimuli",
    "plot_optimal_stimuli",
    "plot_receptive_fields",
    "plot_minimal_stimulus",
    "plot_lesion",
    "plot_training_history",
    "plot_layer_profile",
    "plot_rsa_profile",
    "plot_rdm_grid",
    "plot_volume_slices",
    "plot_time_courses",
    "plot_peak_latencies",
    "plot_temporal_generalization",
]
