"""plot_volume_slices draws each slice of the volume (transposed, origin lower)."""

import numpy as np
import pytest

from neuroprobe import plotting


def test_slices_show_the_volume_planes():
    rng = np.random.default_rng(0)
    data = np.zeros((6, 7, 8))
    data[:, :, [2, 5]] = rng.random((6, 7, 2))
    fig = plotting.plot_volume_slices(data, outline=data > 0.5)
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["slice 2", "slice 5"]  # the non-empty ones
    for ax, s in zip(panels, (2, 5)):
        np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), data[:, :, s].T)
        assert ax.images[0].origin == "lower"
    fig = plotting.plot_volume_slices(data, axis=0, slices=[3])
    np.testing.assert_allclose(np.asarray(fig.axes[0].images[0].get_array()), data[3].T)
    with pytest.raises(ValueError, match="3-D"):
        plotting.plot_volume_slices(np.zeros((3, 3)))
