"""Files only, no statistics: activation stores, brain images, RDM files.

``DESCRIBERS`` maps a file-name suffix to ``"module:function"``; the function takes a path and
returns a human-readable summary (used by ``neuroprobe info FILE``). Other file kinds add their
entry here.
"""

from __future__ import annotations

import importlib

DESCRIBERS = {
    ".act.h5": "neuroprobe.io.activations:describe",
    ".rdm.h5": "neuroprobe.io.rdm:describe",
}


def describe(path):
    """Summary of a neuroprobe file, chosen by its suffix (see ``DESCRIBERS``)."""
    name = str(path)
    for suffix in sorted(DESCRIBERS, key=len, reverse=True):
        if name.endswith(suffix):
            module, func = DESCRIBERS[suffix].split(":")
            return getattr(importlib.import_module(module), func)(path)
    raise ValueError(
        f"cannot describe {name!r}: unknown file kind; known suffixes: {', '.join(DESCRIBERS)}"
    )
