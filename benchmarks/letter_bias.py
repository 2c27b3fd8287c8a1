"""Why a native CAA vector can steer *backwards*: the letter it carries. On one behaviour of the large model of the
Qwen pair (chat template, layer 13): the plain CAA mean over the first 60 generate pairs, the answer-balanced mean
(each matching letter weighs alike, what `lrt steer` computes), and the pure letter direction (the A-matching pairs'
mean difference minus the B-matching pairs'); their cosines and norms; then the three on 40 test items at
α = ±0.25, ±1 × the median norm, every position steered, with the plain and the balanced mean over items, next to
8 random directions.

    python benchmarks/letter_bias.py corrigible-neutral-HHH
"""

import sys
from pathlib import Path

import torch

M = Path.home() / ".cache" / "lrt-models"


def main() -> None:
    b = sys.argv[1] if len(sys.argv) > 1 else "corrigible-neutral-HHH"
    torch.set_num_threads(2)
    from lrt.data.contrasts import contrast_items, load_contrasts
    from lrt.evaluate.propensity import propensity_grid
    from lrt.evaluate.steering import random_directions
    from lrt.harvest.prefix import continuation_states
    from lrt.models.load import load_model
    from lrt.stats.balance import Balance

    L = 13
    lm = load_model(str(M / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"), "float32")
    gen = contrast_items(lm.tokenizer, load_contrasts(f"caa:{b}", 60), chat=True)
    test = contrast_items(lm.tokenizer, load_contrasts(f"caa:{b}", role="test"), chat=True)[:40]
    st = continuation_states(lm, L, [it.ids for it in gen], [it.positive[:1] + it.negative[:1] for it in gen])
    d = st.states[:, 0] - st.states[:, 1]
    key = [tuple(it.positive) for it in gen]
    groups = sorted(set(key))
    v_plain, v_bal = d.mean(0), Balance(gen).mean(d.T)
    letter = d[[k == groups[0] for k in key]].mean(0) - d[[k == groups[1] for k in key]].mean(0)
    print("vector pairs per matching answer", {lm.tokenizer.decode(list(g)): key.count(g) for g in groups})
    print(f"cos(plain, balanced) {float(torch.nn.functional.cosine_similarity(v_plain, v_bal, dim=0)):.3f}; "
          f"|letter part| / |balanced| {float(letter.norm() / 2 / v_bal.norm()):.1f}")
    tk = [tuple(it.positive) for it in test]
    print("test items per matching answer", {lm.tokenizer.decode(list(g)): tk.count(g) for g in groups})
    units = torch.stack([v / v.norm() for v in (v_plain, v_bal, letter)])
    alphas = [-1.0, -0.25, 0.0, 0.25, 1.0]
    p, _ = propensity_grid(lm, L, test, torch.cat([units, random_directions(8, lm.d_model, 5)]), alphas,
                           st.kept_norms and float(torch.cat([n for per in st.kept_norms for n in per]).median()), 32)
    bal = Balance(test)
    print(f"α {alphas}: mean propensity, plain mean | balanced mean")
    for k, name in enumerate(["plain CAA", "balanced CAA", "letter"] + [f"random {r}" for r in range(8)]):
        print(f"{name:14s} " + " ".join(f"{float(x):6.2f}" for x in p[k].mean(-1)) + "  | "
              + " ".join(f"{float(x):6.2f}" for x in bal.mean(p[k])))


if __name__ == "__main__":
    main()
