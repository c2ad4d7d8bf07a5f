"""Any intermediate tensor as a layer: ``"fx:<node>"`` names of torch.fx graph nodes.

Modules are not the only place representations live: residual additions (``"fx:layer1.0.add"``),
functional activations (``F.relu`` in a forward), reshapes. Such tensors are named as torchvision's
``create_feature_extractor`` names them (its ``NodePathTracer``: the module path of the operation,
then the operation, ``_1``, ``_2`` ... for repeats within a module); the names are listed by
:func:`graph_nodes` and ``list_layers(model, nodes=True)``.

How they are captured, at the speed of a hook: :func:`tap_graph` traces the network once
(``torch.fx`` symbolic tracing, eval mode) into a ``GraphModule`` that shares the network's
parameters, and adds, beside each requested node, a call of an identity *tap* module
``fx_taps.<node>`` whose input is that node's output. The graph is otherwise unchanged, and the
requested *module* layers (and every module carrying a permanent hook, e.g. token taps) are kept
as leaf modules of the trace, so the usual forward hooks of
:func:`~neuroprobe.models.hooks.capture` see modules and nodes together in the same single
forward pass, stopping early after the last requested one.

A network whose forward does not trace (data-dependent control flow, ...) raises
:class:`~neuroprobe.exceptions.TraceError` saying so and suggesting module names, which need no
trace.
"""

from __future__ import annotations

from torch import nn

from neuroprobe.exceptions import LayerError, TraceError
from neuroprobe.models.layers import layer_names, unknown_layer

__all__ = ["FX_PREFIX", "FxTap", "current_graph", "graph_nodes", "is_fx_layer", "node_shapes",
           "tap_graph"]

#: Prefix of layer names that are torch.fx graph nodes.
FX_PREFIX = "fx:"
#: Name of the ModuleDict holding the taps in a tapped graph.
TAPS = "fx_taps"


def is_fx_layer(name):
    """Whether layer ``name`` names a torch.fx node (``"fx:<node>"``)."""
    return isinstance(name, str) and name.startswith(FX_PREFIX)


class FxTap(nn.Identity):
    """Identity module called with one graph node's output, so a forward hook can capture it."""


def _tracer(leaves):
    import torchvision.models.feature_extraction as fe

    class _Tracer(fe.NodePathTracer):
        def is_leaf_module(self, m, module_qualname):
            if module_qualname in leaves:
                return True
            return super().is_leaf_module(m, module_qualname)

    return _Tracer(**fe._set_default_tracer_kwargs(None))


def _suggest(module, exc, what):
    names = layer_names(module)
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return TraceError(
        f"model {type(module).__name__} does not trace with torch.fx, so {what} cannot be "
        f"captured ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
        f"Use module names instead (they need no trace), e.g. {shown}"
    )


def _trace(module, leaves=(), what="'fx:' layers"):
    """``(graph, {node: name})`` of ``module`` in eval mode, ``leaves`` kept as leaf modules."""
    tracer = _tracer(set(leaves))
    was_training = module.training
    module.eval()
    try:
        graph = tracer.trace(module)
    except Exception as exc:  # noqa: BLE001 - fx raises TraceError, TypeError, RuntimeError ...
        raise _suggest(module, exc, what) from exc
    finally:
        module.train(was_training)
    return graph, dict(tracer.node_to_qualname)


def graph_nodes(module):
    """Node names of ``module``'s torch.fx graph in execution order (as torchvision's
    ``get_graph_node_names`` in eval mode), without the input placeholders and the output.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    list of str

    Raises
    ------
    TraceError
        The forward does not trace.
    """
    graph, names = _trace(module, what="its graph nodes")
    return [names[n] for n in graph.nodes if n.op not in ("placeholder", "output")]


def node_shapes(module, x):
    """``[(node name, output shape without the batch dimension or None)]`` for an input ``x``.

    Runs the traced graph once (``torch.fx.Interpreter``); nodes whose output is not a tensor
    (sizes, attribute reads) have shape ``None``.
    """
    import torch
    from torch import fx

    graph, names = _trace(module, what="its graph nodes")
    gm = fx.GraphModule(module, graph)
    shapes = {}

    class _Recorder(fx.Interpreter):
        def run_node(self, n):
            result = super().run_node(n)
            if n.op not in ("placeholder", "output"):
                shapes[names[n]] = (tuple(result.shape[1:]) if isinstance(result, torch.Tensor)
                                    else None)
            return result

    with torch.no_grad():
        _Recorder(gm).run(x)
    return [(names[n], shapes.get(names[n])) for n in graph.nodes
            if n.op not in ("placeholder", "output")]


def _hooked_modules(module):
    """Module names carrying a forward (pre-)hook (token taps, channel-first taps ...)."""
    return [name for name, sub in module.named_modules()
            if name and (sub._forward_hooks or sub._forward_pre_hooks)]


def tap_graph(module, fx_layers, module_layers=(), owner=None):
    """A ``GraphModule`` of ``module`` with a tap beside each requested node.

    Parameters
    ----------
    module : torch.nn.Module
        The network (its parameters are shared, not copied).
    fx_layers : list of str
        ``"fx:<node>"`` names.
    module_layers : list of str
        Module names to capture in the same pass: kept as leaf modules of the trace (or attached
        when they are called from a hook, as token taps are).
    owner : str, optional
        Model name for error messages.

    Returns
    -------
    gm : torch.fx.GraphModule
        Runs as ``module`` does; ``gm.named_modules()`` holds ``module_layers`` and the taps.
    taps : dict of str -> str
        ``"fx:<node>"`` -> the tap's module name in ``gm`` (``"fx_taps.<node with _>"``).

    Raises
    ------
    TraceError
        The forward does not trace.
    LayerError
        An unknown node (the message lists the nodes and the closest match), or a node inside a
        requested module layer (which the trace keeps whole).
    """
    from torch import fx

    owner = owner or f"model {type(module).__name__!r}"
    nodes = [name[len(FX_PREFIX):] for name in fx_layers]
    module_layers = list(dict.fromkeys(module_layers))
    for node in nodes:
        inside = next((m for m in module_layers if node.startswith(m + ".")), None)
        if inside:
            raise LayerError(
                f"layer 'fx:{node}' lies inside the requested module layer {inside!r}, which the "
                f"trace keeps whole; capture them in two extractions, or ask for {inside!r}'s "
                "output as an fx node instead"
            )
    hooked = [m for m in _hooked_modules(module)
              if not any(node.startswith(m + ".") for node in nodes)]
    graph, names = _trace(module, leaves=[*module_layers, *hooked])
    by_name = {name: n for n, name in names.items() if n.op not in ("placeholder", "output")}
    for node in nodes:
        if node not in by_name:
            raise unknown_layer(FX_PREFIX + node,
                                [FX_PREFIX + name for name in by_name], f"{owner} (fx nodes)")
    taps = nn.ModuleDict()
    result = {}
    for node in dict.fromkeys(nodes):
        key = node.replace(".", "_")
        taps[key] = FxTap()
        with graph.inserting_after(by_name[node]):
            graph.call_module(f"{TAPS}.{key}", (by_name[node],))
        result[FX_PREFIX + node] = f"{TAPS}.{key}"
    targets = {}  # qualified name -> object: the graph's modules and attributes, shared
    for n in graph.nodes:
        if n.op in ("call_module", "get_attr") and n.target not in targets:
            if n.target.startswith(TAPS + "."):
                targets[n.target] = taps[n.target[len(TAPS) + 1:]]
            else:
                obj = module
                for part in n.target.split("."):
                    obj = getattr(obj, part)
                targets[n.target] = obj
    gm = fx.GraphModule(targets, graph, class_name=f"{type(module).__name__}Tapped")
    present = set(layer_names(gm))
    modules = dict(module.named_modules())
    for name in module_layers:  # called from a hook (token taps): attach for capture()
        if name not in present and name in modules:
            gm.add_submodule(name, modules[name])
    gm.eval()
    gm.__dict__["_neuroprobe_source"] = (module, tuple(fx_layers), tuple(module_layers), owner,
                                         frozenset(_hooked_modules(module)))
    return gm, result


def current_graph(gm):
    """``gm``, or a fresh :func:`tap_graph` of its network when hooks were added to (or removed
    from) the network's modules since ``gm`` was traced.

    A module traced through runs inside the graph without its hooks, so a hook added later (an
    ablation with :func:`~neuroprobe.models.hooks.forward_hook`) would be skipped; tracing again
    keeps every hooked module a leaf, so its hooks run. The taps keep their names.
    """
    module, fx_layers, module_layers, owner, hooked = gm.__dict__["_neuroprobe_source"]
    if frozenset(_hooked_modules(module)) == hooked:
        return gm
    return tap_graph(module, list(fx_layers), list(module_layers), owner)[0]
