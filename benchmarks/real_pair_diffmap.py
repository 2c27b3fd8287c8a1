"""Which map carries CAA vectors best on the real pair? cos(A·v_small, v_native) for maps fitted on text and on
*contrast differences of the other behaviours* (leave one behaviour out), without any steering evaluation.

For each of the seven CAA behaviours: the per-pair answer-token differences h(A-answer) − h(B-answer) on both
models (chat template; ``--pairs`` pairs of the generate set; the vector is the mean of the first ``--vector-pairs``,
as in ``real_pair.py``). Maps compared, each judged on the behaviour it never saw:

- ``text``: the closed-form map on natural text (8k tokens, ridge chosen on held-out rows), as in real_pair.py;
- ``diff``: ridge regression Δ_large ≈ A·Δ_small on the other six behaviours' pair differences, the ridge chosen by
  an inner leave-one-behaviour-out over those six;
- ``diff→text``: the same regression shrunk toward the text map, min ‖ΔY − A·ΔX‖² + λ‖A − A_text‖², λ chosen the
  same way (λ → ∞ is the text map).

    python benchmarks/real_pair_diffmap.py --pairs 150 --out runs/real-pair-diffmap
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[2] / "shared"
CAA = SHARED / "data" / "caa"
MODELS = Path.home() / ".cache" / "lrt-models"
BEHAVIOURS = ("refusal", "sycophancy", "corrigible-neutral-HHH", "hallucination", "myopic-reward",
              "survival-instinct", "coordinate-other-ais")
GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def shrunk(X: torch.Tensor, Y: torch.Tensor, lam: float, A0: torch.Tensor | None) -> torch.Tensor:
    """argmin ‖Y − X·Aᵀ‖² + λ·s‖A − A0‖² (A0 = 0 if None), λ relative to s = mean eigenvalue of XᵀX."""
    X, Y = X.double(), Y.double()
    G = X.T @ X
    s = float(G.diagonal().mean())
    rhs = X.T @ Y + (lam * s * A0.double().T if A0 is not None else 0)
    return torch.linalg.solve(G + lam * s * torch.eye(G.shape[0], dtype=G.dtype), rhs).T.float()


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0))


def lobo_fit(diffs: dict, vecs: dict, train: list[str], A0) -> tuple[torch.Tensor, float]:
    """Choose λ by leave-one-behaviour-out within ``train`` (mean cosine), then fit on all of ``train``: the
    product's ``lrt.maps.contrast`` (``lrt fit-map --contrast-sets``) when shrunk toward a prior ``A0``."""
    if A0 is not None:
        from lrt.maps.contrast import choose_lambda, shrunk_fit

        lam, _ = choose_lambda({b: diffs[b] for b in train}, A0, GRID)
        return shrunk_fit(torch.cat([diffs[b][0] for b in train]), torch.cat([diffs[b][1] for b in train]), lam,
                          A0), lam
    best = None
    for lam in GRID:
        score = 0.0
        for held in train:
            rest = [b for b in train if b != held]
            A = shrunk(torch.cat([diffs[b][0] for b in rest]), torch.cat([diffs[b][1] for b in rest]), lam, A0)
            score += cos(A @ vecs[held][0], vecs[held][1]) / len(train)
        if best is None or score > best[1]:
            best = (lam, score)
    lam = best[0]
    return shrunk(torch.cat([diffs[b][0] for b in train]), torch.cat([diffs[b][1] for b in train]), lam, A0), lam


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", default=str(MODELS / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"))
    ap.add_argument("--large", default=str(MODELS / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"))
    ap.add_argument("--source-layer", type=int, default=12)
    ap.add_argument("--target-layer", type=int, default=14)
    ap.add_argument("--pairs", type=int, default=150)
    ap.add_argument("--vector-pairs", type=int, default=60)
    ap.add_argument("--tokens", type=int, default=8000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/real-pair-diffmap")
    ap.add_argument("--evaluate", default="", help="behaviours to also evaluate by steering (as real_pair.py: 24 "
                    "items, answer position, α search, 8 random vectors): native vs A·v through the text map and the "
                    "diff→text map")
    ap.add_argument("--items", type=int, default=24)
    ap.add_argument("--positions", default="answer", choices=["answer", "all"],
                    help="steer the answer position only (cheap) or every position (the LRT paper's intervention)")
    ap.add_argument("--alpha-steps", type=int, default=7, help="points of the α grid built from the α search")
    ap.add_argument("--search-items", type=int, default=16, help="items the α search probes on")
    ap.add_argument("--no-text-vector", action="store_true", help="evaluate native and diff→text only (saves a "
                    "tenth of the grid)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from safetensors.torch import load_file, save_file

    from lrt.data.contrasts import contrast_items, load_contrasts
    from lrt.harvest.config import HarvestConfig
    from lrt.harvest.prefix import continuation_states
    from lrt.maps.fit import fit_map
    from lrt.models.load import load_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / f"diffs-{args.pairs}.safetensors"
    t0 = time.time()
    src, tgt = load_model(args.small, "float32"), load_model(args.large, "float32")
    ls, lt = args.source_layer, args.target_layer
    A_text = fit_map(src, tgt, ls, lt, HarvestConfig(corpus=str(SHARED / "data" / "natural_text.jsonl.gz"),
                                                     tokens=args.tokens, context=128, batch_size=8,
                                                     progress=False)).A
    diffs = {}
    stored = {}
    for f in sorted(out.glob("diffs-*.safetensors")):          # a run with more pairs serves a smaller one
        if int(f.stem.split("-")[1]) >= args.pairs:
            stored.update({k: v[:args.pairs] for k, v in load_file(str(f)).items() if k not in stored})
    for b in BEHAVIOURS:
        if f"{b}.small" in stored:
            diffs[b] = (stored[f"{b}.small"], stored[f"{b}.large"])
            continue
        items = contrast_items(src.tokenizer, load_contrasts(CAA / "generate" / b / "generate_dataset.json",
                                                             args.pairs), chat=True)
        pair = []
        for lm, layer in ((src, ls), (tgt, lt)):
            st = continuation_states(lm, layer, [it.ids for it in items],
                                     [it.positive[:1] + it.negative[:1] for it in items]).states
            pair.append(st[:, 0] - st[:, 1])
        diffs[b] = tuple(pair)
        print(f"{b}: {len(items)} pair differences ({time.time() - t0:.0f} s)", flush=True)
        save_file({f"{k}.{side}": v[i].contiguous() for k, v in diffs.items()
                   for i, side in enumerate(("small", "large"))}, str(cache))
    vecs = {b: (d[0][:args.vector_pairs].mean(0), d[1][:args.vector_pairs].mean(0)) for b, d in diffs.items()}
    rows = []
    print(f"\n{'behaviour':24s} {'text':>6s} {'diff':>6s} {'λ':>6s} {'diff→text':>9s} {'λ':>6s} "
          f"{'native vs other natives (max cos)':>8s} {'diff→text vs other natives':>8s}")
    for b in BEHAVIOURS:
        others = [o for o in BEHAVIOURS if o != b]
        A_d, lam_d = lobo_fit(diffs, vecs, others, None)
        A_s, lam_s = lobo_fit(diffs, vecs, others, A_text)
        v_s, v_t = vecs[b]
        r = {"behaviour": b, "cos_text": cos(A_text @ v_s, v_t), "cos_diff": cos(A_d @ v_s, v_t), "lambda_diff": lam_d,
             "cos_diff_to_text": cos(A_s @ v_s, v_t), "lambda_diff_to_text": lam_s,
             "native_cos_to_other_behaviours": max(cos(v_t, vecs[o][1]) for o in others),
             "cos_diff_to_text_vs_other_natives": max(cos(A_s @ v_s, vecs[o][1]) for o in others)}
        rows.append(r)
        print(f"{b:24s} {r['cos_text']:6.3f} {r['cos_diff']:6.3f} {lam_d:6g} {r['cos_diff_to_text']:9.3f} "
              f"{lam_s:6g} {r['native_cos_to_other_behaviours']:8.3f} "
              f"{r['cos_diff_to_text_vs_other_natives']:8.3f}", flush=True)
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("cos_text", "cos_diff", "cos_diff_to_text")}
    print(f"{'mean':24s} {mean['cos_text']:6.3f} {mean['cos_diff']:6.3f} {'':6s} {mean['cos_diff_to_text']:9.3f}")
    evaluated = []
    for b in [x for x in args.evaluate.split(",") if x]:
        from lrt.evaluate.config import EvalConfig
        from lrt.evaluate.steering import evaluate_vectors
        from lrt.steering.vectors import contrast_vector

        others = [o for o in BEHAVIOURS if o != b]
        A_s, lam = lobo_fit(diffs, vecs, others, A_text)
        gen = contrast_items(tgt.tokenizer, load_contrasts(CAA / "generate" / b / "generate_dataset.json",
                                                           args.vector_pairs), chat=True)
        v_nat = contrast_vector(tgt, gen, lt, name=b)
        test = contrast_items(tgt.tokenizer, load_contrasts(CAA / "test" / b / "test_dataset_ab.json", args.items),
                              chat=True)
        vectors = {"native": v_nat.vector, "A·v (text map)": A_text @ vecs[b][0],
                   "A·v (diff→text map)": A_s @ vecs[b][0]}
        if args.no_text_vector:
            del vectors["A·v (text map)"]
        tb = time.time()
        ev = evaluate_vectors(tgt, lt, test, vectors, v_nat.median_norm,
                              EvalConfig(alpha_search=True, n_random=8, bootstrap=200, positions=args.positions,
                                         eval_batch_size=64, progress=False, alpha_steps=args.alpha_steps,
                                         search_items=args.search_items))
        key = "slope_monotonic" if "monotonic_range" in ev else "slope"
        rnd = [abs(x) for x in ev["random"]["slopes"]]
        for name, vec in vectors.items():
            r = {"behaviour": b, "vector": name, "slope": ev["curves"][name][key], "max_abs_random": max(rnd),
                 "mean_abs_random": sum(rnd) / len(rnd), "cos_native": cos(vec, v_nat.vector),
                 "r_odd": ev.get("comparison", {}).get(name, {}).get("mean_r_odd"), "alpha_max": ev["alphas"][-1],
                 "positions": args.positions, "lambda": lam, "native_slope": ev["curves"]["native"][key],
                 "random_slopes": ev["random"]["slopes"], "clear_of_random": ev["alpha_search"]["clear_of_random"],
                 "alpha_probe": ev["alpha_search"]["probe"], "seconds": round(time.time() - tb)}
            evaluated.append(r)
            print(f"{b:24s} {name:22s} slope {r['slope']:7.3f} max|rand| {r['max_abs_random']:.3f} "
                  f"cos {r['cos_native']:.2f} r_odd {r['r_odd']} α≤{r['alpha_max']}", flush=True)
        name = f"evaluated-{args.positions}-{args.evaluate.replace(',', '+')}.json"      # after every behaviour
        (out / name).write_text(json.dumps({"args": vars(args), "evaluated": evaluated}, indent=2))
    (out / "cosines.json").write_text(json.dumps({"args": vars(args), "rows": rows, "mean": mean,
                                                  "evaluated": evaluated}, indent=2))
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
