"""Handlers of the steering commands."""

from __future__ import annotations

import json
from pathlib import Path

from ..artifacts import atomic_write_text, ensure_writable
from ..commands import quiet_progress
from ..errors import ConfigError
from ..table import show
from .evaluate import default_alphas

DEMO_PAIR = ("zoo-xs", "zoo-m")
# The layer pair of the demo, from the sweep in docs/zoo.md (benchmarks/layer_sweep.py): of xs L0/L1 × m L0–L3,
# xs L0 → m L0 gives the largest transferred slope (1.21, 12 random vectors ≤ 0.17) and cosine to native 0.85.
# Other pairs get the middle-block rule of `lrt.models.default_layers` unless --source-layer/--target-layer are given.
DEMO_LAYERS = (0, 0)


def parse_alphas(args) -> list[float]:
    if args.alphas is None:
        return default_alphas(args.alpha_max)
    try:
        alphas = [float(a) for a in args.alphas.split(",") if a.strip()]
    except ValueError:
        raise ConfigError(f"--alphas must be a comma list of numbers, got {args.alphas!r}") from None
    if not alphas:
        raise ConfigError("the α grid is empty; give at least one α (e.g. --alphas -0.2,0,0.2)")
    return sorted(alphas)


def steer_cmd(args) -> int:
    from .. import zoo
    from ..models import load_model
    from .concepts import concept_texts
    from .data import contrast_items, load_contrasts
    from .vectors import contrast_vector, text_vector

    out = ensure_writable(args.out)
    lm = load_model(args.model, args.dtype, args.device)
    layer = args.layer if args.layer == "embed" else lm.layer_index(args.layer)
    if args.contrast:
        items = contrast_items(lm.tokenizer, load_contrasts(args.contrast, args.max_pairs), args.chat)
        v = contrast_vector(lm, items, layer, args.method, name=Path(args.contrast).stem)
    else:
        corpus = args.concept_corpus or str(zoo.review_sample())
        v = text_vector(lm, concept_texts(args.concept, corpus, None, args.max_pairs, args.seed), layer, args.position)
    v.save(out)
    if args.gguf:
        v.to_gguf(args.gguf, model_hint=getattr(lm.model.config, "model_type", "llama"))
    show([["model", v.model], ["layer", v.layer], ["method", v.method], ["pairs", v.n_pairs], ["norm", v.norm],
          ["layer median token norm", v.median_norm]], title=f"\nvector saved to {out}")
    return 0


def transfer_cmd(args) -> int:
    from ..maps import AffineMap
    from .transfer import transfer_vector
    from .vectors import SteeringVector

    out = ensure_writable(args.out)
    v = SteeringVector.load(args.vector)
    m = AffineMap.load(args.map)
    t = transfer_vector(v, m, args.mode, args.rescale)
    t.save(out)
    show([["from", f"{v.model} L{v.layer} (norm {v.norm:.4g})"], ["to", f"{t.model} L{t.layer} (norm {t.norm:.4g})"],
          ["mode", args.mode], ["map held-out R²", t.meta.get("map_heldout_r2")]], title=f"\nvector saved to {out}")
    return 0


def evaluate_cmd(args) -> int:
    from .. import zoo
    from ..models import load_model
    from .concepts import sentiment_items
    from .data import contrast_items, load_contrasts
    from .evaluate import EvalConfig, evaluate_vectors
    from .experiment import neutral_sequences
    from .vectors import SteeringVector

    out = ensure_writable(args.out)
    alphas = parse_alphas(args)
    lm = load_model(args.model, args.dtype, args.device)
    native = SteeringVector.load(args.native)
    native.check_model(lm)
    vectors = {"native": native.vector}
    for path in args.vector:
        v = SteeringVector.load(path)
        v.check_model(lm)
        vectors[v.meta.get("origin", Path(path).name).replace("-", "_")] = v.vector
    corpus = args.eval_corpus or str(zoo.heldout_text())
    items = (contrast_items(lm.tokenizer, load_contrasts(args.test), args.chat) if args.test
             else sentiment_items(lm.tokenizer, corpus, lowercase=args.lowercase, seed=args.seed))
    capability = (contrast_items(lm.tokenizer, load_contrasts(args.mmlu, args.mmlu_items), args.chat)
                  if args.mmlu else None)
    s = evaluate_vectors(lm, native.layer, items, vectors, native.median_norm,
                         EvalConfig(alphas=alphas, n_random=args.n_random, seed=args.seed),
                         neutral_ids=neutral_sequences(lm.tokenizer, corpus), capability_items=capability)
    results = {"kind": "lrt_results", "format_version": 1, "settings": {k: v for k, v in vars(args).items()
                                                                         if k != "func"},
               "models": {"source": {"name": "(vectors)", "layer": "-"},
                          "target": {"name": lm.name, "layer": native.layer}},
               "vectors": {"concept": native.meta.get("concept"), "cosine_to_native": {}}, "steering": s}
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    print_steering_summary(s)
    if "capability" in s:
        c = s["capability"]
        show([["unsteered", c["unsteered"]]] + [[n, a] for n, a in c["steered"].items() if not n.startswith("random_")],
             ["vector", f"A/B accuracy at α={c['alpha']}"], title=f"\ncapability ({c['n_items']} items)")
    print(f"\nresults written to {out}/results.json (lrt report {out})")
    return 0


def print_steering_summary(s: dict) -> None:
    key = "slope_monotonic" if "monotonic_range" in s else "slope"
    comp = s.get("comparison", {})
    rows = []
    for name, c in s["curves"].items():
        if name.startswith("random_"):
            continue
        cm = comp.get(name, {})
        rows.append([name, c[key], c["mean"][0], c["mean"][-1], cm.get("mean_r"), cm.get("mean_r_shift"),
                     cm.get("mean_r_odd")])
    rm = comp.get("random_mean", {})
    rows.append([f"random (×{len(s['random']['slopes'])}: max / max |·| / mean |·|)",
                 f"{s['random']['max_slope']:.3g} / {s['random']['max_abs_slope']:.3g} / "
                 f"{s['random']['mean_abs_slope']:.3g}" if s["random"]["slopes"]
                 else None, None, None, rm.get("mean_r"), rm.get("mean_r_shift"), rm.get("mean_r_odd")])
    show(rows, ["vector", "slope", f"prop@α={s['alphas'][0]}", f"prop@α={s['alphas'][-1]}", "mean r",
                "mean r shifts", "mean r odd"], title=f"\nsteering on {s['n_items']} items, α grid {s['alphas']}"
                                        + (f", native monotonic in {s['monotonic_range']}" if "monotonic_range" in s
                                           else ""))


def report_cmd(args) -> int:
    from ..report import write_report

    path = write_report(args.results, args.output)
    print(f"report written to {path}")
    return 0


def generate_cmd(args) -> int:
    import torch

    from ..models import load_model
    from .apply import scaled, steering
    from .vectors import SteeringVector

    lm = load_model(args.model, args.dtype, args.device)
    v = SteeringVector.load(args.vector)
    v.check_model(lm)
    tok = lm.tokenizer
    for prompt in args.prompt:
        ids = tok(prompt, return_tensors="pt").input_ids.to(lm.device)
        texts = []
        for alpha in (0.0, args.alpha):
            with torch.no_grad(), steering(lm, v.layer, scaled(v.unit(), alpha, v.median_norm), args.mode, args.where):
                gen = lm.model.generate(ids, max_new_tokens=args.max_new_tokens, do_sample=False,
                                        pad_token_id=tok.pad_token_id)
            texts.append(tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True))
        print(f"\n>>> {prompt}\n[unsteered] {texts[0]}\n[α={args.alpha}] {texts[1]}")
    return 0


def demo_cmd(args) -> int:
    from .experiment import ExperimentConfig, run_experiment
    from ..report import write_report

    quiet_progress(args)
    layers = (args.source_layer, args.target_layer)
    if layers == (None, None) and (args.source, args.target) == DEMO_PAIR:
        layers = DEMO_LAYERS
    cfg = ExperimentConfig(source=args.source, target=args.target, source_layer=layers[0],
                           target_layer=layers[1], corpus=args.corpus, tokens=args.tokens or 60_000,
                           context=min(args.context, 128), batch_size=args.batch_size, concept=args.concept,
                           concept_corpus=args.concept_corpus, eval_corpus=args.eval_corpus, contrast=args.contrast,
                           test=args.test, max_pairs=args.max_pairs, method=args.method, position=args.position,
                           chat=args.chat, lowercase=args.source.startswith("zoo-"), alphas=parse_alphas(args),
                           n_random=args.n_random, dtype=args.dtype, device=args.device, seed=args.seed,
                           progress=not args.no_progress)
    results = run_experiment(cfg, args.out)
    report = write_report(args.out)
    from ..commands import map_summary_rows
    from ..maps import AffineMap

    show(map_summary_rows(AffineMap.load(Path(args.out) / "map")), title="\nmap")
    print_steering_summary(results["steering"])
    v = results["verdict"]
    show([[k, val] for k, val in [
        ("cosine(transferred, native)", results["vectors"]["cosine_to_native"]["transferred_direction"]),
        ("transferred beats every random vector (|slope|)", v["transferred_beats_all_random"]),
        ("native beats every random vector (|slope|)", v["native_beats_all_random"]),
        ("better transfer mode", v["better_transfer_mode"]),
        ("total seconds", results["timings"]["total"])]], title="\nverdict")
    print(f"\nreport: {report}\nresults: {Path(args.out) / 'results.json'}")
    return 0
