"""Fine-tuning: train a network on a labelled stimulus set and save a loadable checkpoint.

The checkpoint is a dict with ``state_dict`` (the whole network, new head included), ``num_classes``
(the head's output size), ``head`` (its module name), ``classes``, ``task`` and ``model``; only
tensors, numbers and strings, so ``torch.load(..., weights_only=True)`` reads it.
``build_model(name, weights=path)`` and ``DNNFeatureExtractor(name, weights=path)`` build a
torchvision network with ``num_classes`` outputs and load it; for a user module, build the module
with the same head and pass ``weights=path``.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neuroprobe._utils import resolve_device
from neuroprobe.models.inputs import load_images
from neuroprobe.models.resolve import resolve_model, seed_from
from neuroprobe.models.weights import seeded

__all__ = ["FinetuneResult", "finetune", "replace_head", "save_checkpoint"]


@dataclasses.dataclass
class FinetuneResult:
    """Result of :func:`finetune`.

    Attributes
    ----------
    module : torch.nn.Module
        The fine-tuned network (best validation epoch), in eval mode.
    spec : ModelSpec
        The network with the model's preprocessing (usable wherever a model is accepted).
    history : dict of str -> list of float
        Per epoch: ``train_loss``, ``val_loss``, ``val_score`` (accuracy or R^2; NaN without a
        validation split).
    best_epoch : int
        Epoch (from 1) whose weights were kept.
    checkpoint : pathlib.Path or None
    classes : ndarray or None
        Class labels in output order (classification).
    task : str
    head : str
        Module name of the replaced head.
    """

    module: nn.Module
    spec: object
    history: dict
    best_epoch: int
    checkpoint: Path | None
    classes: np.ndarray | None
    task: str
    head: str


def _last_linear(module):
    name = None
    for n, m in module.named_modules():
        if isinstance(m, nn.Linear):
            name = n
    return name


def replace_head(module, n_outputs, head=None):
    """Replace the ``nn.Linear`` head of ``module`` by a new one with ``n_outputs`` outputs.

    Parameters
    ----------
    module : torch.nn.Module
        Modified in place.
    n_outputs : int
    head : str, optional
        Module name of the layer to replace (default: the last ``nn.Linear``).

    Returns
    -------
    str
        The head's module name.
    """
    name = head or _last_linear(module)
    if name is None:
        raise ValueError(
            f"{type(module).__name__} has no nn.Linear layer to replace; pass head='<module name>'"
        )
    modules = dict(module.named_modules())
    if name not in modules:
        from neuroprobe.models import resolve_layer

        name = resolve_layer(module, name)
    old = modules[name]
    in_features = getattr(old, "in_features", None)
    if in_features is None:
        raise ValueError(
            f"head {name!r} is a {type(old).__name__}; only an nn.Linear head can be replaced"
        )
    parent_name, _, child = name.rpartition(".")
    parent = module.get_submodule(parent_name) if parent_name else module
    new = nn.Linear(in_features, int(n_outputs), bias=old.bias is not None)
    new.to(old.weight.device)
    setattr(parent, child, new)
    return name


def _targets(stimuli, y, target, task):
    if y is None:
        if not hasattr(stimuli, "column"):
            raise ValueError(
                "give y, or a StimulusSet whose column "
                f"{target!r} holds the labels or values to learn"
            )
        y = stimuli.column(target)
    y = np.asarray(y)
    if task == "auto":
        task = "regression" if y.dtype.kind == "f" else "classification"
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'auto', 'classification' or 'regression', got {task!r}")
    if task == "classification":
        if y.ndim != 1:
            raise ValueError(f"classification labels must be 1-D, got shape {y.shape}")
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"need at least two classes, got {classes.tolist()}")
        return task, torch.from_numpy(codes.astype(np.int64)), classes, len(classes)
    values = y.astype(np.float32)
    if values.ndim == 1:
        values = values[:, None]
    if not np.all(np.isfinite(values)):
        from neuroprobe._utils import check_finite

        check_finite(values, "y")
    return task, torch.from_numpy(values), None, values.shape[1]


def _split(n, y, task, fraction, random_state):
    if not fraction:
        return np.arange(n), np.arange(0)
    from sklearn.model_selection import train_test_split

    stratify = y.numpy() if task == "classification" else None
    try:
        train, val = train_test_split(np.arange(n), test_size=fraction, stratify=stratify,
                                      random_state=random_state)
    except ValueError:  # too few examples per class to stratify
        train, val = train_test_split(np.arange(n), test_size=fraction,
                                      random_state=random_state)
    return np.sort(train), np.sort(val)


def _trainable_modules(module, spec, trainable, head):
    if trainable == "all":
        return [module]
    names = [head]
    if trainable not in ("head", None):
        if isinstance(trainable, str):
            trainable = [trainable]
        from neuroprobe.models import resolve_layer

        names += [resolve_layer(spec, layer) for layer in trainable]
    modules = dict(module.named_modules())
    return [modules[n] for n in dict.fromkeys(names)]


def _evaluate(module, x, y, task, loss_fn, batch_size, dev):
    module.eval()
    losses, preds = [], []
    with torch.no_grad():
        for s in range(0, len(x), batch_size):
            out = module(x[s : s + batch_size].to(dev))
            losses.append(float(loss_fn(out, y[s : s + batch_size].to(dev))) * len(out))
            preds.append(out.cpu())
    pred = torch.cat(preds)
    loss = sum(losses) / len(x)
    if task == "classification":
        score = float((pred.argmax(1) == y).float().mean())
    else:
        resid = ((pred - y) ** 2).sum(0)
        total = ((y - y.mean(0)) ** 2).sum(0).clamp_min(1e-12)
        score = float((1 - resid / total).mean())
    return loss, score


def finetune(model, stimuli, y=None, *, target="label", task="auto", head=None,
             trainable="head", epochs=10, batch_size=32, lr=1e-3, weight_decay=0.0,
             validation_fraction=0.2, patience=3, checkpoint=None, weights="DEFAULT",
             random_state=0, device="cpu", verbose=1):
    """Fine-tune a network on labelled (or valued) stimuli.

    The head (last ``nn.Linear``, or ``head``) is replaced by a new layer sized for the task, the
    chosen layers train with Adam (cross-entropy for classes, mean squared error for values) and the
    others stay frozen. A stratified validation split drives early stopping: training stops after
    ``patience`` epochs without a lower validation loss, and the best epoch's weights are kept.

    Parameters
    ----------
    model : str, torch.nn.Module, ModelSpec or fitted DNNFeatureExtractor
        The network (a copy is trained; the input is not modified).
    stimuli : StimulusSet, paths, uint8 images or float tensor (n, C, H, W)
        Training stimuli, preprocessed by the model's preprocessing (kept in memory).
    y : array-like, optional
        Labels (classification) or values ``(n,)`` / ``(n, d)`` (regression). Default: the
        ``target`` column of the StimulusSet.
    target : str
        Column of ``stimuli`` holding ``y``.
    task : {"auto", "classification", "regression"}
        ``auto``: regression for float ``y``, classification otherwise.
    head : str, optional
        Module name or alias of the layer to replace.
    trainable : "head", "all" or list of str
        Which layers train besides the head (names or aliases).
    epochs, batch_size, lr, weight_decay :
        Training loop settings.
    validation_fraction : float
        Held-out fraction for early stopping (0: no validation, train all epochs).
    patience : int
        Epochs without improvement before stopping.
    checkpoint : str or Path, optional
        Where to save the checkpoint (written to a temporary name, then renamed).
    weights, random_state :
        ``build_model`` arguments; ``random_state`` also seeds the head, the split and the order.
    device : str or torch.device, default="cpu"
        ``"auto"``: CUDA when present (:func:`neuroprobe._utils.resolve_device`).
    verbose : int
        Show a progress bar over epochs.

    Returns
    -------
    FinetuneResult
    """
    _check_loop(epochs, batch_size, validation_fraction)
    dev = resolve_device(device)  # before the model is built: a missing device fails at once
    seed = seed_from(random_state)
    info = resolve_model(model, weights=weights, random_state=seed, device=None)
    task, yt, classes, n_out = _targets(stimuli, y, target, task)
    x = load_images(stimuli, info, name="stimuli")
    if len(x) != len(yt):
        raise ValueError(f"{len(x)} stimuli but {len(yt)} labels/values")
    run, head_name = _make_run(info, n_out, head, trainable, task, seed, dev,
                               lr=lr, weight_decay=weight_decay, batch_size=batch_size)
    train_idx, val_idx = _split(len(x), yt, task, validation_fraction, seed)
    history, best_epoch, best_state = _fit_loop(
        run, (x[train_idx], yt[train_idx]), (x[val_idx], yt[val_idx]), epochs, patience, verbose
    )
    module = _restore(run.module, best_state)
    path = None if checkpoint is None else save_checkpoint(
        module, checkpoint, num_classes=n_out, head=head_name, classes=classes, task=task,
        model=info.name)
    spec = dataclasses.replace(info.spec, module=module,
                               weights_id=f"finetuned({info.spec.weights_id})")
    return FinetuneResult(module=module, spec=spec, history=history, best_epoch=best_epoch,
                          checkpoint=path, classes=classes, task=task, head=head_name)


def _check_loop(epochs, batch_size, validation_fraction):
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be >= 1")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")


def _make_run(info, n_out, head, trainable, task, seed, dev, *, lr, weight_decay, batch_size):
    """A copy of the network with a new head on ``dev`` (only ``trainable`` layers train), its
    optimiser and loss; return ``(_Run, head name)``."""
    module = copy.deepcopy(info.module)
    with seeded(seed):
        head_name = replace_head(module, n_out, head=head)
    module.to(dev)
    for p in module.parameters():
        p.requires_grad_(False)
    train_modules = _trainable_modules(module, info.spec, trainable, head_name)
    for m in train_modules:
        for p in m.parameters():
            p.requires_grad_(True)
    params = list({id(p): p for m in train_modules for p in m.parameters()}.values())
    run = _Run(
        module=module,
        train_modules=train_modules,
        optimizer=torch.optim.Adam(params, lr=lr, weight_decay=weight_decay),
        loss_fn=nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss(),
        task=task,
        batch_size=batch_size,
        device=dev,
        generator=torch.Generator().manual_seed(seed),
    )
    return run, head_name


def _restore(module, state):
    """Load the kept epoch's weights; eval mode, gradients off."""
    module.load_state_dict(state)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


@dataclasses.dataclass
class _Run:
    """What every epoch of :func:`finetune` uses."""

    module: nn.Module
    train_modules: list
    optimizer: object
    loss_fn: object
    task: str
    batch_size: int
    device: object
    generator: object


def _train_epoch(run, x, y):
    """One pass over the shuffled training set; return the mean training loss."""
    run.module.eval()
    for m in run.train_modules:
        m.train()
    order = torch.randperm(len(x), generator=run.generator)
    total = 0.0
    for s in range(0, len(order), run.batch_size):
        idx = order[s : s + run.batch_size]
        run.optimizer.zero_grad()
        loss = run.loss_fn(run.module(x[idx].to(run.device)), y[idx].to(run.device))
        loss.backward()
        run.optimizer.step()
        total += float(loss.detach()) * len(idx)
    return total / len(x)


def _fit_loop(run, train, val, epochs, patience, verbose):
    """Epochs with early stopping on the validation loss.

    Returns ``(history, best epoch (from 1), its state_dict)``; without a validation split every
    epoch runs and the last one is kept.
    """
    history = {"train_loss": [], "val_loss": [], "val_score": []}
    best = (np.inf, 0, copy.deepcopy(run.module.state_dict()))
    bar = range(epochs)
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(bar, desc="finetune", unit="epoch")
    stale = 0
    for epoch in bar:
        history["train_loss"].append(_train_epoch(run, *train))
        if len(val[0]):
            val_loss, val_score = _evaluate(run.module, *val, run.task, run.loss_fn,
                                            run.batch_size, run.device)
        else:
            val_loss, val_score = history["train_loss"][-1], float("nan")
        history["val_loss"].append(val_loss)
        history["val_score"].append(val_score)
        if verbose:
            bar.set_postfix(train=f"{history['train_loss'][-1]:.3g}", val=f"{val_loss:.3g}",
                            score=f"{val_score:.3g}")
        if val_loss < best[0] - 1e-7:
            best = (val_loss, epoch + 1, copy.deepcopy(run.module.state_dict()))
            stale = 0
        else:
            stale += 1
            if len(val[0]) and stale >= patience:
                break
    if len(val[0]) == 0:
        best = (history["val_loss"][-1], len(history["train_loss"]),
                copy.deepcopy(run.module.state_dict()))
    return history, best[1], best[2]


def save_checkpoint(module, path, *, num_classes, head, classes=None, task="", model=""):
    """Save ``module``'s weights with the head description (atomic write); return the path."""
    from neuroprobe._utils import atomic_path
    from neuroprobe._version import __version__

    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    payload = {
        "state_dict": state,
        "num_classes": int(num_classes),
        "head": str(head),
        "classes": [str(c) for c in classes] if classes is not None else [],
        "task": str(task),
        "model": str(model),
        "neuroprobe_version": __version__,
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path
