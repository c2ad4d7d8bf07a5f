"""Inspection subcommands: ``topstim``, ``saliency``, ``optstim``, ``rf``, ``minstim``, ``ablate``,
``finetune`` and ``view``.

Each writes PNG figures and the numbers (CSV and/or HDF5) into the ``--out`` folder.
"""

from __future__ import annotations

from pathlib import Path

from neuroprobe.cli.main import CLIError, add_command, load_stimuli, weights_argument
from neuroprobe.io.arrays import write_h5, write_table

_MAX_FIGURES = 8

EPILOGS = {
    "topstim": """example:
  neuroprobe topstim --model alexnet --weights none --layer conv5 --channels 0 1 2 \\
      --stimuli stims.csv --k 6 --out topstim/
  neuroprobe topstim --activations acts.act.h5 --layer conv5 --stimuli stims.csv --out topstim/
""",
    "saliency": """example:
  neuroprobe saliency --model alexnet --weights none --layer fc3 --channels 3 \\
      --stimuli images/ --method guided --out saliency/
""",
    "optstim": """example:
  neuroprobe optstim --model alexnet --weights none --layer conv5 --channels 0 5 \\
      --n-iter 128 --tv 0.5 --out optstim/
""",
    "rf": """example:
  neuroprobe rf --model alexnet --weights none --layer conv3 --channels 7 \\
      --stimuli images/ --window 24 --stride 8 --out rf/
""",
    "minstim": """example:
  neuroprobe minstim --model alexnet --weights none --layer conv5 --channels 12 \\
      --stimuli images/ --n-segments 40 --threshold 0.9 --out minstim/
""",
    "ablate": """example:
  neuroprobe ablate --model alexnet --weights none --layer conv5 --channels 0 1 2 3 \\
      --stimuli stims.csv --output-layer fc2 --out lesion/
""",
    "finetune": """example:
  neuroprobe finetune --model resnet18 --weights DEFAULT --stimuli stims.csv --target label \\
      --trainable layer4 --epochs 10 --out finetuned/
  # then: neuroprobe extract --model resnet18 --weights finetuned/finetuned.pt ...
""",
    "view": """example:
  neuroprobe view --model alexnet --weights none --layer conv1 --stimuli cat.png --out view/
""",
}

HELPS = {
    "topstim": "the stimuli that drive chosen units most (streamed top-k)",
    "saliency": "saliency maps (vanilla, guided, smoothgrad, gradient x input)",
    "optstim": "synthesise optimal stimuli by activation maximisation",
    "rf": "empirical receptive fields: occlusion and upsampled activation maps",
    "minstim": "minimal stimuli: the fewest image parcels that keep a unit's response",
    "ablate": "lesion study: ablate channels one at a time and measure the change",
    "finetune": "fine-tune a network on labelled stimuli and save a checkpoint",
    "view": "channel activation maps of stimuli (DNNBrain dnn_view)",
}


def _add_model(p, required=True, layer=True):
    p.add_argument("--model", required=required, help="torchvision or registered model name")
    p.add_argument("--weights", default="DEFAULT",
                   help="DEFAULT, a weights enum name, a checkpoint path, or none (random weights "
                   "seeded by --seed); default: DEFAULT")
    if layer:
        p.add_argument("--layer", required=True, help="module name or alias (conv5)")
        p.add_argument("--channels", type=int, nargs="+", default=None,
                       help="channel indices (default depends on the command)")


def _add_metric(p):
    p.add_argument("--metric", choices=["mean", "max"], default="mean",
                   help="a channel's value per image: the mean (default) or the max of its map "
                   "over space (the same default in every inspection command and function; "
                   "single units given with --unit are not affected)")


def _parser(subparsers, name, func, **model):
    """The parser of an inspection command: --model/--weights (and --layer/--channels, see
    :func:`_add_model`), the common flags, and ``func`` to run."""
    p = add_command(
        subparsers, name, func, {},
        help=HELPS[name],
        description=HELPS[name][0].upper() + HELPS[name][1:] + ". Writes PNG figures and the "
        "numbers (CSV/HDF5) into --out.",
        epilog=EPILOGS[name],
    )
    _add_model(p, **model)
    return p


def _add_topstim(subparsers):
    p = _parser(subparsers, "topstim", run_topstim, required=False)
    p.add_argument("--activations", help=".act.h5 file to read instead of running --model")
    p.add_argument("--stimuli", required=True, help="stimulus CSV, folder or DNNBrain .stim.csv")
    p.add_argument("--k", type=int, default=5, help="stimuli per unit (default: 5)")
    _add_metric(p)
    p.add_argument("--batch-size", type=int, default=32)


def _add_saliency(subparsers):
    p = _parser(subparsers, "saliency", run_saliency)
    p.add_argument("--stimuli", required=True, help="image file, folder or stimulus CSV")
    p.add_argument("--method", choices=["vanilla", "guided", "smoothgrad", "gradient_x_input"],
                   default="vanilla")
    p.add_argument("--unit", type=int, nargs=2, metavar=("ROW", "COL"), default=None,
                   help="one position of the channel map instead of the channel mean")
    p.add_argument("--n-samples", type=int, default=25, help="noisy copies (smoothgrad)")
    p.add_argument("--batch-size", type=int, default=16)
    _add_metric(p)


def _add_optstim(subparsers):
    p = _parser(subparsers, "optstim", run_optstim)
    p.add_argument("--n-iter", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--tv", type=float, default=0.0, help="total-variation weight")
    p.add_argument("--l2", type=float, default=0.0, help="L2 weight")
    p.add_argument("--jitter", type=int, default=4, help="random shift in pixels per step")
    p.add_argument("--parameterization", choices=["fourier", "pixel"], default="fourier")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="image size (default: the model's input size)")
    _add_metric(p)


def _add_rf(subparsers):
    p = _parser(subparsers, "rf", run_rf)
    p.add_argument("--stimuli", required=True)
    p.add_argument("--method", choices=["occlusion", "upsampling", "both"], default="both")
    p.add_argument("--window", type=int, default=16, help="occluder size in pixels")
    p.add_argument("--stride", type=int, default=8, help="occluder step in pixels")
    p.add_argument("--batch-size", type=int, default=64,
                   help="occluded copies per forward pass; one pass serves every channel")
    _add_metric(p)


def _add_minstim(subparsers):
    p = _parser(subparsers, "minstim", run_minstim)
    p.add_argument("--stimuli", required=True)
    p.add_argument("--n-segments", type=int, default=30)
    p.add_argument("--parcellation", choices=["auto", "slic", "grid"], default="auto")
    p.add_argument("--threshold", type=float, default=0.9,
                   help="fraction of the response to keep (default: 0.9)")
    p.add_argument("--batch-size", type=int, default=64)
    _add_metric(p)


def _add_ablate(subparsers):
    p = _parser(subparsers, "ablate", run_ablate)
    p.add_argument("--stimuli", required=True)
    p.add_argument("--output-layer", default=None,
                   help="layer whose change is measured (default: the network's output)")
    p.add_argument("--batch-size", type=int, default=32)


def _add_finetune(subparsers):
    p = _parser(subparsers, "finetune", run_finetune, layer=False)
    p.add_argument("--stimuli", required=True, help="stimulus CSV with a label/value column")
    p.add_argument("--target", default="label", help="column to learn (default: label)")
    p.add_argument("--task", choices=["auto", "classification", "regression"], default="auto")
    p.add_argument("--trainable", nargs="+", default=["head"],
                   help="head, all, or layer names that train besides the head")
    p.add_argument("--head", default=None, help="layer to replace (default: the last Linear)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--validation-fraction", type=float, default=0.2)
    p.add_argument("--patience", type=int, default=3)


def _add_view(subparsers):
    p = _parser(subparsers, "view", run_view)
    p.add_argument("--stimuli", required=True)


def register(subparsers):
    """Add the inspection subcommands."""
    for add in (_add_topstim, _add_saliency, _add_optstim, _add_rf, _add_minstim, _add_ablate,
                _add_finetune, _add_view):
        add(subparsers)


# --------------------------------------------------------------------------------------------
# helpers


_weights = weights_argument
_stimuli = load_stimuli


def _model(args):
    from neuroprobe.models.resolve import resolve_model

    if not args.model:
        raise CLIError("--model is required")
    return resolve_model(args.model, weights=_weights(args.weights), random_state=args.seed,
                         device=args.device)


def _out(args):
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _channels(args, default=(0,)):
    return list(args.channels) if args.channels else list(default)


_write_csv = write_table  # one writer per format: neuroprobe.io.arrays
_write_h5 = write_h5


def _save(fig, path):
    from neuroprobe.plotting import save_figure

    save_figure(fig, path)
    fig.clear()
    return path


def _inputs(args):
    """``--out`` folder, model, stimuli and their preprocessed images of a command."""
    from neuroprobe.models.inputs import load_images

    out = _out(args)
    info = _model(args)
    stimuli = _stimuli(args.stimuli)
    return out, info, stimuli, load_images(stimuli, info)


def _done(args, out, written):
    if not args.quiet:
        print(f"wrote {len(written)} file(s) into {out}: " + ", ".join(p.name for p in written))
    return 0


def _display(x, info):
    from neuroprobe.models.inputs import to_display

    return to_display(x, info)


def _target(args, channel):
    if getattr(args, "unit", None):
        return (args.layer, channel, args.unit[0], args.unit[1])
    return (args.layer, channel)


# --------------------------------------------------------------------------------------------
# commands


def run_topstim(args):
    import numpy as np

    from neuroprobe.inspect import top_stimuli
    from neuroprobe.models.inputs import load_images
    from neuroprobe.models.resolve import resolve_model
    from neuroprobe.plotting import plot_top_stimuli

    out = _out(args)
    stimuli = _stimuli(args.stimuli)
    if args.activations:
        source = args.activations
        info = resolve_model(args.model, weights=_weights(args.weights),
                             random_state=args.seed) if args.model else None
    else:
        from neuroprobe.transformers import DNNFeatureExtractor

        if not args.model:
            raise CLIError("give --model (or --activations)")
        source = DNNFeatureExtractor(args.model, weights=_weights(args.weights),
                                     layers=[args.layer], batch_size=args.batch_size,
                                     device=args.device, random_state=args.seed,
                                     verbose=0 if args.quiet else 1).fit(stimuli[:1])
        info = resolve_model(source, device=None)
    res = top_stimuli(source, stimuli, args.layer, units=args.channels, k=args.k,
                      metric=args.metric, chunk_size=max(args.batch_size * 4, 64))
    written = res.save(out)
    shown = list(range(min(len(res.units), 16)))
    picks = np.unique(res.indices[shown])
    if info is not None:
        disp = _display(load_images(stimuli[picks], info), info)
    else:
        disp = [np.asarray(stimuli.load(int(i)).convert("RGB")) for i in picks]
    lookup = {int(i): k for k, i in enumerate(picks)}
    grid = [[disp[lookup[int(i)]] for i in res.indices[u]] for u in shown]
    fig = plot_top_stimuli(grid, res.values[shown],
                           [f"{args.layer}:{res.units[u]} ({res.metric})" for u in shown],
                           res.ids[shown])
    written.append(_save(fig, out / "top_stimuli.png"))
    return _done(args, out, written)


def run_saliency(args):
    from neuroprobe.inspect import saliency
    from neuroprobe.plotting import plot_saliency

    out, info, stimuli, x = _inputs(args)
    channels = _channels(args)
    # one forward pass per batch serves every channel (one backward pass per channel)
    res = saliency(info, x, [_target(args, c) for c in channels], method=args.method,
                   n_samples=args.n_samples, batch_size=args.batch_size, metric=args.metric,
                   random_state=args.seed, device=args.device)
    written = []
    for k, c in enumerate(channels):
        maps = res.maps[k]
        label = res.targets[k].label + ("" if res.targets[k].is_unit else f" ({args.metric})")
        fig = plot_saliency(res.images[:_MAX_FIGURES], maps[:_MAX_FIGURES],
                            titles=list(stimuli.ids[:_MAX_FIGURES]),
                            target=f"{label}, {args.method}")
        written.append(_save(fig, out / f"saliency_{args.method}_c{c}.png"))
    written += res.save(out, stim_ids=stimuli.ids, attrs={"layer": args.layer})
    return _done(args, out, written)


def run_optstim(args):
    from neuroprobe.inspect import optimal_stimulus
    from neuroprobe.plotting import plot_optimal_stimuli

    out = _out(args)
    info = _model(args)
    channels = _channels(args)
    shape = (3, *args.size) if args.size else None
    res = optimal_stimulus(info, [(args.layer, c) for c in channels], n_iter=args.n_iter,
                           lr=args.lr, input_shape=shape, parameterization=args.parameterization,
                           l2=args.l2, tv=args.tv, jitter=args.jitter, metric=args.metric,
                           random_state=args.seed, device=args.device)
    labels = [f"{args.layer}:c{c}" for c in channels]
    fig = plot_optimal_stimuli(res.images, res.trace,
                               titles=[f"{lab} ({args.metric})" for lab in labels])
    written = [_save(fig, out / "optimal_stimuli.png"),
               *res.save(out, {"layer": args.layer, "metric": args.metric})]
    return _done(args, out, written)


def run_rf(args):
    from neuroprobe.inspect import occlusion_map, upsampling_map
    from neuroprobe.plotting import plot_receptive_fields

    out, info, stimuli, x = _inputs(args)
    disp = _display(x[:_MAX_FIGURES], info)
    methods = ["occlusion", "upsampling"] if args.method == "both" else [args.method]
    channels = _channels(args)
    targets = [(args.layer, c) for c in channels]
    datasets, written = {"stim_ids": stimuli.ids}, []
    for method in methods:
        # one pass over the (occluded) images serves every channel
        if method == "occlusion":
            maps = occlusion_map(info, x, targets, window=args.window, stride=args.stride,
                                 batch_size=args.batch_size, metric=args.metric,
                                 device=args.device)
        else:
            maps = upsampling_map(info, x, targets, device=args.device)
        for k, c in enumerate(channels):
            datasets[f"{method}/c{c}"] = maps[k]
            what = f"occlusion c{c} ({args.metric})" if method == "occlusion" else f"{method} c{c}"
            fig = plot_receptive_fields(disp, maps[k][:_MAX_FIGURES],
                                        titles=[f"{what} {i}" for i in
                                                stimuli.ids[:_MAX_FIGURES]])
            written.append(_save(fig, out / f"rf_{method}_c{c}.png"))
    written.append(_write_h5(out / "receptive_fields.h5", datasets,
                             {"layer": args.layer, "window": args.window, "stride": args.stride,
                              "metric": args.metric}))
    return _done(args, out, written)


def run_minstim(args):
    import numpy as np

    from neuroprobe.inspect import minimal_stimulus
    from neuroprobe.plotting import plot_minimal_stimulus

    out, info, stimuli, x = _inputs(args)
    channels = _channels(args)
    rows, written = [], []
    masks = {c: [] for c in channels}
    kwargs = dict(n_segments=args.n_segments, method=args.parcellation,
                  threshold=args.threshold, batch_size=args.batch_size, metric=args.metric,
                  device=args.device)

    def one(i, c):
        try:
            return minimal_stimulus(info, x[i], (args.layer, c), **kwargs)
        except ValueError as exc:
            if "positive response" not in str(exc):
                raise
            return None

    for i, sid in enumerate(stimuli.ids):
        try:  # every channel from shared forward passes
            results = minimal_stimulus(info, x[i], [(args.layer, c) for c in channels], **kwargs)
        except ValueError as exc:
            if "positive response" not in str(exc):
                raise
            results = [one(i, c) for c in channels]  # some channel does not respond
        for c, res in zip(channels, results):
            if res is None:
                rows.append({"stim_id": sid, "channel": c, "metric": args.metric,
                             "n_parcels": "", "n_kept": 0, "original": "", "response": "",
                             "note": "no positive response"})
                masks[c].append(np.zeros(x.shape[-2:], bool))
                continue
            rows.append({"stim_id": sid, "channel": c, "metric": args.metric,
                         "n_parcels": int(res.segments.max()) + 1, "n_kept": len(res.kept),
                         "original": res.original, "response": res.response, "note": ""})
            masks[c].append(res.mask)
            if i < _MAX_FIGURES:
                disp = _display(np.stack([x[i].numpy(), res.input]), info)
                fig = plot_minimal_stimulus(disp[0], disp[1], res.segments,
                                            title=f"{sid}: {args.layer}:c{c} ({args.metric})")
                written.append(_save(fig, out / f"minimal_{i:03d}_c{c}.png"))
    written.append(_write_csv(out / "minimal_stimuli.csv", rows))
    written.append(_write_h5(out / "minimal_stimuli.h5",
                             {**{f"masks/c{c}": np.stack(masks[c]) for c in channels},
                              "stim_ids": stimuli.ids, "channels": np.asarray(channels)},
                             {"layer": args.layer, "metric": args.metric}))
    return _done(args, out, written)


def run_ablate(args):
    from neuroprobe.inspect import lesion_study
    from neuroprobe.models.inputs import load_images
    from neuroprobe.plotting import plot_lesion

    out = _out(args)
    info = _model(args)
    x = load_images(_stimuli(args.stimuli), info)
    res = lesion_study(info, x, args.layer, channels=args.channels,
                       output_layer=args.output_layer, batch_size=args.batch_size,
                       device=args.device, verbose=0 if args.quiet else 1)
    fig = plot_lesion(res.channels, res.delta, ylabel="relative output change",
                      title=f"ablating {args.layer} channels")
    written = [*res.save(out), _save(fig, out / "lesion.png")]
    return _done(args, out, written)


def run_finetune(args):
    from neuroprobe.models.finetune import finetune
    from neuroprobe.plotting import plot_training_history

    out = _out(args)
    stimuli = _stimuli(args.stimuli)
    trainable = args.trainable[0] if args.trainable in (["head"], ["all"]) else args.trainable
    res = finetune(args.model, stimuli, target=args.target, task=args.task, head=args.head,
                   trainable=trainable, epochs=args.epochs, batch_size=args.batch_size,
                   lr=args.lr, validation_fraction=args.validation_fraction,
                   patience=args.patience, checkpoint=out / "finetuned.pt",
                   weights=_weights(args.weights), random_state=args.seed, device=args.device,
                   verbose=0 if args.quiet else 1)
    hist = res.history
    rows = [{"epoch": e + 1, "train_loss": hist["train_loss"][e], "val_loss": hist["val_loss"][e],
             "val_score": hist["val_score"][e]} for e in range(len(hist["train_loss"]))]
    written = [res.checkpoint, _write_csv(out / "history.csv", rows),
               _save(plot_training_history(hist, title=f"best epoch {res.best_epoch}"),
                     out / "history.png")]
    return _done(args, out, written)


def run_view(args):
    import torch

    from neuroprobe.models.hooks import capture
    from neuroprobe.plotting import plot_activation_maps

    out, info, stimuli, x = _inputs(args)
    module_name, _ = info.layer(args.layer)
    acts = []
    with torch.no_grad(), capture(info.module, [module_name]) as cap:
        for s in range(0, len(x), 16):
            cap.run(x[s : s + 16].to(info.device))
            acts.append(cap[module_name].cpu())
    acts = torch.cat(acts).numpy()
    if acts.ndim != 4:
        raise CLIError(f"layer {args.layer!r} has output shape {acts.shape[1:]}, not "
                       "(channels, rows, cols) maps")
    disp = _display(x[:_MAX_FIGURES], info)
    written = []
    for i in range(min(len(x), _MAX_FIGURES)):
        fig = plot_activation_maps(acts[i], channels=args.channels, image=disp[i],
                                   title=f"{stimuli.ids[i]}: {args.layer}")
        written.append(_save(fig, out / f"view_{i:03d}.png"))
    written.append(_write_h5(out / "activations.h5", {"activations": acts,
                                                      "stim_ids": stimuli.ids},
                             {"layer": args.layer}))
    return _done(args, out, written)
