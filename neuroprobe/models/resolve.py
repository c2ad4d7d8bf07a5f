"""The model adapter: any accepted model as the module, its preprocessing and its layer lookup.

:func:`resolve_model` turns a registered model name, a ``torch.nn.Module``, a
:class:`~neuroprobe.models.ModelSpec` or a fitted
:class:`~neuroprobe.transformers.DNNFeatureExtractor` into an :class:`InspectedModel`: the
module in eval mode on its device, the preprocessing that :func:`neuroprobe.models.inputs.
load_images` applies, and ``layer(name)`` through :func:`neuroprobe.models.resolve_layer` (the
registry's names, aliases and errors). The inspection tools (:mod:`neuroprobe.inspect`) and
fine-tuning (:mod:`neuroprobe.models.finetune`) take their network from here.

``InspectedModel`` is a thin view of a ``ModelSpec`` (which it keeps as ``spec``) plus
``layer()`` and ``device``; it is kept as its own class while ``ModelSpec`` is being split out of
the registry (issue 14), and can become ``ModelSpec`` itself once that has ``layer()`` and
``device``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from neuroprobe._utils import resolve_device, seed_from  # noqa: F401 (seed_from re-exported)

__all__ = ["InspectedModel", "require_image_model", "resolve_model", "seed_from"]


@dataclass
class InspectedModel:
    """A network ready for inspection or fine-tuning: the module plus how to feed it.

    Attributes
    ----------
    module : torch.nn.Module
        In eval mode (after :func:`resolve_model`).
    preprocess : callable or None
        One decoded stimulus (a PIL image) -> its input tensor.
    modality : str
        ``"image"``, ``"audio"`` or ``"video"``.
    name : str
    spec : ModelSpec or None
        The registry's spec the fields come from (its layer aliases serve :meth:`layer`).
    preprocess_info : dict
        ``mean`` / ``std`` of the normalisation (for :func:`neuroprobe.models.inputs.to_display`).
    """

    module: torch.nn.Module
    preprocess: object = None
    modality: str = "image"
    name: str = "model"
    spec: object = None
    preprocess_info: dict = field(default_factory=dict)

    def layer(self, name):
        """Return ``(module_name, module)`` for a layer name or alias (shared registry rules)."""
        resolved = _resolve_layer_name(self, name)
        return resolved, dict(self.module.named_modules())[resolved]

    @property
    def device(self):
        """Device of the module's first parameter (cpu when it has none)."""
        for p in self.module.parameters():
            return p.device
        return torch.device("cpu")


def _resolve_layer_name(info, name):
    from neuroprobe.models import resolve_layer

    return resolve_layer(info.spec if info.spec is not None else info.module, name)


def _spec_to_info(spec):
    return InspectedModel(
        module=spec.module,
        preprocess=spec.preprocess,
        modality=spec.modality or "image",
        name=spec.name or type(spec.module).__name__,
        spec=spec,
        preprocess_info=dict(spec.preprocess_info or {}),
    )


def resolve_model(model, weights="DEFAULT", random_state=None, device="cpu"):
    """Return an :class:`InspectedModel` from a name, a module, a ModelSpec or a fitted extractor.

    Parameters
    ----------
    model : str, torch.nn.Module, ModelSpec, DNNFeatureExtractor or InspectedModel
        Names, modules and factories go through :func:`neuroprobe.models.build_model`; a fitted
        ``DNNFeatureExtractor`` contributes its ``model_``.
    weights : str, path or None, default="DEFAULT"
        Weights for ``build_model`` (pretrained by default, as on the CLI; None: seeded random
        weights, warned once per model name).
    random_state : int or None
        Seed of random weights (None: seed 0).
    device : str, torch.device or None
        Where the module runs (None: leave it where it is).

    Returns
    -------
    InspectedModel
    """
    from neuroprobe.models import build_model

    if isinstance(model, InspectedModel):
        info = model
    elif hasattr(model, "transform") and hasattr(model, "get_params"):  # an extractor
        if not hasattr(model, "model_"):
            raise ValueError(
                f"the {type(model).__name__} is not fitted; call fit() first or pass the model"
            )
        return resolve_model(model.model_, device=device)
    else:
        info = _spec_to_info(build_model(model, weights=weights, random_state=random_state))
    if device is not None:
        dev = resolve_device(device)
        if info.device != dev:
            info.module.to(dev)
    info.module.eval()
    return info


def require_image_model(info, method):
    """Raise a clear ``ValueError`` when ``info`` is not an image model."""
    if info.modality != "image":
        raise ValueError(
            f"{method} works on image models; {info.name!r} is a {info.modality} model "
            "(its inputs are not images with rows and columns)"
        )
