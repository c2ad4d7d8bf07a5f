"""Forward hooks that capture the outputs of named modules during one forward pass.

Rules (shared by :class:`~neuroprobe.transformers.DNNFeatureExtractor` and every other user):

* **Copies.** Captured outputs are ``detach().clone()``-d by default, so a later in-place operation
  (AlexNet's ``ReLU(inplace=True)`` right after a convolution) cannot change a captured output.
* **Tuple / list / dict outputs.** The first tensor found (depth first; dicts in key order) is
  captured; e.g. an LSTM's ``(output, (h, c))`` gives ``output``.
* **Modules called several times** in one forward pass (a ReLU module reused inside a ResNet block):
  ``repeat="error"`` (default) raises :class:`RepeatedCallError` naming the layer, because "the"
  output of such a module is ambiguous; ``repeat="last"`` keeps the last call's output;
  ``repeat="all"`` keeps a list of every call's output.
* **Stopping early.** ``stop=True`` raises the private :class:`StopForward` from the hook of the
  last requested layer to be captured, which :func:`capture` swallows when it leaves the ``with``
  block: the rest of the network is not run. Use it only when every requested layer is called once.
* Hooks are always removed when the ``with`` block exits, also on exceptions.

:func:`forward_hook` registers one plain hook (to change a module's output, or to observe it) for
the duration of a ``with`` block; :func:`add_forward_hook` a hook that lives as long as the
module. This module is the one place that calls ``register_forward_hook``.
"""

from __future__ import annotations

import contextlib

from neuroprobe.exceptions import RepeatedCallError
from neuroprobe.models.layers import resolve_layer

__all__ = [
    "add_forward_hook",
    "capture",
    "first_tensor",
    "forward_hook",
    "has_transient_hooks",
    "RepeatedCallError",
    "StopForward",
]


class StopForward(Exception):
    """Raised from a hook to stop the forward pass once every requested layer was captured."""


def first_tensor(output):
    """The first tensor in a (nested) tuple / list / dict output, or ``None``."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        for item in output:
            found = first_tensor(item)
            if found is not None:
                return found
    # namedtuple-like objects with tensors as attributes (e.g. GoogLeNetOutputs) are tuples already
    return None


class _Captured(dict):
    """dict layer -> captured output; ``.calls`` counts the calls of each layer."""

    def __init__(self, module, names):
        super().__init__()
        self.calls = {}
        self.module = module
        self.names = names
        self.pending = set(names)
        self.stop = False

    def run(self, *args, **kwargs):
        """Clear, run one forward pass of the module (stopping early if asked) and return
        ``self``."""
        self.clear()
        self.calls = {}
        self.pending = set(self.names)
        try:
            self.module(*args, **kwargs)
        except StopForward:
            pass
        return self


@contextlib.contextmanager
def capture(module, layer_names, *, clone=True, stop=False, repeat="error", transform=None):
    """Capture the outputs of ``layer_names`` (module names) during forward passes of ``module``.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    layer_names : iterable of str
        Module names of ``module.named_modules()``.
    clone : bool
        Store ``output.detach().clone()`` (default) instead of the output itself.
    stop : bool
        Stop the forward pass (swallowed :class:`StopForward`) once every layer was captured. It can
        be switched per pass through the yielded dict's ``.stop`` attribute.
    repeat : {"error", "last", "all"}
        What to do when a module runs more than once in a pass (see the module docstring).
    transform : callable, optional
        ``transform(name, tensor) -> tensor`` applied to each captured (detached) output inside the
        hook instead of the copy, e.g. spatial pooling, which reduces big maps before the next layer
        runs. It must return a new tensor (not a view) for the in-place safety to hold.

    Yields
    ------
    dict
        layer name -> captured tensor (or list of tensors with ``repeat="all"``); filled during the
        forward pass; ``.calls`` holds the number of calls per layer. For several passes in one
        block, call ``out.run(x)``: it resets the dict and the call counts, runs ``module(x)`` and
        swallows :class:`StopForward`. A plain ``module(x)`` works for a single pass (the context
        manager swallows a :class:`StopForward` that ends the block).

    Examples
    --------
    >>> with capture(net, ["features.0", "classifier.1"]) as out:  # doctest: +SKIP
    ...     net(x)
    >>> out["features.0"].shape  # doctest: +SKIP
    """
    if repeat not in ("error", "last", "all"):
        raise ValueError(f"repeat must be 'error', 'last' or 'all', got {repeat!r}")
    names = list(dict.fromkeys(layer_names))
    modules = dict(module.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        resolve_layer(module, missing[0])  # raises LayerError with valid names + closest
    out = _Captured(module, names)
    out.stop = bool(stop)
    handles = []

    def make_hook(name):
        def hook(_mod, _inp, output):
            tensor = first_tensor(output)
            if tensor is None:
                raise TypeError(
                    f"layer {name!r} returned {type(output).__name__} with no tensor; "
                    "cannot capture it"
                )
            tensor = tensor.detach()
            if transform is not None:
                tensor = transform(name, tensor)
            elif clone:
                tensor = tensor.clone()
            count = out.calls.get(name, 0) + 1
            out.calls[name] = count
            if count > 1 and repeat == "error":
                raise RepeatedCallError(
                    f"layer {name!r} is called {count} times in one forward pass, so its output is "
                    "ambiguous; capture its parent module or a module that runs once instead"
                )
            if repeat == "all":
                out.setdefault(name, []).append(tensor)
            else:
                out[name] = tensor
            out.pending.discard(name)
            if out.stop and not out.pending:
                raise StopForward

        return hook

    try:
        for name in names:
            handles.append(modules[name].register_forward_hook(make_hook(name)))
        try:
            yield out
        except StopForward:
            pass
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def forward_hook(module, hook):
    """Register ``hook(module, input, output)`` on ``module`` for the duration of a ``with`` block.

    Parameters
    ----------
    module : torch.nn.Module
        The (sub-)module whose forward pass calls the hook.
    hook : callable
        ``hook(module, input, output)``; a return value other than ``None`` replaces the output
        (as with :meth:`torch.nn.Module.register_forward_hook`).

    Yields
    ------
    torch.utils.hooks.RemovableHandle
        The handle; the hook is removed when the block exits, also on exceptions.
    """
    handle = module.register_forward_hook(hook)
    try:
        yield handle
    finally:
        handle.remove()


def add_forward_hook(module, hook):
    """Register ``hook(module, input, output)`` on ``module`` for as long as the module lives.

    For hooks that are part of a network's definition (e.g. the channel-first taps of video
    networks); temporary hooks use :func:`forward_hook`.

    Returns
    -------
    torch.utils.hooks.RemovableHandle
    """
    def permanent(*args):
        return hook(*args)

    permanent._neuroprobe_permanent = True
    return module.register_forward_hook(permanent)


def has_transient_hooks(module):
    """Whether ``module`` or a submodule has a forward (pre-)hook that is not part of the
    network's definition (:func:`add_forward_hook`): e.g. an ablation (:func:`forward_hook`) or a
    user's hook. Such a hook may change the outputs, so cached activations do not apply. A hook
    function that leaves the outputs unchanged may say so with the attribute
    ``_neuroprobe_permanent = True`` (as :func:`add_forward_hook` marks its hooks)."""
    for sub in module.modules():
        hooks = list(sub._forward_hooks.values()) + list(sub._forward_pre_hooks.values())
        if any(not getattr(h, "_neuroprobe_permanent", False) for h in hooks):
            return True
    return False
