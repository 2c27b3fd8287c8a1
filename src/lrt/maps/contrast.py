"""A map for steering vectors: refit on contrast *differences*, shrunk toward the map fitted on text.

A steering vector is a mean of differences ``h(positive answer) − h(negative answer)``; a map fitted on text
tokens carries such differences only as well as text tokens resemble them. Given contrast sets of *other*
behaviours than the ones to be transferred, both models' per-pair differences ``ΔX [n, d_S]``, ``ΔY [n, d_T]``
give a second fit, regularised toward the text map ``A₀``:

    A = argmin ‖ΔY − ΔX·Aᵀ‖² + λ·s·‖A − A₀‖²   (s = mean eigenvalue of ΔXᵀΔX; λ → ∞ gives A₀)

with λ chosen by leave-one-family-out: each held-out family's sets' mean differences transferred by the map
fitted on the other families, scored by their cosine with those sets' native mean differences. A *family* is
what must be left out together: one behaviour in all its answer formats (``lrt.data.registry``).

The sets come from the user (A/B files or names) or from the **default pool** shipped with lrt
(:data:`DEFAULT_POOL`, ``--contrast-sets default``): the seven CAA behaviours in four answer formats (A/B
letters, Yes/No, persona-style, free text), MMLU and TruthfulQA right-vs-wrong answers (A/B and free text), and
the sentiment text contrast — always without the families of the behaviour being transferred (``exclude``).
The bias is the text map's (a difference of points does not use it).

The map also keeps what predicts how well it will carry a new vector (:func:`transfer_outlook`): each set's mean
source difference and its leave-one-family-out cosine, and the top principal directions of the differences.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import torch

from ..data.concepts import concept_texts
from ..data.contrasts import contrast_items, load_contrasts
from ..data.registry import family_of
from ..errors import ConfigError
from ..harvest.capture import capture_batches, keep_mask
from ..harvest.prefix import continuation_states
from ..models.load import LoadedModel
from .affine import AffineMap

LAMBDA_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
BEHAVIOURS = ("coordinate-other-ais", "corrigible-neutral-HHH", "hallucination", "myopic-reward", "refusal",
              "survival-instinct", "sycophancy")
DEFAULT_POOL = tuple(f"{form}:{b}" for form in ("caa", "caa-yesno", "caa-persona", "caa-text") for b in BEHAVIOURS) + (
    "mmlu", "truthfulqa", "mmlu-text", "truthfulqa-text", "concept:sentiment")
BASIS_DIRECTIONS = 32


def shrunk_fit(dx: torch.Tensor, dy: torch.Tensor, lam: float, prior: torch.Tensor) -> torch.Tensor:
    """``A [d_T, d_S]`` minimising ‖dy − dx·Aᵀ‖² + λ·s·‖A − prior‖² (float64 solve)."""
    dx, dy = dx.double(), dy.double()
    G = dx.T @ dx
    s = float(G.diagonal().mean()) or 1.0
    rhs = dx.T @ dy + lam * s * prior.double().T
    return torch.linalg.solve(G + lam * s * torch.eye(G.shape[0], dtype=G.dtype), rhs).T.float()


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0))


def leave_one_out(sets: dict[str, tuple[torch.Tensor, torch.Tensor]], prior: torch.Tensor, lam: float,
                  families: dict[str, str]) -> dict[str, float]:
    """Per set: cos(A·mean ΔX, mean ΔY) with A fitted without the set's whole family."""
    out = {}
    for fam in sorted(set(families[k] for k in sets)):
        rest = [k for k in sets if families[k] != fam]
        A = shrunk_fit(torch.cat([sets[k][0] for k in rest]), torch.cat([sets[k][1] for k in rest]), lam, prior)
        for k in sets:
            if families[k] == fam:
                out[k] = _cos(A @ sets[k][0].mean(0), sets[k][1].mean(0))
    return out


def choose_lambda(sets: dict[str, tuple[torch.Tensor, torch.Tensor]], prior: torch.Tensor, grid=LAMBDA_GRID,
                  families: dict[str, str] | None = None) -> tuple[float, dict]:
    """λ by the leave-one-family-out mean cosine (each set its own family unless ``families`` groups them)."""
    families = families or {k: k for k in sets}
    if len(set(families[k] for k in sets)) < 2:
        raise ConfigError("choosing λ needs contrast sets of at least two behaviours (one is held out at a time)",
                          option="contrast_sets")
    table = {}
    for lam in grid:
        loo = leave_one_out(sets, prior, lam, families)
        table[lam] = round(sum(loo.values()) / len(loo), 6)
    return max(table, key=lambda k: (table[k], k)), table


def answer_differences(lm: LoadedModel, layer: int, items) -> torch.Tensor:
    """Per-pair ``h(positive answer token) − h(negative answer token)`` at ``layer`` (shared prompt prefixes)."""
    st = continuation_states(lm, layer, [it.ids for it in items], [it.positive[:1] + it.negative[:1] for it in items])
    return st.states[:, 0] - st.states[:, 1]


def mean_pooled(lm: LoadedModel, layer: int, texts: list[str], max_tokens: int = 128) -> torch.Tensor:
    """``[n, d]``: each text's last ``max_tokens`` tokens (with the tokenizer's special tokens) through ``lm``, the
    states at ``layer`` averaged over the tokens after the first (an attention sink): a pooled-text set's rows in
    the contrast pool (``concept:NAME``)."""
    seqs = [lm.tokenizer(t, add_special_tokens=True, verbose=False)["input_ids"][-max_tokens:] for t in texts]
    out = []
    for hs, mask in capture_batches(lm, seqs, [layer], 8):
        m = keep_mask(mask).float()
        out.append((hs[layer] * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1))
    return torch.cat(out)


def _concept_pairs(spec: str, pairs: int) -> tuple[list[str], list[str]]:
    tc = concept_texts(spec.split(":", 1)[1], "lrt:reviews", split="train", limit=pairs)
    n = min(len(tc.positive), len(tc.negative))
    return tc.positive[:n], tc.negative[:n]


def set_fingerprint(spec: str, pairs: int) -> str:
    """sha256 of exactly what :func:`set_differences` reads of a set — its first ``pairs`` records (prompt and
    both answers), or the concept's paired texts: a cached difference of the set is reused only while this holds
    (a shipped set rebuilt, or a file edited under the same name, is computed again)."""
    if spec.startswith("concept:"):
        payload = list(_concept_pairs(spec, pairs))
    else:
        payload = [[c.prompt, c.positive, c.negative] for c in load_contrasts(spec, pairs)]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()


def set_differences(source: LoadedModel, target: LoadedModel, ls: int, lt: int, spec: str, pairs: int,
                    chat: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Both models' per-pair differences of one contrast set: A/B answer tokens, or (``concept:NAME``) mean-pooled
    states of a positive text minus a negative one (the concept's train split, paired in a seeded order)."""
    if spec.startswith("concept:"):
        pos, neg = _concept_pairs(spec, pairs)
        return tuple(mean_pooled(lm, layer, pos) - mean_pooled(lm, layer, neg)
                     for lm, layer in ((source, ls), (target, lt)))
    records = load_contrasts(spec, pairs)            # each model reads the pairs in its own tokens
    return tuple(answer_differences(lm, layer, contrast_items(lm.tokenizer, records, chat))
                 for lm, layer in ((source, ls), (target, lt)))


def resolve_sets(contrast: list[str], exclude: list[str] = ()) -> tuple[list[str], dict[str, str], list[str]]:
    """The sets to fit on (``default`` expands to :data:`DEFAULT_POOL`), each set's family, and the sets left out
    because they belong to a family of ``exclude`` (names or files: a file counts by its content)."""
    specs = [s for c in contrast for s in (DEFAULT_POOL if c == "default" else (c,))]
    fam = {s: (s if s.startswith("concept:") else family_of(s, "contrast") or s) for s in specs}
    out_fams = {f for e in exclude for f in [family_of(e, "contrast") or family_of(e, "test")] if f}
    kept = [s for s in dict.fromkeys(specs) if fam[s] not in out_fams]
    return kept, {s: fam[s] for s in kept}, [s for s in dict.fromkeys(specs) if fam[s] in out_fams]


def fit_from_differences(prior: AffineMap, sets: dict[str, tuple[torch.Tensor, torch.Tensor]],
                         families: dict[str, str], meta: dict | None = None) -> AffineMap:
    """The text map ``prior`` refitted on per-set differences (λ by leave-one-family-out), with what
    :func:`transfer_outlook` reads kept in the map: each set's mean source difference and leave-one-out cosine,
    and the differences' top principal directions."""
    lam, table = choose_lambda(sets, prior.A, families=families)
    dx = torch.cat([x for x, _ in sets.values()])
    A = shrunk_fit(dx, torch.cat([y for _, y in sets.values()]), lam, prior.A)
    loo = leave_one_out(sets, prior.A, lam, families)
    names = list(sets)
    _, _, vh = torch.linalg.svd(dx.double(), full_matrices=False)      # uncentred: the mean is the signal
    extra = {"pool_means": torch.stack([sets[k][0].mean(0) for k in names]).float(),
             "pool_loo_cos": torch.tensor([loo[k] for k in names], dtype=torch.float32),
             "pool_basis": vh[:BASIS_DIRECTIONS].float()}
    m = {**prior.meta, "method": "contrast-shrunk", "prior_method": prior.meta.get("method"),
         "contrast": {"sets": names, "families": families, "pairs_each": {k: len(v[0]) for k, v in sets.items()},
                      "lambda": lam, "leave_one_family_out_cos": {str(k): v for k, v in table.items()},
                      "set_loo_cos": loo, **(meta or {})},
         "note": "A refitted on contrast differences; p is the text map's: transfer differences (A·v) with it"}
    return replace(prior, A=A, meta=m, extra=extra)


def fit_contrast_map(source: LoadedModel, target: LoadedModel, prior: AffineMap, contrast: list[str],
                     pairs: int = 60, chat: bool = False, exclude: list[str] = (), progress: bool = False
                     ) -> AffineMap:
    """The text map ``prior`` refitted on the differences of the sets ``contrast`` (``default``: the shipped pool)
    minus the families of ``exclude`` (see the module docstring); layers and bias from ``prior``."""
    from tqdm.auto import tqdm

    kept, families, left_out = resolve_sets(contrast, exclude)
    if len(set(families.values())) < 2:
        raise ConfigError("give contrast sets of at least two behaviours other than the ones you will transfer "
                          "(or --contrast-sets default)", option="contrast_sets")
    ls, lt = source.layer_index(prior.source_layer), target.layer_index(prior.target_layer)
    sets = {}
    for spec in tqdm(kept, desc="contrast differences", unit="set", disable=not progress):
        sets[spec] = set_differences(source, target, ls, lt, spec, pairs, chat)
    return fit_from_differences(prior, sets, families, {"chat": chat, "left_out": left_out,
                                                        "exclude": [str(e) for e in exclude]})


def transfer_outlook(m: AffineMap, v: torch.Tensor) -> dict | None:
    """Cheap signals of how well ``m`` will carry the source vector ``v`` (None for a map without a pool):

    - ``expected_cos``: the leave-one-family-out cos(A·v̄, native) of the map's sets, weighted by each set's
      squared cosine with ``v`` (sets that look like ``v`` say how vectors like it were carried);
    - ``nearest_set`` / ``nearest_cos``: the pool set most like ``v``;
    - ``basis_share``: the share of ``v``'s energy in the top principal directions of the fitted differences
      (the part of the map the contrast data determined).
    """
    if "pool_means" not in m.extra:
        return None
    v = v.double()
    means = m.extra["pool_means"].double()
    cos = torch.nn.functional.cosine_similarity(means, v[None], dim=1)
    w = cos.clamp_min(0) ** 2
    loo = m.extra["pool_loo_cos"].double()
    k = int(cos.argmax())
    basis = m.extra["pool_basis"].double()
    share = float(((basis @ v) ** 2).sum() / (v @ v).clamp_min(1e-30))
    sets = m.meta.get("contrast", {}).get("sets", [])
    return {"expected_cos": float((w * loo).sum() / w.sum()) if float(w.sum()) > 0 else None,
            "nearest_set": sets[k] if k < len(sets) else k, "nearest_cos": float(cos[k]),
            "nearest_set_loo_cos": float(loo[k]), "basis_share": share, "basis_directions": basis.shape[0]}
