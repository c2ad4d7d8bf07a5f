"""``neuroprobe extract``, ``neuroprobe layers`` and ``neuroprobe info``."""

from __future__ import annotations

import json
import os

from neuroprobe.cli.main import (  # noqa: F401 (load_stimuli re-exported)
    CLIError,
    add_command,
    add_common_arguments,
    load_stimuli,
    weights_argument,
)

EXTRACT_EPILOG = """example:
  neuroprobe extract --model alexnet --weights DEFAULT --layers conv5 fc2 \\
      --stimuli stims.csv --out acts.act.h5 --pooling max --batch-size 32

--stimuli takes a stimulus CSV (columns stim_id, path, ...), a folder of files or a DNNBrain
.stim.csv. --weights takes DEFAULT, a torchvision weights enum name (IMAGENET1K_V1), a checkpoint
path, or 'none' for random weights seeded by --seed. An interrupted run resumes when rerun with the
same arguments (and unchanged stimulus files; a changed one makes it start over). One extraction
per --out at a time. Until it completes, the file is OUT.partial and no command reads it
('neuroprobe info OUT.partial' shows how far it got).

image and caption embeddings of the same stimuli (one OpenCLIP model, both towers):
  neuroprobe extract --model open_clip:ViT-B-32/laion2b_s34b_b79k --layers head \
      --stimuli stims.csv --captions stims.csv:caption --out clip.act.h5
  # layers image:head and text:head, rows aligned by stim_id; --text-layers picks text-tower
  # layers (default head), --normalize L2-normalises the embeddings (CLIPEmbedder)
--captions takes FILE.csv:COLUMN: a column of the --stimuli CSV, or of another CSV whose stim_id
column names the same stimuli (rows are matched by it).
"""

LAYERS_EPILOG = """example:
  neuroprobe layers --model alexnet
  neuroprobe layers --model resnet18 --input-shape 3 64 64
"""

INFO_EPILOG = """examples:
  neuroprobe info acts.act.h5
  neuroprobe info acts.act.h5.partial
  neuroprobe info saliency/saliency.h5
"""


_COMMANDS = {  # help, description and epilog of each subcommand
    "extract": dict(
        help="extract layer activations of a network into an .act.h5 file",
        description="Run a network on stimuli and stream the activations of layers into an .act.h5 "
        "file (written under a temporary name, resumable).",
        epilog=EXTRACT_EPILOG,
    ),
    "layers": dict(
        help="list the layers of a model with their output shapes and aliases",
        description="List the capturable layers (module names) of a model, their output shapes for "
        "the model's input size and their DNNBrain aliases.",
        epilog=LAYERS_EPILOG,
    ),
    "info": dict(
        help="describe a neuroprobe file (.act.h5, .partial, .rdm.h5, .h5, .npy, .npz)",
        description="Print the metadata and contents of a neuroprobe file: activation files "
        "(also unfinished ones: rows written so far), RDM files, and any HDF5, .npy or .npz file "
        "neuroprobe writes (saliency maps, optimal stimuli, ROI/HRF tables, reduce output).",
        epilog=INFO_EPILOG,
    ),
}


def register(subparsers):
    """Add the ``extract``, ``layers`` and ``info`` subcommands."""
    p = add_command(subparsers, "extract", run_extract, dict(out=True, out_required=True),
                    **_COMMANDS["extract"])
    p.add_argument("--model", required=True, help="torchvision or registered model name")
    p.add_argument(
        "--weights",
        default="DEFAULT",
        help="DEFAULT, a weights enum name, a checkpoint path, or none (default: DEFAULT)",
    )
    p.add_argument("--layers", nargs="+", required=True, help="module names or aliases (conv5 fc2)")
    p.add_argument("--stimuli", required=True, help="stimulus CSV, folder or DNNBrain .stim.csv")
    p.add_argument("--pooling", choices=["max", "mean", "median", "l1", "l2"], default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--no-resume", action="store_true", help="start over even if a partial file exists"
    )
    p.add_argument("--captions", metavar="FILE.csv:COLUMN", default=None,
                   help="with an open_clip: model, also embed each stimulus's caption with the "
                   "text tower (layers image:<layer> and text:<layer> in one file)")
    p.add_argument("--text-layers", nargs="+", default=None,
                   help="text-tower layers with --captions (default: head, the embedding)")
    p.add_argument("--normalize", action="store_true",
                   help="with --captions: L2-normalise the embedding rows (head)")

    p = add_command(subparsers, "layers", **_COMMANDS["layers"])
    p.add_argument("--model", required=True)
    p.add_argument("--weights", default="none", help="weights to load (default: none = random)")
    p.add_argument(
        "--input-shape", type=int, nargs="+", default=None, help="C H W (default: crop size)"
    )
    p.add_argument("--nodes", action="store_true",
                   help="also list torch.fx graph nodes (layers 'fx:<node>')")
    p.set_defaults(func=run_layers)

    p = add_command(subparsers, "info", **_COMMANDS["info"])
    p.add_argument("file")
    p.set_defaults(func=run_info)


_weights = weights_argument



def run_extract(args):
    from neuroprobe.transformers.extraction import DNNFeatureExtractor

    if args.captions is None and (args.text_layers or args.normalize):
        raise CLIError("--text-layers and --normalize apply to --captions (image and caption "
                       "embeddings of an open_clip: model)")
    stimuli = load_stimuli(args.stimuli)
    if args.captions is not None:
        return _extract_captions(args, stimuli)
    extractor = DNNFeatureExtractor(
        args.model,
        weights=_weights(args.weights),
        layers=list(args.layers),
        pooling=args.pooling,
        batch_size=args.batch_size,
        device=args.device,
        random_state=args.seed,
        verbose=0 if args.quiet else 1,
    )
    path = extractor.extract_to_file(stimuli, args.out, resume=not args.no_resume)
    if not args.quiet:
        print(f"wrote {path} ({len(stimuli)} stimuli, layers {', '.join(args.layers)})")
    return 0


def run_layers(args):
    from neuroprobe.models.registry import build_model, list_layers, quiet_random_weights

    with quiet_random_weights():  # shapes and names only: random weights are fine here
        spec = build_model(args.model, weights=_weights(args.weights), random_state=0)
    shape = tuple(args.input_shape) if args.input_shape else None
    layers = list_layers(spec, input_shape=shape, nodes=getattr(args, "nodes", False))
    by_module = {}
    for alias, module in spec.aliases.items():
        if alias != module:
            by_module.setdefault(module, []).append(alias)
    width = max(len(name) for name, _ in layers)
    print(f"{'layer':<{width}}  {'output shape':<18}  aliases")
    for name, out_shape in layers:
        text = "not called" if out_shape is None else json.dumps(list(out_shape))
        print(f"{name:<{width}}  {text:<18}  {' '.join(by_module.get(name, []))}")
    from neuroprobe.models.tokens import pads_to_set

    if pads_to_set(spec):  # token_pooling="none" of a text model: the axis depends on the set
        n = shape[0] if shape else spec.preprocess_info["input_shape"][0]
        print(f"token axis (last axis of the token layers and of token_mask): the longest "
              f"tokenised text of the stimulus set (shown here for a dummy input of {n} tokens)")
    return 0


def run_info(args):
    from neuroprobe.io import describe

    if not os.path.exists(args.file):
        raise CLIError(f"{args.file!r}: no such file")
    print(describe(args.file))
    return 0


def _caption_stimuli(stimuli, spec):
    """``(stimuli with the caption column, column name)`` of ``--captions FILE.csv:COLUMN``."""
    import numpy as np

    from neuroprobe.cli.main import from_io
    from neuroprobe.io.arrays import read_column, split_spec
    from neuroprobe.stimuli import StimulusSet

    path, column = split_spec(spec)
    if column is None:
        raise CLIError(f"--captions {spec!r}: give FILE.csv:COLUMN (the column of captions)")
    texts = from_io(read_column, spec, list(stimuli.ids), "--captions", numeric=False)
    if len(texts) != len(stimuli):
        raise CLIError(f"--captions {spec}: {len(texts)} captions for {len(stimuli)} stimuli")
    if column in stimuli.columns and np.array_equal(
            np.asarray(stimuli.column(column)).astype(str), texts.astype(str)):
        return stimuli, column
    if stimuli.paths is None:
        raise CLIError("--captions needs stimulus files (a CSV or folder of images)")
    attributes = {k: v for k, v in stimuli.attributes.items() if k != column}
    attributes[column] = texts.astype(str)
    return StimulusSet(list(stimuli.paths), ids=list(stimuli.ids), attributes=attributes,
                       modality=stimuli.modality, check_files=False), column


def _extract_captions(args, stimuli):
    """``extract --captions``: CLIPEmbedder's image and text layers in one .act.h5."""
    from neuroprobe.transformers.multimodal import CLIPEmbedder

    if not str(args.model).lower().startswith("open_clip:"):
        raise CLIError(f"--captions embeds captions with the text tower of an OpenCLIP model; "
                       f"--model {args.model!r} is not one (give open_clip:<architecture>/<tag>)")
    stimuli, column = _caption_stimuli(stimuli, args.captions)
    embedder = CLIPEmbedder(
        args.model, weights=_weights(args.weights), text_column=column,
        image_layers=list(args.layers), text_layers=list(args.text_layers or ["head"]),
        normalize=args.normalize, pooling=args.pooling, batch_size=args.batch_size,
        device=args.device, random_state=args.seed)
    path = embedder.extract_to_file(stimuli, args.out, resume=not args.no_resume)
    if not args.quiet:
        layers = [f"image:{la}" for la in args.layers] + [
            f"text:{la}" for la in (args.text_layers or ["head"])]
        print(f"wrote {path} ({len(stimuli)} stimuli with captions from {args.captions}, "
              f"layers {', '.join(layers)})")
    return 0
