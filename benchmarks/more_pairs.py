"""Does a vector from more pairs get a higher split-half cosine and a higher cos(A·v, native)? Qwen2.5-Coder 0.5B
L14 → 1.5B L17, the default-pool map without the vector's family, from the cache `benchmarks/map_pool_compare.py`
fills (runs/pool):

    python benchmarks/more_pairs.py caa:sycophancy=240 caa-persona:sycophancy=240     # ~12 min on 2 CPU cores
"""
import sys, torch
from pathlib import Path
from safetensors.torch import load_file
from lrt.maps.affine import AffineMap
from lrt.maps.contrast import answer_differences, fit_from_differences, resolve_sets
from lrt.data.contrasts import contrast_items, load_contrasts
from lrt.models.load import load_model
from lrt.stats.balance import Balance, centre_cells, split_half_cos
from lrt.data.registry import family_of
torch.set_num_threads(2)
M = Path.home() / ".cache/lrt-models"
src = load_model(str(M / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"), "float32")
tgt = load_model(str(M / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"), "float32")
prior = AffineMap.load("runs/pool/text-14-17")
raw = load_file("runs/pool/pool-14-17.safetensors")
pool = {k[:-2]: (raw[k], raw[k[:-2] + "|y"]) for k in raw if k.endswith("|x")}
_, fams, _ = resolve_sets(list(pool))
cos = lambda a, b: float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0))
for spec, n in [(s, int(n)) for s, n in (a.split("=") for a in sys.argv[1:])]:
    fam = family_of(spec, "contrast")
    kept = {k: v for k, v in pool.items() if fams[k] != fam}
    A = fit_from_differences(prior, kept, {k: fams[k] for k in kept}).A
    recs = load_contrasts(spec, n)
    ix, iy = contrast_items(src.tokenizer, recs, True), contrast_items(tgt.tokenizer, recs, True)
    dx, dy = answer_differences(src, 14, ix), answer_differences(tgt, 17, iy)
    b = Balance(ix)
    for m in (60, 120, n):
        if m > n: continue
        bb = Balance(ix[:m]); c = bb.cells
        vs, vt = bb.mean(dx[:m].T), bb.mean(dy[:m].T)
        print(f"{spec} pairs {m}: split-half src {split_half_cos(dx[:m], c):.2f} tgt {split_half_cos(dy[:m], c):.2f}  cos(A·v, native) {cos(A @ vs, vt):.3f}  |v_t| {vt.norm():.2f}", flush=True)
