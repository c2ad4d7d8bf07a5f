"""The embedded demo study: generated stimuli, a small trained network, simulated brains.

``neuroprobe demo`` (or :func:`run_demo`) runs a complete study with no download and no user data:

1. **Stimuli**: :func:`make_shapes` draws 64x64 RGB pictures of four shape categories (disk, ring,
   square, cross) with random position, size, orientation, colours and pixel noise.
2. **Network**: :func:`make_network` is a five-layer CNN (``conv1`` ... ``conv4``, ``fc1``, ``fc2``)
   trained for a few seconds on other generated pictures (:func:`train_network`), so that category
   information rises with depth. It is registered as the model ``"shapes-cnn"``
   (:mod:`neuroprobe.models.shapes_cnn`; ``weights="trained"`` or ``"DEFAULT"``, the default:
   trained as in the demo; ``weights=None``: seeded random weights).
3. **Brains**: :func:`simulate_brain` plants a linear map from the (whitened) principal
   components of ONE layer (:data:`PLANTED_LAYER`) into the voxels of a spherical region of
   interest of a 10x10x10 volume, plus independent noise for each simulated subject; the
   volumes are written as 4-D NIfTI files (:func:`write_brain`) and read back through
   :class:`~neuroprobe.transformers.BrainMasker`.
4. **Study** (:mod:`neuroprobe.demo.study`, a sequence of short steps), through the public API
   only: extract every layer once to an ``.act.h5`` file
   (:class:`~neuroprobe.transformers.DNNFeatureExtractor`), reduce each layer with
   :class:`~neuroprobe.transformers.PCAReducer`, probe the categories per layer
   (:func:`~neuroprobe.probe_layers`), voxelwise encoding per layer with family-wise
   permutation p-values (:class:`~neuroprobe.estimators.VoxelwiseEncoder` inside
   :class:`~neuroprobe.estimators.PermutationTest`), RSA per layer against the subjects' RDMs with a
   noise ceiling (:class:`~neuroprobe.estimators.RSAScorer`, :func:`~neuroprobe.rsa.noise_ceiling`),
   top stimuli and saliency maps of a few units (:mod:`neuroprobe.inspect`).
5. **Report**: Markdown and HTML with PNG figures (:mod:`neuroprobe.report`; the sections are in
   ``neuroprobe.demo._report``), and a summary naming the layer the study recovered, which must be
   the planted one.

Layout: ``data.py`` (stimuli, simulated brains), ``study.py`` (:func:`run_demo`), ``_report.py``
(report sections); the network lives in :mod:`neuroprobe.models.shapes_cnn`.
"""

from __future__ import annotations

from neuroprobe.demo.data import BrainSimulation, simulate_brain, write_brain
from neuroprobe.demo.study import PLANTED_LAYER, run_demo
from neuroprobe.models.shapes_cnn import (
    CATEGORIES,
    IMAGE_SIZE,
    LAYERS,
    ImageStandardizer,
    make_network,
    make_shapes,
    shapes_cnn,
    train_network,
)

__all__ = [
    "CATEGORIES",
    "IMAGE_SIZE",
    "LAYERS",
    "PLANTED_LAYER",
    "BrainSimulation",
    "ImageStandardizer",
    "make_shapes",
    "make_network",
    "train_network",
    "shapes_cnn",
    "simulate_brain",
    "write_brain",
    "run_demo",
]
