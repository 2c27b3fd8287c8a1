"""Harvest throughput (tokens/s) at a mid-depth layer, side by side in one run:

- ``lrt``: :func:`lrt.harvest.capture.run_with_capture` (forward hook on the block, early stop after it);
- ``output_hidden_states``: the full model with ``output_hidden_states=True`` (every layer, LM head);
- ``truncated``: a bare forward of only the blocks up to the layer (the physical limit here).

    python benchmarks/bench_harvest.py --model zoo-m --layer 1
    python benchmarks/bench_harvest.py --config llama-768x12 --layer 5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def random_llama(spec: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    width, layers = (int(v) for v in spec.split("-")[1].split("x"))
    torch.manual_seed(0)
    conf = LlamaConfig(vocab_size=8192, hidden_size=width, intermediate_size=int(width * 8 / 3 // 32 * 32),
                       num_hidden_layers=layers, num_attention_heads=width // 64, max_position_embeddings=1024)
    return LlamaForCausalLM(conf).eval()


def main() -> None:
    from lrt.harvest.capture import run_with_capture
    from lrt.models.blocks import find_blocks
    from lrt.models.load import LoadedModel, load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="model name (e.g. zoo-m)")
    ap.add_argument("--config", default=None, help="random-init llama-WIDTHxLAYERS instead of --model")
    ap.add_argument("--layer", type=int, required=True)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    if a.config:
        model = random_llama(a.config)
        lm = LoadedModel(model=model, tokenizer=None, name=a.config, blocks=find_blocks(model))
    else:
        lm = load_model(a.model)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, lm.model.config.vocab_size, (a.batch_size, a.context), generator=g)
               for _ in range(a.batches)]
    inner = lm.model.model

    def lrt_hook(ids):
        return run_with_capture(lm, [a.layer], ids)[a.layer]

    def hidden_states(ids):
        return lm.model(input_ids=ids, output_hidden_states=True).hidden_states[a.layer + 1]

    full_layers = inner.layers

    def truncated(ids):
        inner.layers = full_layers[:a.layer + 1]
        try:
            out = inner(input_ids=ids, use_cache=False)   # no LM head; blocks 0..layer only
        finally:
            inner.layers = full_layers
        return out.last_hidden_state

    with torch.no_grad():
        ref = hidden_states(batches[0])
        assert torch.equal(lrt_hook(batches[0]), ref)
        best = {}
        for _ in range(a.repeats):        # interleaved repeats, best of each
            for name, fn in (("lrt", lrt_hook), ("output_hidden_states", hidden_states), ("truncated", truncated)):
                t = time.perf_counter()
                for ids in batches:
                    fn(ids)
                best[name] = max(best.get(name, 0.0), a.batches * ids.numel() / (time.perf_counter() - t))
    n = lm.n_layers
    print(f"\nharvest throughput, {lm.name}, layer {a.layer} of {n} blocks, batch {a.batch_size}×{a.context}, "
          f"{torch.get_num_threads()} threads (best of {a.repeats})")
    print(f"{'method':<22} {'tokens/s':>10} {'lrt ÷ method':>13}")
    for name, tps in best.items():
        print(f"{name:<22} {tps:>10.0f} {best['lrt'] / tps:>12.2f}×")


if __name__ == "__main__":
    main()
