"""The package's layout rules, read from the source with ``ast`` (nothing is imported).

* No import cycle: neither among the imports run when a module loads (top level, a cycle that
  breaks ``import``) nor among all imports, function-level ones included (a cycle that hides a
  misplaced concept, as ``stimuli`` <-> ``media`` over ``StimulusError`` and ``models.hooks`` <->
  ``models.registry`` over layer lookup did).
* Dependencies point down the levels of ``docs/architecture.md``: a module imports only modules
  of its own level or of lower-numbered levels; ``io/`` and ``solvers/`` never import the
  estimators, the transformers, the CLI or the demo.
* Every error and warning class lives in :mod:`neuroprobe.exceptions`; the other modules only
  re-export them (the same objects).
* One owner per mechanism: forward hooks are registered in :mod:`neuroprobe.models.hooks` only,
  and ``device=`` strings become ``torch.device`` objects in
  :func:`neuroprobe._utils.resolve_device` only.

Import statements are what counts: a module name in a string (``LAZY_MODULES``, the lazy
``_EXPORTS`` tables read by ``importlib``) is data, not an import.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "neuroprobe"

#: Dependency levels (docs/architecture.md): a module may import its own level and lower numbers.
LEVELS = {
    1: ("exceptions", "_utils", "_validation", "_sklearn_compat", "_lazy", "_version", "_docs",
        "_cv", "_progress"),
    2: ("solvers",),
    3: ("bands", "media", "io", "rsa", "metrics", "cka", "crossnobis", "ceilings", "rsa_inference"),
    4: ("stimuli", "models"),
    5: ("transformers", "estimators"),
    6: ("model_selection", "probing", "inspect", "plotting", "report", "transfer", "outofcore",
        "parallel", "searchlight", "partition", "comparison"),
    7: ("demo", "cli", "__main__"),
}
_LEVEL_OF = {part: level for level, parts in LEVELS.items() for part in parts}
ROOT_LEVEL = 7  # neuroprobe/__init__.py re-exports everything (lazily, by name)

#: Violations in code owned by other work in progress: each is one strict xfail below, so the test
#: starts to fail (XPASS) the day the violation is fixed and the entry must go.
KNOWN_LEVEL_VIOLATIONS: dict[str, str] = {}


@dataclasses.dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    top_level: bool

    def __str__(self):
        where = "top level" if self.top_level else "in a function"
        return f"{self.source}:{self.line} imports {self.target} ({where})"


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@functools.cache
def modules():
    """Module name -> path of every module of the package."""
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node):
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _absolute(name, path, node):
    """The absolute module of an ``ImportFrom`` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(name, path, node):
    known = modules()
    if isinstance(node, ast.Import):
        for alias in node.names:
            parts = alias.name.split(".")
            # ``import neuroprobe.a.b`` imports the deepest existing module
            for k in range(len(parts), 0, -1):
                if ".".join(parts[:k]) in known:
                    yield ".".join(parts[:k])
                    break
        return
    base = _absolute(name, path, node)
    for alias in node.names:
        full = f"{base}.{alias.name}"
        yield full if full in known else base  # a submodule, or a name of the module


@functools.cache
def edges():
    """Every import of a package module by a package module (top-level and in functions)."""
    found = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

        def visit(node, top, name=name, path=path):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _is_type_checking(child):
                    continue  # annotations only, never run
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for target in _targets(name, path, child):
                        if target.split(".")[0] == "neuroprobe" and target != name:
                            found.append(Edge(name, target, child.lineno, top))
                inner = top and not isinstance(
                    child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
                )
                visit(child, inner)

        visit(tree, True)
    return tuple(found)


def _find_cycle(graph):
    """One cycle of ``graph`` (dict node -> set of nodes) as a list of nodes, or ``None``."""
    state = {}  # 1: on the current path, 2: done
    path = []

    def dfs(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state:
            found = dfs(start)
            if found:
                return found
    return None


def _graph(top_level_only):
    graph = {}
    for edge in edges():
        if edge.top_level or not top_level_only:
            graph.setdefault(edge.source, set()).add(edge.target)
    return graph


def _describe_cycle(cycle):
    lines = []
    for a, b in zip(cycle, cycle[1:]):
        first = next(e for e in edges() if e.source == a and e.target == b)
        lines.append(f"  {first}")
    return " -> ".join(cycle) + "\n" + "\n".join(lines)


def level(module):
    parts = module.split(".")
    if len(parts) == 1:
        return ROOT_LEVEL
    return _LEVEL_OF[parts[1]]


# --------------------------------------------------------------------------------------------
# the walker itself
# --------------------------------------------------------------------------------------------
def test_walker_reads_relative_function_level_and_submodule_imports(tmp_path):
    """The walker sees what the tests below rely on: a known top-level import, a known
    function-level one, ``from package import submodule`` and every module of the package."""
    found = {(e.source, e.target, e.top_level) for e in edges()}
    assert ("neuroprobe.models.hooks", "neuroprobe.models.layers", True) in found
    assert ("neuroprobe.models.registry", "neuroprobe.models.aliases", False) in found
    assert ("neuroprobe.rsa", "neuroprobe.solvers.rdm", True) in found  # from solvers import rdm
    assert {"neuroprobe", "neuroprobe.models.layers", "neuroprobe.cli.main"} <= set(modules())
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None
    # relative imports resolve against the package (a module) or the package itself (__init__)
    node = ast.parse("from ..exceptions import LayerError").body[0]
    assert _absolute("neuroprobe.models.layers", PACKAGE / "models" / "layers.py", node) == (
        "neuroprobe.exceptions"
    )
    node = ast.parse("from .hooks import capture").body[0]
    assert _absolute("neuroprobe.models", PACKAGE / "models" / "__init__.py", node) == (
        "neuroprobe.models.hooks"
    )


# --------------------------------------------------------------------------------------------
# cycles
# --------------------------------------------------------------------------------------------
def test_no_import_cycle_at_module_level():
    """No cycle among the imports a module runs when it loads."""
    cycle = _find_cycle(_graph(top_level_only=True))
    assert cycle is None, "import cycle (top-level imports):\n" + _describe_cycle(cycle)


def test_no_import_cycle_through_function_level_imports():
    """No cycle either once the imports inside functions count: a lazy import is a way to load
    later, not a licence for two modules to need each other."""
    cycle = _find_cycle(_graph(top_level_only=False))
    assert cycle is None, "import cycle (imports in functions included):\n" + _describe_cycle(
        cycle
    )


# --------------------------------------------------------------------------------------------
# levels
# --------------------------------------------------------------------------------------------
def test_every_module_has_a_level():
    missing = sorted({m.split(".")[1] for m in modules() if "." in m} - set(_LEVEL_OF))
    assert not missing, f"add these top-level modules / packages to LEVELS: {missing}"


#: Old module paths kept for one release: each only re-exports its new home (which is why it may
#: import upwards); :func:`test_compatibility_shims_only_reexport` checks that they hold no code.
SHIMS = {
    "neuroprobe.inspect.targets": "neuroprobe.inspect.units",
    "neuroprobe.models.timeseries": "neuroprobe.transformers.timeseries",
    "neuroprobe.outofcore": "neuroprobe.estimators.outofcore",
    "neuroprobe.parallel": "neuroprobe.transformers.sharded",
    "neuroprobe.probing": "neuroprobe.model_selection",
    "neuroprobe.transfer": "neuroprobe.models.finetune",
}


@pytest.mark.parametrize("shim", sorted(SHIMS))
def test_compatibility_shims_only_reexport(shim):
    """A shim defines no function or class: everything it offers comes from its new home."""
    tree = ast.parse(modules()[shim].read_text(encoding="utf-8"))
    defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert not defined, f"{shim} defines {defined}; move them to {SHIMS[shim]}"
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert any(m.startswith(SHIMS[shim]) for m in imported), f"{shim} does not import {SHIMS[shim]}"


def _level_params():
    params = []
    for name in sorted(set(modules()) - set(SHIMS)):
        marks = []
        if name in KNOWN_LEVEL_VIOLATIONS:
            marks = [pytest.mark.xfail(strict=True, reason=KNOWN_LEVEL_VIOLATIONS[name])]
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.mark.parametrize("module", _level_params())
def test_imports_point_down_the_levels(module):
    """``module`` imports only modules of its level or of lower-numbered levels."""
    up = [
        f"{e} (level {level(e.source)} -> {level(e.target)})"
        for e in edges()
        if e.source == module and level(e.target) > level(e.source)
    ]
    assert not up, "imports of a higher level:\n" + "\n".join(up)


#: Hard rules, checked over every import statement (top level and in functions).
FORBIDDEN = [
    ("neuroprobe.io", ("neuroprobe.estimators", "neuroprobe.transformers", "neuroprobe.cli",
                       "neuroprobe.demo", "neuroprobe.rsa", "neuroprobe.models",
                       "neuroprobe.stimuli")),
    ("neuroprobe.solvers", ("neuroprobe.estimators", "neuroprobe.transformers", "neuroprobe.cli",
                            "neuroprobe.demo")),
    ("neuroprobe.media", ("neuroprobe.stimuli",)),
    ("neuroprobe.models.registry", ("neuroprobe.demo",)),
    ("neuroprobe.models.hooks", ("neuroprobe.models.registry",)),
    ("neuroprobe.models.layers", ("neuroprobe.models.registry", "neuroprobe.models.hooks")),
]


def _within(module, prefix):
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize(("source", "targets"), FORBIDDEN, ids=[s for s, _ in FORBIDDEN])
def test_forbidden_imports(source, targets):
    bad = [
        str(e)
        for e in edges()
        if _within(e.source, source) and any(_within(e.target, t) for t in targets)
    ]
    assert not bad, f"{source} must not import {', '.join(targets)}:\n" + "\n".join(bad)


def test_models_hooks_imports_only_layers_from_models():
    targets = {e.target for e in edges() if e.source == "neuroprobe.models.hooks"}
    assert {t for t in targets if _within(t, "neuroprobe.models")} <= {
        "neuroprobe.models.layers"
    }


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
def _defined_classes():
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                yield name, node


def test_every_error_and_warning_class_lives_in_exceptions():
    outside = [
        f"{name}:{node.lineno} class {node.name}"
        for name, node in _defined_classes()
        if name != "neuroprobe.exceptions" and node.name.endswith(("Error", "Warning"))
    ]
    assert not outside, "error / warning classes outside neuroprobe/exceptions.py:\n" + "\n".join(
        outside
    )


def test_reexported_errors_are_the_classes_of_exceptions():
    """The old import places keep working and give the very same classes (one ``except``)."""
    exceptions = importlib.import_module("neuroprobe.exceptions")
    old_places = {
        "neuroprobe.stimuli": ["StimulusError"],
        "neuroprobe.media": ["StimulusError"],
        "neuroprobe.models": ["LayerError", "ModelError", "WeightsUnavailableError"],
        "neuroprobe.models.registry": ["LayerError", "ModelError", "WeightsUnavailableError"],
        "neuroprobe.models.hooks": ["RepeatedCallError"],
        "neuroprobe.io.activations": ["ExtractionBusyError", "IncompleteActivationsError"],
        "neuroprobe._utils": ["WriteError", "DeviceError"],
        "neuroprobe.rsa": ["ConstantPatternError", "ConstantPatternWarning"],
        "neuroprobe.metrics": ["ZeroVarianceWarning"],
    }
    for module, names in old_places.items():
        mod = importlib.import_module(module)
        for name in names:
            assert getattr(mod, name) is getattr(exceptions, name), f"{module}.{name}"
    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        assert cls.__module__ == "neuroprobe.exceptions"
        if name != "NeuroprobeError" and issubclass(cls, Exception) and name.endswith("Error"):
            assert issubclass(cls, exceptions.NeuroprobeError), name


def test_error_classes_are_imported_from_exceptions():
    """Modules import the error classes from ``neuroprobe.exceptions``, not through another module
    (which is how ``media`` came to import ``stimuli``)."""
    names = set(importlib.import_module("neuroprobe.exceptions").__all__)
    bad = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = _absolute(name, path, node)
            if source == "neuroprobe.exceptions" or not _within(source, "neuroprobe"):
                continue
            hit = sorted(a.name for a in node.names if a.name in names)
            if hit and not _reexport_of_own_package(name, source):
                bad.append(f"{name}:{node.lineno} from {source} import {', '.join(hit)}")
    known = {b for b in bad if b.split(":")[0] in KNOWN_INDIRECT_ERROR_IMPORTS}
    assert not (set(bad) - known), "import these from neuroprobe.exceptions:\n" + "\n".join(
        sorted(set(bad) - known)
    )


def _reexport_of_own_package(name, source):
    """A package ``__init__`` re-exporting from its own submodule is fine."""
    return modules()[name].name == "__init__.py" and _within(source, name)


#: Modules owned by other work in progress that still import an error through another module.
KNOWN_INDIRECT_ERROR_IMPORTS = {
    "neuroprobe.demo",  # from neuroprobe.models import ModelError (the demo moves to a package)
    "neuroprobe.cli.brain", "neuroprobe.cli.demo", "neuroprobe.cli.encoding",
    "neuroprobe.cli.extract", "neuroprobe.cli.inspect", "neuroprobe.cli.rsa",  # CLIError via main
    "neuroprobe.model_selection",  # ZeroVarianceWarning via metrics
    "neuroprobe.inspect.targets", "neuroprobe.inspect.units",  # RepeatedCallError via models.hooks
}


# --------------------------------------------------------------------------------------------
# one owner per mechanism
# --------------------------------------------------------------------------------------------
def _calls(attr):
    """``(module, line)`` of every call of ``<something>.<attr>(...)`` in the package."""
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == attr
            ):
                yield name, node


_HOOKS_OWNER = {"neuroprobe.models.hooks"}


def test_forward_hooks_are_registered_in_models_hooks_only():
    sites = [
        f"{name}:{node.lineno}"
        for name, node in _calls("register_forward_hook")
        if name not in _HOOKS_OWNER
    ]
    assert not sites, "use neuroprobe.models.hooks (capture / forward_hook):\n" + "\n".join(sites)


def _device_calls():
    """``torch.device(x)`` calls whose argument is not a string constant (``"cpu"``, ``"meta"``)."""
    for name, node in _calls("device"):
        func = node.func
        if not (isinstance(func.value, ast.Name) and func.value.id == "torch"):
            continue
        if len(node.args) == 1 and isinstance(node.args[0], ast.Constant):
            continue
        yield name, node


def test_devices_go_through_resolve_device():
    sites = [
        f"{name}:{node.lineno}"
        for name, node in _device_calls()
        if name != "neuroprobe._utils"
    ]
    assert not sites, "use neuroprobe._utils.resolve_device(device):\n" + "\n".join(sites)
