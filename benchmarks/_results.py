"""Shared helpers of the benchmark scripts: machine description and RESULTS.md sections."""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine():
    """One line naming the machine, the date and the main library versions."""
    import numpy as np

    parts = [
        datetime.date.today().isoformat(),
        platform.processor() or platform.machine(),
        f"{os.cpu_count()} cores",
        f"Python {platform.python_version()}",
        f"numpy {np.__version__}",
    ]
    for name in ("torch", "sklearn", "scipy"):
        try:
            module = __import__(name)
            parts.append(f"{name} {module.__version__}")
        except ImportError:
            pass
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if "model name" in ln), None)
        if model:
            parts.insert(1, model)
    except OSError:
        pass
    return ", ".join(parts)


def write_section(name, markdown):
    """Replace the ``name`` section of RESULTS.md with ``markdown`` (created if absent)."""
    text = RESULTS.read_text() if RESULTS.exists() else "# neuroprobe benchmark results\n"
    start, end = f"<!-- section: {name} -->", f"<!-- end: {name} -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def peak_rss_mb():
    """Peak resident memory of this process in MiB (Linux ru_maxrss is in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
