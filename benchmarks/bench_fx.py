"""Benchmark: capturing 20 intermediate tensors (functional additions included) vs a bare forward
pass, and vs torchlens when it is installed (issue 16, section 5).

* ResNet-18 (random weights): 20 torch.fx nodes as ``"fx:<node>"`` layers: the 8 residual
  additions (``layer1.0.add`` ...), their 8 ReLUs, and 4 block inputs' convolutions; captured by
  :func:`neuroprobe.models.fx.tap_graph` + :func:`neuroprobe.models.hooks.capture` (copies of the
  tensors, as the extractor makes), and by the whole ``DNNFeatureExtractor.transform`` with
  ``pooling="mean"``.
* A tiny GPT-2 (``transformers.GPT2Config(n_layer=2)``, random): with transformers 5 its forward
  does not trace with ``torch.fx`` (the benchmark prints the error neuroprobe raises); its 20
  module outputs (``h.I.ln_1``, ``h.I.attn``, ``h.I.mlp.c_fc`` ...) are captured with module hooks
  in one pass instead.
* torchlens (``trace``; ``log_forward_pass`` before 2.0), when importable: the same network,
  every tensor logged.

Ratios are the best of ``--repeats`` interleaved runs of each variant on the same input, in one
process.

Usage::

    python benchmarks/bench_fx.py               # batch 8 at 224 px, 5 repeats
    python benchmarks/bench_fx.py --repeats 3 --no-write
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._results import machine, write_section  # noqa: E402


def _best(fns, repeats):
    """Best wall time of each function, run interleaved ``repeats`` times."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: min(v) for name, v in times.items()}


def resnet_nodes():
    nodes = []
    for stage in range(1, 5):
        for block in range(2):
            nodes += [f"layer{stage}.{block}.add", f"layer{stage}.{block}.relu_1"]
        nodes.append(f"layer{stage}.0.conv1")
    return nodes


def bench_resnet(batch, size, repeats):
    import torch
    from torchvision.models import resnet18

    from neuroprobe.models.fx import tap_graph
    from neuroprobe.models.hooks import capture
    from neuroprobe.transformers.extraction import DNNFeatureExtractor

    torch.manual_seed(0)
    net = resnet18().eval()
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    nodes = resnet_nodes()
    assert len(nodes) == 20 and sum(n.endswith(".add") for n in nodes) == 8
    gm, taps = tap_graph(net, [f"fx:{n}" for n in nodes])
    ext = DNNFeatureExtractor(net, layers=[f"fx:{n}" for n in nodes], pooling="mean",
                              batch_size=batch, cache=False).fit(x[:1])

    def bare():
        with torch.no_grad():
            net(x)

    def tapped():
        with torch.no_grad(), capture(gm, list(taps.values())) as out:
            gm(x)
        assert len(out) == 20

    def extractor():
        ext.transform(x)

    fns = {"bare": bare, "fx taps + hooks (copies)": tapped, "DNNFeatureExtractor (mean)":
           extractor}
    lens = _torchlens(net, x)
    if lens is not None:
        fns["torchlens"] = lens
    bare()
    tapped()  # warm-up
    best = _best(fns, repeats)
    return {"model": f"ResNet-18, batch {batch} x 3 x {size} x {size}", "best": best,
            "torchlens": lens is not None}


def _torchlens(net, x):
    try:
        import torchlens
    except ImportError:
        return None

    if hasattr(torchlens, "trace"):  # torchlens >= 2: every tensor saved by default

        def run():
            torchlens.trace(net, x)
    else:

        def run():
            torchlens.log_forward_pass(net, x, layers_to_save="all")

    return run


def bench_gpt2(batch, length, repeats):
    import torch
    from transformers import GPT2Config, GPT2Model
    from transformers.utils import logging

    from neuroprobe.exceptions import TraceError
    from neuroprobe.models.fx import graph_nodes
    from neuroprobe.models.hooks import capture

    logging.set_verbosity_error()
    torch.manual_seed(0)
    model = GPT2Model(GPT2Config(n_layer=2, n_embd=128, n_head=4, vocab_size=1000,
                                 n_positions=length, bos_token_id=0, eos_token_id=0)).eval()
    ids = torch.randint(0, 1000, (batch, length), generator=torch.Generator().manual_seed(0))
    try:
        graph_nodes(model)
        trace = "traces"
    except TraceError as exc:
        trace = str(exc).split(" (", 1)[0] + " (" + str(exc).split(" (", 1)[1].split(")")[0] + ")"
    names = []
    for i in range(2):
        names += [f"h.{i}.{m}" for m in ("ln_1", "attn", "attn.c_attn", "attn.c_proj", "ln_2",
                                         "mlp", "mlp.c_fc", "mlp.act", "mlp.c_proj")]
        names.append(f"h.{i}")
    assert len(names) == 20

    def bare():
        with torch.no_grad():
            model(input_ids=ids)

    def hooked():
        with torch.no_grad(), capture(model, names) as out:
            model(input_ids=ids)
        assert len(out) == 20

    fns = {"bare": bare, "module hooks (copies)": hooked}
    lens = _torchlens(model, ids)
    if lens is not None:
        fns["torchlens"] = lens
    bare()
    hooked()
    best = _best(fns, repeats)
    return {"model": f"GPT-2 (2 layers, 128 wide), batch {batch} x {length} tokens",
            "best": best, "trace": trace}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: steadier ratios on a shared machine)")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args(argv)
    import importlib.util

    import torch

    torch.set_num_threads(args.threads)
    has_lens = importlib.util.find_spec("torchlens") is not None
    load_before = os.getloadavg()[0]
    t_start = time.perf_counter()
    res = bench_resnet(args.batch, args.size, args.repeats)
    print(res, flush=True)
    gpt = bench_gpt2(args.batch, args.tokens, args.repeats)
    print(gpt, flush=True)
    load_after = os.getloadavg()[0]

    def rows_of(result):
        bare = result["best"]["bare"]
        return [f"| {result['model']} | {name} | {t * 1000:.0f} ms | **{t / bare:.2f}** |"
                for name, t in result["best"].items()]

    md = "\n".join([
        f"### 20 intermediate tensors vs a bare forward (`python benchmarks/bench_fx.py "
        f"--repeats {args.repeats}`)",
        "",
        f"{machine()}; torch threads {args.threads}. Shared machine (2 AMD EPYC cores, 8 "
        f"engineers): load average {load_before:.1f} before, {load_after:.1f} after; absolute "
        "times are noisy, variants "
        f"run interleaved and the best of {args.repeats} is kept. Total "
        f"{time.perf_counter() - t_start:.0f} s.",
        "",
        "ResNet-18: 20 `fx:` nodes (8 residual additions, 8 ReLUs after them, 4 convolutions) "
        "tapped in one traced graph; GPT-2: " + gpt["trace"] + "; its 20 module outputs are "
        "hooked instead. "
        + ("torchlens: `log_forward_pass(..., layers_to_save='all')`." if has_lens else
           "**torchlens is not installed here** (`import torchlens` fails; it is not in the "
           "project's extras), so only the ratio to the bare forward pass is reported (torchlens' "
           "own docs give ~14x for its trace)."),
        "",
        "| network | capture | time | ratio to bare forward (goal <= 1.2) |",
        "|---|---|---|---|",
        *rows_of(res),
        *rows_of(gpt),
    ]) + "\n"
    print(md)
    if not args.no_write:
        write_section("fx", md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
