"""Figures (matplotlib).

Every function takes arrays and returns a :class:`matplotlib.figure.Figure`; nothing touches
pyplot's global state or the backend (figures are built with ``Figure()`` and drawn by the Agg
canvas), so they work in scripts, servers and tests alike. Save with :func:`save_figure`.

One file per family: ``_style`` (construction and saving), ``network`` (inside the network),
``study`` (layer profiles, RDMs), ``uncertainty`` (intervals, significance, RDM panels, MDS,
histograms), ``volume`` (brain slices), ``maps`` (brain maps on volumes and surfaces), ``temporal``
(curves over time, peak latencies, temporal generalisation).
"""

from neuroprobe.plotting._style import (
    COLORS,
    FONT,
    PALETTE,
    apply_style,
    attach_table,
    figure_table,
    new_figure,
    save_figure,
    save_figure_with_data,
    style,
    to_rgb_image,
)
from neuroprobe.plotting.maps import (
    BrainMap,
    load_map,
    nilearn_available,
    plot_map,
    plot_two_band_map,
    two_band_colors,
)
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
from neuroprobe.plotting.uncertainty import (
    layer_ci,
    mds_embedding,
    plot_layer_ci,
    plot_mds,
    plot_model_comparison,
    plot_rdm,
    plot_score_histogram,
    rdm_layer_ci,
    significance_marker,
)
from neuroprobe.plotting.volume import plot_volume_slices

__all__ = [
    "plot_time_courses",
    "plot_peak_latencies",
    "plot_temporal_generalization",
    "COLORS",
    "FONT",
    "PALETTE",
    "apply_style",
    "new_figure",
    "style",
    "save_figure",
    "save_figure_with_data",
    "attach_table",
    "figure_table",
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
    "layer_ci",
    "rdm_layer_ci",
    "plot_layer_ci",
    "plot_model_comparison",
    "significance_marker",
    "plot_rdm",
    "plot_mds",
    "mds_embedding",
    "plot_score_histogram",
    "BrainMap",
    "load_map",
    "nilearn_available",
    "plot_map",
    "plot_two_band_map",
    "two_band_colors",
]
