"""Why does a behaviour's own answer-balanced CAA vector steer the large model *backwards*? A decomposition.

On the large model of the Qwen pair (chat template), one behaviour, one layer, the same items as ``lrt study``
(vector pairs: the generate set's first 60; validation: its next 12; test: the test set's first 30):

- the CAA differences grouped by (matching, other) answer: ``v_A|B`` (mean over A-matching pairs of h(A) − h(B)),
  ``v_B|A``, and any third kind (``(C)`` against ``(A)``); the plain mean, the mean per matching answer (each
  matching answer with >= 3 pairs weighs alike: what lrt computed before the fix), the mean of the two mirrored
  groups only, and each unmirrored group alone (a pure letter preference);
- each of them, steered at every position (and at the answer position only) at ±α, on the validation and the test
  items, the effect ``p(+α) − p(−α)`` (p = log p(matching) − log p(other)) reported separately on A-matching and
  B-matching items, next to 4 random directions; and the unsteered propensity of each group.

    python benchmarks/backward_native.py survival-instinct 13 [--alphas 0.0625,0.25] [--positions all|answer|both]
"""

import argparse
from pathlib import Path

import torch

M = Path.home() / ".cache" / "lrt-models"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("behaviour")
    ap.add_argument("layer", type=int)
    ap.add_argument("--alphas", default="0.0625,0.25")
    ap.add_argument("--positions", default="both", choices=["all", "answer", "both"])
    ap.add_argument("--n-random", type=int, default=4)
    ap.add_argument("--model", default=str(M / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    from lrt.data.contrasts import contrast_items, load_contrasts
    from lrt.evaluate.answer import answer_grid
    from lrt.evaluate.propensity import propensity_grid
    from lrt.evaluate.steering import random_directions
    from lrt.harvest.prefix import continuation_states
    from lrt.models.load import load_model

    lm = load_model(a.model, "float32")
    tok = lm.tokenizer
    gen = contrast_items(tok, load_contrasts(f"caa:{a.behaviour}", role="contrast"), chat=True)
    vec = gen[:60]
    used = {it.source for it in vec}
    test = [it for it in contrast_items(tok, load_contrasts(f"caa:{a.behaviour}", role="test"), chat=True)[:30]
            if it.source not in used]
    val = [it for it in gen[60:] if it.source not in used | {it.source for it in test}][:12]
    st = continuation_states(lm, a.layer, [it.ids for it in vec], [it.positive[:1] + it.negative[:1] for it in vec])
    d = st.states[:, 0] - st.states[:, 1]
    key = [(tok.decode(it.positive), tok.decode(it.negative)) for it in vec]
    kinds = sorted(set(key), key=lambda k: -key.count(k))
    groups = {k: d[[x == k for x in key]].mean(0) for k in kinds}
    med = float(torch.cat([n for per in st.kept_norms for n in per]).median())
    cos = torch.nn.functional.cosine_similarity
    print(f"{a.behaviour}, layer {a.layer}: vector pairs per (matching, other) answer "
          f"{ {f'{p}|{n}': key.count((p, n)) for p, n in kinds} }; median token norm {med:.1f}")
    by_pos = {}
    for (p, n), v in groups.items():
        by_pos.setdefault(p, []).append((key.count((p, n)), v))
    pos_means = [sum(c * v for c, v in vs) / sum(c for c, _ in vs) for vs in by_pos.values()
                 if sum(c for c, _ in vs) >= 3]
    per_positive = torch.stack(pos_means).mean(0)          # each matching answer with >= 3 pairs weighs alike
    (ka, va), (kb, vb) = list(groups.items())[:2]
    mirrored = (va + vb) / 2                               # the two mirrored groups only: (A|B) and (B|A)
    plain = d.mean(0)
    print(f"|plain| {plain.norm():.2f}  |per-matching-answer mean| {per_positive.norm():.2f}  "
          f"|mirrored mean| {mirrored.norm():.2f}  cos(per-answer, mirrored) {float(cos(per_positive, mirrored, dim=0)):.3f}"
          f"  |letter part (v_{ka[0]} - v_{kb[0]})/2| {float((va - vb).norm() / 2):.2f}")
    extra = [(f"letter {k[0]}-{k[1]}", groups[k]) for k in kinds[2:]]
    vecs = [("plain", plain), ("per-answer", per_positive), ("mirrored", mirrored)] + extra
    names = [n for n, _ in vecs] + [f"random {r}" for r in range(a.n_random)]
    units = torch.cat([torch.stack([v / v.norm() for _, v in vecs]), random_directions(a.n_random, lm.d_model, 11)])
    alphas = [float(x) for x in a.alphas.split(",")]
    grid = [-x for x in reversed(alphas)] + [0.0] + alphas
    modes = ["all", "answer"] if a.positions == "both" else [a.positions]
    for split, items in (("validation", val), ("test", test)):
        ik = [tok.decode(it.positive) for it in items]
        masks = {g: torch.tensor([k == g for k in ik]) for g in sorted(set(ik))}
        print(f"\n{split}: {len(items)} items, per matching answer { {g: int(m.sum()) for g, m in masks.items()} }")
        for mode in modes:
            fn = propensity_grid if mode == "all" else answer_grid
            p, _ = fn(lm, a.layer, items, units, grid, med, 32)          # [V, len(grid), N]
            base = p[0, len(alphas)]
            print(f"  {mode} positions; unsteered propensity: "
                  + ", ".join(f"{g}-matching {float(base[m].mean()):.2f}" for g, m in masks.items()))
            for j, x in enumerate(alphas):
                hi, lo = len(alphas) + 1 + j, len(alphas) - 1 - j
                eff = p[:, hi] - p[:, lo]                                  # [V, N]
                print(f"    ±{x:g}: effect p(+α)−p(−α) on " + " | ".join(f"{g}-matching" for g in masks)
                      + " | mean of the groups | plain mean")
                for k, name in enumerate(names):
                    per = [float(eff[k][m].mean()) for m in masks.values()]
                    print(f"      {name:12s} " + " | ".join(f"{e:7.2f}" for e in per)
                          + f" | {sum(per) / len(per):7.2f} | {float(eff[k].mean()):7.2f}")


if __name__ == "__main__":
    main()
