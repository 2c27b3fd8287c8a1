"""CAA vector on shared prefixes vs two full sequences per pair, same items, same vector (to 1e-5).

- ``plain``: ``contrast_vector(..., share_prefix=False)``: prompt + positive and prompt + negative as full
  sequences (right-padded batches of 16 sequences, in item order), the way vectors were computed before;
- ``shared``: ``contrast_vector(...)``: each prompt once with the KV cache (batches of equal-length prompts,
  early stop after the layer), then both answer tokens as one-token continuations of that cache.

Models: a shipped zoo model with real CAA items, and a random-init Llama (``--config llama-WIDTHxLAYERS``) with
the same items (zoo tokenizer). Timings are the best of ``--repeats`` interleaved runs.

    python benchmarks/bench_caa.py --model zoo-m --behaviour refusal --pairs 150 --config llama-768x12
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def random_llama(spec: str, vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    width, layers = (int(v) for v in spec.split("-")[1].split("x"))
    torch.manual_seed(0)                   # a benchmark script owns its process
    conf = LlamaConfig(vocab_size=vocab, hidden_size=width, intermediate_size=int(width * 8 / 3 // 32 * 32),
                       num_hidden_layers=layers, num_attention_heads=max(1, width // 64),
                       max_position_embeddings=2048, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    return LlamaForCausalLM(conf).eval()


def bench(lm, items, layer: int, repeats: int, batch_size: int) -> dict:
    from lrt.steering.vectors import contrast_vector

    best = {"plain": float("inf"), "shared": float("inf")}
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # a fallback to full sequences would time the plain path twice
        for _ in range(repeats):            # interleaved, best of each
            for name, share in (("plain", False), ("shared", True)):
                t = time.perf_counter()
                out[name] = contrast_vector(lm, items, layer, batch_size=batch_size, share_prefix=share)
                best[name] = min(best[name], time.perf_counter() - t)
    a, b = out["plain"], out["shared"]
    cos = float(torch.nn.functional.cosine_similarity(a.vector.double(), b.vector.double(), dim=0))
    return {**best, "diff": float((a.vector - b.vector).abs().max()), "cos": cos,
            "norm_diff": abs(a.median_norm - b.median_norm), "norm": a.median_norm}


def main() -> None:
    from lrt.data.contrasts import contrast_items, load_contrasts
    from lrt.models.blocks import find_blocks
    from lrt.models.load import LoadedModel, load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="zoo-m", help="shipped (or any) model name")
    ap.add_argument("--config", default="llama-768x12", help="random-init llama-WIDTHxLAYERS ('' to skip)")
    ap.add_argument("--behaviour", default="refusal", help="a CAA behaviour under --data")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "caa" / "generate"),
                    help="folder of CAA behaviours (BEHAVIOUR/generate_dataset.json)")
    ap.add_argument("--pairs", type=int, default=150)
    ap.add_argument("--layer", type=int, default=None, help="block index (default: each model's middle block)")
    ap.add_argument("--batch-size", type=int, default=16, help="contrast_vector's batch size")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)

    base = load_model(a.model)
    contrasts = load_contrasts(Path(a.data) / a.behaviour / "generate_dataset.json", a.pairs)
    items = contrast_items(base.tokenizer, contrasts)
    models = [base]
    if a.config:
        model = random_llama(a.config, len(base.tokenizer))
        models.append(LoadedModel(model=model, tokenizer=base.tokenizer, name=f"{a.config} (random)",
                                  blocks=find_blocks(model)))
    lengths = [len(it.ids) for it in items]
    print(f"\nCAA vector, {a.behaviour}: {len(items)} pairs, prompts of {min(lengths)}–{max(lengths)} tokens "
          f"(mean {sum(lengths) / len(lengths):.0f}, {len(set(lengths))} lengths), batch {a.batch_size} "
          f"({torch.get_num_threads()} threads, best of {a.repeats})")
    print(f"{'model':<28} {'layer':>5} {'plain s':>8} {'shared s':>9} {'speed-up':>9} {'max |Δ|':>9} "
          f"{'1 − cos':>8} {'median norm':>12} {'its |Δ|':>8}")
    for lm in models:
        layer = (lm.n_layers - 1) // 2 if a.layer is None else a.layer
        r = bench(lm, items, layer, a.repeats, a.batch_size)
        print(f"{lm.name:<28} {layer:>5} {r['plain']:>8.2f} {r['shared']:>9.2f} {r['plain'] / r['shared']:>8.2f}× "
              f"{r['diff']:>9.2e} {1 - r['cos']:>8.1e} {r['norm']:>12.5f} {r['norm_diff']:>8.1e}")


if __name__ == "__main__":
    main()
