"""Figures: each plot returns a Figure that saves as a readable PNG (light checks)."""

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from neuroprobe import plotting

rng = np.random.default_rng(0)
IMAGES = rng.normal(size=(2, 3, 16, 16)).astype(np.float32)


@pytest.mark.parametrize(
    "make",
    [
        lambda: plotting.plot_activation_maps(rng.random((5, 4, 4)), image=IMAGES[0], ncols=3),
        lambda: plotting.plot_saliency(IMAGES, rng.normal(size=(2, 3, 16, 16))),
        lambda: plotting.plot_top_stimuli([IMAGES, IMAGES], values=np.ones((2, 2)),
                                          unit_labels=["c0", "c1"], ids=[["a", "b"]] * 2),
        lambda: plotting.plot_optimal_stimuli(rng.random((2, 3, 8, 8)), rng.random((5, 2))),
        lambda: plotting.plot_receptive_fields(IMAGES, rng.random((2, 4, 4))),
        lambda: plotting.plot_minimal_stimulus(IMAGES[0], IMAGES[1], rng.integers(0, 4, (16, 16))),
        lambda: plotting.plot_lesion([0, 3], [0.1, -0.2]),
        lambda: plotting.plot_training_history(
            {"train_loss": [1, 0.5], "val_loss": [1, 0.7], "val_score": [0.5, 0.8]}),
    ],
)
def test_plots_save_png(make, tmp_path):
    fig = make()
    assert isinstance(fig, Figure)
    path = plotting.save_figure(fig, tmp_path / "sub" / "fig.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        assert img.size[0] > 50 and img.size[1] > 50
    assert [p.name for p in path.parent.iterdir()] == ["fig.png"]  # no temporary file left


def test_to_rgb_image():
    chw = np.zeros((3, 4, 5))
    chw[0] = 2.0
    out = plotting.to_rgb_image(chw)
    assert out.shape == (4, 5, 3) and out.max() == 1.0 and out.min() == 0.0
    assert plotting.to_rgb_image(np.full((4, 4), 255, np.uint8)).max() == 1.0
    with pytest.raises(ValueError, match="channels, rows, cols"):
        plotting.plot_activation_maps(np.zeros((4, 4)))
