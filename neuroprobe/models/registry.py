"""Model registry: a name (or a module) -> a ready-to-run :class:`ModelSpec`.

INTERFACE (stable; other modules build on it):

``ModelSpec``
    module : torch.nn.Module   -- the network, in eval() mode, weights loaded
    preprocess : callable      -- one *decoded* stimulus -> input tensor without batch dimension
                                  (image: PIL.Image RGB -> float tensor (3, H, W);
                                   audio: (waveform float32 1-D numpy, sample_rate) -> tensor;
                                   video: (frames uint8 (T, H, W, 3), fps) -> tensor)
    modality : str             -- "image", "audio" or "video"
    name : str
    weights_id : str           -- identity of the weights (enum name, file sha256, "random(seed=0)")
    aliases : dict             -- DNNBrain-style alias -> module name (e.g. "conv5" -> "features.10")
    collate : callable         -- list of preprocessed tensors -> batch (default: torch.stack)
    preprocess_info : dict     -- JSON-able description of the preprocessing (stored in .act.h5)

``register_model(name, factory, modality="image")``
    ``factory(weights, random_state) -> ModelSpec``. Audio and video models (VGGish, r3d_18, x3d_xs ...)
    register here, so :class:`~neuroprobe.transformers.DNNFeatureExtractor` treats them like images.

``build_model(model, weights=None, random_state=None, preprocess=None) -> ModelSpec``
    ``model`` is a registered name, any torchvision model name, an ``nn.Module`` or a factory.
"""
