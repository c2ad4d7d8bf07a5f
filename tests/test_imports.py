"""Every module of neuroprobe imports with only the runtime dependencies installed.

A fresh ``pip install neuroprobe`` has only ``[project] dependencies``; the extras (audio, video,
inspect) and the test/bench tools must be imported lazily, where they are needed, with an error
that names the extra. The test blocks those packages with a meta-path finder in a subprocess
(so the test process's own imports do not hide a missing one) and imports every module.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]

# Import names of everything that is NOT a runtime dependency (extras and test/bench tools).
BLOCKED = [
    # test / bench extras
    "himalaya", "rsatoolbox", "dask", "distributed", "psutil", "pytest", "_pytest",
    "pytest_timeout", "ray", "nilearn", "mne",
    # optional extras: audio, video, inspect
    "torchaudio", "soundfile", "av", "pytorchvideo", "skimage",
    # zoo extra
    "timm", "transformers", "huggingface_hub",
]

_SCRIPT = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    BLOCKED = set(sys.argv[1].split(","))

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: not a runtime dependency")
            return None

    for name in list(sys.modules):  # nothing blocked may be imported already
        if name.split(".")[0] in BLOCKED:
            del sys.modules[name]
    sys.meta_path.insert(0, Block())

    import neuroprobe
    names = ["neuroprobe"] + [
        m.name for m in pkgutil.walk_packages(neuroprobe.__path__, "neuroprobe.")
        if not m.name.endswith(".__main__")]  # __main__ runs the CLI
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    leaked = sorted({m.split(".")[0] for m in sys.modules} & BLOCKED)
    print(len(names), "modules")
    if failed or leaked:
        print("\\n".join(failed))
        print("blocked packages in sys.modules:", leaked)
        sys.exit(1)
    """
)


def _runtime_dependencies():
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    return project


def test_blocked_packages_are_not_runtime_dependencies():
    """The block list and pyproject agree: nothing blocked is a runtime dependency."""
    import re

    deps = {re.split(r"[<>=!~\[ ;]", d)[0].lower() for d in _runtime_dependencies()["dependencies"]}
    dist_of = {"skimage": "scikit-image", "_pytest": "pytest", "pytest_timeout": "pytest-timeout"}
    assert not {dist_of.get(b, b) for b in BLOCKED} & deps
    assert {"pandas", "threadpoolctl", "scikit-learn", "torch"} <= deps


def test_every_module_imports_with_runtime_dependencies_only():
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, ",".join(BLOCKED)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n = int(proc.stdout.split()[0])
    assert n > 30, proc.stdout  # walk_packages found the whole package


def test_block_is_effective():
    """The blocking finder really blocks (else the test above could not fail)."""
    script = _SCRIPT.replace("import neuroprobe\n", "import neuroprobe\nimport skimage\n", 1)
    proc = subprocess.run([sys.executable, "-c", script, ",".join(BLOCKED)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode != 0
    assert "skimage is blocked" in proc.stderr


@pytest.mark.parametrize("extra", ["audio", "video", "inspect", "meg", "zoo", "plot"])
def test_extras_are_declared(extra):
    assert extra in _runtime_dependencies()["optional-dependencies"]


# --------------------------------------------------------------------------- static import audit
_DIST = {"PIL": "pillow", "sklearn": "scikit-learn", "skimage": "scikit-image", "yaml": "pyyaml",
         "open_clip": "open_clip_torch"}
# extras a user installs for a feature
_LAZY_EXTRAS = ("audio", "video", "inspect", "meg", "zoo", "plot")


def _imports(tree):
    """(top name, module, imported names, at module level?) of each import in ``tree``."""
    import ast

    top_level = {id(n) for n in tree.body}
    for stmt in tree.body:  # imports in a module-level ``try:`` / ``if`` still run at import
        if isinstance(stmt, (ast.Try, ast.If)):
            top_level |= {id(n) for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0], a.name, [], id(node) in top_level
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield (node.module.split(".")[0], node.module, [a.name for a in node.names],
                   id(node) in top_level)


def _requirement_names(reqs):
    import re

    return {re.split(r"[<>=!~\[ ;]", r)[0].lower() for r in reqs}


def test_every_third_party_import_is_declared():
    """Every package imported anywhere (also inside functions) is a runtime dependency, or, if
    imported lazily, belongs to a feature extra; never only to the test/bench extras (pandas in
    ``probe_layers`` was only in ``test``: the README's demo failed on a fresh install)."""
    import ast

    project = _runtime_dependencies()
    runtime = _requirement_names(project["dependencies"])
    extras = _requirement_names(
        r for e in _LAZY_EXTRAS for r in project["optional-dependencies"][e]
        if not r.startswith("neuroprobe"))
    problems = []
    for path in sorted((ROOT / "neuroprobe").rglob("*.py")):
        for top, _, _, eager in _imports(ast.parse(path.read_text(), str(path))):
            if top in sys.stdlib_module_names or top in ("neuroprobe", "__future__"):
                continue
            dist = _DIST.get(top, top).lower()
            if dist in runtime or (not eager and dist in extras):
                continue
            where = "at module level" if eager else "lazily"
            problems.append(f"{path.relative_to(ROOT)}: imports {top} {where}")
    assert not problems, "\n".join(problems)


def test_private_sklearn_imports_confined_to_compat_module():
    """Private scikit-learn helpers are imported only in neuroprobe/_sklearn_compat.py."""
    import ast

    problems = []
    for path in sorted((ROOT / "neuroprobe").rglob("*.py")):
        if path.name == "_sklearn_compat.py":
            continue
        for top, module, names, _ in _imports(ast.parse(path.read_text(), str(path))):
            if top != "sklearn":
                continue
            private = [n for n in names if n.startswith("_")]
            if any(part.startswith("_") for part in module.split(".")) or private:
                problems.append(f"{path.relative_to(ROOT)}: from {module} import {names}")
    assert not problems, "\n".join(problems)
