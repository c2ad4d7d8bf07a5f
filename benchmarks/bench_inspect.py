"""Benchmark of ``neuroprobe.inspect``: inspection at forward-pass speed.

Measures, in one run and interleaved (the machine is shared, so only the ratios mean much):

(a) the bare forward pass of the occluded images (the same images ``occlusion_map`` builds, in
    the same batches), through the network up to the deepest target layer, and through the whole
    network;
(b) ``occlusion_map`` for 1, 3 and 8 units of one layer and for 3 units in 3 layers (one call:
    one occluded pass serves every unit), against (a), and against the old way (one call per
    unit);
(c) ``neuroprobe rf`` (the CLI, occlusion + upsampling + figures) with 1 and 3 channels;
(d) vanilla saliency of 1 and 3 units (one forward pass, one backward pass per unit).

Random-weight AlexNet, 224 x 224 inputs. Run: ``python benchmarks/bench_inspect.py``
(``--quick``: a few seconds, smaller images).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def occluded_batches(x, window, stride, batch_size):
    """The occluded copies ``occlusion_map`` builds (fill 0), in its batches."""
    n, _, h, w = x.shape
    rows = np.arange(0, h - window + 1, stride)
    cols = np.arange(0, w - window + 1, stride)
    pos = [(r, c) for r in rows for c in cols]
    copies = []
    for i in range(n):
        for r, c in pos:
            o = x[i].clone()
            o[:, r : r + window, c : c + window] = 0.0
            copies.append(o)
    copies = torch.stack(copies)
    return [copies[s : s + batch_size] for s in range(0, len(copies), batch_size)], len(pos)


def bare_forward(module, batches, stop_module=None):
    """Forward every batch (no grad), stopping after ``stop_module`` when given."""
    from neuroprobe.models.hooks import capture

    with torch.no_grad():
        if stop_module is None:
            for b in batches:
                module(b)
            return
        with capture(module, [stop_module], stop=True) as cap:
            for b in batches:
                cap.run(b)


def best_of(fns, repeats, results=None):
    """Run each function ``repeats`` times, interleaved; return the best wall-clock time and the
    best CPU time (this process) of each. ``results``: dict filled with each function's last
    return value."""
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            out = fn()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
            if results is not None:
                results[k] = out
    return {k: min(v) for k, v in wall.items()}, {k: min(v) for k, v in cpu.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small case, a few seconds")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()

    from benchmarks._results import machine, peak_rss_mb, write_section
    from neuroprobe.cli.main import main as cli
    from neuroprobe.inspect import occlusion_map, saliency
    from neuroprobe.models import build_model

    if args.quick:
        size, n_images, window, stride, repeats, cli_images = 96, 1, 24, 24, 1, 1
    else:
        size, n_images, window, stride, repeats, cli_images = 224, 1, 32, 24, 3, 1
    batch = 64
    spec = build_model("alexnet", weights=None, random_state=0)
    net = spec.module.eval()
    names = {k: spec.aliases[k] for k in ("conv2", "conv3", "conv5")}
    x = torch.randn((n_images, 3, size, size), generator=torch.Generator().manual_seed(0))
    batches, n_pos = occluded_batches(x, window, stride, batch)
    n_occ = n_images * n_pos

    def occ(targets):
        return lambda: occlusion_map(spec, x, targets, window=window, stride=stride,
                                     batch_size=batch)

    one = [("conv3", 5)]
    three = [("conv3", c) for c in (5, 17, 101)]
    eight = [("conv3", c) for c in range(0, 256, 32)]
    layers3 = [("conv2", 5), ("conv3", 17), ("conv5", 101)]
    fns = {
        "bare conv3": lambda: bare_forward(net, batches, names["conv3"]),
        "bare conv5": lambda: bare_forward(net, batches, names["conv5"]),
        "occ 1": occ(one),
        "occ 3": occ(three),
        "occ 8": occ(eight),
        "occ 3 layers": occ(layers3),
    }
    out = {}
    t, tcpu = best_of(fns, repeats, out)
    # once: the whole network, and the old way (one call per unit)
    t1, t1cpu = best_of({"bare full": lambda: bare_forward(net, batches),
                         "old 3": lambda: np.stack([occ(u)() for u in three])}, 1, out)
    t.update(t1)
    tcpu.update(t1cpu)
    # the multi-unit call equals the single-unit calls
    err = float(np.abs(out["occ 3"] - out["old 3"]).max()
                / max(np.abs(out["old 3"]).max(), 1e-30))

    # (c) the CLI on picture files
    tmp = Path(tempfile.mkdtemp(prefix="bench_inspect_"))
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(cli_images):
        Image.fromarray(rng.integers(0, 255, (175, 175, 3), dtype=np.uint8)).save(
            tmp / f"img{i}.png")
    cli_window, cli_stride = (window, stride) if not args.quick else (32, 32)
    base = ["rf", "--model", "alexnet", "--weights", "none", "--seed", "0", "--layer", "conv3",
            "--stimuli", str(tmp), "--window", str(cli_window), "--stride", str(cli_stride),
            "--quiet"]
    cli_fns = {
        "rf 1": lambda: cli([*base, "--channels", "5", "--out", str(tmp / "o1")]),
        "rf 3": lambda: cli([*base, "--channels", "5", "17", "101", "--out", str(tmp / "o3")]),
    }
    tc, _ = best_of(cli_fns, max(1, repeats - 1))

    # (d) saliency: one forward pass, one backward pass per unit
    xs = torch.randn((8 if not args.quick else 2, 3, size, size),
                     generator=torch.Generator().manual_seed(1))
    sal_fns = {
        "sal 1": lambda: saliency(spec, xs, ("conv5", 5), batch_size=8),
        "sal 3": lambda: saliency(spec, xs, [("conv5", c) for c in (5, 17, 101)], batch_size=8),
        "sal old 3": lambda: [saliency(spec, xs, ("conv5", c), batch_size=8)
                              for c in (5, 17, 101)],
    }
    ts, _ = best_of(sal_fns, max(1, repeats - 1))

    def rate(sec):
        return f"{n_occ / sec:.1f}"

    def ratio(a, b):
        return f"{t[a] / t[b]:.2f} (CPU {tcpu[a] / tcpu[b]:.2f})"

    rows = [
        ("(a) bare forward of the occluded images, up to conv3 (the work occlusion must do)",
         "bare conv3", "1.00 (reference)", ""),
        ("(a) bare forward, up to conv5", "bare conv5", "", ""),
        ("(a) bare forward, whole network (once)", "bare full", "", ""),
        ("(b) `occlusion_map`, 1 unit (conv3)", "occ 1", ratio("occ 1", "bare conv3"), "1.00"),
        ("(b) `occlusion_map`, 3 units (conv3), one call", "occ 3",
         ratio("occ 3", "bare conv3"), ratio("occ 3", "occ 1")),
        ("(b) `occlusion_map`, 8 units (conv3), one call", "occ 8",
         ratio("occ 8", "bare conv3"), ratio("occ 8", "occ 1")),
        ("(b) `occlusion_map`, 3 units in conv2, conv3, conv5, one call", "occ 3 layers",
         ratio("occ 3 layers", "bare conv5") + " vs bare to conv5", ratio("occ 3 layers", "occ 1")),
        ("(b) old way: 3 single-unit calls (conv3; once)", "old 3",
         ratio("old 3", "bare conv3"), ratio("old 3", "occ 1")),
    ]
    rows = [(a, t[k], rate(t[k]), d, e) for a, k, d, e in rows]
    lines = [
        f"Random-weight AlexNet, {n_images} image(s) of {size}x{size}, window {window}, stride "
        f"{stride}: {n_pos} positions per image, {n_occ} occluded images, batches of {batch}; "
        f"best of {repeats} interleaved repeats (wall clock; in brackets the ratio of this "
        f"process's CPU times, less disturbed by the other jobs); torch threads "
        f"{torch.get_num_threads()}. The 3-unit call equals the 3 single-unit calls (max "
        f"relative difference {err:.1e}).",
        "",
        "| measure | time (s) | occluded images/s | time / bare forward | time / 1 unit |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b:.2f} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
    lines += [
        "",
        f"(c) `neuroprobe rf` (occlusion + upsampling + figures and HDF5; in-process, model "
        f"build and image loading included), layer conv3, {cli_images} picture(s) 175x175 "
        f"(preprocessed to 224), window {cli_window}, stride {cli_stride}: 1 channel "
        f"{tc['rf 1']:.2f} s, 3 channels {tc['rf 3']:.2f} s: "
        f"**ratio {tc['rf 3'] / tc['rf 1']:.2f}** (target <= 1.3).",
        "",
        f"(d) vanilla `saliency`, conv5, {len(xs)} images in one batch: 1 unit "
        f"{ts['sal 1']:.2f} s; "
        f"3 units in one call {ts['sal 3']:.2f} s ({ts['sal 3'] / ts['sal 1']:.2f}x: one forward "
        f"pass, one backward pass per unit); 3 single-unit calls {ts['sal old 3']:.2f} s "
        f"({ts['sal old 3'] / ts['sal 1']:.2f}x).",
        "",
        f"Peak RSS {peak_rss_mb():.0f} MiB; total {time.perf_counter() - t_start:.0f} s. Machine: "
        f"{machine()}. Shared machine (other jobs on the same cores): absolute times are noisy; "
        "ratios come from the same run, interleaved. Command: `python benchmarks/bench_inspect.py"
        f"{' --quick' if args.quick else ''}`.",
    ]
    text = "### Inspection (`python benchmarks/bench_inspect.py`)\n\n" + "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("inspect", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
