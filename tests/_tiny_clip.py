"""A tiny OpenCLIP architecture registered for the tests (seconds on 2 cores, no weights)."""

import json

TINY_CLIP = "np-tiny-clip"
TINY_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def register_tiny_clip(folder):
    """Write the config into ``folder`` and add it to OpenCLIP's model configs; returns the name."""
    import open_clip

    if TINY_CLIP not in open_clip.list_models():
        path = folder / f"{TINY_CLIP}.json"
        path.write_text(json.dumps(TINY_CONFIG))
        open_clip.add_model_config(path)
    return TINY_CLIP
