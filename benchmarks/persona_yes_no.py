"""Why a CAA vector computed on persona items steers "backwards": it is mostly "say Yes" (or "No").

Persona items (a statement, then "(A) Yes (B) No" in alternating order) have four cells: the matching answer is
(A) or (B), and it is "Yes" or "No". This script takes the 1.5B of the Qwen pair, the shipped persona rewrite of a
CAA behaviour (statements of at least 8 words that do not start with yes/no, so that they stand alone), the CAA
differences at the answer letter per cell, and splits their mean into a behaviour part (common to Yes- and
No-matching pairs), a Yes/No part and a letter part; then it steers test items of each cell with vectors of
different Yes/No composition (every position, ±α × the layer's median norm) and prints the odd shift per cell.

    python benchmarks/persona_yes_no.py refusal 17        # ~3 minutes on 2 CPU cores (MODELS: the GGUF folder)
"""

import os
import re
import sys
import time

import torch

from lrt.data.contrasts import contrast_items, load_contrasts
from lrt.evaluate.propensity import propensity_grid
from lrt.models import load_model
from lrt.stats.balance import Balance
from lrt.steering.vectors import contrast_vector

B = sys.argv[1] if len(sys.argv) > 1 else "refusal"
LAYER = int(sys.argv[2]) if len(sys.argv) > 2 else 17
ALPHA = 0.25
M = os.environ.get("MODELS", os.path.expanduser("~/.cache/lrt-models"))
tgt = load_model(f"{M}/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
li = tgt.layer_index(LAYER)
CELLS = ("YA", "YB", "NA", "NB")


def cell(c):
    statement = re.search(r'"(.*)"', c.prompt, re.S).group(1)
    yes_letter = "(A)" if "(A) Yes" in c.prompt else "(B)"
    return ("Y" if c.positive == yes_letter else "N") + c.positive[1], statement


def by_cell(role, n):
    recs = load_contrasts(f"caa-persona:{B}", 100000, role=role)
    out = {}
    for c in recs:
        k, st = cell(c)
        if len(st.split()) >= 8 and not re.match(r"(yes|no)\b", st, re.I):
            out.setdefault(k, []).append(c)
    print(role, {k: len(out.get(k, [])) for k in CELLS}, f"(taking {n} per cell)")
    return {k: out[k][:n] for k in CELLS}


gen, test = by_cell("contrast", 15), by_cell("test", 8)
cell_vectors = {k: contrast_vector(tgt, contrast_items(tgt.tokenizer, cs, chat=True), LAYER, balance=False)
                for k, cs in gen.items()}           # the plain mean difference of each cell's pairs
m = {k: v.vector.double() for k, v in cell_vectors.items()}
med = cell_vectors["YA"].meta["layer_median_norm"]
d_yes, d_no = (m["YA"] + m["YB"]) / 2, (m["NA"] + m["NB"]) / 2
d_a, d_b = (m["YA"] + m["NA"]) / 2, (m["YB"] + m["NB"]) / 2
behaviour, yes_no, letter = (d_yes + d_no) / 2, (d_yes - d_no) / 2, (d_a - d_b) / 2
cos = float(d_yes @ d_no / d_yes.norm() / d_no.norm())
print(f"{B}, layer {LAYER}: |behaviour part| {behaviour.norm():.2f}, |Yes/No part| {yes_no.norm():.2f}, "
      f"|letter part| {letter.norm():.2f}; cos(Yes-matching mean, No-matching mean) {cos:.2f}")
vecs = {"cells alike (lrt)": behaviour, "Yes-matching only": d_yes, "No-matching only": d_no,
        "70% Yes-matching": 0.7 * d_yes + 0.3 * d_no, "Yes/No part": yes_no}
flat = [it for k in CELLS for it in contrast_items(tgt.tokenizer, test[k], chat=True)]
units = torch.stack([v.float() / v.float().norm() for v in vecs.values()])
t = time.time()
prop, _ = propensity_grid(tgt, li, flat, units, [-ALPHA, 0.0, ALPHA], med, 32)
print(f"grid {time.time() - t:.0f} s; odd shift (p(+α) − p(−α)) / 2 at α = ±{ALPHA} × median norm {med:.1f}")
n, bal = len(test["YA"]), Balance(flat)
print(f"{'vector':22s} " + "  ".join(f"{k:>6s}" for k in CELLS) + "  Yes-match  No-match  cells alike")
for vi, name in enumerate(vecs):
    odd = (prop[vi, 2] - prop[vi, 0]) / 2
    per = [float(odd[i * n:(i + 1) * n].mean()) for i in range(4)]
    print(f"{name:22s} " + "  ".join(f"{x:+6.2f}" for x in per) +
          f"  {float(odd[:2 * n].mean()):+9.2f}  {float(odd[2 * n:].mean()):+8.2f}  {float(bal.mean(odd)):+11.2f}")
