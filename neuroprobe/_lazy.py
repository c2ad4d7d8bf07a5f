"""Lazy attribute loading for package ``__init__`` files.

``import neuroprobe`` stays cheap (no torch import) while ``neuroprobe.VoxelwiseEncoder`` and
friends resolve on first use.
"""

from __future__ import annotations

import importlib


def attach(package_name, exports):
    """Return ``(__getattr__, __dir__, __all__)`` for a package.

    Parameters
    ----------
    package_name : str
        ``__name__`` of the package.
    exports : dict of str -> str
        Public name -> module path relative to the package (``".estimators.encoding"``).
    """

    def __getattr__(name):
        if name in exports:
            module = importlib.import_module(exports[name], package_name)
            value = getattr(module, name)
            return value
        raise AttributeError(f"module {package_name!r} has no attribute {name!r}")

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__, sorted(exports)
