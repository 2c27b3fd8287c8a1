"""Is the random floor of the A/B evaluation a preference for one answer letter? (docs/real-pair.md)

Answer-position steering on the 1.5B (L14) with the native CAA vector and 8 random vectors, on the first 24 test
items of a behaviour and on the same items with their two options swapped (the matching answer's letter changes,
its content does not): a pure letter bias cancels in the mean over both orders.

    python benchmarks/real_pair_swap.py refusal        # ≈ 6 min on 2 CPU cores
"""
import re, sys, time, json
from pathlib import Path
import torch
torch.set_num_threads(2)
from lrt.data.contrasts import contrast_items, load_contrasts, Contrast
from lrt.evaluate.answer import answer_grid
from lrt.evaluate.steering import random_directions
from lrt.evaluate.stats import slope
from lrt.models.load import load_model
from lrt.steering.vectors import contrast_vector
CAA = Path(__file__).resolve().parents[2] / "shared" / "data" / "caa"; M = Path.home()/".cache/lrt-models"
OPT = re.compile(r"^(\s*)\(([A-Z])\)(.*)$", re.M)
def swap(c):
    p, n = re.search(r"\(([A-Z])\)", c.positive).group(1), re.search(r"\(([A-Z])\)", c.negative).group(1)
    opts = {m.group(2): m for m in OPT.finditer(c.prompt)}
    if p not in opts or n not in opts: return None
    def rep(m):
        L = m.group(2)
        if L == p: return f"{m.group(1)}({p}){opts[n].group(3)}"
        if L == n: return f"{m.group(1)}({n}){opts[p].group(3)}"
        return m.group(0)
    return Contrast(OPT.sub(rep, c.prompt), c.positive.replace(f"({p})", f"({n})"), c.negative.replace(f"({n})", f"({p})"))
tgt = load_model(str(M/"qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"), "float32")
b = sys.argv[1]; lt = 14
gen = contrast_items(tgt.tokenizer, load_contrasts(CAA/"generate"/b/"generate_dataset.json", 60), chat=True)
v = contrast_vector(tgt, gen, lt, name=b)
cs = load_contrasts(CAA/"test"/b/"test_dataset_ab.json", 24)
sw = [swap(c) for c in cs]; print("swappable", sum(s is not None for s in sw), "of", len(cs)); print(sw[0])
plain = contrast_items(tgt.tokenizer, cs, chat=True); swd = contrast_items(tgt.tokenizer, [s for s in sw if s], chat=True)
units = torch.cat([(v.vector/v.vector.norm())[None].float(), random_directions(8, tgt.d_model, 0)])
for amax in (0.0625, 0.25, 1.0):
    al = [-amax, -amax/2, 0, amax/2, amax]
    t=time.time()
    P, _ = answer_grid(tgt, lt, plain + swd, units, al, v.median_norm, 64)
    n = len(plain)
    for tag, sl in (("plain", slice(0, n)), ("swapped", slice(n, None)), ("both", slice(None))):
        s = [slope(al, P[k, :, sl].mean(1)) for k in range(len(units))]
        print(f"α≤{amax} {tag:8s} native {s[0]:7.3f}  random max|.| {max(map(abs, s[1:])):.3f} mean|.| {sum(map(abs, s[1:]))/8:.3f}", flush=True)
    print(f"{time.time()-t:.0f}s")
