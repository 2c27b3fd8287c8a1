"""Model cards for the trained family: recipe, parameters, held-out loss per source, baseline, curve, samples."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import torch

from ...pipelines.config import DEMO_HARVEST
from .config import EOT, TrainConfig
from .recipe import eval_loss, tokenize_split

EVAL_SEQS = 100          # the fixed held-out slice: first EVAL_SEQS × seq_len tokens of the held-out stream
SAMPLE_PROMPTS = ["the movie was", "The President said that", "In the morning, the farmers", "this film is a"]


def count_params(model) -> tuple[int, int]:
    total = sum(p.numel() for n, p in model.named_parameters())
    emb = model.get_input_embeddings().weight.numel()
    return total, total - emb


def unigram_baseline(train: np.ndarray, heldout: np.ndarray, vocab: int) -> float:
    """Cross-entropy (nats) of the train-split unigram distribution (add-one) on held-out tokens."""
    counts = np.bincount(train.astype(np.int64), minlength=vocab).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    return float(-logp[heldout.astype(np.int64)].mean())


def samples(model, tokenizer, n_new: int = 30) -> list[dict]:
    out = []
    g = torch.Generator().manual_seed(0)
    for prompt in SAMPLE_PROMPTS:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            greedy = model.generate(ids, max_new_tokens=n_new, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            with torch.random.fork_rng(devices=[]):   # generate() samples from the global RNG: seed it, restore it
                torch.manual_seed(int(torch.randint(0, 10**6, (1,), generator=g)))
                sampled = model.generate(ids, max_new_tokens=n_new, do_sample=True, top_k=40, temperature=0.8,
                                         pad_token_id=tokenizer.pad_token_id)
        out.append({"prompt": prompt, "greedy": tokenizer.decode(greedy[0, ids.shape[1]:]),
                    "sampled": tokenizer.decode(sampled[0, ids.shape[1]:])})
    return out


def loss_curve(losses: list[float], path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2))
    ax = fig.subplots()
    k = max(1, len(losses) // 100)
    smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
    ax.plot(losses, color="#bbbbbb", lw=0.6, label="per step")
    ax.plot(np.arange(len(smooth)) + k - 1, smooth, color="#1f77b4", label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("train loss (nats)")
    ax.set_title(title)
    ax.legend()
    fig.savefig(path, dpi=90, bbox_inches="tight")


def evaluate_saved(model_dir: Path, heldout: np.ndarray, per_source: dict[str, np.ndarray], seq_len: int) -> dict:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    loss = eval_loss(model, heldout, seq_len, EVAL_SEQS)
    by_src = {s: eval_loss(model, t, seq_len, 20) for s, t in sorted(per_source.items()) if len(t) >= seq_len}
    return {"model": model, "loss": loss, "per_source": by_src}


def measure_map(cfg: TrainConfig, small: str, large: str, tokens: int = DEMO_HARVEST["tokens"]) -> dict:
    """Fit the map smallest → largest (middle block, same relative depth) on held-out-split text."""
    from ...harvest.config import HarvestConfig
    from ...maps.config import FitConfig
    from ...maps.fit import fit_map
    from ...models.layers import default_layers
    from ...models.load import load_model

    out = Path(cfg.out)
    a, b = load_model(out / f"zoo-{small}"), load_model(out / f"zoo-{large}")
    ls, lt = default_layers(a.n_layers, b.n_layers)
    hc = HarvestConfig(corpus=cfg.corpus, tokens=tokens, context=128, batch_size=16, doc_split="heldout",
                       doc_split_percent=cfg.heldout_percent, progress=False)
    m = fit_map(a, b, ls, lt, hc, FitConfig(seed=cfg.seed))
    held, ctrl = m.meta["metrics"]["heldout"], m.meta["metrics"]["shuffled_control_heldout"]
    return {"source": f"zoo-{small}", "target": f"zoo-{large}", "source_layer": ls, "target_layer": lt,
            "tokens": tokens, "heldout_rows": held["rows"], "heldout_r2": held["r2"],
            "heldout_r2_below_q99": held.get("r2_below_q99"), "cosine_mean": held.get("cosine_mean"),
            "shuffled_control_r2": ctrl["r2"]}


def write_cards(cfg: TrainConfig, results: dict) -> dict:
    from transformers import PreTrainedTokenizerFast

    out = Path(cfg.out)
    tok = PreTrainedTokenizerFast.from_pretrained(out / "tokenizer")
    train, _ = tokenize_split(cfg, tok, "train")
    heldout, per_source = tokenize_split(cfg, tok, "heldout")
    baseline = unigram_baseline(train, heldout[: EVAL_SEQS * cfg.seq_len], len(tok))
    summary = {"recipe": {**dataclasses.asdict(cfg), "sizes": [dataclasses.asdict(s) for s in cfg.sizes]},
               "split": f"held-out = documents whose sha1(doc_id) % 10000 < {cfg.heldout_percent * 100:.0f}",
               "train_tokens": int(len(train)), "heldout_tokens": int(len(heldout)),
               "unigram_baseline_loss": baseline,
               "heldout_slice": {"sequences": EVAL_SEQS, "seq_len": cfg.seq_len}, "models": {}}
    for name, r in results.items():
        d = out / f"zoo-{name}"
        ev = evaluate_saved(d, heldout, per_source, cfg.seq_len)
        total, non_emb = count_params(ev["model"])
        loss_curve(r["losses"], d / "loss_curve.png", f"zoo-{name} ({r['size']['width']}×{r['size']['layers']})")
        entry = {"width": r["size"]["width"], "layers": r["size"]["layers"], "heads": r["size"]["heads"],
                 "params_total": total, "params_non_embedding": non_emb, "tokens_seen": r["tokens_seen"],
                 "steps": r["steps"], "train_seconds": r["train_seconds"], "trained_on": f"{r['device']}, "
                 f"{r['threads']} threads", "heldout_loss": ev["loss"], "heldout_perplexity": math.exp(ev["loss"]),
                 "heldout_loss_per_source": ev["per_source"], "samples": samples(ev["model"], tok)}
        summary["models"][name] = entry
        (d / "card.json").write_text(json.dumps(entry, indent=2))
    by_width = sorted(results, key=lambda n: results[n]["size"]["width"])
    if len(by_width) > 1:
        summary["map_smallest_to_largest"] = measure_map(cfg, by_width[0], by_width[-1])
    for name, entry in summary["models"].items():
        (out / f"zoo-{name}" / "README.md").write_text(render_card(name, entry, summary))
    return summary


def _map_section(s: dict) -> str:
    m = s.get("map_smallest_to_largest")
    if not m:
        return ""
    return (f"\n## The family is a family: an affine map relates its members\n"
            f"{m['source']} layer {m['source_layer']} → {m['target']} layer {m['target_layer']}, closed form on "
            f"{m['tokens']:,} held-out-split tokens: held-out R² **{m['heldout_r2']:.3f}** (a map fitted on shuffled, "
            f"unpaired rows: {m['shuffled_control_r2']:.3f}); R² under the 99th norm percentile "
            f"{m['heldout_r2_below_q99']:.3f}; mean cosine {m['cosine_mean']:.3f}.\n")


def _reproduce(r: dict) -> str:
    flags = [f"--tokens {r['tokens']}" if r.get("tokens") else "",
             f"--jobs {r['jobs']}" if r.get("jobs", 1) > 1 else "",
             f"--threads {r['threads']}" if r.get("threads") else "",
             f"--device {r['device']}" if r.get("device", "cpu") != "cpu" else ""]
    return " ".join([f"lrt zoo train --corpus {r['corpus']} --out DIR", *filter(None, flags)])


def render_card(name: str, e: dict, s: dict) -> str:
    src_rows = "\n".join(f"| {k} | {v:.3f} | {math.exp(v):.1f} |" for k, v in e["heldout_loss_per_source"].items())
    sample_rows = "\n".join(f"- **{x['prompt']}** → greedy: `{x['greedy'].strip()}` · sampled: `{x['sampled'].strip()}`"
                            for x in e["samples"])
    r = s["recipe"]
    return f"""# zoo-{name}

A {e['width']}-wide, {e['layers']}-layer Llama decoder (RMSNorm, RoPE, SwiGLU, {e['heads']} heads, tied embeddings),
one of the `lrt` embedded family (zoo-xs, zoo-s, zoo-m): same data, same tokenizer, same recipe, different sizes.
Load it with plain transformers: `AutoModelForCausalLM.from_pretrained(dir)`, `AutoTokenizer.from_pretrained(dir)`.

| | |
| --- | --- |
| parameters (total / non-embedding) | {e['params_total']:,} / {e['params_non_embedding']:,} |
| tokens seen | {e['tokens_seen']:,} ({e['steps']} steps × {r['batch_size']} × {r['seq_len']}) |
| trained on | {e['trained_on']}, {e['train_seconds'] / 60:.1f} min{f" ({r['jobs']} sizes trained at once)" if r.get('jobs', 1) > 1 else ""} |
| held-out loss / perplexity | **{e['heldout_loss']:.4f}** / {e['heldout_perplexity']:.1f} (first {s['heldout_slice']['sequences']} × {s['heldout_slice']['seq_len']} held-out tokens) |
| unigram baseline on the same tokens | {s['unigram_baseline_loss']:.4f} nats (perplexity {math.exp(s['unigram_baseline_loss']):.0f}) |

## Recipe
Corpus `natural_text.jsonl.gz` (../shared: Brown, ABC news, movie reviews, State of the Union, inaugural addresses,
web text); split by document: {s['split']}; {s['train_tokens']:,} train tokens, {s['heldout_tokens']:,} held-out.
Byte-level BPE, {r['vocab_size']} tokens, trained on the train split. Documents joined by `{EOT}`, packed into
{r['seq_len']}-token sequences, shuffled once with seed {r['seed']} (every size sees the same order). AdamW
(β 0.9/0.95, weight decay 0.1), residual projections (o_proj, down_proj) initialised at std 0.02/√(2·layers), one-cycle lr (peak {r['lr']}, 5% warm-up, cosine to 10%), batch {r['batch_size']},
gradient clip 1.0, fp32 training, saved as bf16. Reproduce: `{_reproduce(r)}`.

## Held-out loss by source (first 20 sequences of each)
| source | loss | perplexity |
| --- | --- | --- |
{src_rows}

## Samples
{sample_rows}
{_map_section(s)}
![training loss](loss_curve.png)
"""
