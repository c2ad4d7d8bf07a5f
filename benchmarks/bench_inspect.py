"""Benchmark of ``neuroprobe.inspect``: batched occlusion maps vs a per-position loop.

The reference is DNNBrain's way (``occluder_discrepancy_map``): one full forward pass of the
network per window position. neuroprobe's :func:`~neuroprobe.inspect.occlusion_map` sends many
occluded copies through the network per forward pass and stops the pass after the target layer.
Both give the same map (checked here). Random-weight AlexNet; timings are wall-clock.

Run: ``python benchmarks/bench_inspect.py`` (``--quick``: a few seconds).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def naive_occlusion(module, layer_module, x, channel, window, stride, fill=0.0):
    """One full forward pass per window position and image (the reference)."""
    store = {}
    handle = layer_module.register_forward_hook(lambda m, i, o: store.__setitem__("o", o.clone()))
    h, w = x.shape[-2:]
    rows = range(0, h - window + 1, stride)
    cols = range(0, w - window + 1, stride)
    out = np.empty((len(x), len(rows), len(cols)), np.float32)
    try:
        with torch.no_grad():
            for n in range(len(x)):
                module(x[n : n + 1])
                base = store["o"][0, channel].mean()
                for i, r in enumerate(rows):
                    for j, c in enumerate(cols):
                        occluded = x[n : n + 1].clone()
                        occluded[..., r : r + window, c : c + window] = fill
                        module(occluded)
                        out[n, i, j] = float(base - store["o"][0, channel].mean())
    finally:
        handle.remove()
    return out


def _time(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small case, a few seconds")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args(argv)

    from benchmarks._results import machine, peak_rss_mb, write_section
    from neuroprobe.inspect import occlusion_map
    from neuroprobe.models import build_model

    if args.quick:
        size, n_images, window, stride, repeats, layer = 64, 1, 16, 16, 1, "conv3"
    else:
        size, n_images, window, stride, repeats, layer = 224, 1, 32, 16, 3, "conv3"
    spec = build_model("alexnet", weights=None, random_state=0)
    module_name = spec.aliases.get(layer, layer)
    layer_module = dict(spec.module.named_modules())[module_name]
    x = torch.randn((n_images, 3, size, size), generator=torch.Generator().manual_seed(0))
    channel = 5
    n_pos = len(range(0, size - window + 1, stride)) ** 2

    # the slow reference runs once; the batched versions take the median of `repeats` runs
    t_naive, ref = _time(lambda: naive_occlusion(spec.module, layer_module, x, channel, window,
                                                 stride), 1)
    rows = []
    for batch_size in (16, 64):
        t, got = _time(lambda b=batch_size: occlusion_map(spec, x, (layer, channel),
                                                          window=window, stride=stride,
                                                          batch_size=b), repeats)
        err = float(np.max(np.abs(got - ref)) / (np.max(np.abs(ref)) or 1.0))
        rows.append((batch_size, t, err))

    lines = [
        f"Occlusion map, random-weight AlexNet, target `{layer}` channel {channel}, "
        f"{n_images} image(s) of {size}x{size}, window {window}, stride {stride} "
        f"({n_pos} positions per image); loop timed once, neuroprobe median of {repeats} run(s).",
        "",
        "| method | forward passes | time (s) | speed-up vs loop | max rel. difference |",
        "|---|---|---|---|---|",
        f"| per-position loop (DNNBrain-style, full network) | {n_images * (n_pos + 1)} | "
        f"{t_naive:.2f} | 1.0x | reference |",
    ]
    for batch_size, t, err in rows:
        passes = n_images * (1 + -(-n_pos // batch_size))
        lines.append(f"| neuroprobe `occlusion_map(batch_size={batch_size})` | {passes} | "
                     f"{t:.2f} | {t_naive / t:.1f}x | {err:.1e} |")
    lines += [
        "",
        f"Peak RSS {peak_rss_mb():.0f} MiB. Machine: {machine()}; torch threads "
        f"{torch.get_num_threads()}. The machine is shared with other jobs (timings are noisy; "
        "the ratio is measured in the same run). Command: `python benchmarks/bench_inspect.py"
        f"{' --quick' if args.quick else ''}`.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("inspect", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
